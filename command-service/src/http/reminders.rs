//! Reminder commands (docs/DOMAIN.md section 13): schedule one for yourself, and snooze,
//! complete, dismiss or cancel. The routes fill in what the aggregate cannot look up itself:
//! who the caller is (their CSM, whether they manage), the caller's time zone for a snooze that
//! ends at a local hour, and the customer's health score for "until the score drops further".

use axum::extract::{Path, State};
use chrono::Utc;
use events::metadata::Role;
use events::reminder::{morning_of, snooze_end, time_zone, SnoozeCondition};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{CommandContext, JsonBody};
use super::{path_id, run, Answer, AppState, Handlers, Reply};
use crate::domain::reminder::*;
use crate::store::ExecuteError;

fn unavailable(error: sqlx::Error) -> ApiError {
    ExecuteError::from_database(&error).into()
}

/// The caller as a reminder sees them: the CSM their preferences name, and their time zone.
async fn caller(app: &Handlers, context: &CommandContext) -> Result<(Acting, String), ApiError> {
    acting(app, &context.principal).await
}

/// A user as a reminder sees them (the REST routes' caller, Slack's linked user).
pub(super) async fn acting(
    app: &Handlers,
    principal: &events::service::auth::Principal,
) -> Result<(Acting, String), ApiError> {
    let preferences: Option<(Option<Uuid>, Option<String>)> =
        sqlx::query_as("SELECT csm_id, time_zone FROM notification_preferences WHERE user_id = $1")
            .bind(&principal.user_id)
            .fetch_optional(&app.pool)
            .await
            .map_err(unavailable)?;
    let (csm_id, zone) = preferences.unwrap_or_default();
    Ok((
        Acting {
            user_id: principal.user_id.clone(),
            csm_id,
            manages: matches!(principal.role, Role::Admin | Role::Manager),
        },
        zone.unwrap_or_else(|| "UTC".into()),
    ))
}

/// `POST /api/v1/reminders`: a reminder for the caller.
pub(super) async fn schedule(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<ScheduleReminder>,
) -> Answer {
    let (acting, zone) = caller(&app, &context).await?;
    if let Some(customer_id) = body.customer_id {
        super::focus::visible(&app, &context, &customer_id.to_string())
            .await
            .map_err(|_| ApiError::validation("unknown_customer", "customer_id", "no such customer"))?;
    }
    if let Some(task_id) = body.task_id {
        let customer: Option<Uuid> = sqlx::query_scalar("SELECT customer_id FROM tasks WHERE task_id = $1")
            .bind(task_id)
            .fetch_optional(&app.pool)
            .await
            .map_err(unavailable)?;
        match (customer, body.customer_id) {
            (None, _) => return Err(ApiError::validation("unknown_task", "task_id", "no such task")),
            (Some(of_task), Some(named)) if of_task != named => {
                return Err(ApiError::validation(
                    "task_of_another_customer",
                    "task_id",
                    "the task belongs to another customer",
                ))
            }
            (Some(of_task), _) => body.customer_id = Some(of_task),
        }
    }
    body.reminder_id = Uuid::now_v7();
    body.owner_id = acting.user_id;
    body.time_zone = Some(body.time_zone.unwrap_or(zone));
    let id = body.reminder_id;
    run(
        &app.reminders,
        &id.to_string(),
        ReminderCommand::Schedule(body),
        &context,
        Reply::created("reminder_id", id),
    )
    .await
}

/// `POST /api/v1/reminders/{id}/snooze`.
pub(super) async fn snooze(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<SnoozeReminder>,
) -> Answer {
    let reminder = path_id(&id, "reminder")?;
    let (acting, zone) = caller(&app, &context).await?;
    let zone = time_zone(&zone).unwrap_or(chrono_tz::UTC);
    let now = Utc::now();
    body.until = match body.snooze {
        SnoozeFor::Preset(preset) => Some(snooze_end(preset, now, zone)),
        SnoozeFor::UntilDate(day) => Some(morning_of(day, zone)),
        SnoozeFor::Until(_) => None,
    };
    if let SnoozeFor::Until(SnoozeCondition::ScoreDrops { .. }) = body.snooze {
        body.score_now = sqlx::query_scalar(
            "SELECT h.score FROM reminders r JOIN health_points h ON h.customer_id = r.customer_id
              WHERE r.reminder_id = $1 ORDER BY h.measured_at DESC, h.sequence DESC LIMIT 1",
        )
        .bind(reminder)
        .fetch_optional(&app.pool)
        .await
        .map_err(unavailable)?;
    }
    body.acting = acting;
    run(
        &app.reminders,
        &reminder.to_string(),
        ReminderCommand::Snooze(body),
        &context,
        Reply::OK,
    )
    .await
}

/// Runs `command` on the reminder in the path as the caller.
async fn act_on(
    app: &Handlers,
    id: &str,
    context: &CommandContext,
    command: impl FnOnce(Acting) -> ReminderCommand,
) -> Answer {
    let reminder = path_id(id, "reminder")?;
    let acting = caller(app, context).await?.0;
    run(
        &app.reminders,
        &reminder.to_string(),
        command(acting),
        context,
        Reply::OK,
    )
    .await
}

/// `POST /api/v1/reminders/{id}/complete`.
pub(super) async fn complete(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<CompleteReminder>,
) -> Answer {
    act_on(&app, &id, &context, |acting| {
        ReminderCommand::Complete(CompleteReminder { acting, ..body })
    })
    .await
}

/// `POST /api/v1/reminders/{id}/dismiss`.
pub(super) async fn dismiss(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<DismissReminder>,
) -> Answer {
    act_on(&app, &id, &context, |acting| {
        ReminderCommand::Dismiss(DismissReminder { acting, ..body })
    })
    .await
}

/// `POST /api/v1/reminders/{id}/cancel`.
pub(super) async fn cancel(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<CancelReminder>,
) -> Answer {
    act_on(&app, &id, &context, |acting| {
        ReminderCommand::Cancel(CancelReminder { acting, ..body })
    })
    .await
}
