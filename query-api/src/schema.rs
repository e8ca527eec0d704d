//! The GraphQL schema: its query root and how it is built.

use async_graphql::{Context, EmptyMutation, EmptySubscription, ErrorExtensions, Object, Result, Schema};
use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, NaiveDate};
use events::engagement::{Period, Weights};

use crate::coverage::{account_coverage, build_report, AccountCoverage, CoverageReport, ReportFilter};
use crate::coverage_store::{account_facts, csms, Scope};
use crate::engagement::{self, CustomerEngagement, EngagementPortfolio};
use crate::health::{self, Granularity, HealthTrend};
use crate::scalars::{CoverageStatus, Date, Tier};
use crate::timeline::{self, TimelineEntry};

pub type CstrackSchema = Schema<QueryRoot, EmptyMutation, EmptySubscription>;

/// Deepest query accepted.
pub const MAX_DEPTH: usize = 12;
/// Most expensive query accepted (each field costs 1).
pub const MAX_COMPLEXITY: usize = 5_000;

/// The SDL clients build against (no data needed to describe the schema).
pub fn sdl() -> String {
    Schema::build(QueryRoot, EmptyMutation, EmptySubscription)
        .finish()
        .sdl()
}

pub fn build_schema(pool: PgPool) -> CstrackSchema {
    Schema::build(QueryRoot, EmptyMutation, EmptySubscription)
        .data(pool)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// A GraphQL error with a machine-readable `extensions.code`.
pub fn coded_error(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, extensions| extensions.set("code", code))
}

fn unavailable(error: sqlx::Error) -> async_graphql::Error {
    tracing::error!(%error, "read model query failed");
    coded_error("UNAVAILABLE", "the read models are unavailable; retry later")
}

fn today() -> Date {
    Date(Utc::now().date_naive())
}

/// The period named, or the month containing `as_of`.
fn period(text: Option<String>, as_of: NaiveDate) -> Result<Period> {
    match text {
        None => Ok(Period::containing(as_of, false)),
        Some(text) => Period::parse(&text).ok_or_else(|| {
            coded_error(
                "BAD_USER_INPUT",
                format!("`{text}` is not a period: use YYYY-MM or YYYY-Qn"),
            )
        }),
    }
}

