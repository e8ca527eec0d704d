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
use crate::engagement::{self, Activity, EngagementMetrics};
use sqlx::types::Json;

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

impl crate::service::report_cache::PortfolioRow for AccountFacts {
    fn customer_id(&self) -> Uuid {
        self.customer_id
    }
    fn order_key(&self) -> &str {
        &self.name
    }
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
    /// The version of the customer's coverage facts (`COVERAGE_VERSION`).
    version: i64,
}

/// The window facts of one account as of a day, as the memo holds them.
#[derive(sqlx::FromRow, Default)]
struct WindowRow {
    last_contact: Option<NaiveDate>,
    touches: Option<i32>,
    meetings: Option<i32>,
    stakeholders: Option<i32>,
    health: Option<f64>,
}

/// A coverage memo row: customer, version, last contact, touches, meetings, stakeholders, health.
type CoverageMemo = (Uuid, i64, Option<NaiveDate>, i32, i32, i32, Option<f64>);
/// A freshly computed coverage memo row, without its version.
type CoverageFilled = (Uuid, Option<NaiveDate>, i32, i32, i32, Option<f64>);
/// A profile as engagement reads it: customer, name, tier, CSM, ARR, version.
type EngagementProfile = (Uuid, String, String, Uuid, Decimal, i64);

/// The version a memo row is valid for: the projector's checkpoint of the customer's stream
/// (as `cp.last_sequence`).
fn checkpoint_join(projector: &str, customer: &str) -> String {
    format!(
        "LEFT JOIN projector_checkpoints cp ON cp.projector = '{projector}' AND cp.stream_type = 'Customer'
                                            AND cp.stream_id = {customer}::text"
    )
}

/// The version of a customer's coverage facts ([`COVERAGE_VERSION`] over these joins): they
/// read the rows of two projectors (contact is the customers projector's activities, through the
/// view `coverage_contacts`), so the version is the sum of both checkpoints of the stream. Each
/// only grows, so the sum moves whenever either does.
fn coverage_checkpoints_join(customer: &str) -> String {
    format!(
        "{}
         LEFT JOIN projector_checkpoints ca ON ca.projector = 'customers' AND ca.stream_type = 'Customer'
                                            AND ca.stream_id = {customer}::text",
        checkpoint_join("coverage", customer)
    )
}

const COVERAGE_VERSION: &str = "COALESCE(cp.last_sequence, 0) + COALESCE(ca.last_sequence, 0)";

/// The projectors whose rows the coverage facts read: a cache of them watches both.
pub const COVERAGE_PROJECTORS: &[&str] = &["coverage", "customers"];

/// PostgreSQL's codes for a deadlock and a serialization failure: two reports filling the same
/// memo rows at once. Retried.
fn is_contention(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")))
}

/// Accounts onboarded on or before `as_of`, with their windows ending on `as_of`.
///
/// The windows come from `coverage_facts_memo`; the accounts whose memo row is missing or of
/// another version than their facts now (`COVERAGE_VERSION`) are computed from the contacts and
/// health points first (in one statement, so the version stored is the one the facts were read
/// at) and stored for the next report.
///
/// `customers`: these customers only (all when `None`).
/// What an account was on a past day where it has changed since: the CSM it had (and the CSM's
/// name), its tier, ARR and renewal date (docs/DOMAIN.md section 1: a report about a day uses
/// that day's facts). Only accounts changed after the day have an entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Then {
    pub csm: Option<(Uuid, Option<String>)>,
    pub tier: Option<Tier>,
    pub arr: Option<Decimal>,
    pub renewal_date: Option<NaiveDate>,
}

