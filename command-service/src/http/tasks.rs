//! Bulk task actions (docs/DOMAIN.md, "Bulk task actions"): reassign, reschedule or complete up
//! to 1,000 tasks in one command, all or nothing, under one correlation id; each task gets its own
//! events as a single command would append them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{CommandContext, JsonBody};
use super::{Answer, AppState};
use crate::domain::customer::{CompleteTask, CustomerCommand, ReassignTask, UpdateTask};
use crate::domain::CommandError;
use crate::store::ExecuteError;

/// Tasks and what to do to every one of them.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkTasks {
    /// 1 to 1,000 distinct tasks.
    #[schemars(length(min = 1, max = 1000), extend("uniqueItems" = true))]
    pub task_ids: Vec<Uuid>,
    pub action: BulkTaskAction,
}

/// One of: give every task to `assignee_id`; set every due date to `due_date`; move every due
/// date by `days`; complete every task with `outcome`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BulkTaskAction {
    Reassign {
        #[schemars(length(max = 200), pattern(crate::domain::VISIBLE))]
        assignee_id: String,
        #[schemars(length(max = 1000))]
        reason: Option<String>,
    },
    RescheduleTo {
        due_date: NaiveDate,
    },
    /// Moves each task's due date by this many days (its due date as the task list reads it).
    Shift {
        #[schemars(range(min = -365, max = 365), extend("not" = {"const": 0}))]
        days: i32,
    },
    Complete {
        #[schemars(length(max = 2000), pattern(crate::domain::VISIBLE))]
        outcome: String,
    },
}

/// `POST /api/v1/tasks/bulk`.
pub async fn bulk(State(app): State<AppState>, context: CommandContext, JsonBody(body): JsonBody<BulkTasks>) -> Answer {
    super::bulk::check_ids(&body.task_ids, "task_ids")?;
    if let BulkTaskAction::Shift { days } = body.action {
        if days == 0 || !(-365..=365).contains(&days) {
            return Err(ApiError::validation(
                "out_of_range",
                "action.shift.days",
                "a shift is 1 to 365 days, forward or back",
            ));
        }
    }
    // Each task's customer (and due date, for a shift), as the task list has them.
    let known: Vec<(Uuid, Uuid, NaiveDate)> =
        sqlx::query_as("SELECT task_id, customer_id, due_date FROM tasks WHERE task_id = ANY ($1)")
            .bind(&body.task_ids)
            .fetch_all(&app.pool)
            .await
            .map_err(|error| ApiError::from(ExecuteError::from_database(&error)))?;
    let mut commands = Vec::with_capacity(body.task_ids.len());
    for task_id in &body.task_ids {
        let Some((_, customer_id, due_date)) = known.iter().find(|(id, _, _)| id == task_id) else {
            return Err(ApiError::NotFound { entity: "task" });
        };
        let task_id = *task_id;
        let command = match &body.action {
            BulkTaskAction::Reassign { assignee_id, reason } => CustomerCommand::ReassignTask(ReassignTask {
                task_id,
                assignee_id: assignee_id.clone(),
                reason: reason.clone(),
            }),
            BulkTaskAction::RescheduleTo { due_date } => CustomerCommand::UpdateTask(due(task_id, *due_date)),
            BulkTaskAction::Shift { days } => {
                CustomerCommand::UpdateTask(due(task_id, *due_date + chrono::Duration::days(i64::from(*days))))
            }
            BulkTaskAction::Complete { outcome } => CustomerCommand::CompleteTask(CompleteTask {
                task_id,
                outcome: outcome.clone(),
            }),
        };
        commands.push((*customer_id, command));
    }
    // A task that already has the assignee needs nothing.
    let unchanged = |rejection: &CommandError| {
        matches!(
            rejection,
            CommandError::Invalid {
                code: "assignee_unchanged",
                ..
            }
        )
    };
    let changed = super::bulk::decide_all(&app, &context, commands, "task_ids", unchanged).await?;
    Ok((
        StatusCode::OK,
        Json(json!({"tasks": body.task_ids.len(), "changed": changed})),
    ))
}

fn due(task_id: Uuid, due_date: NaiveDate) -> UpdateTask {
    UpdateTask {
        task_id,
        title: None,
        description: None,
        kind: None,
        priority: None,
        due_date: Some(due_date),
        depends_on: None,
    }
}
