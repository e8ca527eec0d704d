//! Events of the `Rules` stream (one stream, id [`RULES_STREAM_ID`]): the coverage standards per
//! tier, the engagement weights and the workload hours per tier. The stream's sequence after a
//! change is the `rules_version` reports name.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::customer::Tier;

pub const RULES_STREAM_ID: &str = "rules";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CoverageStandardsChanged {
    pub tier: Tier,
    pub max_days_between_contact: u32,
    pub expected_touches_per_month: u32,
    pub min_meetings_per_quarter: u32,
    pub stakeholder_breadth: u32,
    pub occurred_at: DateTime<Utc>,
}

/// Weights of the engagement score's components; they sum to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EngagementWeightsChanged {
    pub email: f64,
    pub response: f64,
    pub meeting: f64,
    pub quality: f64,
    pub breadth: f64,
    pub recency: f64,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkloadHoursChanged {
    pub tier: Tier,
    pub hours_per_month: f64,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RulesEvent {
    CoverageStandardsChanged(CoverageStandardsChanged),
    EngagementWeightsChanged(EngagementWeightsChanged),
    WorkloadHoursChanged(WorkloadHoursChanged),
}

impl RulesEvent {
    pub const STREAM_TYPE: &'static str = "Rules";
}

impl DomainEvent for RulesEvent {
    fn event_type(&self) -> String {
        match self {
            RulesEvent::CoverageStandardsChanged(_) => "CoverageStandardsChanged",
            RulesEvent::EngagementWeightsChanged(_) => "EngagementWeightsChanged",
            RulesEvent::WorkloadHoursChanged(_) => "WorkloadHoursChanged",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
