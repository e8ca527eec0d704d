//! The `Reminder` aggregate (docs/DOMAIN.md section 13): a user's reminder, or one reminder
//! rule's firings for one customer. It keeps each occurrence's state, so an occurrence fires at
//! most once whoever asks and however often, and a snoozed occurrence holds back the next ones.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::reminder::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::permissions::Operation;
use super::{name_text, optional_text, required_text, CommandError, DomainServices, Guarded, CLOCK_SKEW_SECONDS};

/// Who acts on a reminder: the user, the CSM they are (their notification preferences), and
/// whether they manage (admins and managers act on anyone's reminders).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Acting {
    pub user_id: String,
    pub csm_id: Option<Uuid>,
    pub manages: bool,
}

/// A new reminder for the caller.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleReminder {
    #[serde(skip)]
    pub reminder_id: Uuid,
    #[serde(skip)]
    pub owner_id: String,
    pub customer_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    #[schemars(length(min = 1, max = 200), pattern(super::ONE_LINE))]
    pub title: String,
    #[schemars(length(max = 2000))]
    pub note: Option<String>,
    pub schedule: Schedule,
    /// IANA time zone of the schedule's local times; the caller's preference when absent.
    #[serde(default)]
    pub time_zone: Option<String>,
}

/// An occurrence that came due (the scheduler's command; no route issues it).
#[derive(Debug, Clone, PartialEq)]
pub struct FireReminder(pub ReminderFired);

/// How long a snooze lasts: a preset, a day (09:00 local), or until something happens.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SnoozeFor {
    Preset(SnoozePreset),
    UntilDate(chrono::NaiveDate),
    Until(SnoozeCondition),
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnoozeReminder {
    #[serde(skip)]
    pub acting: Acting,
    /// The instant a preset or a day ends at, worked out by the route in the caller's time zone.
    #[serde(skip)]
    pub until: Option<DateTime<Utc>>,
    /// The health score when snoozed, for `score_drops` (read by the route).
    #[serde(skip)]
    pub score_now: Option<f64>,
    #[schemars(length(min = 1, max = 200))]
    pub occurrence_key: String,
    #[serde(rename = "for")]
    pub snooze: SnoozeFor,
    #[schemars(length(min = 1, max = 500), pattern(super::VISIBLE))]
    pub reason: String,
}

