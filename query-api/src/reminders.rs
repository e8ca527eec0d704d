//! The reminder queue (docs/DOMAIN.md section 13): occurrences that fired, by whose they are,
//! by customer and by state, keyset-paginated with their total; the reminders still to come; and
//! the counts the dashboard shows.
//!
//! Visibility, one rule on every path: reminders are the team's own work, not for partners. A
//! CSM reads their own (made by them, or fired by a rule for an account whose CSM they are);
//! managers and admins anyone's (their team's by default scope); readonly users and auditors
//! read every reminder and act on none.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, Result, SimpleObject};
use base64::Engine;
use chrono::{DateTime, Utc};
use events::metadata::Role;
use sqlx::PgPool;
use uuid::Uuid;

use crate::schema::{coded_error, unavailable};
use crate::timeline::MAX_PAGE;

/// Whose reminders a list holds.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReminderScope {
    /// The caller's own.
    #[default]
    Mine,
    /// The caller's team's (a manager's team; an admin's or a manager without a team: everyone).
    Team,
    /// Everyone's (managers, admins, readonly users and auditors).
    All,
}

/// Which occurrences a list holds.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReminderStatus {
    /// Fired and not yet completed, dismissed or snoozed.
    #[default]
    Open,
    /// Open, and fired (reached the user) more than 24 hours before `at`.
    Overdue,
    Snoozed,
    /// Completed or dismissed.
    Done,
    /// Held back because another occurrence of the same reminder was snoozed.
    Suppressed,
}

impl ReminderStatus {
    fn condition(self) -> &'static str {
        match self {
            ReminderStatus::Open => "o.state = 'open'",
            ReminderStatus::Overdue => "o.state = 'open' AND o.fired_at < $5::timestamptz - interval '24 hours'",
            ReminderStatus::Snoozed => "o.state = 'snoozed'",
            ReminderStatus::Done => "o.state IN ('completed', 'dismissed')",
            ReminderStatus::Suppressed => "o.state = 'suppressed'",
        }
    }
}

/// A fact behind a firing or a wake: an activity, a health score, a task, a date.
#[derive(SimpleObject, Debug, Clone, serde::Deserialize)]
pub struct ReminderFact {
    pub label: String,
    /// activity, health, task, renewal, engagement, customer.
    pub kind: String,
    /// The activity, task, health event or customer id.
    pub id: Option<Uuid>,
    pub stream_id: Option<String>,
    pub sequence: Option<i64>,
    pub at: Option<DateTime<Utc>>,
}

/// One step of an occurrence's life after it fired.
#[derive(SimpleObject, Debug, Clone, serde::Deserialize)]
pub struct ReminderStep {
    /// fired, snoozed, woke, completed, dismissed, suppressed.
    pub what: String,
    pub at: DateTime<Utc>,
    pub by: Option<String>,
    pub reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    reminder_id: Uuid,
    occurrence_key: String,
    state: String,
    owner_id: Option<String>,
    owner_name: Option<String>,
    customer_id: Option<Uuid>,
    customer_name: Option<String>,
    title: String,
    note: Option<String>,
    trigger: String,
    rule_id: Option<String>,
    rules_version: Option<String>,
    due_at: DateTime<Utc>,
    fired_at: DateTime<Utc>,
    why: String,
    facts: serde_json::Value,
    snoozed_until: Option<DateTime<Utc>>,
    snooze_condition: Option<serde_json::Value>,
    snooze_reason: Option<String>,
    history: serde_json::Value,
    closed_at: Option<DateTime<Utc>>,
}

