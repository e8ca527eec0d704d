//! The permission table: which roles may issue each command. Enforcement, the written table in
//! docs/PERMISSIONS.md (generated, with a drift test) and the end-to-end role tests all read it.
//!
//! Partners are further limited to customers assigned to their partner organisation, and to the
//! partner commands: status reports, tasks, milestones, issues, escalations, use cases and notes.
//! CSMs may act on any customer: a team covers for each other. Readonly users and auditors issue
//! no commands.

use events::metadata::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    RegisterCsm,
    ChangeCsmCapacity,
    RegisterPartner,
    InvitePartnerUser,
    ActivatePartnerUser,
    DeactivatePartnerUser,
    ChangeRules,
    OnboardCustomer,
    UpdateProfile,
    AssignCsm,
    AssignPartner,
    UnassignPartner,
    AddStakeholder,
    UpdateStakeholder,
    RemoveStakeholder,
    LogActivity,
    LogNote,
    CorrectActivity,
    RetractActivity,
    RecordHealthScore,
    CreateTask,
    UpdateTask,
    ReassignTask,
    ChangeTaskStatus,
    CompleteTask,
    CancelTask,
    DraftPartnerReport,
    UpdatePartnerReport,
    SubmitPartnerReport,
    RecordMilestone,
    LogIssue,
    ResolveIssue,
    RaiseEscalation,
    ResolveEscalation,
    ChangeAdoptionStage,
    ChangeUseCaseStatus,
    RecordNps,
    RecordRenewal,
    RecordChurn,
    AcknowledgeAlert,
    DefineCustomFields,
    SetCustomFields,
    RetractCustomer,
    RetractHealthScore,
    Import,
    ManageReminders,
    ManageTaskTemplates,
    ManageRecurringTasks,
    ManagePlaybooks,
    RunPlaybooks,
    TagCustomers,
}

use Role::{Admin, Csm, Manager, Partner};

const ADMIN: &[Role] = &[Admin];
const MANAGEMENT: &[Role] = &[Admin, Manager];
const TEAM: &[Role] = &[Admin, Manager, Csm];
const TEAM_AND_PARTNERS: &[Role] = &[Admin, Manager, Csm, Partner];
const PARTNERS: &[Role] = &[Admin, Partner];

impl Operation {
    pub const ALL: [Operation; 51] = [
        Operation::RegisterCsm,
        Operation::ChangeCsmCapacity,
        Operation::RegisterPartner,
        Operation::InvitePartnerUser,
        Operation::ActivatePartnerUser,
        Operation::DeactivatePartnerUser,
        Operation::ChangeRules,
        Operation::OnboardCustomer,
        Operation::UpdateProfile,
        Operation::AssignCsm,
        Operation::AssignPartner,
        Operation::UnassignPartner,
        Operation::AddStakeholder,
        Operation::UpdateStakeholder,
        Operation::RemoveStakeholder,
        Operation::LogActivity,
        Operation::LogNote,
        Operation::CorrectActivity,
        Operation::RetractActivity,
        Operation::RecordHealthScore,
        Operation::CreateTask,
        Operation::UpdateTask,
        Operation::ReassignTask,
        Operation::ChangeTaskStatus,
        Operation::CompleteTask,
        Operation::CancelTask,
        Operation::DraftPartnerReport,
        Operation::UpdatePartnerReport,
        Operation::SubmitPartnerReport,
        Operation::RecordMilestone,
        Operation::LogIssue,
        Operation::ResolveIssue,
        Operation::RaiseEscalation,
        Operation::ResolveEscalation,
        Operation::ChangeAdoptionStage,
        Operation::ChangeUseCaseStatus,
        Operation::RecordNps,
        Operation::RecordRenewal,
        Operation::RecordChurn,
        Operation::AcknowledgeAlert,
        Operation::DefineCustomFields,
        Operation::SetCustomFields,
        Operation::RetractCustomer,
        Operation::RetractHealthScore,
        Operation::Import,
        Operation::ManageReminders,
        Operation::ManageTaskTemplates,
        Operation::ManageRecurringTasks,
        Operation::ManagePlaybooks,
        Operation::RunPlaybooks,
        Operation::TagCustomers,
    ];

