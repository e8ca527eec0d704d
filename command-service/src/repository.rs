//! The event repository commands append through: cqrs-es's persistence trait over the tables
//! postgres-es defines, with postgres-es replaying whole streams and the two statements that
//! decide a command's cost written here.
//!
//! - **Appending** is one statement: every event of the command in one `INSERT ... SELECT FROM
//!   UNNEST`, with the snapshot (when the command crosses one) written by a data-modifying `WITH`
//!   in the same statement, so a command's append is one round trip and atomic without a
//!   transaction around it. postgres-es sends `BEGIN`, an `INSERT` per event, the snapshot and
//!   `COMMIT`, and checks its snapshot update only after committing the events.
//! - **The hash chain** is computed by that statement, over the set: the database looks up one
//!   stored hash per stream instead of running a trigger that looks up each event's predecessor.
//! - **Event ids** are made by the command service (UUID v7) and written with the events, so a
//!   command answers with them without reading them back. The caller hands them over under the
//!   metadata key [`EVENT_IDS`], which the repository takes out: it is never stored.
//! - **Loading** a stream is one statement too: its snapshot and the events after it, folded
//!   straight from the payloads' text into the aggregate ([`EventRepository::load`]). cqrs-es
//!   reads the snapshot and then the events in two round trips, decoding each payload into a JSON
//!   tree and its metadata into a map before the aggregate sees it.

use cqrs_es::persist::{
    EventStoreAggregateContext, EventUpcaster, PersistedEventRepository, PersistenceError, ReplayStream,
    SerializedEvent, SerializedSnapshot,
};
use cqrs_es::{Aggregate, AggregateError};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// Metadata key of the ids (comma-separated, one per event in order) a command gives the events
/// it appends. Consumed by [`EventRepository::persist`]; an event without one gets a fresh id.
pub const EVENT_IDS: &str = "cstrack_event_ids";

/// SQLSTATE of a unique violation: another writer appended at one of these sequences first.
const UNIQUE_VIOLATION: &str = "23505";

pub struct EventRepository {
    pool: PgPool,
    replay: PostgresEventRepository,
    upcasters: Vec<Box<dyn EventUpcaster>>,
}

impl EventRepository {
    /// `upcasters` bring events stored at an older version up to the current one as they load.
    pub fn new(pool: PgPool, upcasters: Vec<Box<dyn EventUpcaster>>) -> Self {
        EventRepository {
            replay: PostgresEventRepository::new(pool.clone()),
            pool,
            upcasters,
        }
    }

    /// Stream `aggregate_id` as its last event left it: the snapshot and the events after it,
    /// read in one statement and folded from their text. A snapshot this version cannot read
    /// (one of an older aggregate shape) is ignored and the whole stream replayed, as cqrs-es
    /// does; the command's append then writes a current one. An event that cannot be read is a
    /// deserialization error.
    pub async fn load<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<EventStoreAggregateContext<A>, AggregateError<A::Error>> {
        let mut rows = self
            .rows(LOAD, A::TYPE, aggregate_id, None)
            .await?
            .into_iter()
            .peekable();
        let mut context = EventStoreAggregateContext {
            aggregate_id: aggregate_id.to_owned(),
            aggregate: A::default(),
            current_sequence: 0,
            current_snapshot: None,
        };
        if let Some(snapshot) = rows.next_if(|row| row.event_type.is_none()) {
            match serde_json::from_str::<A>(&snapshot.payload) {
                Ok(aggregate) => {
                    context.aggregate = aggregate;
                    context.current_sequence = snapshot.sequence as usize;
                    context.current_snapshot = snapshot.snapshot_count.map(|count| count as usize);
                }
                Err(error) => {
                    tracing::debug!(%error, aggregate_id, "snapshot unreadable; replaying the stream");
                    rows = self
                        .rows(EVENTS_AFTER, A::TYPE, aggregate_id, Some(0))
                        .await?
                        .into_iter()
                        .peekable();
                }
            }
        }
        for row in rows {
            let sequence = row.sequence as usize;
            context.aggregate.apply(self.event::<A>(aggregate_id, row)?);
            context.current_sequence = sequence;
        }
        Ok(context)
    }

    async fn rows(
        &self,
        statement: &'static str,
        aggregate_type: &str,
        aggregate_id: &str,
        after: Option<i64>,
    ) -> Result<Vec<Loaded>, PersistenceError> {
        let mut query = sqlx::query_as::<_, Loaded>(statement)
            .bind(aggregate_type)
            .bind(aggregate_id);
        if let Some(after) = after {
            query = query.bind(after);
        }
        query.fetch_all(&self.pool).await.map_err(persistence)
    }

