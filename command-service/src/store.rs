//! Runs a command against the event store: load the aggregate (from its snapshot), let it decide,
//! append what it decided, and retry on a concurrent append to the same stream.

use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::EventStoreAggregateContext;
use cqrs_es::{Aggregate, AggregateError, DomainEvent};
use events::metadata::CommandMetadata;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::Principal;
use crate::domain::{authorize, ActivityRecord, CommandError, Directory, Guarded};
use crate::repository::{AppendSettings, EventRepository};

/// Commands that lose the race to append (to another replica) are retried this many times in all.
const ATTEMPTS: u32 = 8;
/// A snapshot every this many events keeps loading cost flat however long a stream grows.
const SNAPSHOT_EVERY: usize = 50;

/// Metadata key of the first answer of an idempotent command (JSON text: `status` and
/// `created`), carried by the events it appended.
pub const IDEMPOTENT_ANSWER: &str = "idempotent_answer";

/// What a command appended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Appended {
    pub stream_type: &'static str,
    pub stream_id: String,
    /// The stream's sequence after the command.
    pub sequence: i64,
    pub event_ids: Vec<Uuid>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    #[error(transparent)]
    Rejected(#[from] CommandError),
    #[error("the stream kept changing under the command")]
    Conflict,
    /// Another attempt of the same `Idempotency-Key` appended first (the store refuses a key's
    /// second append): the command's outcome is that attempt's.
    #[error("this Idempotency-Key's command was already appended")]
    AlreadyAppended,
    /// The stream holds an event this version cannot decode: nothing can be decided on it until
    /// the event is upcast by a newer version (or repaired).
    #[error("the stream holds an event that cannot be read: {0}")]
    Unreadable(String),
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    #[error("unexpected event store failure: {0}")]
    Internal(String),
}

/// SQLSTATE the store raises when a second transaction appends events under an
/// `Idempotency-Key` another transaction already appended under (`cstrack_idempotency_once`).
pub const ALREADY_APPENDED_SQLSTATE: &str = "CS409";

impl From<AggregateError<CommandError>> for ExecuteError {
    fn from(error: AggregateError<CommandError>) -> Self {
        match error {
            AggregateError::UserError(rejection) => ExecuteError::Rejected(rejection),
            AggregateError::AggregateConflict => ExecuteError::Conflict,
            AggregateError::DatabaseConnectionError(error) => ExecuteError::Unavailable(error.to_string()),
            AggregateError::DeserializationError(error) => ExecuteError::Unreadable(error.to_string()),
            AggregateError::UnexpectedError(error) => {
                if let Some(database) = error.downcast_ref::<sqlx::Error>() {
                    ExecuteError::from_database(database)
                } else if error.downcast_ref::<serde_json::Error>().is_some() {
                    ExecuteError::Unreadable(error.to_string())
                } else {
                    ExecuteError::Internal(error.to_string())
                }
            }
        }
    }
}

impl ExecuteError {
    /// A database failure as the client should see it: a lost or refused connection, a
    /// terminated session or a server shutting down is the store being unavailable (retry),
    /// anything else is internal.
    pub fn from_database(error: &sqlx::Error) -> Self {
        if let sqlx::Error::Database(database) = error {
            if database.code().as_deref() == Some(ALREADY_APPENDED_SQLSTATE) {
                return ExecuteError::AlreadyAppended;
            }
        }
        if events::service::store::is_unavailable(error) {
            ExecuteError::Unavailable(error.to_string())
        } else {
            ExecuteError::Internal(error.to_string())
        }
    }
}

/// One async lock per stream with commands in flight: commands on the same stream in this
/// process queue up instead of racing to append and retrying. Replicas still race each other;
/// the retry loop covers that.
#[derive(Default)]
struct StreamLocks(std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>);

