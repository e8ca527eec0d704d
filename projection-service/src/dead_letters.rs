//! Dead letters: deliveries the broker gave up on, kept in `dead_letters` until their cause is
//! fixed (a new version that can decode the event, a repaired dependency) and they are replayed.
//!
//! Replaying applies a blocked stream from the store, not the stored message: the projector's
//! checkpoint says where the stream stopped, and `apply_once` fills everything from there up to the
//! stream's head in order, exactly once. A dead letter whose stream has since moved past it is
//! simply marked replayed; one that still fails keeps its error for the next attempt.

use std::sync::Arc;

use events::service::store::stream_range;
use sqlx::PgPool;

use crate::projector::{apply_once, Projector};

/// One dead letter as operators list it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeadLetter {
    pub dead_letter_id: i64,
    pub projector: String,
    pub stream_type: Option<String>,
    pub stream_id: Option<String>,
    pub sequence: Option<i64>,
    pub event_type: Option<String>,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    pub replayed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub replay_error: Option<String>,
}

/// Every dead letter, oldest first; with `open_only`, those not replayed yet.
pub async fn list(pool: &PgPool, open_only: bool) -> Result<Vec<DeadLetter>, sqlx::Error> {
    sqlx::query_as(
        "SELECT dead_letter_id, projector, stream_type, stream_id, sequence, event_type, recorded_at,
                replayed_at, replay_error
           FROM dead_letters WHERE NOT $1 OR replayed_at IS NULL ORDER BY dead_letter_id",
    )
    .bind(open_only)
    .fetch_all(pool)
    .await
}

/// What a replay did, per blocked stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// Streams applied up to their head.
    pub streams: usize,
    /// Events applied while doing so.
    pub events: usize,
    /// Streams that still fail, with the error.
    pub failed: Vec<(String, String, String)>,
    /// Dead letters that are not events of the store (unreadable, or naming an event the store
    /// does not hold): nothing to replay, so the replay closes them (their bodies stay listed).
    pub not_events: usize,
}

/// Replays every open dead letter of `projectors`.
pub async fn replay(pool: &PgPool, projectors: &[Arc<dyn Projector>]) -> anyhow::Result<Replayed> {
    let open = list(pool, true).await?;
    let mut report = Replayed {
        not_events: open.iter().filter(|letter| letter.stream_id.is_none()).count(),
        ..Replayed::default()
    };
    let mut streams: Vec<(String, String, String)> = open
        .into_iter()
        .filter_map(|letter| Some((letter.projector, letter.stream_type?, letter.stream_id?)))
        .collect();
    streams.sort();
    streams.dedup();
    sqlx::query(
        "UPDATE dead_letters SET replayed_at = now(), replay_error = NULL
          WHERE stream_id IS NULL AND replayed_at IS NULL",
    )
    .execute(pool)
    .await?;
    for (name, stream_type, stream_id) in streams {
        let Some(projector) = projectors.iter().find(|p| p.name() == name) else {
            continue;
        };
        match replay_stream(pool, projector.as_ref(), &stream_type, &stream_id).await {
            Ok(applied) => {
                report.streams += 1;
                report.events += applied;
                sqlx::query(
                    "UPDATE dead_letters SET replayed_at = now(), replay_error = NULL
                      WHERE projector = $1 AND stream_type = $2 AND stream_id = $3 AND replayed_at IS NULL",
                )
                .bind(&name)
                .bind(&stream_type)
                .bind(&stream_id)
                .execute(pool)
                .await?;
            }
            Err(error) => {
                let error = error.to_string();
                sqlx::query(
                    "UPDATE dead_letters SET replay_error = $4
                      WHERE projector = $1 AND stream_type = $2 AND stream_id = $3 AND replayed_at IS NULL",
                )
                .bind(&name)
                .bind(&stream_type)
                .bind(&stream_id)
                .bind(&error)
                .execute(pool)
                .await?;
                report.failed.push((name, stream_id, error));
            }
        }
    }
    Ok(report)
}

/// Applies a stream from its checkpoint to its head; returns the events applied.
pub(crate) async fn replay_stream(
    pool: &PgPool,
    projector: &dyn Projector,
    stream_type: &str,
    stream_id: &str,
) -> Result<usize, crate::projector::ProjectionError> {
    let checkpoint: i64 = sqlx::query_scalar(
        "SELECT COALESCE((SELECT last_sequence FROM projector_checkpoints
                           WHERE projector = $1 AND stream_type = $2 AND stream_id = $3), 0)",
    )
    .bind(projector.name())
    .bind(stream_type)
    .bind(stream_id)
    .fetch_one(pool)
    .await?;
    let head: i64 = sqlx::query_scalar(
        "SELECT COALESCE((SELECT sequence FROM stream_heads WHERE aggregate_type = $1 AND aggregate_id = $2), 0)",
    )
    .bind(stream_type)
    .bind(stream_id)
    .fetch_one(pool)
    .await?;
    if head <= checkpoint {
        return Ok(0);
    }
    // The head event alone: apply_once fills everything before it from the store, in order.
    let last = stream_range(pool, stream_type, stream_id, head - 1, head).await?;
    let Some(last) = last.into_iter().next() else {
        return Ok(0);
    };
    match apply_once(pool, projector, &last).await? {
        crate::projector::Applied::Applied { gap_filled } => Ok(gap_filled + 1),
        crate::projector::Applied::Duplicate => Ok(0),
    }
}