/// A snooze that ended (the scheduler's command).
#[derive(Debug, Clone, PartialEq)]
pub struct WakeReminder(pub ReminderWoke);

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteReminder {
    #[serde(skip)]
    pub acting: Acting,
    #[schemars(length(min = 1, max = 200))]
    pub occurrence_key: String,
    #[schemars(length(max = 2000))]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DismissReminder {
    #[serde(skip)]
    pub acting: Acting,
    #[schemars(length(min = 1, max = 200))]
    pub occurrence_key: String,
    #[schemars(length(min = 1, max = 500), pattern(super::VISIBLE))]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelReminder {
    #[serde(skip)]
    pub acting: Acting,
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReminderCommand {
    Schedule(ScheduleReminder),
    Fire(FireReminder),
    Snooze(SnoozeReminder),
    Wake(WakeReminder),
    Complete(CompleteReminder),
    Dismiss(DismissReminder),
    Cancel(CancelReminder),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum State {
    Open,
    Snoozed,
    Done,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Reminder {
    scheduled: bool,
    cancelled: bool,
    owner_id: Option<String>,
    csm_id: Option<Uuid>,
    occurrences: BTreeMap<String, State>,
    suppressed: BTreeSet<String>,
}

impl Reminder {
    fn may_act(&self, acting: &Acting) -> Result<(), CommandError> {
        let own = self.owner_id.as_deref() == Some(acting.user_id.as_str())
            || (self.csm_id.is_some() && self.csm_id == acting.csm_id);
        if own || acting.manages {
            Ok(())
        } else {
            Err(CommandError::Forbidden {
                message: "this reminder is another user's".into(),
            })
        }
    }

    fn occurrence(&self, key: &str) -> Result<State, CommandError> {
        self.occurrences
            .get(key)
            .copied()
            .ok_or(CommandError::NotFound { entity: "occurrence" })
    }

    fn exists(&self) -> Result<(), CommandError> {
        if self.scheduled || !self.occurrences.is_empty() {
            Ok(())
        } else {
            Err(CommandError::NotFound { entity: "reminder" })
        }
    }
}

fn not_done(state: State) -> Result<(), CommandError> {
    if state == State::Done {
        Err(CommandError::conflict(
            "already_done",
            "this occurrence is already completed or dismissed",
        ))
    } else {
        Ok(())
    }
}

/// Checks a schedule against `now` and the time zone.
fn check_schedule(
    schedule: &Schedule,
    zone: &str,
    customer: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    match schedule {
        Schedule::Once { at } => {
            if *at < now - chrono::Duration::seconds(CLOCK_SKEW_SECONDS) {
                return Err(CommandError::invalid(
                    "in_past",
                    "schedule.at",
                    "a one-time reminder is due now or later",
                ));
            }
        }
        Schedule::Recurring { rrule, starts } => {
            check_rrule(rrule, *starts, zone)
                .map_err(|message| CommandError::invalid("invalid_rrule", "schedule.rrule", message))?;
        }
        Schedule::Relative {
            anchor, offset_days, ..
        } => {
            if customer.is_none() {
                return Err(CommandError::invalid(
                    "required",
                    "customer_id",
                    "a reminder relative to a date of the customer names the customer",
                ));
            }
            if !(-3650..=3650).contains(offset_days) {
                return Err(CommandError::invalid(
                    "out_of_range",
                    "schedule.offset_days",
                    "offset_days is at most 3,650 days either way",
                ));
            }
            if let Anchor::CustomField { key } = anchor {
                required_text(key, "schedule.key", 100)?;
            }
        }
    }
    Ok(())
}

impl Aggregate for Reminder {
    const TYPE: &'static str = ReminderEvent::STREAM_TYPE;
    type Command = ReminderCommand;
    type Event = ReminderEvent;
    type Error = CommandError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let now = services.clock.now();
        let event = match command {
            ReminderCommand::Schedule(command) => {
                if self.scheduled || !self.occurrences.is_empty() {
                    return Err(CommandError::conflict("already_exists", "this reminder already exists"));
                }
                let zone = command.time_zone.unwrap_or_else(|| "UTC".into());
                time_zone(&zone).map_err(|message| CommandError::invalid("invalid_time_zone", "time_zone", message))?;
                check_schedule(&command.schedule, &zone, command.customer_id, now)?;
                ReminderEvent::ReminderScheduled(ReminderScheduled {
                    reminder_id: command.reminder_id,
                    owner_id: command.owner_id,
                    customer_id: command.customer_id,
                    task_id: command.task_id,
                    title: name_text(&command.title, "title", 200)?,
                    note: command
                        .note
                        .as_deref()
                        .map(|note| optional_text(note, "note", 2000))
                        .transpose()?
                        .filter(|note| !note.is_empty()),
                    schedule: command.schedule,
                    time_zone: zone,
                    occurred_at: now,
                })
            }
            ReminderCommand::Fire(FireReminder(fired)) => {
                if self.cancelled {
                    return Err(CommandError::conflict("cancelled", "this reminder is cancelled"));
                }
                if !self.scheduled && fired.trigger != Trigger::Rule {
                    return Err(CommandError::NotFound { entity: "reminder" });
                }
                if self.occurrences.contains_key(&fired.occurrence_key)
                    || self.suppressed.contains(&fired.occurrence_key)
                {
                    return Err(CommandError::conflict(
                        "already_fired",
                        "this occurrence has fired already",
                    ));
                }
                let snoozed = self
                    .occurrences
                    .iter()
                    .find(|(_, state)| **state == State::Snoozed)
                    .map(|(key, _)| key.clone());
                match snoozed {
                    Some(snoozed_occurrence) => ReminderEvent::ReminderSuppressed(ReminderSuppressed {
                        occurrence_key: fired.occurrence_key,
                        due_at: fired.due_at,
                        why: format!("held back while the reminder is snoozed: {}", fired.why),
                        snoozed_occurrence,
                        occurred_at: now,
                    }),
                    None => ReminderEvent::ReminderFired(ReminderFired {
                        occurred_at: now,
                        ..fired
                    }),
                }
            }
            ReminderCommand::Snooze(command) => {
                self.exists()?;
                self.may_act(&command.acting)?;
                not_done(self.occurrence(&command.occurrence_key)?)?;
                let reason = required_text(&command.reason, "reason", 500)?;
                let (until, condition) = match command.snooze {
                    SnoozeFor::Preset(_) | SnoozeFor::UntilDate(_) => {
                        let until = command.until.ok_or_else(|| {
                            CommandError::invalid("required", "for", "the snooze's end could not be worked out")
                        })?;
                        if until <= now {
                            return Err(CommandError::invalid("in_past", "for", "a snooze ends in the future"));
                        }
                        (Some(until), None)
                    }
                    SnoozeFor::Until(SnoozeCondition::ScoreDrops { .. }) => {
                        let below = command.score_now.ok_or_else(|| {
                            CommandError::invalid(
                                "no_health_score",
                                "for",
                                "the customer has no health score to drop from",
                            )
                        })?;
                        (None, Some(SnoozeCondition::ScoreDrops { below }))
                    }
                    SnoozeFor::Until(SnoozeCondition::RenewalWithin { days }) => {
                        if !(1..=730).contains(&days) {
                            return Err(CommandError::invalid(
                                "out_of_range",
                                "for.until.days",
                                "days is 1 to 730",
                            ));
                        }
                        (None, Some(SnoozeCondition::RenewalWithin { days }))
                    }
                    SnoozeFor::Until(condition) => (None, Some(condition)),
                };
                ReminderEvent::ReminderSnoozed(ReminderSnoozed {
                    occurrence_key: command.occurrence_key,
                    until,
                    condition,
                    reason,
                    snoozed_by: command.acting.user_id,
                    occurred_at: now,
                })
            }
            ReminderCommand::Wake(WakeReminder(woke)) => {
                if self.occurrence(&woke.occurrence_key)? != State::Snoozed {
                    return Err(CommandError::conflict("not_snoozed", "this occurrence is not snoozed"));
                }
                ReminderEvent::ReminderWoke(ReminderWoke {
                    occurred_at: now,
                    ..woke
                })
            }
            ReminderCommand::Complete(command) => {
                self.exists()?;
                self.may_act(&command.acting)?;
                not_done(self.occurrence(&command.occurrence_key)?)?;
                ReminderEvent::ReminderCompleted(ReminderCompleted {
                    occurrence_key: command.occurrence_key,
                    completed_by: command.acting.user_id,
                    note: command
                        .note
                        .as_deref()
                        .map(|note| optional_text(note, "note", 2000))
                        .transpose()?
                        .filter(|note| !note.is_empty()),
                    occurred_at: now,
                })
            }
            ReminderCommand::Dismiss(command) => {
                self.exists()?;
                self.may_act(&command.acting)?;
                not_done(self.occurrence(&command.occurrence_key)?)?;
                ReminderEvent::ReminderDismissed(ReminderDismissed {
                    occurrence_key: command.occurrence_key,
                    dismissed_by: command.acting.user_id,
                    reason: required_text(&command.reason, "reason", 500)?,
                    occurred_at: now,
                })
            }
            ReminderCommand::Cancel(command) => {
                if !self.scheduled {
                    return Err(CommandError::NotFound { entity: "reminder" });
                }
                self.may_act(&command.acting)?;
                if self.cancelled {
                    return Err(CommandError::conflict(
                        "cancelled",
                        "this reminder is already cancelled",
                    ));
                }
                ReminderEvent::ReminderCancelled(ReminderCancelled {
                    cancelled_by: command.acting.user_id,
                    reason: command
                        .reason
                        .as_deref()
                        .map(|reason| optional_text(reason, "reason", 500))
                        .transpose()?
                        .filter(|reason| !reason.is_empty()),
                    occurred_at: now,
                })
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ReminderEvent::ReminderScheduled(scheduled) => {
                self.scheduled = true;
                self.owner_id = Some(scheduled.owner_id);
            }
            ReminderEvent::ReminderFired(fired) => {
                if self.owner_id.is_none() {
                    self.owner_id = fired.owner_id;
                }
                if self.csm_id.is_none() {
                    self.csm_id = fired.csm_id;
                }
                self.occurrences.insert(fired.occurrence_key, State::Open);
            }
            ReminderEvent::ReminderSuppressed(suppressed) => {
                self.suppressed.insert(suppressed.occurrence_key);
            }
            ReminderEvent::ReminderSnoozed(snoozed) => {
                self.occurrences.insert(snoozed.occurrence_key, State::Snoozed);
            }
            ReminderEvent::ReminderWoke(woke) => {
                self.occurrences.insert(woke.occurrence_key, State::Open);
            }
            ReminderEvent::ReminderCompleted(ReminderCompleted { occurrence_key, .. })
            | ReminderEvent::ReminderDismissed(ReminderDismissed { occurrence_key, .. }) => {
                self.occurrences.insert(occurrence_key, State::Done);
            }
            ReminderEvent::ReminderCancelled(_) => self.cancelled = true,
        }
    }
}

impl Guarded for Reminder {
    fn operation(_command: &ReminderCommand) -> Operation {
        Operation::ManageReminders
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::domain::fixed;

    fn now() -> DateTime<Utc> {
        fixed::NOW.parse().unwrap()
    }

    fn fired(key: &str) -> ReminderFired {
        ReminderFired {
            reminder_id: Uuid::nil(),
            occurrence_key: key.into(),
            trigger: Trigger::Rule,
            rule: None,
            customer_id: Some(Uuid::nil()),
            owner_id: None,
            csm_id: Some(Uuid::from_u128(7)),
            title: "No contact in 14 days".into(),
            due_at: now(),
            why: "no contact since 2026-06-01".into(),
            facts: vec![],
            occurred_at: now(),
        }
    }

    fn csm() -> Acting {
        Acting {
            user_id: "csm-user".into(),
            csm_id: Some(Uuid::from_u128(7)),
            manages: false,
        }
    }

    #[tokio::test]
    async fn an_occurrence_fires_once() {
        TestFramework::<Reminder>::with(fixed::services(vec![]))
            .given(vec![ReminderEvent::ReminderFired(fired("no-contact:a"))])
            .when_async(ReminderCommand::Fire(FireReminder(fired("no-contact:a"))))
            .await
            .then_expect_error_message("this occurrence has fired already");
    }

    #[tokio::test]
    async fn a_snoozed_occurrence_holds_back_the_next_and_says_so() {
        let snoozed = ReminderEvent::ReminderSnoozed(ReminderSnoozed {
            occurrence_key: "no-contact:a".into(),
            until: None,
            condition: Some(SnoozeCondition::CustomerReplies),
            reason: "waiting on their legal team".into(),
            snoozed_by: "csm-user".into(),
            occurred_at: now(),
        });
        TestFramework::<Reminder>::with(fixed::services(vec![]))
            .given(vec![ReminderEvent::ReminderFired(fired("no-contact:a")), snoozed])
            .when_async(ReminderCommand::Fire(FireReminder(fired("no-contact:b"))))
            .await
            .then_expect_events(vec![ReminderEvent::ReminderSuppressed(ReminderSuppressed {
                occurrence_key: "no-contact:b".into(),
                due_at: now(),
                snoozed_occurrence: "no-contact:a".into(),
                why: "held back while the reminder is snoozed: no contact since 2026-06-01".into(),
                occurred_at: now(),
            })]);
    }

    #[tokio::test]
    async fn only_its_csm_or_a_manager_acts_on_a_rule_reminder() {
        let complete = |acting: Acting| {
            ReminderCommand::Complete(CompleteReminder {
                acting,
                occurrence_key: "no-contact:a".into(),
                note: None,
            })
        };
        TestFramework::<Reminder>::with(fixed::services(vec![]))
            .given(vec![ReminderEvent::ReminderFired(fired("no-contact:a"))])
            .when_async(complete(Acting {
                user_id: "someone".into(),
                csm_id: Some(Uuid::from_u128(8)),
                manages: false,
            }))
            .await
            .then_expect_error_message("this reminder is another user's");
        TestFramework::<Reminder>::with(fixed::services(vec![]))
            .given(vec![ReminderEvent::ReminderFired(fired("no-contact:a"))])
            .when_async(complete(csm()))
            .await
            .then_expect_events(vec![ReminderEvent::ReminderCompleted(ReminderCompleted {
                occurrence_key: "no-contact:a".into(),
                completed_by: "csm-user".into(),
                note: None,
                occurred_at: now(),
            })]);
    }

    #[tokio::test]
    async fn a_snooze_has_a_reason_and_an_end() {
        let snooze = |reason: &str, until: Option<DateTime<Utc>>| {
            ReminderCommand::Snooze(SnoozeReminder {
                acting: csm(),
                until,
                score_now: None,
                occurrence_key: "no-contact:a".into(),
                snooze: SnoozeFor::Preset(SnoozePreset::OneHour),
                reason: reason.into(),
            })
        };
        TestFramework::<Reminder>::with(fixed::services(vec![]))
            .given(vec![ReminderEvent::ReminderFired(fired("no-contact:a"))])
            .when_async(snooze("  ", Some(now() + chrono::Duration::hours(1))))
            .await
            .then_expect_error_message("reason must not be empty");
        TestFramework::<Reminder>::with(fixed::services(vec![]))
            .given(vec![ReminderEvent::ReminderFired(fired("no-contact:a"))])
            .when_async(snooze("on holiday", Some(now() - chrono::Duration::hours(1))))
            .await
            .then_expect_error_message("a snooze ends in the future");
        TestFramework::<Reminder>::with(fixed::services(vec![]))
            .given(vec![ReminderEvent::ReminderFired(fired("no-contact:a"))])
            .when_async(ReminderCommand::Snooze(SnoozeReminder {
                acting: csm(),
                until: None,
                score_now: None,
                occurrence_key: "no-contact:a".into(),
                snooze: SnoozeFor::Until(SnoozeCondition::ScoreDrops { below: 0.0 }),
                reason: "watching".into(),
            }))
            .await
            .then_expect_error_message("the customer has no health score to drop from");
    }

    #[tokio::test]
    async fn schedules_are_checked() {
        let schedule = |schedule: Schedule, customer_id: Option<Uuid>| {
            ReminderCommand::Schedule(ScheduleReminder {
                reminder_id: Uuid::nil(),
                owner_id: "csm-user".into(),
                customer_id,
                task_id: None,
                title: "Monthly check-in".into(),
                note: None,
                schedule,
                time_zone: Some("Europe/Berlin".into()),
            })
        };
        TestFramework::<Reminder>::with(fixed::services(vec![]))
            .given_no_previous_events()
            .when_async(schedule(
                Schedule::Once {
                    at: now() - chrono::Duration::days(1),
                },
                None,
            ))
            .await
            .then_expect_error_message("a one-time reminder is due now or later");
        TestFramework::<Reminder>::with(fixed::services(vec![]))
            .given_no_previous_events()
            .when_async(schedule(
                Schedule::Relative {
                    anchor: Anchor::RenewalDate,
                    offset_days: -30,
                    at: MORNING,
                },
                None,
            ))
            .await
            .then_expect_error_message("a reminder relative to a date of the customer names the customer");
        TestFramework::<Reminder>::with(fixed::services(vec![]))
            .given_no_previous_events()
            .when_async(schedule(
                Schedule::Recurring {
                    rrule: "FREQ=SOMETIMES".into(),
                    starts: "2026-07-01T09:00:00".parse().unwrap(),
                },
                None,
            ))
            .await
            .then_expect_error(CommandError::invalid(
                "invalid_rrule",
                "schedule.rrule",
                check_rrule("FREQ=SOMETIMES", "2026-07-01T09:00:00".parse().unwrap(), "UTC").unwrap_err(),
            ));
    }
}
