//! Account coverage (PRD-162, docs/DOMAIN.md sections 3 and 4) as pure functions.
//!
//! The read model stores facts (contacts per day, participants, health points); everything that
//! depends on the day a report is about is computed here, by the query API for reports and by the
//! projection service for alerts, so both always agree.

use std::cmp::Ordering;

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::customer::Tier;

/// Appendix A standards of one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CoverageStandard {
    pub max_days_between_contact: i64,
    pub expected_touches_per_month: u32,
    pub min_meetings_per_quarter: u32,
    pub stakeholder_breadth: u32,
}

impl CoverageStandard {
    pub fn for_tier(tier: Tier) -> Self {
        let (max_days, touches, meetings, breadth) = match tier {
            Tier::Enterprise => (14, 4, 3, 4),
            Tier::MidMarket => (21, 2, 2, 3),
            Tier::Smb => (30, 1, 1, 2),
        };
        CoverageStandard {
            max_days_between_contact: max_days,
            expected_touches_per_month: touches,
            min_meetings_per_quarter: meetings,
            stakeholder_breadth: breadth,
        }
    }
}

/// Length of the touch window.
pub const TOUCH_WINDOW_DAYS: u64 = 30;
/// Length of the meeting and stakeholder window.
pub const MEETING_WINDOW_DAYS: u64 = 90;
/// Health below this puts an account at risk.
pub const AT_RISK_BELOW: f64 = 50.0;
/// Days without contact that make an at-risk account urgent even when covered.
pub const URGENT_SILENCE_DAYS: i64 = 21;

/// First day of a window of `days` days ending on (and including) `as_of`.
pub fn window_start(as_of: NaiveDate, days: u64) -> NaiveDate {
    as_of - Days::new(days - 1)
}

/// What the read model knows about one account, as of one day.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageInputs {
    pub as_of: NaiveDate,
    /// Day of `CustomerOnboarded.occurred_at`; stands in for the last contact when there is none.
    pub onboarded_on: NaiveDate,
    pub last_contact_date: Option<NaiveDate>,
    pub touches_30d: u32,
    pub meetings_90d: u32,
    pub stakeholders_engaged: u32,
    /// The latest health score measured on or before `as_of`.
    pub health_score: Option<f64>,
}

impl CoverageInputs {
    /// Days since the last contact; `None` when the account was never contacted.
    pub fn days_since_contact(&self) -> Option<i64> {
        self.last_contact_date.map(|day| (self.as_of - day).num_days())
    }

