//! Events of the `Customer` stream: one stream per customer, id = customer UUID.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Service tier; the coverage standards and workload hours depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum Tier {
    Enterprise,
    MidMarket,
    #[serde(rename = "SMB")]
    Smb,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Enterprise, Tier::MidMarket, Tier::Smb];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Enterprise => "Enterprise",
            Tier::MidMarket => "MidMarket",
            Tier::Smb => "SMB",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Tier::ALL.into_iter().find(|tier| tier.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StakeholderLevel {
    Executive,
    Champion,
    User,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Email,
    Meeting,
    Call,
    Qbr,
    Message,
    Event,
    Note,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Email => "email",
            ActivityKind::Meeting => "meeting",
            ActivityKind::Call => "call",
            ActivityKind::Qbr => "qbr",
            ActivityKind::Message => "message",
            ActivityKind::Event => "event",
            ActivityKind::Note => "note",
        }
    }

    /// Notes are not contact (docs/DOMAIN.md section 3).
    pub fn is_contact(self) -> bool {
        self != ActivityKind::Note
    }

    /// Meetings include QBRs.
    pub fn is_meeting(self) -> bool {
        matches!(self, ActivityKind::Meeting | ActivityKind::Qbr)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthSource {
    Gainsight,
    Manual,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerOnboarded {
    pub customer_id: Uuid,
    pub name: String,
    pub salesforce_id: String,
    pub tier: Tier,
    /// Annual recurring revenue, at most two decimal places.
    pub arr: Decimal,
    pub industry: String,
    pub account_manager: String,
    pub csm_id: Uuid,
    pub products_owned: Vec<String>,
    pub contract_start: NaiveDate,
    pub renewal_date: NaiveDate,
    /// When the customer was onboarded in the world; an import may backdate it.
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CsmAssigned {
    pub csm_id: Uuid,
    pub previous_csm_id: Option<Uuid>,
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StakeholderAdded {
    pub stakeholder_id: Uuid,
    pub name: String,
    pub role: String,
    pub level: StakeholderLevel,
    pub email: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActivityLogged {
    pub activity_id: Uuid,
    pub kind: ActivityKind,
    pub direction: Direction,
    pub occurred_at: DateTime<Utc>,
    pub duration_minutes: Option<u32>,
    /// Stakeholder ids of the customer's people who took part.
    pub participants: Vec<Uuid>,
    pub response_received: Option<bool>,
    pub response_time_hours: Option<f64>,
    pub subject: String,
    pub logged_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActivityRetracted {
    pub activity_id: Uuid,
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
}

/// A named risk factor behind a health score, with its weight when the source gives one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RiskFactor {
    pub name: String,
    pub weight: Option<f64>,
}

/// Version 2: risk factors are objects with an optional weight (version 1 had plain strings; the
/// upcaster in [`crate::upcast`] reads those).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HealthScoreRecorded {
    /// 0 to 100.
    pub score: f64,
    pub source: HealthSource,
    /// Required when the source is manual.
    pub reason: Option<String>,
    pub risk_factors: Vec<RiskFactor>,
    /// When the score was measured; this is the event's business time.
    pub measured_at: DateTime<Utc>,
}

/// Version 1 of [`HealthScoreRecorded`], kept for its JSON Schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HealthScoreRecordedV1 {
    pub score: f64,
    pub source: HealthSource,
    pub reason: Option<String>,
    pub risk_factors: Vec<String>,
    pub measured_at: DateTime<Utc>,
}

/// Fields of the profile that changed; absent fields are unchanged.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct CustomerProfileUpdated {
    pub name: Option<String>,
    pub salesforce_id: Option<String>,
    pub tier: Option<Tier>,
    pub arr: Option<Decimal>,
    pub industry: Option<String>,
    pub account_manager: Option<String>,
    pub products_owned: Option<Vec<String>>,
    pub contract_start: Option<NaiveDate>,
    pub renewal_date: Option<NaiveDate>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PartnerAssigned {
    pub partner_id: Uuid,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PartnerUnassigned {
    pub partner_id: Uuid,
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StakeholderUpdated {
    pub stakeholder_id: Uuid,
    pub name: Option<String>,
    pub role: Option<String>,
    pub level: Option<StakeholderLevel>,
    pub email: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StakeholderRemoved {
    pub stakeholder_id: Uuid,
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
}

/// Replaces the named fields of an earlier `ActivityLogged`; the original stays in the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActivityCorrected {
    pub activity_id: Uuid,
    pub reason: String,
    pub kind: Option<ActivityKind>,
    pub direction: Option<Direction>,
    pub activity_occurred_at: Option<DateTime<Utc>>,
    pub duration_minutes: Option<u32>,
    pub participants: Option<Vec<Uuid>>,
    pub response_received: Option<bool>,
    pub response_time_hours: Option<f64>,
    pub subject: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    FollowUp,
    QbrPrep,
    Escalation,
    Onboarding,
    Renewal,
    General,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskPriority {
    Low,
    Medium,
    High,
    Urgent,
}

/// Statuses a task can be moved between; completion and cancellation have their own events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    InProgress,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskCreated {
    pub task_id: Uuid,
    pub title: String,
    pub description: String,
    pub kind: TaskKind,
    pub priority: TaskPriority,
    /// A CSM id or a partner user id.
    pub assignee_id: String,
    pub due_date: NaiveDate,
    pub parent_task_id: Option<Uuid>,
    pub depends_on: Vec<Uuid>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskUpdated {
    pub task_id: Uuid,
    pub title: Option<String>,
    pub description: Option<String>,
    pub kind: Option<TaskKind>,
    pub priority: Option<TaskPriority>,
    pub due_date: Option<NaiveDate>,
    pub depends_on: Option<Vec<Uuid>>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskReassigned {
    pub task_id: Uuid,
    pub assignee_id: String,
    pub previous_assignee_id: String,
    pub reason: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskStatusChanged {
    pub task_id: Uuid,
    pub status: TaskStatus,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskCompleted {
    pub task_id: Uuid,
    pub outcome: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskCancelled {
    pub task_id: Uuid,
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverallStatus {
    OnTrack,
    AtRisk,
    OffTrack,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attachment {
    pub name: String,
    pub url: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PartnerReportDrafted {
    pub report_id: Uuid,
    pub partner_id: Uuid,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub overall_status: OverallStatus,
    pub summary: String,
    pub accomplishments: String,
    pub planned_activities: String,
    pub risks_and_issues: String,
    pub attachments: Vec<Attachment>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PartnerReportUpdated {
    pub report_id: Uuid,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub overall_status: Option<OverallStatus>,
    pub summary: Option<String>,
    pub accomplishments: Option<String>,
    pub planned_activities: Option<String>,
    pub risks_and_issues: Option<String>,
    pub attachments: Option<Vec<Attachment>>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PartnerReportSubmitted {
    pub report_id: Uuid,
    pub partner_id: Uuid,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MilestoneRecorded {
    pub milestone_id: Uuid,
    pub title: String,
    pub description: String,
    pub achieved_on: NaiveDate,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IssueLogged {
    pub issue_id: Uuid,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IssueResolved {
    pub issue_id: Uuid,
    pub resolution: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EscalationRaised {
    pub escalation_id: Uuid,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EscalationResolved {
    pub escalation_id: Uuid,
    pub resolution: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdoptionStage {
    Onboarding,
    Implementing,
    Adopted,
    Optimizing,
    Advocate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AdoptionStageChanged {
    pub stage: AdoptionStage,
    pub previous_stage: Option<AdoptionStage>,
    pub notes: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UseCaseStatus {
    NotStarted,
    InProgress,
    Implemented,
    Optimized,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UseCaseStatusChanged {
    pub use_case: String,
    pub status: UseCaseStatus,
    pub previous_status: Option<UseCaseStatus>,
    pub notes: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NpsRecorded {
    /// 0 to 10.
    pub score: u8,
    pub stakeholder_id: Option<Uuid>,
    pub comment: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerRenewed {
    pub previous_renewal_date: NaiveDate,
    pub renewal_date: NaiveDate,
    /// The ARR of the renewed contract, when it changed.
    pub arr: Option<Decimal>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerChurned {
    pub reason: String,
    pub churned_on: NaiveDate,
    pub occurred_at: DateTime<Utc>,
}

/// Custom-field values set on the customer (docs/DOMAIN.md section 9): each key names a field
/// in force when the event was appended; `null` clears the field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomFieldsSet {
    pub values: std::collections::BTreeMap<String, serde_json::Value>,
    pub occurred_at: DateTime<Utc>,
}

/// The customer is withdrawn as if it had never been onboarded (an import's undo): it leaves
/// every read model, its history stays in the store, and its stream takes no more commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerRetracted {
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
}

/// A health score recorded in error is withdrawn; `sequence` is the stream sequence of its
/// `HealthScoreRecorded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HealthScoreRetracted {
    pub sequence: i64,
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
}

/// A tag put on the customer: a word or two a team sorts accounts by ("beta program",
/// "exec sponsor changed"), kept as first written; tags compare without regard to case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerTagged {
    pub tag: String,
    pub occurred_at: DateTime<Utc>,
}

/// A tag taken off the customer (as written when it was put on), with why when given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerUntagged {
    pub tag: String,
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
}

macro_rules! customer_events {
    ($($event:ident => $occurred:ident),* $(,)?) => {
        /// Every event of the `Customer` stream. Stored (and published) externally tagged by type
        /// name, as cqrs-es serializes it: `{"ActivityLogged": {...}}`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub enum CustomerEvent {
            $($event($event)),*
        }

        impl CustomerEvent {
            pub const STREAM_TYPE: &'static str = "Customer";
            pub const TYPES: &'static [&'static str] = &[$(stringify!($event)),*];

            pub fn type_name(&self) -> &'static str {
                match self {
                    $(CustomerEvent::$event(_) => stringify!($event)),*
                }
            }

            /// When the event happened in the world (as opposed to when it was recorded).
            pub fn occurred_at(&self) -> DateTime<Utc> {
                match self {
                    $(CustomerEvent::$event(event) => event.$occurred),*
                }
            }
        }
    };
}

customer_events! {
    CustomerOnboarded => occurred_at,
    CustomerProfileUpdated => occurred_at,
    CsmAssigned => occurred_at,
    PartnerAssigned => occurred_at,
    PartnerUnassigned => occurred_at,
    StakeholderAdded => occurred_at,
    StakeholderUpdated => occurred_at,
    StakeholderRemoved => occurred_at,
    ActivityLogged => occurred_at,
    ActivityCorrected => occurred_at,
    ActivityRetracted => occurred_at,
    HealthScoreRecorded => measured_at,
    TaskCreated => occurred_at,
    TaskUpdated => occurred_at,
    TaskReassigned => occurred_at,
    TaskStatusChanged => occurred_at,
    TaskCompleted => occurred_at,
    TaskCancelled => occurred_at,
    PartnerReportDrafted => occurred_at,
    PartnerReportUpdated => occurred_at,
    PartnerReportSubmitted => occurred_at,
    MilestoneRecorded => occurred_at,
    IssueLogged => occurred_at,
    IssueResolved => occurred_at,
    EscalationRaised => occurred_at,
    EscalationResolved => occurred_at,
    AdoptionStageChanged => occurred_at,
    UseCaseStatusChanged => occurred_at,
    NpsRecorded => occurred_at,
    CustomerRenewed => occurred_at,
    CustomerChurned => occurred_at,
    CustomFieldsSet => occurred_at,
    CustomerRetracted => occurred_at,
    HealthScoreRetracted => occurred_at,
    CustomerTagged => occurred_at,
    CustomerUntagged => occurred_at,
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> String {
        self.type_name().to_owned()
    }

    fn event_version(&self) -> String {
        crate::upcast::current_version(self.type_name()).to_string()
    }
}
