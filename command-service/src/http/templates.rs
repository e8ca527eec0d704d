//! Task templates and recurring tasks (docs/DOMAIN.md section 15): save, version and retire a
//! template; make a customer's task and its subtasks from one, all in one append; start and stop
//! a customer's recurring task (the scheduler makes each period's task).

use axum::extract::{Path, State};
use chrono::{Duration, NaiveDate, Utc};
use events::task_template::{TaskTemplateEvent, TaskTemplateSaved};
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{CommandContext, JsonBody};
use super::{path_id, run, Answer, AppState, Reply};
use crate::domain::customer::{CreateTask, CustomerCommand};
use crate::domain::templates::*;
use crate::store::ExecuteError;

fn unavailable(error: sqlx::Error) -> ApiError {
    ExecuteError::from_database(&error).into()
}

/// The template as last saved, unless retired.
pub async fn template(pool: &sqlx::PgPool, template_id: Uuid) -> Result<Option<TaskTemplateSaved>, sqlx::Error> {
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT payload FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
    )
    .bind(TaskTemplateEvent::STREAM_TYPE)
    .bind(template_id.to_string())
    .fetch_all(pool)
    .await?;
    let mut saved = None;
    for payload in rows {
        match serde_json::from_value::<TaskTemplateEvent>(payload) {
            Ok(TaskTemplateEvent::TaskTemplateSaved(event)) => saved = Some(event),
            Ok(TaskTemplateEvent::TaskTemplateRetired(_)) => saved = None,
            Err(_) => {}
        }
    }
    Ok(saved)
}

/// `POST /api/v1/task-templates`.
pub(super) async fn create(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<SaveTaskTemplate>,
) -> Answer {
    body.template_id = Uuid::now_v7();
    let id = body.template_id;
    run(
        &app.task_templates,
        &id.to_string(),
        TaskTemplateCommand::Save(body),
        &context,
        Reply::created("template_id", id),
    )
    .await
}

/// `PUT /api/v1/task-templates/{id}`: a new version of a template.
pub(super) async fn save(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<SaveTaskTemplate>,
) -> Answer {
    let id = path_id(&id, "template")?;
    if template(&app.pool, id).await.map_err(unavailable)?.is_none() {
        return Err(ApiError::NotFound { entity: "template" });
    }
    body.template_id = id;
    run(
        &app.task_templates,
        &id.to_string(),
        TaskTemplateCommand::Save(body),
        &context,
        Reply::OK,
    )
    .await
}

/// `POST /api/v1/task-templates/{id}/retire`.
pub(super) async fn retire(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    _: super::extract::EmptyBody,
) -> Answer {
    let id = path_id(&id, "template")?;
    run(
        &app.task_templates,
        &id.to_string(),
        TaskTemplateCommand::Retire { template_id: id },
        &context,
        Reply::OK,
    )
    .await
}

/// A task (and its subtasks) made from a template.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FromTemplate {
    pub template_id: Uuid,
    #[schemars(length(min = 1, max = 200), pattern(crate::domain::VISIBLE))]
    pub assignee_id: String,
    /// The day the due offsets count from; today when absent.
    pub start: Option<NaiveDate>,
}

/// `POST /api/v1/customers/{id}/tasks/from-template`: the parent task and its subtasks, in one
/// append (all or nothing), each as the task commands make them.
pub(super) async fn from_template(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<FromTemplate>,
) -> Answer {
    let customer_id = path_id(&id, "customer")?;
    let Some(template) = template(&app.pool, body.template_id).await.map_err(unavailable)? else {
        return Err(ApiError::validation(
            "unknown_template",
            "template_id",
            "no such template",
        ));
    };
    let start = body.start.unwrap_or_else(|| Utc::now().date_naive());
    let parent = Uuid::now_v7();
    let task = |task_id: Uuid, title: &str, description: &str, offset: i32, parent_task_id: Option<Uuid>| {
        CustomerCommand::CreateTask(CreateTask {
            task_id: Some(task_id),
            title: title.to_owned(),
            description: description.to_owned(),
            kind: template.kind,
            priority: template.priority,
            assignee_id: body.assignee_id.clone(),
            due_date: start + Duration::days(i64::from(offset)),
            parent_task_id,
            depends_on: Vec::new(),
        })
    };
    let mut commands = vec![(
        customer_id,
        task(
            parent,
            &template.title,
            &template.description,
            template.due_offset_days,
            None,
        ),
    )];
    let mut subtasks = Vec::new();
    for subtask in &template.subtasks {
        let id = Uuid::now_v7();
        subtasks.push(id);
        commands.push((
            customer_id,
            task(id, &subtask.title, "", subtask.due_offset_days, Some(parent)),
        ));
    }
    super::bulk::decide_all(&app, &context, commands, "tasks", |_| false).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(serde_json::json!({"task_id": parent, "subtask_ids": subtasks, "template_id": body.template_id})),
    ))
}

/// `POST /api/v1/customers/{id}/recurring-tasks`.
pub(super) async fn start_recurrence(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<StartTaskRecurrence>,
) -> Answer {
    let customer_id = path_id(&id, "customer")?;
    super::focus::visible(&app, &context, &customer_id.to_string()).await?;
    body.recurrence_id = Uuid::now_v7();
    body.customer_id = customer_id;
    let id = body.recurrence_id;
    run(
        &app.recurrences,
        &id.to_string(),
        TaskRecurrenceCommand::Start(body),
        &context,
        Reply::created("recurrence_id", id),
    )
    .await
}

/// `POST /api/v1/recurring-tasks/{id}/stop`.
pub(super) async fn stop_recurrence(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    _: super::extract::EmptyBody,
) -> Answer {
    let id = path_id(&id, "recurrence")?;
    let by = context.principal.user_id.clone();
    run(
        &app.recurrences,
        &id.to_string(),
        TaskRecurrenceCommand::Stop { by },
        &context,
        Reply::OK,
    )
    .await
}