fn not_found(what: &str) -> async_graphql::Error {
    coded_error("NOT_FOUND", format!("no {what}"))
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The health score as of the period's cut.
    Health,
    /// Renewed = 1, churned = 0 (customers with neither are left out).
    Renewal,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Correlation {
    pub outcome: Outcome,
    pub period: String,
    /// Pearson's r, three decimals; null when n < 3 or a variance is 0.
    pub r: Option<f64>,
    pub n: usize,
}

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// PRD-162 account coverage across the portfolio as of a day (default: today, UTC).
    async fn coverage_report(
        &self,
        ctx: &Context<'_>,
        as_of: Option<Date>,
        csm_id: Option<Uuid>,
        tier: Option<Tier>,
        status: Option<CoverageStatus>,
    ) -> Result<CoverageReport> {
        let pool = ctx.data::<PgPool>()?;
        let as_of = as_of.unwrap_or_else(today).0;
        let scope = Scope {
            customer_id: None,
            tier: tier.map(Into::into),
        };
        let facts = account_facts(pool, as_of, &scope).await.map_err(unavailable)?;
        let registered = csms(pool).await.map_err(unavailable)?;
        Ok(build_report(
            as_of,
            &facts,
            &registered,
            &ReportFilter { csm_id, status },
        ))
    }

    /// One customer's engagement in a period (default: the month of `asOf`), with the breakdown,
    /// the score's components and the trend against the previous period.
    async fn customer_engagement(
        &self,
        ctx: &Context<'_>,
        customer_id: Uuid,
        period: Option<String>,
        as_of: Option<Date>,
    ) -> Result<CustomerEngagement> {
        let pool = ctx.data::<PgPool>()?;
        let as_of = as_of.unwrap_or_else(today).0;
        let period = self::period(period, as_of)?;
        let previous = period.previous();
        let cut = period.cut(as_of);
        let facts = engagement::facts(pool, Some(customer_id), None, None, previous.start, cut)
            .await
            .map_err(unavailable)?;
        let facts = facts
            .first()
            .ok_or_else(|| not_found(&format!("customer {customer_id}")))?;
        let before = engagement::last_contacts(pool, Some(customer_id), cut)
            .await
            .map_err(unavailable)?;
        let before_previous = engagement::last_contacts(pool, Some(customer_id), previous.cut(as_of))
            .await
            .map_err(unavailable)?;
        Ok(engagement::customer_engagement(
            facts,
            &period,
            as_of,
            before.get(&customer_id).copied(),
            before_previous.get(&customer_id).copied(),
            &Weights::default(),
        ))
    }

    /// One customer's engagement over the last `periods` months (or quarters), oldest first.
    async fn engagement_trend(
        &self,
        ctx: &Context<'_>,
        customer_id: Uuid,
        #[graphql(default = 6, validator(minimum = 1, maximum = 24))] periods: i32,
        #[graphql(default = false)] quarterly: bool,
        as_of: Option<Date>,
    ) -> Result<Vec<CustomerEngagement>> {
        let pool = ctx.data::<PgPool>()?;
        let as_of = as_of.unwrap_or_else(today).0;
        let mut wanted = vec![Period::containing(as_of, quarterly)];
        for _ in 1..periods {
            let earlier = wanted.last().expect("one period at least").previous();
            wanted.push(earlier);
        }
        wanted.reverse();
        let first = wanted[0].previous();
        let facts = engagement::facts(pool, Some(customer_id), None, None, first.start, as_of)
            .await
            .map_err(unavailable)?;
        let facts = facts
            .first()
            .ok_or_else(|| not_found(&format!("customer {customer_id}")))?;
        let earlier = engagement::last_contacts(pool, Some(customer_id), first.start)
            .await
            .map_err(unavailable)?;
        let before = earlier.get(&customer_id).copied();
        Ok(wanted
            .iter()
            .map(|period| engagement::customer_engagement(facts, period, as_of, before, before, &Weights::default()))
            .collect())
    }

    /// The portfolio's engagement in a period: average, distribution by category, customers
    /// needing attention, comparison with the segment bands, and outliers within each tier.
    #[allow(clippy::too_many_arguments)]
    async fn engagement_metrics(
        &self,
        ctx: &Context<'_>,
        period: Option<String>,
        as_of: Option<Date>,
        csm_id: Option<Uuid>,
        tier: Option<Tier>,
        min_score: Option<f64>,
        max_score: Option<f64>,
    ) -> Result<EngagementPortfolio> {
        let pool = ctx.data::<PgPool>()?;
        let as_of = as_of.unwrap_or_else(today).0;
        let period = self::period(period, as_of)?;
        let items = portfolio_engagement(pool, &period, as_of, csm_id, tier).await?;
        Ok(engagement::portfolio(&period, as_of, items, min_score, max_score))
    }

    /// Pearson's r across customers between engagement in a period and an outcome.
    async fn engagement_correlation(
        &self,
        ctx: &Context<'_>,
        outcome: Outcome,
        period: Option<String>,
        as_of: Option<Date>,
    ) -> Result<Correlation> {
        let pool = ctx.data::<PgPool>()?;
        let as_of = as_of.unwrap_or_else(today).0;
        let period = self::period(period, as_of)?;
        let items = portfolio_engagement(pool, &period, as_of, None, None).await?;
        let outcomes: Vec<(Uuid, f64)> = match outcome {
            Outcome::Health => sqlx::query_as(
                "SELECT DISTINCT ON (customer_id) customer_id, score FROM health_points
                  WHERE measured_on <= $1 ORDER BY customer_id, measured_at DESC, sequence DESC",
            )
            .bind(period.cut(as_of))
            .fetch_all(pool)
            .await
            .map_err(unavailable)?,
            Outcome::Renewal => sqlx::query_as(
                "SELECT customer_id, CASE WHEN churned_on IS NOT NULL THEN 0.0 ELSE 1.0 END::float8 FROM customer_profiles
                  WHERE churned_on IS NOT NULL OR last_renewed_at IS NOT NULL",
            )
            .fetch_all(pool)
            .await
            .map_err(unavailable)?,
        };
        let outcomes: std::collections::HashMap<Uuid, f64> = outcomes.into_iter().collect();
        let pairs: Vec<(f64, f64)> = items
            .iter()
            .filter_map(|item| {
                outcomes
                    .get(&item.customer_id)
                    .map(|outcome| (item.raw_score, *outcome))
            })
            .collect();
        Ok(Correlation {
            outcome,
            period: period.label(),
            r: events::engagement::pearson(&pairs).map(|r| (r * 1000.0).round() / 1000.0),
            n: pairs.len(),
        })
    }

    /// One chronological feed of a customer's activities, notes, health changes, task changes,
    /// partner submissions and milestones, newest first, paginated by cursor.
    #[allow(clippy::too_many_arguments)]
    async fn customer_timeline(
        &self,
        ctx: &Context<'_>,
        customer_id: Uuid,
        from: Option<DateTime<chrono::Utc>>,
        to: Option<DateTime<chrono::Utc>>,
        kinds: Option<Vec<String>>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, TimelineEntry, EmptyFields, EmptyFields>> {
        let pool = ctx.data::<PgPool>()?;
        let after = match after {
            None => None,
            Some(cursor) => {
                Some(timeline::decode_cursor(&cursor).ok_or_else(|| coded_error("BAD_USER_INPUT", "unknown cursor"))?)
            }
        };
        timeline::page(pool, customer_id, from, to, kinds, first.max(1) as usize, after)
            .await
            .map_err(unavailable)
    }

    /// A customer's health over time: last score of each bucket carried forward, each point with
    /// its lineage, and the 30/60/90-day trends ending on `to` (default today).
    async fn health_trend(
        &self,
        ctx: &Context<'_>,
        customer_id: Uuid,
        from: Option<Date>,
        to: Option<Date>,
        #[graphql(default_with = "Granularity::Day")] granularity: Granularity,
    ) -> Result<HealthTrend> {
        let pool = ctx.data::<PgPool>()?;
        let to = to.unwrap_or_else(today).0;
        let from = from.map_or(to - chrono::Days::new(90), |from| from.0);
        if from > to {
            return Err(coded_error("BAD_USER_INPUT", "`from` is after `to`"));
        }
        let points = health::points(pool, customer_id).await.map_err(unavailable)?;
        Ok(health::trend(customer_id, &points, from, to, granularity))
    }

    /// Each CSM's workload as of a day (default today) and the team's balance, handoffs of the
    /// last 30 days and rebalancing suggestions.
    async fn csm_workload(&self, ctx: &Context<'_>, as_of: Option<Date>) -> Result<crate::workload::TeamWorkload> {
        let pool = ctx.data::<PgPool>()?;
        crate::workload::team(pool, as_of.unwrap_or_else(today).0)
            .await
            .map_err(unavailable)
    }

    /// Alerts, newest first: by CSM, customer, kind and whether acknowledged.
    #[allow(clippy::too_many_arguments)]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        csm_id: Option<Uuid>,
        customer_id: Option<Uuid>,
        kind: Option<String>,
        acknowledged: Option<bool>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, crate::alerts::Alert, EmptyFields, EmptyFields>> {
        let pool = ctx.data::<PgPool>()?;
        crate::alerts::page(
            pool,
            csm_id,
            customer_id,
            kind,
            acknowledged,
            first.max(1) as usize,
            after,
        )
        .await
    }

    /// One account's coverage as of a day: inputs, standards, score, gaps, status and priority.
    async fn account_coverage(
        &self,
        ctx: &Context<'_>,
        customer_id: Uuid,
        as_of: Option<Date>,
    ) -> Result<AccountCoverage> {
        let pool = ctx.data::<PgPool>()?;
        let as_of = as_of.unwrap_or_else(today).0;
        let scope = Scope {
            customer_id: Some(customer_id),
            tier: None,
        };
        let facts = account_facts(pool, as_of, &scope).await.map_err(unavailable)?;
        facts.first().map(account_coverage).ok_or_else(|| {
            coded_error(
                "NOT_FOUND",
                format!("no customer {customer_id} was onboarded by {as_of}"),
            )
        })
    }
}

/// Every customer's engagement for a period (scope: CSM and tier).
async fn portfolio_engagement(
    pool: &PgPool,
    period: &Period,
    as_of: NaiveDate,
    csm_id: Option<Uuid>,
    tier: Option<Tier>,
) -> Result<Vec<CustomerEngagement>> {
    let previous = period.previous();
    let cut = period.cut(as_of);
    let facts = engagement::facts(pool, None, csm_id, tier.map(Into::into), previous.start, cut)
        .await
        .map_err(unavailable)?;
    let before = engagement::last_contacts(pool, None, cut).await.map_err(unavailable)?;
    let before_previous = engagement::last_contacts(pool, None, previous.cut(as_of))
        .await
        .map_err(unavailable)?;
    Ok(facts
        .iter()
        .map(|facts| {
            engagement::customer_engagement(
                facts,
                period,
                as_of,
                before.get(&facts.customer_id).copied(),
                before_previous.get(&facts.customer_id).copied(),
                &Weights::default(),
            )
        })
        .collect())
}