/// One occurrence of a reminder: what it is about, why it fired, and what became of it.
#[derive(SimpleObject, Debug, Clone)]
pub struct ReminderOccurrence {
    pub reminder_id: Uuid,
    pub occurrence_key: String,
    /// open, snoozed, completed, dismissed, suppressed.
    pub state: String,
    pub title: String,
    pub note: Option<String>,
    /// once, recurring, relative, rule.
    pub trigger: String,
    pub rule_id: Option<String>,
    pub rules_version: Option<String>,
    pub owner_id: Option<String>,
    /// The person it is for, by name (a rule's: the customer's CSM).
    pub owner_name: Option<String>,
    pub customer_id: Option<Uuid>,
    pub customer_name: Option<String>,
    pub due_at: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    /// Why it fired, in one sentence.
    pub why: String,
    pub facts: Vec<ReminderFact>,
    pub snoozed_until: Option<DateTime<Utc>>,
    /// What ends the snooze besides its time, in words.
    pub snoozed_until_event: Option<String>,
    pub snooze_reason: Option<String>,
    pub history: Vec<ReminderStep>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// What ends a snooze, in words.
fn condition_text(condition: &serde_json::Value) -> Option<String> {
    Some(match condition["kind"].as_str()? {
        "customer_replies" => "until the customer replies".to_owned(),
        "score_drops" => format!(
            "until the health score drops below {}",
            condition["below"].as_f64().unwrap_or_default()
        ),
        "renewal_within" => format!(
            "until the renewal is {} days away",
            condition["days"].as_u64().unwrap_or_default()
        ),
        other => other.replace('_', " "),
    })
}

impl From<Row> for ReminderOccurrence {
    fn from(row: Row) -> Self {
        ReminderOccurrence {
            reminder_id: row.reminder_id,
            occurrence_key: row.occurrence_key,
            state: row.state,
            title: row.title,
            note: row.note,
            trigger: row.trigger,
            rule_id: row.rule_id,
            rules_version: row.rules_version,
            owner_id: row.owner_id,
            owner_name: row.owner_name,
            customer_id: row.customer_id,
            customer_name: row.customer_name,
            due_at: row.due_at,
            fired_at: row.fired_at,
            why: row.why,
            facts: serde_json::from_value(row.facts).unwrap_or_default(),
            snoozed_until: row.snoozed_until,
            snoozed_until_event: row.snooze_condition.as_ref().and_then(condition_text),
            snooze_reason: row.snooze_reason,
            history: serde_json::from_value(row.history).unwrap_or_default(),
            closed_at: row.closed_at,
        }
    }
}

/// Whose reminders the caller reads under `scope`: `($1 user, $2 their CSM, $3 team or null,
/// $4 everyone)`.
pub struct Whose {
    user_id: String,
    csm_id: Option<Uuid>,
    team: Option<String>,
    everyone: bool,
}

/// The owner condition over occurrences or reminders aliased `o`, with [`Whose`] in $1 to $4.
const WHOSE: &str = "($4::bool
     OR o.owner_id = $1 OR (o.owner_id IS NULL AND o.csm_id = $2)
     OR ($3::text IS NOT NULL AND (o.csm_id IN (SELECT csm_id FROM csm_directory WHERE team = $3)
          OR o.owner_id IN (SELECT np.user_id FROM notification_preferences np
                             JOIN csm_directory d ON d.csm_id = np.csm_id WHERE d.team = $3))))";

/// The caller's reach under `scope`, or FORBIDDEN for partners.
pub async fn whose(ctx: &Context<'_>, scope: ReminderScope) -> Result<Whose> {
    let principal = &crate::access::access(ctx)?.principal;
    if principal.role == Role::Partner {
        return Err(coded_error("FORBIDDEN", "reminders are the team's, not partners'"));
    }
    let pool = ctx.data::<PgPool>()?;
    let (csm_id, team): (Option<Uuid>, Option<String>) =
        sqlx::query_as("SELECT csm_id, team FROM notification_preferences WHERE user_id = $1")
            .bind(&principal.user_id)
            .fetch_optional(pool)
            .await
            .map_err(unavailable)?
            .unwrap_or_default();
    let oversees = matches!(
        principal.role,
        Role::Admin | Role::Manager | Role::Readonly | Role::Auditor
    );
    let (team, everyone) = match (scope, oversees) {
        (ReminderScope::Mine, _) | (_, false) => (None, false),
        (ReminderScope::Team, true) => match (&team, principal.role) {
            (Some(team), Role::Manager) => (Some(team.clone()), false),
            _ => (None, true),
        },
        (ReminderScope::All, true) => (None, true),
    };
    Ok(Whose {
        user_id: principal.user_id.clone(),
        csm_id,
        team,
        everyone,
    })
}

fn encode_cursor(due_at: DateTime<Utc>, reminder_id: Uuid, key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}|{reminder_id}|{key}", due_at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid, String)> {
    let text = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let mut parts = text.splitn(3, '|');
    Some((
        DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?,
        Uuid::parse_str(parts.next()?).ok()?,
        parts.next()?.to_owned(),
    ))
}

