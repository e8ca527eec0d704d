//! Reading the read models' facts that more than one service scores: the coverage facts of
//! accounts and the activities engagement is computed from. The query API reports from them;
//! the projection service's alert checker evaluates the same facts with the same formulas.

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::coverage::{window_start, CoverageInputs, MEETING_WINDOW_DAYS, TOUCH_WINDOW_DAYS};
use crate::customer::{ActivityKind, Direction, Tier};
use crate::engagement::Activity;

/// One account and what the read model knows of it as of a day.
#[derive(Debug, Clone)]
pub struct AccountFacts {
    pub customer_id: Uuid,
    pub name: String,
    pub tier: Tier,
    pub arr: Decimal,
    pub csm_id: Uuid,
    pub csm_name: Option<String>,
    pub inputs: CoverageInputs,
}

#[derive(sqlx::FromRow)]
struct Row {
    customer_id: Uuid,
    name: String,
    tier: String,
    arr: Decimal,
    csm_id: Uuid,
    csm_name: Option<String>,
    onboarded_on: NaiveDate,
    last_contact: Option<NaiveDate>,
    touches: i64,
    meetings: i64,
    stakeholders: i64,
    health: Option<f64>,
}

/// Which accounts to read.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub customer_id: Option<Uuid>,
    pub tier: Option<Tier>,
}

/// Accounts onboarded on or before `as_of`, with their windows ending on `as_of`.
pub async fn account_facts(pool: &PgPool, as_of: NaiveDate, scope: &Scope) -> Result<Vec<AccountFacts>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT a.customer_id, a.name, a.tier, a.arr, a.csm_id, c.name AS csm_name, a.onboarded_on,
                last.day AS last_contact,
                COALESCE(w.touches, 0) AS touches, COALESCE(w.meetings, 0) AS meetings,
                COALESCE(s.stakeholders, 0) AS stakeholders, h.score AS health
           FROM coverage_accounts a
           LEFT JOIN coverage_csms c ON c.csm_id = a.csm_id
           LEFT JOIN LATERAL (
                SELECT max(occurred_on) AS day FROM coverage_contacts
                 WHERE customer_id = a.customer_id AND occurred_on <= $1 AND kind <> 'note') last ON true
           LEFT JOIN LATERAL (
                SELECT count(*) FILTER (WHERE occurred_on >= $2) AS touches,
                       count(*) FILTER (WHERE kind IN ('meeting', 'qbr')) AS meetings
                  FROM coverage_contacts
                 WHERE customer_id = a.customer_id AND occurred_on BETWEEN $3 AND $1 AND kind <> 'note') w ON true
           LEFT JOIN LATERAL (
                SELECT count(DISTINCT participant) AS stakeholders
                  FROM coverage_contacts, unnest(participants) AS participant
                 WHERE customer_id = a.customer_id AND occurred_on BETWEEN $3 AND $1 AND kind <> 'note') s ON true
           LEFT JOIN LATERAL (
                SELECT score FROM coverage_health_points
                 WHERE customer_id = a.customer_id AND measured_on <= $1
                 ORDER BY measured_at DESC, sequence DESC LIMIT 1) h ON true
          WHERE a.onboarded_on <= $1
            AND ($4::uuid IS NULL OR a.customer_id = $4)
            AND ($5::text IS NULL OR a.tier = $5)
          ORDER BY a.name, a.customer_id",
    )
    .bind(as_of)
    .bind(window_start(as_of, TOUCH_WINDOW_DAYS))
    .bind(window_start(as_of, MEETING_WINDOW_DAYS))
    .bind(scope.customer_id)
    .bind(scope.tier.map(Tier::as_str))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let tier = Tier::parse(&row.tier)?;
            Some(AccountFacts {
                customer_id: row.customer_id,
                name: row.name,
                tier,
                arr: row.arr,
                csm_id: row.csm_id,
                csm_name: row.csm_name,
                inputs: CoverageInputs {
                    as_of,
                    onboarded_on: row.onboarded_on,
                    last_contact_date: row.last_contact,
                    touches_30d: row.touches as u32,
                    meetings_90d: row.meetings as u32,
                    stakeholders_engaged: row.stakeholders as u32,
                    health_score: row.health,
                },
            })
        })
        .collect())
}

/// Every registered CSM: (id, name).
pub async fn csms(pool: &PgPool) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as("SELECT csm_id, name FROM coverage_csms ORDER BY name, csm_id")
        .fetch_all(pool)
        .await
}

