//! The `Rules` aggregate: coverage standards per tier, engagement weights and workload hours.
//! Each change appends one event; the stream's sequence is the rules version reports name.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::customer::Tier;
use events::rules::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::permissions::Operation;
use super::{CommandError, DomainServices, Guarded};

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeCoverageStandards {
    pub tier: Tier,
    #[schemars(range(min = 1, max = 365))]
    pub max_days_between_contact: u32,
    #[schemars(range(min = 1, max = 100))]
    pub expected_touches_per_month: u32,
    #[schemars(range(min = 1, max = 100))]
    pub min_meetings_per_quarter: u32,
    #[schemars(range(min = 1, max = 100))]
    pub stakeholder_breadth: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
/// The six weights, each from 0 to 1, must sum to 1 (within 1e-9).
pub struct ChangeEngagementWeights {
    #[schemars(range(min = 0, max = 1))]
    pub email: f64,
    #[schemars(range(min = 0, max = 1))]
    pub response: f64,
    #[schemars(range(min = 0, max = 1))]
    pub meeting: f64,
    #[schemars(range(min = 0, max = 1))]
    pub quality: f64,
    #[schemars(range(min = 0, max = 1))]
    pub breadth: f64,
    #[schemars(range(min = 0, max = 1))]
    pub recency: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeWorkloadHours {
    pub tier: Tier,
    /// 0.01 to 744, at most two decimals.
    #[schemars(range(min = 0.01, max = 744), extend("multipleOf" = 0.01))]
    pub hours_per_month: f64,
}

/// The churn-risk rules (docs/DOMAIN.md section 12): the points each factor adds at full
/// severity, each at least 0, custom factors included summing to 100; bands with
/// 0 < watch_from < high_from <= 100.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeChurnRiskRules {
    pub weights: events::risk::FactorWeights,
    #[serde(default)]
    pub custom: Vec<events::risk::CustomFactor>,
    #[schemars(range(min = 0, max = 100))]
    pub high_from: f64,
    #[schemars(range(min = 0, max = 100))]
    pub watch_from: f64,
}

/// The reminder rules (docs/DOMAIN.md section 13), all of them: ids unique, thresholds in range.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeReminderRules {
    #[schemars(length(max = 50))]
    pub rules: Vec<events::reminder::ReminderRule>,
}