/// A page of occurrences, earliest due first, with the total when `counted`.
#[allow(clippy::too_many_arguments)]
pub async fn page(
    pool: &PgPool,
    whose: &Whose,
    status: ReminderStatus,
    customer_id: Option<Uuid>,
    at: DateTime<Utc>,
    first: usize,
    after: Option<String>,
    counted: bool,
) -> Result<Connection<String, ReminderOccurrence, crate::portfolio::PageTotal, EmptyFields>> {
    let after = after
        .map(|cursor| decode_cursor(&cursor).ok_or_else(|| coded_error("BAD_USER_INPUT", "unknown cursor")))
        .transpose()?;
    let first = first.clamp(1, MAX_PAGE);
    let conditions = format!(
        "{WHOSE} AND {} AND ($6::uuid IS NULL OR o.customer_id = $6)",
        status.condition()
    );
    fn bound<'q>(
        sql: &'q str,
        whose: &Whose,
        at: DateTime<Utc>,
        customer_id: Option<Uuid>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(sql)
            .bind(whose.user_id.clone())
            .bind(whose.csm_id)
            .bind(whose.team.clone())
            .bind(whose.everyone)
            .bind(at)
            .bind(customer_id)
    }
    let bind = |sql| bound(sql, whose, at, customer_id);
    let sql = format!(
        "SELECT o.reminder_id, o.occurrence_key, o.state, o.owner_id,
                coalesce({owner}, (SELECT d.name FROM csm_directory d WHERE d.csm_id = o.csm_id), o.owner_id) AS owner_name,
                o.customer_id, p.name AS customer_name, o.title, r.note, o.trigger, o.rule_id, o.rules_version,
                o.due_at, o.fired_at, o.why, o.facts, o.snoozed_until, o.snooze_condition, o.snooze_reason,
                o.history, o.closed_at
           FROM reminder_occurrences o
           LEFT JOIN reminders r ON r.reminder_id = o.reminder_id
           LEFT JOIN customer_profiles p ON p.customer_id = o.customer_id
          WHERE {conditions}
            AND ($7::timestamptz IS NULL OR (o.due_at, o.reminder_id, o.occurrence_key) > ($7, $8, $9))
          ORDER BY o.due_at, o.reminder_id, o.occurrence_key
          LIMIT $10",
        owner = crate::settings::name_of("o.owner_id"),
    );
    let rows: Vec<Row> = {
        use sqlx::FromRow;
        bind(&sql)
            .bind(after.as_ref().map(|(due, _, _)| *due))
            .bind(after.as_ref().map_or(Uuid::nil(), |(_, id, _)| *id))
            .bind(after.as_ref().map_or(String::new(), |(_, _, key)| key.clone()))
            .bind(first as i64 + 1)
            .fetch_all(pool)
            .await
            .map_err(unavailable)?
            .iter()
            .map(Row::from_row)
            .collect::<Result<_, _>>()
            .map_err(unavailable)?
    };
    let total_count = if counted {
        use sqlx::Row as _;
        let count = format!("SELECT count(*) FROM reminder_occurrences o WHERE {conditions}");
        bind(&count)
            .fetch_one(pool)
            .await
            .map_err(unavailable)?
            .get::<i64, _>(0)
    } else {
        0
    };
    let has_next = rows.len() > first;
    let mut connection =
        Connection::with_additional_fields(after.is_some(), has_next, crate::portfolio::PageTotal { total_count });
    connection.edges.extend(rows.into_iter().take(first).map(|row| {
        let cursor = encode_cursor(row.due_at, row.reminder_id, &row.occurrence_key);
        Edge::new(cursor, ReminderOccurrence::from(row))
    }));
    Ok(connection)
}

/// A reminder still to come: its next occurrence and its schedule in words.
#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct UpcomingReminder {
    pub reminder_id: Uuid,
    pub title: String,
    /// once, recurring, relative.
    pub kind: String,
    pub next_due_at: DateTime<Utc>,
    pub time_zone: String,
    /// The schedule as entered: `{"kind": "recurring", "rrule": ..., "starts": ...}`.
    pub schedule: serde_json::Value,
    pub owner_id: Option<String>,
    pub customer_id: Option<Uuid>,
    pub customer_name: Option<String>,
}

