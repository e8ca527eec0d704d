//! Partner status reports: drafted and updated by the partner, then submitted, after which they
//! are immutable. Only a partner assigned to the customer reports on it, and only on its own
//! reports.

use events::customer::*;
use uuid::Uuid;

use super::{Customer, Report};
use crate::domain::customer::commands::*;
use crate::domain::{optional_text, require_change, required_text, CommandError, DomainServices};

const MAX_ATTACHMENTS: usize = 20;
const MAX_SECTION: usize = 10_000;

fn attachments(attachments: &[Attachment]) -> Result<Vec<Attachment>, CommandError> {
    if attachments.len() > MAX_ATTACHMENTS {
        return Err(CommandError::invalid(
            "too_many",
            "attachments",
            "at most 20 attachments",
        ));
    }
    attachments
        .iter()
        .map(|attachment| {
            let url = required_text(&attachment.url, "attachments", 2000)?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(CommandError::invalid(
                    "invalid_url",
                    "attachments",
                    "an attachment url is an http(s) address",
                ));
            }
            Ok(Attachment {
                name: required_text(&attachment.name, "attachments", 200)?,
                url,
                kind: required_text(&attachment.kind, "attachments", 100)?,
            })
        })
        .collect()
}

fn section(text: &str, field: &'static str) -> Result<String, CommandError> {
    optional_text(text, field, MAX_SECTION)
}

impl Customer {
    fn ensure_partner_assigned(&self, partner_id: Uuid) -> Result<(), CommandError> {
        if self.partners.contains(&partner_id) {
            Ok(())
        } else {
            Err(CommandError::Forbidden {
                message: "this partner is not assigned to the customer".into(),
            })
        }
    }

    /// A draft report of the acting partner.
    fn draft(&self, report_id: Uuid, acting_partner: Option<Uuid>) -> Result<&Report, CommandError> {
        let report = self.reports.get(&report_id).ok_or(CommandError::NotFound {
            entity: "partner report",
        })?;
        if acting_partner.is_some_and(|partner| partner != report.partner_id) {
            return Err(CommandError::Forbidden {
                message: "this report belongs to another partner".into(),
            });
        }
        if report.submitted {
            return Err(CommandError::conflict(
                "report_submitted",
                "a submitted report cannot change",
            ));
        }
        Ok(report)
    }

    pub(super) fn draft_report(
        &self,
        command: DraftPartnerReport,
        services: &DomainServices,
    ) -> Result<PartnerReportDrafted, CommandError> {
        self.id()?;
        let partner_id = command
            .partner_id
            .ok_or_else(|| CommandError::invalid("required", "partner_id", "partner_id names the reporting partner"))?;
        self.ensure_partner_assigned(partner_id)?;
        let report_id = command.report_id.unwrap_or_else(Uuid::now_v7);
        if self.reports.contains_key(&report_id) {
            return Err(CommandError::conflict(
                "report_exists",
                "a report with this id already exists",
            ));
        }
        if command.period_end < command.period_start {
            return Err(CommandError::invalid(
                "period_reversed",
                "period_end",
                "period_end must not be before period_start",
            ));
        }
        Ok(PartnerReportDrafted {
            report_id,
            partner_id,
            period_start: command.period_start,
            period_end: command.period_end,
            overall_status: command.overall_status,
            summary: required_text(&command.summary, "summary", MAX_SECTION)?,
            accomplishments: section(&command.accomplishments, "accomplishments")?,
            planned_activities: section(&command.planned_activities, "planned_activities")?,
            risks_and_issues: section(&command.risks_and_issues, "risks_and_issues")?,
            attachments: attachments(&command.attachments)?,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn update_report(
        &self,
        command: UpdatePartnerReport,
        services: &DomainServices,
    ) -> Result<PartnerReportUpdated, CommandError> {
        self.id()?;
        self.draft(command.report_id, command.acting_partner_id)?;
        if let (Some(start), Some(end)) = (command.period_start, command.period_end) {
            if end < start {
                return Err(CommandError::invalid(
                    "period_reversed",
                    "period_end",
                    "period_end must not be before period_start",
                ));
            }
        }
        let event = PartnerReportUpdated {
            report_id: command.report_id,
            period_start: command.period_start,
            period_end: command.period_end,
            overall_status: command.overall_status,
            summary: command
                .summary
                .as_deref()
                .map(|text| required_text(text, "summary", MAX_SECTION))
                .transpose()?,
            accomplishments: command
                .accomplishments
                .as_deref()
                .map(|text| section(text, "accomplishments"))
                .transpose()?,
            planned_activities: command
                .planned_activities
                .as_deref()
                .map(|text| section(text, "planned_activities"))
                .transpose()?,
            risks_and_issues: command
                .risks_and_issues
                .as_deref()
                .map(|text| section(text, "risks_and_issues"))
                .transpose()?,
            attachments: command.attachments.as_deref().map(attachments).transpose()?,
            occurred_at: services.clock.now(),
        };
        require_change(
            event.period_start.is_some()
                || event.period_end.is_some()
                || event.overall_status.is_some()
                || event.summary.is_some()
                || event.accomplishments.is_some()
                || event.planned_activities.is_some()
                || event.risks_and_issues.is_some()
                || event.attachments.is_some(),
        )?;
        Ok(event)
    }

    pub(super) fn submit_report(
        &self,
        command: SubmitPartnerReport,
        services: &DomainServices,
    ) -> Result<PartnerReportSubmitted, CommandError> {
        self.id()?;
        let report = self
            .draft(command.report_id, command.acting_partner_id)
            .map_err(|error| match error {
                CommandError::Conflict { .. } => {
                    CommandError::conflict("report_already_submitted", "this report is already submitted")
                }
                other => other,
            })?;
        self.ensure_partner_assigned(report.partner_id)?;
        Ok(PartnerReportSubmitted {
            report_id: command.report_id,
            partner_id: report.partner_id,
            occurred_at: services.clock.now(),
        })
    }
}
