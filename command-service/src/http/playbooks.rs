//! Playbooks (docs/DOMAIN.md section 17): save, version and retire a playbook (the three shipped
//! ones included); start a run on a customer, by hand or from a rule, whose steps become the
//! customer's tasks in the same transaction; move a step's due day and the later steps with it;
//! end a run. The scheduler starts and ends runs through the same functions.

use std::collections::HashMap;

use axum::extract::{Path, State};
use chrono::{NaiveDate, Utc};
use events::metadata::Role;
use events::playbook::*;
use events::service::auth::Principal;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{CommandContext, EmptyBody, JsonBody};
use super::{path_id, run, Answer, AppState, Handlers, Reply};
use crate::domain::customer::{CancelTask, CreateTask, CustomerCommand, UpdateTask};
use crate::domain::playbook::*;
use crate::domain::CommandError;
use crate::store::ExecuteError;

fn unavailable(error: sqlx::Error) -> ExecuteError {
    ExecuteError::from_database(&error)
}

/// Every playbook, shipped ones included, retired ones flagged.
pub use events::service::read_models::playbooks;

/// The playbook in force, unless unknown or retired.
async fn playbook(pool: &sqlx::PgPool, id: Uuid) -> Result<Option<PlaybookState>, sqlx::Error> {
    Ok(playbooks(pool)
        .await?
        .into_iter()
        .find(|p| p.playbook_id == id && !p.retired))
}

/// The runs whose first event meets a condition (see the shared reading).
pub use events::service::read_models::playbook_runs as runs_where;

async fn the_run(pool: &sqlx::PgPool, run_id: Uuid) -> Result<RunState, ApiError> {
    runs_where(pool, "s.aggregate_id = $2", &run_id.to_string())
        .await
        .map_err(unavailable)?
        .pop()
        .ok_or(ApiError::NotFound { entity: "run" })
}

/// Each step's due day and whether its task is open, as the task list has them.
pub async fn steps_now(pool: &sqlx::PgPool, run: &RunState) -> Result<Vec<(NaiveDate, bool)>, sqlx::Error> {
    let ids: Vec<Uuid> = run.started.steps.iter().map(|s| s.task_id).collect();
    let rows: Vec<(Uuid, NaiveDate, String)> =
        sqlx::query_as("SELECT task_id, due_date, status FROM tasks WHERE task_id = ANY($1)")
            .bind(&ids)
            .fetch_all(pool)
            .await?;
    let by_id: HashMap<Uuid, (NaiveDate, String)> = rows.into_iter().map(|(id, d, s)| (id, (d, s))).collect();
    Ok(run
        .started
        .steps
        .iter()
        .zip(&run.due_dates)
        .map(|(step, due)| match by_id.get(&step.task_id) {
            Some((day, status)) => (*day, matches!(status.as_str(), "pending" | "in_progress")),
            None => (*due, true),
        })
        .collect())
}

/// `POST /api/v1/playbooks`.
pub(super) async fn create(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<SavePlaybook>,
) -> Answer {
    body.playbook_id = Uuid::now_v7();
    let id = body.playbook_id;
    run(
        &app.playbooks,
        &id.to_string(),
        PlaybookCommand::Save(body),
        &context,
        Reply::created("playbook_id", id),
    )
    .await
}

/// `PUT /api/v1/playbooks/{id}`: a new version (of a shipped one too).
pub(super) async fn save(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<SavePlaybook>,
) -> Answer {
    let id = path_id(&id, "playbook")?;
    if playbook(&app.pool, id).await.map_err(unavailable)?.is_none() {
        return Err(ApiError::NotFound { entity: "playbook" });
    }
    body.playbook_id = id;
    run(
        &app.playbooks,
        &id.to_string(),
        PlaybookCommand::Save(body),
        &context,
        Reply::OK,
    )
    .await
}

