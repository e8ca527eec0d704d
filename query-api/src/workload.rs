//! CSM workload (docs/DOMAIN.md section 7): each CSM's book as of a day, the team's balance, recent
//! handoffs and rebalancing suggestions.

use std::collections::HashMap;

use async_graphql::{ComplexObject, Context, SimpleObject};
use chrono::{Days, NaiveDate};
use events::coverage::{self as formulas, round1};
use events::engagement::mean_and_deviation;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::coverage::{account_coverage, health_slices, money, tier_slices, AccountCoverage, HealthSlice, TierSlice};
use crate::coverage_store::AccountFacts;
use crate::scalars::{Date, Tier};

pub const DEFAULT_CAPACITY_HOURS: f64 = 120.0;
const RENEWAL_WINDOW_DAYS: u64 = 90;
const NO_MOVE_BEFORE_RENEWAL_DAYS: u64 = 30;
const TRANSITION_WINDOW_DAYS: u64 = 30;

#[derive(SimpleObject, Debug, Clone)]
pub struct CsmWorkload {
    pub csm_id: Uuid,
    pub name: Option<String>,
    pub accounts: usize,
    pub arr: Decimal,
    pub by_tier: Vec<TierSlice>,
    pub by_health: Vec<HealthSlice>,
    /// Accounts whose health as of the day is below 50.
    pub at_risk: usize,
    /// Pending or in progress, assigned to the CSM.
    pub open_tasks: usize,
    /// Open and due before the day.
    pub overdue_tasks: usize,
    /// Accounts renewing from the day to 90 days after it, both included.
    pub renewals_next_90_days: usize,
    pub average_coverage_score: f64,
    pub under_covered: usize,
    pub well_covered: usize,
    pub over_covered: usize,
    pub hours_needed: f64,
    pub capacity_hours: f64,
    /// hoursNeeded / capacityHours x 100, one decimal.
    pub utilization_pct: f64,
    pub accounts_vs_team_average: f64,
    pub arr_vs_team_average: Decimal,
}

#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct Transition {
    pub customer_id: Uuid,
    pub name: String,
    pub csm_id: Uuid,
    pub previous_csm_id: Option<Uuid>,
    pub handed_over_on: Date,
    pub days_since_handoff: i64,
    /// Whether the customer was contacted on or after the handoff day.
    pub contacted_since: bool,
}

#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct RebalanceSuggestion {
    pub customer_id: Uuid,
    pub name: String,
    pub tier: Tier,
    pub arr: Decimal,
    pub from_csm_id: Uuid,
    pub to_csm_id: Uuid,
    /// Utilization of both CSMs after the move, percent with one decimal.
    pub from_utilization_after: f64,
    pub to_utilization_after: f64,
}

/// A CSM's name, for lists and exports that name people rather than ids.
async fn csm_name(ctx: &Context<'_>, csm_id: Option<Uuid>) -> async_graphql::Result<Option<String>> {
    let Some(csm_id) = csm_id else { return Ok(None) };
    Ok(ctx
        .data::<crate::customers::Loaders>()?
        .load_one(crate::customers::CsmKey(csm_id))
        .await
        .map_err(|error| crate::schema::coded_error("UNAVAILABLE", error))?
        .map(|csm| csm.name))
}

#[ComplexObject]
impl Transition {
    /// The CSM who took the account over.
    async fn csm_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        csm_name(ctx, Some(self.csm_id)).await
    }

    /// The CSM who handed it over.
    async fn previous_csm_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        csm_name(ctx, self.previous_csm_id).await
    }
}

