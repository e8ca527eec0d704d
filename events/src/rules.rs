//! Events of the `Rules` stream (one stream, id [`RULES_STREAM_ID`]): the coverage standards per
//! tier, the engagement weights, the workload hours per tier and the churn-risk rules. The
//! stream's sequence after a change is the `rules_version` reports name.

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

/// The churn-risk score's weights, custom factors and bands (docs/DOMAIN.md section 12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChurnRiskRulesChanged {
    pub weights: crate::risk::FactorWeights,
    #[serde(default)]
    pub custom: Vec<crate::risk::CustomFactor>,
    pub high_from: f64,
    pub watch_from: f64,
    pub occurred_at: DateTime<Utc>,
}

/// The reminder rules (docs/DOMAIN.md section 13): every rule, on or off, as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReminderRulesChanged {
    pub rules: Vec<crate::reminder::ReminderRule>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RulesEvent {
    CoverageStandardsChanged(CoverageStandardsChanged),
    EngagementWeightsChanged(EngagementWeightsChanged),
    WorkloadHoursChanged(WorkloadHoursChanged),
    ChurnRiskRulesChanged(ChurnRiskRulesChanged),
    ReminderRulesChanged(ReminderRulesChanged),
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
            RulesEvent::ChurnRiskRulesChanged(_) => "ChurnRiskRulesChanged",
            RulesEvent::ReminderRulesChanged(_) => "ReminderRulesChanged",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// The rules a report is computed under: coverage standards and workload hours per tier and the
/// engagement weights. `version` is the Rules stream's sequence they were folded to (`0`: the
/// docs/DOMAIN.md defaults), or `what-if:<digest>` for rules a caller supplied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rules {
    pub version: String,
    pub standards: [crate::coverage::CoverageStandard; 3],
    pub weights: crate::engagement::Weights,
    pub hours_per_month: [f64; 3],
    pub risk: crate::risk::RiskRules,
    pub reminders: Vec<crate::reminder::ReminderRule>,
}

fn tier_index(tier: Tier) -> usize {
    match tier {
        Tier::Enterprise => 0,
        Tier::MidMarket => 1,
        Tier::Smb => 2,
    }
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            version: "0".into(),
            standards: Tier::ALL.map(crate::coverage::CoverageStandard::for_tier),
            weights: crate::engagement::Weights::default(),
            hours_per_month: [10.0, 5.0, 2.0],
            risk: crate::risk::RiskRules::default(),
            reminders: crate::reminder::default_rules(),
        }
    }
}

impl Rules {
    pub fn standard(&self, tier: Tier) -> crate::coverage::CoverageStandard {
        self.standards[tier_index(tier)]
    }

    pub fn set_standard(&mut self, tier: Tier, standard: crate::coverage::CoverageStandard) {
        self.standards[tier_index(tier)] = standard;
    }

    pub fn hours(&self, tier: Tier) -> f64 {
        self.hours_per_month[tier_index(tier)]
    }

    pub fn set_hours(&mut self, tier: Tier, hours_per_month: f64) {
        self.hours_per_month[tier_index(tier)] = hours_per_month;
    }

    /// Applies one event of the Rules stream at `sequence`.
    pub fn apply(&mut self, sequence: i64, event: &RulesEvent) {
        match event {
            RulesEvent::CoverageStandardsChanged(c) => self.set_standard(
                c.tier,
                crate::coverage::CoverageStandard {
                    max_days_between_contact: i64::from(c.max_days_between_contact),
                    expected_touches_per_month: c.expected_touches_per_month,
                    min_meetings_per_quarter: c.min_meetings_per_quarter,
                    stakeholder_breadth: c.stakeholder_breadth,
                },
            ),
            RulesEvent::EngagementWeightsChanged(w) => {
                self.weights = crate::engagement::Weights {
                    email: w.email,
                    response: w.response,
                    meeting: w.meeting,
                    quality: w.quality,
                    breadth: w.breadth,
                    recency: w.recency,
                }
            }
            RulesEvent::WorkloadHoursChanged(h) => self.set_hours(h.tier, h.hours_per_month),
            RulesEvent::ChurnRiskRulesChanged(r) => {
                self.risk = crate::risk::RiskRules {
                    weights: r.weights,
                    custom: r.custom.clone(),
                    high_from: r.high_from,
                    watch_from: r.watch_from,
                }
            }
            RulesEvent::ReminderRulesChanged(r) => self.reminders = r.rules.clone(),
        }
        self.version = sequence.to_string();
    }

    /// These rules marked as a what-if: the version names their content, so equal rules get
    /// equal versions and nothing is stored.
    pub fn what_if(mut self) -> Self {
        use std::hash::{Hash, Hasher};
        self.version = String::new();
        let text = serde_json::to_string(&self).unwrap_or_default();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        self.version = format!("what-if:{:016x}", hasher.finish());
        self
    }
}
