//! Engagement (PRD-157, docs/DOMAIN.md section 5) as pure functions over a period's activities.

use chrono::{Datelike, Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::customer::{ActivityKind, Direction};

/// The days engagement is measured over (docs/DOMAIN.md section 5): a rolling window of N days
/// ending on asOf (`30d`, `90d`: the default of the screens, the portfolio report and the
/// alert), or a calendar month (`2026-03`) or quarter (`2026-Q1`), cut at asOf when current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub kind: PeriodKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PeriodKind {
    Month,
    Quarter,
    /// The last N days.
    Rolling(u32),
}

/// The rolling window the screens, the portfolio report and the alert use unless told otherwise.
pub const DEFAULT_WINDOW_DAYS: u32 = 30;
/// The longest rolling window.
pub const MAX_WINDOW_DAYS: u32 = 366;

impl Period {
    /// `Nd` (a rolling window of N days ending on `as_of`, 1 to 366), `YYYY-MM` or `YYYY-Qn`.
    pub fn parse(text: &str, as_of: NaiveDate) -> Option<Self> {
        if let Some(days) = text.strip_suffix('d') {
            let days: u32 = days.parse().ok().filter(|days| (1..=MAX_WINDOW_DAYS).contains(days))?;
            return Some(Period::rolling(days, as_of));
        }
        let (year, rest) = text.split_once('-')?;
        let year: i32 = year.parse().ok()?;
        if let Some(quarter) = rest.strip_prefix('Q') {
            let quarter: u32 = quarter.parse().ok().filter(|q| (1..=4).contains(q))?;
            let start = NaiveDate::from_ymd_opt(year, (quarter - 1) * 3 + 1, 1)?;
            Some(Period {
                start,
                end: month_end(start.checked_add_months(chrono::Months::new(2))?),
                kind: PeriodKind::Quarter,
            })
        } else {
            let month: u32 = rest.parse().ok().filter(|m| (1..=12).contains(m))?;
            let start = NaiveDate::from_ymd_opt(year, month, 1)?;
            Some(Period {
                start,
                end: month_end(start),
                kind: PeriodKind::Month,
            })
        }
    }

    /// The `days` days ending on `as_of`, both ends included.
    pub fn rolling(days: u32, as_of: NaiveDate) -> Self {
        Period {
            start: as_of - Days::new(u64::from(days.max(1)) - 1),
            end: as_of,
            kind: PeriodKind::Rolling(days.max(1)),
        }
    }

    /// The calendar period containing `day`: its quarter, or its month.
    pub fn containing(day: NaiveDate, quarter: bool) -> Self {
        let month = if quarter {
            (day.month0() / 3) * 3 + 1
        } else {
            day.month()
        };
        let start = NaiveDate::from_ymd_opt(day.year(), month, 1).expect("first of a month exists");
        let last_month = if quarter {
            start.checked_add_months(chrono::Months::new(2)).expect("in range")
        } else {
            start
        };
        Period {
            start,
            end: month_end(last_month),
            kind: if quarter {
                PeriodKind::Quarter
            } else {
                PeriodKind::Month
            },
        }
    }

    /// The period before: the calendar period before, or the window of the same length just
    /// before this one.
    pub fn previous(&self) -> Self {
        match self.kind {
            PeriodKind::Rolling(days) => Period::rolling(days, self.start - Days::new(1)),
            PeriodKind::Quarter => Period::containing(self.start - Days::new(1), true),
            PeriodKind::Month => Period::containing(self.start - Days::new(1), false),
        }
    }

    pub fn label(&self) -> String {
        match self.kind {
            PeriodKind::Rolling(days) => format!("{days}d"),
            PeriodKind::Quarter => format!("{}-Q{}", self.start.year(), self.start.month0() / 3 + 1),
            PeriodKind::Month => format!("{}-{:02}", self.start.year(), self.start.month()),
        }
    }

    /// The last day counted: the period's end, or `as_of` when the period is current.
    pub fn cut(&self, as_of: NaiveDate) -> NaiveDate {
        self.end.min(as_of)
    }
}