/// The facts of `as_of` of the accounts (all, or `customers`) changed after it, from the
/// coverage read model's handoffs and profile changes.
pub async fn changed_since(
    pool: &PgPool,
    as_of: NaiveDate,
    customers: Option<&[Uuid]>,
) -> Result<HashMap<Uuid, Then>, sqlx::Error> {
    // The first instant after the day (UTC).
    let Some(next) = as_of.checked_add_days(chrono::Days::new(1)) else {
        return Ok(HashMap::new());
    };
    let after = next.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let handed: Vec<(Uuid, Uuid, Option<String>)> = sqlx::query_as(
        "SELECT DISTINCT ON (h.customer_id) h.customer_id, h.previous_csm_id, c.name
           FROM coverage_handoffs h LEFT JOIN coverage_csms c ON c.csm_id = h.previous_csm_id
          WHERE h.occurred_at >= $1 AND h.previous_csm_id IS NOT NULL
            AND ($2::uuid[] IS NULL OR h.customer_id = ANY ($2))
          ORDER BY h.customer_id, h.occurred_at, h.sequence",
    )
    .bind(after)
    .bind(customers)
    .fetch_all(pool)
    .await?;
    let changed: Vec<(Uuid, Option<String>, Option<Decimal>, Option<NaiveDate>)> = sqlx::query_as(
        "SELECT c.customer_id,
                (array_agg(c.tier ORDER BY c.occurred_at DESC, c.sequence DESC) FILTER (WHERE c.tier IS NOT NULL))[1],
                (array_agg(c.arr ORDER BY c.occurred_at DESC, c.sequence DESC) FILTER (WHERE c.arr IS NOT NULL))[1],
                (array_agg(c.renewal_date ORDER BY c.occurred_at DESC, c.sequence DESC)
                    FILTER (WHERE c.renewal_date IS NOT NULL))[1]
           FROM coverage_profile_changes c
          WHERE c.occurred_at < $1
            AND c.customer_id IN (SELECT customer_id FROM coverage_profile_changes WHERE occurred_at >= $1)
            AND ($2::uuid[] IS NULL OR c.customer_id = ANY ($2))
          GROUP BY c.customer_id",
    )
    .bind(after)
    .bind(customers)
    .fetch_all(pool)
    .await?;
    let mut then: HashMap<Uuid, Then> = HashMap::new();
    for (customer_id, csm_id, name) in handed {
        then.entry(customer_id).or_default().csm = Some((csm_id, name));
    }
    for (customer_id, tier, arr, renewal_date) in changed {
        let entry = then.entry(customer_id).or_default();
        entry.tier = tier.as_deref().and_then(Tier::parse);
        entry.arr = arr;
        entry.renewal_date = renewal_date;
    }
    Ok(then)
}

/// The customers churned on or before `as_of`. No portfolio report, export or deck counts them
/// for that day (docs/DOMAIN.md section 1); their history and outcomes stay.
pub async fn churned_by(pool: &PgPool, as_of: NaiveDate) -> Result<std::collections::HashSet<Uuid>, sqlx::Error> {
    let churned: Vec<Uuid> = sqlx::query_scalar("SELECT customer_id FROM customer_profiles WHERE churned_on <= $1")
        .bind(as_of)
        .fetch_all(pool)
        .await?;
    Ok(churned.into_iter().collect())
}

pub async fn account_facts(
    pool: &PgPool,
    as_of: NaiveDate,
    customers: Option<&[Uuid]>,
) -> Result<Vec<AccountFacts>, sqlx::Error> {
    // The accounts and the memo are read apart and matched here: a join would be planned on the
    // memo's statistics, which lag behind a table that fills in bursts. A few customers and all of
    // them are two statements: the generic plan of `$2 IS NULL OR ...` cannot use the index.
    let (account_scope, memo_scope) = if customers.is_some() {
        ("a.customer_id = ANY ($2)", "customer_id = ANY ($2)")
    } else {
        ("$2::uuid[] IS NULL", "$2::uuid[] IS NULL")
    };
    let accounts = format!(
        "SELECT a.customer_id, a.name, a.tier, a.arr, a.csm_id, c.name AS csm_name, a.onboarded_on,
                {COVERAGE_VERSION} AS version
           FROM coverage_accounts a
           LEFT JOIN coverage_csms c ON c.csm_id = a.csm_id
           {}
          WHERE a.onboarded_on <= $1 AND {account_scope}
          ORDER BY a.name, a.customer_id",
        coverage_checkpoints_join("a.customer_id")
    );
    let memo = format!(
        "SELECT customer_id, version, last_contact, touches, meetings, stakeholders, health
           FROM coverage_facts_memo WHERE as_of = $1 AND {memo_scope}"
    );
    // Both on their own connections at once.
    let (rows, memo): (Vec<Row>, Vec<CoverageMemo>) = tokio::try_join!(
        sqlx::query_as(&accounts).bind(as_of).bind(customers).fetch_all(pool),
        sqlx::query_as(&memo).bind(as_of).bind(customers).fetch_all(pool),
    )?;
    let mut windows: HashMap<Uuid, WindowRow> = HashMap::with_capacity(memo.len());
    let versions: HashMap<Uuid, i64> = rows.iter().map(|row| (row.customer_id, row.version)).collect();
    for (customer_id, version, last_contact, touches, meetings, stakeholders, health) in memo {
        if versions.get(&customer_id) == Some(&version) {
            let window = WindowRow {
                last_contact,
                touches: Some(touches),
                meetings: Some(meetings),
                stakeholders: Some(stakeholders),
                health,
            };
            windows.insert(customer_id, window);
        }
    }
    let mut stale: Vec<Uuid> = rows
        .iter()
        .map(|row| row.customer_id)
        .filter(|id| !windows.contains_key(id))
        .collect();
    if !stale.is_empty() {
        stale.sort_unstable();
        windows.extend(fill_coverage_memo(pool, as_of, &stale).await?);
    }
    let mut then = changed_since(pool, as_of, customers).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let then = then.remove(&row.customer_id).unwrap_or_default();
            let tier = then.tier.or_else(|| Tier::parse(&row.tier))?;
            let count = |value: Option<i32>| value.unwrap_or(0).max(0) as u32;
            let window = windows.remove(&row.customer_id).unwrap_or_default();
            let (csm_id, csm_name) = then.csm.unwrap_or((row.csm_id, row.csm_name));
            Some(AccountFacts {
                customer_id: row.customer_id,
                name: row.name,
                tier,
                arr: then.arr.unwrap_or(row.arr),
                csm_id,
                csm_name,
                inputs: CoverageInputs {
                    as_of,
                    onboarded_on: row.onboarded_on,
                    last_contact_date: window.last_contact,
                    touches_30d: count(window.touches),
                    meetings_90d: count(window.meetings),
                    stakeholders_engaged: count(window.stakeholders),
                    health_score: window.health,
                },
            })
        })
        .collect())
}