impl StreamLocks {
    async fn lock(&self, id: &str) -> StreamGuard<'_> {
        let lock = {
            let mut locks = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            locks.entry(id.to_owned()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        StreamGuard {
            locks: self,
            id: id.to_owned(),
            _guard: guard,
            lock,
        }
    }
}

struct StreamGuard<'a> {
    locks: &'a StreamLocks,
    id: String,
    _guard: tokio::sync::OwnedMutexGuard<()>,
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Drop for StreamGuard<'_> {
    fn drop(&mut self) {
        let mut locks = self.locks.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget the stream's lock once nobody else holds or waits for it (the map and this
        // guard hold the last two references).
        if std::sync::Arc::strong_count(&self.lock) <= 3 {
            locks.remove(&self.id);
        }
    }
}

/// Seconds each stage of a command took: `load` (the aggregate from its snapshot and the events
/// after it), `decide` (validation, directory lookups, the events decided) and `append` (the
/// statement that stores them, with the store's triggers). What a request costs beyond their sum
/// is HTTP, authentication and JSON.
pub static COMMAND_STAGES: std::sync::LazyLock<prometheus::HistogramVec> = std::sync::LazyLock::new(|| {
    prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new(
            "cstrack_command_stage_seconds",
            "Seconds spent in each stage of a command",
        )
        .buckets(vec![
            0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ]),
        &["stage"],
    )
    .expect("the stage histogram's options are valid")
});

/// Times one stage of a command into [`COMMAND_STAGES`].
fn stage(name: &str, started: std::time::Instant) {
    COMMAND_STAGES
        .with_label_values(&[name])
        .observe(started.elapsed().as_secs_f64());
}

/// Tells the relay that appends committed: one `NOTIFY` at a time on the relay's channel, sent
/// on its own connection after the appending transactions commit, never inside them. A `NOTIFY`
/// in an appending transaction takes PostgreSQL's notification lock at commit, which serializes
/// every appender behind it (it cost half the store's append rate); here many commits that
/// land while one notification is on its way share the next one. Appends this process does not
/// see (another replica without a relay, SQL typed by hand) are found by the relay's poll.
/// Least time between two notifications. A commit after a quiet spell is announced at once;
/// the commits of the next few milliseconds share one notification, so a busy store costs
/// PostgreSQL a few hundred notifications a second, not one per group of commands.
const NOTIFY_SPACING: std::time::Duration = std::time::Duration::from_millis(2);

#[derive(Clone)]
pub struct Appends(tokio::sync::mpsc::Sender<()>);

impl Appends {
    /// Starts the sender; it stops once every clone of the returned handle is dropped.
    pub fn new(pool: PgPool) -> Self {
        let (committed, mut pending) = tokio::sync::mpsc::channel::<()>(1);
        tokio::spawn(async move {
            while pending.recv().await.is_some() {
                let sent = sqlx::query("SELECT pg_notify($1, '')")
                    .bind(crate::relay::APPEND_CHANNEL)
                    .execute(&pool)
                    .await;
                if let Err(error) = sent {
                    tracing::debug!(%error, "telling the relay about an append failed; its poll will find it");
                }
                tokio::time::sleep(NOTIFY_SPACING).await;
            }
        });
        Appends(committed)
    }

    /// Call after a transaction that appended events committed.
    pub fn committed(&self) {
        // A full channel means a notification is already due: this commit rides on it.
        self.0.try_send(()).ok();
    }
}

/// The command side of one aggregate type.
pub struct CommandHandler<A: Aggregate> {
    /// Appends commands' events, combining concurrent commands' appends; nothing is loaded
    /// through it.
    appender: EventRepository,
    /// Loads streams in one statement each.
    loader: EventRepository,
    services: A::Services,
    locks: StreamLocks,
    appends: Appends,
    recent: Recent<A>,
}