    /// One loaded event, decoded from its text; through the upcasters (and a JSON tree) only when
    /// one of them applies to its type and version.
    fn event<A: Aggregate>(&self, aggregate_id: &str, row: Loaded) -> Result<A::Event, PersistenceError> {
        let (event_type, event_version) = (
            row.event_type.unwrap_or_default(),
            row.event_version.unwrap_or_default(),
        );
        if !self
            .upcasters
            .iter()
            .any(|upcaster| upcaster.can_upcast(&event_type, &event_version))
        {
            return Ok(serde_json::from_str(&row.payload)?);
        }
        let mut event = SerializedEvent::new(
            aggregate_id.to_owned(),
            row.sequence as usize,
            A::TYPE.to_owned(),
            event_type,
            event_version,
            serde_json::from_str(&row.payload)?,
            Value::Null,
        );
        for upcaster in &self.upcasters {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                event = upcaster.upcast(event);
            }
        }
        Ok(serde_json::from_value(event.payload)?)
    }
}

/// A row of [`LOAD`] or [`EVENTS_AFTER`]: the snapshot (no event type; `sequence` is the last
/// one it holds) or an event.
#[derive(sqlx::FromRow)]
struct Loaded {
    sequence: i64,
    event_type: Option<String>,
    event_version: Option<String>,
    snapshot_count: Option<i64>,
    payload: String,
}

/// A stream's snapshot and the events after it (all of them when there is none), in sequence
/// order: the snapshot's last sequence is below every event's.
const LOAD: &str = "WITH snapshot AS (
        SELECT last_sequence, current_snapshot, payload FROM snapshots
         WHERE aggregate_type = $1 AND aggregate_id = $2)
    SELECT last_sequence AS sequence, NULL::text AS event_type, NULL::text AS event_version,
           current_snapshot AS snapshot_count, payload::text AS payload
      FROM snapshot
    UNION ALL
    SELECT sequence, event_type, event_version, NULL, payload::text FROM events
     WHERE aggregate_type = $1 AND aggregate_id = $2
       AND sequence > coalesce((SELECT last_sequence FROM snapshot), 0)
    ORDER BY sequence";

/// A stream's events after sequence `$3`.
const EVENTS_AFTER: &str = "SELECT sequence, event_type, event_version, NULL::bigint AS snapshot_count,
           payload::text AS payload
      FROM events
     WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3
     ORDER BY sequence";

/// A database error as cqrs-es classifies it: a lost append race is a conflict (the command is
/// decided again), a lost connection the store being unavailable; anything else keeps the
/// `sqlx::Error` for the caller to inspect.
fn persistence(error: sqlx::Error) -> PersistenceError {
    match &error {
        sqlx::Error::Database(database) if database.code().as_deref() == Some(UNIQUE_VIOLATION) => {
            PersistenceError::OptimisticLockError
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => PersistenceError::ConnectionError(Box::new(error)),
        _ => PersistenceError::UnknownError(Box::new(error)),
    }
}

/// The ids a command handed over, in event order.
fn event_ids(metadata: &Value, count: usize) -> Vec<Uuid> {
    let given: Vec<Uuid> = metadata
        .get(EVENT_IDS)
        .and_then(Value::as_str)
        .map(|ids| ids.split(',').filter_map(|id| Uuid::parse_str(id).ok()).collect())
        .unwrap_or_default();
    (0..count)
        .map(|k| given.get(k).copied().unwrap_or_else(Uuid::now_v7))
        .collect()
}

/// The tail of a statement appending rows of stream type `$1` with their hash chain; the rows are
/// `$2`-`$8`: stream ids, sequences, event types, versions, payloads, metadata and event ids.
/// Each stream's rows are chained in sequence order by the running aggregate `cstrack_chain`,
/// seeded by the stored hash before the stream's first row here (one lookup per stream), so the
/// database runs no per-row trigger for them (docs/ARCHITECTURE.md, "Tamper evidence"). The
/// caller writes `WITH` and any CTEs of its own before it.
macro_rules! chained_append {
    () => {
        "appending AS (
            SELECT * FROM UNNEST($2::text[], $3::int8[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[], $8::uuid[])
                AS r (aggregate_id, sequence, event_type, event_version, payload, metadata, event_id)),
         previous AS (
            SELECT f.aggregate_id, e.hash
              FROM (SELECT aggregate_id, min(sequence) AS first FROM appending GROUP BY aggregate_id) f
              JOIN events e ON e.aggregate_type = $1 AND e.aggregate_id = f.aggregate_id AND e.sequence = f.first - 1)
        INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
                            event_id, hash)
        SELECT $1, r.aggregate_id, r.sequence, r.event_type, r.event_version, r.payload, r.metadata, r.event_id,
               cstrack_chain(p.hash, cstrack_event_line($1, r.aggregate_id, r.sequence, r.event_type,
                                                        r.event_version, r.payload, r.metadata))
                   OVER (PARTITION BY r.aggregate_id ORDER BY r.sequence)
          FROM appending r LEFT JOIN previous p USING (aggregate_id)"
    };
}