/// Computes and stores the window facts of `customers` (sorted, so that concurrent fills take
/// their row locks in the same order) as of `as_of`.
async fn fill_coverage_memo(
    pool: &PgPool,
    as_of: NaiveDate,
    customers: &[Uuid],
) -> Result<HashMap<Uuid, WindowRow>, sqlx::Error> {
    let statement = format!(
        "INSERT INTO coverage_facts_memo (as_of, customer_id, version, last_contact, touches, meetings, stakeholders, health)
         SELECT $1, a.customer_id, {COVERAGE_VERSION}, last.day,
                COALESCE(w.touches, 0), COALESCE(w.meetings, 0), COALESCE(s.stakeholders, 0), h.score
           FROM unnest($4::uuid[]) AS a(customer_id)
           {}
           LEFT JOIN LATERAL (
                SELECT max(occurred_on) AS day FROM coverage_contacts
                 WHERE customer_id = a.customer_id AND occurred_on <= $1 AND kind <> 'note') last ON true
           LEFT JOIN LATERAL (
                SELECT count(*) FILTER (WHERE occurred_on >= $2)::int AS touches,
                       count(*) FILTER (WHERE kind IN ('meeting', 'qbr'))::int AS meetings
                  FROM coverage_contacts
                 WHERE customer_id = a.customer_id AND occurred_on BETWEEN $3 AND $1 AND kind <> 'note') w ON true
           LEFT JOIN LATERAL (
                SELECT count(DISTINCT participant)::int AS stakeholders
                  FROM coverage_contacts, unnest(participants) AS participant
                 WHERE customer_id = a.customer_id AND occurred_on BETWEEN $3 AND $1 AND kind <> 'note') s ON true
           LEFT JOIN LATERAL (
                SELECT score FROM coverage_health_points
                 WHERE customer_id = a.customer_id AND measured_on <= $1
                 ORDER BY measured_at DESC, sequence DESC LIMIT 1) h ON true
          ORDER BY a.customer_id
         ON CONFLICT (as_of, customer_id) DO UPDATE
            SET version = EXCLUDED.version, last_contact = EXCLUDED.last_contact, touches = EXCLUDED.touches,
                meetings = EXCLUDED.meetings, stakeholders = EXCLUDED.stakeholders, health = EXCLUDED.health,
                computed_at = now()
         RETURNING customer_id, last_contact, touches, meetings, stakeholders, health",
        coverage_checkpoints_join("a.customer_id")
    );
    let mut attempt = 0;
    loop {
        let result: Result<Vec<CoverageFilled>, _> = sqlx::query_as(&statement)
            .bind(as_of)
            .bind(window_start(as_of, TOUCH_WINDOW_DAYS))
            .bind(window_start(as_of, MEETING_WINDOW_DAYS))
            .bind(customers)
            .fetch_all(pool)
            .await;
        match result {
            Ok(rows) => {
                return Ok(rows
                    .into_iter()
                    .map(|(customer_id, last_contact, touches, meetings, stakeholders, health)| {
                        let window = WindowRow {
                            last_contact,
                            touches: Some(touches),
                            meetings: Some(meetings),
                            stakeholders: Some(stakeholders),
                            health,
                        };
                        (customer_id, window)
                    })
                    .collect())
            }
            Err(error) if is_contention(&error) && attempt < 5 => attempt += 1,
            Err(error) => return Err(error),
        }
    }
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
    let customers: Option<Vec<Uuid>> = customer.map(|customer| vec![customer]);
    let mut by_customer = activities_of(pool, customers.as_deref(), from, to).await?;
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

/// The non-retracted activities from `from` to `to` of `customers` (all when `None`), by customer.
async fn activities_of<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    customers: Option<&[Uuid]>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<HashMap<Uuid, Vec<Activity>>, sqlx::Error> {
    // Two statements rather than `$1 IS NULL OR ...`: the generic plan of the latter cannot use
    // the per-customer index, and a few stale customers would scan the whole table.
    let scope = if customers.is_some() {
        "a.customer_id = ANY ($1) AND a.occurred_on BETWEEN $2 AND $3"
    } else {
        "a.occurred_on BETWEEN $2 AND $3 AND $1::uuid[] IS NULL"
    };
    let statement = format!(
        "SELECT a.customer_id, a.kind, a.direction, a.occurred_on, a.duration_minutes, a.participants,
                a.response_received, a.response_time_hours,
                EXISTS (SELECT 1 FROM customer_stakeholders s
                         WHERE s.customer_id = a.customer_id AND s.level = 'executive'
                           AND s.stakeholder_id = ANY (a.participants)) AS executive_present
           FROM customer_activities a
          WHERE NOT a.retracted AND {scope}"
    );
    let rows: Vec<ActivityRow> = sqlx::query_as(&statement)
        .bind(customers)
        .bind(from)
        .bind(to)
        .fetch_all(executor)
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
    Ok(by_customer)
}

/// The latest contact on or before `cut` of each customer (contacts before the loaded window too).
pub async fn last_contacts(
    pool: &PgPool,
    customer: Option<Uuid>,
    cut: NaiveDate,
) -> Result<HashMap<Uuid, NaiveDate>, sqlx::Error> {
    let scope = if customer.is_some() {
        "customer_id = $1"
    } else {
        "$1::uuid IS NULL"
    };
    let rows: Vec<(Uuid, NaiveDate)> = sqlx::query_as(&format!(
        "SELECT customer_id, max(occurred_on) FROM customer_activities
          WHERE NOT retracted AND kind <> 'note' AND occurred_on <= $2 AND {scope}
          GROUP BY customer_id"
    ))
    .bind(customer)
    .bind(cut)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// A span of days engagement is measured over: a period's first day to its cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveDate,
    pub cut: NaiveDate,
}

/// One customer with its engagement metrics for each window asked, in the order asked.
#[derive(Debug, Clone)]
pub struct EngagementSummary {
    pub customer_id: Uuid,
    pub name: String,
    pub tier: Tier,
    pub csm_id: Uuid,
    pub arr: Decimal,
    pub metrics: Vec<EngagementMetrics>,
}

impl crate::service::report_cache::PortfolioRow for EngagementSummary {
    fn customer_id(&self) -> Uuid {
        self.customer_id
    }
    fn order_key(&self) -> &str {
        &self.name
    }
}

/// The engagement metrics of every customer in scope onboarded by the last window's cut, for
/// each window.
///
/// The metrics come from `engagement_metrics_memo`; customers whose row is missing or older than
/// the customers projector's checkpoint of their stream are computed from their activities first,
/// in one repeatable-read transaction (so the version stored is the one the activities were read
/// at), and stored for the next report.
pub async fn engagement_summaries(
    pool: &PgPool,
    customers: Option<&[Uuid]>,
    windows: &[Window],
) -> Result<Vec<EngagementSummary>, sqlx::Error> {
    let onboarded_by = windows.iter().map(|window| window.cut).max().unwrap_or(NaiveDate::MAX);
    // Profiles and memo rows are read apart and matched here (see `account_facts`).
    let (profile_scope, memo_scope) = if customers.is_some() {
        ("p.customer_id = ANY ($2)", "customer_id = ANY ($3)")
    } else {
        ("$2::uuid[] IS NULL", "$3::uuid[] IS NULL")
    };
    let profiles = format!(
        "SELECT p.customer_id, p.name, p.tier, p.csm_id, p.arr, COALESCE(cp.last_sequence, 0)
           FROM customer_profiles p
           {}
          WHERE p.onboarded_at::date <= $1 AND {profile_scope}
          ORDER BY p.name, p.customer_id",
        checkpoint_join("customers", "p.customer_id")
    );
    let memo = format!(
        "SELECT customer_id, version, metrics FROM engagement_metrics_memo
          WHERE period_start = $1 AND cut = $2 AND {memo_scope}"
    );
    let memo_of = |window: Window| {
        let memo = &memo;
        async move {
            sqlx::query_as::<_, (Uuid, i64, Json<EngagementMetrics>)>(memo)
                .bind(window.start)
                .bind(window.cut)
                .bind(customers)
                .fetch_all(pool)
                .await
        }
    };
    // The profiles and each window's memo rows, each on its own connection, at once.
    let (profiles, memos): (Vec<EngagementProfile>, Vec<_>) = tokio::try_join!(
        sqlx::query_as(&profiles)
            .bind(onboarded_by)
            .bind(customers)
            .fetch_all(pool),
        futures_util::future::try_join_all(windows.iter().map(|window| memo_of(*window))),
    )?;
    let mut memo: HashMap<(Uuid, usize), (i64, EngagementMetrics)> = HashMap::with_capacity(profiles.len() * 2);
    for (index, rows) in memos.into_iter().enumerate() {
        for (customer_id, version, Json(metrics)) in rows {
            memo.insert((customer_id, index), (version, metrics));
        }
    }
    let mut summaries = Vec::with_capacity(profiles.len());
    let mut stale = Vec::new();
    // The CSM, tier and ARR of the last window's day.
    let mut then = changed_since(pool, onboarded_by, customers).await?;
    for (customer_id, name, tier, csm_id, arr, version) in profiles {
        let then = then.remove(&customer_id).unwrap_or_default();
        let Some(tier) = then.tier.or_else(|| Tier::parse(&tier)) else {
            continue;
        };
        let (csm_id, arr) = (then.csm.map_or(csm_id, |(csm, _)| csm), then.arr.unwrap_or(arr));
        let mut metrics = Vec::with_capacity(windows.len());
        for index in 0..windows.len() {
            match memo.remove(&(customer_id, index)) {
                Some((stored, found)) if stored == version => metrics.push(found),
                _ => break,
            }
        }
        if metrics.len() < windows.len() {
            stale.push(customer_id);
        }
        summaries.push(EngagementSummary {
            customer_id,
            name,
            tier,
            csm_id,
            arr,
            metrics,
        });
    }
    if !stale.is_empty() {
        stale.sort_unstable();
        let mut fresh = fill_engagement_memo(pool, &stale, windows).await?;
        for summary in summaries
            .iter_mut()
            .filter(|summary| summary.metrics.len() < windows.len())
        {
            summary.metrics = fresh.remove(&summary.customer_id).unwrap_or_default();
        }
    }
    Ok(summaries)
}

/// Computes and stores the metrics of `customers` (sorted) for each window.
async fn fill_engagement_memo(
    pool: &PgPool,
    customers: &[Uuid],
    windows: &[Window],
) -> Result<HashMap<Uuid, Vec<EngagementMetrics>>, sqlx::Error> {
    let mut attempt = 0;
    loop {
        match try_fill_engagement_memo(pool, customers, windows).await {
            Err(error) if is_contention(&error) && attempt < 5 => attempt += 1,
            result => return result,
        }
    }
}

async fn try_fill_engagement_memo(
    pool: &PgPool,
    customers: &[Uuid],
    windows: &[Window],
) -> Result<HashMap<Uuid, Vec<EngagementMetrics>>, sqlx::Error> {
    let (Some(from), Some(to)) = (
        windows.iter().map(|window| window.start).min(),
        windows.iter().map(|window| window.cut).max(),
    ) else {
        return Ok(HashMap::new());
    };
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let versions: Vec<(Uuid, i64)> = sqlx::query_as(&format!(
        "SELECT u.customer_id, COALESCE(cp.last_sequence, 0) FROM unnest($1::uuid[]) AS u(customer_id) {}",
        checkpoint_join("customers", "u.customer_id")
    ))
    .bind(customers)
    .fetch_all(&mut *tx)
    .await?;
    let mut activities = activities_of(&mut *tx, Some(customers), from, to).await?;
    // The last contact by each cut is among the activities loaded unless there is none from
    // `from` to that cut: then it is the last one before `from`, read for those customers only.
    let contact_by = |customer: &Uuid, cut: NaiveDate| {
        activities.get(customer).and_then(|own| {
            own.iter()
                .filter(|activity| activity.kind != ActivityKind::Note && activity.day <= cut)
                .map(|activity| activity.day)
                .max()
        })
    };
    let earliest_cut = windows.iter().map(|window| window.cut).min().unwrap_or(to);
    let without: Vec<Uuid> = customers
        .iter()
        .filter(|customer| contact_by(customer, earliest_cut).is_none())
        .copied()
        .collect();
    let before: HashMap<Uuid, NaiveDate> = if without.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (Uuid, NaiveDate)>(
            "SELECT customer_id, max(occurred_on) FROM customer_activities
              WHERE customer_id = ANY ($1) AND NOT retracted AND kind <> 'note' AND occurred_on < $2
              GROUP BY customer_id",
        )
        .bind(&without)
        .bind(from)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect()
    };
    let last_contact: Vec<HashMap<Uuid, NaiveDate>> = windows
        .iter()
        .map(|window| {
            customers
                .iter()
                .filter_map(|customer| {
                    let last = contact_by(customer, window.cut).or_else(|| before.get(customer).copied());
                    last.map(|day| (*customer, day))
                })
                .collect()
        })
        .collect();
    let mut fresh = HashMap::with_capacity(versions.len());
    let (mut starts, mut cuts, mut ids, mut stored_versions, mut memos) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (customer_id, version) in versions {
        let own = activities.remove(&customer_id).unwrap_or_default();
        let metrics: Vec<EngagementMetrics> = windows
            .iter()
            .zip(&last_contact)
            .map(|(window, last)| engagement::metrics(&own, window.start, window.cut, last.get(&customer_id).copied()))
            .collect();
        for (window, metrics) in windows.iter().zip(&metrics) {
            starts.push(window.start);
            cuts.push(window.cut);
            ids.push(customer_id);
            stored_versions.push(version);
            memos.push(serde_json::to_value(metrics).map_err(|error| sqlx::Error::Encode(Box::new(error)))?);
        }
        fresh.insert(customer_id, metrics);
    }
    sqlx::query(
        "INSERT INTO engagement_metrics_memo (period_start, cut, customer_id, version, metrics)
         SELECT * FROM unnest($1::date[], $2::date[], $3::uuid[], $4::int8[], $5::jsonb[])
         ON CONFLICT (period_start, cut, customer_id) DO UPDATE
            SET version = EXCLUDED.version, metrics = EXCLUDED.metrics, computed_at = now()",
    )
    .bind(&starts)
    .bind(&cuts)
    .bind(&ids)
    .bind(&stored_versions)
    .bind(&memos)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(fresh)
}