/// `POST /api/v1/playbooks/{id}/retire`.
pub(super) async fn retire(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    _: EmptyBody,
) -> Answer {
    let id = path_id(&id, "playbook")?;
    if playbook(&app.pool, id).await.map_err(unavailable)?.is_none() {
        return Err(ApiError::NotFound { entity: "playbook" });
    }
    run(
        &app.playbooks,
        &id.to_string(),
        PlaybookCommand::Retire { playbook_id: id },
        &context,
        Reply::OK,
    )
    .await
}

/// A run to start: by hand (`occasion` none) or by a rule.
pub struct Start {
    pub playbook_id: Uuid,
    pub customer_id: Uuid,
    /// A rule's occasion (`renewal:<date>`, the alert's id, `onboarding`); none by hand.
    pub occasion: Option<String>,
    pub trigger: String,
    pub why: String,
    pub started_by: String,
    pub start: NaiveDate,
}

#[derive(sqlx::FromRow)]
struct Account {
    name: String,
    csm_id: Uuid,
    renewal_date: NaiveDate,
    contract_start: NaiveDate,
    churned_on: Option<NaiveDate>,
    csm_name: Option<String>,
    csm_user: Option<String>,
    manager_user: Option<String>,
}

/// What a run's append holds: the run's command, the customer commands it brings, and (for a
/// start) the customer and playbook of which one run may be open at a time.
pub struct Planned {
    pub run_id: Uuid,
    command: PlaybookRunCommand,
    tasks: Vec<(Uuid, CustomerCommand)>,
    exclusive: Option<(Uuid, Uuid)>,
}

/// Starts a run of the playbook in force on the customer: its steps become tasks in the same
/// transaction, and no second run of the playbook starts on the customer while one is open
/// (`run_open`), nor a second run for the same occasion ever (`already_started`). Answers the
/// run's id.
pub async fn start_run(
    app: &Handlers,
    principal: Option<&Principal>,
    metadata: &HashMap<String, String>,
    start: Start,
) -> Result<Uuid, ExecuteError> {
    let playbook = playbook(&app.pool, start.playbook_id).await.map_err(unavailable)?;
    let planned = plan_run(&app.pool, playbook.as_ref(), start).await?;
    let run_id = planned.run_id;
    together(app, principal, metadata, vec![planned])
        .await
        .map_err(|(_, error)| error)?;
    Ok(run_id)
}

