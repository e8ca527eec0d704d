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
    let name = projector.name();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO projector_checkpoints (projector, stream_type, stream_id, last_sequence)
         VALUES ($1, $2, $3, 0) ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .bind(&event.stream_type)
    .bind(&event.stream_id)
    .execute(&mut *tx)
    .await?;
    let last: i64 = sqlx::query_scalar(
        "SELECT last_sequence FROM projector_checkpoints
          WHERE projector = $1 AND stream_type = $2 AND stream_id = $3 FOR UPDATE",
    )
    .bind(name)
    .bind(&event.stream_type)
    .bind(&event.stream_id)
    .fetch_one(&mut *tx)
    .await?;
    if event.sequence <= last {
        tx.rollback().await?;
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
        projector.apply(&mut tx, earlier).await?;
    }
    projector.apply(&mut tx, event).await?;

    sqlx::query(
        "UPDATE projector_checkpoints SET last_sequence = $4
          WHERE projector = $1 AND stream_type = $2 AND stream_id = $3",
    )
    .bind(name)
    .bind(&event.stream_type)
    .bind(&event.stream_id)
    .bind(event.sequence)
    .execute(&mut *tx)
    .await?;
    sqlx::query(RECORD_STATUS)
        .bind(name)
        .bind(event.global_position)
        .bind(missing.len() as i64 + 1)
        .bind(event.metadata.recorded_at)
        .execute(&mut *tx)
        .await?;
    // Delivered to live readers (GraphQL subscriptions) when, and only if, this commits.
    events::service::changes::Change::Applied {
        projector: name.to_owned(),
        stream_type: event.stream_type.clone(),
        stream_id: event.stream_id.clone(),
        event_type: event.event_type.clone(),
        global_position: event.global_position,
    }
    .notify(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(Applied::Applied {
        gap_filled: missing.len(),
    })
}