/// Forgets memo rows computed more than a day ago: past days' reports are recomputed when asked
/// again, and the memo stays about one day of the portfolio in size.
pub async fn prune_memos(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut pruned = 0;
    for table in ["coverage_facts_memo", "engagement_metrics_memo"] {
        pruned += sqlx::query(&format!(
            "DELETE FROM {table} WHERE computed_at < now() - interval '1 day'"
        ))
        .execute(pool)
        .await?
        .rows_affected();
    }
    Ok(pruned)
}

/// The rules in force: the Rules stream folded from the store (docs/DOMAIN.md's defaults, version
/// `0`, before its first change).
pub async fn current_rules(pool: &PgPool) -> Result<crate::rules::Rules, sqlx::Error> {
    let rows: Vec<(i64, serde_json::Value)> = sqlx::query_as(
        "SELECT sequence, payload FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
    )
    .bind(crate::rules::RulesEvent::STREAM_TYPE)
    .bind(crate::rules::RULES_STREAM_ID)
    .fetch_all(pool)
    .await?;
    let mut rules = crate::rules::Rules::default();
    for (sequence, payload) in rows {
        match serde_json::from_value::<crate::rules::RulesEvent>(payload) {
            Ok(event) => rules.apply(sequence, &event),
            Err(error) => tracing::warn!(sequence, %error, "a Rules event could not be read"),
        }
    }
    Ok(rules)
}

