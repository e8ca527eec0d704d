//! One customer's chronological feed, newest first, with keyset (Relay) pagination: the cursor
//! is the position of the last entry seen, so pages stay stable while new events arrive.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::SimpleObject;
use base64::Engine;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct TimelineEntry {
    pub event_id: Uuid,
    pub sequence: i64,
    /// activity, note, health, task, partner_report, milestone, issue, escalation, adoption,
    /// use_case, nps, renewal, churn, csm, profile.
    pub kind: String,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub actor_id: String,
    pub summary: String,
    /// The event's body.
    pub detail: serde_json::Value,
}

/// Cursor: the entry's (occurred_at, sequence), opaque to clients.
pub fn encode_cursor(occurred_at: DateTime<Utc>, sequence: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{sequence}", occurred_at.timestamp_micros()))
}

pub fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, i64)> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (micros, sequence) = text.split_once('|')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        sequence.parse().ok()?,
    ))
}

pub const MAX_PAGE: usize = 200;

#[allow(clippy::too_many_arguments)]
pub async fn page(
    pool: &PgPool,
    customer_id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    kinds: Option<Vec<String>>,
    first: usize,
    after: Option<(DateTime<Utc>, i64)>,
) -> Result<Connection<String, TimelineEntry, EmptyFields, EmptyFields>, sqlx::Error> {
    let first = first.clamp(1, MAX_PAGE);
    let rows: Vec<TimelineEntry> = sqlx::query_as(
        "SELECT event_id, sequence, kind, event_type, occurred_at, recorded_at, actor_id, summary, detail
           FROM timeline_entries
          WHERE customer_id = $1
            AND ($2::timestamptz IS NULL OR occurred_at >= $2)
            AND ($3::timestamptz IS NULL OR occurred_at <= $3)
            AND ($4::text[] IS NULL OR kind = ANY ($4))
            AND ($5::timestamptz IS NULL OR (occurred_at, sequence) < ($5, $6))
          ORDER BY occurred_at DESC, sequence DESC
          LIMIT $7",
    )
    .bind(customer_id)
    .bind(from)
    .bind(to)
    .bind(kinds)
    .bind(after.map(|(at, _)| at))
    .bind(after.map_or(0, |(_, sequence)| sequence))
    .bind(first as i64 + 1)
    .fetch_all(pool)
    .await?;
    let has_next = rows.len() > first;
    let mut connection = Connection::new(after.is_some(), has_next);
    connection.edges.extend(
        rows.into_iter()
            .take(first)
            .map(|entry| Edge::new(encode_cursor(entry.occurred_at, entry.sequence), entry)),
    );
    Ok(connection)
}
