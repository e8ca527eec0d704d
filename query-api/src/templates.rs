//! Task templates and a customer's recurring tasks (docs/DOMAIN.md section 15), read from their
//! streams in the store: a handful of events, each read as the command side wrote it.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use events::task_template::{periods, TaskRecurrenceEvent, TaskTemplateEvent};
use sqlx::PgPool;
use uuid::Uuid;

use crate::scalars::Date;

#[derive(SimpleObject, Debug, Clone)]
pub struct TemplateSubtaskView {
    pub title: String,
    pub due_offset_days: i32,
}

/// A task template as last saved.
#[derive(SimpleObject, Debug, Clone)]
pub struct TaskTemplateView {
    pub template_id: Uuid,
    pub name: String,
    pub title: String,
    pub description: String,
    /// follow_up, qbr_prep, escalation, onboarding, renewal, general.
    pub kind: String,
    /// low, medium, high, urgent.
    pub priority: String,
    pub due_offset_days: i32,
    pub subtasks: Vec<TemplateSubtaskView>,
    /// How many times it was saved: each save is a version.
    pub version: i64,
    pub saved_at: DateTime<Utc>,
}

fn snake<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Every template not retired, by name.
pub async fn templates(pool: &PgPool) -> Result<Vec<TaskTemplateView>, sqlx::Error> {
    let rows: Vec<(serde_json::Value, i64)> = sqlx::query_as(
        "SELECT payload, sequence FROM events WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence",
    )
    .bind(TaskTemplateEvent::STREAM_TYPE)
    .fetch_all(pool)
    .await?;
    let mut by_id: std::collections::HashMap<Uuid, Option<TaskTemplateView>> = Default::default();
    for (payload, sequence) in rows {
        match serde_json::from_value::<TaskTemplateEvent>(payload) {
            Ok(TaskTemplateEvent::TaskTemplateSaved(saved)) => {
                by_id.insert(
                    saved.template_id,
                    Some(TaskTemplateView {
                        template_id: saved.template_id,
                        name: saved.name,
                        title: saved.title,
                        description: saved.description,
                        kind: snake(&saved.kind),
                        priority: snake(&saved.priority),
                        due_offset_days: saved.due_offset_days,
                        subtasks: saved
                            .subtasks
                            .into_iter()
                            .map(|s| TemplateSubtaskView {
                                title: s.title,
                                due_offset_days: s.due_offset_days,
                            })
                            .collect(),
                        version: sequence,
                        saved_at: saved.occurred_at,
                    }),
                );
            }
            Ok(TaskTemplateEvent::TaskTemplateRetired(retired)) => {
                by_id.insert(retired.template_id, None);
            }
            Err(error) => tracing::warn!(%error, "an unreadable template event was skipped"),
        }
    }
    let mut list: Vec<TaskTemplateView> = by_id.into_values().flatten().collect();
    list.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then(a.template_id.cmp(&b.template_id))
    });
    Ok(list)
}

/// A customer's recurring task.
#[derive(SimpleObject, Debug, Clone)]
pub struct RecurringTask {
    pub recurrence_id: Uuid,
    pub customer_id: Uuid,
    pub title: String,
    pub kind: String,
    pub priority: String,
    pub assignee_id: String,
    /// The RFC 5545 rule of its periods.
    pub rrule: String,
    pub starts: Date,
    pub due_offset_days: i32,
    pub active: bool,
    /// The period that has started (its task is made), and the next.
    pub current_period: Option<Date>,
    pub next_period: Option<Date>,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub stopped_by: Option<String>,
}

/// The customer's recurring tasks, active first, then by title.
pub async fn recurring(
    pool: &PgPool,
    customer_id: Uuid,
    today: chrono::NaiveDate,
) -> Result<Vec<RecurringTask>, sqlx::Error> {
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT e.payload FROM events e
          WHERE e.aggregate_type = $1
            AND e.aggregate_id IN (SELECT s.aggregate_id FROM events s
                                    WHERE s.aggregate_type = $1 AND s.sequence = 1
                                      AND s.payload->'TaskRecurrenceStarted'->>'customer_id' = $2)
          ORDER BY e.aggregate_id, e.sequence",
    )
    .bind(TaskRecurrenceEvent::STREAM_TYPE)
    .bind(customer_id.to_string())
    .fetch_all(pool)
    .await?;
    let mut list: Vec<RecurringTask> = Vec::new();
    for payload in rows {
        match serde_json::from_value::<TaskRecurrenceEvent>(payload) {
            Ok(TaskRecurrenceEvent::TaskRecurrenceStarted(started)) => {
                let (current, next) = periods(&started.rrule, started.starts, today).unwrap_or((None, None));
                list.push(RecurringTask {
                    recurrence_id: started.recurrence_id,
                    customer_id: started.customer_id,
                    title: started.title,
                    kind: snake(&started.kind),
                    priority: snake(&started.priority),
                    assignee_id: started.assignee_id,
                    rrule: started.rrule,
                    starts: Date(started.starts),
                    due_offset_days: started.due_offset_days,
                    active: true,
                    current_period: current.map(Date),
                    next_period: next.map(Date),
                    started_at: started.occurred_at,
                    stopped_at: None,
                    stopped_by: None,
                });
            }
            Ok(TaskRecurrenceEvent::TaskRecurrenceStopped(stopped)) => {
                if let Some(last) = list.last_mut() {
                    last.active = false;
                    last.stopped_at = Some(stopped.occurred_at);
                    last.stopped_by = Some(stopped.stopped_by);
                    last.next_period = None;
                }
            }
            Err(error) => tracing::warn!(%error, "an unreadable recurrence event was skipped"),
        }
    }
    list.sort_by(|a, b| b.active.cmp(&a.active).then(a.title.cmp(&b.title)));
    Ok(list)
}