/// The custom-field definitions in force (docs/DOMAIN.md section 9), folded from the store;
/// with `known_at`, as they stood then.
pub async fn custom_field_definitions(
    pool: &PgPool,
    known_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<crate::fields::Definitions, sqlx::Error> {
    let rows: Vec<(i64, serde_json::Value)> = sqlx::query_as(
        "SELECT sequence, payload FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND ($3::timestamptz IS NULL OR recorded_at <= $3)
          ORDER BY sequence",
    )
    .bind(crate::fields::CustomFieldEvent::STREAM_TYPE)
    .bind(crate::fields::FIELDS_STREAM_ID)
    .bind(known_at)
    .fetch_all(pool)
    .await?;
    let mut definitions = crate::fields::Definitions::default();
    for (sequence, payload) in rows {
        match serde_json::from_value::<crate::fields::CustomFieldEvent>(payload) {
            Ok(event) => definitions.apply(&event),
            Err(error) => tracing::warn!(sequence, %error, "a CustomFields event could not be read"),
        }
    }
    Ok(definitions)
}

/// Where one projector stands against the store.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ProjectorStatus {
    pub projector: String,
    /// The highest global position applied (projectors apply partitions in parallel, so events
    /// below it may still be on their way).
    pub last_global_position: i64,
    pub events_applied: i64,
    /// Events in the store, and the highest global position.
    pub store_events: i64,
    pub store_head_position: i64,
    /// Events in the store not yet applied.
    pub lag_events: i64,
    /// Age in seconds of the oldest stored event not yet applied (0 when caught up).
    pub lag_seconds: f64,
    /// Dead letters not replayed yet.
    pub dead_lettered: i64,
    pub rebuild_state: Option<String>,
    pub rebuild_events_done: Option<i64>,
    pub rebuild_events_total: Option<i64>,
    pub rebuild_started_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A stream a projector stopped at: its next event was dead-lettered and not replayed since.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BlockedStream {
    pub projector: String,
    pub stream_type: String,
    pub stream_id: String,
    /// The sequence the projector waits at (its checkpoint + 1).
    pub sequence: i64,
    pub event_type: String,
    /// When the waiting event was recorded.
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    /// When its first dead letter arrived, and how many there are.
    pub dead_lettered_at: chrono::DateTime<chrono::Utc>,
    pub dead_letters: i64,
}

/// Every stream blocked behind an open dead letter, oldest first.
pub async fn blocked_streams(pool: &PgPool) -> Result<Vec<BlockedStream>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.projector, d.stream_type, d.stream_id, COALESCE(c.last_sequence, 0) + 1 AS sequence,
                e.event_type, e.recorded_at, min(d.recorded_at) AS dead_lettered_at, count(*) AS dead_letters
           FROM dead_letters d
           LEFT JOIN projector_checkpoints c
             ON c.projector = d.projector AND c.stream_type = d.stream_type AND c.stream_id = d.stream_id
           JOIN events e
             ON e.aggregate_type = d.stream_type AND e.aggregate_id = d.stream_id
            AND e.sequence = COALESCE(c.last_sequence, 0) + 1
          WHERE d.stream_id IS NOT NULL AND d.replayed_at IS NULL AND d.sequence > COALESCE(c.last_sequence, 0)
          GROUP BY 1, 2, 3, 4, 5, 6
          ORDER BY e.recorded_at",
    )
    .fetch_all(pool)
    .await
}

