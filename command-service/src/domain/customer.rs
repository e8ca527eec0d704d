//! The `Customer` aggregate: everything that happens to one customer is in its stream.
//!
//! The state holds what the next command must be judged against: identity and contract dates,
//! CSM and partners, stakeholders, tasks, partner reports, issues, escalations, adoption and use
//! cases. Activities are not held here (see [`super::Directory`]).

mod activities;
mod commands;
mod partner_reports;
mod success;
mod tasks;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::customer::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use commands::*;

use super::permissions::Operation;
use super::{
    name_text, not_in_future, optional_text, require_change, required_text, CommandError, DomainServices, Guarded,
};

/// Largest ARR accepted: a typo guard, far above any real contract.
const MAX_ARR: i64 = 1_000_000_000_000;
pub(crate) const MAX_LIST_ITEMS: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TaskState {
    Open(TaskStatus),
    Completed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Task {
    state: TaskState,
    assignee_id: String,
    depends_on: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Report {
    partner_id: Uuid,
    submitted: bool,
}

/// What the customer's stream must remember to judge the next command.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Customer {
    id: Option<Uuid>,
    churned: bool,
    csm_id: Option<Uuid>,
    contract_start: Option<NaiveDate>,
    renewal_date: Option<NaiveDate>,
    partners: BTreeSet<Uuid>,
    stakeholders: BTreeSet<Uuid>,
    tasks: BTreeMap<Uuid, Task>,
    reports: BTreeMap<Uuid, Report>,
    /// Issue and escalation ids -> resolved.
    issues: BTreeMap<Uuid, bool>,
    escalations: BTreeMap<Uuid, bool>,
    milestones: BTreeSet<Uuid>,
    adoption_stage: Option<AdoptionStage>,
    use_cases: BTreeMap<String, UseCaseStatus>,
    /// Custom-field values (a field added after older snapshots were taken; none of those
    /// streams had values then).
    #[serde(default)]
    custom_fields: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    retracted: bool,
    /// The tags on the customer, as written.
    #[serde(default)]
    tags: BTreeSet<String>,
    /// The profile fields a profile update compares with; `None` in a snapshot taken before
    /// they were kept, whose stream compares nothing and appends every field sent, as before.
    #[serde(default)]
    profile: Option<Profile>,
}

/// A customer's profile as its events make it: what a profile update compares with (a field
/// set to its value is no change), and what an import compares a row with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub salesforce_id: String,
    pub tier: Option<Tier>,
    pub arr: Decimal,
    pub industry: String,
    pub account_manager: String,
    pub products_owned: Vec<String>,
    pub contract_start: Option<NaiveDate>,
    pub renewal_date: Option<NaiveDate>,
    pub csm_id: Option<Uuid>,
}

impl Profile {
    pub fn apply(&mut self, event: &events::customer::CustomerEvent) {
        use events::customer::CustomerEvent as E;
        match event {
            E::CustomerOnboarded(o) => {
                *self = Profile {
                    name: o.name.clone(),
                    salesforce_id: o.salesforce_id.clone(),
                    tier: Some(o.tier),
                    arr: o.arr,
                    industry: o.industry.clone(),
                    account_manager: o.account_manager.clone(),
                    products_owned: o.products_owned.clone(),
                    contract_start: Some(o.contract_start),
                    renewal_date: Some(o.renewal_date),
                    csm_id: Some(o.csm_id),
                }
            }
            E::CustomerProfileUpdated(u) => {
                let set = |target: &mut String, value: &Option<String>| {
                    if let Some(value) = value {
                        target.clone_from(value);
                    }
                };
                set(&mut self.name, &u.name);
                set(&mut self.salesforce_id, &u.salesforce_id);
                set(&mut self.industry, &u.industry);
                set(&mut self.account_manager, &u.account_manager);
                self.tier = u.tier.or(self.tier);
                self.arr = u.arr.unwrap_or(self.arr);
                if let Some(products) = &u.products_owned {
                    self.products_owned.clone_from(products);
                }
                self.contract_start = u.contract_start.or(self.contract_start);
                self.renewal_date = u.renewal_date.or(self.renewal_date);
            }
            E::CustomerRenewed(r) => {
                self.renewal_date = Some(r.renewal_date);
                self.arr = r.arr.unwrap_or(self.arr);
            }
            E::CsmAssigned(a) => self.csm_id = Some(a.csm_id),
            _ => {}
        }
    }
}