/// Checks reminder rules: unique ids of letters, digits and dashes, titles, thresholds in range.
fn check_reminder_rules(rules: &[events::reminder::ReminderRule]) -> Result<(), CommandError> {
    use events::reminder::RuleCondition;
    if rules.len() > 50 {
        return Err(CommandError::invalid("too_many", "rules", "at most 50 reminder rules"));
    }
    let mut seen = std::collections::HashSet::new();
    for (index, rule) in rules.iter().enumerate() {
        let field = |name: &str| format!("rules[{index}].{name}");
        let id_ok = !rule.id.is_empty()
            && rule.id.len() <= 40
            && rule
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !id_ok {
            return Err(CommandError::invalid(
                "invalid_id",
                field("id"),
                "a rule id is 1 to 40 lowercase letters, digits and dashes",
            ));
        }
        if !seen.insert(rule.id.as_str()) {
            return Err(CommandError::invalid(
                "duplicate",
                field("id"),
                format!("rule id {} is used twice", rule.id),
            ));
        }
        super::name_text(&rule.title, "title", 200).map_err(|error| error.within(&format!("rules[{index}]")))?;
        let in_range = match &rule.condition {
            RuleCondition::NoContact { days } | RuleCondition::TaskOverdue { days } => (1..=365).contains(days),
            RuleCondition::HealthBelow { score } => score.is_finite() && *score >= 0.01 && *score <= 100.0,
            RuleCondition::EngagementAtRisk => true,
        };
        if !in_range {
            return Err(CommandError::invalid(
                "out_of_range",
                field("condition"),
                "days are 1 to 365 and a health score above 0 and at most 100",
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub enum RulesCommand {
    ChangeCoverageStandards(ChangeCoverageStandards),
    ChangeEngagementWeights(ChangeEngagementWeights),
    ChangeWorkloadHours(ChangeWorkloadHours),
    ChangeChurnRiskRules(ChangeChurnRiskRules),
    ChangeReminderRules(ChangeReminderRules),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rules;

fn within(value: u32, field: &'static str, low: u32, high: u32) -> Result<u32, CommandError> {
    if value < low || value > high {
        return Err(CommandError::invalid(
            "out_of_range",
            field,
            format!("{field} must be between {low} and {high}"),
        ));
    }
    Ok(value)
}

impl Aggregate for Rules {
    const TYPE: &'static str = RulesEvent::STREAM_TYPE;
    type Command = RulesCommand;
    type Event = RulesEvent;
    type Error = CommandError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let occurred_at = services.clock.now();
        let event = match command {
            RulesCommand::ChangeCoverageStandards(standards) => {
                RulesEvent::CoverageStandardsChanged(CoverageStandardsChanged {
                    tier: standards.tier,
                    max_days_between_contact: within(
                        standards.max_days_between_contact,
                        "max_days_between_contact",
                        1,
                        365,
                    )?,
                    expected_touches_per_month: within(
                        standards.expected_touches_per_month,
                        "expected_touches_per_month",
                        1,
                        100,
                    )?,
                    min_meetings_per_quarter: within(
                        standards.min_meetings_per_quarter,
                        "min_meetings_per_quarter",
                        1,
                        100,
                    )?,
                    stakeholder_breadth: within(standards.stakeholder_breadth, "stakeholder_breadth", 1, 100)?,
                    occurred_at,
                })
            }
            RulesCommand::ChangeEngagementWeights(weights) => {
                let all = [
                    weights.email,
                    weights.response,
                    weights.meeting,
                    weights.quality,
                    weights.breadth,
                    weights.recency,
                ];
                if all.iter().any(|weight| !weight.is_finite() || *weight < 0.0) {
                    return Err(CommandError::invalid(
                        "out_of_range",
                        "weights",
                        "weights are non-negative numbers",
                    ));
                }
                if (all.iter().sum::<f64>() - 1.0).abs() > 1e-9 {
                    return Err(CommandError::invalid(
                        "weights_sum",
                        "weights",
                        "the six weights must sum to 1",
                    ));
                }
                RulesEvent::EngagementWeightsChanged(EngagementWeightsChanged {
                    email: weights.email,
                    response: weights.response,
                    meeting: weights.meeting,
                    quality: weights.quality,
                    breadth: weights.breadth,
                    recency: weights.recency,
                    occurred_at,
                })
            }
            RulesCommand::ChangeWorkloadHours(hours) => {
                let hours_per_month = hours.hours_per_month;
                let cents = hours_per_month * 100.0;
                if !hours_per_month.is_finite()
                    || !(0.01..=744.0).contains(&hours_per_month)
                    || (cents.round() - cents).abs() > 1e-6
                {
                    return Err(CommandError::invalid(
                        "out_of_range",
                        "hours_per_month",
                        "hours_per_month must be from 0.01 to 744, with at most two decimals",
                    ));
                }
                RulesEvent::WorkloadHoursChanged(WorkloadHoursChanged {
                    tier: hours.tier,
                    hours_per_month: hours.hours_per_month,
                    occurred_at,
                })
            }
            RulesCommand::ChangeChurnRiskRules(change) => {
                let rules = events::risk::RiskRules {
                    weights: change.weights,
                    custom: change.custom,
                    high_from: change.high_from,
                    watch_from: change.watch_from,
                };
                if let Err(invalid) = rules.check() {
                    let code = if invalid.field == "weights" {
                        "weights_sum"
                    } else {
                        "out_of_range"
                    };
                    return Err(CommandError::invalid(code, invalid.field, invalid.message));
                }
                RulesEvent::ChurnRiskRulesChanged(ChurnRiskRulesChanged {
                    weights: rules.weights,
                    custom: rules.custom,
                    high_from: rules.high_from,
                    watch_from: rules.watch_from,
                    occurred_at,
                })
            }
            RulesCommand::ChangeReminderRules(change) => {
                check_reminder_rules(&change.rules)?;
                let rules = change
                    .rules
                    .into_iter()
                    .map(|rule| events::reminder::ReminderRule {
                        title: rule.title.trim().to_owned(),
                        ..rule
                    })
                    .collect();
                RulesEvent::ReminderRulesChanged(ReminderRulesChanged { rules, occurred_at })
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {}
}

impl Guarded for Rules {
    fn operation(_command: &RulesCommand) -> Operation {
        Operation::ChangeRules
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::domain::fixed;

    #[tokio::test]
    async fn changes_standards_weights_and_hours_within_bounds() {
        let test = || TestFramework::<Rules>::with(fixed::services(vec![]));
        let events = test()
            .given_no_previous_events()
            .when_async(RulesCommand::ChangeCoverageStandards(ChangeCoverageStandards {
                tier: Tier::Smb,
                max_days_between_contact: 45,
                expected_touches_per_month: 1,
                min_meetings_per_quarter: 1,
                stakeholder_breadth: 2,
            }))
            .await
            .inspect_result()
            .unwrap();
        assert_eq!(events.len(), 1);
        test()
            .given_no_previous_events()
            .when_async(RulesCommand::ChangeCoverageStandards(ChangeCoverageStandards {
                tier: Tier::Smb,
                max_days_between_contact: 0,
                expected_touches_per_month: 1,
                min_meetings_per_quarter: 1,
                stakeholder_breadth: 2,
            }))
            .await
            .then_expect_error_message("max_days_between_contact must be between 1 and 365");
        test()
            .given_no_previous_events()
            .when_async(RulesCommand::ChangeEngagementWeights(ChangeEngagementWeights {
                email: 0.2,
                response: 0.2,
                meeting: 0.2,
                quality: 0.2,
                breadth: 0.2,
                recency: 0.2,
            }))
            .await
            .then_expect_error_message("the six weights must sum to 1");
        test()
            .given_no_previous_events()
            .when_async(RulesCommand::ChangeWorkloadHours(ChangeWorkloadHours {
                tier: Tier::Enterprise,
                hours_per_month: 0.0,
            }))
            .await
            .then_expect_error_message("hours_per_month must be from 0.01 to 744, with at most two decimals");
        let mut weights = events::risk::FactorWeights::default();
        weights.health = 30.0;
        test()
            .given_no_previous_events()
            .when_async(RulesCommand::ChangeChurnRiskRules(ChangeChurnRiskRules {
                weights,
                custom: vec![],
                high_from: 50.0,
                watch_from: 30.0,
            }))
            .await
            .then_expect_error_message("the weights, custom factors included, sum to 100");
    }
}
