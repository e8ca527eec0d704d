//! One customer's chronological feed, newest first, with keyset (Relay) pagination: the cursor
//! is the position of the last entry seen, so pages stay stable while new events arrive. The
//! feed is the customer's stream itself, read from the store (docs/DOMAIN.md, "Timeline").

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::SimpleObject;
use base64::Engine;
use chrono::{DateTime, Utc};
use events::customer::CustomerEvent;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(SimpleObject, Debug, Clone)]
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

/// A stored event of a customer's stream, as the timeline reads it.
#[derive(sqlx::FromRow)]
struct Stored {
    event_id: Uuid,
    sequence: i64,
    event_type: String,
    event_version: String,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
    actor_id: String,
    payload: serde_json::Value,
}

impl Stored {
    /// The entry, rendered by the rules of `events::timeline`; `None` for an event this version
    /// cannot read (its projector holds the stream before it, so it is never within a page).
    fn entry(self) -> Option<TimelineEntry> {
        let event: CustomerEvent = serde_json::from_value(events::upcast::to_current(
            &self.event_type,
            &self.event_version,
            self.payload,
        ))
        .map_err(|error| tracing::warn!(%error, event_id = %self.event_id, "a timeline event could not be read"))
        .ok()?;
        let entry = events::timeline::entry(&event)?;
        Some(TimelineEntry {
            event_id: self.event_id,
            sequence: self.sequence,
            kind: entry.kind.to_owned(),
            event_type: self.event_type,
            occurred_at: self.occurred_at,
            recorded_at: self.recorded_at,
            actor_id: self.actor_id,
            summary: entry.summary,
            detail: entry.detail,
        })
    }
}

/// The statement of a page: `$1` the customer, `$2` the event types, `$3`/`$4` whether notes and
/// other activities are included, `$5`/`$6` the period, `$7`/`$8` the cursor, `$9` the rows,
/// `$10`/`$11` whose partner-report drafts the reader may see (`$10` false: everyone's; else only
/// partner `$11`'s, none when it is null), the rule of [`crate::access::Access::drafts`].
///
/// Every bound is a range on `events_customer_chronology` whatever the parameters are: an absent
/// bound is the infinite one rather than `$n IS NULL OR ...`. PostgreSQL plans a prepared
/// statement once for any parameters after a few runs, and that generic plan cannot use a bound
/// that may be absent to start or end the index scan: a page of the last hour would read the
/// customer's whole stream from the newest event down, to find that nothing older matches.
pub const PAGE: &str = "SELECT e.event_id, e.sequence, e.event_type, e.event_version, e.occurred_at, e.recorded_at,
        COALESCE(e.metadata ->> 'actor_id', 'unknown') AS actor_id, e.payload
   FROM events e
  WHERE e.aggregate_type = 'Customer' AND e.aggregate_id = $1
    AND e.sequence <= (SELECT c.last_sequence FROM projector_checkpoints c
                        WHERE c.projector = 'customers' AND c.stream_type = 'Customer' AND c.stream_id = $1)
    AND e.event_type = ANY ($2)
    AND (e.event_type <> 'ActivityLogged'
         OR CASE WHEN e.payload -> 'ActivityLogged' ->> 'kind' = 'note' THEN $3 ELSE $4 END)
    AND e.occurred_at >= COALESCE($5::timestamptz, '-infinity')
    AND e.occurred_at <= COALESCE($6::timestamptz, 'infinity')
    AND (e.occurred_at, e.sequence) < (COALESCE($7::timestamptz, 'infinity'), $8)
    AND (e.event_type <> 'PartnerReportDrafted' OR NOT $10
         OR e.payload -> 'PartnerReportDrafted' ->> 'partner_id' = $11::text)
  ORDER BY e.occurred_at DESC, e.sequence DESC
  LIMIT $9";

/// A page of a customer's timeline: its stream read from the store newest first by when each
/// event happened (`events_customer_chronology`), up to the customers projector's checkpoint of
/// the stream, so the timeline shows exactly the events the rest of the customer's read models
/// reflect (and, read through a snapshot's schema, those the snapshot had folded). A draft
/// partner report is left out unless `drafts_of` lets the reader see its partner's drafts.
#[allow(clippy::too_many_arguments)]
pub async fn page(
    pool: &PgPool,
    customer_id: Uuid,
    drafts_of: Option<Option<Uuid>>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    kinds: Option<Vec<String>>,
    first: usize,
    after: Option<(DateTime<Utc>, i64)>,
) -> Result<Connection<String, TimelineEntry, EmptyFields, EmptyFields>, sqlx::Error> {
    let first = first.clamp(1, MAX_PAGE);
    let selection = events::timeline::Selection::of(kinds.as_deref());
    let rows: Vec<Stored> = sqlx::query_as(PAGE)
        .bind(customer_id.to_string())
        .bind(&selection.event_types)
        .bind(selection.notes)
        .bind(selection.other_activities)
        .bind(from)
        .bind(to)
        .bind(after.map(|(at, _)| at))
        .bind(after.map_or(0, |(_, sequence)| sequence))
        .bind(first as i64 + 1)
        .bind(drafts_of.is_some())
        .bind(drafts_of.flatten().map(|partner| partner.to_string()))
        .fetch_all(pool)
        .await?;
    let has_next = rows.len() > first;
    let mut connection = Connection::new(after.is_some(), has_next);
    connection.edges.extend(
        rows.into_iter()
            .take(first)
            .filter_map(Stored::entry)
            .map(|entry| Edge::new(encode_cursor(entry.occurred_at, entry.sequence), entry)),
    );
    Ok(connection)
}
