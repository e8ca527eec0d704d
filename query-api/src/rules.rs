//! The rules a report is computed under: those in force (the Rules stream), or what-if rules a
//! caller passes with the query, used for that answer only and never stored.

use async_graphql::{Context, InputObject, Result};
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

/// Rules to recompute a report under; what is not given stays as in force.
#[derive(InputObject, Debug, Clone, Default)]
pub struct RulesInput {
    pub weights: Option<WeightsInput>,
    pub standards: Option<Vec<StandardInput>>,
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
    Ok(rules.what_if())
}