impl<A> CommandHandler<A>
where
    A: Aggregate<Error = CommandError> + Guarded + Clone,
    A::Command: Clone,
{
    pub fn services(&self) -> &A::Services {
        &self.services
    }

    /// Tells the relay that a transaction this handler's caller committed appended events
    /// (batches are committed by their callers).
    pub fn appended(&self) {
        self.appends.committed();
    }

    pub fn new(pool: PgPool, services: A::Services, appends: Appends, settings: AppendSettings) -> Self {
        CommandHandler {
            appender: EventRepository::new(pool.clone(), Vec::new()).combining(settings),
            loader: EventRepository::new(pool, events::upcast::upcasters()),
            services,
            locks: StreamLocks::default(),
            appends,
            recent: Recent(Default::default()),
        }
    }

    /// Executes `command` on stream `id`, retrying with jitter when another command appended to
    /// the same stream between our load and our append.
    /// `principal` is the authenticated caller, checked against the permission table on the
    /// loaded aggregate; `None` is the system itself (imports, the demo seed).
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
        principal: Option<&Principal>,
    ) -> Result<Appended, ExecuteError> {
        self.execute_answering(id, command, metadata, principal, None).await
    }

    /// As [`CommandHandler::execute`], with `answer` (the first answer's status and created ids,
    /// as JSON text) recorded in the events' metadata, for the retries of an idempotent command.
    #[tracing::instrument(name = "execute_command", skip_all, fields(stream_type = A::TYPE, stream_id = %id))]
    pub async fn execute_answering(
        &self,
        id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
        principal: Option<&Principal>,
        answer: Option<String>,
    ) -> Result<Appended, ExecuteError> {
        let mut stored = metadata.to_map();
        if let Some(answer) = answer {
            stored.insert(IDEMPOTENT_ANSWER.to_owned(), answer);
        }
        self.execute_with_metadata(id, command, stored, principal).await
    }

    /// As [`CommandHandler::execute`], with the events' metadata given whole (a connector adds
    /// its run and the vendor's record to it).
    pub async fn execute_with_metadata(
        &self,
        id: &str,
        command: A::Command,
        stored: std::collections::HashMap<String, String>,
        principal: Option<&Principal>,
    ) -> Result<Appended, ExecuteError> {
        let _stream = self.locks.lock(id).await;
        let mut attempt = 1;
        loop {
            match self.try_execute(id, command.clone(), &stored, principal).await {
                Err(ExecuteError::Conflict) if attempt < ATTEMPTS => {
                    // Exponential backoff with full jitter: 5, 10, 20 ... ms ceilings.
                    let ceiling = 5_u64 << attempt.min(6);
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(1..=ceiling))).await;
                    attempt += 1;
                }
                Err(ExecuteError::Conflict) => {
                    tracing::warn!(attempts = attempt, "command gave up after repeated conflicts");
                    return Err(ExecuteError::Conflict);
                }
                result => return result,
            }
        }
    }

    async fn try_execute(
        &self,
        id: &str,
        command: A::Command,
        metadata: &std::collections::HashMap<String, String>,
        principal: Option<&Principal>,
    ) -> Result<Appended, ExecuteError> {
        let mut recent = true;
        loop {
            let started = std::time::Instant::now();
            let copy = if recent { self.recent.take(id) } else { None };
            let from_copy = copy.is_some();
            let context = match copy {
                Some(context) => context,
                None => {
                    let context = self.loader.load::<A>(id).await?;
                    stage("load", started);
                    context
                }
            };
            let started = std::time::Instant::now();
            let decided = self.decide(&context, command.clone(), principal).await;
            stage("decide", started);
            let (decided, events) = match decided {
                // A copy may be behind the stream (another writer appended since it was kept):
                // a refusal, or a command that changes nothing, is answered only on the stream
                // as stored.
                Err(ExecuteError::Rejected(_)) if from_copy => {
                    recent = false;
                    continue;
                }
                Ok((_, events)) if events.is_empty() && from_copy => {
                    recent = false;
                    continue;
                }
                decided => decided?,
            };
            let before = context.current_sequence;
            let count = events.len();
            // A snapshot whenever the command crosses a multiple of SNAPSHOT_EVERY, of the
            // aggregate as the command leaves it, at its last event.
            let crosses = count > 0 && count >= SNAPSHOT_EVERY - before % SNAPSHOT_EVERY;
            let snapshots = if crosses {
                Some(context.current_snapshot.map_or(1, |taken| taken + 1))
            } else {
                context.current_snapshot
            };
            // The events' ids are made here and written with them: the answer needs no read back.
            let event_ids: Vec<Uuid> = (0..count).map(|_| Uuid::now_v7()).collect();
            if count > 0 {
                let started = std::time::Instant::now();
                let snapshot = snapshots.filter(|_| crosses).map(|taken| (taken, &decided));
                // A copy behind the stream makes this a conflict (the store's sequence key):
                // the retry loads the stream.
                self.appender
                    .append_command(id, before, &events, &event_ids, metadata, snapshot)
                    .await
                    .map_err(|error| ExecuteError::from(AggregateError::<CommandError>::from(error)))?;
                self.appends.committed();
                stage("append", started);
            }
            self.recent.keep(
                id,
                EventStoreAggregateContext {
                    aggregate_id: id.to_owned(),
                    aggregate: decided,
                    current_sequence: before + count,
                    current_snapshot: snapshots,
                },
            );
            return Ok(Appended {
                stream_type: A::TYPE,
                stream_id: id.to_owned(),
                sequence: (before + count) as i64,
                event_ids,
            });
        }
    }

    /// Checks `principal`'s permission and decides `command` on the stream as `context` holds
    /// it: the aggregate after the command, and the events it decided.
    ///
    /// The sink applies each event to the aggregate it decides on, and cqrs-es's `commit`
    /// applies them to the context's aggregate once more to take a snapshot: the command is
    /// decided on a copy, so the snapshot holds each event once.
    async fn decide(
        &self,
        context: &EventStoreAggregateContext<A>,
        command: A::Command,
        principal: Option<&Principal>,
    ) -> Result<(A, Vec<A::Event>), ExecuteError> {
        if let Some(principal) = principal {
            authorize(&context.aggregate, &command, principal)?;
        }
        let mut deciding = context.aggregate.clone();
        let sink = EventSink::default();
        deciding
            .handle(command, &self.services, &sink)
            .await
            .map_err(ExecuteError::Rejected)?;
        Ok((deciding, sink.collect().await))
    }
}

