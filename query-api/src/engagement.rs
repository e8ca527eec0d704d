//! Engagement (PRD-157) over GraphQL: one customer's period, its trend over periods, the
//! portfolio for a period (distribution, attention list, segment bands, outliers) and the
//! correlation of engagement with outcomes. Computed from the customers read model's activities
//! by the shared formulas.

use async_graphql::{Enum, SimpleObject};
use chrono::NaiveDate;
use events::coverage::round1;

use events::engagement::{self as formulas, Activity, Category, EngagementMetrics, Period, Trend, Weights};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::coverage::money;
use crate::scalars::{Date, Tier};
pub use events::service::read_models::{
    engagement_facts as facts, engagement_summaries, last_contacts, EngagementFacts, EngagementSummary, Window,
};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngagementCategory {
    High,
    Healthy,
    Low,
    AtRisk,
}

impl From<Category> for EngagementCategory {
    fn from(category: Category) -> Self {
        match category {
            Category::High => EngagementCategory::High,
            Category::Healthy => EngagementCategory::Healthy,
            Category::Low => EngagementCategory::Low,
            Category::AtRisk => EngagementCategory::AtRisk,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendDirection {
    Improving,
    Stable,
    Declining,
}

impl From<Trend> for TrendDirection {
    fn from(trend: Trend) -> Self {
        match trend {
            Trend::Improving => TrendDirection::Improving,
            Trend::Stable => TrendDirection::Stable,
            Trend::Declining => TrendDirection::Declining,
        }
    }
}

/// Components of the score, 0..100 each, one decimal.
#[derive(SimpleObject, Debug, Clone)]
pub struct EngagementComponents {
    pub email: f64,
    pub response: f64,
    pub meeting: f64,
    pub quality: f64,
    pub breadth: f64,
    pub recency: f64,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct CustomerEngagement {
    pub customer_id: Uuid,
    pub name: String,
    pub tier: Tier,
    pub csm_id: Uuid,
    pub arr: Decimal,
    /// `YYYY-MM` or `YYYY-Qn`.
    pub period: String,
    pub period_start: Date,
    /// The last day counted: the period's end, or `asOf` when the period is current.
    pub period_cut: Date,
    pub emails_sent: u32,
    pub emails_received: u32,
    /// Outbound emails answered / outbound emails, 0..1 with three decimals.
    pub response_rate: f64,
    pub avg_response_time_hours: Option<f64>,
    pub meetings_held: u32,
    pub meeting_minutes: u32,
    pub calls_made: u32,
    pub qbrs_completed: u32,
    pub stakeholders_engaged: u32,
    pub executive_touchpoints: u32,
    /// Days from the period's cut back to the last contact; null when never contacted.
    pub days_since_contact: Option<i64>,
    pub components: EngagementComponents,
    /// 0..100, one decimal.
    pub score: f64,
    pub category: EngagementCategory,
    pub previous_period: String,
    pub previous_score: f64,
    /// score - previousScore, one decimal.
    pub change: f64,
    pub trend: TrendDirection,
    #[graphql(skip)]
    pub raw_score: f64,
}

/// The latest contact on or before `cut`, from the loaded activities or, failing that, `earlier`.
fn last_contact(activities: &[Activity], cut: NaiveDate, earlier: Option<NaiveDate>) -> Option<NaiveDate> {
    activities
        .iter()
        .filter(|a| a.kind.is_contact() && a.day <= cut)
        .map(|a| a.day)
        .max()
        .or(earlier.filter(|day| *day <= cut))
}

/// The metrics of one customer for one period as of `as_of`.
fn period_metrics(
    facts: &EngagementFacts,
    period: &Period,
    as_of: NaiveDate,
    earlier_contact: Option<NaiveDate>,
) -> EngagementMetrics {
    let cut = period.cut(as_of);
    formulas::metrics(
        &facts.activities,
        period.start,
        cut,
        last_contact(&facts.activities, cut, earlier_contact),
    )
}

/// One customer's engagement for `period` as of `as_of`, with the trend against the previous period.
pub fn customer_engagement(
    facts: &EngagementFacts,
    period: &Period,
    as_of: NaiveDate,
    contact_before: Option<NaiveDate>,
    contact_before_previous: Option<NaiveDate>,
    weights: &Weights,
) -> CustomerEngagement {
    let customer = EngagementSummary {
        customer_id: facts.customer_id,
        name: facts.name.clone(),
        tier: facts.tier,
        csm_id: facts.csm_id,
        arr: facts.arr,
        metrics: vec![
            period_metrics(facts, period, as_of, contact_before),
            period_metrics(facts, &period.previous(), as_of, contact_before_previous),
        ],
    };
    engagement_of(&customer, period, as_of, weights)
}

/// The windows a period's engagement is computed from: the period and the one before it.
pub fn windows(period: &Period, as_of: NaiveDate) -> [Window; 2] {
    let previous = period.previous();
    [
        Window {
            start: period.start,
            cut: period.cut(as_of),
        },
        Window {
            start: previous.start,
            cut: previous.cut(as_of),
        },
    ]
}

/// One customer's engagement from its metrics for `period` and the previous period (in the order
/// of [`windows`]).
pub fn engagement_of(
    customer: &EngagementSummary,
    period: &Period,
    as_of: NaiveDate,
    weights: &Weights,
) -> CustomerEngagement {
    let cut = period.cut(as_of);
    let previous = period.previous();
    let empty = formulas::metrics(&[], period.start, cut, None);
    let metrics = customer.metrics.first().unwrap_or(&empty);
    let components = formulas::components(metrics);
    let score = formulas::score(&components, weights);
    let previous_score = customer
        .metrics
        .get(1)
        .map_or(0.0, |metrics| formulas::score(&formulas::components(metrics), weights));
    let change = score - previous_score;
    CustomerEngagement {
        customer_id: customer.customer_id,
        name: customer.name.clone(),
        tier: customer.tier.into(),
        csm_id: customer.csm_id,
        arr: money(customer.arr),
        period: period.label(),
        period_start: Date(period.start),
        period_cut: Date(cut),
        emails_sent: metrics.emails_sent,
        emails_received: metrics.emails_received,
        response_rate: (metrics.response_rate * 1000.0).round() / 1000.0,
        avg_response_time_hours: metrics.avg_response_time_hours.map(round1),
        meetings_held: metrics.meetings_held,
        meeting_minutes: metrics.meeting_minutes,
        calls_made: metrics.calls_made,
        qbrs_completed: metrics.qbrs_completed,
        stakeholders_engaged: metrics.stakeholders_engaged,
        executive_touchpoints: metrics.executive_touchpoints,
        days_since_contact: metrics.days_since_contact,
        components: EngagementComponents {
            email: round1(components.email),
            response: round1(components.response),
            meeting: round1(components.meeting),
            quality: round1(components.quality),
            breadth: round1(components.breadth),
            recency: round1(components.recency),
        },
        score: round1(score),
        category: Category::of(score).into(),
        previous_period: previous.label(),
        previous_score: round1(previous_score),
        change: round1(change),
        trend: Trend::of(change).into(),
        raw_score: score,
    }
}

/// Segment bands of Appendix A: the healthy range of each tier.
pub fn band(tier: events::customer::Tier) -> (f64, f64) {
    match tier {
        events::customer::Tier::Enterprise => (70.0, 85.0),
        events::customer::Tier::MidMarket => (60.0, 75.0),
        events::customer::Tier::Smb => (50.0, 65.0),
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct CategoryCount {
    pub category: EngagementCategory,
    pub customers: usize,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct SegmentComparison {
    pub tier: Tier,
    pub customers: usize,
    pub average_score: f64,
    pub band_low: f64,
    pub band_high: f64,
    pub below_band: usize,
    pub within_band: usize,
    pub above_band: usize,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct EngagementOutlier {
    pub customer_id: Uuid,
    pub name: String,
    pub tier: Tier,
    pub score: f64,
    /// Standard score against the tier's mean and population standard deviation.
    pub z: f64,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct EngagementPortfolio {
    /// The rules the scores were computed under: the Rules stream's sequence (`0`: docs/DOMAIN.md's
    /// defaults) or `what-if:<digest>` for rules passed with the query.
    pub rules_version: String,
    pub period: String,
    pub as_of: Date,
    pub customers: usize,
    pub average_score: f64,
    pub distribution: Vec<CategoryCount>,
    /// Customers scoring below 60 (low or at risk), lowest first.
    pub needing_attention: Vec<CustomerEngagement>,
    pub segments: Vec<SegmentComparison>,
    pub outliers: Vec<EngagementOutlier>,
    /// Every customer in scope, by name.
    pub items: Vec<CustomerEngagement>,
}

pub fn portfolio(
    period: &Period,
    as_of: NaiveDate,
    all: Vec<CustomerEngagement>,
    min: Option<f64>,
    max: Option<f64>,
    rules_version: String,
) -> EngagementPortfolio {
    let items: Vec<CustomerEngagement> = all
        .into_iter()
        .filter(|item| min.is_none_or(|min| item.raw_score >= min) && max.is_none_or(|max| item.raw_score <= max))
        .collect();
    let scores: Vec<f64> = items.iter().map(|item| item.raw_score).collect();
    let average = formulas::mean_and_deviation(&scores).map_or(0.0, |(mean, _)| mean);
    let distribution = [Category::High, Category::Healthy, Category::Low, Category::AtRisk]
        .into_iter()
        .map(|category| CategoryCount {
            category: category.into(),
            customers: items
                .iter()
                .filter(|item| Category::of(item.raw_score) == category)
                .count(),
        })
        .collect();
    let mut needing_attention: Vec<CustomerEngagement> =
        items.iter().filter(|item| item.raw_score < 60.0).cloned().collect();
    needing_attention.sort_by(|a, b| a.raw_score.total_cmp(&b.raw_score));
    let mut segments = Vec::new();
    let mut outliers = Vec::new();
    for tier in events::customer::Tier::ALL {
        let in_tier: Vec<&CustomerEngagement> = items.iter().filter(|item| item.tier == tier.into()).collect();
        let scores: Vec<f64> = in_tier.iter().map(|item| item.raw_score).collect();
        let (low, high) = band(tier);
        if let Some((mean, deviation)) = formulas::mean_and_deviation(&scores) {
            if deviation > 0.0 {
                for item in &in_tier {
                    let z = (item.raw_score - mean) / deviation;
                    if z.abs() >= 2.0 {
                        outliers.push(EngagementOutlier {
                            customer_id: item.customer_id,
                            name: item.name.clone(),
                            tier: item.tier,
                            score: item.score,
                            z: (z * 100.0).round() / 100.0,
                        });
                    }
                }
            }
            segments.push(SegmentComparison {
                tier: tier.into(),
                customers: in_tier.len(),
                average_score: round1(mean),
                band_low: low,
                band_high: high,
                below_band: scores.iter().filter(|s| **s < low).count(),
                within_band: scores.iter().filter(|s| **s >= low && **s <= high).count(),
                above_band: scores.iter().filter(|s| **s > high).count(),
            });
        }
    }
    EngagementPortfolio {
        rules_version,
        period: period.label(),
        as_of: Date(as_of),
        customers: items.len(),
        average_score: round1(average),
        distribution,
        needing_attention,
        segments,
        outliers,
        items,
    }
}
