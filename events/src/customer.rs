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

    /// Notes are not contact (DOMAIN.md section 3).
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HealthScoreRecorded {
    /// 0 to 100.
    pub score: f64,
    pub source: HealthSource,
    /// Required when the source is manual.
    pub reason: Option<String>,
    pub risk_factors: Vec<String>,
    /// When the score was measured; this is the event's business time.
    pub measured_at: DateTime<Utc>,
}

/// Every event of the `Customer` stream. Stored (and published) externally tagged by type name,
/// as cqrs-es serializes it: `{"ActivityLogged": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustomerEvent {
    CustomerOnboarded(CustomerOnboarded),
    CsmAssigned(CsmAssigned),
    StakeholderAdded(StakeholderAdded),
    ActivityLogged(ActivityLogged),
    ActivityRetracted(ActivityRetracted),
    HealthScoreRecorded(HealthScoreRecorded),
}

impl CustomerEvent {
    pub const STREAM_TYPE: &'static str = "Customer";

    /// When the event happened in the world (as opposed to when it was recorded).
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            CustomerEvent::CustomerOnboarded(e) => e.occurred_at,
            CustomerEvent::CsmAssigned(e) => e.occurred_at,
            CustomerEvent::StakeholderAdded(e) => e.occurred_at,
            CustomerEvent::ActivityLogged(e) => e.occurred_at,
            CustomerEvent::ActivityRetracted(e) => e.occurred_at,
            CustomerEvent::HealthScoreRecorded(e) => e.measured_at,
        }
    }
}

impl DomainEvent for CustomerEvent {
    fn event_type(&self) -> String {
        match self {
            CustomerEvent::CustomerOnboarded(_) => "CustomerOnboarded",
            CustomerEvent::CsmAssigned(_) => "CsmAssigned",
            CustomerEvent::StakeholderAdded(_) => "StakeholderAdded",
            CustomerEvent::ActivityLogged(_) => "ActivityLogged",
            CustomerEvent::ActivityRetracted(_) => "ActivityRetracted",
            CustomerEvent::HealthScoreRecorded(_) => "HealthScoreRecorded",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