fn month_end(first: NaiveDate) -> NaiveDate {
    first.checked_add_months(chrono::Months::new(1)).expect("in range") - Days::new(1)
}

/// One non-retracted activity, as the engagement read model holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub kind: ActivityKind,
    pub direction: Direction,
    pub day: NaiveDate,
    pub duration_minutes: Option<u32>,
    pub participants: Vec<uuid::Uuid>,
    pub response_received: Option<bool>,
    pub response_time_hours: Option<f64>,
    /// Whether any participant is an executive stakeholder.
    pub executive_present: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngagementMetrics {
    pub emails_sent: u32,
    pub emails_received: u32,
    pub response_rate: f64,
    pub avg_response_time_hours: Option<f64>,
    pub meetings_held: u32,
    pub meeting_minutes: u32,
    pub calls_made: u32,
    pub qbrs_completed: u32,
    pub stakeholders_engaged: u32,
    pub executive_touchpoints: u32,
    /// Days from the period's cut to the last contact on or before it; `None` when never contacted.
    pub days_since_contact: Option<i64>,
}

/// Score components, each 0..100, before weighting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Components {
    pub email: f64,
    pub response: f64,
    pub meeting: f64,
    pub quality: f64,
    pub breadth: f64,
    pub recency: f64,
}

/// Weights of the components (Rules stream; docs/DOMAIN.md's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Weights {
    pub email: f64,
    pub response: f64,
    pub meeting: f64,
    pub quality: f64,
    pub breadth: f64,
    pub recency: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            email: 0.15,
            response: 0.20,
            meeting: 0.25,
            quality: 0.15,
            breadth: 0.15,
            recency: 0.10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    High,
    Healthy,
    Low,
    AtRisk,
}