    /// Roles allowed to issue this command.
    pub fn allowed(self) -> &'static [Role] {
        use Operation::*;
        match self {
            ChangeRules | DefineCustomFields => ADMIN,
            RegisterCsm
            | ChangeCsmCapacity
            | RegisterPartner
            | InvitePartnerUser
            | ActivatePartnerUser
            | DeactivatePartnerUser
            | OnboardCustomer
            | UpdateProfile
            | AssignCsm
            | AssignPartner
            | UnassignPartner
            | RecordRenewal
            | RecordChurn
            | RetractCustomer
            | ManageTaskTemplates
            | ManagePlaybooks => MANAGEMENT,
            AddStakeholder | UpdateStakeholder | RemoveStakeholder | LogActivity | CorrectActivity
            | RetractActivity | RecordHealthScore | RetractHealthScore | ChangeAdoptionStage | RecordNps
            | AcknowledgeAlert | Import | ManageReminders | ManageRecurringTasks | RunPlaybooks | TagCustomers => TEAM,
            LogNote | CreateTask | UpdateTask | ReassignTask | ChangeTaskStatus | CompleteTask | CancelTask
            | RecordMilestone | LogIssue | ResolveIssue | RaiseEscalation | ResolveEscalation | ChangeUseCaseStatus
            | SetCustomFields => TEAM_AND_PARTNERS,
            DraftPartnerReport | UpdatePartnerReport | SubmitPartnerReport => PARTNERS,
        }
    }

    pub fn permits(self, role: Role) -> bool {
        self.allowed().contains(&role)
    }

    /// How the operation reads in the written table.
    pub fn describe(self) -> &'static str {
        use Operation::*;
        match self {
            RegisterCsm => "register a CSM",
            ChangeCsmCapacity => "change a CSM's monthly capacity",
            RegisterPartner => "register a partner organisation",
            InvitePartnerUser => "invite a partner user",
            ActivatePartnerUser => "activate a partner user",
            DeactivatePartnerUser => "deactivate a partner user",
            ChangeRules => "change coverage standards, engagement weights, workload hours or churn-risk rules",
            OnboardCustomer => "onboard a customer",
            UpdateProfile => "update a customer's profile",
            AssignCsm => "hand a customer to another CSM",
            AssignPartner => "assign a partner to a customer",
            UnassignPartner => "unassign a partner from a customer",
            AddStakeholder => "add a stakeholder",
            UpdateStakeholder => "update a stakeholder",
            RemoveStakeholder => "remove a stakeholder",
            LogActivity => "log an activity (email, meeting, call, QBR, message, event)",
            LogNote => "log a note",
            CorrectActivity => "correct an activity",
            RetractActivity => "retract an activity",
            RecordHealthScore => "record a health score (Gainsight sync or manual override)",
            CreateTask => "create a task",
            UpdateTask => "update a task",
            ReassignTask => "reassign a task",
            ChangeTaskStatus => "start a task or put it back to pending",
            CompleteTask => "complete a task",
            CancelTask => "cancel a task",
            DraftPartnerReport => "draft a partner status report",
            UpdatePartnerReport => "update a draft partner status report",
            SubmitPartnerReport => "submit a partner status report",
            RecordMilestone => "record a milestone",
            LogIssue => "log an issue",
            ResolveIssue => "resolve an issue",
            RaiseEscalation => "raise an escalation",
            ResolveEscalation => "resolve an escalation",
            ChangeAdoptionStage => "change the adoption stage",
            ChangeUseCaseStatus => "change a use case's status",
            RecordNps => "record an NPS response",
            RecordRenewal => "record a renewal",
            RecordChurn => "record a churn",
            AcknowledgeAlert => "acknowledge an alert",
            DefineCustomFields => "define, change, order or retire the custom fields",
            SetCustomFields => "set custom-field values (each field also names the roles that may set it)",
            RetractCustomer => "retract a customer (undoing an import that created it)",
            RetractHealthScore => "retract a health score (undoing an import that recorded it)",
            Import => "upload, preview, commit and undo an import (each row's command is checked too)",
            ManageReminders => {
                "schedule, snooze, complete, dismiss and cancel reminders (their own; admins and managers anyone's)"
            }
            ManageTaskTemplates => "save, version and retire task templates",
            ManageRecurringTasks => "start and stop a customer's recurring task",
            ManagePlaybooks => "save, version and retire playbooks",
            RunPlaybooks => "start a playbook on a customer, move its steps' due dates, end a run",
            TagCustomers => "put a tag on a customer or take one off",
        }
    }
}

/// The written permission table, in Markdown.
pub fn markdown_table() -> String {
    let mut table = String::from("| command |");
    for role in Role::ALL {
        table.push_str(&format!(" {} |", role.as_str()));
    }
    table.push_str("\n|---|");
    table.push_str(&"---|".repeat(Role::ALL.len()));
    table.push('\n');
    for operation in Operation::ALL {
        table.push_str(&format!("| {} |", operation.describe()));
        for role in Role::ALL {
            table.push_str(if operation.permits(role) { " yes |" } else { " |" });
        }
        table.push('\n');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readonly_and_auditors_issue_no_command() {
        for operation in Operation::ALL {
            assert!(
                !operation.permits(Role::Readonly) && !operation.permits(Role::Auditor),
                "{operation:?}"
            );
        }
    }

    #[test]
    fn the_written_table_matches_the_code() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/PERMISSIONS.md");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let table = markdown_table();
        if std::env::var_os("UPDATE_SCHEMAS").is_some() && !text.contains(&table) {
            let start = text.find("| command |").unwrap_or(text.len());
            let end = text[start..].find("\n\n").map_or(text.len(), |end| start + end + 1);
            let updated = format!("{}{}{}", &text[..start], table, &text[end..]);
            std::fs::write(&path, updated).unwrap();
            return;
        }
        assert!(
            text.contains(&table),
            "docs/PERMISSIONS.md drifted: run UPDATE_SCHEMAS=1 cargo test -p command-service"
        );
    }
}
