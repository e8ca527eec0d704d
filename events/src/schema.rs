//! JSON Schema of every event type and version, generated into `schemas/events/` and checked
//! against the code by a drift test. A schema describes the event's body (the value under its
//! type name in the stored payload).

use schemars::{schema_for, Schema};

use crate::alert::AlertAcknowledged;
use crate::csm::{CsmCapacityChanged, CsmRegistered};
use crate::customer::*;
use crate::envelope::EventEnvelope;
use crate::fields::{CustomFieldChanged, CustomFieldDefined, CustomFieldRetired, CustomFieldsReordered};
use crate::partner::{PartnerRegistered, PartnerUserActivated, PartnerUserDeactivated, PartnerUserInvited};
use crate::playbook::{PlaybookRetired, PlaybookRunEnded, PlaybookRunStarted, PlaybookSaved, PlaybookStepsMoved};
use crate::reminder::{
    ReminderCancelled, ReminderCompleted, ReminderDismissed, ReminderFired, ReminderScheduled, ReminderSnoozed,
    ReminderSuppressed, ReminderWoke,
};
use crate::rules::{
    ChurnRiskRulesChanged, CoverageStandardsChanged, EngagementWeightsChanged, ReminderRulesChanged,
    WorkloadHoursChanged,
};
use crate::task_template::{TaskRecurrenceStarted, TaskRecurrenceStopped, TaskTemplateRetired, TaskTemplateSaved};
use crate::upcast::current_version;

/// One generated schema file.
pub struct SchemaFile {
    /// Path relative to `schemas/`.
    pub path: String,
    pub schema: Schema,
}

macro_rules! current {
    ($stream:literal: $($event:ident),* $(,)?) => {
        vec![$(SchemaFile {
            path: format!("events/{}/{}.v{}.json", $stream, stringify!($event), current_version(stringify!($event))),
            schema: schema_for!($event),
        }),*]
    };
}

/// Every schema the contract publishes.
pub fn all() -> Vec<SchemaFile> {
    let mut files = vec![
        SchemaFile {
            path: "events/envelope.v1.json".into(),
            schema: schema_for!(EventEnvelope),
        },
        SchemaFile {
            path: "events/customer/HealthScoreRecorded.v1.json".into(),
            schema: schema_for!(HealthScoreRecordedV1),
        },
    ];
    files.extend(current!("customer":
        CustomerOnboarded, CustomerProfileUpdated, CsmAssigned, PartnerAssigned, PartnerUnassigned,
        StakeholderAdded, StakeholderUpdated, StakeholderRemoved, ActivityLogged, ActivityCorrected,
        ActivityRetracted, HealthScoreRecorded, TaskCreated, TaskUpdated, TaskReassigned, TaskStatusChanged,
        TaskCompleted, TaskCancelled, PartnerReportDrafted, PartnerReportUpdated, PartnerReportSubmitted,
        MilestoneRecorded, IssueLogged, IssueResolved, EscalationRaised, EscalationResolved,
        AdoptionStageChanged, UseCaseStatusChanged, NpsRecorded, CustomerRenewed, CustomerChurned,
        CustomFieldsSet, CustomerRetracted, HealthScoreRetracted, CustomerTagged, CustomerUntagged,
    ));
    files.extend(current!("csm": CsmRegistered, CsmCapacityChanged));
    files.extend(
        current!("partner": PartnerRegistered, PartnerUserInvited, PartnerUserActivated, PartnerUserDeactivated),
    );
    files.extend(current!("rules": CoverageStandardsChanged, EngagementWeightsChanged, WorkloadHoursChanged, ChurnRiskRulesChanged, ReminderRulesChanged));
    files.extend(
        current!("reminder": ReminderScheduled, ReminderFired, ReminderSuppressed, ReminderSnoozed,
        ReminderWoke, ReminderCompleted, ReminderDismissed, ReminderCancelled),
    );
    files.extend(current!("alert": AlertAcknowledged));
    files.extend(current!("task_template": TaskTemplateSaved, TaskTemplateRetired));
    files.extend(current!("task_recurrence": TaskRecurrenceStarted, TaskRecurrenceStopped));
    files.extend(current!("playbook": PlaybookSaved, PlaybookRetired));
    files.extend(current!("playbook_run": PlaybookRunStarted, PlaybookStepsMoved, PlaybookRunEnded));
    files.extend(current!(
        "custom_fields": CustomFieldDefined,
        CustomFieldChanged,
        CustomFieldRetired,
        CustomFieldsReordered
    ));
    files
}

/// The text written to disk: pretty JSON with a trailing newline.
pub fn render(schema: &Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema always serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_customer_event_type_has_a_schema() {
        let files = super::all();
        for event_type in crate::customer::CustomerEvent::TYPES {
            assert!(
                files.iter().any(|file| file.path.contains(&format!("/{event_type}.v"))),
                "{event_type}"
            );
        }
    }
}
