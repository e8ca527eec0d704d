//! Activities and health scores.

use std::collections::BTreeSet;

use events::customer::*;
use uuid::Uuid;

use super::{Customer, MAX_LIST_ITEMS};
use crate::domain::customer::commands::*;
use crate::domain::{not_in_future, optional_text, require_change, required_text, CommandError, DomainServices};

/// Most activities in one batch.
pub const MAX_BATCH: usize = 1000;
const MAX_DURATION_MINUTES: u32 = 24 * 60;

impl Customer {
    fn participants(&self, participants: &[Uuid]) -> Result<Vec<Uuid>, CommandError> {
        if participants.len() > MAX_LIST_ITEMS {
            return Err(CommandError::invalid(
                "too_many",
                "participants",
                "at most 50 participants",
            ));
        }
        if let Some(unknown) = participants.iter().find(|id| !self.stakeholders.contains(id)) {
            return Err(CommandError::invalid(
                "unknown_stakeholder",
                "participants",
                format!("stakeholder {unknown} is not a stakeholder of this customer"),
            ));
        }
        let mut participants = participants.to_vec();
        participants.sort_unstable();
        participants.dedup();
        Ok(participants)
    }

    /// Validates one activity without looking anything up.
    fn activity(&self, command: LogActivity, services: &DomainServices) -> Result<ActivityLogged, CommandError> {
        let occurred_at = not_in_future(command.occurred_at, services.clock.now(), "occurred_at")?;
        check_duration(command.duration_minutes)?;
        check_response_time(command.response_time_hours)?;
        Ok(ActivityLogged {
            activity_id: command.activity_id.unwrap_or_else(Uuid::now_v7),
            kind: command.kind,
            direction: command.direction,
            occurred_at,
            duration_minutes: command.duration_minutes,
            participants: self.participants(&command.participants)?,
            response_received: command.response_received,
            response_time_hours: command.response_time_hours,
            subject: optional_text(&command.subject, "subject", 500)?,
            logged_by: optional_text(command.logged_by.as_deref().unwrap_or_default(), "logged_by", 200)?,
        })
    }

    async fn ensure_new_activity(&self, activity_id: Uuid, services: &DomainServices) -> Result<(), CommandError> {
        let customer_id = self.id()?;
        match services.directory.activity(customer_id, activity_id).await {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err(CommandError::conflict(
                "activity_exists",
                "an activity with this id already exists",
            )),
            Err(error) => Err(CommandError::Unavailable(error)),
        }
    }

    /// The activity must exist and not be retracted.
    async fn ensure_live_activity(&self, activity_id: Uuid, services: &DomainServices) -> Result<(), CommandError> {
        let customer_id = self.id()?;
        match services.directory.activity(customer_id, activity_id).await {
            Ok(None) => Err(CommandError::NotFound { entity: "activity" }),
            Ok(Some(record)) if record.retracted => Err(CommandError::conflict(
                "already_retracted",
                "this activity is already retracted",
            )),
            Ok(Some(_)) => Ok(()),
            Err(error) => Err(CommandError::Unavailable(error)),
        }
    }

    pub(super) async fn log_activity(
        &self,
        command: LogActivity,
        services: &DomainServices,
    ) -> Result<ActivityLogged, CommandError> {
        self.id()?;
        // An id this service makes (UUID v7) is new by construction: only a caller's is looked up.
        let supplied = command.activity_id.is_some() && !command.fresh_id;
        let event = self.activity(command, services)?;
        if supplied {
            self.ensure_new_activity(event.activity_id, services).await?;
        }
        Ok(event)
    }