/// The run a start makes, decided from the playbook in force and the customer as the read
/// models have it.
async fn plan_run(
    pool: &sqlx::PgPool,
    playbook: Option<&PlaybookState>,
    start: Start,
) -> Result<Planned, ExecuteError> {
    let Some(playbook) = playbook else {
        return Err(ExecuteError::Rejected(CommandError::invalid(
            "unknown_playbook",
            "playbook_id",
            "no such playbook (or it is retired)",
        )));
    };
    let account: Option<Account> = sqlx::query_as(
        "SELECT p.name, p.csm_id, p.renewal_date, p.contract_start, p.churned_on, d.name AS csm_name,
                (SELECT np.user_id FROM notification_preferences np WHERE np.csm_id = p.csm_id
                  ORDER BY np.user_id LIMIT 1) AS csm_user,
                (SELECT np.user_id FROM notification_preferences np
                  WHERE np.role = 'manager' AND np.team = d.team ORDER BY np.user_id LIMIT 1) AS manager_user
           FROM customer_profiles p LEFT JOIN csm_directory d ON d.csm_id = p.csm_id
          WHERE p.customer_id = $1",
    )
    .bind(start.customer_id)
    .fetch_optional(pool)
    .await
    .map_err(unavailable)?;
    let Some(account) = account else {
        return Err(ExecuteError::Rejected(CommandError::NotFound { entity: "customer" }));
    };
    if account.churned_on.is_some() {
        return Err(ExecuteError::Rejected(CommandError::conflict(
            "churned",
            "this customer has churned",
        )));
    }
    let run_id = match &start.occasion {
        Some(occasion) => rule_run_id(start.playbook_id, start.customer_id, occasion),
        None => Uuid::now_v7(),
    };
    let csm_assignee = account.csm_user.clone().unwrap_or_else(|| account.csm_id.to_string());
    let starter = if start.started_by == "system" {
        csm_assignee.clone()
    } else {
        start.started_by.clone()
    };
    let csm_name = account.csm_name.clone().unwrap_or_else(|| "your CSM".to_owned());
    let days = due_dates(
        &playbook.steps,
        Anchors {
            start: start.start,
            renewal_date: account.renewal_date,
            contract_start: account.contract_start,
        },
    );
    let count = playbook.steps.len();
    let steps: Vec<RunStep> = playbook
        .steps
        .iter()
        .zip(days)
        .enumerate()
        .map(|(index, (step, due_date))| {
            let mut description = step.description.clone();
            let filled = fill(&step.template, &account.name, &csm_name, account.renewal_date);
            if !filled.is_empty() {
                if !description.is_empty() {
                    description.push_str("\n\n");
                }
                description.push_str(&filled);
            }
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(&format!(
                "Step {} of {count} of the playbook \u{201c}{}\u{201d}.",
                index + 1,
                playbook.name
            ));
            // A task's description holds 5,000 characters: a long filled template is cut there.
            if description.chars().count() > 5000 {
                description = description.chars().take(4999).collect::<String>() + "\u{2026}";
            }
            RunStep {
                title: step.title.clone(),
                description,
                owner: step.owner,
                anchor: step.anchor,
                offset_days: step.offset_days,
                kind: step.kind,
                priority: step.priority,
                task_id: step_task_id(run_id, index),
                assignee_id: match step.owner {
                    StepOwner::Csm => csm_assignee.clone(),
                    StepOwner::Manager => account.manager_user.clone().unwrap_or_else(|| starter.clone()),
                    StepOwner::Starter => starter.clone(),
                },
                due_date,
            }
        })
        .collect();
    let tasks: Vec<(Uuid, CustomerCommand)> = steps
        .iter()
        .map(|step| {
            (
                start.customer_id,
                CustomerCommand::CreateTask(CreateTask {
                    task_id: Some(step.task_id),
                    title: step.title.clone(),
                    description: step.description.clone(),
                    kind: step.kind,
                    priority: step.priority,
                    assignee_id: step.assignee_id.clone(),
                    due_date: step.due_date,
                    parent_task_id: None,
                    depends_on: Vec::new(),
                }),
            )
        })
        .collect();
    let command = PlaybookRunCommand::Start(Box::new(PlaybookRunStarted {
        run_id,
        playbook_id: playbook.playbook_id,
        playbook_version: playbook.version,
        playbook_name: playbook.name.clone(),
        customer_id: start.customer_id,
        trigger: start.trigger,
        occasion: start.occasion.unwrap_or_else(|| format!("manual:{run_id}")),
        why: start.why,
        started_by: start.started_by,
        exit_when_not_at_risk: playbook.exit_when_not_at_risk,
        steps,
        occurred_at: Utc::now(),
    }));
    Ok(Planned {
        run_id,
        command,
        tasks,
        exclusive: Some((start.customer_id, start.playbook_id)),
    })
}

