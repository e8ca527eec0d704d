//! The event repository commands append through: cqrs-es's persistence trait over the tables
//! postgres-es defines, with postgres-es replaying whole streams and the two statements that
//! decide a command's cost written here.
//!
//! - **Appending** is one statement: every event of the command in one `INSERT ... SELECT FROM
//!   UNNEST`, with the snapshot (when the command crosses one) written by a data-modifying `WITH`
//!   in the same statement, so a command's append is one round trip and atomic without a
//!   transaction around it. postgres-es sends `BEGIN`, an `INSERT` per event, the snapshot and
//!   `COMMIT`, and checks its snapshot update only after committing the events.
//! - **Concurrent commands share that statement** ([`Combiner`]): the commands that arrive while
//!   an append is on its way are appended together by the next one, so its triggers, planning
//!   and commit are paid once per group.
//! - **The hash chain** is computed by that statement, over the set: the database looks up one
//!   stored hash per stream instead of running a trigger that looks up each event's predecessor.
//! - **Event ids** are made by the command service (UUID v7) and written with the events, so a
//!   command answers with them without reading them back ([`EventRepository::append_command`]).
//! - **Each event is encoded once**: straight from the event to the JSON text the statement
//!   sends, and a command's metadata once for all its events. cqrs-es's `commit` copies the
//!   metadata map into every event, turns each event and each copy into a JSON tree, and the
//!   driver then writes each tree out as text: for a batch of 1,000 activities, thousands of
//!   allocations and copies the command does not need.
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
use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

/// SQLSTATE of a unique violation: another writer appended at one of these sequences first.
const UNIQUE_VIOLATION: &str = "23505";

pub struct EventRepository {
    pool: PgPool,
    replay: PostgresEventRepository,
    upcasters: Vec<Box<dyn EventUpcaster>>,
    /// Combines concurrent commands' appends; `None`: each command appends alone.
    combiner: Option<Combiner>,
}

impl EventRepository {
    /// `upcasters` bring events stored at an older version up to the current one as they load.
    pub fn new(pool: PgPool, upcasters: Vec<Box<dyn EventUpcaster>>) -> Self {
        EventRepository {
            replay: PostgresEventRepository::new(pool.clone()),
            pool,
            upcasters,
            combiner: None,
        }
    }

    /// Appends concurrent commands together, as `settings` says (see [`Combiner`]).
    pub fn combining(mut self, settings: AppendSettings) -> Self {
        if settings.append_group > 1 {
            self.combiner = Some(Combiner::start(self.pool.clone(), settings));
        }
        self
    }

    /// Appends one command's events to stream `stream_id` at the sequences after `after`, under
    /// the ids the command made (`event_ids`, one per event), with `metadata` for every event and,
    /// when the command crosses a snapshot, `snapshot` (the snapshot count and the aggregate as
    /// the command left it, taken at its last event). Each event is serialized once, to the text
    /// the statement sends; the metadata once for the whole command. A unique violation (another
    /// writer appended at one of these sequences) is [`PersistenceError::OptimisticLockError`].
    pub async fn append_command<A: Aggregate>(
        &self,
        stream_id: &str,
        after: usize,
        events: &[A::Event],
        event_ids: &[Uuid],
        metadata: &std::collections::HashMap<String, String>,
        snapshot: Option<(usize, &A)>,
    ) -> Result<(), PersistenceError> {
        use cqrs_es::DomainEvent;
        let shared: std::sync::Arc<RawValue> = serde_json::value::to_raw_value(metadata)?.into();
        let mut rows = Vec::with_capacity(events.len());
        for ((event, event_id), sequence) in events.iter().zip(event_ids).zip(after + 1..) {
            rows.push(Row {
                sequence: sequence as i64,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::value::to_raw_value(event)?,
                metadata: shared.clone(),
                event_id: *event_id,
            });
        }
        let last = (after + events.len()) as i64;
        let snapshot = match snapshot {
            Some((count, aggregate)) => Some((last, count as i64, serde_json::value::to_raw_value(aggregate)?)),
            None => None,
        };
        let claim = metadata
            .get("idempotency_key")
            .map(|key| (metadata.get("actor_id").cloned().unwrap_or_default(), key.clone()));
        self.submit(CommandAppend {
            stream_type: A::TYPE,
            stream_id: stream_id.to_owned(),
            rows,
            snapshot,
            claim,
        })
        .await
    }