/// One customer's facts for scoring engagement.
#[derive(Debug, Clone)]
pub struct EngagementFacts {
    pub customer_id: Uuid,
    pub name: String,
    pub tier: Tier,
    pub csm_id: Uuid,
    pub arr: Decimal,
    pub activities: Vec<Activity>,
}

#[derive(sqlx::FromRow)]
struct ActivityRow {
    customer_id: Uuid,
    kind: String,
    direction: String,
    occurred_on: NaiveDate,
    duration_minutes: Option<i32>,
    participants: Vec<Uuid>,
    response_received: Option<bool>,
    response_time_hours: Option<f64>,
    executive_present: bool,
}

#[derive(sqlx::FromRow)]
struct ProfileRow {
    customer_id: Uuid,
    name: String,
    tier: String,
    csm_id: Uuid,
    arr: Decimal,
}

fn parse_kind(kind: &str) -> Option<ActivityKind> {
    serde_json::from_value(serde_json::Value::String(kind.to_owned())).ok()
}

/// Facts of the customers in scope, with their activities from `from` to `to`, both included.
pub async fn engagement_facts(
    pool: &PgPool,
    customer: Option<Uuid>,
    csm: Option<Uuid>,
    tier: Option<Tier>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<EngagementFacts>, sqlx::Error> {
    let profiles: Vec<ProfileRow> = sqlx::query_as(
        "SELECT customer_id, name, tier, csm_id, arr FROM customer_profiles
          WHERE ($1::uuid IS NULL OR customer_id = $1) AND ($2::uuid IS NULL OR csm_id = $2)
            AND ($3::text IS NULL OR tier = $3) AND onboarded_at::date <= $4
          ORDER BY name, customer_id",
    )
    .bind(customer)
    .bind(csm)
    .bind(tier.map(Tier::as_str))
    .bind(to)
    .fetch_all(pool)
    .await?;
    let rows: Vec<ActivityRow> = sqlx::query_as(
        "SELECT a.customer_id, a.kind, a.direction, a.occurred_on, a.duration_minutes, a.participants,
                a.response_received, a.response_time_hours,
                EXISTS (SELECT 1 FROM customer_stakeholders s
                         WHERE s.customer_id = a.customer_id AND s.level = 'executive'
                           AND s.stakeholder_id = ANY (a.participants)) AS executive_present
           FROM customer_activities a
          WHERE NOT a.retracted AND a.occurred_on BETWEEN $2 AND $3 AND ($1::uuid IS NULL OR a.customer_id = $1)",
    )
    .bind(customer)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let mut by_customer: HashMap<Uuid, Vec<Activity>> = HashMap::new();
    for row in rows {
        let Some(kind) = parse_kind(&row.kind) else { continue };
        by_customer.entry(row.customer_id).or_default().push(Activity {
            kind,
            direction: if row.direction == "inbound" {
                Direction::Inbound
            } else {
                Direction::Outbound
            },
            day: row.occurred_on,
            duration_minutes: row.duration_minutes.map(|minutes| minutes.max(0) as u32),
            participants: row.participants,
            response_received: row.response_received,
            response_time_hours: row.response_time_hours,
            executive_present: row.executive_present,
        });
    }
    Ok(profiles
        .into_iter()
        .filter_map(|profile| {
            Some(EngagementFacts {
                customer_id: profile.customer_id,
                name: profile.name,
                tier: Tier::parse(&profile.tier)?,
                csm_id: profile.csm_id,
                arr: profile.arr,
                activities: by_customer.remove(&profile.customer_id).unwrap_or_default(),
            })
        })
        .collect())
}

/// The latest contact on or before `cut` of each customer (contacts before the loaded window too).
pub async fn last_contacts(
    pool: &PgPool,
    customer: Option<Uuid>,
    cut: NaiveDate,
) -> Result<HashMap<Uuid, NaiveDate>, sqlx::Error> {
    let rows: Vec<(Uuid, NaiveDate)> = sqlx::query_as(
        "SELECT customer_id, max(occurred_on) FROM customer_activities
          WHERE NOT retracted AND kind <> 'note' AND occurred_on <= $2 AND ($1::uuid IS NULL OR customer_id = $1)
          GROUP BY customer_id",
    )
    .bind(customer)
    .bind(cut)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}