/// The status of each named projector.
pub async fn projector_status(pool: &PgPool, projectors: &[&str]) -> Result<Vec<ProjectorStatus>, sqlx::Error> {
    sqlx::query_as(
        "WITH store AS (
              SELECT (SELECT COALESCE(sum(sequence), 0) FROM stream_heads)::bigint AS events,
                     (SELECT COALESCE(max(global_position), 0) FROM events) AS head,
                     (SELECT recorded_at FROM events ORDER BY global_position DESC LIMIT 1) AS head_at)
         SELECT p.name AS projector,
                COALESCE(s.last_global_position, 0) AS last_global_position,
                COALESCE(s.events_applied, 0) AS events_applied,
                store.events AS store_events, store.head AS store_head_position,
                GREATEST(store.events - COALESCE(s.events_applied, 0), 0) AS lag_events,
                COALESCE(GREATEST(EXTRACT(EPOCH FROM now() - (
                    SELECT min(e.recorded_at) FROM stream_heads h
                      LEFT JOIN projector_checkpoints c
                        ON c.projector = p.name AND c.stream_type = h.aggregate_type AND c.stream_id = h.aggregate_id
                      JOIN events e
                        ON e.aggregate_type = h.aggregate_type AND e.aggregate_id = h.aggregate_id
                       AND e.sequence = COALESCE(c.last_sequence, 0) + 1
                     WHERE h.sequence > COALESCE(c.last_sequence, 0))), 0), 0)::float8 AS lag_seconds,
                (SELECT count(*) FROM dead_letters d WHERE d.projector = p.name AND d.replayed_at IS NULL) AS dead_lettered,
                r.state AS rebuild_state, r.events_done AS rebuild_events_done,
                r.events_total AS rebuild_events_total, r.started_at AS rebuild_started_at
           FROM unnest($1::text[]) AS p(name)
           CROSS JOIN store
           LEFT JOIN projector_status s ON s.projector = p.name
           LEFT JOIN LATERAL (
                SELECT state, events_done, events_total, started_at FROM projection_rebuilds
                 WHERE projector = p.name ORDER BY started_at DESC LIMIT 1) r ON true
          ORDER BY p.name",
    )
    .bind(projectors)
    .fetch_all(pool)
    .await
}

