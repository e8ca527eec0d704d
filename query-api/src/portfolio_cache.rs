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
}

impl Default for PortfolioCaches {
    fn default() -> Self {
        Self {
            coverage: PortfolioCache::new(events::service::read_models::COVERAGE_PROJECTORS),
            engagement: PortfolioCache::new(&["customers"]),
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
    match caches {
        Some(caches) => caches.coverage.rows(pool, &as_of, load).await,
        None => load(None).await.map(Arc::new),
    }
}

/// Every customer onboarded by the last window's cut with its metrics for each window, by name.
pub async fn all_engagement(
    pool: &PgPool,
    caches: Option<&PortfolioCaches>,
    windows: &[Window],
) -> Result<Arc<Vec<EngagementSummary>>, sqlx::Error> {
    let load =
        |customers: Option<Vec<Uuid>>| async move { engagement_summaries(pool, customers.as_deref(), windows).await };
    match caches {
        Some(caches) => caches.engagement.rows(pool, &windows.to_vec(), load).await,
        None => load(None).await.map(Arc::new),
    }
}
