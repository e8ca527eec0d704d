//! The `TaskTemplate` and `TaskRecurrence` aggregates (docs/DOMAIN.md section 15): a task
//! template saved (each save a new version) or retired, and a customer's recurring task started
//! or stopped. The tasks themselves are the customer's, made by the ordinary task commands.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::customer::{TaskKind, TaskPriority};
use events::task_template::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::permissions::Operation;
use super::{name_text, optional_text, CommandError, DomainServices, Guarded};

/// A template as saved: a new one, or a new version of one.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveTaskTemplate {
    #[serde(skip)]
    pub template_id: Uuid,
    #[schemars(length(min = 1, max = 100), pattern(super::ONE_LINE))]
    pub name: String,
    #[schemars(length(min = 1, max = 200), pattern(super::VISIBLE))]
    pub title: String,
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub description: String,
    pub kind: TaskKind,
    pub priority: TaskPriority,
    #[schemars(range(min = 0, max = 3650))]
    pub due_offset_days: i32,
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub subtasks: Vec<TemplateSubtask>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskTemplateCommand {
    Save(SaveTaskTemplate),
    Retire { template_id: Uuid },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskTemplate {
    saved: bool,
    retired: bool,
}

fn offset(days: i32, field: &str) -> Result<i32, CommandError> {
    if (0..=3650).contains(&days) {
        Ok(days)
    } else {
        Err(CommandError::invalid(
            "out_of_range",
            field.to_owned(),
            "a due offset is 0 to 3,650 days",
        ))
    }
}

impl Aggregate for TaskTemplate {
    const TYPE: &'static str = TaskTemplateEvent::STREAM_TYPE;
    type Command = TaskTemplateCommand;
    type Event = TaskTemplateEvent;
    type Error = CommandError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let occurred_at = services.clock.now();
        let event = match command {
            TaskTemplateCommand::Save(save) => {
                if self.retired {
                    return Err(CommandError::conflict("retired", "this template is retired"));
                }
                let mut subtasks = Vec::with_capacity(save.subtasks.len());
                for (index, subtask) in save.subtasks.into_iter().enumerate() {
                    let prefix = format!("subtasks[{index}]");
                    subtasks.push(TemplateSubtask {
                        title: super::required_text(&subtask.title, "title", 200).map_err(|e| e.within(&prefix))?,
                        due_offset_days: offset(subtask.due_offset_days, &format!("{prefix}.due_offset_days"))?,
                    });
                }
                TaskTemplateEvent::TaskTemplateSaved(TaskTemplateSaved {
                    template_id: save.template_id,
                    name: name_text(&save.name, "name", 100)?,
                    title: super::required_text(&save.title, "title", 200)?,
                    description: optional_text(&save.description, "description", 5000)?,
                    kind: save.kind,
                    priority: save.priority,
                    due_offset_days: offset(save.due_offset_days, "due_offset_days")?,
                    subtasks,
                    occurred_at,
                })
            }
            TaskTemplateCommand::Retire { template_id } => {
                if !self.saved {
                    return Err(CommandError::NotFound { entity: "template" });
                }
                if self.retired {
                    return Err(CommandError::conflict("retired", "this template is retired"));
                }
                TaskTemplateEvent::TaskTemplateRetired(TaskTemplateRetired {
                    template_id,
                    occurred_at,
                })
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            TaskTemplateEvent::TaskTemplateSaved(_) => self.saved = true,
            TaskTemplateEvent::TaskTemplateRetired(_) => self.retired = true,
        }
    }
}

impl Guarded for TaskTemplate {
    fn operation(_command: &TaskTemplateCommand) -> Operation {
        Operation::ManageTaskTemplates
    }
}

/// A recurring task of a customer.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartTaskRecurrence {
    #[serde(skip)]
    pub recurrence_id: Uuid,
    #[serde(skip)]
    pub customer_id: Uuid,
    #[schemars(length(min = 1, max = 200), pattern(super::VISIBLE))]
    pub title: String,
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub description: String,
    pub kind: TaskKind,
    pub priority: TaskPriority,
    #[schemars(length(min = 1, max = 200), pattern(super::VISIBLE))]
    pub assignee_id: String,
    /// An RFC 5545 rule of days: `FREQ=MONTHLY;BYMONTHDAY=1`, `FREQ=WEEKLY;BYDAY=MO`.
    #[schemars(length(min = 1, max = 500))]
    pub rrule: String,
    pub starts: chrono::NaiveDate,
    #[serde(default)]
    #[schemars(range(min = 0, max = 365))]
    pub due_offset_days: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskRecurrenceCommand {
    Start(StartTaskRecurrence),
    Stop { by: String },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskRecurrence {
    started: bool,
    stopped: bool,
}

impl Aggregate for TaskRecurrence {
    const TYPE: &'static str = TaskRecurrenceEvent::STREAM_TYPE;
    type Command = TaskRecurrenceCommand;
    type Event = TaskRecurrenceEvent;
    type Error = CommandError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let occurred_at = services.clock.now();
        let event = match command {
            TaskRecurrenceCommand::Start(start) => {
                if self.started {
                    return Err(CommandError::conflict(
                        "already_exists",
                        "this recurrence already exists",
                    ));
                }
                let text = start.rrule.trim().trim_start_matches("RRULE:").to_owned();
                let upper = text.to_ascii_uppercase();
                if ["HOURLY", "MINUTELY", "SECONDLY"]
                    .iter()
                    .any(|f| upper.contains(&format!("FREQ={f}")))
                {
                    return Err(CommandError::invalid(
                        "invalid_rrule",
                        "rrule",
                        "a recurring task repeats daily at most",
                    ));
                }
                events::task_template::periods(&text, start.starts, start.starts)
                    .map_err(|message| CommandError::invalid("invalid_rrule", "rrule", message))?;
                if !(0..=365).contains(&start.due_offset_days) {
                    return Err(CommandError::invalid(
                        "out_of_range",
                        "due_offset_days",
                        "a due offset is 0 to 365 days",
                    ));
                }
                TaskRecurrenceEvent::TaskRecurrenceStarted(TaskRecurrenceStarted {
                    recurrence_id: start.recurrence_id,
                    customer_id: start.customer_id,
                    title: super::required_text(&start.title, "title", 200)?,
                    description: optional_text(&start.description, "description", 5000)?,
                    kind: start.kind,
                    priority: start.priority,
                    assignee_id: super::required_text(&start.assignee_id, "assignee_id", 200)?,
                    rrule: text,
                    starts: start.starts,
                    due_offset_days: start.due_offset_days,
                    occurred_at,
                })
            }
            TaskRecurrenceCommand::Stop { by } => {
                if !self.started {
                    return Err(CommandError::NotFound { entity: "recurrence" });
                }
                if self.stopped {
                    return Err(CommandError::conflict("stopped", "this recurrence is already stopped"));
                }
                TaskRecurrenceEvent::TaskRecurrenceStopped(TaskRecurrenceStopped {
                    stopped_by: by,
                    occurred_at,
                })
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            TaskRecurrenceEvent::TaskRecurrenceStarted(_) => self.started = true,
            TaskRecurrenceEvent::TaskRecurrenceStopped(_) => self.stopped = true,
        }
    }
}

impl Guarded for TaskRecurrence {
    fn operation(_command: &TaskRecurrenceCommand) -> Operation {
        Operation::ManageRecurringTasks
    }
}
