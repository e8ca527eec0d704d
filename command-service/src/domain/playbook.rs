//! The `Playbook` and `PlaybookRun` aggregates (docs/DOMAIN.md section 17): a playbook saved
//! (each save a version) or retired; a run started (its steps, made tasks of the customer in the
//! same append), its later steps moved together, and its end with the outcome and why. What a
//! run's steps are is decided by the HTTP layer or the scheduler from the playbook and the
//! customer; the run's stream keeps it so that nothing about the run changes if the playbook does.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::playbook::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::permissions::Operation;
use super::{name_text, optional_text, CommandError, DomainServices, Guarded};

/// A playbook as saved: a new one, or a new version of one (a shipped one included).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavePlaybook {
    #[serde(skip)]
    pub playbook_id: Uuid,
    #[schemars(length(min = 1, max = 100), pattern(super::ONE_LINE))]
    pub name: String,
    #[serde(default)]
    #[schemars(length(max = 2000))]
    pub description: String,
    pub trigger: PlaybookTrigger,
    /// Whether the trigger starts runs by itself; off by default.
    #[serde(default)]
    pub auto_start: bool,
    /// End a run once the account is no longer at risk (its latest health score is 70 or more).
    #[serde(default)]
    pub exit_when_not_at_risk: bool,
    #[schemars(length(min = 1, max = 30))]
    pub steps: Vec<PlaybookStep>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlaybookCommand {
    Save(SavePlaybook),
    Retire { playbook_id: Uuid },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Playbook {
    saved: bool,
    retired: bool,
}

fn checked_steps(steps: Vec<PlaybookStep>) -> Result<Vec<PlaybookStep>, CommandError> {
    if steps.is_empty() || steps.len() > 30 {
        return Err(CommandError::invalid(
            "out_of_range",
            "steps",
            "a playbook has 1 to 30 steps",
        ));
    }
    let mut checked = Vec::with_capacity(steps.len());
    for (index, step) in steps.into_iter().enumerate() {
        let prefix = format!("steps[{index}]");
        if !(-3650..=3650).contains(&step.offset_days) {
            return Err(CommandError::invalid(
                "out_of_range",
                format!("{prefix}.offset_days"),
                "an offset is -3,650 to 3,650 days",
            ));
        }
        checked.push(PlaybookStep {
            title: super::required_text(&step.title, "title", 200).map_err(|e| e.within(&prefix))?,
            description: optional_text(&step.description, "description", 5000).map_err(|e| e.within(&prefix))?,
            template: optional_text(&step.template, "template", 5000).map_err(|e| e.within(&prefix))?,
            ..step
        });
    }
    Ok(checked)
}

impl Aggregate for Playbook {
    const TYPE: &'static str = PlaybookEvent::STREAM_TYPE;
    type Command = PlaybookCommand;
    type Event = PlaybookEvent;
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
            PlaybookCommand::Save(save) => {
                if self.retired {
                    return Err(CommandError::conflict("retired", "this playbook is retired"));
                }
                if let PlaybookTrigger::RenewalWithin { days } = save.trigger {
                    if !(1..=730).contains(&days) {
                        return Err(CommandError::invalid(
                            "out_of_range",
                            "trigger.days",
                            "a renewal window is 1 to 730 days",
                        ));
                    }
                }
                if save.auto_start && save.trigger == PlaybookTrigger::Manual {
                    return Err(CommandError::invalid(
                        "manual_trigger",
                        "auto_start",
                        "a playbook started only by hand cannot start by itself",
                    ));
                }
                PlaybookEvent::PlaybookSaved(PlaybookSaved {
                    playbook_id: save.playbook_id,
                    name: name_text(&save.name, "name", 100)?,
                    description: optional_text(&save.description, "description", 2000)?,
                    trigger: save.trigger,
                    auto_start: save.auto_start,
                    exit_when_not_at_risk: save.exit_when_not_at_risk,
                    steps: checked_steps(save.steps)?,
                    occurred_at,
                })
            }
            PlaybookCommand::Retire { playbook_id } => {
                if self.retired {
                    return Err(CommandError::conflict("retired", "this playbook is retired"));
                }
                PlaybookEvent::PlaybookRetired(PlaybookRetired {
                    playbook_id,
                    occurred_at,
                })
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PlaybookEvent::PlaybookSaved(_) => self.saved = true,
            PlaybookEvent::PlaybookRetired(_) => self.retired = true,
        }
    }
}

impl Guarded for Playbook {
    fn operation(_command: &PlaybookCommand) -> Operation {
        Operation::ManagePlaybooks
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlaybookRunCommand {
    /// The run as decided from the playbook and the customer (its tasks are appended with it).
    Start(Box<PlaybookRunStarted>),
    /// Step `from_step` and the later open steps moved by `days` (see `events::playbook::moved`).
    Move {
        from_step: usize,
        days: i64,
        due_dates: Vec<(usize, chrono::NaiveDate)>,
        reason: String,
        by: String,
    },
    End {
        outcome: RunOutcome,
        why: String,
        by: String,
    },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PlaybookRun {
    started: bool,
    ended: bool,
    steps: usize,
}

impl Aggregate for PlaybookRun {
    const TYPE: &'static str = PlaybookRunEvent::STREAM_TYPE;
    type Command = PlaybookRunCommand;
    type Event = PlaybookRunEvent;
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
            PlaybookRunCommand::Start(started) => {
                if self.started {
                    return Err(CommandError::conflict(
                        "already_started",
                        "this run has started already",
                    ));
                }
                PlaybookRunEvent::PlaybookRunStarted(PlaybookRunStarted {
                    occurred_at,
                    ..*started
                })
            }
            PlaybookRunCommand::Move {
                from_step,
                days,
                due_dates,
                reason,
                by,
            } => {
                if !self.started {
                    return Err(CommandError::NotFound { entity: "run" });
                }
                if self.ended {
                    return Err(CommandError::conflict("ended", "this run has ended"));
                }
                if from_step >= self.steps || due_dates.iter().any(|(index, _)| *index >= self.steps) {
                    return Err(CommandError::invalid("out_of_range", "step", "no such step"));
                }
                PlaybookRunEvent::PlaybookStepsMoved(PlaybookStepsMoved {
                    from_step,
                    days,
                    due_dates,
                    reason: super::required_text(&reason, "reason", 1000)?,
                    moved_by: by,
                    occurred_at,
                })
            }
            PlaybookRunCommand::End { outcome, why, by } => {
                if !self.started {
                    return Err(CommandError::NotFound { entity: "run" });
                }
                if self.ended {
                    return Err(CommandError::conflict("ended", "this run has ended"));
                }
                PlaybookRunEvent::PlaybookRunEnded(PlaybookRunEnded {
                    outcome,
                    why: super::required_text(&why, "reason", 1000)?,
                    ended_by: by,
                    occurred_at,
                })
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PlaybookRunEvent::PlaybookRunStarted(started) => {
                self.started = true;
                self.steps = started.steps.len();
            }
            PlaybookRunEvent::PlaybookStepsMoved(_) => {}
            PlaybookRunEvent::PlaybookRunEnded(_) => self.ended = true,
        }
    }
}

impl Guarded for PlaybookRun {
    fn operation(_command: &PlaybookRunCommand) -> Operation {
        Operation::RunPlaybooks
    }
}