/// Decides each run's command and the customer commands it brings, and appends them all in one
/// transaction or none (retried on a concurrent change); a refusal names the run by its index.
/// A start first takes its customer's playbook lock and is refused (`run_open`) while a run of
/// that playbook is open on the customer.
async fn together(
    app: &Handlers,
    principal: Option<&Principal>,
    metadata: &HashMap<String, String>,
    planned: Vec<Planned>,
) -> Result<(), (usize, ExecuteError)> {
    let at = |index: usize| move |error: ExecuteError| (index, error);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut runs = app.playbook_runs.batch();
        let mut customers = app.customers.batch();
        for (index, plan) in planned.iter().enumerate() {
            runs.decide(
                &plan.run_id.to_string(),
                false,
                plan.command.clone(),
                principal,
                metadata,
            )
            .await
            .map_err(at(index))?;
            for (step, (customer_id, task)) in plan.tasks.iter().enumerate() {
                customers
                    .decide(&customer_id.to_string(), false, task.clone(), principal, metadata)
                    .await
                    .map_err(|error| match error {
                        ExecuteError::Rejected(rejection) => {
                            ExecuteError::Rejected(rejection.within(&format!("steps[{step}]")))
                        }
                        other => other,
                    })
                    .map_err(at(index))?;
            }
        }
        let mut tx = app.pool.begin().await.map_err(unavailable).map_err(at(0))?;
        let mut exclusive: Vec<(usize, (Uuid, Uuid))> = planned
            .iter()
            .enumerate()
            .filter_map(|(index, plan)| Some((index, plan.exclusive?)))
            .collect();
        // In one order, so that two appends never wait on each other.
        exclusive.sort_by_key(|(_, (customer, _))| *customer);
        for (index, (customer_id, playbook_id)) in exclusive {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('playbook:' || $1, 0))")
                .bind(customer_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(unavailable)
                .map_err(at(index))?;
            if open_run(&mut tx, customer_id, playbook_id)
                .await
                .map_err(unavailable)
                .map_err(at(index))?
            {
                return Err((
                    index,
                    ExecuteError::Rejected(CommandError::conflict(
                        "run_open",
                        "a run of this playbook is open on this customer",
                    )),
                ));
            }
        }
        let appends = runs.appends();
        let appended = match runs.append(&mut tx).await {
            Ok(_) => customers.append(&mut tx).await.map(drop),
            Err(error) => Err(error),
        };
        match appended {
            Err(ExecuteError::Conflict) if attempt < 3 => continue,
            Err(error) => return Err((0, error)),
            Ok(()) => {
                tx.commit().await.map_err(unavailable).map_err(at(0))?;
                appends.committed();
                return Ok(());
            }
        }
    }
}

/// Whether a run of the playbook is open on the customer.
async fn open_run(db: &mut sqlx::PgConnection, customer_id: Uuid, playbook_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events s
                         WHERE s.aggregate_type = $1 AND s.sequence = 1
                           AND s.payload->'PlaybookRunStarted'->>'customer_id' = $2
                           AND s.payload->'PlaybookRunStarted'->>'playbook_id' = $3
                           AND NOT EXISTS (SELECT 1 FROM events e
                                            WHERE e.aggregate_type = $1 AND e.aggregate_id = s.aggregate_id
                                              AND e.event_type = 'PlaybookRunEnded'))",
    )
    .bind(PlaybookRunEvent::STREAM_TYPE)
    .bind(customer_id.to_string())
    .bind(playbook_id.to_string())
    .fetch_one(db)
    .await
}

/// Starting one playbook on many customers (the customer list's bulk action): the customers
/// with a run of it open are left out (`false`); every other start is decided, and with
/// `append`, all appended in one transaction or none. A refusal names `customer_ids[i]`.
pub async fn start_on_many(
    app: &Handlers,
    context: &CommandContext,
    customer_ids: &[Uuid],
    playbook_id: Uuid,
    reason: &str,
    append: bool,
) -> Result<Vec<bool>, ApiError> {
    let why = reason_text(reason, "reason")?;
    let state = playbook(&app.pool, playbook_id).await.map_err(unavailable)?;
    let today = Utc::now().date_naive();
    let mut planned = Vec::new();
    let mut changes = Vec::with_capacity(customer_ids.len());
    let mut db = app.pool.acquire().await.map_err(unavailable)?;
    for (index, customer_id) in customer_ids.iter().enumerate() {
        let named = |error: ExecuteError| -> ApiError {
            match error {
                ExecuteError::Rejected(rejection) => rejection.within(&format!("customer_ids[{index}]")).into(),
                other => other.into(),
            }
        };
        if open_run(&mut db, *customer_id, playbook_id)
            .await
            .map_err(unavailable)?
        {
            changes.push(false);
            continue;
        }
        let start = Start {
            playbook_id,
            customer_id: *customer_id,
            occasion: None,
            trigger: "manual".into(),
            why: why.clone(),
            started_by: context.principal.user_id.clone(),
            start: today,
        };
        planned.push((
            index,
            plan_run(&app.pool, state.as_ref(), start).await.map_err(|e| match e {
                ExecuteError::Rejected(CommandError::Invalid {
                    code: "unknown_playbook",
                    field,
                    message,
                }) => ApiError::validation("unknown_playbook", format!("action.start_playbook.{field}"), message),
                other => named(other),
            })?,
        ));
        changes.push(true);
    }
    drop(db);
    let (indexes, plans): (Vec<usize>, Vec<Planned>) = planned.into_iter().unzip();
    let outcome = if append {
        together(app, Some(&context.principal), &context.metadata.to_map(), plans).await
    } else {
        decide_only(app, &context.principal, &context.metadata.to_map(), &plans).await
    };
    outcome.map_err(|(at, error)| match error {
        ExecuteError::Rejected(rejection) => {
            ApiError::from(rejection.within(&format!("customer_ids[{}]", indexes.get(at).copied().unwrap_or(0))))
        }
        other => other.into(),
    })?;
    Ok(changes)
}

