//! The PRD-162 coverage report, assembled from account facts by the shared formulas.

use events::rules::Rules;
use std::collections::BTreeMap;

use async_graphql::SimpleObject;
use events::coverage::{self as formulas, assess, compare_gaps, percentage, round1, GapRank};
use events::customer;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::coverage_store::AccountFacts;
use crate::scalars::{CoverageStatus, Date, GapArea, HealthColour, Priority, Tier};

/// The standards an account was measured against (its tier's, from Appendix A).
#[derive(SimpleObject, Debug, Clone)]
pub struct CoverageStandards {
    pub max_days_between_contact: i64,
    pub expected_touches_per_month: u32,
    pub min_meetings_per_quarter: u32,
    pub stakeholder_breadth: u32,
}

/// Points taken off 100, one decimal each.
#[derive(SimpleObject, Debug, Clone)]
pub struct CoverageDeductions {
    pub contact: f64,
    pub touches: f64,
    pub meetings: f64,
    pub stakeholders: f64,
}

/// One account's coverage as of a day: inputs, standards, score and what to do about it.
#[derive(SimpleObject, Debug, Clone)]
pub struct AccountCoverage {
    pub customer_id: Uuid,
    pub name: String,
    pub tier: Tier,
    pub arr: Decimal,
    pub csm_id: Uuid,
    pub csm_name: Option<String>,
    pub as_of: Date,
    /// Latest contact on or before `asOf`; null when never contacted.
    pub last_contact_date: Option<Date>,
    /// Null when never contacted (the score then counts days since onboarding).
    pub days_since_contact: Option<i64>,
    #[graphql(name = "touches30d")]
    pub touches_30d: u32,
    #[graphql(name = "meetings90d")]
    pub meetings_90d: u32,
    pub stakeholders_engaged: u32,
    pub standards: CoverageStandards,
    /// 0 to 100, one decimal (half away from zero).
    pub score: f64,
    pub deductions: CoverageDeductions,
    pub gap_areas: Vec<GapArea>,
    pub status: CoverageStatus,
    pub priority: Priority,
    /// Health as of `asOf` below 50.
    pub at_risk: bool,
    /// The latest health score measured on or before `asOf`.
    pub health_score: Option<f64>,
    pub health_colour: Option<HealthColour>,
    #[graphql(skip)]
    pub rank: GapRank,
    #[graphql(skip)]
    pub raw_status: formulas::CoverageStatus,
    #[graphql(skip)]
    pub raw_score: f64,
}

/// Money is reported with exactly two decimal places.
pub fn money(value: Decimal) -> Decimal {
    let mut value = value;
    value.rescale(2);
    value
}

pub fn account_coverage(facts: &AccountFacts, rules: &Rules) -> AccountCoverage {
    let standard = rules.standard(facts.tier);
    let assessment = assess(&facts.inputs, &standard);
    AccountCoverage {
        customer_id: facts.customer_id,
        name: facts.name.clone(),
        tier: facts.tier.into(),
        arr: money(facts.arr),
        csm_id: facts.csm_id,
        csm_name: facts.csm_name.clone(),
        as_of: Date(facts.inputs.as_of),
        last_contact_date: facts.inputs.last_contact_date.map(Date),
        days_since_contact: facts.inputs.days_since_contact(),
        touches_30d: facts.inputs.touches_30d,
        meetings_90d: facts.inputs.meetings_90d,
        stakeholders_engaged: facts.inputs.stakeholders_engaged,
        standards: CoverageStandards {
            max_days_between_contact: standard.max_days_between_contact,
            expected_touches_per_month: standard.expected_touches_per_month,
            min_meetings_per_quarter: standard.min_meetings_per_quarter,
            stakeholder_breadth: standard.stakeholder_breadth,
        },
        score: round1(assessment.score),
        deductions: CoverageDeductions {
            contact: round1(assessment.deductions.contact),
            touches: round1(assessment.deductions.touches),
            meetings: round1(assessment.deductions.meetings),
            stakeholders: round1(assessment.deductions.stakeholders),
        },
        gap_areas: assessment.gap_areas.iter().copied().map(Into::into).collect(),
        status: assessment.status.into(),
        priority: assessment.priority.into(),
        at_risk: assessment.at_risk,
        health_score: facts.inputs.health_score,
        health_colour: facts
            .inputs
            .health_score
            .map(|score| formulas::HealthColour::of(score).into()),
        rank: GapRank {
            priority: assessment.priority,
            arr: money(facts.arr),
            days_since_contact: facts.inputs.scoring_days_since_contact(),
        },
        raw_status: assessment.status,
        raw_score: assessment.score,
    }
}

#[derive(SimpleObject, Debug, Clone, Default)]
pub struct StatusCounts {
    pub accounts: usize,
    pub well_covered: usize,
    pub under_covered: usize,
    pub over_covered: usize,
    /// Shares of `accounts`, in percent with one decimal.
    pub well_covered_pct: f64,
    pub under_covered_pct: f64,
    pub over_covered_pct: f64,
    /// Mean coverage score, one decimal; 0 without accounts.
    pub average_score: f64,
    pub arr: Decimal,
}

