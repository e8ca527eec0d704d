//! Auditors' access to the store itself: one customer's complete event history (upcast to the
//! current versions, the stored original on request, full metadata and the hash chain), streamed
//! exports as JSON Lines, and verification of the chain. Only the auditor role reads history,
//! and every access (refused ones too) is written to `audit_access_log`.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, SimpleObject};
use base64::Engine;
use chrono::{DateTime, Utc};
use events::customer::CustomerEvent;
use events::metadata::{CommandMetadata, Role};
use events::service::auth::Principal;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::schema::coded_error;

/// The stream type of a customer's history.
pub const CUSTOMER_STREAM: &str = "Customer";

/// Records one access to a customer's history. A failure to record refuses the access: history
/// is not served unlogged.
pub async fn log_access(
    pool: &PgPool,
    principal: &Principal,
    operation: &str,
    customer_id: Option<Uuid>,
    arguments: Value,
    allowed: bool,
) -> Result<(), sqlx::Error> {
    tracing::info!(
        target: "audit",
        user = %principal.user_id,
        role = principal.role.as_str(),
        operation,
        customer = ?customer_id,
        allowed,
        "history access"
    );
    sqlx::query(
        "INSERT INTO audit_access_log (user_id, role, operation, customer_id, arguments, allowed)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&principal.user_id)
    .bind(principal.role.as_str())
    .bind(operation)
    .bind(customer_id)
    .bind(arguments)
    .bind(allowed)
    .execute(pool)
    .await?;
    Ok(())
}

/// Lets auditors through and logs the access either way.
pub async fn audited(
    ctx: &Context<'_>,
    operation: &str,
    customer_id: Option<Uuid>,
    arguments: Value,
) -> async_graphql::Result<()> {
    let principal = &crate::access::access(ctx)?.principal;
    let pool = ctx.data::<PgPool>()?;
    let allowed = principal.role == Role::Auditor;
    log_access(pool, principal, operation, customer_id, arguments, allowed)
        .await
        .map_err(|error| {
            tracing::error!(%error, "recording a history access failed");
            coded_error("UNAVAILABLE", "history access cannot be recorded; retry later")
        })?;
    if allowed {
        Ok(())
    } else {
        Err(coded_error("FORBIDDEN", "history is for the auditor role"))
    }
}

/// The metadata of one stored event.
#[derive(SimpleObject, Debug, Clone, Serialize)]
pub struct HistoryMetadata {
    pub actor_id: String,
    pub actor_role: String,
    pub source: String,
    /// The event's business time (when it happened in the world), as the event states it.
    pub occurred_at: Option<DateTime<Utc>>,
    /// When the store appended it.
    pub recorded_at: DateTime<Utc>,
    pub correlation_id: Uuid,
    pub causation_id: Uuid,
    pub idempotency_key: Option<String>,
    /// The stored metadata, as written.
    pub stored: Value,
}

/// One event of a stream.
#[derive(SimpleObject, Debug, Clone, Serialize)]
pub struct HistoryEvent {
    pub sequence: i64,
    pub global_position: i64,
    pub event_id: Uuid,
    pub event_type: String,
    /// The version `payload` is in: the current version of the type.
    pub version: String,
    /// The version the event was stored with.
    pub stored_version: String,
    /// Upcast to the current version.
    pub payload: Value,
    /// The payload as stored (only serialized when asked for).
    pub stored_payload: Value,
    pub metadata: HistoryMetadata,
    /// SHA-256 chaining this event to the previous one of its stream, hex.
    pub hash: String,
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    sequence: i64,
    global_position: i64,
    event_id: Uuid,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
    recorded_at: DateTime<Utc>,
    hash: Vec<u8>,
}

impl From<HistoryRow> for HistoryEvent {
    fn from(row: HistoryRow) -> Self {
        let payload = events::upcast::to_current(&row.event_type, &row.event_version, row.payload.clone());
        let occurred_at = serde_json::from_value::<CustomerEvent>(payload.clone())
            .ok()
            .map(|event| event.occurred_at());
        let map: std::collections::HashMap<String, String> =
            serde_json::from_value(row.metadata.clone()).unwrap_or_default();
        let command = CommandMetadata::from_map(&map);
        HistoryEvent {
            sequence: row.sequence,
            global_position: row.global_position,
            event_id: row.event_id,
            version: events::upcast::current_version(&row.event_type).to_string(),
            event_type: row.event_type,
            stored_version: row.event_version,
            payload,
            stored_payload: row.payload,
            metadata: HistoryMetadata {
                actor_id: command.actor.id,
                actor_role: command.actor.role,
                source: command.source.as_str().to_owned(),
                occurred_at,
                recorded_at: row.recorded_at,
                correlation_id: command.correlation_id,
                causation_id: command.causation_id,
                idempotency_key: command.idempotency_key,
                stored: row.metadata,
            },
            hash: hex::encode(row.hash),
        }
    }
}

/// Leaves out of a `CustomFieldsSet` the values of custom fields the reader's role may not see
/// (docs/DOMAIN.md section 9); the chain is still verified by the service from the stored text.
pub fn redact(event: &mut HistoryEvent, hidden: &std::collections::BTreeSet<String>) {
    if event.event_type != "CustomFieldsSet" || hidden.is_empty() {
        return;
    }
    for payload in [&mut event.payload, &mut event.stored_payload] {
        if let Some(values) = payload
            .pointer_mut("/CustomFieldsSet/values")
            .and_then(Value::as_object_mut)
        {
            values.retain(|key, _| !hidden.contains(key));
        }
    }
}

/// Which events of a customer's stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HistoryFilter {
    /// The first sequence (stream position) included.
    pub from_position: Option<i64>,
    /// Only what the store had recorded by this instant.
    pub to_known_at: Option<DateTime<Utc>>,
    pub event_types: Option<Vec<String>>,
}

