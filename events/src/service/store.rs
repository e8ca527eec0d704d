//! Reading stored events as envelopes, for every reader that goes to the store directly: the
//! relay, a projector filling a gap, and the auditors' history.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::envelope::EventEnvelope;
use crate::metadata::{CommandMetadata, EventMetadata};

/// The columns [`StoredEvent`] reads, for `SELECT {COLUMNS} FROM events ...`.
pub const COLUMNS: &str = "global_position, tx_id::text AS tx_id, event_id, aggregate_type, aggregate_id, sequence, \
     event_type, event_version, payload, metadata, recorded_at";

/// One row of the events table.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub global_position: i64,
    /// The appending transaction (`xid8`, as text).
    pub tx_id: String,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    pub fn into_envelope(self) -> EventEnvelope {
        let map: HashMap<String, String> = serde_json::from_value(self.metadata).unwrap_or_default();
        let command = CommandMetadata::from_map(&map);
        let metadata = EventMetadata::stored(self.event_id, self.recorded_at, command);
        EventEnvelope {
            stream_type: self.aggregate_type,
            stream_id: self.aggregate_id,
            sequence: self.sequence,
            global_position: self.global_position,
            event_type: self.event_type,
            event_version: self.event_version,
            metadata,
            payload: self.payload,
        }
    }
}

/// Events of one stream with `after < sequence <= up_to`, in order.
pub async fn stream_range(
    executor: impl sqlx::PgExecutor<'_>,
    stream_type: &str,
    stream_id: &str,
    after: i64,
    up_to: i64,
) -> Result<Vec<EventEnvelope>, sqlx::Error> {
    let rows: Vec<StoredEvent> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 AND sequence <= $4
          ORDER BY sequence"
    ))
    .bind(stream_type)
    .bind(stream_id)
    .bind(after)
    .bind(up_to)
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(StoredEvent::into_envelope).collect())
}

/// A failure of the database itself rather than of the statement: the connection was lost or
/// refused, the session was terminated, the server is shutting down or starting, out of
/// connections, or the transaction lost a serialization race. Waiting and retrying can succeed;
/// callers answer 503 or retry, never 500.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            // 08: connection exception; 53: insufficient resources; 57P0x: admin or crash
            // shutdown, cannot connect now; 40001/40P01: serialization failure, deadlock.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P0")
                || code == "40001"
                || code == "40P01"
        }),
        _ => false,
    }
}