fn status_counts(accounts: &[&AccountCoverage]) -> StatusCounts {
    let count = |status| accounts.iter().filter(|account| account.raw_status == status).count();
    let (well, under, over) = (
        count(formulas::CoverageStatus::WellCovered),
        count(formulas::CoverageStatus::UnderCovered),
        count(formulas::CoverageStatus::OverCovered),
    );
    let total = accounts.len();
    let average = if total == 0 {
        0.0
    } else {
        accounts.iter().map(|a| a.raw_score).sum::<f64>() / total as f64
    };
    StatusCounts {
        accounts: total,
        well_covered: well,
        under_covered: under,
        over_covered: over,
        well_covered_pct: percentage(well, total),
        under_covered_pct: percentage(under, total),
        over_covered_pct: percentage(over, total),
        average_score: round1(average),
        arr: money(accounts.iter().map(|account| account.arr).sum()),
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct TierSlice {
    pub tier: Tier,
    pub accounts: usize,
    pub arr: Decimal,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct HealthSlice {
    /// Null for accounts without a health score.
    pub colour: Option<HealthColour>,
    pub accounts: usize,
    pub arr: Decimal,
}

/// One CSM's book as of the report day, against the team's averages.
#[derive(SimpleObject, Debug, Clone)]
pub struct CsmPortfolio {
    pub csm_id: Uuid,
    pub csm_name: Option<String>,
    pub coverage: StatusCounts,
    pub by_tier: Vec<TierSlice>,
    pub by_health: Vec<HealthSlice>,
    /// Accounts above (+) or below (-) the team's mean accounts per CSM.
    pub accounts_vs_team_average: f64,
    /// ARR above (+) or below (-) the team's mean ARR per CSM.
    pub arr_vs_team_average: Decimal,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct TeamAverages {
    /// CSMs in the team: every registered CSM and any CSM holding accounts.
    pub csms: usize,
    /// Mean accounts per CSM, one decimal.
    pub average_accounts: f64,
    /// Mean ARR per CSM, two decimals.
    pub average_arr: Decimal,
}

/// Accounts and ARR per tier, in tier order.
pub fn tier_slices(items: &[(Tier, Decimal)]) -> Vec<TierSlice> {
    customer::Tier::ALL
        .into_iter()
        .map(|tier| {
            let matching: Vec<_> = items.iter().filter(|(t, _)| *t == tier.into()).collect();
            TierSlice {
                tier: tier.into(),
                accounts: matching.len(),
                arr: money(matching.iter().map(|(_, arr)| *arr).sum()),
            }
        })
        .collect()
}

/// Accounts and ARR per health colour, then those without a score.
pub fn health_slices(items: &[(Option<HealthColour>, Decimal)]) -> Vec<HealthSlice> {
    [
        Some(HealthColour::Green),
        Some(HealthColour::Yellow),
        Some(HealthColour::Red),
        None,
    ]
    .into_iter()
    .map(|colour| {
        let matching: Vec<_> = items.iter().filter(|(c, _)| *c == colour).collect();
        HealthSlice {
            colour,
            accounts: matching.len(),
            arr: money(matching.iter().map(|(_, arr)| *arr).sum()),
        }
    })
    .collect()
}

/// Share of a tier's accounts that are not under-covered.
#[derive(SimpleObject, Debug, Clone)]
pub struct TierCoverage {
    pub tier: Tier,
    pub accounts: usize,
    pub not_under_covered: usize,
    pub coverage_pct: f64,
}

#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct CoverageReport {
    pub as_of: Date,
    /// The rules the report was computed under: the Rules stream's sequence (`0`: docs/DOMAIN.md's
    /// defaults) or `what-if:<digest>` for rules passed with the query.
    pub rules_version: String,
    /// Counts over the report's scope (tier and CSM filters).
    pub summary: StatusCounts,
    pub team: TeamAverages,
    pub by_csm: Vec<CsmPortfolio>,
    pub by_tier: Vec<TierCoverage>,
    /// Accounts in scope (and of `status` when given), by name.
    #[graphql(skip)]
    pub accounts: Vec<AccountCoverage>,
    /// Accounts needing action: urgent, then attention; then ARR and days since contact, descending.
    #[graphql(skip)]
    pub gaps: Vec<AccountCoverage>,
}

/// `limit` items of `items` from `offset` (every item from there without a limit).
fn window(items: &[AccountCoverage], offset: i32, limit: Option<i32>) -> Vec<AccountCoverage> {
    let from = (offset.max(0) as usize).min(items.len());
    let to = limit.map_or(items.len(), |limit| {
        from.saturating_add(limit.max(0) as usize).min(items.len())
    });
    items[from..to].to_vec()
}

#[async_graphql::ComplexObject]
impl CoverageReport {
    /// Accounts in scope (and of `status` when given), by name: `limit` of them from `offset`
    /// (all of them without a limit), so a screen can page through a large portfolio.
    async fn accounts(&self, #[graphql(default = 0)] offset: i32, limit: Option<i32>) -> Vec<AccountCoverage> {
        window(&self.accounts, offset, limit)
    }

    /// How many accounts `accounts` holds in all.
    async fn accounts_total(&self) -> usize {
        self.accounts.len()
    }

    /// Accounts needing action: urgent, then attention; then ARR and days since contact,
    /// descending; `limit` of them from `offset` (all without a limit).
    async fn gaps(&self, #[graphql(default = 0)] offset: i32, limit: Option<i32>) -> Vec<AccountCoverage> {
        window(&self.gaps, offset, limit)
    }

    /// How many accounts `gaps` holds in all.
    async fn gaps_total(&self) -> usize {
        self.gaps.len()
    }
}

pub struct ReportFilter {
    pub csm_id: Option<Uuid>,
    pub status: Option<CoverageStatus>,
}

/// Builds the report from every account of the tier scope; team averages always cover the whole
/// team so that one CSM's book can be compared with them.
pub fn build_report(
    as_of: chrono::NaiveDate,
    facts: &[AccountFacts],
    registered_csms: &[(Uuid, String)],
    filter: &ReportFilter,
    rules: &Rules,
) -> CoverageReport {
    let all: Vec<AccountCoverage> = facts.iter().map(|facts| account_coverage(facts, rules)).collect();

    let mut csm_names: BTreeMap<Uuid, Option<String>> = registered_csms
        .iter()
        .map(|(id, name)| (*id, Some(name.clone())))
        .collect();
    for account in &all {
        csm_names
            .entry(account.csm_id)
            .or_insert_with(|| account.csm_name.clone());
    }
    let team_size = csm_names.len();
    let total_arr: Decimal = all.iter().map(|account| account.arr).sum();
    let (average_accounts, average_arr) = if team_size == 0 {
        (0.0, Decimal::ZERO)
    } else {
        (
            all.len() as f64 / team_size as f64,
            money((total_arr / Decimal::from(team_size)).round_dp(2)),
        )
    };

    let by_csm = csm_names
        .iter()
        .filter(|(id, _)| filter.csm_id.is_none_or(|wanted| wanted == **id))
        .map(|(csm_id, csm_name)| {
            let book: Vec<&AccountCoverage> = all.iter().filter(|account| account.csm_id == *csm_id).collect();
            portfolio(*csm_id, csm_name.clone(), &book, average_accounts, average_arr)
        })
        .collect();

    let scoped: Vec<&AccountCoverage> = all
        .iter()
        .filter(|account| filter.csm_id.is_none_or(|wanted| wanted == account.csm_id))
        .collect();
    let by_tier = customer::Tier::ALL
        .into_iter()
        .map(|tier| {
            let in_tier: Vec<_> = scoped.iter().filter(|account| account.tier == tier.into()).collect();
            let covered = in_tier
                .iter()
                .filter(|account| account.raw_status != formulas::CoverageStatus::UnderCovered)
                .count();
            TierCoverage {
                tier: tier.into(),
                accounts: in_tier.len(),
                not_under_covered: covered,
                coverage_pct: percentage(covered, in_tier.len()),
            }
        })
        .collect();

    let listed: Vec<AccountCoverage> = scoped
        .iter()
        .filter(|account| filter.status.is_none_or(|status| status == account.status))
        .map(|account| (*account).clone())
        .collect();
    let mut gaps: Vec<AccountCoverage> = listed
        .iter()
        .filter(|account| account.rank.priority != formulas::Priority::Ok)
        .cloned()
        .collect();
    gaps.sort_by(|a, b| compare_gaps(&a.rank, &b.rank));

    CoverageReport {
        as_of: Date(as_of),
        rules_version: rules.version.clone(),
        summary: status_counts(&scoped),
        team: TeamAverages {
            csms: team_size,
            average_accounts: round1(average_accounts),
            average_arr,
        },
        by_csm,
        by_tier,
        accounts: listed,
        gaps,
    }
}

fn portfolio(
    csm_id: Uuid,
    csm_name: Option<String>,
    book: &[&AccountCoverage],
    average_accounts: f64,
    average_arr: Decimal,
) -> CsmPortfolio {
    let by_tier = tier_slices(
        &book
            .iter()
            .map(|account| (account.tier, account.arr))
            .collect::<Vec<_>>(),
    );
    let by_health = health_slices(
        &book
            .iter()
            .map(|account| (account.health_colour, account.arr))
            .collect::<Vec<_>>(),
    );
    let coverage = status_counts(book);
    CsmPortfolio {
        csm_id,
        csm_name,
        accounts_vs_team_average: round1(coverage.accounts as f64 - average_accounts),
        arr_vs_team_average: money(coverage.arr - average_arr),
        coverage,
        by_tier,
        by_health,
    }
}