/// Decides every run's commands as [`together`] would, appending nothing.
async fn decide_only(
    app: &Handlers,
    principal: &Principal,
    metadata: &HashMap<String, String>,
    planned: &[Planned],
) -> Result<(), (usize, ExecuteError)> {
    let mut runs = app.playbook_runs.batch();
    let mut customers = app.customers.batch();
    for (index, plan) in planned.iter().enumerate() {
        runs.decide(
            &plan.run_id.to_string(),
            true,
            plan.command.clone(),
            Some(principal),
            metadata,
        )
        .await
        .map_err(|error| (index, error))?;
        for (customer_id, task) in &plan.tasks {
            customers
                .decide(&customer_id.to_string(), false, task.clone(), Some(principal), metadata)
                .await
                .map_err(|error| (index, error))?;
        }
    }
    Ok(())
}

/// Starting a playbook on a customer by hand.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    pub playbook_id: Uuid,
    /// Why it is started, in a sentence (shown on the run).
    #[schemars(length(min = 1, max = 1000), pattern(crate::domain::VISIBLE))]
    pub reason: String,
    /// The day the run starts (its steps count from it); today when absent.
    pub start: Option<NaiveDate>,
}

fn reason_text(text: &str, field: &'static str) -> Result<String, ApiError> {
    Ok(crate::domain::required_text(text, field, 1000)?)
}

/// `POST /api/v1/customers/{id}/playbook-runs`.
pub(super) async fn start(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<StartRun>,
) -> Answer {
    let customer_id = path_id(&id, "customer")?;
    if context.principal.role == Role::Partner {
        return Err(CommandError::Forbidden {
            message: "partners do not run playbooks".into(),
        }
        .into());
    }
    let why = reason_text(&body.reason, "reason")?;
    let run_id = start_run(
        &app,
        Some(&context.principal),
        &context.metadata.to_map(),
        Start {
            playbook_id: body.playbook_id,
            customer_id,
            occasion: None,
            trigger: "manual".into(),
            why,
            started_by: context.principal.user_id.clone(),
            start: body.start.unwrap_or_else(|| Utc::now().date_naive()),
        },
    )
    .await?;
    Ok((axum::http::StatusCode::CREATED, axum::Json(json!({"run_id": run_id}))))
}

/// Moving a step's due day (and the later open steps with it).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveStep {
    /// The step, counted from 0.
    #[schemars(range(min = 0, max = 29))]
    pub step: usize,
    pub due_date: NaiveDate,
    #[schemars(length(min = 1, max = 1000), pattern(crate::domain::VISIBLE))]
    pub reason: String,
}