    /// All or nothing: one invalid activity refuses the batch, naming it by index.
    pub(super) async fn log_activities(
        &self,
        command: LogActivities,
        services: &DomainServices,
    ) -> Result<Vec<CustomerEvent>, CommandError> {
        self.id()?;
        if command.activities.is_empty() || command.activities.len() > MAX_BATCH {
            return Err(CommandError::invalid(
                "batch_size",
                "activities",
                format!("a batch holds 1 to {MAX_BATCH} activities"),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut events = Vec::with_capacity(command.activities.len());
        // The ids callers gave, with their index; the ones made here are new by construction.
        let mut supplied = Vec::new();
        for (index, log) in command.activities.into_iter().enumerate() {
            let within = format!("activities[{index}]");
            if let Some(id) = log.activity_id.filter(|_| !log.fresh_id) {
                supplied.push((index, id));
            }
            let event = self.activity(log, services).map_err(|error| error.within(&within))?;
            if !seen.insert(event.activity_id) {
                return Err(CommandError::invalid(
                    "duplicate_activity",
                    format!("{within}.activity_id"),
                    "the batch holds this activity id twice",
                ));
            }
            events.push(event);
        }
        // One lookup for the whole batch; the first activity that exists already is named.
        if supplied.is_empty() {
            return Ok(events.into_iter().map(CustomerEvent::ActivityLogged).collect());
        }
        let ids: Vec<Uuid> = supplied.iter().map(|(_, id)| *id).collect();
        let existing = services
            .directory
            .existing_activities(self.id()?, &ids)
            .await
            .map_err(CommandError::Unavailable)?;
        if let Some(&(index, _)) = supplied.iter().find(|(_, id)| existing.contains(id)) {
            return Err(CommandError::invalid(
                "activity_exists",
                format!("activities[{index}].activity_id"),
                "an activity with this id already exists",
            ));
        }
        Ok(events.into_iter().map(CustomerEvent::ActivityLogged).collect())
    }

    pub(super) async fn correct_activity(
        &self,
        command: CorrectActivity,
        services: &DomainServices,
    ) -> Result<ActivityCorrected, CommandError> {
        self.id()?;
        self.ensure_live_activity(command.activity_id, services).await?;
        let now = services.clock.now();
        check_duration(command.duration_minutes)?;
        check_response_time(command.response_time_hours)?;
        let event = ActivityCorrected {
            activity_id: command.activity_id,
            reason: required_text(&command.reason, "reason", 1000)?,
            kind: command.kind,
            direction: command.direction,
            activity_occurred_at: command
                .occurred_at
                .map(|at| not_in_future(at, now, "occurred_at"))
                .transpose()?,
            duration_minutes: command.duration_minutes,
            participants: command
                .participants
                .as_deref()
                .map(|participants| self.participants(participants))
                .transpose()?,
            response_received: command.response_received,
            response_time_hours: command.response_time_hours,
            subject: command
                .subject
                .as_deref()
                .map(|subject| optional_text(subject, "subject", 500))
                .transpose()?,
            occurred_at: now,
        };
        require_change(
            event.kind.is_some()
                || event.direction.is_some()
                || event.activity_occurred_at.is_some()
                || event.duration_minutes.is_some()
                || event.participants.is_some()
                || event.response_received.is_some()
                || event.response_time_hours.is_some()
                || event.subject.is_some(),
        )?;
        Ok(event)
    }

    pub(super) async fn retract_activity(
        &self,
        command: RetractActivity,
        services: &DomainServices,
    ) -> Result<ActivityRetracted, CommandError> {
        self.id()?;
        self.ensure_live_activity(command.activity_id, services).await?;
        Ok(ActivityRetracted {
            activity_id: command.activity_id,
            reason: required_text(&command.reason, "reason", 1000)?,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn record_health_score(
        &self,
        command: RecordHealthScore,
        services: &DomainServices,
    ) -> Result<HealthScoreRecorded, CommandError> {
        self.id()?;
        if !command.score.is_finite() || !(0.0..=100.0).contains(&command.score) {
            return Err(CommandError::invalid(
                "out_of_range",
                "score",
                "score must be between 0 and 100",
            ));
        }
        let reason = command
            .reason
            .as_deref()
            .map(|reason| optional_text(reason, "reason", 1000))
            .transpose()?;
        let reason = reason.filter(|reason| !reason.is_empty());
        if command.source == HealthSource::Manual && reason.is_none() {
            return Err(CommandError::invalid(
                "reason_required",
                "reason",
                "a manual health score needs a reason",
            ));
        }
        if command.risk_factors.len() > MAX_LIST_ITEMS {
            return Err(CommandError::invalid(
                "too_many",
                "risk_factors",
                "at most 50 risk factors",
            ));
        }
        let risk_factors = command
            .risk_factors
            .iter()
            .map(|factor| {
                if factor.weight.is_some_and(|weight| !weight.is_finite() || weight < 0.0) {
                    return Err(CommandError::invalid(
                        "out_of_range",
                        "risk_factors",
                        "a weight is a non-negative number",
                    ));
                }
                Ok(RiskFactor {
                    name: required_text(&factor.name, "risk_factors", 200)?,
                    weight: factor.weight,
                })
            })
            .collect::<Result<_, _>>()?;
        let now = services.clock.now();
        Ok(HealthScoreRecorded {
            score: command.score,
            source: command.source,
            reason,
            risk_factors,
            measured_at: not_in_future(command.measured_at.unwrap_or(now), now, "measured_at")?,
        })
    }
}

fn check_duration(minutes: Option<u32>) -> Result<(), CommandError> {
    if minutes.is_some_and(|minutes| minutes > MAX_DURATION_MINUTES) {
        return Err(CommandError::invalid(
            "out_of_range",
            "duration_minutes",
            "duration_minutes is at most 1440",
        ));
    }
    Ok(())
}

/// The longest response time an activity may record: a year.
const MAX_RESPONSE_HOURS: f64 = 8_760.0;

fn check_response_time(hours: Option<f64>) -> Result<(), CommandError> {
    if hours.is_some_and(|hours| !hours.is_finite() || !(0.0..=MAX_RESPONSE_HOURS).contains(&hours)) {
        return Err(CommandError::invalid(
            "out_of_range",
            "response_time_hours",
            "response_time_hours must be a non-negative number of hours, at most 8760 (a year)",
        ));
    }
    Ok(())
}
