//! The GraphQL schema: its query root and how it is built.

use std::sync::Arc;

use async_graphql::{Context, EmptyMutation, ErrorExtensions, Object, Result, Schema};
use chrono::{Datelike, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, NaiveDate};
use events::engagement::{Period, Weights};

use crate::coverage::{account_coverage, build_report, AccountCoverage, CoverageReport, ReportFilter};
use crate::coverage_store::{account_facts, csms, AccountFacts};
use crate::engagement::{self, CustomerEngagement, EngagementPortfolio};
use crate::health::{self, Granularity, HealthTrend};
use crate::portfolio_cache::{all_account_facts, all_engagement, PortfolioCaches};
use crate::scalars::{CoverageStatus, Date, Tier};
use crate::timeline::{self, TimelineEntry};

pub type CstrackSchema = Schema<QueryRoot, EmptyMutation, SubscriptionRoot>;

use crate::live::SubscriptionRoot;

/// Deepest query accepted.
pub const MAX_DEPTH: usize = 12;
/// Most expensive query accepted. A field costs 1; a list page costs its children once per item
/// asked for; a portfolio-wide report costs [`REPORT_COST`] (it reads every customer).
pub const MAX_COMPLEXITY: usize = 5_000;
/// The cost of one portfolio-wide report: at most 20 reports in one request.
pub const REPORT_COST: usize = 250;

/// The cost of a page of `first` items whose selection costs `child` per item.
fn page_cost(first: i32, child: usize) -> usize {
    (first.clamp(1, crate::timeline::MAX_PAGE as i32) as usize).saturating_mul(child.max(1))
}

/// The SDL clients build against (no data needed to describe the schema).
pub fn sdl() -> String {
    Schema::build(QueryRoot::default(), EmptyMutation, SubscriptionRoot)
        .finish()
        .sdl()
}

/// The schema requests and subscriptions run on; subscriptions are fed by `changes`.
pub fn build_schema(pool: PgPool, database_url: &str, changes: crate::live::Changes) -> CstrackSchema {
    Schema::build(QueryRoot::default(), EmptyMutation, SubscriptionRoot)
        .data(pool)
        .data(changes)
        .data(crate::audit::Snapshots::new(database_url.to_owned()))
        .data(PortfolioCaches::default())
        .data(crate::replays::Replays::default())
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// The schema exports run their own, fixed queries on: the same resolvers and access rules,
/// without the complexity limit that bounds what a client may ask (an export reads a whole
/// list in pages of the largest size a page allows).
pub fn build_export_schema(pool: PgPool, database_url: &str) -> CstrackSchema {
    Schema::build(QueryRoot::default(), EmptyMutation, SubscriptionRoot)
        .data(pool)
        .data(crate::audit::Snapshots::new(database_url.to_owned()))
        .data(PortfolioCaches::default())
        .limit_depth(MAX_DEPTH)
        .finish()
}

/// Deepest introspection query accepted: the standard one (graphql-js, GraphiQL, codegen,
/// Apollo) nests type references 8 `ofType` levels deep, 15 in all.
pub const MAX_INTROSPECTION_DEPTH: usize = 20;

/// The schema that answers introspection-only operations: it answers nothing else, so its
/// deeper limit opens no path to the read models.
pub fn build_introspection_schema() -> CstrackSchema {
    Schema::build(QueryRoot::default(), EmptyMutation, SubscriptionRoot)
        .introspection_only()
        .limit_depth(MAX_INTROSPECTION_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// True when the operation `request` would run selects only introspection fields (`__schema`,
/// `__type`, `__typename`) at its top level.
pub fn is_introspection(query: &str, operation_name: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, Selection};
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .iter()
            .find(|(candidate, _)| candidate.as_str() == name)
            .map(|(_, operation)| operation),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    operation.is_some_and(|operation| {
        let items = &operation.node.selection_set.node.items;
        !items.is_empty()
            && items.iter().all(|item| match &item.node {
                Selection::Field(field) => field.node.name.node.starts_with("__"),
                _ => false,
            })
    })
}

/// A GraphQL error with a machine-readable `extensions.code`.
pub fn coded_error(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, extensions| extensions.set("code", code))
}

/// A refused argument, naming it (`extensions.field`).
pub fn bad_input(field: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, extensions| {
        extensions.set("code", "BAD_USER_INPUT");
        extensions.set("field", field);
    })
}

/// Most buckets a trend returns: the cost of a trend grows with its buckets (and, for the
/// portfolio, with its customers), so the range is bounded by them.
pub const MAX_BUCKETS: i64 = 1_000;
/// Longest renewal window asked for at once.
pub const MAX_RENEWAL_DAYS: i64 = 3_660;

