//! What every projector shares: applying one delivered event exactly once, with its checkpoint,
//! in one transaction.

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
/// is skipped by its checkpoint. Each stream's checkpoint is locked once when the batch first
/// meets the stream and written once at the end, and each stream changed is announced once: one
/// commit, one status update and one flush to disk for the whole batch instead of one per
/// event; all or nothing.
pub async fn apply_batch(
    pool: &PgPool,
    projector: &dyn Projector,
    events: &[EventEnvelope],
) -> Result<Vec<Applied>, ProjectionError> {
    let name = projector.name();
    let mut tx = pool.begin().await?;
    let mut outcomes = Vec::with_capacity(events.len());
    let mut applied = 0_i64;
    let mut last: Option<&EventEnvelope> = None;
    // Per stream: where its checkpoint stood, where the batch has taken it, its latest event.
    let mut streams: Vec<(&str, &str, i64, i64, &EventEnvelope)> = Vec::new();
    for event in events {
        let index = match streams
            .iter()
            .position(|(kind, id, ..)| *kind == event.stream_type && *id == event.stream_id)
        {
            Some(index) => index,
            None => {
                // Creates the checkpoint when the stream is new and locks it either way.
                let checkpoint: i64 = sqlx::query_scalar(
                    "INSERT INTO projector_checkpoints (projector, stream_type, stream_id, last_sequence)
                     VALUES ($1, $2, $3, 0)
                     ON CONFLICT (projector, stream_type, stream_id)
                     DO UPDATE SET last_sequence = projector_checkpoints.last_sequence
                     RETURNING last_sequence",
                )
                .bind(name)
                .bind(&event.stream_type)
                .bind(&event.stream_id)
                .fetch_one(&mut *tx)
                .await?;
                streams.push((&event.stream_type, &event.stream_id, checkpoint, checkpoint, event));
                streams.len() - 1
            }
        };
        let stream = &mut streams[index];
        let outcome = apply_after(&mut tx, projector, event, stream.3).await?;
        if let Applied::Applied { gap_filled } = outcome {
            applied += gap_filled as i64 + 1;
            stream.3 = event.sequence;
            stream.4 = event;
            if last.is_none_or(|last| last.global_position < event.global_position) {
                last = Some(event);
            }
        }
        outcomes.push(outcome);
    }
    let Some(last) = last else {
        tx.rollback().await?;
        return Ok(outcomes);
    };
    for (stream_type, stream_id, before, after, latest) in &streams {
        if after == before {
            continue;
        }
        sqlx::query(
            "UPDATE projector_checkpoints SET last_sequence = $4
              WHERE projector = $1 AND stream_type = $2 AND stream_id = $3",
        )
        .bind(name)
        .bind(stream_type)
        .bind(stream_id)
        .bind(after)
        .execute(&mut *tx)
        .await?;
        // Delivered to live readers (GraphQL subscriptions) when, and only if, this commits.
        events::service::changes::Change::Applied {
            projector: name.to_owned(),
            stream_type: latest.stream_type.clone(),
            stream_id: latest.stream_id.clone(),
            event_type: latest.event_type.clone(),
            global_position: latest.global_position,
        }
        .notify(&mut tx)
        .await?;
    }
    sqlx::query(RECORD_STATUS)
        .bind(name)
        .bind(last.global_position)
        .bind(applied)
        .bind(last.metadata.recorded_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Applies one event of a stream whose checkpoint (locked by the caller) stands at `last`,
/// inside the caller's transaction: a duplicate at or below it is skipped, events missing
/// between it and the event are read from the store and applied first.
async fn apply_after(
    tx: &mut PgConnection,
    projector: &dyn Projector,
    event: &EventEnvelope,
    last: i64,
) -> Result<Applied, ProjectionError> {
    if event.sequence <= last {
        return Ok(Applied::Duplicate);
    }
    let missing = if event.sequence > last + 1 {
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
        missing
    } else {
        Vec::new()
    };
    for earlier in &missing {
        projector.apply(&mut *tx, earlier).await?;
    }
    projector.apply(&mut *tx, event).await?;
    Ok(Applied::Applied {
        gap_filled: missing.len(),
    })
}
