//! Every customer's report rows, cached in this process over the live read models (see
//! `events::service::report_cache`): a portfolio report reads only what changed since the last.

use std::sync::Arc;

use chrono::NaiveDate;
use sqlx::PgPool;
use uuid::Uuid;

use crate::coverage_store::{account_facts, AccountFacts};
use crate::engagement::{engagement_summaries, EngagementSummary, Window};
use events::service::report_cache::PortfolioCache;

pub struct PortfolioCaches {
    /// Coverage facts of every account, per report day.
    coverage: PortfolioCache<NaiveDate, AccountFacts>,
    /// Engagement metrics of every customer, per list of windows.
    engagement: PortfolioCache<Vec<Window>, EngagementSummary>,
    /// Churn-risk scores of every customer, per day and rules version.
    pub risk: crate::risk::RiskCache,
}

impl Default for PortfolioCaches {
    fn default() -> Self {
        Self {
            coverage: PortfolioCache::new(events::service::read_models::COVERAGE_PROJECTORS),
            engagement: PortfolioCache::new(&["customers"]),
            risk: crate::risk::RiskCache::default(),
        }
    }
}

/// Every account onboarded by `as_of` with its facts as of then, by name; through `caches` when
/// given (the live read models), straight from `pool` otherwise (a snapshot).
pub async fn all_account_facts(
    pool: &PgPool,
    caches: Option<&PortfolioCaches>,
    as_of: NaiveDate,
) -> Result<Arc<Vec<AccountFacts>>, sqlx::Error> {
    let load = |customers: Option<Vec<Uuid>>| async move { account_facts(pool, as_of, customers.as_deref()).await };
    let rows = match caches {
        Some(caches) => caches.coverage.rows(pool, &as_of, load).await?,
        None => Arc::new(load(None).await?),
    };
    without_churned(pool, as_of, rows, |facts| facts.customer_id).await
}

/// `rows` without the customers churned by `as_of`, which no portfolio report counts.
async fn without_churned<T: Clone>(
    pool: &PgPool,
    as_of: NaiveDate,
    rows: Arc<Vec<T>>,
    customer: impl Fn(&T) -> Uuid,
) -> Result<Arc<Vec<T>>, sqlx::Error> {
    let churned = events::service::read_models::churned_by(pool, as_of).await?;
    if !rows.iter().any(|row| churned.contains(&customer(row))) {
        return Ok(rows);
    }
    Ok(Arc::new(
        rows.iter()
            .filter(|row| !churned.contains(&customer(row)))
            .cloned()
            .collect(),
    ))
}

/// Every customer onboarded by the last window's cut with its metrics for each window, by name.
pub async fn all_engagement(
    pool: &PgPool,
    caches: Option<&PortfolioCaches>,
    windows: &[Window],
) -> Result<Arc<Vec<EngagementSummary>>, sqlx::Error> {
    let load =
        |customers: Option<Vec<Uuid>>| async move { engagement_summaries(pool, customers.as_deref(), windows).await };
    let rows = match caches {
        Some(caches) => caches.engagement.rows(pool, &windows.to_vec(), load).await?,
        None => Arc::new(load(None).await?),
    };
    let as_of = windows.iter().map(|window| window.cut).max().unwrap_or(NaiveDate::MIN);
    without_churned(pool, as_of, rows, |summary| summary.customer_id).await
}
