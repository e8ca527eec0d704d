//! The GraphQL schema: its query root and how it is built.

use async_graphql::{Context, EmptyMutation, EmptySubscription, ErrorExtensions, Object, Result, Schema};
use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use crate::coverage::{account_coverage, build_report, AccountCoverage, CoverageReport, ReportFilter};
use crate::coverage_store::{account_facts, csms, Scope};
use crate::scalars::{CoverageStatus, Date, Tier};

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
