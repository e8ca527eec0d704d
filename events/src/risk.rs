//! The churn-risk score (docs/DOMAIN.md section 12): 0 to 100, higher is riskier, the weighted
//! sum of factor severities. Each factor's severity is a number from 0 to 1 computed from the
//! account's facts on a day; its weight is the points it adds at full severity. The weights
//! (summing to 100) and the band thresholds are rules, changed in the Rules stream.

use schemars::JsonSchema;

use crate::coverage::round1;
use serde::{Deserialize, Serialize};

/// The built-in factors, in the order the explanation lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Health,
    HealthTrend,
    Engagement,
    EngagementTrend,
    Coverage,
    Contact,
    Nps,
    Issues,
    Escalations,
    Renewal,
    Adoption,
}

impl Factor {
    pub const ALL: [Factor; 11] = [
        Factor::Health,
        Factor::HealthTrend,
        Factor::Engagement,
        Factor::EngagementTrend,
        Factor::Coverage,
        Factor::Contact,
        Factor::Nps,
        Factor::Issues,
        Factor::Escalations,
        Factor::Renewal,
        Factor::Adoption,
    ];
}

/// Points each built-in factor adds at full severity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FactorWeights {
    pub health: f64,
    pub health_trend: f64,
    pub engagement: f64,
    pub engagement_trend: f64,
    pub coverage: f64,
    pub contact: f64,
    pub nps: f64,
    pub issues: f64,
    pub escalations: f64,
    pub renewal: f64,
    pub adoption: f64,
}

impl Default for FactorWeights {
    fn default() -> Self {
        FactorWeights {
            health: 20.0,
            health_trend: 10.0,
            engagement: 15.0,
            engagement_trend: 5.0,
            coverage: 10.0,
            contact: 10.0,
            nps: 10.0,
            issues: 5.0,
            escalations: 5.0,
            renewal: 5.0,
            adoption: 5.0,
        }
    }
}

impl FactorWeights {
    pub fn of(&self, factor: Factor) -> f64 {
        match factor {
            Factor::Health => self.health,
            Factor::HealthTrend => self.health_trend,
            Factor::Engagement => self.engagement,
            Factor::EngagementTrend => self.engagement_trend,
            Factor::Coverage => self.coverage,
            Factor::Contact => self.contact,
            Factor::Nps => self.nps,
            Factor::Issues => self.issues,
            Factor::Escalations => self.escalations,
            Factor::Renewal => self.renewal,
            Factor::Adoption => self.adoption,
        }
    }
}

/// A custom field an admin made a factor: full severity when the account's value matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomFactor {
    /// The custom field's key.
    pub key: String,
    pub weight: f64,
    /// Matches when the value equals this (a choice, yes/no, text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<serde_json::Value>,
    /// Matches when the number is at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<f64>,
    /// Matches when the number is at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<f64>,
}

impl CustomFactor {
    pub fn matches(&self, value: &serde_json::Value) -> bool {
        if let Some(expected) = &self.equals {
            return value == expected;
        }
        let Some(number) = value.as_f64() else { return false };
        self.at_least.is_none_or(|low| number >= low) && self.at_most.is_none_or(|high| number <= high)
    }
}

/// The churn-risk rules: weights, custom factors and where the bands start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RiskRules {
    pub weights: FactorWeights,
    #[serde(default)]
    pub custom: Vec<CustomFactor>,
    /// A score at or above this is high.
    pub high_from: f64,
    /// A score at or above this (and below `high_from`) is watch.
    pub watch_from: f64,
}

impl Default for RiskRules {
    fn default() -> Self {
        RiskRules {
            weights: FactorWeights::default(),
            custom: Vec::new(),
            high_from: 50.0,
            watch_from: 30.0,
        }
    }
}