    /// The days used for scoring: since the last contact, or since onboarding when never contacted.
    pub fn scoring_days_since_contact(&self) -> i64 {
        self.days_since_contact()
            .unwrap_or_else(|| (self.as_of - self.onboarded_on).num_days().max(0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapArea {
    Contact,
    Touches,
    Meetings,
    Stakeholders,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CoverageStatus {
    UnderCovered,
    WellCovered,
    OverCovered,
}

impl CoverageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CoverageStatus::UnderCovered => "under_covered",
            CoverageStatus::WellCovered => "well_covered",
            CoverageStatus::OverCovered => "over_covered",
        }
    }
}

/// Ordered most pressing first, so sorting by it puts urgent accounts at the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Urgent,
    Attention,
    Ok,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthColour {
    Green,
    Yellow,
    Red,
}

impl HealthColour {
    /// Green from 70, yellow from 50, red below (docs/DOMAIN.md section 6).
    pub fn of(score: f64) -> Self {
        if score >= 70.0 {
            HealthColour::Green
        } else if score >= 50.0 {
            HealthColour::Yellow
        } else {
            HealthColour::Red
        }
    }
}

/// Points taken off the score of 100, unrounded.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Deductions {
    pub contact: f64,
    pub touches: f64,
    pub meetings: f64,
    pub stakeholders: f64,
}

impl Deductions {
    pub fn total(&self) -> f64 {
        self.contact + self.touches + self.meetings + self.stakeholders
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageAssessment {
    /// Unrounded score; report it through [`round1`].
    pub score: f64,
    pub deductions: Deductions,
    pub gap_areas: Vec<GapArea>,
    pub status: CoverageStatus,
    pub priority: Priority,
    pub at_risk: bool,
}

/// Deduction for a ratio `actual / expected` below 1, weighted by `weight`.
fn shortfall(actual: u32, expected: u32, weight: f64) -> f64 {
    if expected == 0 {
        return 0.0;
    }
    let ratio = f64::from(actual) / f64::from(expected);
    if ratio < 1.0 {
        (1.0 - ratio) * weight
    } else {
        0.0
    }
}

/// Scores one account against its tier's standard (docs/DOMAIN.md section 4).
pub fn assess(inputs: &CoverageInputs, standard: &CoverageStandard) -> CoverageAssessment {
    let days = inputs.scoring_days_since_contact();
    let days_over = days - standard.max_days_between_contact;
    let deductions = Deductions {
        contact: if days_over > 0 {
            (days_over as f64 * 2.0).min(40.0)
        } else {
            0.0
        },
        touches: shortfall(inputs.touches_30d, standard.expected_touches_per_month, 30.0),
        meetings: shortfall(inputs.meetings_90d, standard.min_meetings_per_quarter, 20.0),
        stakeholders: shortfall(inputs.stakeholders_engaged, standard.stakeholder_breadth, 10.0),
    };
    let score = (100.0 - deductions.total()).max(0.0);

    let gap_areas = [
        (GapArea::Contact, days_over > 0),
        (
            GapArea::Touches,
            inputs.touches_30d < standard.expected_touches_per_month,
        ),
        (
            GapArea::Meetings,
            inputs.meetings_90d < standard.min_meetings_per_quarter,
        ),
        (
            GapArea::Stakeholders,
            inputs.stakeholders_engaged < standard.stakeholder_breadth,
        ),
    ]
    .into_iter()
    .filter_map(|(area, gap)| gap.then_some(area))
    .collect();

    let status = if score < 70.0 || days_over > 0 {
        CoverageStatus::UnderCovered
    } else if inputs.touches_30d >= 2 * standard.expected_touches_per_month
        && inputs.meetings_90d >= 2 * standard.min_meetings_per_quarter
    {
        CoverageStatus::OverCovered
    } else {
        CoverageStatus::WellCovered
    };

    let at_risk = inputs.health_score.is_some_and(|score| score < AT_RISK_BELOW);
    let under_covered = status == CoverageStatus::UnderCovered;
    let priority = if at_risk && (under_covered || days >= URGENT_SILENCE_DAYS) {
        Priority::Urgent
    } else if under_covered {
        Priority::Attention
    } else {
        Priority::Ok
    };

    CoverageAssessment {
        score,
        deductions,
        gap_areas,
        status,
        priority,
        at_risk,
    }
}

/// One decimal, half away from zero, as every score is reported.
pub fn round1(value: f64) -> f64 {
    // Scale through a decimal string of 9 places first so that a value like 52.25 computed as
    // 52.249999999 still rounds as the hand computation does.
    let cleaned: f64 = format!("{value:.9}").parse().unwrap_or(value);
    (cleaned * 10.0).round() / 10.0
}

/// Percentage with one decimal; 0 when the whole is empty.
pub fn percentage(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round1(part as f64 * 100.0 / whole as f64)
    }
}

/// What the gap list is ordered by.
#[derive(Debug, Clone, PartialEq)]
pub struct GapRank {
    pub priority: Priority,
    pub arr: Decimal,
    pub days_since_contact: i64,
}

/// Gap list order: urgent, then attention; then ARR descending; then days since contact descending.
pub fn compare_gaps(a: &GapRank, b: &GapRank) -> Ordering {
    a.priority
        .cmp(&b.priority)
        .then_with(|| b.arr.cmp(&a.arr))
        .then_with(|| b.days_since_contact.cmp(&a.days_since_contact))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn inputs(days_ago: Option<u64>, touches: u32, meetings: u32, stakeholders: u32) -> CoverageInputs {
        let as_of = day("2026-06-30");
        CoverageInputs {
            as_of,
            onboarded_on: day("2025-01-01"),
            last_contact_date: days_ago.map(|d| as_of - Days::new(d)),
            touches_30d: touches,
            meetings_90d: meetings,
            stakeholders_engaged: stakeholders,
            health_score: None,
        }
    }

    #[test]
    fn windows_include_as_of() {
        assert_eq!(window_start(day("2026-06-30"), 30), day("2026-06-01"));
        assert_eq!(window_start(day("2026-06-30"), 90), day("2026-04-02"));
    }

    #[test]
    fn tc_162_1_enterprise_twenty_days_silent_loses_twelve_points() {
        let assessment = assess(
            &inputs(Some(20), 4, 3, 4),
            &CoverageStandard::for_tier(Tier::Enterprise),
        );
        assert_eq!(assessment.deductions.contact, 12.0);
        assert_eq!(round1(assessment.score), 88.0);
        assert_eq!(assessment.gap_areas, vec![GapArea::Contact]);
        assert_eq!(assessment.status, CoverageStatus::UnderCovered);
        assert_eq!(assessment.priority, Priority::Attention);
    }

    #[test]
    fn enterprise_with_every_deduction() {
        // 100 - 12 - (1 - 2/4)*30 - (1 - 1/3)*20 - (1 - 1/4)*10 = 52.1666...
        let assessment = assess(
            &inputs(Some(20), 2, 1, 1),
            &CoverageStandard::for_tier(Tier::Enterprise),
        );
        assert_eq!(assessment.deductions.touches, 15.0);
        assert!((assessment.deductions.meetings - 13.333_333).abs() < 1e-5);
        assert_eq!(assessment.deductions.stakeholders, 7.5);
        assert_eq!(round1(assessment.score), 52.2);
        assert_eq!(assessment.gap_areas.len(), 4);
    }

    #[test]
    fn midmarket_with_every_deduction() {
        // 100 - (30-21)*2 - (1 - 1/2)*30 - (1 - 1/2)*20 - (1 - 1/3)*10 = 50.333...
        let assessment = assess(&inputs(Some(30), 1, 1, 1), &CoverageStandard::for_tier(Tier::MidMarket));
        assert_eq!(assessment.deductions.contact, 18.0);
        assert_eq!(round1(assessment.score), 50.3);
    }

    #[test]
    fn smb_with_every_deduction() {
        // 100 - (40-30)*2 - 30 - 20 - (1 - 1/2)*10 = 25
        let assessment = assess(&inputs(Some(40), 0, 0, 1), &CoverageStandard::for_tier(Tier::Smb));
        assert_eq!(round1(assessment.score), 25.0);
        assert_eq!(assessment.status, CoverageStatus::UnderCovered);
    }

    #[test]
    fn contact_deduction_is_capped_and_score_floored() {
        let assessment = assess(
            &inputs(Some(200), 0, 0, 0),
            &CoverageStandard::for_tier(Tier::Enterprise),
        );
        assert_eq!(assessment.deductions.contact, 40.0);
        assert_eq!(assessment.score, 0.0);
    }

    #[test]
    fn never_contacted_uses_days_since_onboarding() {
        let mut never = inputs(None, 0, 0, 0);
        never.onboarded_on = day("2026-06-20");
        assert_eq!(never.days_since_contact(), None);
        assert_eq!(never.scoring_days_since_contact(), 10);
        let assessment = assess(&never, &CoverageStandard::for_tier(Tier::Smb));
        assert_eq!(assessment.deductions.contact, 0.0);
        assert_eq!(round1(assessment.score), 40.0);
    }

    #[test]
    fn over_covered_needs_double_touches_and_meetings() {
        let standard = CoverageStandard::for_tier(Tier::MidMarket);
        assert_eq!(
            assess(&inputs(Some(1), 4, 4, 3), &standard).status,
            CoverageStatus::OverCovered
        );
        assert_eq!(
            assess(&inputs(Some(1), 4, 3, 3), &standard).status,
            CoverageStatus::WellCovered
        );
    }

    #[test]
    fn tc_162_3_low_health_and_three_weeks_of_silence_is_urgent() {
        let mut silent = inputs(Some(21), 0, 3, 4);
        silent.health_score = Some(45.0);
        let assessment = assess(&silent, &CoverageStandard::for_tier(Tier::MidMarket));
        assert!(assessment.at_risk);
        assert_eq!(assessment.priority, Priority::Urgent);
    }

    #[test]
    fn at_risk_but_covered_and_recent_is_ok() {
        let mut covered = inputs(Some(2), 2, 2, 3);
        covered.health_score = Some(30.0);
        let assessment = assess(&covered, &CoverageStandard::for_tier(Tier::MidMarket));
        assert!(assessment.at_risk);
        assert_eq!(assessment.priority, Priority::Ok);
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round1(52.25), 52.3);
        assert_eq!(round1(52.249_999_999_9), 52.3);
        assert_eq!(round1(52.24), 52.2);
        assert_eq!(percentage(1, 3), 33.3);
        assert_eq!(percentage(2, 3), 66.7);
    }

    #[test]
    fn health_colours() {
        assert_eq!(HealthColour::of(70.0), HealthColour::Green);
        assert_eq!(HealthColour::of(69.9), HealthColour::Yellow);
        assert_eq!(HealthColour::of(50.0), HealthColour::Yellow);
        assert_eq!(HealthColour::of(49.9), HealthColour::Red);
    }

    #[test]
    fn gaps_order_by_priority_then_arr_then_silence() {
        let rank = |priority, arr: i64, days| GapRank {
            priority,
            arr: Decimal::from(arr),
            days_since_contact: days,
        };
        let mut gaps = [
            rank(Priority::Attention, 900, 5),
            rank(Priority::Urgent, 10, 1),
            rank(Priority::Attention, 900, 50),
            rank(Priority::Attention, 1000, 1),
        ];
        gaps.sort_by(compare_gaps);
        assert_eq!(gaps[0].priority, Priority::Urgent);
        assert_eq!(gaps[1].arr, Decimal::from(1000));
        assert_eq!(gaps[2].days_since_contact, 50);
        assert_eq!(gaps[3].days_since_contact, 5);
    }
}
