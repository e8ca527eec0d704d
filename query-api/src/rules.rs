//! The rules a report is computed under: those in force (the Rules stream), or what-if rules a
//! caller passes with the query, used for that answer only and never stored.

use async_graphql::{Context, InputObject, Result, SimpleObject};
use chrono::{DateTime, Utc};
use events::coverage::CoverageStandard;
use events::engagement::Weights;
use events::rules::Rules;
use sqlx::PgPool;

use crate::scalars::Tier;
use crate::schema::{coded_error, unavailable};

/// Engagement weights; each at least 0, summing to 1.
#[derive(InputObject, Debug, Clone, Copy)]
pub struct WeightsInput {
    pub email: f64,
    pub response: f64,
    pub meeting: f64,
    pub quality: f64,
    pub breadth: f64,
    pub recency: f64,
}

/// One tier's coverage standard.
#[derive(InputObject, Debug, Clone, Copy)]
pub struct StandardInput {
    pub tier: Tier,
    pub max_days_between_contact: i32,
    pub expected_touches_per_month: i32,
    pub min_meetings_per_quarter: i32,
    pub stakeholder_breadth: i32,
}

/// The CSM hours a month one account of a tier needs (the workload report's).
#[derive(InputObject, Debug, Clone, Copy)]
pub struct HoursInput {
    pub tier: Tier,
    /// More than 0, at most 744.
    pub hours_per_month: f64,
}