impl Category {
    pub fn of(score: f64) -> Self {
        if score >= 80.0 {
            Category::High
        } else if score >= 60.0 {
            Category::Healthy
        } else if score >= 40.0 {
            Category::Low
        } else {
            Category::AtRisk
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Improving,
    Stable,
    Declining,
}

impl Trend {
    /// Against the previous value: a change of 5 points or more either way.
    pub fn of(change: f64) -> Self {
        if change >= 5.0 {
            Trend::Improving
        } else if change <= -5.0 {
            Trend::Declining
        } else {
            Trend::Stable
        }
    }
}

/// Metrics of the activities dated within `period` up to `cut`; `last_contact` is the latest
/// contact day on or before `cut`, whether inside the period or earlier.
pub fn metrics(
    activities: &[Activity],
    period_start: NaiveDate,
    cut: NaiveDate,
    last_contact: Option<NaiveDate>,
) -> EngagementMetrics {
    let within: Vec<&Activity> = activities
        .iter()
        .filter(|a| a.day >= period_start && a.day <= cut)
        .collect();
    let outbound_emails: Vec<&&Activity> = within
        .iter()
        .filter(|a| a.kind == ActivityKind::Email && a.direction == Direction::Outbound)
        .collect();
    let answered = outbound_emails
        .iter()
        .filter(|a| a.response_received == Some(true))
        .count();
    let response_times: Vec<f64> = outbound_emails.iter().filter_map(|a| a.response_time_hours).collect();
    let meetings: Vec<&&Activity> = within.iter().filter(|a| a.kind.is_meeting()).collect();
    let contacts: Vec<&&Activity> = within.iter().filter(|a| a.kind.is_contact()).collect();
    let mut people: Vec<uuid::Uuid> = contacts.iter().flat_map(|a| a.participants.iter().copied()).collect();
    people.sort_unstable();
    people.dedup();
    EngagementMetrics {
        emails_sent: outbound_emails.len() as u32,
        emails_received: within
            .iter()
            .filter(|a| a.kind == ActivityKind::Email && a.direction == Direction::Inbound)
            .count() as u32,
        response_rate: if outbound_emails.is_empty() {
            0.0
        } else {
            answered as f64 / outbound_emails.len() as f64
        },
        avg_response_time_hours: (!response_times.is_empty())
            .then(|| response_times.iter().sum::<f64>() / response_times.len() as f64),
        meetings_held: meetings.len() as u32,
        meeting_minutes: meetings.iter().filter_map(|a| a.duration_minutes).sum(),
        calls_made: within.iter().filter(|a| a.kind == ActivityKind::Call).count() as u32,
        qbrs_completed: within.iter().filter(|a| a.kind == ActivityKind::Qbr).count() as u32,
        stakeholders_engaged: people.len() as u32,
        executive_touchpoints: contacts.iter().filter(|a| a.executive_present).count() as u32,
        days_since_contact: last_contact.map(|day| (cut - day).num_days()),
    }
}

pub fn components(metrics: &EngagementMetrics) -> Components {
    Components {
        email: (f64::from(metrics.emails_sent) * 5.0).min(100.0),
        response: metrics.response_rate * 100.0,
        meeting: (f64::from(metrics.meetings_held) * 20.0).min(100.0),
        quality: (f64::from(metrics.meeting_minutes) / 60.0 * 10.0).min(100.0),
        breadth: (f64::from(metrics.stakeholders_engaged) * 25.0).min(100.0),
        recency: metrics
            .days_since_contact
            .map_or(0.0, |days| (100.0 - days as f64 * 3.0).max(0.0)),
    }
}

/// The weighted score, unrounded.
pub fn score(components: &Components, weights: &Weights) -> f64 {
    weights.email * components.email
        + weights.response * components.response
        + weights.meeting * components.meeting
        + weights.quality * components.quality
        + weights.breadth * components.breadth
        + weights.recency * components.recency
}

/// Mean and population standard deviation.
pub fn mean_and_deviation(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    Some((mean, variance.sqrt()))
}

/// Pearson's r over pairs; `None` when fewer than 3 pairs or either variance is 0.
pub fn pearson(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 3 {
        return None;
    }
    let n = pairs.len() as f64;
    let (mean_x, mean_y) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let covariance: f64 = pairs.iter().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let (var_x, var_y): (f64, f64) = (
        pairs.iter().map(|(x, _)| (x - mean_x).powi(2)).sum(),
        pairs.iter().map(|(_, y)| (y - mean_y).powi(2)).sum(),
    );
    if var_x == 0.0 || var_y == 0.0 {
        return None;
    }
    Some(covariance / (var_x.sqrt() * var_y.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::round1;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn activity(kind: ActivityKind, direction: Direction, on: &str) -> Activity {
        Activity {
            kind,
            direction,
            day: day(on),
            duration_minutes: None,
            participants: vec![],
            response_received: None,
            response_time_hours: None,
            executive_present: false,
        }
    }

    #[test]
    fn periods_parse_and_step_back() {
        let march = Period::parse("2026-03", NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()).unwrap();
        assert_eq!((march.start, march.end), (day("2026-03-01"), day("2026-03-31")));
        assert_eq!(march.previous().label(), "2026-02");
        let q1 = Period::parse("2026-Q1", NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()).unwrap();
        assert_eq!((q1.start, q1.end), (day("2026-01-01"), day("2026-03-31")));
        assert_eq!(q1.previous().label(), "2025-Q4");
        assert_eq!(
            Period::parse("2026-13", NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()),
            None
        );
        assert_eq!(
            Period::parse("2026-Q5", NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()),
            None
        );
        assert_eq!(march.cut(day("2026-03-10")), day("2026-03-10"));
    }

    #[test]
    fn a_rolling_window_ends_on_as_of_and_steps_back_by_its_length() {
        let as_of = day("2026-12-07");
        let window = Period::parse("30d", as_of).unwrap();
        assert_eq!((window.start, window.end), (day("2026-11-08"), as_of));
        assert_eq!(window.label(), "30d");
        assert_eq!(window.cut(as_of), as_of);
        let previous = window.previous();
        assert_eq!((previous.start, previous.end), (day("2026-10-09"), day("2026-11-07")));
        let quarter = Period::parse("90d", as_of).unwrap();
        assert_eq!(quarter.start, day("2026-09-09"));
        for refused in ["0d", "367d", "d", "-3d", "30days"] {
            assert_eq!(Period::parse(refused, as_of), None, "{refused}");
        }
    }

    #[test]
    fn tc_157_1_ten_emails_three_meetings_sixty_percent_answered() {
        let (ada, ben) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let mut activities: Vec<Activity> = (0..10)
            .map(|k| Activity {
                response_received: Some(k < 6),
                response_time_hours: (k < 6).then_some(4.0),
                participants: vec![ada],
                ..activity(ActivityKind::Email, Direction::Outbound, "2026-03-05")
            })
            .collect();
        for on in ["2026-03-10", "2026-03-20", "2026-03-31"] {
            activities.push(Activity {
                duration_minutes: Some(60),
                participants: vec![ada, ben],
                executive_present: true,
                ..activity(ActivityKind::Meeting, Direction::Outbound, on)
            });
        }
        let period = Period::parse("2026-03", NaiveDate::from_ymd_opt(2026, 6, 1).unwrap()).unwrap();
        let metrics = metrics(&activities, period.start, period.end, Some(day("2026-03-31")));
        assert_eq!(
            (metrics.emails_sent, metrics.meetings_held, metrics.meeting_minutes),
            (10, 3, 180)
        );
        assert_eq!(metrics.response_rate, 0.6);
        assert_eq!(metrics.avg_response_time_hours, Some(4.0));
        assert_eq!((metrics.stakeholders_engaged, metrics.executive_touchpoints), (2, 3));
        let components = components(&metrics);
        // 0.15*50 + 0.20*60 + 0.25*60 + 0.15*30 + 0.15*50 + 0.10*100 = 56.5
        assert_eq!(
            (
                components.email,
                components.response,
                components.meeting,
                components.quality,
                components.breadth,
                components.recency
            ),
            (50.0, 60.0, 60.0, 30.0, 50.0, 100.0)
        );
        let score = score(&components, &Weights::default());
        assert_eq!(round1(score), 56.5);
        assert_eq!(Category::of(score), Category::Low);
    }

    #[test]
    fn no_outbound_email_means_no_response_rate_and_no_contact_means_no_recency() {
        let metrics = metrics(
            &[activity(ActivityKind::Note, Direction::Outbound, "2026-03-02")],
            day("2026-03-01"),
            day("2026-03-31"),
            None,
        );
        assert_eq!((metrics.response_rate, metrics.avg_response_time_hours), (0.0, None));
        assert_eq!(components(&metrics).recency, 0.0);
        assert_eq!(score(&components(&metrics), &Weights::default()), 0.0);
    }

    #[test]
    fn categories_and_trends() {
        assert_eq!(Category::of(80.0), Category::High);
        assert_eq!(Category::of(79.9), Category::Healthy);
        assert_eq!(Category::of(40.0), Category::Low);
        assert_eq!(Category::of(39.9), Category::AtRisk);
        assert_eq!(Trend::of(5.0), Trend::Improving);
        assert_eq!(Trend::of(-5.0), Trend::Declining);
        assert_eq!(Trend::of(4.9), Trend::Stable);
    }

    #[test]
    fn pearson_against_a_hand_computed_r() {
        // x = 1,2,3,4 (mean 2.5), y = 2,4,5,4 (mean 3.75): sum of products of deviations 3.5,
        // sums of squared deviations 5 and 4.75, so r = 3.5 / sqrt(23.75) = 0.718185...
        let r = pearson(&[(1.0, 2.0), (2.0, 4.0), (3.0, 5.0), (4.0, 4.0)]).unwrap();
        assert!((r - 0.718_185).abs() < 1e-6, "{r}");
        assert_eq!(pearson(&[(1.0, 2.0), (2.0, 2.0), (3.0, 2.0)]), None);
        assert_eq!(pearson(&[(1.0, 2.0), (2.0, 3.0)]), None);
        let (mean, deviation) = mean_and_deviation(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!((mean, deviation), (5.0, 2.0));
    }
}
