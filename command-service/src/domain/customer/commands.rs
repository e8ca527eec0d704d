//! Commands on a customer. The structs with `Deserialize` are the REST bodies as they arrive;
//! ids a client may omit are filled by the server before the command runs, so a retry carries
//! the same ids. Ids taken from the path are `#[serde(skip)]` and set by the route.

use chrono::{DateTime, NaiveDate, Utc};
use events::customer::*;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnboardCustomer {
    pub customer_id: Option<Uuid>,
    /// One line with a visible character: no control characters.
    #[schemars(length(max = 200), pattern(crate::domain::ONE_LINE))]
    pub name: String,
    #[schemars(pattern(crate::domain::SALESFORCE_ID))]
    pub salesforce_id: String,
    pub tier: Tier,
    #[schemars(with = "crate::domain::Arr")]
    pub arr: Decimal,
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub industry: String,
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub account_manager: String,
    pub csm_id: Uuid,
    #[serde(default)]
    #[schemars(length(max = 50), inner(length(max = 100), pattern(crate::domain::VISIBLE)))]
    pub products_owned: Vec<String>,
    pub contract_start: NaiveDate,
    pub renewal_date: NaiveDate,
    /// Backdated by imports; defaults to now.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// The profile fields to change; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    /// One line with a visible character: no control characters.
    #[schemars(length(max = 200), pattern(crate::domain::ONE_LINE))]
    pub name: Option<String>,
    #[schemars(pattern(crate::domain::SALESFORCE_ID))]
    pub salesforce_id: Option<String>,
    pub tier: Option<Tier>,
    #[schemars(with = "Option<crate::domain::Arr>")]
    pub arr: Option<Decimal>,
    #[schemars(length(max = 100))]
    pub industry: Option<String>,
    #[schemars(length(max = 200))]
    pub account_manager: Option<String>,
    #[schemars(length(max = 50), inner(length(max = 100), pattern(crate::domain::VISIBLE)))]
    pub products_owned: Option<Vec<String>>,
    pub contract_start: Option<NaiveDate>,
    pub renewal_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignCsm {
    pub csm_id: Uuid,
    #[schemars(length(max = 1000), pattern(crate::domain::VISIBLE))]
    pub reason: String,
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignPartner {
    pub partner_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnassignPartner {
    #[serde(skip)]
    pub partner_id: Uuid,
    #[schemars(length(max = 1000), pattern(crate::domain::VISIBLE))]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddStakeholder {
    pub stakeholder_id: Option<Uuid>,
    /// One line with a visible character: no control characters.
    #[schemars(length(max = 200), pattern(crate::domain::ONE_LINE))]
    pub name: String,
    #[schemars(length(max = 200), pattern(crate::domain::VISIBLE))]
    pub role: String,
    pub level: StakeholderLevel,
    /// Blank for none, or an address with an `@`.
    #[schemars(length(max = 254), pattern(crate::domain::LOOSE_EMAIL))]
    pub email: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStakeholder {
    #[serde(skip)]
    pub stakeholder_id: Uuid,
    /// One line with a visible character: no control characters.
    #[schemars(length(max = 200), pattern(crate::domain::ONE_LINE))]
    pub name: Option<String>,
    #[schemars(length(max = 200), pattern(crate::domain::VISIBLE))]
    pub role: Option<String>,
    pub level: Option<StakeholderLevel>,
    /// Blank for none, or an address with an `@`.
    #[schemars(length(max = 254), pattern(crate::domain::LOOSE_EMAIL))]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveStakeholder {
    #[serde(skip)]
    pub stakeholder_id: Uuid,
    #[schemars(length(max = 1000), pattern(crate::domain::VISIBLE))]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogActivity {
    pub activity_id: Option<Uuid>,
    /// `activity_id` was made by this service for this request (UUID v7), so no activity can
    /// have it yet and it is not looked up; an id a caller gives is.
    #[serde(skip)]
    pub fresh_id: bool,
    pub kind: ActivityKind,
    pub direction: Direction,
    pub occurred_at: DateTime<Utc>,
    #[schemars(range(min = 0, max = 1440))]
    pub duration_minutes: Option<u32>,
    #[serde(default)]
    pub participants: Vec<Uuid>,
    pub response_received: Option<bool>,
    #[schemars(range(min = 0, max = 8760))]
    pub response_time_hours: Option<f64>,
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub subject: String,
    /// Defaults to the acting user.
    #[schemars(length(max = 200))]
    pub logged_by: Option<String>,
}

/// Up to 1,000 activities of one customer, recorded all together or not at all.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogActivities {
    #[schemars(length(min = 1, max = 1000))]
    pub activities: Vec<LogActivity>,
}

/// The fields of a logged activity to correct, with the reason.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectActivity {
    #[serde(skip)]
    pub activity_id: Uuid,
    #[schemars(length(max = 1000), pattern(crate::domain::VISIBLE))]
    pub reason: String,
    pub kind: Option<ActivityKind>,
    pub direction: Option<Direction>,
    pub occurred_at: Option<DateTime<Utc>>,
    #[schemars(range(min = 0, max = 1440))]
    pub duration_minutes: Option<u32>,
    pub participants: Option<Vec<Uuid>>,
    pub response_received: Option<bool>,
    #[schemars(range(min = 0, max = 8760))]
    pub response_time_hours: Option<f64>,
    #[schemars(length(max = 500))]
    pub subject: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetractActivity {
    #[serde(skip)]
    pub activity_id: Uuid,
    #[schemars(length(max = 1000), pattern(crate::domain::VISIBLE))]
    pub reason: String,
}

/// A Gainsight sync (`source: gainsight`) or a manual override (`source: manual`, with a reason).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordHealthScore {
    #[schemars(range(min = 0, max = 100))]
    pub score: f64,
    pub source: HealthSource,
    pub reason: Option<String>,
    #[serde(default)]
    /// At most 50; each named (1 to 200 characters), with an optional weight of 0 or more.
    #[schemars(
        length(max = 50),
        extend("items" = {
            "type": "object",
            "required": ["name"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "maxLength": 200, "pattern": crate::domain::VISIBLE},
                "weight": {"type": ["number", "null"], "minimum": 0}
            }
        })
    )]
    pub risk_factors: Vec<RiskFactor>,
    pub measured_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    pub task_id: Option<Uuid>,
    #[schemars(length(max = 200), pattern(crate::domain::VISIBLE))]
    pub title: String,
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub description: String,
    pub kind: TaskKind,
    pub priority: TaskPriority,
    #[schemars(length(max = 200), pattern(crate::domain::VISIBLE))]
    pub assignee_id: String,
    pub due_date: NaiveDate,
    pub parent_task_id: Option<Uuid>,
    #[serde(default)]
    pub depends_on: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    #[serde(skip)]
    pub task_id: Uuid,
    #[schemars(length(max = 200), pattern(crate::domain::VISIBLE))]
    pub title: Option<String>,
    #[schemars(length(max = 5000))]
    pub description: Option<String>,
    pub kind: Option<TaskKind>,
    pub priority: Option<TaskPriority>,
    pub due_date: Option<NaiveDate>,
    pub depends_on: Option<Vec<Uuid>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignTask {
    #[serde(skip)]
    pub task_id: Uuid,
    #[schemars(length(max = 200), pattern(crate::domain::VISIBLE))]
    pub assignee_id: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeTaskStatus {
    #[serde(skip)]
    pub task_id: Uuid,
    pub status: TaskStatus,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteTask {
    #[serde(skip)]
    pub task_id: Uuid,
    #[schemars(length(max = 2000), pattern(crate::domain::VISIBLE))]
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelTask {
    #[serde(skip)]
    pub task_id: Uuid,
    #[schemars(length(max = 1000), pattern(crate::domain::VISIBLE))]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftPartnerReport {
    pub report_id: Option<Uuid>,
    /// The reporting partner organisation; a partner user's own organisation when omitted.
    pub partner_id: Option<Uuid>,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub overall_status: OverallStatus,
    #[schemars(length(max = 10000), pattern(crate::domain::VISIBLE))]
    pub summary: String,
    #[serde(default)]
    #[schemars(length(max = 10000))]
    pub accomplishments: String,
    #[serde(default)]
    #[schemars(length(max = 10000))]
    pub planned_activities: String,
    #[serde(default)]
    #[schemars(length(max = 10000))]
    pub risks_and_issues: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePartnerReport {
    #[serde(skip)]
    pub report_id: Uuid,
    /// Set from the acting partner user's organisation.
    #[serde(skip)]
    pub acting_partner_id: Option<Uuid>,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub overall_status: Option<OverallStatus>,
    #[schemars(length(max = 10000), pattern(crate::domain::VISIBLE))]
    pub summary: Option<String>,
    #[schemars(length(max = 10000))]
    pub accomplishments: Option<String>,
    #[schemars(length(max = 10000))]
    pub planned_activities: Option<String>,
    #[schemars(length(max = 10000))]
    pub risks_and_issues: Option<String>,
    pub attachments: Option<Vec<Attachment>>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitPartnerReport {
    #[serde(skip)]
    pub report_id: Uuid,
    #[serde(skip)]
    pub acting_partner_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordMilestone {
    pub milestone_id: Option<Uuid>,
    #[schemars(length(max = 200), pattern(crate::domain::VISIBLE))]
    pub title: String,
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub description: String,
    pub achieved_on: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogIssue {
    pub issue_id: Option<Uuid>,
    #[schemars(length(max = 200), pattern(crate::domain::VISIBLE))]
    pub title: String,
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub description: String,
    pub severity: Severity,
}

/// Resolves an issue or an escalation.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    #[serde(skip)]
    pub id: Uuid,
    #[schemars(length(max = 2000), pattern(crate::domain::VISIBLE))]
    pub resolution: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RaiseEscalation {
    pub escalation_id: Option<Uuid>,
    #[schemars(length(max = 200), pattern(crate::domain::VISIBLE))]
    pub title: String,
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub description: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeAdoptionStage {
    pub stage: AdoptionStage,
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub notes: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeUseCaseStatus {
    #[schemars(length(max = 200), pattern(crate::domain::VISIBLE))]
    pub use_case: String,
    pub status: UseCaseStatus,
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub notes: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordNps {
    #[schemars(range(min = 0, max = 10))]
    pub score: u8,
    pub stakeholder_id: Option<Uuid>,
    #[schemars(length(max = 5000))]
    pub comment: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRenewal {
    pub renewal_date: NaiveDate,
    #[schemars(with = "Option<crate::domain::Arr>")]
    pub arr: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordChurn {
    #[schemars(length(max = 2000), pattern(crate::domain::VISIBLE))]
    pub reason: String,
    pub churned_on: NaiveDate,
}

/// A tag to put on the customer.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagCustomer {
    /// One line of text, 1 to 40 characters; compared without regard to case.
    #[schemars(length(min = 1, max = 40), pattern(crate::domain::ONE_LINE))]
    pub tag: String,
}

/// A tag to take off the customer.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UntagCustomer {
    #[schemars(length(min = 1, max = 40), pattern(crate::domain::ONE_LINE))]
    pub tag: String,
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CustomerCommand {
    TagCustomer(TagCustomer),
    UntagCustomer(UntagCustomer),
    Onboard(OnboardCustomer),
    UpdateProfile(UpdateProfile),
    AssignCsm(AssignCsm),
    AssignPartner(AssignPartner),
    UnassignPartner(UnassignPartner),
    AddStakeholder(AddStakeholder),
    UpdateStakeholder(UpdateStakeholder),
    RemoveStakeholder(RemoveStakeholder),
    LogActivity(LogActivity),
    LogActivities(LogActivities),
    CorrectActivity(CorrectActivity),
    RetractActivity(RetractActivity),
    RecordHealthScore(RecordHealthScore),
    CreateTask(CreateTask),
    UpdateTask(UpdateTask),
    ReassignTask(ReassignTask),
    ChangeTaskStatus(ChangeTaskStatus),
    CompleteTask(CompleteTask),
    CancelTask(CancelTask),
    DraftPartnerReport(DraftPartnerReport),
    UpdatePartnerReport(UpdatePartnerReport),
    SubmitPartnerReport(SubmitPartnerReport),
    RecordMilestone(RecordMilestone),
    LogIssue(LogIssue),
    ResolveIssue(Resolve),
    RaiseEscalation(RaiseEscalation),
    ResolveEscalation(Resolve),
    ChangeAdoptionStage(ChangeAdoptionStage),
    ChangeUseCaseStatus(ChangeUseCaseStatus),
    RecordNps(RecordNps),
    RecordRenewal(RecordRenewal),
    RecordChurn(RecordChurn),
    SetCustomFields(SetCustomFields),
    RetractCustomer(RetractCustomer),
    RetractHealthScore(RetractHealthScore),
}

/// Custom-field values to set; `null` clears a field. The definitions in force and the caller's
/// role are filled in by the route before the command runs.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCustomFields {
    #[schemars(
        extend("minProperties" = 1),
        with = "std::collections::BTreeMap<String, crate::domain::FieldValue>"
    )]
    pub values: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(skip)]
    pub definitions: std::sync::Arc<events::fields::Definitions>,
    #[serde(skip)]
    pub role: Option<events::metadata::Role>,
}

/// Withdraws a customer as if never onboarded (an import's undo).
#[derive(Debug, Clone, PartialEq)]
pub struct RetractCustomer {
    pub reason: String,
}

/// Withdraws the health score recorded at stream sequence `sequence` (an import's undo).
#[derive(Debug, Clone, PartialEq)]
pub struct RetractHealthScore {
    pub sequence: i64,
    pub reason: String,
}