#[ComplexObject]
impl RebalanceSuggestion {
    async fn from_csm_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        csm_name(ctx, Some(self.from_csm_id)).await
    }

    async fn to_csm_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        csm_name(ctx, Some(self.to_csm_id)).await
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct TeamWorkload {
    pub as_of: Date,
    /// The Rules stream's sequence whose tier hours and standards the workload uses.
    pub rules_version: String,
    pub csms: Vec<CsmWorkload>,
    pub average_accounts: f64,
    pub average_arr: Decimal,
    pub average_utilization_pct: f64,
    /// Coefficient of variation of ARR across CSMs, percent with one decimal (target below 20).
    pub portfolio_balance_pct: f64,
    pub balanced: bool,
    pub transitions: Vec<Transition>,
    pub rebalancing: Vec<RebalanceSuggestion>,
}

#[derive(sqlx::FromRow)]
struct TaskCount {
    assignee_id: String,
    open: i64,
    overdue: i64,
}

/// The team's workload from every account's coverage facts as of `as_of`.
pub async fn team(
    pool: &PgPool,
    facts: &[AccountFacts],
    as_of: NaiveDate,
    rules: &events::rules::Rules,
) -> Result<TeamWorkload, sqlx::Error> {
    let mut renewals: HashMap<Uuid, (NaiveDate, Option<NaiveDate>)> =
        sqlx::query_as::<_, (Uuid, NaiveDate, Option<NaiveDate>)>(
            "SELECT customer_id, renewal_date, churned_on FROM customer_profiles",
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(id, renewal, churned)| (id, (renewal, churned)))
        .collect();
    // The renewal date each account had on the day.
    for (customer_id, then) in events::service::read_models::changed_since(pool, as_of, None).await? {
        if let (Some(day), Some(entry)) = (then.renewal_date, renewals.get_mut(&customer_id)) {
            entry.0 = day;
        }
    }
    // A churned account has left the book.
    let accounts: Vec<AccountCoverage> = facts
        .iter()
        .filter(|facts| {
            renewals
                .get(&facts.customer_id)
                .and_then(|(_, churned)| *churned)
                .is_none_or(|day| day > as_of)
        })
        .map(|facts| account_coverage(facts, rules))
        .collect();
    let directory: Vec<(Uuid, String, i32)> =
        sqlx::query_as("SELECT csm_id, name, monthly_capacity_hours FROM csm_directory ORDER BY name, csm_id")
            .fetch_all(pool)
            .await?;
    let tasks: HashMap<String, (usize, usize)> = sqlx::query_as::<_, TaskCount>(
        "SELECT assignee_id, count(*) AS open, count(*) FILTER (WHERE due_date < $1) AS overdue
           FROM tasks WHERE status IN ('pending', 'in_progress') AND created_at::date <= $1 GROUP BY assignee_id",
    )
    .bind(as_of)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| (row.assignee_id, (row.open as usize, row.overdue as usize)))
    .collect();

    let mut csms: Vec<(Uuid, Option<String>, f64)> = directory
        .iter()
        .map(|(id, name, hours)| (*id, Some(name.clone()), f64::from(*hours)))
        .collect();
    for account in &accounts {
        if !csms.iter().any(|(id, _, _)| *id == account.csm_id) {
            csms.push((account.csm_id, account.csm_name.clone(), DEFAULT_CAPACITY_HOURS));
        }
    }
    let team_size = csms.len().max(1);
    let total_arr: Decimal = accounts.iter().map(|account| account.arr).sum();
    let average_accounts = accounts.len() as f64 / team_size as f64;
    let average_arr = money((total_arr / Decimal::from(team_size)).round_dp(2));
    let renewal_end = as_of + Days::new(RENEWAL_WINDOW_DAYS);

    let mut books = Vec::new();
    for (csm_id, name, capacity) in &csms {
        let book: Vec<&AccountCoverage> = accounts.iter().filter(|account| account.csm_id == *csm_id).collect();
        let (open_tasks, overdue_tasks) = tasks.get(&csm_id.to_string()).copied().unwrap_or_default();
        let hours: f64 = book.iter().map(|account| rules.hours(account.tier.into())).sum();
        let arr: Decimal = book.iter().map(|account| account.arr).sum();
        let count = |status| book.iter().filter(|account| account.raw_status == status).count();
        let scores: Vec<f64> = book.iter().map(|account| account.raw_score).collect();
        books.push(CsmWorkload {
            csm_id: *csm_id,
            name: name.clone(),
            accounts: book.len(),
            arr: money(arr),
            by_tier: tier_slices(
                &book
                    .iter()
                    .map(|account| (account.tier, account.arr))
                    .collect::<Vec<_>>(),
            ),
            by_health: health_slices(
                &book
                    .iter()
                    .map(|account| (account.health_colour, account.arr))
                    .collect::<Vec<_>>(),
            ),
            at_risk: book.iter().filter(|account| account.at_risk).count(),
            open_tasks,
            overdue_tasks,
            renewals_next_90_days: book
                .iter()
                .filter(|account| {
                    renewals
                        .get(&account.customer_id)
                        .is_some_and(|(renewal, _)| *renewal >= as_of && *renewal <= renewal_end)
                })
                .count(),
            average_coverage_score: round1(mean_and_deviation(&scores).map_or(0.0, |(mean, _)| mean)),
            under_covered: count(formulas::CoverageStatus::UnderCovered),
            well_covered: count(formulas::CoverageStatus::WellCovered),
            over_covered: count(formulas::CoverageStatus::OverCovered),
            hours_needed: hours,
            capacity_hours: *capacity,
            utilization_pct: round1(utilization(hours, *capacity)),
            accounts_vs_team_average: round1(book.len() as f64 - average_accounts),
            arr_vs_team_average: money(arr - average_arr),
        });
    }

    let arrs: Vec<f64> = books.iter().map(|book| book.arr.to_f64().unwrap_or_default()).collect();
    let balance = mean_and_deviation(&arrs).map_or(
        0.0,
        |(mean, deviation)| if mean > 0.0 { deviation / mean * 100.0 } else { 0.0 },
    );
    let utilizations: Vec<f64> = books
        .iter()
        .map(|book| utilization(book.hours_needed, book.capacity_hours))
        .collect();
    let average_utilization = mean_and_deviation(&utilizations).map_or(0.0, |(mean, _)| mean);
    let rebalancing = rebalance(&books, &accounts, &renewals, as_of, average_utilization, rules);
    Ok(TeamWorkload {
        as_of: Date(as_of),
        rules_version: rules.version.clone(),
        average_accounts: round1(average_accounts),
        average_arr,
        average_utilization_pct: round1(average_utilization),
        portfolio_balance_pct: round1(balance),
        balanced: balance < 20.0,
        transitions: transitions(pool, as_of, &accounts).await?,
        rebalancing,
        csms: books,
    })
}