/// The schema of a named snapshot of the read models: `snapshot_<name>`. A name is 1 to 40
/// letters, digits, `-` or `_` (a date such as `2026-03-31` is fine).
pub fn snapshot_schema(name: &str) -> Result<String, String> {
    if name.is_empty() || name.len() > 40 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err("a snapshot name is 1 to 40 letters, digits, '-' or '_'".into());
    }
    Ok(format!("snapshot_{}", name.to_ascii_lowercase().replace('-', "_")))
}

/// The named snapshots that exist: (name, known at, events).
pub async fn snapshots(pool: &PgPool) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT ON (target) target, known_at, events_done FROM projection_rebuilds
          WHERE state = 'snapshot' AND EXISTS (
                SELECT 1 FROM pg_namespace WHERE nspname = 'snapshot_' || replace(lower(target), '-', '_'))
          ORDER BY target, started_at DESC",
    )
    .fetch_all(pool)
    .await
}

/// Every playbook, the shipped ones included and retired ones flagged, from the `Playbook`
/// streams (docs/DOMAIN.md section 17).
pub async fn playbooks(pool: &PgPool) -> Result<Vec<crate::playbook::PlaybookState>, sqlx::Error> {
    let rows: Vec<(String, i64, serde_json::Value)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, payload FROM events WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence",
    )
    .bind(crate::playbook::PlaybookEvent::STREAM_TYPE)
    .fetch_all(pool)
    .await?;
    Ok(crate::playbook::fold_playbooks(rows.into_iter().filter_map(
        |(id, sequence, payload)| Some((id.parse().ok()?, sequence, serde_json::from_value(payload).ok()?)),
    )))
}