/// Streams as the last command this process appended to them left them, so that the next
/// command on a busy stream is decided without loading it (at most [`RECENT_STREAMS`] per
/// stream type). A kept stream is taken out while a command uses it and put back only after
/// that command's append succeeded, so a copy is never ahead of the store; it may be behind
/// (an import, another replica or a repair appended since). Then the append at the copy's next
/// sequence meets the store's key and the command is decided again on the stream as loaded,
/// and a refusal decided on a copy is decided again on the loaded stream before it is answered.
struct Recent<A: Aggregate>(std::sync::Mutex<std::collections::HashMap<String, EventStoreAggregateContext<A>>>);

/// Streams kept per stream type.
const RECENT_STREAMS: usize = 1024;

impl<A: Aggregate> Recent<A> {
    fn take(&self, id: &str) -> Option<EventStoreAggregateContext<A>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(id)
    }

    fn keep(&self, id: &str, context: EventStoreAggregateContext<A>) {
        let mut kept = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.len() >= RECENT_STREAMS && !kept.contains_key(id) {
            if let Some(other) = kept.keys().next().cloned() {
                kept.remove(&other);
            }
        }
        kept.insert(id.to_owned(), context);
    }

    /// Forgets `id`'s copy: another path appends to it.
    fn forget(&self, id: &str) {
        self.take(id);
    }
}