/// The points each churn-risk factor adds at full severity (docs/DOMAIN.md section 12).
#[derive(InputObject, SimpleObject, Debug, Clone, Copy)]
#[graphql(input_name = "RiskWeightsInput")]
pub struct RiskWeights {
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

impl From<RiskWeights> for events::risk::FactorWeights {
    fn from(w: RiskWeights) -> Self {
        events::risk::FactorWeights {
            health: w.health,
            health_trend: w.health_trend,
            engagement: w.engagement,
            engagement_trend: w.engagement_trend,
            coverage: w.coverage,
            contact: w.contact,
            nps: w.nps,
            issues: w.issues,
            escalations: w.escalations,
            renewal: w.renewal,
            adoption: w.adoption,
        }
    }
}

impl From<events::risk::FactorWeights> for RiskWeights {
    fn from(w: events::risk::FactorWeights) -> Self {
        RiskWeights {
            health: w.health,
            health_trend: w.health_trend,
            engagement: w.engagement,
            engagement_trend: w.engagement_trend,
            coverage: w.coverage,
            contact: w.contact,
            nps: w.nps,
            issues: w.issues,
            escalations: w.escalations,
            renewal: w.renewal,
            adoption: w.adoption,
        }
    }
}

/// A custom field made a churn-risk factor: full severity when the value equals `equals`, or
/// when the number is within `atLeast`..`atMost`.
#[derive(InputObject, SimpleObject, Debug, Clone)]
#[graphql(input_name = "CustomRiskFactorInput")]
pub struct CustomRiskFactor {
    pub key: String,
    pub weight: f64,
    pub equals: Option<async_graphql::Json<serde_json::Value>>,
    pub at_least: Option<f64>,
    pub at_most: Option<f64>,
}

/// The churn-risk rules: weights (custom factors included, summing to 100) and bands.
#[derive(InputObject, SimpleObject, Debug, Clone)]
#[graphql(input_name = "RiskRulesInput")]
pub struct RiskRulesView {
    pub weights: RiskWeights,
    #[graphql(default)]
    pub custom: Vec<CustomRiskFactor>,
    pub high_from: f64,
    pub watch_from: f64,
}

impl From<&events::risk::RiskRules> for RiskRulesView {
    fn from(rules: &events::risk::RiskRules) -> Self {
        RiskRulesView {
            weights: rules.weights.into(),
            custom: rules
                .custom
                .iter()
                .map(|c| CustomRiskFactor {
                    key: c.key.clone(),
                    weight: c.weight,
                    equals: c.equals.clone().map(async_graphql::Json),
                    at_least: c.at_least,
                    at_most: c.at_most,
                })
                .collect(),
            high_from: rules.high_from,
            watch_from: rules.watch_from,
        }
    }
}

impl From<RiskRulesView> for events::risk::RiskRules {
    fn from(view: RiskRulesView) -> Self {
        events::risk::RiskRules {
            weights: view.weights.into(),
            custom: view
                .custom
                .into_iter()
                .map(|c| events::risk::CustomFactor {
                    key: c.key,
                    weight: c.weight,
                    equals: c.equals.map(|json| json.0),
                    at_least: c.at_least,
                    at_most: c.at_most,
                })
                .collect(),
            high_from: view.high_from,
            watch_from: view.watch_from,
        }
    }
}

/// Rules to recompute a report under; what is not given stays as in force.
#[derive(InputObject, Debug, Clone, Default)]
pub struct RulesInput {
    pub weights: Option<WeightsInput>,
    pub standards: Option<Vec<StandardInput>>,
    pub hours: Option<Vec<HoursInput>>,
    /// Churn-risk weights and bands.
    pub risk: Option<RiskRulesView>,
}

/// One tier's rules in force: its coverage standard and the workload hours of its accounts.
#[derive(SimpleObject, Debug, Clone)]
pub struct TierRules {
    pub tier: Tier,
    pub max_days_between_contact: i32,
    pub expected_touches_per_month: i32,
    pub min_meetings_per_quarter: i32,
    pub stakeholder_breadth: i32,
    pub hours_per_month: f64,
}

/// The engagement score's weights in force, summing to 1.
#[derive(SimpleObject, Debug, Clone, Copy)]
pub struct WeightsInForce {
    pub email: f64,
    pub response: f64,
    pub meeting: f64,
    pub quality: f64,
    pub breadth: f64,
    pub recency: f64,
}

/// The rules every report is computed under unless a query passes its own.
#[derive(SimpleObject, Debug, Clone)]
pub struct RulesInForce {
    /// The Rules stream's sequence (`0`: docs/DOMAIN.md's defaults, never changed).
    pub version: String,
    /// When the latest change was recorded, and by whom (none for the defaults).
    pub changed_at: Option<DateTime<Utc>>,
    pub changed_by: Option<String>,
    /// Enterprise, mid-market, SMB.
    pub standards: Vec<TierRules>,
    pub weights: WeightsInForce,
    /// The churn-risk weights and bands.
    pub risk: RiskRulesView,
    /// The reminder rules, on or off (docs/DOMAIN.md section 13).
    pub reminders: Vec<ReminderRuleView>,
}

/// A reminder rule as the settings screen shows it.
#[derive(SimpleObject, Debug, Clone)]
pub struct ReminderRuleView {
    pub id: String,
    pub title: String,
    /// no_contact, health_below, engagement_at_risk or task_overdue.
    pub kind: String,
    /// The days of no_contact and task_overdue.
    pub days: Option<i32>,
    /// The score of health_below.
    pub score: Option<f64>,
    pub enabled: bool,
}

impl From<&events::reminder::ReminderRule> for ReminderRuleView {
    fn from(rule: &events::reminder::ReminderRule) -> Self {
        use events::reminder::RuleCondition::*;
        let (kind, days, score) = match rule.condition {
            NoContact { days } => ("no_contact", Some(days as i32), None),
            HealthBelow { score } => ("health_below", None, Some(score)),
            EngagementAtRisk => ("engagement_at_risk", None, None),
            TaskOverdue { days } => ("task_overdue", Some(days as i32), None),
        };
        ReminderRuleView {
            id: rule.id.clone(),
            title: rule.title.clone(),
            kind: kind.into(),
            days,
            score,
            enabled: rule.enabled,
        }
    }
}

/// The rules in force with when they last changed.
pub async fn in_force(pool: &PgPool) -> Result<RulesInForce> {
    let rules = events::service::read_models::current_rules(pool)
        .await
        .map_err(unavailable)?;
    let latest: Option<(DateTime<Utc>, Option<String>)> = sqlx::query_as(
        "SELECT recorded_at, metadata->>'actor_id' FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(events::rules::RulesEvent::STREAM_TYPE)
    .bind(events::rules::RULES_STREAM_ID)
    .fetch_optional(pool)
    .await
    .map_err(unavailable)?;
    let figure = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    let w = rules.weights;
    Ok(RulesInForce {
        version: rules.version.clone(),
        changed_at: latest.as_ref().map(|(at, _)| *at),
        changed_by: latest.and_then(|(_, by)| by),
        standards: events::customer::Tier::ALL
            .into_iter()
            .map(|tier| {
                let standard = rules.standard(tier);
                TierRules {
                    tier: tier.into(),
                    max_days_between_contact: i32::try_from(standard.max_days_between_contact).unwrap_or(i32::MAX),
                    expected_touches_per_month: figure(standard.expected_touches_per_month),
                    min_meetings_per_quarter: figure(standard.min_meetings_per_quarter),
                    stakeholder_breadth: figure(standard.stakeholder_breadth),
                    hours_per_month: rules.hours(tier),
                }
            })
            .collect(),
        weights: WeightsInForce {
            email: w.email,
            response: w.response,
            meeting: w.meeting,
            quality: w.quality,
            breadth: w.breadth,
            recency: w.recency,
        },
        risk: RiskRulesView::from(&rules.risk),
        reminders: rules.reminders.iter().map(ReminderRuleView::from).collect(),
    })
}

fn invalid(field: &str, message: &str) -> async_graphql::Error {
    coded_error("BAD_USER_INPUT", format!("rules.{field}: {message}"))
        .extend_with(|_, extensions| extensions.set("field", format!("rules.{field}")))
}

use async_graphql::ErrorExtensions;

/// The rules in force, overridden by `input` when given (then versioned `what-if:<digest>`).
pub async fn effective(ctx: &Context<'_>, input: Option<RulesInput>) -> Result<Rules> {
    let mut rules = events::service::read_models::current_rules(ctx.data::<PgPool>()?)
        .await
        .map_err(unavailable)?;
    let Some(input) = input else { return Ok(rules) };
    if let Some(w) = input.weights {
        let all = [w.email, w.response, w.meeting, w.quality, w.breadth, w.recency];
        if all.iter().any(|weight| !weight.is_finite() || *weight < 0.0) {
            return Err(invalid("weights", "weights are non-negative numbers"));
        }
        if (all.iter().sum::<f64>() - 1.0).abs() > 1e-6 {
            return Err(invalid("weights", "weights sum to 1"));
        }
        rules.weights = Weights {
            email: w.email,
            response: w.response,
            meeting: w.meeting,
            quality: w.quality,
            breadth: w.breadth,
            recency: w.recency,
        };
    }
    for (index, standard) in input.standards.unwrap_or_default().into_iter().enumerate() {
        let numbers = [
            standard.max_days_between_contact,
            standard.expected_touches_per_month,
            standard.min_meetings_per_quarter,
            standard.stakeholder_breadth,
        ];
        if standard.max_days_between_contact < 1 || numbers.iter().any(|n| *n < 0) {
            return Err(invalid(
                &format!("standards[{index}]"),
                "maxDaysBetweenContact is at least 1 and the other figures at least 0",
            ));
        }
        rules.set_standard(
            standard.tier.into(),
            CoverageStandard {
                max_days_between_contact: i64::from(standard.max_days_between_contact),
                expected_touches_per_month: standard.expected_touches_per_month as u32,
                min_meetings_per_quarter: standard.min_meetings_per_quarter as u32,
                stakeholder_breadth: standard.stakeholder_breadth as u32,
            },
        );
    }
    for (index, hours) in input.hours.unwrap_or_default().into_iter().enumerate() {
        if !hours.hours_per_month.is_finite() || hours.hours_per_month <= 0.0 || hours.hours_per_month > 744.0 {
            return Err(invalid(
                &format!("hours[{index}]"),
                "hoursPerMonth is more than 0 and at most 744",
            ));
        }
        rules.set_hours(hours.tier.into(), hours.hours_per_month);
    }
    if let Some(risk) = input.risk {
        let risk = events::risk::RiskRules::from(risk);
        if let Err(invalid) = risk.check() {
            return Err(coded_error(
                "BAD_USER_INPUT",
                format!("rules.risk.{}: {}", invalid.field, invalid.message),
            )
            .extend_with(|_, extensions| extensions.set("field", format!("rules.risk.{}", invalid.field))));
        }
        rules.risk = risk;
    }
    Ok(rules.what_if())
}
