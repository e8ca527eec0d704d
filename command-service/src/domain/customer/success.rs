//! The usage framework and outcomes: milestones, issues, escalations, adoption stage, use cases,
//! NPS, renewal and churn.

use events::customer::*;
use uuid::Uuid;

use super::{arr, Customer};
use crate::domain::customer::commands::*;
use crate::domain::{not_after_today, not_in_future, optional_text, required_text, CommandError, DomainServices};

/// An issue or escalation that exists and is still open; `entity` names it in errors.
fn ensure_open(
    items: &std::collections::BTreeMap<Uuid, bool>,
    id: Uuid,
    entity: &'static str,
) -> Result<(), CommandError> {
    match items.get(&id) {
        None => Err(CommandError::NotFound { entity }),
        Some(true) => Err(CommandError::conflict(
            if entity == "issue" {
                "issue_already_resolved"
            } else {
                "escalation_already_resolved"
            },
            format!("this {entity} is already resolved"),
        )),
        Some(false) => Ok(()),
    }
}

impl Customer {
    pub(super) fn record_milestone(
        &self,
        command: RecordMilestone,
        services: &DomainServices,
    ) -> Result<MilestoneRecorded, CommandError> {
        self.id()?;
        let milestone_id = command.milestone_id.unwrap_or_else(Uuid::now_v7);
        if self.milestones.contains(&milestone_id) {
            return Err(CommandError::conflict(
                "milestone_exists",
                "a milestone with this id already exists",
            ));
        }
        let now = services.clock.now();
        Ok(MilestoneRecorded {
            milestone_id,
            title: required_text(&command.title, "title", 200)?,
            description: optional_text(&command.description, "description", 5000)?,
            achieved_on: not_after_today(command.achieved_on, now, "achieved_on")?,
            occurred_at: now,
        })
    }

    pub(super) fn log_issue(&self, command: LogIssue, services: &DomainServices) -> Result<IssueLogged, CommandError> {
        self.id()?;
        let issue_id = command.issue_id.unwrap_or_else(Uuid::now_v7);
        if self.issues.contains_key(&issue_id) {
            return Err(CommandError::conflict(
                "issue_exists",
                "an issue with this id already exists",
            ));
        }
        Ok(IssueLogged {
            issue_id,
            title: required_text(&command.title, "title", 200)?,
            description: optional_text(&command.description, "description", 5000)?,
            severity: command.severity,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn resolve_issue(
        &self,
        command: Resolve,
        services: &DomainServices,
    ) -> Result<IssueResolved, CommandError> {
        self.id()?;
        ensure_open(&self.issues, command.id, "issue")?;
        Ok(IssueResolved {
            issue_id: command.id,
            resolution: required_text(&command.resolution, "resolution", 2000)?,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn raise_escalation(
        &self,
        command: RaiseEscalation,
        services: &DomainServices,
    ) -> Result<EscalationRaised, CommandError> {
        self.id()?;
        let escalation_id = command.escalation_id.unwrap_or_else(Uuid::now_v7);
        if self.escalations.contains_key(&escalation_id) {
            return Err(CommandError::conflict(
                "escalation_exists",
                "an escalation with this id already exists",
            ));
        }
        Ok(EscalationRaised {
            escalation_id,
            title: required_text(&command.title, "title", 200)?,
            description: optional_text(&command.description, "description", 5000)?,
            severity: command.severity,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn resolve_escalation(
        &self,
        command: Resolve,
        services: &DomainServices,
    ) -> Result<EscalationResolved, CommandError> {
        self.id()?;
        ensure_open(&self.escalations, command.id, "escalation")?;
        Ok(EscalationResolved {
            escalation_id: command.id,
            resolution: required_text(&command.resolution, "resolution", 2000)?,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn change_adoption_stage(
        &self,
        command: ChangeAdoptionStage,
        services: &DomainServices,
    ) -> Result<AdoptionStageChanged, CommandError> {
        self.id()?;
        if self.adoption_stage == Some(command.stage) {
            return Err(CommandError::invalid(
                "stage_unchanged",
                "stage",
                "the customer is already at this stage",
            ));
        }
        Ok(AdoptionStageChanged {
            stage: command.stage,
            previous_stage: self.adoption_stage,
            notes: optional_text(&command.notes, "notes", 5000)?,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn change_use_case(
        &self,
        command: ChangeUseCaseStatus,
        services: &DomainServices,
    ) -> Result<UseCaseStatusChanged, CommandError> {
        self.id()?;
        let use_case = required_text(&command.use_case, "use_case", 200)?;
        let previous_status = self.use_cases.get(&use_case).copied();
        if previous_status == Some(command.status) {
            return Err(CommandError::invalid(
                "status_unchanged",
                "status",
                "the use case already has this status",
            ));
        }
        Ok(UseCaseStatusChanged {
            use_case,
            status: command.status,
            previous_status,
            notes: optional_text(&command.notes, "notes", 5000)?,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn record_nps(
        &self,
        command: RecordNps,
        services: &DomainServices,
    ) -> Result<NpsRecorded, CommandError> {
        self.id()?;
        if command.score > 10 {
            return Err(CommandError::invalid(
                "out_of_range",
                "score",
                "an NPS score is between 0 and 10",
            ));
        }
        if let Some(stakeholder) = command.stakeholder_id.filter(|id| !self.stakeholders.contains(id)) {
            return Err(CommandError::invalid(
                "unknown_stakeholder",
                "stakeholder_id",
                format!("stakeholder {stakeholder} is not a stakeholder of this customer"),
            ));
        }
        let now = services.clock.now();
        Ok(NpsRecorded {
            score: command.score,
            stakeholder_id: command.stakeholder_id,
            comment: command
                .comment
                .as_deref()
                .map(|comment| optional_text(comment, "comment", 5000))
                .transpose()?,
            occurred_at: not_in_future(command.occurred_at.unwrap_or(now), now, "occurred_at")?,
        })
    }

    pub(super) fn record_renewal(
        &self,
        command: RecordRenewal,
        services: &DomainServices,
    ) -> Result<CustomerRenewed, CommandError> {
        self.id()?;
        let previous = self.renewal_date.ok_or(CommandError::NotFound { entity: "customer" })?;
        if command.renewal_date <= previous {
            return Err(CommandError::invalid(
                "renewal_not_after_current",
                "renewal_date",
                format!("the new renewal date must be after the current one, {previous}"),
            ));
        }
        Ok(CustomerRenewed {
            previous_renewal_date: previous,
            renewal_date: command.renewal_date,
            arr: command.arr.map(arr).transpose()?,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn record_churn(
        &self,
        command: RecordChurn,
        services: &DomainServices,
    ) -> Result<CustomerChurned, CommandError> {
        self.id()?;
        if self.churned {
            return Err(CommandError::conflict(
                "already_churned",
                "this customer has already churned",
            ));
        }
        let now = services.clock.now();
        Ok(CustomerChurned {
            reason: required_text(&command.reason, "reason", 2000)?,
            churned_on: not_after_today(command.churned_on, now, "churned_on")?,
            occurred_at: now,
        })
    }
}