/// Commands on many streams of one aggregate type, decided one by one against the streams as
/// loaded plus what the batch decided before, and appended in one transaction: all or none.
/// Imports, their undo and bulk edits go through it, with the same aggregates, validation and
/// permission checks as single commands.
pub struct Batch<'a, A: Aggregate> {
    handler: &'a CommandHandler<A>,
    services: A::Services,
    streams: Vec<Pending<A>>,
    index: std::collections::HashMap<String, usize>,
}

struct Pending<A: Aggregate> {
    id: String,
    aggregate: A,
    /// The stream's sequence when loaded.
    base: usize,
    /// Each with its command's metadata, encoded once per command.
    events: Vec<(A::Event, std::sync::Arc<serde_json::value::RawValue>)>,
}

/// SQLSTATE of a unique violation: another writer appended to a stream the batch appends to.
const UNIQUE_VIOLATION: &str = "23505";

impl<A> CommandHandler<A>
where
    A: Aggregate<Error = CommandError> + Guarded + Clone,
    A::Command: Clone,
{
    pub fn batch(&self) -> Batch<'_, A>
    where
        A::Services: Clone,
    {
        Batch {
            handler: self,
            services: self.services.clone(),
            streams: Vec::new(),
            index: std::collections::HashMap::new(),
        }
    }
}