/// `from ..= to` as a trend's range: in order, and of at most [`MAX_BUCKETS`] buckets.
fn trend_range(from: NaiveDate, to: NaiveDate, granularity: Granularity) -> Result<(NaiveDate, NaiveDate)> {
    if from > to {
        return Err(bad_input("from", "`from` is after `to`"));
    }
    let days = (to - from).num_days() + 1;
    let (buckets, unit) = match granularity {
        Granularity::Day => (days, "days"),
        Granularity::Week => (days / 7 + 1, "weeks"),
        Granularity::Month => (days / 28 + 1, "months"),
    };
    if buckets > MAX_BUCKETS {
        return Err(bad_input(
            "from",
            format!(
                "the range spans {buckets} {unit}; at most {MAX_BUCKETS} buckets are returned: shorten it or use a coarser granularity"
            ),
        ));
    }
    Ok((from, to))
}

pub fn unavailable(error: sqlx::Error) -> async_graphql::Error {
    tracing::error!(%error, "read model query failed");
    coded_error("UNAVAILABLE", "the read models are unavailable; retry later")
}

fn today() -> Date {
    Date(Utc::now().date_naive())
}

/// The period named, or the last 30 days up to `as_of` (a month that has barely begun says
/// nothing about a customer).
fn period(text: Option<String>, as_of: NaiveDate) -> Result<Period> {
    match text {
        None => Ok(Period::rolling(events::engagement::DEFAULT_WINDOW_DAYS, as_of)),
        Some(text) => Period::parse(&text, as_of).ok_or_else(|| {
            coded_error(
                "BAD_USER_INPUT",
                format!("`{text}` is not a period: use 30d or 90d (the last N days, 1 to 366), YYYY-MM or YYYY-Qn"),
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

/// The read models' queries: of the live read models, or of a named snapshot (`pool`).
#[derive(Default)]
pub struct ReadQuery {
    snapshot: Option<(String, PgPool)>,
}

impl ReadQuery {
    pub fn of_snapshot(name: String, pool: PgPool) -> Self {
        ReadQuery {
            snapshot: Some((name, pool)),
        }
    }

    /// The pool this query reads: the snapshot's, or the live one.
    fn pool<'a>(&'a self, ctx: &'a Context<'_>) -> Result<&'a PgPool> {
        match &self.snapshot {
            Some((_, pool)) => Ok(pool),
            None => Ok(ctx.data::<PgPool>()?),
        }
    }

    /// The in-process report caches: of the live read models only (a snapshot is read as is).
    fn caches<'a>(&self, ctx: &'a Context<'_>) -> Option<&'a PortfolioCaches> {
        match self.snapshot {
            Some(_) => None,
            None => ctx.data_opt::<PortfolioCaches>(),
        }
    }

    /// Every account's coverage facts as of a day.
    /// The customers of one CSM's book as of a day (their CSM that day), or `None` for the whole
    /// portfolio: what "my book" narrows a portfolio report to.
    async fn book(&self, ctx: &Context<'_>, csm_id: Option<Uuid>, as_of: NaiveDate) -> Result<Option<Vec<Uuid>>> {
        let Some(csm_id) = csm_id else { return Ok(None) };
        let facts = self.all_account_facts(ctx, as_of).await?;
        Ok(Some(
            facts
                .iter()
                .filter(|account| account.csm_id == csm_id)
                .map(|account| account.customer_id)
                .collect(),
        ))
    }

    async fn all_account_facts(&self, ctx: &Context<'_>, as_of: NaiveDate) -> Result<Arc<Vec<AccountFacts>>> {
        all_account_facts(self.pool(ctx)?, self.caches(ctx), as_of)
            .await
            .map_err(unavailable)
    }

    /// Every customer's engagement for a period, optionally of one CSM or tier.
    async fn portfolio_engagement(
        &self,
        ctx: &Context<'_>,
        period: &Period,
        as_of: NaiveDate,
        csm_id: Option<Uuid>,
        tier: Option<Tier>,
        weights: &Weights,
    ) -> Result<Vec<CustomerEngagement>> {
        let windows = engagement::windows(period, as_of);
        let customers = all_engagement(self.pool(ctx)?, self.caches(ctx), &windows)
            .await
            .map_err(unavailable)?;
        let tier: Option<events::customer::Tier> = tier.map(Into::into);
        Ok(customers
            .iter()
            .filter(|customer| csm_id.is_none_or(|csm| customer.csm_id == csm))
            .filter(|customer| tier.is_none_or(|tier| customer.tier == tier))
            .map(|customer| engagement::engagement_of(customer, period, as_of, weights))
            .collect())
    }

    /// Customer 360 views, lists and alerts come from the live read models only.
    fn live_only(&self, what: &str) -> Result<()> {
        match &self.snapshot {
            Some((name, _)) => Err(coded_error(
                "BAD_USER_INPUT",
                format!("{what} is not kept in snapshots (asked of snapshot {name})"),
            )),
            None => Ok(()),
        }
    }
}

/// Every query: the read models' and the auditors'.
#[derive(async_graphql::MergedObject, Default)]
pub struct QueryRoot(
    ReadQuery,
    crate::audit::AuditQuery,
    crate::connectors::ConnectorQuery,
    crate::settings::SettingsQuery,
);

#[Object]
impl ReadQuery {
    /// PRD-162 account coverage across the portfolio as of a day (default: today, UTC).
    #[graphql(complexity = "REPORT_COST + child_complexity")]
    async fn coverage_report(
        &self,
        ctx: &Context<'_>,
        as_of: Option<Date>,
        csm_id: Option<Uuid>,
        tier: Option<Tier>,
        status: Option<CoverageStatus>,
        #[graphql(desc = "Recompute under these rules instead of those in force; nothing is stored.")] rules: Option<
            crate::rules::RulesInput,
        >,
    ) -> Result<CoverageReport> {
        crate::access::portfolio(ctx)?;
        let pool = self.pool(ctx)?;
        let rules = crate::rules::effective(ctx, rules).await?;
        let as_of = as_of.unwrap_or_else(today).0;
        let facts = self.all_account_facts(ctx, as_of).await?;
        let scoped: Vec<AccountFacts>;
        let facts = match tier.map(events::customer::Tier::from) {
            Some(tier) => {
                scoped = facts.iter().filter(|facts| facts.tier == tier).cloned().collect();
                &scoped[..]
            }
            None => &facts[..],
        };
        let registered = csms(pool).await.map_err(unavailable)?;
        Ok(build_report(
            as_of,
            facts,
            &registered,
            &ReportFilter { csm_id, status },
            &rules,
        ))
    }

    /// One customer's engagement in a period (`30d` or `90d`: the last days up to `asOf`, the default
    /// being 30; or a month `YYYY-MM` or quarter `YYYY-Qn`), with the breakdown,
    /// the score's components and the trend against the previous period.
    #[graphql(complexity = "crate::replays::cost(known_at.is_some()) + child_complexity")]
    async fn customer_engagement(
        &self,
        ctx: &Context<'_>,
        customer_id: Uuid,
        period: Option<String>,
        as_of: Option<Date>,
        #[graphql(desc = "Compute from the events recorded by this instant (asOf defaults to its day).")]
        known_at: Option<DateTime<Utc>>,
    ) -> Result<CustomerEngagement> {
        crate::access::customer(ctx, customer_id)?;
        let pool = self.pool(ctx)?;
        let weights = crate::rules::effective(ctx, None).await?.weights;
        if let Some(known_at) = known_at {
            let known = crate::audit::known(ctx, customer_id, known_at).await?;
            let as_of = as_of.map_or(known_at.date_naive(), |day| day.0);
            let period = self::period(period, as_of)?;
            let facts = known.engagement_facts();
            return Ok(engagement::customer_engagement(
                &facts, &period, as_of, None, None, &weights,
            ));
        }
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
            &weights,
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
        crate::access::customer(ctx, customer_id)?;
        let pool = self.pool(ctx)?;
        let weights = crate::rules::effective(ctx, None).await?.weights;
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
            .map(|period| engagement::customer_engagement(facts, period, as_of, before, before, &weights))
            .collect())
    }

    /// The portfolio's engagement in a period (default: the last 30 days up to `asOf`; `90d`, a
    /// month `YYYY-MM` or a quarter `YYYY-Qn`): average, distribution by category, customers
    /// needing attention, comparison with the segment bands, and outliers within each tier.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "REPORT_COST + child_complexity")]
    async fn engagement_metrics(
        &self,
        ctx: &Context<'_>,
        period: Option<String>,
        as_of: Option<Date>,
        csm_id: Option<Uuid>,
        tier: Option<Tier>,
        min_score: Option<f64>,
        max_score: Option<f64>,
        #[graphql(desc = "Recompute under these rules instead of those in force; nothing is stored.")] rules: Option<
            crate::rules::RulesInput,
        >,
    ) -> Result<EngagementPortfolio> {
        crate::access::portfolio(ctx)?;
        let rules = crate::rules::effective(ctx, rules).await?;
        let as_of = as_of.unwrap_or_else(today).0;
        let period = self::period(period, as_of)?;
        let items = self
            .portfolio_engagement(ctx, &period, as_of, csm_id, tier, &rules.weights)
            .await?;
        Ok(engagement::portfolio(
            &period,
            as_of,
            items,
            min_score,
            max_score,
            rules.version,
        ))
    }

    /// Pearson's r across customers between engagement in a period and an outcome.
    #[graphql(complexity = "REPORT_COST + child_complexity")]
    async fn engagement_correlation(
        &self,
        ctx: &Context<'_>,
        outcome: Outcome,
        period: Option<String>,
        as_of: Option<Date>,
    ) -> Result<Correlation> {
        crate::access::portfolio(ctx)?;
        let pool = self.pool(ctx)?;
        let as_of = as_of.unwrap_or_else(today).0;
        let period = self::period(period, as_of)?;
        let rules = crate::rules::effective(ctx, None).await?;
        let items = self
            .portfolio_engagement(ctx, &period, as_of, None, None, &rules.weights)
            .await?;
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
    #[graphql(complexity = "page_cost(first, child_complexity)")]
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
        crate::access::customer(ctx, customer_id)?;
        let pool = self.pool(ctx)?;
        let after = match after {
            None => None,
            Some(cursor) => {
                Some(timeline::decode_cursor(&cursor).ok_or_else(|| coded_error("BAD_USER_INPUT", "unknown cursor"))?)
            }
        };
        let drafts_of = crate::access::access(ctx)?.drafts();
        timeline::page(
            pool,
            customer_id,
            drafts_of,
            from,
            to,
            kinds,
            first.max(1) as usize,
            after,
        )
        .await
        .map_err(unavailable)
    }

    /// A customer's health over time: last score of each bucket carried forward, each point with
    /// its lineage, and the 30/60/90-day trends ending on `to` (default today).
    #[graphql(complexity = "crate::replays::cost(known_at.is_some()) + child_complexity")]
    async fn health_trend(
        &self,
        ctx: &Context<'_>,
        customer_id: Uuid,
        from: Option<Date>,
        to: Option<Date>,
        #[graphql(default_with = "Granularity::Day")] granularity: Granularity,
        #[graphql(desc = "Only the scores recorded by this instant (`to` defaults to its day).")] known_at: Option<
            DateTime<Utc>,
        >,
    ) -> Result<HealthTrend> {
        crate::access::customer(ctx, customer_id)?;
        let pool = self.pool(ctx)?;
        let to = to.map_or_else(|| known_at.map_or(today().0, |at| at.date_naive()), |to| to.0);
        let from = from.map_or(to - chrono::Days::new(90), |from| from.0);
        let (from, to) = trend_range(from, to, granularity)?;
        let points = match known_at {
            Some(known_at) => crate::audit::known(ctx, customer_id, known_at).await?.health,
            None => health::points(pool, customer_id).await.map_err(unavailable)?,
        };
        Ok(health::trend(customer_id, &points, from, to, granularity))
    }

    /// Each CSM's workload as of a day (default today) and the team's balance, handoffs of the
    /// last 30 days and rebalancing suggestions.
    #[graphql(complexity = "REPORT_COST + child_complexity")]
    async fn csm_workload(
        &self,
        ctx: &Context<'_>,
        as_of: Option<Date>,
        #[graphql(desc = "Recompute under these rules instead of those in force; nothing is stored.")] rules: Option<
            crate::rules::RulesInput,
        >,
    ) -> Result<crate::workload::TeamWorkload> {
        crate::access::portfolio(ctx)?;
        let pool = self.pool(ctx)?;
        let rules = crate::rules::effective(ctx, rules).await?;
        let as_of = as_of.unwrap_or_else(today).0;
        let facts = self.all_account_facts(ctx, as_of).await?;
        crate::workload::team(pool, &facts, as_of, &rules)
            .await
            .map_err(unavailable)
    }

    /// The caller's "today": their reminders due, their tasks overdue or due today, their
    /// accounts' due touches, new alerts and renewals within 30 days, ranked by churn risk, ARR
    /// and due day, each with why it is there (docs/DOMAIN.md section 14). `at` pins "now".
    /// Not for partners.
    async fn today(
        &self,
        ctx: &Context<'_>,
        at: Option<DateTime<Utc>>,
        #[graphql(default = 0)] offset: i32,
        #[graphql(default = 50)] first: i32,
    ) -> Result<crate::today::Today> {
        self.live_only("today")?;
        crate::today::today(ctx, at, offset, first).await
    }

    /// The task templates in force, by name (docs/DOMAIN.md section 15). Not for partners.
    async fn task_templates(&self, ctx: &Context<'_>) -> Result<Vec<crate::templates::TaskTemplateView>> {
        self.live_only("taskTemplates")?;
        crate::access::portfolio(ctx)?;
        crate::templates::templates(self.pool(ctx)?).await.map_err(unavailable)
    }

    /// The playbooks in force (the three shipped ones included until retired), by name
    /// (docs/DOMAIN.md section 17). Not for partners.
    async fn playbooks(&self, ctx: &Context<'_>) -> Result<Vec<crate::playbooks::PlaybookView>> {
        self.live_only("playbooks")?;
        crate::access::portfolio(ctx)?;
        crate::playbooks::playbooks(self.pool(ctx)?).await.map_err(unavailable)
    }

    /// Playbook runs, open first, then the latest started first: a customer's, or every
    /// customer's; each with its steps as the task list has them, its progress and why it
    /// ended. Not for partners.
    async fn playbook_runs(
        &self,
        ctx: &Context<'_>,
        customer_id: Option<Uuid>,
        status: Option<crate::playbooks::RunStatus>,
        #[graphql(default = 0)] offset: i32,
        #[graphql(default = 50)] first: i32,
    ) -> Result<crate::playbooks::PlaybookRunPage> {
        self.live_only("playbookRuns")?;
        crate::access::portfolio(ctx)?;
        if !(1..=500).contains(&first) || offset < 0 {
            return Err(coded_error("BAD_USER_INPUT", "first is 1 to 500 and offset 0 or more"));
        }
        let all = crate::playbooks::runs(self.pool(ctx)?, customer_id, status)
            .await
            .map_err(unavailable)?;
        Ok(crate::playbooks::PlaybookRunPage {
            total_count: all.len() as i64,
            items: all.into_iter().skip(offset as usize).take(first as usize).collect(),
        })
    }

    /// The runs started from `from` to `to` (default: the 365 days to today) by playbook: how
    /// many, open, completed, exited and cancelled, the completion rate, the median days to
    /// complete, and the accounts at risk at the start that left risk within 60 days. Not for
    /// partners.
    async fn playbooks_report(
        &self,
        ctx: &Context<'_>,
        from: Option<Date>,
        to: Option<Date>,
    ) -> Result<crate::playbooks::PlaybooksReport> {
        self.live_only("playbooksReport")?;
        crate::access::portfolio(ctx)?;
        let to = to.unwrap_or_else(today).0;
        let from = from.map(|d| d.0).unwrap_or(to - chrono::Duration::days(365));
        if from > to || (to - from).num_days() > 3660 {
            return Err(coded_error(
                "BAD_USER_INPUT",
                "from is on or before to, at most 3,660 days apart",
            ));
        }
        crate::playbooks::report(self.pool(ctx)?, from, to)
            .await
            .map_err(unavailable)
    }

    /// A customer's recurring tasks, active first, with the period that has started and the
    /// next. Not for partners.
    async fn recurring_tasks(
        &self,
        ctx: &Context<'_>,
        customer_id: Uuid,
    ) -> Result<Vec<crate::templates::RecurringTask>> {
        self.live_only("recurringTasks")?;
        crate::access::portfolio(ctx)?;
        crate::templates::recurring(self.pool(ctx)?, customer_id, Utc::now().date_naive())
            .await
            .map_err(unavailable)
    }

    /// Reminder occurrences, earliest due first: the caller's own, their team's or everyone's
    /// (managers, admins, readonly, auditors), by state and customer. `at` pins "now" for the
    /// overdue rule (open more than 24 hours after it reached the user). Not for partners.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn reminders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose reminders; the caller's own when absent.")] scope: Option<
            crate::reminders::ReminderScope,
        >,
        #[graphql(desc = "Which occurrences; the open ones when absent.")] status: Option<
            crate::reminders::ReminderStatus,
        >,
        customer_id: Option<Uuid>,
        at: Option<DateTime<Utc>>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, crate::reminders::ReminderOccurrence, crate::portfolio::PageTotal, EmptyFields>>
    {
        self.live_only("reminders")?;
        let whose = crate::reminders::whose(ctx, scope.unwrap_or_default()).await?;
        let counted = ctx.look_ahead().field("totalCount").exists();
        crate::reminders::page(
            self.pool(ctx)?,
            &whose,
            status.unwrap_or_default(),
            customer_id,
            crate::reminders::at_or_now(at),
            first.max(1) as usize,
            after,
            counted,
        )
        .await
    }

    /// Reminders still to come, soonest first, with their total: within `days` of `at` when
    /// given. Not for partners.
    async fn upcoming_reminders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose reminders; the caller's own when absent.")] scope: Option<
            crate::reminders::ReminderScope,
        >,
        customer_id: Option<Uuid>,
        at: Option<DateTime<Utc>>,
        days: Option<i32>,
        #[graphql(default = 50)] first: i32,
    ) -> Result<UpcomingReminders> {
        self.live_only("upcomingReminders")?;
        let whose = crate::reminders::whose(ctx, scope.unwrap_or_default()).await?;
        let (items, total_count) = crate::reminders::upcoming(
            self.pool(ctx)?,
            &whose,
            customer_id,
            crate::reminders::at_or_now(at),
            days,
            first.max(1) as usize,
        )
        .await?;
        Ok(UpcomingReminders { items, total_count })
    }

    /// How many reminders need the caller (or their team): open, overdue, snoozed, and coming
    /// in the next 7 days. Not for partners.
    async fn reminder_counts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whose reminders; the caller's own when absent.")] scope: Option<
            crate::reminders::ReminderScope,
        >,
        at: Option<DateTime<Utc>>,
    ) -> Result<crate::reminders::ReminderCounts> {
        self.live_only("reminderCounts")?;
        let whose = crate::reminders::whose(ctx, scope.unwrap_or_default()).await?;
        crate::reminders::counts(self.pool(ctx)?, &whose, crate::reminders::at_or_now(at)).await
    }

    /// Alerts, newest first: by CSM, customer, kind and whether acknowledged.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        csm_id: Option<Uuid>,
        customer_id: Option<Uuid>,
        kind: Option<String>,
        acknowledged: Option<bool>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, crate::alerts::Alert, crate::portfolio::PageTotal, EmptyFields>> {
        self.live_only("alerts")?;
        let access = crate::access::access(ctx)?;
        let pool = self.pool(ctx)?;
        let counted = ctx.look_ahead().field("totalCount").exists();
        crate::alerts::page(
            pool,
            &crate::alerts::Filter {
                csm_id,
                customer_id,
                kind,
                acknowledged,
                visible: access.visible().map(<[Uuid]>::to_vec),
                hidden_kinds: crate::alerts::hidden_kinds(access.principal.role),
            },
            first.max(1) as usize,
            after,
            counted,
        )
        .await
    }

    /// One customer's 360 view: profile, compliance, CSM, partners, stakeholders, adoption, use
    /// cases, NPS, renewal countdown, current health and timeline.
    async fn customer(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<crate::customers::Customer>> {
        self.live_only("customer")?;
        if !crate::access::access(ctx)?.sees(id) {
            return Ok(None);
        }
        crate::customers::one(self.pool(ctx)?, id).await.map_err(unavailable)
    }

    /// The custom-field definitions in force that the caller may see, in definition order
    /// (docs/DOMAIN.md section 9); with `knownAt`, as they stood then.
    async fn custom_field_definitions(
        &self,
        ctx: &Context<'_>,
        known_at: Option<DateTime<Utc>>,
    ) -> Result<Vec<crate::custom_fields::CustomFieldDefinition>> {
        let role = crate::custom_fields::role(ctx)?;
        let definitions = match known_at {
            None => crate::custom_fields::in_force(ctx).await?,
            Some(at) => std::sync::Arc::new(
                events::service::read_models::custom_field_definitions(self.pool(ctx)?, Some(at))
                    .await
                    .map_err(unavailable)?,
            ),
        };
        Ok(definitions
            .fields
            .iter()
            .filter(|definition| definition.visible_to(role))
            .map(|definition| crate::custom_fields::CustomFieldDefinition::of(definition, role))
            .collect())
    }

    /// The portfolio list: search, filters, sort and keyset pagination.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        filter: Option<crate::customers::CustomerFilter>,
        #[graphql(default_with = "crate::customers::CustomerSort::Name")] sort: crate::customers::CustomerSort,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        #[graphql(desc = "Only customers whose custom field matches (docs/DOMAIN.md section 9).")] custom_field: Option<
            crate::custom_fields::CustomFieldFilter,
        >,
        #[graphql(desc = "Sort by a custom field instead of `sort`.")] sort_by_custom_field: Option<
            crate::custom_fields::CustomFieldSort,
        >,
    ) -> Result<Connection<String, crate::customers::Customer, crate::customers::CustomerPageFields, EmptyFields>> {
        self.live_only("customers")?;
        let pool = self.pool(ctx)?;
        let access = crate::access::access(ctx)?;
        let filter = filter.unwrap_or_default();
        let definitions = if custom_field.is_some() || sort_by_custom_field.is_some() {
            crate::custom_fields::in_force(ctx).await?
        } else {
            Default::default()
        };
        let role = access.principal.role;
        // The rules' contact standards, read only when the next touch filters or orders the list.
        let cadence = if filter.next_touch.is_some() || sort == crate::customers::CustomerSort::NextTouch {
            crate::next_touch::cadence(&crate::rules::effective(ctx, None).await?)
        } else {
            crate::next_touch::cadence(&events::rules::Rules::default())
        };
        let mut custom = crate::customers::CustomListing::default();
        if let Some(filter) = &custom_field {
            let definition =
                crate::custom_fields::visible_definition(&definitions, &filter.key, role, "customField.key")?;
            custom.filter = Some((definition, filter));
        }
        if let Some(sort) = &sort_by_custom_field {
            let definition =
                crate::custom_fields::visible_definition(&definitions, &sort.key, role, "sortByCustomField.key")?;
            custom.sort = Some((definition, sort.descending));
        }
        let statuses = match filter.coverage_status {
            Some(_) => {
                let today = today().0;
                let facts = self.all_account_facts(ctx, today).await?;
                let rules = crate::rules::effective(ctx, None).await?;
                Some(
                    facts
                        .iter()
                        .map(|facts| (facts.customer_id, account_coverage(facts, &rules).status))
                        .collect(),
                )
            }
            None => None,
        };
        if filter.tag.is_some() && role == events::metadata::Role::Partner {
            return Err(coded_error(
                "FORBIDDEN",
                "partners do not see the team's tags, so cannot filter by them",
            ));
        }
        // Today's churn-risk scores, read only when the list orders or filters by them.
        let risk = if filter.risk_band.is_some() || sort == crate::customers::CustomerSort::RiskDesc {
            if role == events::metadata::Role::Partner {
                return Err(coded_error(
                    "FORBIDDEN",
                    "partners do not see the churn-risk score, so cannot order or filter by it",
                ));
            }
            Some(crate::risk::today(ctx).await?)
        } else {
            None
        };
        // The total costs a statement of its own: counted only when asked for.
        let counted = ctx.look_ahead().field("totalCount").exists();
        crate::customers::page(
            pool,
            filter,
            sort,
            first.max(1) as usize,
            after,
            statuses.as_ref(),
            access.visible(),
            custom,
            counted,
            cadence,
            risk.as_deref(),
            &access.principal.user_id,
        )
        .await
    }

    /// Tasks: mine (assigneeId = my id), the team's, by customer or kind, overdue, upcoming.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        filter: Option<crate::portfolio::TaskFilter>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, crate::portfolio::Task, crate::portfolio::PageTotal, EmptyFields>> {
        let access = crate::access::access(ctx)?;
        let counted = ctx.look_ahead().field("totalCount").exists();
        crate::portfolio::tasks(
            self.pool(ctx)?,
            filter.unwrap_or_default(),
            access.visible(),
            first.max(1) as usize,
            after,
            counted,
        )
        .await
    }

    /// Partner status reports, latest period first.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn partner_reports(
        &self,
        ctx: &Context<'_>,
        customer_id: Option<Uuid>,
        status: Option<crate::portfolio::ReportStatus>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, crate::portfolio::PartnerReport, crate::portfolio::PageTotal, EmptyFields>> {
        let access = crate::access::access(ctx)?;
        let pool = self.pool(ctx)?;
        let counted = ctx.look_ahead().field("totalCount").exists();
        crate::portfolio::partner_reports(
            pool,
            customer_id,
            status,
            access.visible(),
            access.drafts(),
            first.max(1) as usize,
            after,
            counted,
        )
        .await
    }

    /// The renewal pipeline between two days (default: the next 90 days).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn renewals(
        &self,
        ctx: &Context<'_>,
        from: Option<Date>,
        to: Option<Date>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        #[graphql(desc = "One CSM's book (their accounts today).")] csm_id: Option<Uuid>,
    ) -> Result<Connection<String, crate::portfolio::Renewal, EmptyFields, EmptyFields>> {
        let access = crate::access::access(ctx)?;
        let from = from.unwrap_or_else(today).0;
        let to = to.map_or(from + chrono::Days::new(90), |to| to.0);
        if from > to {
            return Err(bad_input("from", "`from` is after `to`"));
        }
        if (to - from).num_days() > MAX_RENEWAL_DAYS {
            return Err(bad_input(
                "to",
                format!("a renewal window is at most {MAX_RENEWAL_DAYS} days"),
            ));
        }
        crate::portfolio::renewals(
            self.pool(ctx)?,
            from,
            to,
            access.visible(),
            csm_id,
            first.max(1) as usize,
            after,
        )
        .await
    }

    /// The at-risk report as of a day (default today): accounts whose health was red or yellow,
    /// largest ARR first, each with the lineage of its latest score and its coverage gaps;
    /// `limit` of them (1 to 200, default 25) from `offset`.
    #[graphql(complexity = "REPORT_COST + child_complexity")]
    async fn at_risk_report(
        &self,
        ctx: &Context<'_>,
        as_of: Option<Date>,
        #[graphql(default = 0)] offset: i32,
        #[graphql(default = 25)] limit: i32,
        #[graphql(desc = "One CSM's book (their accounts on the day).")] csm_id: Option<Uuid>,
    ) -> Result<crate::at_risk::AtRiskReport> {
        crate::access::portfolio(ctx)?;
        if offset < 0 {
            return Err(bad_input("offset", "`offset` is 0 or more"));
        }
        if !(1..=200).contains(&limit) {
            return Err(bad_input("limit", "`limit` is from 1 to 200"));
        }
        let pool = self.pool(ctx)?;
        let rules = crate::rules::effective(ctx, None).await?;
        let as_of = as_of.unwrap_or_else(today).0;
        let facts = self.all_account_facts(ctx, as_of).await?;
        let accounts = facts
            .iter()
            .filter(|facts| csm_id.is_none_or(|csm_id| facts.csm_id == csm_id))
            .map(|facts| crate::coverage::account_coverage(facts, &rules))
            .collect();
        crate::at_risk::report(pool, as_of, accounts, offset as usize, limit as usize)
            .await
            .map_err(unavailable)
    }

    /// The churn-risk score backtested against the store: every churn and renewal, scored
    /// `horizons` days before it (default 30, 60 and 90; 1 to 365 each, at most 6) under the rules
    /// in force or what-if `rules`, with the high band's precision, recall and lift per horizon.
    #[graphql(complexity = "REPORT_COST + child_complexity")]
    async fn churn_risk_backtest(
        &self,
        ctx: &Context<'_>,
        rules: Option<crate::rules::RulesInput>,
        horizons: Option<Vec<i32>>,
    ) -> Result<crate::risk::RiskBacktest> {
        self.live_only("churnRiskBacktest")?;
        crate::access::portfolio(ctx)?;
        let horizons = horizons.unwrap_or_else(|| vec![30, 60, 90]);
        if horizons.is_empty() || horizons.len() > 6 || horizons.iter().any(|days| !(1..=365).contains(days)) {
            return Err(bad_input("horizons", "1 to 6 horizons, each from 1 to 365 days"));
        }
        let horizons: Vec<u32> = horizons.into_iter().map(|days| days as u32).collect();
        let rules = crate::rules::effective(ctx, rules).await?;
        crate::risk::backtest(self.pool(ctx)?, &rules, &horizons)
            .await
            .map_err(unavailable)
    }

    /// The renewal pipeline: customers renewing from `from` (default the first of this month) to
    /// `to` (default a year on, at most 10 years), by month and health colour.
    async fn renewal_pipeline(
        &self,
        ctx: &Context<'_>,
        from: Option<Date>,
        to: Option<Date>,
        #[graphql(desc = "One CSM's book (their accounts today).")] csm_id: Option<Uuid>,
    ) -> Result<Vec<crate::portfolio::RenewalMonth>> {
        self.live_only("renewalPipeline")?;
        let access = crate::access::access(ctx)?;
        let from = from.map_or_else(|| today().0.with_day(1).unwrap_or(today().0), |from| from.0);
        let to = to.map_or(from + chrono::Months::new(12) - chrono::Days::new(1), |to| to.0);
        if from > to {
            return Err(bad_input("from", "`from` is after `to`"));
        }
        if (to - from).num_days() > MAX_RENEWAL_DAYS {
            return Err(bad_input(
                "to",
                format!("a renewal pipeline spans at most {MAX_RENEWAL_DAYS} days"),
            ));
        }
        crate::portfolio::renewal_pipeline(self.pool(ctx)?, from, to, access.visible(), csm_id)
            .await
            .map_err(unavailable)
    }

    /// Total ARR, ARR at risk, colours, renewals in 30/60/90 days and NPS, against the previous quarter.
    #[graphql(complexity = "REPORT_COST + child_complexity")]
    async fn executive_summary(
        &self,
        ctx: &Context<'_>,
        as_of: Option<Date>,
        #[graphql(desc = "One CSM's book (the accounts that were theirs on each day compared).")] csm_id: Option<Uuid>,
    ) -> Result<crate::portfolio::ExecutiveSummary> {
        crate::access::portfolio(ctx)?;
        let pool = self.pool(ctx)?;
        let as_of = as_of.unwrap_or_else(today).0;
        let previous_day = crate::portfolio::previous_quarter_end(as_of);
        let book = self.book(ctx, csm_id, as_of).await?;
        let previous_book = self.book(ctx, csm_id, previous_day).await?;
        let current = crate::portfolio::snapshot(pool, as_of, book.as_deref())
            .await
            .map_err(unavailable)?;
        let previous = crate::portfolio::snapshot(pool, previous_day, previous_book.as_deref())
            .await
            .map_err(unavailable)?;
        Ok(crate::portfolio::ExecutiveSummary {
            arr_change: current.total_arr - previous.total_arr,
            arr_at_risk_change: current.arr_at_risk - previous.arr_at_risk,
            current,
            previous_quarter: previous,
        })
    }

    /// Count and ARR by health colour per bucket (each customer's last score carried forward).
    #[graphql(complexity = "REPORT_COST + child_complexity")]
    async fn portfolio_health_trend(
        &self,
        ctx: &Context<'_>,
        from: Option<Date>,
        to: Option<Date>,
        #[graphql(default_with = "Granularity::Week")] granularity: Granularity,
        #[graphql(desc = "One CSM's book (their accounts on the last day of the range).")] csm_id: Option<Uuid>,
    ) -> Result<Vec<crate::portfolio::HealthBucket>> {
        crate::access::portfolio(ctx)?;
        let to = to.unwrap_or_else(today).0;
        let from = from.map_or(to - chrono::Days::new(90), |from| from.0);
        let (from, to) = trend_range(from, to, granularity)?;
        let book = self.book(ctx, csm_id, to).await?;
        crate::portfolio::portfolio_health(self.pool(ctx)?, from, to, granularity, book.as_deref())
            .await
            .map_err(unavailable)
    }

    /// One account's coverage as of a day: inputs, standards, score, gaps, status and priority.
    #[graphql(complexity = "crate::replays::cost(known_at.is_some()) + child_complexity")]
    async fn account_coverage(
        &self,
        ctx: &Context<'_>,
        customer_id: Uuid,
        as_of: Option<Date>,
        #[graphql(desc = "Compute from the events recorded by this instant (asOf defaults to its day).")]
        known_at: Option<DateTime<Utc>>,
    ) -> Result<AccountCoverage> {
        crate::access::customer(ctx, customer_id)?;
        let pool = self.pool(ctx)?;
        if let Some(known_at) = known_at {
            let known = crate::audit::known(ctx, customer_id, known_at).await?;
            let as_of = as_of.map_or(known_at.date_naive(), |day| day.0);
            let name = crate::audit::csm_name(pool, known.csm_id).await?;
            if known.onboarded_at.date_naive() > as_of {
                return Err(coded_error(
                    "NOT_FOUND",
                    format!("no customer {customer_id} was onboarded by {as_of}"),
                ));
            }
            let rules = crate::rules::effective(ctx, None).await?;
            return Ok(account_coverage(&known.account_facts(as_of, name), &rules));
        }
        let as_of = as_of.unwrap_or_else(today).0;
        let facts = account_facts(pool, as_of, Some(&[customer_id]))
            .await
            .map_err(unavailable)?;
        let rules = crate::rules::effective(ctx, None).await?;
        facts
            .first()
            .map(|facts| account_coverage(facts, &rules))
            .ok_or_else(|| {
                coded_error(
                    "NOT_FOUND",
                    format!("no customer {customer_id} was onboarded by {as_of}"),
                )
            })
    }
}

/// Reminders still to come, and how many there are in all.
#[derive(SimpleObject)]
pub struct UpcomingReminders {
    pub items: Vec<crate::reminders::UpcomingReminder>,
    pub total_count: i64,
}