/// The rows of one append, column by column, in the order the statements bind them.
pub struct AppendRows<'a> {
    streams: Vec<&'a str>,
    sequences: Vec<i64>,
    types: Vec<&'a str>,
    versions: Vec<&'a str>,
    payloads: Vec<&'a Value>,
    metadata: Vec<&'a Value>,
    ids: Vec<Uuid>,
}

impl<'a> AppendRows<'a> {
    pub fn with_capacity(rows: usize) -> Self {
        AppendRows {
            streams: Vec::with_capacity(rows),
            sequences: Vec::with_capacity(rows),
            types: Vec::with_capacity(rows),
            versions: Vec::with_capacity(rows),
            payloads: Vec::with_capacity(rows),
            metadata: Vec::with_capacity(rows),
            ids: Vec::with_capacity(rows),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        stream: &'a str,
        sequence: i64,
        event_type: &'a str,
        version: &'a str,
        payload: &'a Value,
        metadata: &'a Value,
        id: Uuid,
    ) {
        self.streams.push(stream);
        self.sequences.push(sequence);
        self.types.push(event_type);
        self.versions.push(version);
        self.payloads.push(payload);
        self.metadata.push(metadata);
        self.ids.push(id);
    }

    /// `statement` (one that ends with `chained_append!`) with the stream type and these rows
    /// bound as `$1`-`$8`.
    pub fn bind<'q>(
        &'q self,
        statement: &'static str,
        stream_type: &'q str,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(statement)
            .bind(stream_type)
            .bind(&self.streams)
            .bind(&self.sequences)
            .bind(&self.types)
            .bind(&self.versions)
            .bind(&self.payloads)
            .bind(&self.metadata)
            .bind(&self.ids)
    }
}

/// Appends rows of any number of streams of one type (bound as `chained_append!` describes).
pub const APPEND_ROWS: &str = concat!("WITH ", chained_append!());

/// A command's append: its events (all of stream `$2[1]`) and, when `$11` is given, the snapshot
/// at sequence `$9` (`$10` the snapshot count), in one statement.
const APPEND: &str = concat!(
    "WITH snapshot AS (
        INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
        SELECT $1, ($2::text[])[1], $9, $10, $11 WHERE $11::jsonb IS NOT NULL
        ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
           SET last_sequence = EXCLUDED.last_sequence, current_snapshot = EXCLUDED.current_snapshot,
               payload = EXCLUDED.payload
         WHERE snapshots.last_sequence < EXCLUDED.last_sequence),
    ",
    chained_append!()
);

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.replay.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.replay.get_last_events::<A>(aggregate_id, last_sequence).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.replay.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let ids = event_ids(&first.metadata, events.len());
        let stored: Vec<Value> = events
            .iter()
            .map(|event| {
                let mut stored = event.metadata.clone();
                if let Some(map) = stored.as_object_mut() {
                    map.remove(EVENT_IDS);
                }
                stored
            })
            .collect();
        let mut rows = AppendRows::with_capacity(events.len());
        for ((event, metadata), id) in events.iter().zip(&stored).zip(ids) {
            rows.push(
                &event.aggregate_id,
                event.sequence as i64,
                &event.event_type,
                &event.event_version,
                &event.payload,
                metadata,
                id,
            );
        }
        let last = events.last().map(|event| event.sequence as i64);
        let (snapshot, current_snapshot) = match snapshot_update {
            Some((_, aggregate, current_snapshot)) => (Some(aggregate), Some(current_snapshot as i64)),
            None => (None, None),
        };
        rows.bind(APPEND, A::TYPE)
            .bind(last)
            .bind(current_snapshot)
            .bind(snapshot)
            .execute(&self.pool)
            .await
            .map_err(persistence)?;
        Ok(())
    }

    async fn stream_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<ReplayStream, PersistenceError> {
        self.replay.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.replay.stream_all_events::<A>().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ids_a_command_hands_over_are_used_in_order_and_missing_ones_are_made() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let metadata = serde_json::json!({ EVENT_IDS: format!("{a},{b}"), "actor_id": "csm-1" });
        let ids = event_ids(&metadata, 3);
        assert_eq!(ids[..2], [a, b]);
        assert_eq!(ids[2].get_version_num(), 7);
        assert_ne!(ids[2], a);
        assert_eq!(event_ids(&serde_json::json!({}), 1).len(), 1);
    }
}
