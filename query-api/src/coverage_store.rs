//! Reads the coverage facts of accounts as of one day, in one statement.

use chrono::NaiveDate;
use events::coverage::{window_start, CoverageInputs, MEETING_WINDOW_DAYS, TOUCH_WINDOW_DAYS};
use events::customer::Tier;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

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