impl Customer {
    /// The customer's id; every command but onboarding needs an onboarded customer.
    fn id(&self) -> Result<Uuid, CommandError> {
        self.id
            .filter(|_| !self.retracted)
            .ok_or(CommandError::NotFound { entity: "customer" })
    }

    /// The custom-field values the stream holds now.
    pub fn custom_fields(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.custom_fields
    }

    fn set_custom_fields(
        &self,
        command: SetCustomFields,
        services: &DomainServices,
    ) -> Result<CustomFieldsSet, CommandError> {
        self.id()?;
        if command.values.is_empty() {
            return Err(CommandError::invalid(
                "empty",
                "values",
                "name at least one custom field",
            ));
        }
        let role = command.role.unwrap_or(events::metadata::Role::Admin);
        let after = command
            .definitions
            .check_change(&self.custom_fields, &command.values, role)
            .map_err(|error| {
                if error.is_forbidden() {
                    CommandError::Forbidden { message: error.message }
                } else {
                    CommandError::Invalid {
                        code: error.code,
                        field: error.field,
                        message: error.message,
                    }
                }
            })?;
        let values: BTreeMap<String, serde_json::Value> = command
            .values
            .keys()
            .map(|key| (key.clone(), after.get(key).cloned().unwrap_or(serde_json::Value::Null)))
            .filter(|(key, value)| self.custom_fields.get(key).unwrap_or(&serde_json::Value::Null) != value)
            .collect();
        require_change(!values.is_empty())?;
        Ok(CustomFieldsSet {
            values,
            occurred_at: services.clock.now(),
        })
    }

    fn ensure_stakeholder(&self, stakeholder_id: Uuid) -> Result<(), CommandError> {
        if self.stakeholders.contains(&stakeholder_id) {
            Ok(())
        } else {
            Err(CommandError::NotFound { entity: "stakeholder" })
        }
    }

    fn onboard(&self, command: OnboardCustomer, services: &DomainServices) -> Result<CustomerOnboarded, CommandError> {
        if self.id.is_some() {
            return Err(CommandError::conflict(
                "already_exists",
                "this customer is already onboarded",
            ));
        }
        let now = services.clock.now();
        if command.renewal_date < command.contract_start {
            return Err(renewal_before_start());
        }
        Ok(CustomerOnboarded {
            customer_id: command.customer_id.unwrap_or_else(Uuid::now_v7),
            name: name_text(&command.name, "name", 200)?,
            salesforce_id: salesforce_id(&command.salesforce_id)?,
            tier: command.tier,
            arr: arr(command.arr)?,
            industry: optional_text(&command.industry, "industry", 100)?,
            account_manager: optional_text(&command.account_manager, "account_manager", 200)?,
            csm_id: command.csm_id,
            products_owned: products(&command.products_owned)?,
            contract_start: command.contract_start,
            renewal_date: command.renewal_date,
            occurred_at: not_in_future(command.occurred_at.unwrap_or(now), now, "occurred_at")?,
        })
    }

