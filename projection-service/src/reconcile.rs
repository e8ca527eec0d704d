//! The store is the truth; the broker only carries it. A message the broker confirmed to the
//! relay and then never delivered would leave a stream behind until its next event arrives (and
//! fills the gap from the store), or for ever if none does. Every so often, when the partition
//! queues hold nothing, each stream whose events were all relayed but whose checkpoint stands
//! below its head is brought up to its head from the store, exactly once, as a dead letter's
//! replay does. Streams with an open dead letter are left to the operator.

use std::sync::Arc;
use std::time::Duration;

use events::topology::Topology;
use lapin::options::QueueDeclareOptions;
use lapin::types::{FieldTable, ShortString};
use prometheus::{IntCounterVec, Opts, Registry};
use sqlx::PgPool;

use crate::dead_letters::replay_stream;
use crate::projector::Projector;

/// Most streams brought up to date in one pass, per projector.
const PASS: i64 = 1000;

#[derive(Clone)]
pub struct ReconcileMetrics {
    recovered: IntCounterVec,
}

impl ReconcileMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let recovered = IntCounterVec::new(
            Opts::new(
                "cstrack_projection_recovered_from_store_total",
                "Events applied from the store because their delivery never came",
            ),
            &["projector"],
        )?;
        registry.register(Box::new(recovered.clone()))?;
        Ok(ReconcileMetrics { recovered })
    }
}

/// Every `every`, reconciles each projector while the partition queues are empty. Returns only when the
/// broker channel fails (the session then starts over).
pub async fn run(
    pool: PgPool,
    channel: lapin::Channel,
    topology: Topology,
    projectors: Vec<Arc<dyn Projector>>,
    every: Duration,
    metrics: ReconcileMetrics,
) -> anyhow::Error {
    // Streams found behind at the last pass, with the checkpoint they stood at: a stream is
    // brought up from the store only when it is behind at two passes in a row without moving,
    // so a delivery in flight (taken from the queue, not yet applied) is never mistaken for a
    // lost one.
    let mut suspects: Suspects = Suspects::new();
    loop {
        tokio::time::sleep(every).await;
        let mut waiting = 0;
        for partition in 0..topology.partitions() {
            let queue = match channel
                .queue_declare(
                    ShortString::from(topology.projection_queue(partition)),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
            {
                Ok(queue) => queue,
                Err(error) => return error.into(),
            };
            waiting += queue.message_count();
        }
        if waiting > 0 {
            continue;
        }
        for projector in &projectors {
            match reconcile(&pool, projector.as_ref(), &mut suspects).await {
                Ok(0) => {}
                Ok(recovered) => {
                    metrics
                        .recovered
                        .with_label_values(&[projector.name()])
                        .inc_by(recovered as u64);
                    tracing::warn!(
                        projector = projector.name(),
                        recovered,
                        "applied events from the store whose deliveries never came"
                    );
                }
                Err(error) => {
                    tracing::warn!(
                        projector = projector.name(),
                        error = format!("{error:#}"),
                        "reconciling failed"
                    )
                }
            }
        }
    }
}

/// (projector, stream type, stream id) -> the checkpoint the stream stood at when found behind.
pub type Suspects = std::collections::HashMap<(String, String, String), i64>;

/// Brings every stream the relay has published in full, and `projector` has not applied in
/// full, up to its head, if it was behind at the same checkpoint at the previous pass too
/// (`suspects`, updated here); returns the events applied.
pub async fn reconcile(pool: &PgPool, projector: &dyn Projector, suspects: &mut Suspects) -> anyhow::Result<usize> {
    let behind: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT h.aggregate_type, h.aggregate_id, COALESCE(c.last_sequence, 0)
           FROM stream_heads h
           JOIN events e ON e.aggregate_type = h.aggregate_type AND e.aggregate_id = h.aggregate_id
                        AND e.sequence = h.sequence
           JOIN relay_cursor r ON r.relay = 'main'
           LEFT JOIN projector_checkpoints c ON c.projector = $1 AND c.stream_type = h.aggregate_type
                                             AND c.stream_id = h.aggregate_id
          WHERE COALESCE(c.last_sequence, 0) < h.sequence
            AND (e.tx_id, e.global_position) <= (r.tx_id, r.global_position)
            AND NOT EXISTS (SELECT 1 FROM dead_letters d
                             WHERE d.projector = $1 AND d.stream_type = h.aggregate_type
                               AND d.stream_id = h.aggregate_id AND d.replayed_at IS NULL)
          LIMIT $2",
    )
    .bind(projector.name())
    .bind(PASS)
    .fetch_all(pool)
    .await?;
    let name = projector.name().to_owned();
    let mut previous = Suspects::new();
    suspects.retain(|key, checkpoint| {
        let mine = key.0 == name;
        if mine {
            previous.insert(key.clone(), *checkpoint);
        }
        !mine
    });
    let mut recovered = 0;
    for (stream_type, stream_id, checkpoint) in behind {
        let key = (name.clone(), stream_type.clone(), stream_id.clone());
        if previous.get(&key) != Some(&checkpoint) {
            // Behind for the first time, or it moved since: look again at the next pass.
            suspects.insert(key, checkpoint);
            continue;
        }
        match replay_stream(pool, projector, &stream_type, &stream_id).await {
            Ok(applied) => recovered += applied,
            Err(error) => tracing::warn!(
                projector = projector.name(),
                stream_type,
                stream_id,
                %error,
                "a stream behind its head could not be brought up to date from the store"
            ),
        }
    }
    Ok(recovered)
}
