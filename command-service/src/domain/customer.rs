//! The `Customer` aggregate: everything that happens to one customer is in its stream.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::customer::{
    ActivityKind, ActivityLogged, ActivityRetracted, CsmAssigned, CustomerEvent, CustomerOnboarded, Direction,
    HealthScoreRecorded, HealthSource, StakeholderAdded, StakeholderLevel, Tier,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{not_in_future, optional_text, required_text, CommandError, DomainServices};

/// Largest ARR accepted: a typo guard, far above any real contract.
const MAX_ARR: i64 = 1_000_000_000_000;
const MAX_LIST_ITEMS: usize = 50;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnboardCustomer {
    pub customer_id: Option<Uuid>,
    pub name: String,
    pub salesforce_id: String,
    pub tier: Tier,
    pub arr: Decimal,
    #[serde(default)]
    pub industry: String,
    #[serde(default)]
    pub account_manager: String,
    pub csm_id: Uuid,
    #[serde(default)]
    pub products_owned: Vec<String>,
    pub contract_start: NaiveDate,
    pub renewal_date: NaiveDate,
    /// Backdated by imports; defaults to now.
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignCsm {
    pub csm_id: Uuid,
    pub reason: String,
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddStakeholder {
    pub stakeholder_id: Option<Uuid>,
    pub name: String,
    pub role: String,
    pub level: StakeholderLevel,
    pub email: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogActivity {
    pub activity_id: Option<Uuid>,
    pub kind: ActivityKind,
    pub direction: Direction,
    pub occurred_at: DateTime<Utc>,
    pub duration_minutes: Option<u32>,
    #[serde(default)]
    pub participants: Vec<Uuid>,
    pub response_received: Option<bool>,
    pub response_time_hours: Option<f64>,
    #[serde(default)]
    pub subject: String,
    /// Defaults to the acting user.
    pub logged_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetractActivity {
    pub activity_id: Uuid,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordHealthScore {
    pub score: f64,
    pub source: HealthSource,
    pub reason: Option<String>,
    #[serde(default)]
    pub risk_factors: Vec<String>,
    pub measured_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CustomerCommand {
    Onboard(OnboardCustomer),
    AssignCsm(AssignCsm),
    AddStakeholder(AddStakeholder),
    LogActivity(LogActivity),
    RetractActivity(RetractActivity),
    RecordHealthScore(RecordHealthScore),
}

/// What the customer's stream must remember to judge the next command.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Customer {
    onboarded: bool,
    csm_id: Option<Uuid>,
    stakeholders: BTreeSet<Uuid>,
    /// Activity id -> retracted.
    activities: BTreeMap<Uuid, bool>,
}

impl Customer {
    fn ensure_onboarded(&self) -> Result<(), CommandError> {
        if self.onboarded {
            Ok(())
        } else {
            Err(CommandError::NotFound { entity: "customer" })
        }
    }

    async fn onboard(
        &self,
        command: OnboardCustomer,
        services: &DomainServices,
    ) -> Result<CustomerEvent, CommandError> {
        if self.onboarded {
            return Err(CommandError::Conflict {
                code: "already_exists",
                message: "this customer is already onboarded".into(),
            });
        }
        let now = services.clock.now();
        let salesforce_id = command.salesforce_id.trim().to_owned();
        if !matches!(salesforce_id.len(), 15 | 18) || !salesforce_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CommandError::invalid(
                "invalid_salesforce_id",
                "salesforce_id",
                "salesforce_id must be 15 or 18 alphanumeric characters",
            ));
        }
        if command.arr.is_sign_negative() && !command.arr.is_zero() {
            return Err(CommandError::invalid("negative_arr", "arr", "arr must not be negative"));
        }
        if command.arr.normalize().scale() > 2 {
            return Err(CommandError::invalid(
                "too_many_decimals",
                "arr",
                "arr has at most two decimal places",
            ));
        }
        if command.arr > Decimal::from(MAX_ARR) {
            return Err(CommandError::invalid("out_of_range", "arr", "arr is implausibly large"));
        }
        if command.renewal_date < command.contract_start {
            return Err(CommandError::invalid(
                "renewal_before_contract_start",
                "renewal_date",
                "renewal_date must not be before contract_start",
            ));
        }
        if command.products_owned.len() > MAX_LIST_ITEMS {
            return Err(CommandError::invalid(
                "too_many",
                "products_owned",
                "at most 50 products",
            ));
        }
        let products_owned = command
            .products_owned
            .iter()
            .map(|product| required_text(product, "products_owned", 100))
            .collect::<Result<_, _>>()?;
        ensure_csm_exists(services, command.csm_id).await?;
        Ok(CustomerEvent::CustomerOnboarded(CustomerOnboarded {
            customer_id: command.customer_id.unwrap_or_else(Uuid::now_v7),
            name: required_text(&command.name, "name", 200)?,
            salesforce_id,
            tier: command.tier,
            arr: command.arr.round_dp(2),
            industry: optional_text(&command.industry, "industry", 100)?,
            account_manager: optional_text(&command.account_manager, "account_manager", 200)?,
            csm_id: command.csm_id,
            products_owned,
            contract_start: command.contract_start,
            renewal_date: command.renewal_date,
            occurred_at: not_in_future(command.occurred_at.unwrap_or(now), now, "occurred_at")?,
        }))
    }

    async fn assign_csm(&self, command: AssignCsm, services: &DomainServices) -> Result<CustomerEvent, CommandError> {
        self.ensure_onboarded()?;
        if self.csm_id == Some(command.csm_id) {
            return Err(CommandError::invalid(
                "csm_unchanged",
                "csm_id",
                "the customer already has this CSM",
            ));
        }
        let reason = required_text(&command.reason, "reason", 1000)?;
        ensure_csm_exists(services, command.csm_id).await?;
        let now = services.clock.now();
        Ok(CustomerEvent::CsmAssigned(CsmAssigned {
            csm_id: command.csm_id,
            previous_csm_id: self.csm_id,
            reason,
            occurred_at: not_in_future(command.occurred_at.unwrap_or(now), now, "occurred_at")?,
        }))
    }

    fn add_stakeholder(
        &self,
        command: AddStakeholder,
        services: &DomainServices,
    ) -> Result<CustomerEvent, CommandError> {
        self.ensure_onboarded()?;
        let stakeholder_id = command.stakeholder_id.unwrap_or_else(Uuid::now_v7);
        if self.stakeholders.contains(&stakeholder_id) {
            return Err(CommandError::Conflict {
                code: "stakeholder_exists",
                message: "a stakeholder with this id already exists".into(),
            });
        }
        let email = match command
            .email
            .as_deref()
            .map(str::trim)
            .filter(|email| !email.is_empty())
        {
            Some(email) if !email.contains('@') => {
                return Err(CommandError::invalid(
                    "invalid_email",
                    "email",
                    "email must be an e-mail address",
                ))
            }
            Some(email) => Some(optional_text(email, "email", 254)?),
            None => None,
        };
        let now = services.clock.now();
        Ok(CustomerEvent::StakeholderAdded(StakeholderAdded {
            stakeholder_id,
            name: required_text(&command.name, "name", 200)?,
            role: required_text(&command.role, "role", 200)?,
            level: command.level,
            email,
            occurred_at: not_in_future(command.occurred_at.unwrap_or(now), now, "occurred_at")?,
        }))
    }

    fn log_activity(&self, command: LogActivity, services: &DomainServices) -> Result<CustomerEvent, CommandError> {
        self.ensure_onboarded()?;
        let activity_id = command.activity_id.unwrap_or_else(Uuid::now_v7);
        if self.activities.contains_key(&activity_id) {
            return Err(CommandError::Conflict {
                code: "activity_exists",
                message: "an activity with this id already exists".into(),
            });
        }
        let occurred_at = not_in_future(command.occurred_at, services.clock.now(), "occurred_at")?;
        if command.duration_minutes.is_some_and(|minutes| minutes > 24 * 60) {
            return Err(CommandError::invalid(
                "out_of_range",
                "duration_minutes",
                "duration_minutes is at most 1440",
            ));
        }
        if command
            .response_time_hours
            .is_some_and(|hours| !hours.is_finite() || hours < 0.0)
        {
            return Err(CommandError::invalid(
                "out_of_range",
                "response_time_hours",
                "response_time_hours must be a non-negative number",
            ));
        }
        if command.participants.len() > MAX_LIST_ITEMS {
            return Err(CommandError::invalid(
                "too_many",
                "participants",
                "at most 50 participants",
            ));
        }
        if let Some(unknown) = command.participants.iter().find(|id| !self.stakeholders.contains(id)) {
            return Err(CommandError::invalid(
                "unknown_stakeholder",
                "participants",
                format!("stakeholder {unknown} is not a stakeholder of this customer"),
            ));
        }
        let mut participants = command.participants;
        participants.sort_unstable();
        participants.dedup();
        Ok(CustomerEvent::ActivityLogged(ActivityLogged {
            activity_id,
            kind: command.kind,
            direction: command.direction,
            occurred_at,
            duration_minutes: command.duration_minutes,
            participants,
            response_received: command.response_received,
            response_time_hours: command.response_time_hours,
            subject: optional_text(&command.subject, "subject", 500)?,
            logged_by: optional_text(command.logged_by.as_deref().unwrap_or_default(), "logged_by", 200)?,
        }))
    }

    fn retract_activity(
        &self,
        command: RetractActivity,
        services: &DomainServices,
    ) -> Result<CustomerEvent, CommandError> {
        self.ensure_onboarded()?;
        match self.activities.get(&command.activity_id) {
            None => return Err(CommandError::NotFound { entity: "activity" }),
            Some(true) => {
                return Err(CommandError::Conflict {
                    code: "already_retracted",
                    message: "this activity is already retracted".into(),
                })
            }
            Some(false) => {}
        }
        Ok(CustomerEvent::ActivityRetracted(ActivityRetracted {
            activity_id: command.activity_id,
            reason: required_text(&command.reason, "reason", 1000)?,
            occurred_at: services.clock.now(),
        }))
    }

    fn record_health_score(
        &self,
        command: RecordHealthScore,
        services: &DomainServices,
    ) -> Result<CustomerEvent, CommandError> {
        self.ensure_onboarded()?;
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
            .map(|factor| required_text(factor, "risk_factors", 200))
            .collect::<Result<_, _>>()?;
        let now = services.clock.now();
        Ok(CustomerEvent::HealthScoreRecorded(HealthScoreRecorded {
            score: command.score,
            source: command.source,
            reason,
            risk_factors,
            measured_at: not_in_future(command.measured_at.unwrap_or(now), now, "measured_at")?,
        }))
    }
}

async fn ensure_csm_exists(services: &DomainServices, csm_id: Uuid) -> Result<(), CommandError> {
    match services.directory.csm_exists(csm_id).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(CommandError::invalid(
            "unknown_csm",
            "csm_id",
            format!("no CSM is registered with id {csm_id}"),
        )),
        Err(error) => Err(CommandError::Unavailable(error)),
    }
}

impl Aggregate for Customer {
    const TYPE: &'static str = CustomerEvent::STREAM_TYPE;
    type Command = CustomerCommand;
    type Event = CustomerEvent;
    type Error = CommandError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            CustomerCommand::Onboard(command) => self.onboard(command, services).await?,
            CustomerCommand::AssignCsm(command) => self.assign_csm(command, services).await?,
            CustomerCommand::AddStakeholder(command) => self.add_stakeholder(command, services)?,
            CustomerCommand::LogActivity(command) => self.log_activity(command, services)?,
            CustomerCommand::RetractActivity(command) => self.retract_activity(command, services)?,
            CustomerCommand::RecordHealthScore(command) => self.record_health_score(command, services)?,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CustomerEvent::CustomerOnboarded(onboarded) => {
                self.onboarded = true;
                self.csm_id = Some(onboarded.csm_id);
            }
            CustomerEvent::CsmAssigned(assigned) => self.csm_id = Some(assigned.csm_id),
            CustomerEvent::StakeholderAdded(added) => {
                self.stakeholders.insert(added.stakeholder_id);
            }
            CustomerEvent::ActivityLogged(logged) => {
                self.activities.insert(logged.activity_id, false);
            }
            CustomerEvent::ActivityRetracted(retracted) => {
                self.activities.insert(retracted.activity_id, true);
            }
            CustomerEvent::HealthScoreRecorded(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