fn utilization(hours: f64, capacity: f64) -> f64 {
    if capacity > 0.0 {
        hours / capacity * 100.0
    } else {
        0.0
    }
}

/// While some CSM is above 100% and another below 80%, move the account that brings the two
/// closest to the team's mean utilization; never an account renewing within 30 days.
fn rebalance(
    books: &[CsmWorkload],
    accounts: &[AccountCoverage],
    renewals: &HashMap<Uuid, (NaiveDate, Option<NaiveDate>)>,
    as_of: NaiveDate,
    mean: f64,
    rules: &events::rules::Rules,
) -> Vec<RebalanceSuggestion> {
    let mut hours: HashMap<Uuid, f64> = books.iter().map(|book| (book.csm_id, book.hours_needed)).collect();
    let capacity: HashMap<Uuid, f64> = books.iter().map(|book| (book.csm_id, book.capacity_hours)).collect();
    let mut owner: HashMap<Uuid, Uuid> = accounts
        .iter()
        .map(|account| (account.customer_id, account.csm_id))
        .collect();
    let util = |hours: &HashMap<Uuid, f64>, csm: Uuid| utilization(hours[&csm], capacity[&csm]);
    let frozen = |customer: &Uuid| {
        renewals
            .get(customer)
            .is_some_and(|(renewal, _)| *renewal >= as_of && *renewal <= as_of + Days::new(NO_MOVE_BEFORE_RENEWAL_DAYS))
    };
    let mut suggestions = Vec::new();
    for _ in 0..accounts.len() {
        let over = books
            .iter()
            .map(|b| b.csm_id)
            .filter(|csm| util(&hours, *csm) > 100.0)
            .max_by(|a, b| util(&hours, *a).total_cmp(&util(&hours, *b)));
        let under = books
            .iter()
            .map(|b| b.csm_id)
            .filter(|csm| util(&hours, *csm) < 80.0)
            .min_by(|a, b| util(&hours, *a).total_cmp(&util(&hours, *b)));
        let (Some(from), Some(to)) = (over, under) else { break };
        let distance = |moved: f64| {
            let from_after = utilization(hours[&from] - moved, capacity[&from]);
            let to_after = utilization(hours[&to] + moved, capacity[&to]);
            (from_after - mean).abs() + (to_after - mean).abs()
        };
        let best = accounts
            .iter()
            .filter(|account| owner[&account.customer_id] == from && !frozen(&account.customer_id))
            .min_by(|a, b| distance(rules.hours(a.tier.into())).total_cmp(&distance(rules.hours(b.tier.into()))));
        let Some(account) = best else { break };
        let moved = rules.hours(account.tier.into());
        if distance(moved) >= distance(0.0) {
            break;
        }
        *hours.get_mut(&from).expect("a CSM of the team") -= moved;
        *hours.get_mut(&to).expect("a CSM of the team") += moved;
        owner.insert(account.customer_id, to);
        suggestions.push(RebalanceSuggestion {
            customer_id: account.customer_id,
            name: account.name.clone(),
            tier: account.tier,
            arr: account.arr,
            from_csm_id: from,
            to_csm_id: to,
            from_utilization_after: round1(util(&hours, from)),
            to_utilization_after: round1(util(&hours, to)),
        });
    }
    suggestions
}

