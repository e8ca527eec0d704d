//! A projector added to an existing store never received the events published before its queues
//! existed. On start, a projector without any checkpoint reads the store itself, in global
//! position order, applying each event exactly once; live deliveries may run alongside, since
//! applying is idempotent and fills gaps from the store.

use events::service::store::{StoredEvent, COLUMNS};
use sqlx::PgPool;

use crate::projector::{apply_once, Projector};

const BATCH: i64 = 1000;

/// Replays the whole store into `projector` if it has never applied anything. Returns the events read.
pub async fn backfill_if_new(pool: &PgPool, projector: &dyn Projector) -> anyhow::Result<u64> {
    let started: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM projector_checkpoints WHERE projector = $1)")
        .bind(projector.name())
        .fetch_one(pool)
        .await?;
    if started {
        return Ok(0);
    }
    let mut position = 0_i64;
    let mut read = 0_u64;
    loop {
        let batch: Vec<StoredEvent> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2"
        ))
        .bind(position)
        .bind(BATCH)
        .fetch_all(pool)
        .await?;
        let Some(last) = batch.last() else { break };
        position = last.global_position;
        for row in batch {
            apply_once(pool, projector, &row.into_envelope()).await?;
            read += 1;
        }
    }
    if read > 0 {
        tracing::info!(
            projector = projector.name(),
            events = read,
            "backfilled a new projector from the store"
        );
    }
    Ok(read)
}