impl<A> Batch<'_, A>
where
    A: Aggregate<Error = CommandError> + Guarded + Clone,
    A::Command: Clone,
{
    /// Decides with these services instead of the handler's (an import answers lookups of the
    /// ids it made up itself without asking the store).
    pub fn with_services(mut self, services: A::Services) -> Self {
        self.services = services;
        self
    }

    /// Loads stream `id` into the batch (once); `fresh` skips the read for a stream the caller
    /// just made up an id for (a stream that did exist makes the append conflict instead).
    async fn stream(&mut self, id: &str, fresh: bool) -> Result<usize, ExecuteError> {
        if let Some(&index) = self.index.get(id) {
            return Ok(index);
        }
        let (aggregate, base) = if fresh {
            (A::default(), 0)
        } else {
            let context = self.handler.loader.load::<A>(id).await?;
            (context.aggregate, context.current_sequence)
        };
        self.streams.push(Pending {
            id: id.to_owned(),
            aggregate,
            base,
            events: Vec::new(),
        });
        self.index.insert(id.to_owned(), self.streams.len() - 1);
        Ok(self.streams.len() - 1)
    }

    /// The stream's state as the batch would leave it.
    pub async fn aggregate(&mut self, id: &str) -> Result<&A, ExecuteError> {
        let index = self.stream(id, false).await?;
        Ok(&self.streams[index].aggregate)
    }

    /// Decides `command` on stream `id`; a refusal leaves the batch as it was. `metadata` is
    /// stored with the events this command appends.
    pub async fn decide(
        &mut self,
        id: &str,
        fresh: bool,
        command: A::Command,
        principal: Option<&Principal>,
        metadata: &std::collections::HashMap<String, String>,
    ) -> Result<usize, ExecuteError> {
        let index = self.stream(id, fresh).await?;
        let pending = &mut self.streams[index];
        if let Some(principal) = principal {
            authorize(&pending.aggregate, &command, principal)?;
        }
        let sink = EventSink::default();
        pending
            .aggregate
            .handle(command, &self.services, &sink)
            .await
            .map_err(ExecuteError::Rejected)?;
        let events = sink.collect().await;
        let metadata: std::sync::Arc<serde_json::value::RawValue> = serde_json::value::to_raw_value(metadata)
            .expect("string maps serialize")
            .into();
        let count = events.len();
        // The sink applied them to the aggregate already.
        for event in events {
            pending.events.push((event, metadata.clone()));
        }
        Ok(count)
    }

    /// Whom to tell once the transaction given to [`Batch::append`] commits.
    pub fn appends(&self) -> Appends {
        self.handler.appends.clone()
    }

    /// Events decided so far.
    pub fn len(&self) -> usize {
        self.streams.iter().map(|stream| stream.events.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends every decided event in `tx` (which the caller commits); a stream another writer
    /// appended to since it was loaded makes the whole batch [`ExecuteError::Conflict`].
    pub async fn append(self, tx: &mut sqlx::PgConnection) -> Result<Vec<Appended>, ExecuteError> {
        const CHUNK: usize = 1000;
        let mut rows: Vec<(
            usize,
            i64,
            String,
            String,
            Box<serde_json::value::RawValue>,
            usize,
            Uuid,
        )> = Vec::new();
        let mut metadata: Vec<std::sync::Arc<serde_json::value::RawValue>> = Vec::new();
        let mut appended = Vec::new();
        for stream in self.streams {
            if stream.events.is_empty() {
                continue;
            }
            // A copy a single command kept would fall behind this append.
            self.handler.recent.forget(&stream.id);
            let mut sequence = stream.base;
            let mut event_ids = Vec::with_capacity(stream.events.len());
            for (event, meta) in stream.events {
                sequence += 1;
                let payload = serde_json::value::to_raw_value(&event)
                    .map_err(|error| ExecuteError::Internal(format!("an event did not serialize: {error}")))?;
                // Consecutive events of one command share its metadata.
                if !metadata.last().is_some_and(|last| std::sync::Arc::ptr_eq(last, &meta)) {
                    metadata.push(meta);
                }
                let id = Uuid::now_v7();
                event_ids.push(id);
                rows.push((
                    appended.len(),
                    sequence as i64,
                    event.event_type(),
                    event.event_version(),
                    payload,
                    metadata.len() - 1,
                    id,
                ));
            }
            appended.push(Appended {
                stream_type: A::TYPE,
                stream_id: stream.id,
                sequence: sequence as i64,
                event_ids,
            });
        }
        for chunk in rows.chunks(CHUNK) {
            let mut append = crate::repository::AppendRows::with_capacity(chunk.len());
            for (stream, sequence, event_type, version, payload, meta, id) in chunk {
                append.push(
                    &appended[*stream].stream_id,
                    *sequence,
                    event_type,
                    version,
                    payload,
                    &metadata[*meta],
                    *id,
                );
            }
            let inserted = append
                .bind(crate::repository::APPEND_ROWS, A::TYPE)
                .execute(&mut *tx)
                .await;
            if let Err(error) = inserted {
                if let sqlx::Error::Database(database) = &error {
                    if database.code().as_deref() == Some(UNIQUE_VIOLATION) {
                        return Err(ExecuteError::Conflict);
                    }
                }
                return Err(ExecuteError::from_database(&error));
            }
        }
        Ok(appended)
    }
}

/// A directory that knows the activity ids a batch made up itself are new (UUID v7, made a
/// moment ago in this process), and asks `inner` everything else.
pub struct FreshActivities {
    pub inner: std::sync::Arc<dyn Directory>,
    pub fresh: std::sync::Mutex<std::collections::HashSet<Uuid>>,
}

impl FreshActivities {
    /// Marks `id` as new: the batch will log an activity under it.
    pub fn issue(&self, id: Uuid) -> Uuid {
        self.fresh
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id);
        id
    }
}

#[async_trait::async_trait]
impl Directory for FreshActivities {
    async fn csm_exists(&self, csm_id: Uuid) -> Result<bool, String> {
        self.inner.csm_exists(csm_id).await
    }

    async fn partner_exists(&self, partner_id: Uuid) -> Result<bool, String> {
        self.inner.partner_exists(partner_id).await
    }

    async fn alert_exists(&self, alert_id: Uuid) -> Result<bool, String> {
        self.inner.alert_exists(alert_id).await
    }

    async fn activity(&self, customer_id: Uuid, activity_id: Uuid) -> Result<Option<ActivityRecord>, String> {
        let fresh = self
            .fresh
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&activity_id);
        if fresh {
            return Ok(None);
        }
        self.inner.activity(customer_id, activity_id).await
    }

    async fn existing_activities(
        &self,
        customer_id: Uuid,
        activity_ids: &[Uuid],
    ) -> Result<std::collections::HashSet<Uuid>, String> {
        let unknown: Vec<Uuid> = {
            let fresh = self.fresh.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            activity_ids.iter().copied().filter(|id| !fresh.contains(id)).collect()
        };
        self.inner.existing_activities(customer_id, &unknown).await
    }
}