    fn update_profile(
        &self,
        command: UpdateProfile,
        services: &DomainServices,
    ) -> Result<CustomerProfileUpdated, CommandError> {
        self.id()?;
        let contract_start = command.contract_start.or(self.contract_start);
        let renewal_date = command.renewal_date.or(self.renewal_date);
        if let (Some(start), Some(renewal)) = (contract_start, renewal_date) {
            if renewal < start {
                return Err(renewal_before_start());
            }
        }
        let mut event = CustomerProfileUpdated {
            name: command
                .name
                .as_deref()
                .map(|name| name_text(name, "name", 200))
                .transpose()?,
            salesforce_id: command.salesforce_id.as_deref().map(salesforce_id).transpose()?,
            tier: command.tier,
            arr: command.arr.map(arr).transpose()?,
            industry: command
                .industry
                .as_deref()
                .map(|text| optional_text(text, "industry", 100))
                .transpose()?,
            account_manager: command
                .account_manager
                .as_deref()
                .map(|text| optional_text(text, "account_manager", 200))
                .transpose()?,
            products_owned: command.products_owned.as_deref().map(products).transpose()?,
            contract_start: command.contract_start,
            renewal_date: command.renewal_date,
            occurred_at: services.clock.now(),
        };
        // A field set to the value it has is no change: only what differs is appended.
        fn keep<T: PartialEq>(value: &mut Option<T>, now: Option<&T>) {
            if value.as_ref().is_some_and(|value| Some(value) == now) {
                *value = None;
            }
        }
        if let Some(profile) = &self.profile {
            keep(&mut event.name, Some(&profile.name));
            keep(&mut event.salesforce_id, Some(&profile.salesforce_id));
            keep(&mut event.tier, profile.tier.as_ref());
            keep(&mut event.arr, Some(&profile.arr));
            keep(&mut event.industry, Some(&profile.industry));
            keep(&mut event.account_manager, Some(&profile.account_manager));
            keep(&mut event.products_owned, Some(&profile.products_owned));
        }
        keep(&mut event.contract_start, self.contract_start.as_ref());
        keep(&mut event.renewal_date, self.renewal_date.as_ref());
        require_change(
            event
                != CustomerProfileUpdated {
                    occurred_at: event.occurred_at,
                    ..Default::default()
                },
        )?;
        Ok(event)
    }

    fn assign_csm(&self, command: AssignCsm, services: &DomainServices) -> Result<CsmAssigned, CommandError> {
        self.id()?;
        if self.csm_id == Some(command.csm_id) {
            return Err(CommandError::invalid(
                "csm_unchanged",
                "csm_id",
                "the customer already has this CSM",
            ));
        }
        let now = services.clock.now();
        Ok(CsmAssigned {
            csm_id: command.csm_id,
            previous_csm_id: self.csm_id,
            reason: required_text(&command.reason, "reason", 1000)?,
            occurred_at: not_in_future(command.occurred_at.unwrap_or(now), now, "occurred_at")?,
        })
    }

    fn assign_partner(
        &self,
        command: AssignPartner,
        services: &DomainServices,
    ) -> Result<PartnerAssigned, CommandError> {
        self.id()?;
        if self.partners.contains(&command.partner_id) {
            return Err(CommandError::conflict(
                "partner_already_assigned",
                "this partner is already assigned",
            ));
        }
        Ok(PartnerAssigned {
            partner_id: command.partner_id,
            occurred_at: services.clock.now(),
        })
    }

    fn unassign_partner(
        &self,
        command: UnassignPartner,
        services: &DomainServices,
    ) -> Result<PartnerUnassigned, CommandError> {
        self.id()?;
        if !self.partners.contains(&command.partner_id) {
            return Err(CommandError::NotFound {
                entity: "partner assignment",
            });
        }
        Ok(PartnerUnassigned {
            partner_id: command.partner_id,
            reason: required_text(&command.reason, "reason", 1000)?,
            occurred_at: services.clock.now(),
        })
    }

    fn add_stakeholder(
        &self,
        command: AddStakeholder,
        services: &DomainServices,
    ) -> Result<StakeholderAdded, CommandError> {
        self.id()?;
        let stakeholder_id = command.stakeholder_id.unwrap_or_else(Uuid::now_v7);
        if self.stakeholders.contains(&stakeholder_id) {
            return Err(CommandError::conflict(
                "stakeholder_exists",
                "a stakeholder with this id already exists",
            ));
        }
        let now = services.clock.now();
        Ok(StakeholderAdded {
            stakeholder_id,
            name: name_text(&command.name, "name", 200)?,
            role: required_text(&command.role, "role", 200)?,
            level: command.level,
            email: email(command.email.as_deref())?,
            occurred_at: not_in_future(command.occurred_at.unwrap_or(now), now, "occurred_at")?,
        })
    }