/// Moves steps of a run: one `PlaybookStepsMoved` and each moved task's new due day, together.
#[allow(clippy::too_many_arguments)]
pub async fn move_steps(
    app: &Handlers,
    principal: Option<&Principal>,
    metadata: &HashMap<String, String>,
    run: &RunState,
    step: usize,
    due_date: NaiveDate,
    reason: String,
    by: String,
) -> Result<(), ExecuteError> {
    let current = steps_now(&app.pool, run).await.map_err(unavailable)?;
    let (days, due_dates) = moved(&current, step, due_date).map_err(|code| {
        ExecuteError::Rejected(match code {
            "step_closed" => CommandError::conflict("step_closed", "this step is closed already"),
            "unchanged" => CommandError::invalid("unchanged", "due_date", "the step is due that day already"),
            _ => CommandError::invalid("out_of_range", "step", "no such step"),
        })
    })?;
    let tasks = due_dates
        .iter()
        .map(|(index, day)| {
            (
                run.started.customer_id,
                CustomerCommand::UpdateTask(UpdateTask {
                    task_id: run.started.steps[*index].task_id,
                    title: None,
                    description: None,
                    kind: None,
                    priority: None,
                    due_date: Some(*day),
                    depends_on: None,
                }),
            )
        })
        .collect();
    let command = PlaybookRunCommand::Move {
        from_step: step,
        days,
        due_dates,
        reason,
        by,
    };
    let planned = Planned {
        run_id: run.started.run_id,
        command,
        tasks,
        exclusive: None,
    };
    together(app, principal, metadata, vec![planned])
        .await
        .map_err(|(_, error)| error)
}

/// `POST /api/v1/playbook-runs/{id}/move`.
pub(super) async fn move_step(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<MoveStep>,
) -> Answer {
    let run_id = path_id(&id, "run")?;
    let run = the_run(&app.pool, run_id).await?;
    let why = reason_text(&body.reason, "reason")?;
    move_steps(
        &app,
        Some(&context.principal),
        &context.metadata.to_map(),
        &run,
        body.step,
        body.due_date,
        why,
        context.principal.user_id.clone(),
    )
    .await?;
    Ok((axum::http::StatusCode::OK, axum::Json(json!({"run_id": run_id}))))
}

/// Ends a run with its outcome, cancelling the steps still open, together.
pub async fn end_run(
    app: &Handlers,
    principal: Option<&Principal>,
    metadata: &HashMap<String, String>,
    run: &RunState,
    outcome: RunOutcome,
    why: String,
    by: String,
) -> Result<(), ExecuteError> {
    let current = steps_now(&app.pool, run).await.map_err(unavailable)?;
    let tasks = run
        .started
        .steps
        .iter()
        .zip(&current)
        .filter(|(_, (_, open))| *open)
        .map(|(step, _)| {
            (
                run.started.customer_id,
                CustomerCommand::CancelTask(CancelTask {
                    task_id: step.task_id,
                    reason: format!("The playbook run ended: {why}"),
                }),
            )
        })
        .collect();
    let command = PlaybookRunCommand::End { outcome, why, by };
    let planned = Planned {
        run_id: run.started.run_id,
        command,
        tasks,
        exclusive: None,
    };
    together(app, principal, metadata, vec![planned])
        .await
        .map_err(|(_, error)| error)
}

/// Ending a run by hand.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRun {
    #[schemars(length(min = 1, max = 1000), pattern(crate::domain::VISIBLE))]
    pub reason: String,
}

/// `POST /api/v1/playbook-runs/{id}/cancel`.
pub(super) async fn cancel(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<CancelRun>,
) -> Answer {
    let run_id = path_id(&id, "run")?;
    let run = the_run(&app.pool, run_id).await?;
    let why = reason_text(&body.reason, "reason")?;
    end_run(
        &app,
        Some(&context.principal),
        &context.metadata.to_map(),
        &run,
        RunOutcome::Cancelled,
        why,
        context.principal.user_id.clone(),
    )
    .await?;
    Ok((axum::http::StatusCode::OK, axum::Json(json!({"run_id": run_id}))))
}