/// Why rules cannot be used: the field and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl RiskRules {
    /// Weights at least 0 summing to 100 (built-in and custom together), custom keys named once,
    /// each custom factor with exactly one kind of match, and 0 < watch < high <= 100.
    pub fn check(&self) -> Result<(), Invalid> {
        let invalid = |field: &str, message: &str| {
            Err(Invalid {
                field: field.to_owned(),
                message: message.to_owned(),
            })
        };
        let weights: Vec<f64> = Factor::ALL
            .iter()
            .map(|factor| self.weights.of(*factor))
            .chain(self.custom.iter().map(|custom| custom.weight))
            .collect();
        if weights.iter().any(|weight| !weight.is_finite() || *weight < 0.0) {
            return invalid("weights", "every weight is a number of at least 0");
        }
        if (weights.iter().sum::<f64>() - 100.0).abs() > 1e-6 {
            return invalid("weights", "the weights, custom factors included, sum to 100");
        }
        for (index, custom) in self.custom.iter().enumerate() {
            let field = format!("custom[{index}]");
            if custom.key.trim().is_empty() {
                return invalid(&field, "a custom factor names its field");
            }
            if self.custom[..index].iter().any(|other| other.key == custom.key) {
                return invalid(&field, "a custom field is a factor once");
            }
            let by_number = custom.at_least.is_some() || custom.at_most.is_some();
            if custom.equals.is_some() == by_number {
                return invalid(
                    &field,
                    "a custom factor matches either a value (equals) or a range (atLeast, atMost)",
                );
            }
            if [custom.at_least, custom.at_most]
                .iter()
                .flatten()
                .any(|n| !n.is_finite())
            {
                return invalid(&field, "atLeast and atMost are numbers");
            }
        }
        let bands = [self.watch_from, self.high_from];
        if bands.iter().any(|n| !n.is_finite())
            || !(0.0 < self.watch_from && self.watch_from < self.high_from && self.high_from <= 100.0)
        {
            return invalid("bands", "0 < watchFrom < highFrom <= 100");
        }
        Ok(())
    }

    pub fn band(&self, score: f64) -> Band {
        if score >= self.high_from {
            Band::High
        } else if score >= self.watch_from {
            Band::Watch
        } else {
            Band::Low
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    High,
    Watch,
    Low,
}

/// An open issue or escalation on the day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Its share of the issues factor.
    pub fn share(self) -> f64 {
        match self {
            Severity::Low => 0.25,
            Severity::Medium => 0.5,
            Severity::High => 0.75,
            Severity::Critical => 1.0,
        }
    }
}

/// An account's facts on a day, as the factors read them. `None`: no data (the factor adds 0).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inputs {
    /// The latest health score on or before the day.
    pub health: Option<f64>,
    /// The health trend of the 30 days to the day (the health report's window): latest minus
    /// the score at its start.
    pub health_change: Option<f64>,
    /// Engagement score (0 to 100) of the 30 days to the day, and its change from the 30 days
    /// before those.
    pub engagement: Option<f64>,
    pub engagement_change: Option<f64>,
    /// 1 when coverage is urgent, 0.5 needs attention, 0 well covered.
    pub coverage_severity: Option<f64>,
    /// Days since the last contact (since onboarding when never contacted), and the tier's
    /// maximum days between contacts.
    pub days_since_contact: Option<i64>,
    pub max_days_between_contact: i64,
    /// The latest NPS answer (0 to 10) of the 365 days to the day.
    pub nps: Option<u8>,
    pub open_issues: Vec<Severity>,
    pub open_escalations: usize,
    /// Days from the day to the renewal date (negative: past it).
    pub days_to_renewal: Option<i64>,
    /// 1 onboarding, 0.75 implementing, 0.5 adopted, 0 optimizing or advocate.
    pub stage_severity: Option<f64>,
    /// The share of use cases implemented or optimized (in progress counts half).
    pub use_case_progress: Option<f64>,
    /// The custom fields' values on the day, by key.
    pub custom_fields: std::collections::BTreeMap<String, serde_json::Value>,
}

/// A fall of 20 points or more is full severity; a rise is none.
fn fall(change: Option<f64>) -> Option<f64> {
    change.map(|change| ((-change).max(0.0) / 20.0).min(1.0))
}

impl Inputs {
    /// The severity (0 to 1) of a built-in factor; `None` when the facts it reads are missing.
    pub fn severity(&self, factor: Factor) -> Option<f64> {
        let unit = |value: f64| value.clamp(0.0, 1.0);
        match factor {
            Factor::Health => self.health.map(|score| unit((100.0 - score) / 100.0)),
            Factor::HealthTrend => fall(self.health_change),
            Factor::Engagement => self.engagement.map(|score| unit((100.0 - score) / 100.0)),
            Factor::EngagementTrend => fall(self.engagement_change),
            Factor::Coverage => self.coverage_severity,
            Factor::Contact => self.days_since_contact.map(|days| {
                let max = self.max_days_between_contact.max(1) as f64;
                unit((days as f64 - max) / max)
            }),
            Factor::Nps => self.nps.map(|score| match score {
                0..=6 => 1.0,
                7..=8 => 0.5,
                _ => 0.0,
            }),
            Factor::Issues => Some(unit(self.open_issues.iter().map(|s| s.share()).sum())),
            Factor::Escalations => Some(if self.open_escalations > 0 { 1.0 } else { 0.0 }),
            Factor::Renewal => self.days_to_renewal.map(|days| unit((120 - days) as f64 / 120.0)),
            Factor::Adoption => {
                let parts: Vec<f64> = [self.stage_severity, self.use_case_progress.map(|p| 1.0 - p)]
                    .into_iter()
                    .flatten()
                    .collect();
                (!parts.is_empty()).then(|| parts.iter().sum::<f64>() / parts.len() as f64)
            }
        }
    }
}

