//! What every projector shares: applying one delivered event exactly once, with its checkpoint,
//! in one transaction.

use std::sync::Arc;

use events::service::store::stream_range;
use events::EventEnvelope;
use sqlx::{PgConnection, PgPool};

/// Folds events into one read model.
#[async_trait::async_trait]
pub trait Projector: Send + Sync + 'static {
    /// Stable name: the queue suffix and the checkpoint key.
    fn name(&self) -> &'static str;

    /// The tables this projector alone writes (its read model and its report memo): what a
    /// rebuild builds beside the live ones and switches.
    fn tables(&self) -> &'static [&'static str];

    /// An empty in-memory copy of the read model, to fold many events into at once (rebuilds).
    fn fold(&self) -> Box<dyn crate::bulk::Fold>;

    /// Other projectors whose tables this one's queries read: a rebuild of this one rebuilds
    /// them too, so that a snapshot holds every row its reports read.
    fn reads(&self) -> &'static [&'static str] {
        &[]
    }

    /// Statements (re)creating, in `schema`, the views this projector's queries read over the
    /// tables of the projectors it [`reads`](Projector::reads): run once those tables are there,
    /// and again whenever they are replaced.
    fn views(&self, _schema: &str) -> Vec<String> {
        Vec::new()
    }

    /// Applies one event inside the caller's transaction.
    async fn apply(&self, db: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError>;

    /// Applies `events` in order inside the caller's transaction, as [`apply`](Projector::apply)
    /// would one after another. A projector may write a run of like events with one statement.
    async fn apply_all(&self, db: &mut PgConnection, events: &[&EventEnvelope]) -> Result<(), ProjectionError> {
        for event in events {
            self.apply(&mut *db, event).await?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The event cannot be applied as it is; retrying it elsewhere will not help.
    #[error("cannot apply event: {0}")]
    Poison(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ProjectionError {
    /// A failure of the database itself (connection, pool, serialization) rather than of the
    /// event: wait and retry without spending the message's delivery budget.
    pub fn is_transient(&self) -> bool {
        match self {
            ProjectionError::Poison(_) => false,
            ProjectionError::Database(error) => events::service::store::is_unavailable(error),
        }
    }
}

impl From<serde_json::Error> for ProjectionError {
    fn from(error: serde_json::Error) -> Self {
        ProjectionError::Poison(error.to_string())
    }
}

/// Adds applied events to a projector's status: ($1 projector, $2 last global position,
/// $3 events applied, $4 last recorded_at).
pub const RECORD_STATUS: &str =
    "INSERT INTO projector_status (projector, last_global_position, events_applied, last_recorded_at, updated_at)
         VALUES ($1, $2, $3, $4, now())
         ON CONFLICT (projector) DO UPDATE SET
             last_global_position = GREATEST(projector_status.last_global_position, EXCLUDED.last_global_position),
             events_applied = projector_status.events_applied + EXCLUDED.events_applied,
             last_recorded_at = GREATEST(projector_status.last_recorded_at, EXCLUDED.last_recorded_at),
             updated_at = now()";

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied, with this many earlier events of the stream filled in from the store first.
    Applied { gap_filled: usize },
    /// At or below the stream's checkpoint: a redelivery or a duplicate publish.
    Duplicate,
}

/// Applies `event` exactly once: skipped when its stream's checkpoint is already at or past it;
/// when events of the stream are missing before it, they are read from the store and applied
/// first. The event, the checkpoint and the projector's status commit together.
pub async fn apply_once(
    pool: &PgPool,
    projector: &dyn Projector,
    event: &EventEnvelope,
) -> Result<Applied, ProjectionError> {
    let mut applied = apply_batch(pool, projector, std::slice::from_ref(event)).await?;
    Ok(applied.pop().unwrap_or(Applied::Duplicate))
}

/// Applies `events` (deliveries of one queue, in the order delivered) in one transaction, each
/// exactly once as [`apply_once`] would: a stream's events stay in order and a redelivered one
/// is skipped by its checkpoint. The batch costs a fixed number of statements beside the
/// projector's own: every stream's checkpoint is created where new and locked with one
/// statement, the events (with any gap filled in from the store before them) are handed to
/// [`Projector::apply_all`] in order, the checkpoints moved are written with one statement and
/// announced with one; one status update and one commit for the whole batch; all or nothing.
pub async fn apply_batch(
    pool: &PgPool,
    projector: &dyn Projector,
    events: &[EventEnvelope],
) -> Result<Vec<Applied>, ProjectionError> {
    let mut tx = pool.begin().await?;
    let outcomes = apply_within(&mut tx, projector, events).await?;
    settle(tx, [&outcomes]).await?;
    Ok(outcomes)
}

/// Applies `events` to every one of `projectors` in one transaction, each as [`apply_batch`]
/// would (its own checkpoints, status and notifications): the outcomes per projector, in the
/// order given; all or nothing.
pub async fn apply_batch_to_all(
    pool: &PgPool,
    projectors: &[Arc<dyn Projector>],
    events: &[EventEnvelope],
) -> Result<Vec<Vec<Applied>>, ProjectionError> {
    let mut tx = pool.begin().await?;
    let mut outcomes = Vec::with_capacity(projectors.len());
    for projector in projectors {
        outcomes.push(apply_within(&mut tx, projector.as_ref(), events).await?);
    }
    settle(tx, &outcomes).await?;
    Ok(outcomes)
}

/// Commits a batch's transaction, or rolls it back when every delivery was a duplicate (it then
/// only locked checkpoints).
async fn settle<'a>(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    outcomes: impl IntoIterator<Item = &'a Vec<Applied>>,
) -> Result<(), sqlx::Error> {
    let applied = outcomes
        .into_iter()
        .flatten()
        .any(|outcome| matches!(outcome, Applied::Applied { .. }));
    if applied {
        tx.commit().await
    } else {
        tx.rollback().await
    }
}

/// [`apply_batch`] inside the caller's transaction.
async fn apply_within(
    tx: &mut PgConnection,
    projector: &dyn Projector,
    events: &[EventEnvelope],
) -> Result<Vec<Applied>, ProjectionError> {
    let name = projector.name();
    let mut streams = lock_checkpoints(&mut *tx, name, events).await?;
    let mut outcomes = Vec::with_capacity(events.len());
    let mut missing = Vec::new();
    // Indexes into `missing` (gap fills) or `events`, in the order they are to be applied.
    let mut order: Vec<Result<usize, usize>> = Vec::with_capacity(events.len());
    let mut last: Option<&EventEnvelope> = None;
    for (index, event) in events.iter().enumerate() {
        let stream = streams
            .iter_mut()
            .find(|stream| stream.stream_type == event.stream_type && stream.stream_id == event.stream_id)
            .expect("every stream of the batch has its checkpoint");
        let outcome = match gap_before(&mut *tx, event, stream.after).await? {
            None => Applied::Duplicate,
            Some(filled) => {
                let gap_filled = filled.len();
                order.extend((missing.len()..missing.len() + gap_filled).map(Ok));
                missing.extend(filled);
                order.push(Err(index));
                stream.after = event.sequence;
                stream.latest = Some(index);
                if last.is_none_or(|last| last.global_position < event.global_position) {
                    last = Some(event);
                }
                Applied::Applied { gap_filled }
            }
        };
        outcomes.push(outcome);
    }
    let Some(last) = last else {
        return Ok(outcomes);
    };
    let ordered: Vec<&EventEnvelope> = order
        .iter()
        .map(|at| match *at {
            Ok(filled) => &missing[filled],
            Err(delivered) => &events[delivered],
        })
        .collect();
    projector.apply_all(&mut *tx, &ordered).await?;
    let moved: Vec<(&StreamCheckpoint, &EventEnvelope)> = streams
        .iter()
        .filter_map(|stream| Some((stream, &events[stream.latest?])))
        .collect();
    // Written as an upsert of rows known to exist: each is found by its key, however many
    // checkpoints the projector has and whatever the statistics say.
    sqlx::query(
        "INSERT INTO projector_checkpoints (projector, stream_type, stream_id, last_sequence)
         SELECT $1, m.stream_type, m.stream_id, m.last_sequence
           FROM UNNEST($2::text[], $3::text[], $4::bigint[]) AS m(stream_type, stream_id, last_sequence)
         ON CONFLICT (projector, stream_type, stream_id) DO UPDATE SET last_sequence = EXCLUDED.last_sequence",
    )
    .bind(name)
    .bind(
        moved
            .iter()
            .map(|(stream, _)| stream.stream_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        moved
            .iter()
            .map(|(stream, _)| stream.stream_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(moved.iter().map(|(stream, _)| stream.after).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    // Delivered to live readers (GraphQL subscriptions) when, and only if, this commits.
    let changes = moved
        .iter()
        .map(|(_, latest)| events::service::changes::Change::Applied {
            projector: name.to_owned(),
            stream_type: latest.stream_type.clone(),
            stream_id: latest.stream_id.clone(),
            event_type: latest.event_type.clone(),
            global_position: latest.global_position,
        });
    events::service::changes::Change::notify_all(&mut *tx, changes).await?;
    let applied: usize = outcomes
        .iter()
        .map(|outcome| match outcome {
            Applied::Applied { gap_filled } => gap_filled + 1,
            Applied::Duplicate => 0,
        })
        .sum();
    sqlx::query(RECORD_STATUS)
        .bind(name)
        .bind(last.global_position)
        .bind(applied as i64)
        .bind(last.metadata.recorded_at)
        .execute(&mut *tx)
        .await?;
    Ok(outcomes)
}

/// A stream's checkpoint while a batch is applied: where it stood, where the batch has taken it,
/// and the batch's latest event of the stream.
struct StreamCheckpoint {
    stream_type: String,
    stream_id: String,
    after: i64,
    latest: Option<usize>,
}

/// Creates the checkpoint of every stream of `events` that has none and locks them all, with
/// one statement. The streams are locked in one order (sorted), so two batches sharing streams
/// (a backfill beside live deliveries) wait for each other instead of deadlocking.
async fn lock_checkpoints(
    tx: &mut PgConnection,
    projector: &str,
    events: &[EventEnvelope],
) -> Result<Vec<StreamCheckpoint>, sqlx::Error> {
    let mut streams: Vec<(&str, &str)> = Vec::new();
    for event in events {
        let stream = (event.stream_type.as_str(), event.stream_id.as_str());
        if !streams.contains(&stream) {
            streams.push(stream);
        }
    }
    streams.sort_unstable();
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "INSERT INTO projector_checkpoints (projector, stream_type, stream_id, last_sequence)
         SELECT $1, s.stream_type, s.stream_id, 0 FROM UNNEST($2::text[], $3::text[]) AS s(stream_type, stream_id)
         ON CONFLICT (projector, stream_type, stream_id)
         DO UPDATE SET last_sequence = projector_checkpoints.last_sequence
         RETURNING stream_type, stream_id, last_sequence",
    )
    .bind(projector)
    .bind(streams.iter().map(|(kind, _)| *kind).collect::<Vec<_>>())
    .bind(streams.iter().map(|(_, id)| *id).collect::<Vec<_>>())
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(stream_type, stream_id, last_sequence)| StreamCheckpoint {
            stream_type,
            stream_id,
            after: last_sequence,
            latest: None,
        })
        .collect())
}

/// Whether `event` is to be applied to a stream whose checkpoint (locked by the caller) stands
/// at `last`: `None` for a duplicate at or below it, otherwise the events missing between it and
/// the event, read from the store, to be applied first.
async fn gap_before(
    tx: &mut PgConnection,
    event: &EventEnvelope,
    last: i64,
) -> Result<Option<Vec<EventEnvelope>>, ProjectionError> {
    if event.sequence <= last {
        return Ok(None);
    }
    if event.sequence == last + 1 {
        return Ok(Some(Vec::new()));
    }
    let missing = stream_range(&mut *tx, &event.stream_type, &event.stream_id, last, event.sequence - 1).await?;
    if missing.len() as i64 != event.sequence - 1 - last {
        return Err(ProjectionError::Poison(format!(
            "stream {} has {} stored events between {last} and {}, expected {}",
            event.stream_id,
            missing.len(),
            event.sequence,
            event.sequence - 1 - last
        )));
    }
    Ok(Some(missing))
}