/// Answers cross-stream questions from the event store itself.
pub struct StoreDirectory(pub PgPool);

/// Whether stream `$2` of type `$1` exists: whether it holds a first event, read by its key in
/// every plan (`cstrack_stored_hash`, migration `stream_reads_per_statement`).
pub const STREAM_EXISTS: &str = "SELECT cstrack_stored_hash($1, $2, 1) IS NOT NULL";

impl StoreDirectory {
    async fn stream_exists(&self, stream_type: &str, id: Uuid) -> Result<bool, String> {
        sqlx::query_scalar(STREAM_EXISTS)
            .bind(stream_type)
            .bind(id.to_string())
            .fetch_one(&self.0)
            .await
            .map_err(|error| error.to_string())
    }
}

#[async_trait::async_trait]
impl Directory for StoreDirectory {
    async fn csm_exists(&self, csm_id: Uuid) -> Result<bool, String> {
        self.stream_exists(events::csm::CsmEvent::STREAM_TYPE, csm_id).await
    }

    async fn partner_exists(&self, partner_id: Uuid) -> Result<bool, String> {
        self.stream_exists(events::partner::PartnerEvent::STREAM_TYPE, partner_id)
            .await
    }

    async fn alert_exists(&self, alert_id: Uuid) -> Result<bool, String> {
        // Alerts are raised by the projection service into its `alerts` table.
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM alerts WHERE alert_id = $1)")
            .bind(alert_id)
            .fetch_one(&self.0)
            .await
            .map_err(|error| error.to_string())
    }

    async fn activity(&self, customer_id: Uuid, activity_id: Uuid) -> Result<Option<ActivityRecord>, String> {
        let retracted: Option<bool> =
            sqlx::query_scalar("SELECT retracted FROM activity_index WHERE customer_id = $1 AND activity_id = $2")
                .bind(customer_id.to_string())
                .bind(activity_id.to_string())
                .fetch_optional(&self.0)
                .await
                .map_err(|error| error.to_string())?;
        Ok(retracted.map(|retracted| ActivityRecord { retracted }))
    }

    async fn existing_activities(
        &self,
        customer_id: Uuid,
        activity_ids: &[Uuid],
    ) -> Result<std::collections::HashSet<Uuid>, String> {
        if activity_ids.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        let ids: Vec<String> = activity_ids.iter().map(Uuid::to_string).collect();
        let existing: Vec<String> = sqlx::query_scalar(
            "SELECT activity_id FROM activity_index WHERE customer_id = $1 AND activity_id = ANY($2)",
        )
        .bind(customer_id.to_string())
        .bind(&ids)
        .fetch_all(&self.0)
        .await
        .map_err(|error| error.to_string())?;
        Ok(existing.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unexpected(error: sqlx::Error) -> ExecuteError {
        ExecuteError::from(AggregateError::<CommandError>::UnexpectedError(Box::new(error)))
    }

    #[test]
    fn lost_connections_and_exhausted_pools_are_unavailable_not_internal() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        assert!(matches!(
            unexpected(sqlx::Error::Io(reset)),
            ExecuteError::Unavailable(_)
        ));
        assert!(matches!(
            unexpected(sqlx::Error::PoolTimedOut),
            ExecuteError::Unavailable(_)
        ));
        assert!(matches!(
            unexpected(sqlx::Error::PoolClosed),
            ExecuteError::Unavailable(_)
        ));
        assert!(matches!(
            unexpected(sqlx::Error::RowNotFound),
            ExecuteError::Internal(_)
        ));
    }
}