    fn update_stakeholder(
        &self,
        command: UpdateStakeholder,
        services: &DomainServices,
    ) -> Result<StakeholderUpdated, CommandError> {
        self.id()?;
        self.ensure_stakeholder(command.stakeholder_id)?;
        require_change(
            command.name.is_some() || command.role.is_some() || command.level.is_some() || command.email.is_some(),
        )?;
        Ok(StakeholderUpdated {
            stakeholder_id: command.stakeholder_id,
            name: command
                .name
                .as_deref()
                .map(|name| name_text(name, "name", 200))
                .transpose()?,
            role: command
                .role
                .as_deref()
                .map(|role| required_text(role, "role", 200))
                .transpose()?,
            level: command.level,
            email: email(command.email.as_deref())?,
            occurred_at: services.clock.now(),
        })
    }

    fn remove_stakeholder(
        &self,
        command: RemoveStakeholder,
        services: &DomainServices,
    ) -> Result<StakeholderRemoved, CommandError> {
        self.id()?;
        self.ensure_stakeholder(command.stakeholder_id)?;
        Ok(StakeholderRemoved {
            stakeholder_id: command.stakeholder_id,
            reason: required_text(&command.reason, "reason", 1000)?,
            occurred_at: services.clock.now(),
        })
    }
}

fn renewal_before_start() -> CommandError {
    CommandError::invalid(
        "renewal_before_contract_start",
        "renewal_date",
        "renewal_date must not be before contract_start",
    )
}

fn salesforce_id(value: &str) -> Result<String, CommandError> {
    let value = value.trim();
    if !matches!(value.len(), 15 | 18) || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(CommandError::invalid(
            "invalid_salesforce_id",
            "salesforce_id",
            "salesforce_id must be 15 or 18 alphanumeric characters",
        ));
    }
    Ok(value.to_owned())
}

/// ARR: not negative, at most two decimal places, below the typo guard.
pub(crate) fn arr(value: Decimal) -> Result<Decimal, CommandError> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(CommandError::invalid("negative_arr", "arr", "arr must not be negative"));
    }
    if value.normalize().scale() > 2 {
        return Err(CommandError::invalid(
            "too_many_decimals",
            "arr",
            "arr has at most two decimal places",
        ));
    }
    if value > Decimal::from(MAX_ARR) {
        return Err(CommandError::invalid("out_of_range", "arr", "arr is implausibly large"));
    }
    Ok(value.round_dp(2))
}

fn products(products: &[String]) -> Result<Vec<String>, CommandError> {
    if products.len() > MAX_LIST_ITEMS {
        return Err(CommandError::invalid(
            "too_many",
            "products_owned",
            "at most 50 products",
        ));
    }
    products
        .iter()
        .map(|product| required_text(product, "products_owned", 100))
        .collect()
}

