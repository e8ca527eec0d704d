//! The at-risk report: the accounts whose health as of a day is red or yellow, largest ARR first
//! (then the more urgent coverage priority, then by name), each with the lineage of its latest
//! score (source, reason, risk factors) and the gaps behind its coverage status.

use async_graphql::SimpleObject;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::coverage::{money, AccountCoverage};
use crate::scalars::{Date, HealthColour, Priority};

/// A risk factor the score's source named, with its weight when it gave one.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct RiskFactorView {
    pub name: String,
    pub weight: Option<f64>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct AtRiskAccount {
    pub coverage: AccountCoverage,
    /// The latest score measured on or before the day: where it came from (gainsight, manual,
    /// import ...), when it was measured and the reason recorded with it.
    pub health_source: Option<String>,
    pub health_reason: Option<String>,
    pub health_measured_at: Option<DateTime<Utc>>,
    pub risk_factors: Vec<RiskFactorView>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct AtRiskReport {
    pub as_of: Date,
    /// Red and yellow accounts in all, and of each colour.
    pub total: usize,
    pub red: usize,
    pub yellow: usize,
    /// Their ARR.
    pub arr: Decimal,
    /// `limit` of them from `offset`, in the report's order.
    pub accounts: Vec<AtRiskAccount>,
}

fn urgency(priority: Priority) -> u8 {
    match priority {
        Priority::Urgent => 0,
        Priority::Attention => 1,
        Priority::Ok => 2,
    }
}

/// Risk factors as stored: objects with a name and an optional weight (or, from the first
/// version of the event, plain names).
fn factors(stored: &Value) -> Vec<RiskFactorView> {
    stored
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| match item {
                    Value::String(name) => Some(RiskFactorView {
                        name: name.clone(),
                        weight: None,
                    }),
                    Value::Object(fields) => Some(RiskFactorView {
                        name: fields.get("name")?.as_str()?.to_owned(),
                        weight: fields.get("weight").and_then(Value::as_f64),
                    }),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The report over `accounts` (the coverage of every account as of `as_of`).
pub async fn report(
    pool: &PgPool,
    as_of: NaiveDate,
    accounts: Vec<AccountCoverage>,
    offset: usize,
    limit: usize,
) -> Result<AtRiskReport, sqlx::Error> {
    let mut at_risk: Vec<AccountCoverage> = accounts
        .into_iter()
        .filter(|account| matches!(account.health_colour, Some(HealthColour::Red | HealthColour::Yellow)))
        .collect();
    at_risk.sort_by(|a, b| {
        b.arr
            .cmp(&a.arr)
            .then(urgency(a.priority).cmp(&urgency(b.priority)))
            .then(a.name.cmp(&b.name))
            .then(a.customer_id.cmp(&b.customer_id))
    });
    let red = at_risk
        .iter()
        .filter(|account| account.health_colour == Some(HealthColour::Red))
        .count();
    let page: Vec<AccountCoverage> = at_risk.iter().skip(offset).take(limit).cloned().collect();
    let ids: Vec<Uuid> = page.iter().map(|account| account.customer_id).collect();
    let lineage: Vec<(Uuid, String, Option<String>, Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT DISTINCT ON (customer_id) customer_id, source, reason, risk_factors, measured_at
           FROM health_points WHERE customer_id = ANY ($1) AND measured_on <= $2
          ORDER BY customer_id, measured_at DESC, sequence DESC",
    )
    .bind(&ids)
    .bind(as_of)
    .fetch_all(pool)
    .await?;
    let accounts = page
        .into_iter()
        .map(|coverage| {
            let latest = lineage.iter().find(|(id, ..)| *id == coverage.customer_id);
            AtRiskAccount {
                health_source: latest.map(|(_, source, ..)| source.clone()),
                health_reason: latest.and_then(|(_, _, reason, ..)| reason.clone()),
                health_measured_at: latest.map(|(.., at)| *at),
                risk_factors: latest.map(|(_, _, _, stored, _)| factors(stored)).unwrap_or_default(),
                coverage,
            }
        })
        .collect();
    Ok(AtRiskReport {
        as_of: Date(as_of),
        total: at_risk.len(),
        red,
        yellow: at_risk.len() - red,
        arr: money(at_risk.iter().map(|account| account.arr).sum()),
        accounts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn risk_factors_of_either_version_are_read() {
        assert_eq!(
            factors(&json!(["usage drop", {"name": "champion left", "weight": 0.4}, {"name": "no exec"}, 7])),
            vec![
                RiskFactorView {
                    name: "usage drop".into(),
                    weight: None
                },
                RiskFactorView {
                    name: "champion left".into(),
                    weight: Some(0.4)
                },
                RiskFactorView {
                    name: "no exec".into(),
                    weight: None
                },
            ]
        );
        assert_eq!(factors(&json!(null)), vec![]);
    }
}