/// The SQL of every reminder's next occurrence after $5: the read model's for one-time and
/// recurring reminders, the customer's date plus the offset for relative ones.
const NEXT: &str = "SELECT o.reminder_id, o.title, o.kind, o.time_zone, o.schedule, o.owner_id, o.customer_id,
        p.name AS customer_name,
        CASE WHEN o.kind = 'relative' THEN
             ((CASE o.schedule->'anchor'->>'date' WHEN 'renewal_date' THEN p.renewal_date
                    WHEN 'contract_start' THEN p.contract_start
                    ELSE CASE WHEN p.custom_fields->>(o.schedule->'anchor'->>'key') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
                              THEN (p.custom_fields->>(o.schedule->'anchor'->>'key'))::date END END)
               + (o.schedule->>'offset_days')::int + (o.schedule->>'at')::time) AT TIME ZONE o.time_zone
             ELSE o.next_due_at END AS next_due_at
   FROM reminders o LEFT JOIN customer_profiles p ON p.customer_id = o.customer_id
  WHERE o.status = 'active' AND o.kind <> 'rule'";

/// Reminders whose next occurrence is after `at` (within `days` when given), soonest first.
pub async fn upcoming(
    pool: &PgPool,
    whose: &Whose,
    customer_id: Option<Uuid>,
    at: DateTime<Utc>,
    days: Option<i32>,
    first: usize,
) -> Result<(Vec<UpcomingReminder>, i64)> {
    let sql = format!(
        "WITH next AS ({NEXT} AND {WHOSE} AND ($6::uuid IS NULL OR o.customer_id = $6))
         SELECT *, count(*) OVER () AS total FROM next
          WHERE next_due_at > $5 AND ($7::int IS NULL OR next_due_at <= $5 + make_interval(days => $7))
          ORDER BY next_due_at, reminder_id LIMIT $8"
    );
    let rows: Vec<(UpcomingReminder, i64)> = {
        use sqlx::{FromRow, Row as _};
        sqlx::query(&sql)
            .bind(whose.user_id.clone())
            .bind(whose.csm_id)
            .bind(whose.team.clone())
            .bind(whose.everyone)
            .bind(at)
            .bind(customer_id)
            .bind(days)
            .bind(first.clamp(1, MAX_PAGE) as i64)
            .fetch_all(pool)
            .await
            .map_err(unavailable)?
            .iter()
            .map(|row| Ok((UpcomingReminder::from_row(row)?, row.try_get::<i64, _>("total")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)?
    };
    let total = rows.first().map_or(0, |(_, total)| *total);
    Ok((rows.into_iter().map(|(row, _)| row).collect(), total))
}

/// How many reminders need the caller: open, overdue among them, snoozed, and coming in the
/// next 7 days.
#[derive(SimpleObject, Debug, Clone, Copy, Default)]
pub struct ReminderCounts {
    pub open: i64,
    pub overdue: i64,
    pub snoozed: i64,
    pub next_7_days: i64,
}

pub async fn counts(pool: &PgPool, whose: &Whose, at: DateTime<Utc>) -> Result<ReminderCounts> {
    let (open, overdue, snoozed): (i64, i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*) FILTER (WHERE o.state = 'open'),
                count(*) FILTER (WHERE o.state = 'open' AND o.fired_at < $5::timestamptz - interval '24 hours'),
                count(*) FILTER (WHERE o.state = 'snoozed')
           FROM reminder_occurrences o WHERE {WHOSE}"
    ))
    .bind(whose.user_id.clone())
    .bind(whose.csm_id)
    .bind(whose.team.clone())
    .bind(whose.everyone)
    .bind(at)
    .fetch_one(pool)
    .await
    .map_err(unavailable)?;
    let (_, next_7_days) = upcoming(pool, whose, None, at, Some(7), 1).await?;
    Ok(ReminderCounts {
        open,
        overdue,
        snoozed,
        next_7_days,
    })
}

/// The instant "now" of a query: `at` when the caller pins it.
pub fn at_or_now(at: Option<DateTime<Utc>>) -> DateTime<Utc> {
    at.unwrap_or_else(Utc::now)
}