/// A handoff: customer, CSM, previous CSM, when, and whether the customer was contacted since.
type HandoffRow = (Uuid, Uuid, Option<Uuid>, chrono::DateTime<chrono::Utc>, bool);

async fn transitions(
    pool: &PgPool,
    as_of: NaiveDate,
    accounts: &[AccountCoverage],
) -> Result<Vec<Transition>, sqlx::Error> {
    let since = as_of - Days::new(TRANSITION_WINDOW_DAYS - 1);
    let rows: Vec<HandoffRow> = sqlx::query_as(
        "SELECT h.customer_id, h.csm_id, h.previous_csm_id, h.occurred_at,
                EXISTS (SELECT 1 FROM coverage_contacts c WHERE c.customer_id = h.customer_id AND c.kind <> 'note'
                          AND c.occurred_on >= h.occurred_at::date AND c.occurred_on <= $2) AS contacted
           FROM coverage_handoffs h
          WHERE h.occurred_at::date BETWEEN $1 AND $2
          ORDER BY h.occurred_at DESC",
    )
    .bind(since)
    .bind(as_of)
    .fetch_all(pool)
    .await?;
    let names: HashMap<Uuid, &str> = accounts
        .iter()
        .map(|account| (account.customer_id, account.name.as_str()))
        .collect();
    Ok(rows
        .into_iter()
        .map(|(customer_id, csm_id, previous_csm_id, at, contacted)| Transition {
            customer_id,
            name: names.get(&customer_id).copied().unwrap_or_default().to_owned(),
            csm_id,
            previous_csm_id,
            handed_over_on: Date(at.date_naive()),
            days_since_handoff: (as_of - at.date_naive()).num_days(),
            contacted_since: contacted,
        })
        .collect())
}