fn email(value: Option<&str>) -> Result<Option<String>, CommandError> {
    match value.map(str::trim).filter(|email| !email.is_empty()) {
        Some(email) if !email.contains('@') => Err(CommandError::invalid(
            "invalid_email",
            "email",
            "email must be an e-mail address",
        )),
        Some(email) => Ok(Some(optional_text(email, "email", 254)?)),
        None => Ok(None),
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

async fn ensure_partner_exists(services: &DomainServices, partner_id: Uuid) -> Result<(), CommandError> {
    match services.directory.partner_exists(partner_id).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(CommandError::invalid(
            "unknown_partner",
            "partner_id",
            format!("no partner organisation is registered with id {partner_id}"),
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
        use CustomerCommand as C;
        use CustomerEvent as E;
        let events: Vec<CustomerEvent> = match command {
            C::Onboard(command) => {
                let csm_id = command.csm_id;
                let event = self.onboard(command, services)?;
                ensure_csm_exists(services, csm_id).await?;
                vec![E::CustomerOnboarded(event)]
            }
            C::UpdateProfile(command) => vec![E::CustomerProfileUpdated(self.update_profile(command, services)?)],
            C::AssignCsm(command) => {
                let csm_id = command.csm_id;
                let event = self.assign_csm(command, services)?;
                ensure_csm_exists(services, csm_id).await?;
                vec![E::CsmAssigned(event)]
            }
            C::AssignPartner(command) => {
                let partner_id = command.partner_id;
                let event = self.assign_partner(command, services)?;
                ensure_partner_exists(services, partner_id).await?;
                vec![E::PartnerAssigned(event)]
            }
            C::UnassignPartner(command) => vec![E::PartnerUnassigned(self.unassign_partner(command, services)?)],
            C::AddStakeholder(command) => vec![E::StakeholderAdded(self.add_stakeholder(command, services)?)],
            C::UpdateStakeholder(command) => vec![E::StakeholderUpdated(self.update_stakeholder(command, services)?)],
            C::RemoveStakeholder(command) => vec![E::StakeholderRemoved(self.remove_stakeholder(command, services)?)],
            C::LogActivity(command) => vec![E::ActivityLogged(self.log_activity(command, services).await?)],
            C::LogActivities(command) => self.log_activities(command, services).await?,
            C::CorrectActivity(command) => vec![E::ActivityCorrected(self.correct_activity(command, services).await?)],
            C::RetractActivity(command) => vec![E::ActivityRetracted(self.retract_activity(command, services).await?)],
            C::RecordHealthScore(command) => vec![E::HealthScoreRecorded(self.record_health_score(command, services)?)],
            C::CreateTask(command) => vec![E::TaskCreated(self.create_task(command, services)?)],
            C::UpdateTask(command) => vec![E::TaskUpdated(self.update_task(command, services)?)],
            C::ReassignTask(command) => vec![E::TaskReassigned(self.reassign_task(command, services)?)],
            C::ChangeTaskStatus(command) => vec![E::TaskStatusChanged(self.change_task_status(command, services)?)],
            C::CompleteTask(command) => vec![E::TaskCompleted(self.complete_task(command, services)?)],
            C::CancelTask(command) => vec![E::TaskCancelled(self.cancel_task(command, services)?)],
            C::DraftPartnerReport(command) => vec![E::PartnerReportDrafted(self.draft_report(command, services)?)],
            C::UpdatePartnerReport(command) => vec![E::PartnerReportUpdated(self.update_report(command, services)?)],
            C::SubmitPartnerReport(command) => vec![E::PartnerReportSubmitted(self.submit_report(command, services)?)],
            C::RecordMilestone(command) => vec![E::MilestoneRecorded(self.record_milestone(command, services)?)],
            C::LogIssue(command) => vec![E::IssueLogged(self.log_issue(command, services)?)],
            C::ResolveIssue(command) => vec![E::IssueResolved(self.resolve_issue(command, services)?)],
            C::RaiseEscalation(command) => vec![E::EscalationRaised(self.raise_escalation(command, services)?)],
            C::ResolveEscalation(command) => vec![E::EscalationResolved(self.resolve_escalation(command, services)?)],
            C::ChangeAdoptionStage(command) => {
                vec![E::AdoptionStageChanged(self.change_adoption_stage(command, services)?)]
            }
            C::ChangeUseCaseStatus(command) => vec![E::UseCaseStatusChanged(self.change_use_case(command, services)?)],
            C::RecordNps(command) => vec![E::NpsRecorded(self.record_nps(command, services)?)],
            C::RecordRenewal(command) => vec![E::CustomerRenewed(self.record_renewal(command, services)?)],
            C::RecordChurn(command) => vec![E::CustomerChurned(self.record_churn(command, services)?)],
            C::SetCustomFields(command) => vec![E::CustomFieldsSet(self.set_custom_fields(command, services)?)],
            C::TagCustomer(command) => {
                self.id()?;
                let tag = name_text(&command.tag, "tag", 40)?;
                if self.tags.iter().any(|t| t.to_lowercase() == tag.to_lowercase()) {
                    return Err(CommandError::conflict(
                        "tag_present",
                        "the customer has this tag already",
                    ));
                }
                vec![E::CustomerTagged(CustomerTagged {
                    tag,
                    occurred_at: services.clock.now(),
                })]
            }
            C::UntagCustomer(command) => {
                self.id()?;
                let wanted = command.tag.trim().to_lowercase();
                let Some(tag) = self.tags.iter().find(|t| t.to_lowercase() == wanted).cloned() else {
                    return Err(CommandError::conflict(
                        "tag_absent",
                        "the customer does not have this tag",
                    ));
                };
                vec![E::CustomerUntagged(CustomerUntagged {
                    tag,
                    reason: optional_text(&command.reason, "reason", 1000)?,
                    occurred_at: services.clock.now(),
                })]
            }
            C::RetractCustomer(command) => {
                self.id()?;
                vec![E::CustomerRetracted(CustomerRetracted {
                    reason: required_text(&command.reason, "reason", 1000)?,
                    occurred_at: services.clock.now(),
                })]
            }
            C::RetractHealthScore(command) => {
                self.id()?;
                vec![E::HealthScoreRetracted(HealthScoreRetracted {
                    sequence: command.sequence,
                    reason: required_text(&command.reason, "reason", 1000)?,
                    occurred_at: services.clock.now(),
                })]
            }
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use CustomerEvent as E;
        if matches!(event, E::CustomerOnboarded(_)) {
            self.profile = Some(Profile::default());
        }
        if let Some(profile) = self.profile.as_mut() {
            profile.apply(&event);
        }
        match event {
            E::CustomerOnboarded(onboarded) => {
                self.id = Some(onboarded.customer_id);
                self.csm_id = Some(onboarded.csm_id);
                self.contract_start = Some(onboarded.contract_start);
                self.renewal_date = Some(onboarded.renewal_date);
            }
            E::CustomerProfileUpdated(updated) => {
                self.contract_start = updated.contract_start.or(self.contract_start);
                self.renewal_date = updated.renewal_date.or(self.renewal_date);
            }
            E::CsmAssigned(assigned) => self.csm_id = Some(assigned.csm_id),
            E::PartnerAssigned(assigned) => {
                self.partners.insert(assigned.partner_id);
            }
            E::PartnerUnassigned(unassigned) => {
                self.partners.remove(&unassigned.partner_id);
            }
            E::StakeholderAdded(added) => {
                self.stakeholders.insert(added.stakeholder_id);
            }
            E::StakeholderRemoved(removed) => {
                self.stakeholders.remove(&removed.stakeholder_id);
            }
            E::TaskCreated(created) => {
                self.tasks.insert(
                    created.task_id,
                    Task {
                        state: TaskState::Open(TaskStatus::Pending),
                        assignee_id: created.assignee_id,
                        depends_on: created.depends_on,
                    },
                );
            }
            E::TaskUpdated(updated) => {
                if let (Some(task), Some(depends_on)) = (self.tasks.get_mut(&updated.task_id), updated.depends_on) {
                    task.depends_on = depends_on;
                }
            }
            E::TaskReassigned(reassigned) => {
                if let Some(task) = self.tasks.get_mut(&reassigned.task_id) {
                    task.assignee_id = reassigned.assignee_id;
                }
            }
            E::TaskStatusChanged(changed) => self.set_task_state(changed.task_id, TaskState::Open(changed.status)),
            E::TaskCompleted(completed) => self.set_task_state(completed.task_id, TaskState::Completed),
            E::TaskCancelled(cancelled) => self.set_task_state(cancelled.task_id, TaskState::Cancelled),
            E::PartnerReportDrafted(drafted) => {
                self.reports.insert(
                    drafted.report_id,
                    Report {
                        partner_id: drafted.partner_id,
                        submitted: false,
                    },
                );
            }
            E::PartnerReportSubmitted(submitted) => {
                if let Some(report) = self.reports.get_mut(&submitted.report_id) {
                    report.submitted = true;
                }
            }
            E::MilestoneRecorded(milestone) => {
                self.milestones.insert(milestone.milestone_id);
            }
            E::IssueLogged(issue) => {
                self.issues.insert(issue.issue_id, false);
            }
            E::IssueResolved(resolved) => {
                self.issues.insert(resolved.issue_id, true);
            }
            E::EscalationRaised(escalation) => {
                self.escalations.insert(escalation.escalation_id, false);
            }
            E::EscalationResolved(resolved) => {
                self.escalations.insert(resolved.escalation_id, true);
            }
            E::AdoptionStageChanged(changed) => self.adoption_stage = Some(changed.stage),
            E::UseCaseStatusChanged(changed) => {
                self.use_cases.insert(changed.use_case, changed.status);
            }
            E::CustomerRenewed(renewed) => {
                self.renewal_date = Some(renewed.renewal_date);
                self.churned = false;
            }
            E::CustomerChurned(_) => self.churned = true,
            E::CustomFieldsSet(set) => {
                for (key, value) in set.values {
                    if value.is_null() {
                        self.custom_fields.remove(&key);
                    } else {
                        self.custom_fields.insert(key, value);
                    }
                }
            }
            E::CustomerRetracted(_) => self.retracted = true,
            E::CustomerTagged(tagged) => {
                self.tags.insert(tagged.tag);
            }
            E::CustomerUntagged(untagged) => {
                self.tags.remove(&untagged.tag);
            }
            E::StakeholderUpdated(_)
            | E::ActivityLogged(_)
            | E::ActivityCorrected(_)
            | E::ActivityRetracted(_)
            | E::HealthScoreRecorded(_)
            | E::PartnerReportUpdated(_)
            | E::NpsRecorded(_)
            | E::HealthScoreRetracted(_) => {}
        }
    }
}

impl Guarded for Customer {
    fn operation(command: &CustomerCommand) -> Operation {
        use CustomerCommand as C;
        match command {
            C::Onboard(_) => Operation::OnboardCustomer,
            C::UpdateProfile(_) => Operation::UpdateProfile,
            C::AssignCsm(_) => Operation::AssignCsm,
            C::AssignPartner(_) => Operation::AssignPartner,
            C::UnassignPartner(_) => Operation::UnassignPartner,
            C::AddStakeholder(_) => Operation::AddStakeholder,
            C::UpdateStakeholder(_) => Operation::UpdateStakeholder,
            C::RemoveStakeholder(_) => Operation::RemoveStakeholder,
            C::LogActivity(log) if log.kind == ActivityKind::Note => Operation::LogNote,
            C::LogActivities(batch) if batch.activities.iter().all(|log| log.kind == ActivityKind::Note) => {
                Operation::LogNote
            }
            C::LogActivity(_) | C::LogActivities(_) => Operation::LogActivity,
            C::CorrectActivity(_) => Operation::CorrectActivity,
            C::RetractActivity(_) => Operation::RetractActivity,
            C::RecordHealthScore(_) => Operation::RecordHealthScore,
            C::CreateTask(_) => Operation::CreateTask,
            C::UpdateTask(_) => Operation::UpdateTask,
            C::ReassignTask(_) => Operation::ReassignTask,
            C::ChangeTaskStatus(_) => Operation::ChangeTaskStatus,
            C::CompleteTask(_) => Operation::CompleteTask,
            C::CancelTask(_) => Operation::CancelTask,
            C::DraftPartnerReport(_) => Operation::DraftPartnerReport,
            C::UpdatePartnerReport(_) => Operation::UpdatePartnerReport,
            C::SubmitPartnerReport(_) => Operation::SubmitPartnerReport,
            C::RecordMilestone(_) => Operation::RecordMilestone,
            C::LogIssue(_) => Operation::LogIssue,
            C::ResolveIssue(_) => Operation::ResolveIssue,
            C::RaiseEscalation(_) => Operation::RaiseEscalation,
            C::ResolveEscalation(_) => Operation::ResolveEscalation,
            C::ChangeAdoptionStage(_) => Operation::ChangeAdoptionStage,
            C::ChangeUseCaseStatus(_) => Operation::ChangeUseCaseStatus,
            C::RecordNps(_) => Operation::RecordNps,
            C::RecordRenewal(_) => Operation::RecordRenewal,
            C::RecordChurn(_) => Operation::RecordChurn,
            C::SetCustomFields(_) => Operation::SetCustomFields,
            C::RetractCustomer(_) => Operation::RetractCustomer,
            C::RetractHealthScore(_) => Operation::RetractHealthScore,
            C::TagCustomer(_) | C::UntagCustomer(_) => Operation::TagCustomers,
        }
    }

    fn admits_partner(&self, partner_id: Uuid) -> bool {
        self.partners.contains(&partner_id)
    }
}

#[cfg(test)]
mod tests;