/// One factor's part of a score.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The built-in factor, or `None` for a custom one (then `custom` names the field).
    pub factor: Option<Factor>,
    pub custom: Option<String>,
    pub weight: f64,
    /// `None`: no data.
    pub severity: Option<f64>,
    /// weight × severity.
    pub points: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The sum of the parts' points, rounded to one decimal (half away from zero).
    pub score: f64,
    pub band: Band,
    pub parts: Vec<Part>,
}

/// The score of `inputs` under `rules`.
pub fn score(inputs: &Inputs, rules: &RiskRules) -> Score {
    let mut parts: Vec<Part> = Factor::ALL
        .iter()
        .map(|factor| {
            let weight = rules.weights.of(*factor);
            let severity = inputs.severity(*factor);
            Part {
                factor: Some(*factor),
                custom: None,
                weight,
                severity,
                points: weight * severity.unwrap_or(0.0),
            }
        })
        .collect();
    for custom in &rules.custom {
        let severity = inputs
            .custom_fields
            .get(&custom.key)
            .map(|value| if custom.matches(value) { 1.0 } else { 0.0 });
        parts.push(Part {
            factor: None,
            custom: Some(custom.key.clone()),
            weight: custom.weight,
            severity,
            points: custom.weight * severity.unwrap_or(0.0),
        });
    }
    let score = round1(parts.iter().map(|part| part.points).sum::<f64>()).clamp(0.0, 100.0);
    Score {
        score,
        band: rules.band(score),
        parts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn struggling() -> Inputs {
        Inputs {
            health: Some(40.0),
            health_change: Some(-22.0),
            engagement: Some(30.0),
            engagement_change: Some(-10.0),
            coverage_severity: Some(1.0),
            days_since_contact: Some(45),
            max_days_between_contact: 30,
            nps: Some(5),
            open_issues: vec![Severity::High],
            open_escalations: 0,
            days_to_renewal: Some(60),
            stage_severity: Some(0.75),
            use_case_progress: Some(0.5),
            custom_fields: Default::default(),
        }
    }

    #[test]
    fn every_factor_adds_its_weight_times_its_severity() {
        let result = score(&struggling(), &RiskRules::default());
        let points: Vec<f64> = result.parts.iter().map(|part| round1(part.points)).collect();
        // health 20×0.6, trend 10×(22/20→1), engagement 15×0.7, trend 5×0.5, coverage 10×1,
        // contact 10×0.5, nps 10×1, issues 5×0.75, escalations 0, renewal 5×0.5, adoption 5×0.625
        assert_eq!(points, vec![12.0, 10.0, 10.5, 2.5, 10.0, 5.0, 10.0, 3.8, 0.0, 2.5, 3.1]);
        assert_eq!(result.score, 69.4);
        assert_eq!(result.band, Band::High);
    }

    #[test]
    fn missing_facts_add_nothing_and_say_so() {
        let result = score(&Inputs::default(), &RiskRules::default());
        assert_eq!(result.score, 0.0);
        assert_eq!(result.band, Band::Low);
        let health = &result.parts[0];
        assert_eq!((health.severity, health.points), (None, 0.0));
        // Issues and escalations always have data: none open is severity 0.
        assert_eq!(result.parts[7].severity, Some(0.0));
    }

    #[test]
    fn a_custom_factor_counts_when_its_value_matches() {
        let mut rules = RiskRules::default();
        rules.weights.adoption = 0.0;
        rules.custom.push(CustomFactor {
            key: "budget_frozen".into(),
            weight: 5.0,
            equals: Some(serde_json::json!(true)),
            at_least: None,
            at_most: None,
        });
        assert_eq!(rules.check(), Ok(()));
        let mut inputs = Inputs::default();
        inputs
            .custom_fields
            .insert("budget_frozen".into(), serde_json::json!(true));
        assert_eq!(score(&inputs, &rules).score, 5.0);
        inputs
            .custom_fields
            .insert("budget_frozen".into(), serde_json::json!(false));
        assert_eq!(score(&inputs, &rules).score, 0.0);
    }

    #[test]
    fn rules_that_do_not_sum_to_100_or_have_crossed_bands_are_refused() {
        let mut rules = RiskRules::default();
        rules.weights.health = 25.0;
        assert_eq!(rules.check().unwrap_err().field, "weights");
        let mut rules = RiskRules::default();
        rules.watch_from = 60.0;
        assert_eq!(rules.check().unwrap_err().field, "bands");
    }
}
