//! Runs a command against the event store: load the aggregate (from its snapshot), let it decide,
//! append what it decided, and retry on a concurrent append to the same stream.

use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};
use events::metadata::CommandMetadata;
use postgres_es::PostgresEventRepository;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{CommandError, Directory};

/// Commands on one stream that lose the race to append are retried this many times in all.
const ATTEMPTS: u32 = 6;
/// A snapshot every this many events keeps loading cost flat however long a stream grows.
const SNAPSHOT_EVERY: usize = 50;

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
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    #[error("unexpected event store failure: {0}")]
    Internal(String),
}

impl From<AggregateError<CommandError>> for ExecuteError {
    fn from(error: AggregateError<CommandError>) -> Self {
        match error {
            AggregateError::UserError(rejection) => ExecuteError::Rejected(rejection),
            AggregateError::AggregateConflict => ExecuteError::Conflict,
            AggregateError::DatabaseConnectionError(error) => ExecuteError::Unavailable(error.to_string()),
            AggregateError::DeserializationError(error) | AggregateError::UnexpectedError(error) => {
                ExecuteError::Internal(error.to_string())
            }
        }
    }
}

/// The command side of one aggregate type.
pub struct CommandHandler<A: Aggregate> {
    pool: PgPool,
    store: PersistedEventStore<PostgresEventRepository, A>,
    services: A::Services,
}

impl<A> CommandHandler<A>
where
    A: Aggregate<Error = CommandError>,
    A::Command: Clone,
{
    pub fn new(pool: PgPool, services: A::Services) -> Self {
        let repository = PostgresEventRepository::new(pool.clone());
        CommandHandler {
            pool,
            store: PersistedEventStore::new_snapshot_store(repository, SNAPSHOT_EVERY),
            services,
        }
    }

    /// Executes `command` on stream `id`, retrying with jitter when another command appended to
    /// the same stream between our load and our append.
    #[tracing::instrument(name = "execute_command", skip_all, fields(stream_type = A::TYPE, stream_id = %id))]
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
    ) -> Result<Appended, ExecuteError> {
        let mut attempt = 1;
        loop {
            match self.try_execute(id, command.clone(), metadata).await {
                Err(ExecuteError::Conflict) if attempt < ATTEMPTS => {
                    let backoff = 5 * u64::from(attempt);
                    tokio::time::sleep(Duration::from_millis(backoff + fastrand::u64(0..=backoff * 2))).await;
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
        metadata: &CommandMetadata,
    ) -> Result<Appended, ExecuteError> {
        let mut context = self.store.load_aggregate(id).await?;
        let before = context.current_sequence;
        let sink = EventSink::default();
        context
            .aggregate()
            .handle(command, &self.services, &sink)
            .await
            .map_err(ExecuteError::Rejected)?;
        let events = sink.collect().await;
        let count = events.len();
        if count > 0 {
            self.store.commit(events, context, metadata.to_map()).await?;
        }
        let event_ids = self.event_ids(id, before, count).await?;
        Ok(Appended {
            stream_type: A::TYPE,
            stream_id: id.to_owned(),
            sequence: (before + count) as i64,
            event_ids,
        })
    }

    /// The store assigns event ids; read back the ones of the sequences just appended.
    async fn event_ids(&self, id: &str, before: usize, count: usize) -> Result<Vec<Uuid>, ExecuteError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        sqlx::query_scalar(
            "SELECT event_id FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 AND sequence <= $4
              ORDER BY sequence",
        )
        .bind(A::TYPE)
        .bind(id)
        .bind(before as i64)
        .bind((before + count) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| ExecuteError::Unavailable(error.to_string()))
    }
}

/// Answers cross-stream questions from the event store itself.
pub struct StoreDirectory(pub PgPool);

#[async_trait::async_trait]
impl Directory for StoreDirectory {
    async fn csm_exists(&self, csm_id: Uuid) -> Result<bool, String> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'Csm' AND aggregate_id = $1)")
            .bind(csm_id.to_string())
            .fetch_one(&self.0)
            .await
            .map_err(|error| error.to_string())
    }
}
