//! Events of the `TaskTemplate` streams (one per template) and the `TaskRecurrence` streams (one
//! per recurring task of a customer): docs/DOMAIN.md section 15. A template is what a task and its
//! subtasks look like, due a number of days after the day it is used; a recurrence makes a task
//! of a customer once per period of an RFC 5545 rule, never twice for the same period.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::customer::{TaskKind, TaskPriority};

/// A subtask of a template: its title and when it is due, in days after the day the template is
/// used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSubtask {
    #[schemars(length(min = 1, max = 200), pattern(r"^[^\u0000]*[^\s\u0000][^\u0000]*$"))]
    pub title: String,
    #[schemars(range(min = 0, max = 3650))]
    pub due_offset_days: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskTemplateSaved {
    pub template_id: Uuid,
    pub name: String,
    pub title: String,
    pub description: String,
    pub kind: TaskKind,
    pub priority: TaskPriority,
    pub due_offset_days: i32,
    pub subtasks: Vec<TemplateSubtask>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskTemplateRetired {
    pub template_id: Uuid,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskTemplateEvent {
    TaskTemplateSaved(TaskTemplateSaved),
    TaskTemplateRetired(TaskTemplateRetired),
}

impl TaskTemplateEvent {
    pub const STREAM_TYPE: &'static str = "TaskTemplate";
}

impl DomainEvent for TaskTemplateEvent {
    fn event_type(&self) -> String {
        match self {
            TaskTemplateEvent::TaskTemplateSaved(_) => "TaskTemplateSaved",
            TaskTemplateEvent::TaskTemplateRetired(_) => "TaskTemplateRetired",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskRecurrenceStarted {
    pub recurrence_id: Uuid,
    pub customer_id: Uuid,
    pub title: String,
    pub description: String,
    pub kind: TaskKind,
    pub priority: TaskPriority,
    pub assignee_id: String,
    /// An RFC 5545 `RRULE` of days (`FREQ=MONTHLY;BYMONTHDAY=1`): each occurrence starts a period.
    pub rrule: String,
    pub starts: NaiveDate,
    /// Each period's task is due this many days after the period starts.
    pub due_offset_days: i32,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskRecurrenceStopped {
    pub stopped_by: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskRecurrenceEvent {
    TaskRecurrenceStarted(TaskRecurrenceStarted),
    TaskRecurrenceStopped(TaskRecurrenceStopped),
}

impl TaskRecurrenceEvent {
    pub const STREAM_TYPE: &'static str = "TaskRecurrence";
}

impl DomainEvent for TaskRecurrenceEvent {
    fn event_type(&self) -> String {
        match self {
            TaskRecurrenceEvent::TaskRecurrenceStarted(_) => "TaskRecurrenceStarted",
            TaskRecurrenceEvent::TaskRecurrenceStopped(_) => "TaskRecurrenceStopped",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// The task of one period of a recurrence: the same id however often it is asked for.
pub fn period_task_id(recurrence_id: Uuid, period: NaiveDate) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x6373_7472_6163_6b5f_7461_736b_5f72_6563);
    Uuid::new_v5(&NAMESPACE, format!("{recurrence_id}/{period}").as_bytes())
}

/// The periods of a recurrence that start on or before `day` (the last `limit` of them), and the
/// one after: each an occurrence of the rule from `starts`, as days.
pub fn periods(
    rrule: &str,
    starts: NaiveDate,
    day: NaiveDate,
) -> Result<(Option<NaiveDate>, Option<NaiveDate>), String> {
    let start = starts.and_time(chrono::NaiveTime::MIN);
    let after = (starts.and_time(chrono::NaiveTime::MIN) - chrono::Duration::seconds(1)).and_utc();
    let until = (day + chrono::Duration::days(400))
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    let mut current = None;
    let mut next = None;
    let mut from = after;
    loop {
        let batch = crate::reminder::recurrences(rrule, start, "UTC", from, until, 400)?;
        if batch.is_empty() {
            break;
        }
        for at in &batch {
            let period = at.date_naive();
            if period <= day {
                current = Some(period);
            } else {
                next = Some(period);
                return Ok((current, next));
            }
        }
        from = *batch.last().expect("not empty");
    }
    Ok((current, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn the_current_period_and_the_next() {
        let monthly = "FREQ=MONTHLY;BYMONTHDAY=1";
        assert_eq!(
            periods(monthly, day("2026-01-01"), day("2026-12-07")).unwrap(),
            (Some(day("2026-12-01")), Some(day("2027-01-01")))
        );
        assert_eq!(
            periods(monthly, day("2027-01-01"), day("2026-12-07")).unwrap(),
            (None, Some(day("2027-01-01")))
        );
        assert_eq!(
            periods("FREQ=WEEKLY;BYDAY=MO;COUNT=2", day("2026-11-30"), day("2026-12-31")).unwrap(),
            (Some(day("2026-12-07")), None)
        );
        assert_ne!(
            period_task_id(Uuid::nil(), day("2026-12-01")),
            period_task_id(Uuid::nil(), day("2027-01-01"))
        );
    }
}