const SELECT: &str = "SELECT sequence, global_position, event_id, event_type, event_version, payload, metadata,
            recorded_at, hash
       FROM events
      WHERE aggregate_type = 'Customer' AND aggregate_id = $1
        AND sequence >= COALESCE($2, 1)
        AND ($3::timestamptz IS NULL OR recorded_at <= $3)
        AND ($4::text[] IS NULL OR event_type = ANY ($4))
        AND sequence > $5
      ORDER BY sequence";

pub const MAX_PAGE: usize = 500;

fn encode_cursor(sequence: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("seq:{sequence}"))
}

pub fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()?.strip_prefix("seq:")?.parse().ok()
}

/// One page of a customer's history, oldest first.
pub async fn page(
    pool: &PgPool,
    customer_id: Uuid,
    filter: &HistoryFilter,
    first: usize,
    after: Option<i64>,
    hidden: &std::collections::BTreeSet<String>,
) -> Result<Connection<String, HistoryEvent, EmptyFields, EmptyFields>, sqlx::Error> {
    let first = first.clamp(1, MAX_PAGE);
    let rows: Vec<HistoryRow> = sqlx::query_as(&format!("{SELECT} LIMIT $6"))
        .bind(customer_id.to_string())
        .bind(filter.from_position)
        .bind(filter.to_known_at)
        .bind(&filter.event_types)
        .bind(after.unwrap_or(0))
        .bind(first as i64 + 1)
        .fetch_all(pool)
        .await?;
    let mut connection = Connection::new(after.is_some(), rows.len() > first);
    connection.edges.extend(rows.into_iter().take(first).map(|row| {
        let mut event = HistoryEvent::from(row);
        redact(&mut event, hidden);
        Edge::new(encode_cursor(event.sequence), event)
    }));
    Ok(connection)
}

/// Streams a customer's whole history as JSON Lines, one event per line, oldest first. Rows are
/// read in pages of `BATCH` by sequence, so any length streams in bounded memory; a failure ends
/// the stream with an error line rather than a silently short export.
pub fn export(
    pool: PgPool,
    customer_id: Uuid,
    filter: HistoryFilter,
    original: bool,
    hidden: std::collections::BTreeSet<String>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    const BATCH: i64 = 2_000;
    let (lines, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut after = 0;
        loop {
            let rows: Result<Vec<HistoryRow>, _> = sqlx::query_as(&format!("{SELECT} LIMIT $6"))
                .bind(customer_id.to_string())
                .bind(filter.from_position)
                .bind(filter.to_known_at)
                .bind(&filter.event_types)
                .bind(after)
                .bind(BATCH)
                .fetch_all(&pool)
                .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::error!(%error, %customer_id, "history export failed");
                    let _ = lines.send(Err(std::io::Error::other(error.to_string()))).await;
                    return;
                }
            };
            let last = rows.len() < BATCH as usize;
            let mut chunk = Vec::with_capacity(rows.len() * 512);
            for row in rows {
                after = row.sequence;
                let mut event = HistoryEvent::from(row);
                redact(&mut event, &hidden);
                let mut line = json!({
                    "sequence": event.sequence,
                    "global_position": event.global_position,
                    "event_id": event.event_id,
                    "event_type": event.event_type,
                    "version": event.version,
                    "stored_version": event.stored_version,
                    "payload": event.payload,
                    "metadata": event.metadata,
                    "hash": event.hash,
                });
                if original {
                    line["stored_payload"] = event.stored_payload;
                }
                if serde_json::to_writer(&mut chunk, &line).is_err() {
                    return;
                }
                chunk.push(b'\n');
            }
            if !chunk.is_empty() && lines.send(Ok(chunk)).await.is_err() {
                return; // the client went away
            }
            if last {
                return;
            }
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}