/// The playbook runs whose first event meets `condition`, SQL in which `s` is that event's row
/// and `x.started` its `PlaybookRunStarted` body, with `$2` bound to `value`; each folded from
/// its stream.
pub async fn playbook_runs(
    pool: &PgPool,
    condition: &str,
    value: &str,
) -> Result<Vec<crate::playbook::RunState>, sqlx::Error> {
    use crate::playbook::{fold_run, PlaybookRunEvent};
    let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(&format!(
        "SELECT e.aggregate_id, e.payload FROM events e
          WHERE e.aggregate_type = $1
            AND e.aggregate_id IN (SELECT s.aggregate_id FROM events s, LATERAL (SELECT s.payload->'PlaybookRunStarted' AS started) x
                                    WHERE s.aggregate_type = $1 AND s.sequence = 1 AND {condition})
          ORDER BY e.aggregate_id, e.sequence"
    ))
    .bind(PlaybookRunEvent::STREAM_TYPE)
    .bind(value)
    .fetch_all(pool)
    .await?;
    let mut streams: Vec<(String, Vec<PlaybookRunEvent>)> = Vec::new();
    for (id, payload) in rows {
        let Ok(event) = serde_json::from_value::<PlaybookRunEvent>(payload) else {
            tracing::warn!(run = id, "an unreadable playbook run event was skipped");
            continue;
        };
        match streams.last_mut() {
            Some((stream, events)) if *stream == id => events.push(event),
            _ => streams.push((id, vec![event])),
        }
    }
    Ok(streams.into_iter().filter_map(|(_, events)| fold_run(events)).collect())
}
