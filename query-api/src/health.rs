//! Health trend (docs/DOMAIN.md section 6): the last score of each day carried forward, bucketed by
//! day, ISO week or month, every point with its lineage, and the trend over 30/60/90 days.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use events::coverage::{round1, HealthColour as Colour};
use sqlx::PgPool;
use uuid::Uuid;

use crate::engagement::TrendDirection;
use crate::scalars::{Date, HealthColour};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Day,
    Week,
    Month,
}

/// Where a score came from.
#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct Lineage {
    pub event_id: Uuid,
    pub source: String,
    pub actor_id: String,
    pub actor_role: String,
    pub reason: Option<String>,
    pub risk_factors: serde_json::Value,
    pub measured_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Point {
    pub measured_on: NaiveDate,
    pub score: f64,
    #[sqlx(flatten)]
    pub lineage: Lineage,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct HealthPoint {
    /// The bucket's first day (the day, the ISO week's Monday, the month's first).
    pub bucket: Date,
    pub score: f64,
    pub colour: HealthColour,
    /// False when the score is carried forward from an earlier bucket.
    pub measured_in_bucket: bool,
    pub lineage: Lineage,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct WindowTrend {
    pub days: u32,
    pub delta: Option<f64>,
    pub trend: Option<TrendDirection>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct HealthTrend {
    pub customer_id: Uuid,
    pub points: Vec<HealthPoint>,
    /// Trends over 30, 60 and 90 days ending on `to`.
    pub windows: Vec<WindowTrend>,
}

/// All points of a customer, oldest first (the last of a day wins within it).
pub async fn points(pool: &PgPool, customer_id: Uuid) -> Result<Vec<Point>, sqlx::Error> {
    sqlx::query_as(
        "SELECT measured_on, score, event_id, source, actor_id, actor_role, reason, risk_factors, measured_at, recorded_at
           FROM health_points WHERE customer_id = $1 ORDER BY measured_at, sequence",
    )
    .bind(customer_id)
    .fetch_all(pool)
    .await
}

pub fn bucket_of(day: NaiveDate, granularity: Granularity) -> NaiveDate {
    match granularity {
        Granularity::Day => day,
        Granularity::Week => day - Days::new(u64::from(day.weekday().num_days_from_monday())),
        Granularity::Month => day.with_day(1).expect("the first exists"),
    }
}

pub fn next_bucket(bucket: NaiveDate, granularity: Granularity) -> NaiveDate {
    match granularity {
        Granularity::Day => bucket + Days::new(1),
        Granularity::Week => bucket + Days::new(7),
        Granularity::Month => bucket.checked_add_months(chrono::Months::new(1)).expect("in range"),
    }
}

/// The latest point on or before `day`.
pub fn as_of(points: &[Point], day: NaiveDate) -> Option<&Point> {
    points.iter().rev().find(|point| point.measured_on <= day)
}

/// Trend over `days` ending on `to`: the score at `to` minus the score at `to - days` (carried
/// forward; the first score inside the window when there is none yet).
pub fn window(points: &[Point], to: NaiveDate, days: u32) -> WindowTrend {
    let start = to - Days::new(u64::from(days));
    let end = as_of(points, to);
    let begin = as_of(points, start).or_else(|| points.iter().find(|p| p.measured_on > start && p.measured_on <= to));
    let delta = match (begin, end) {
        (Some(begin), Some(end)) => Some(end.score - begin.score),
        _ => None,
    };
    WindowTrend {
        days,
        delta: delta.map(round1),
        trend: delta.map(|delta| events::engagement::Trend::of(delta).into()),
    }
}

pub fn trend(
    customer_id: Uuid,
    points: &[Point],
    from: NaiveDate,
    to: NaiveDate,
    granularity: Granularity,
) -> HealthTrend {
    let mut series = Vec::new();
    let mut bucket = bucket_of(from, granularity);
    while bucket <= to {
        let last_day = (next_bucket(bucket, granularity) - Days::new(1)).min(to);
        if let Some(point) = as_of(points, last_day) {
            series.push(HealthPoint {
                bucket: Date(bucket),
                score: point.score,
                colour: Colour::of(point.score).into(),
                measured_in_bucket: point.measured_on >= bucket,
                lineage: point.lineage.clone(),
            });
        }
        bucket = next_bucket(bucket, granularity);
    }
    HealthTrend {
        customer_id,
        points: series,
        windows: [30, 60, 90].map(|days| window(points, to, days)).to_vec(),
    }
}