    /// Appends `command` with the commands waiting beside it, or alone when not combining.
    async fn submit(&self, command: CommandAppend) -> Result<(), PersistenceError> {
        match &self.combiner {
            Some(combiner) => combiner.append(command).await,
            None => append(&self.pool, std::slice::from_ref(&command))
                .await
                .map_err(persistence),
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
/// order: the snapshot's last sequence is below every event's. Read by `cstrack_stream`, whose
/// body each statement plans for the store as large as it is then (migration
/// `stream_reads_per_statement`).
pub const LOAD: &str =
    "SELECT sequence, event_type, event_version, snapshot_count, payload FROM cstrack_stream($1, $2)";

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

/// The tail of a statement appending rows of stream type `$1` with their hash chain; the rows are
/// `$2`-`$8`: stream ids, sequences, event types, versions, payloads, metadata and event ids.
/// Each stream's rows are chained in sequence order by the running aggregate `cstrack_chain`,
/// seeded by the stored hash before the stream's first row here (one lookup per stream), so the
/// database runs no per-row trigger for them (docs/ARCHITECTURE.md, "Tamper evidence"). The
/// caller writes `WITH` and any CTEs of its own before it.
///
/// The stored hash is read once per stream by `cstrack_stored_hash`, never by a join, and the
/// function's lookup is planned by each statement, not once per connection (migration
/// `chain_seed_per_statement`). A connection plans this statement once for any parameters after
/// a few runs and keeps that plan until the next `ANALYZE`: with a join, a plan made from
/// statistics of a small store joined the streams with every event of the stream type (200 to
/// 300 ms a statement at 500,000 events); with the lookup in the plan itself, a plan made while
/// the store held a few pages scanned the whole store for it (100 to 400 ms a statement at
/// 250,000 events).
macro_rules! chained_append {
    () => {
        "appending AS (
            SELECT * FROM UNNEST($2::text[], $3::int8[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[], $8::uuid[])
                AS r (aggregate_id, sequence, event_type, event_version, payload, metadata, event_id)),
         previous AS (
            SELECT f.aggregate_id, cstrack_stored_hash($1, f.aggregate_id, f.first - 1) AS hash
              FROM (SELECT aggregate_id, min(sequence) AS first FROM appending GROUP BY aggregate_id) f)
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
    payloads: Vec<Json<&'a RawValue>>,
    metadata: Vec<Json<&'a RawValue>>,
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
        payload: &'a RawValue,
        metadata: &'a RawValue,
        id: Uuid,
    ) {
        self.streams.push(stream);
        self.sequences.push(sequence);
        self.types.push(event_type);
        self.versions.push(version);
        self.payloads.push(Json(payload));
        self.metadata.push(Json(metadata));
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

/// The append of one or more commands, each on a stream of its own: their events and, for those
/// that cross one, their snapshots (`$9`-`$12`: stream ids, last sequences, snapshot counts and
/// aggregates), in one statement.
const APPEND: &str = concat!(
    "WITH snapshot AS (
        INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
        SELECT $1, s.aggregate_id, s.last_sequence, s.current_snapshot, s.payload
          FROM UNNEST($9::text[], $10::int8[], $11::int8[], $12::jsonb[])
            AS s (aggregate_id, last_sequence, current_snapshot, payload)
        ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
           SET last_sequence = EXCLUDED.last_sequence, current_snapshot = EXCLUDED.current_snapshot,
               payload = EXCLUDED.payload
         WHERE snapshots.last_sequence < EXCLUDED.last_sequence),
    ",
    chained_append!()
);

/// One command's append: the events it decided on one stream, and the snapshot when it crosses
/// one.
struct CommandAppend {
    stream_type: &'static str,
    stream_id: String,
    rows: Vec<Row>,
    /// The last event's sequence, the snapshot count and the aggregate.
    snapshot: Option<(i64, i64, Box<RawValue>)>,
    /// `(actor, key)` of the Idempotency-Key the events carry.
    claim: Option<(String, String)>,
}

struct Row {
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Box<RawValue>,
    /// Shared by the rows of one command.
    metadata: std::sync::Arc<RawValue>,
    event_id: Uuid,
}

impl CommandAppend {
    /// Whether the two may not share a statement: the same stream (the second decided on what
    /// the first appends), the same Idempotency-Key (the store lets a key's first transaction
    /// append under it, and one statement is one transaction) or another stream type.
    fn collides(&self, other: &CommandAppend) -> bool {
        self.stream_id == other.stream_id
            || self.stream_type != other.stream_type
            || (self.claim.is_some() && self.claim == other.claim)
    }
}

/// Appends `appends` (one stream type, no two colliding) in one statement.
async fn append(pool: &PgPool, appends: &[CommandAppend]) -> Result<(), sqlx::Error> {
    let Some(first) = appends.first() else {
        return Ok(());
    };
    let mut rows = AppendRows::with_capacity(appends.iter().map(|append| append.rows.len()).sum());
    let (mut snapshot_streams, mut snapshot_sequences, mut snapshot_counts, mut snapshots) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for command in appends {
        for row in &command.rows {
            rows.push(
                &command.stream_id,
                row.sequence,
                &row.event_type,
                &row.event_version,
                &row.payload,
                &row.metadata,
                row.event_id,
            );
        }
        if let Some((sequence, count, aggregate)) = &command.snapshot {
            snapshot_streams.push(command.stream_id.as_str());
            snapshot_sequences.push(*sequence);
            snapshot_counts.push(*count);
            snapshots.push(Json(&**aggregate));
        }
    }
    rows.bind(APPEND, first.stream_type)
        .bind(snapshot_streams)
        .bind(snapshot_sequences)
        .bind(snapshot_counts)
        .bind(snapshots)
        .execute(pool)
        .await?;
    Ok(())
}

/// How concurrent commands' appends share statements (docs/ARCHITECTURE.md, "Combined
/// appends").
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct AppendSettings {
    /// Most commands one statement appends: the commands that arrive while a statement is on its
    /// way are appended together by the next one. 1: each command appends alone.
    #[arg(long, env = "CSTRACK_APPEND_GROUP", default_value_t = 32)]
    pub append_group: usize,
    /// Appending statements on their way at once, per stream type.
    #[arg(long, env = "CSTRACK_APPEND_LANES", default_value_t = 4)]
    pub append_lanes: usize,
}

impl Default for AppendSettings {
    fn default() -> Self {
        AppendSettings {
            append_group: 32,
            append_lanes: 4,
        }
    }
}

impl AppendSettings {
    /// The settings from the environment alone (defaults where unset).
    pub fn from_env() -> Self {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            append: AppendSettings,
        }
        <Only as clap::Parser>::try_parse_from(["cstrack"])
            .map(|only| only.append)
            .unwrap_or_default()
    }
}

/// Appends concurrent commands together. Each command's append waits in a queue; a lane takes
/// the first waiting and every other one already there (up to the group size, stopping at one
/// that collides), appends them in one statement and answers each. A statement's triggers,
/// planning and commit are so paid once per group instead of once per command, and an idle
/// service appends a lone command at once. The statement is all or nothing: when the database
/// refuses it (a stream another replica appended to, an Idempotency-Key already used, a lost
/// race on an activity id), nothing was stored, and each command is appended alone to get its
/// own answer. A failure with no answer from the database (a lost connection: the statement
/// may have committed) is every command's answer, as it would be each one's alone.
struct Combiner(tokio::sync::mpsc::Sender<Queued>);

/// Commands waiting in the queue for a lane to append them.
pub static APPENDS_WAITING: std::sync::LazyLock<prometheus::IntGauge> = std::sync::LazyLock::new(|| {
    prometheus::IntGauge::new(
        "cstrack_appends_waiting",
        "Commands waiting for a statement to append them",
    )
    .expect("the gauge's options are valid")
});

/// Commands each appending statement appended.
pub static APPEND_GROUPS: std::sync::LazyLock<prometheus::Histogram> = std::sync::LazyLock::new(|| {
    prometheus::Histogram::with_opts(
        prometheus::HistogramOpts::new(
            "cstrack_append_group_commands",
            "Commands appended together by one statement",
        )
        .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
    )
    .expect("the histogram's options are valid")
});

struct Queued {
    append: CommandAppend,
    done: tokio::sync::oneshot::Sender<Result<(), PersistenceError>>,
}

impl Combiner {
    fn start(pool: PgPool, settings: AppendSettings) -> Self {
        let (sender, queue) = tokio::sync::mpsc::channel(1024);
        let queue = std::sync::Arc::new(tokio::sync::Mutex::new(queue));
        for _ in 0..settings.append_lanes.max(1) {
            tokio::spawn(lane(pool.clone(), settings.append_group, queue.clone()));
        }
        Combiner(sender)
    }

    async fn append(&self, append: CommandAppend) -> Result<(), PersistenceError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let stopped = || PersistenceError::ConnectionError("the appending lanes stopped".into());
        APPENDS_WAITING.inc();
        if self.0.send(Queued { append, done }).await.is_err() {
            APPENDS_WAITING.dec();
            return Err(stopped());
        }
        answer.await.map_err(|_| stopped())?
    }
}

/// Takes groups from `queue` and appends them until every sender is gone.
async fn lane(
    pool: PgPool,
    most: usize,
    queue: std::sync::Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Queued>>>,
) {
    let mut carried: Option<Queued> = None;
    loop {
        let mut group: Vec<Queued> = Vec::with_capacity(most);
        {
            let mut queue = queue.lock().await;
            let first = match carried.take() {
                Some(first) => first,
                None => match queue.recv().await {
                    Some(first) => {
                        APPENDS_WAITING.dec();
                        first
                    }
                    None => return,
                },
            };
            group.push(first);
            while group.len() < most {
                let Ok(next) = queue.try_recv() else { break };
                APPENDS_WAITING.dec();
                if group.iter().any(|queued| queued.append.collides(&next.append)) {
                    carried = Some(next);
                    break;
                }
                group.push(next);
            }
        }
        APPEND_GROUPS.observe(group.len() as f64);
        settle(&pool, group).await;
    }
}

/// Appends `group` and answers each of its commands.
async fn settle(pool: &PgPool, group: Vec<Queued>) {
    let (appends, answers): (Vec<CommandAppend>, Vec<_>) =
        group.into_iter().map(|queued| (queued.append, queued.done)).unzip();
    match append(pool, &appends).await {
        Ok(()) => {
            for done in answers {
                done.send(Ok(())).ok();
            }
        }
        Err(sqlx::Error::Database(_)) if appends.len() > 1 => {
            tracing::debug!(
                commands = appends.len(),
                "a combined append was refused; appending each alone"
            );
            for (append_one, done) in appends.iter().zip(answers) {
                let result = append(pool, std::slice::from_ref(append_one)).await;
                done.send(result.map_err(persistence)).ok();
            }
        }
        Err(error) if answers.len() == 1 => {
            if let Some(done) = answers.into_iter().next() {
                done.send(Err(persistence(error))).ok();
            }
        }
        Err(error) => {
            let unavailable = events::service::store::is_unavailable(&error);
            for done in answers {
                let shared: Box<dyn std::error::Error + Send + Sync> = error.to_string().into();
                done.send(Err(if unavailable {
                    PersistenceError::ConnectionError(shared)
                } else {
                    PersistenceError::UnknownError(shared)
                }))
                .ok();
            }
        }
    }
}

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

    /// Appends events cqrs-es serialized (each with fresh ids). The command handler appends
    /// through [`EventRepository::append_command`] instead, which encodes each event once.
    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let raw = |value: &Value| serde_json::value::to_raw_value(value);
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            rows.push(Row {
                sequence: event.sequence as i64,
                event_type: event.event_type.clone(),
                event_version: event.event_version.clone(),
                payload: raw(&event.payload)?,
                metadata: raw(&event.metadata)?.into(),
                event_id: Uuid::now_v7(),
            });
        }
        let metadata = &first.metadata;
        let text = |key: &str| metadata.get(key).and_then(Value::as_str);
        let claim =
            text("idempotency_key").map(|key| (text("actor_id").unwrap_or_default().to_owned(), key.to_owned()));
        let snapshot = match snapshot_update {
            Some((_, aggregate, count)) => Some((last.sequence as i64, count as i64, raw(&aggregate)?)),
            None => None,
        };
        self.submit(CommandAppend {
            stream_type: A::TYPE,
            stream_id: first.aggregate_id.clone(),
            rows,
            snapshot,
            claim,
        })
        .await
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

    fn command(stream: &str, claim: Option<(&str, &str)>) -> CommandAppend {
        CommandAppend {
            stream_type: "Customer",
            stream_id: stream.to_owned(),
            rows: Vec::new(),
            snapshot: None,
            claim: claim.map(|(actor, key)| (actor.to_owned(), key.to_owned())),
        }
    }

    #[test]
    fn commands_share_a_statement_unless_they_share_a_stream_or_an_idempotency_key() {
        let keyed = command("a", Some(("csm-1", "sync-7")));
        assert!(!keyed.collides(&command("b", None)));
        assert!(!command("a", None).collides(&command("b", None)));
        assert!(
            !keyed.collides(&command("b", Some(("csm-2", "sync-7")))),
            "another user's key"
        );
        assert!(!keyed.collides(&command("b", Some(("csm-1", "sync-8")))));
        assert!(keyed.collides(&command("b", Some(("csm-1", "sync-7")))));
        assert!(command("a", None).collides(&command("a", None)));
        let mut partner = command("b", None);
        partner.stream_type = "Partner";
        assert!(command("a", None).collides(&partner));
    }
}
