//! Consumes the partition queues and applies each delivery to every projector exactly once.
//!
//! One connection per process, one channel and consumer per partition queue; a partition's
//! deliveries are handled one after another, so a customer's events apply in order. The
//! deliveries that have arrived are applied to every projector in one transaction (each projector
//! with its own checkpoints), and acked only after it committed. Database outages are waited out without spending
//! the message's delivery budget; an event that fails to apply is requeued, and after
//! `DELIVERY_LIMIT` redeliveries (six deliveries in all) the broker moves it to the dead-letter queue. A broken broker
//! connection ends the session and the workers reconnect; unacked deliveries come back and are
//! skipped as duplicates where they had been applied.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use events::service::amqp;
use events::service::supervise::supervise;
use events::topology::Topology;
use events::EventEnvelope;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{FieldTable, ShortString};
use prometheus::{IntCounterVec, Opts, Registry};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::projector::{apply_batch_to_all, apply_once, Applied, Projector};
use crate::reconcile::ReconcileMetrics;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub amqp_url: String,
    pub topology: Topology,
    /// Deliveries in flight per partition.
    pub prefetch: u16,
    /// Most deliveries applied in one transaction (1: each on its own).
    pub apply_batch: u16,
    /// Longest wait, after a batch's first delivery, for more to join it.
    pub apply_linger: Duration,
    /// Pause between two reconciliations with the store (see [`crate::reconcile`]).
    pub reconcile_every: Duration,
}

#[derive(Clone)]
pub struct WorkerMetrics {
    applied: IntCounterVec,
    duplicates: IntCounterVec,
    gaps: IntCounterVec,
    failures: IntCounterVec,
}

impl WorkerMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounterVec> {
            let counter = IntCounterVec::new(Opts::new(name, help), &["projector"])?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        Ok(WorkerMetrics {
            applied: counter(
                "cstrack_projection_events_applied_total",
                "Events applied to a read model",
            )?,
            duplicates: counter(
                "cstrack_projection_duplicates_total",
                "Deliveries skipped as already applied",
            )?,
            gaps: counter(
                "cstrack_projection_gaps_filled_total",
                "Deliveries that found earlier events missing",
            )?,
            failures: counter(
                "cstrack_projection_failures_total",
                "Deliveries that failed to apply and were requeued",
            )?,
        })
    }
}

pub struct ProjectionWorkers {
    pool: PgPool,
    settings: WorkerSettings,
    projectors: Vec<Arc<dyn Projector>>,
    metrics: WorkerMetrics,
    reconcile_metrics: ReconcileMetrics,
    connected: Arc<AtomicBool>,
}

impl ProjectionWorkers {
    pub fn new(
        pool: PgPool,
        settings: WorkerSettings,
        projectors: Vec<Arc<dyn Projector>>,
        metrics: WorkerMetrics,
        reconcile_metrics: ReconcileMetrics,
    ) -> Self {
        ProjectionWorkers {
            pool,
            settings,
            projectors,
            metrics,
            reconcile_metrics,
            connected: Arc::new(AtomicBool::new(false)),
        }
    }

    /// True while every partition has a consumer.
    pub fn connected(&self) -> Arc<AtomicBool> {
        self.connected.clone()
    }

    /// Runs until `shutdown` turns true, reconnecting whenever the broker connection breaks.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        supervise(
            "projection",
            shutdown,
            || self.session(),
            || self.connected.store(false, Ordering::Relaxed),
        )
        .await;
    }

    /// One broker connection's worth of consuming; returns why it ended.
    async fn session(&self) -> anyhow::Error {
        let topology = &self.settings.topology;
        let connection =
            match amqp::connect(&self.settings.amqp_url, &format!("{}-projection", topology.prefix())).await {
                Ok(connection) => connection,
                Err(error) => return error.into(),
            };
        let mut partitions = JoinSet::new();
        let started: anyhow::Result<()> = async {
            amqp::declare_topology(&connection.create_channel().await?, topology).await?;
            let projectors: Arc<[Arc<dyn Projector>]> = self.projectors.clone().into();
            for partition in 0..topology.partitions() {
                let channel = connection.create_channel().await?;
                channel
                    .basic_qos(self.settings.prefetch, BasicQosOptions::default())
                    .await?;
                let consumer = subscribe(&channel, &topology.projection_queue(partition)).await?;
                let (pool, projectors, metrics) = (self.pool.clone(), projectors.clone(), self.metrics.clone());
                let batch = Batching {
                    most: usize::from(self.settings.apply_batch.clamp(1, self.settings.prefetch.max(1))),
                    linger: self.settings.apply_linger,
                };
                partitions.spawn(async move {
                    // The channel must live as long as its consumer.
                    let _channel = channel;
                    consume(pool, projectors, consumer, batch, metrics).await
                });
            }
            Ok(())
        }
        .await;
        let dead: anyhow::Result<()> = async {
            let channel = connection.create_channel().await?;
            let consumer = subscribe(&channel, &topology.dead_letter_queue()).await?;
            let (pool, topology, names) = (
                self.pool.clone(),
                topology.clone(),
                self.projectors.iter().map(|p| p.name()).collect::<Vec<_>>(),
            );
            partitions.spawn(async move {
                let _channel = channel;
                record_dead_letters(pool, topology, names, consumer).await
            });
            Ok(())
        }
        .await;
        let reconciling: anyhow::Result<()> = async {
            let channel = connection.create_channel().await?;
            partitions.spawn(crate::reconcile::run(
                self.pool.clone(),
                channel,
                topology.clone(),
                self.projectors.clone(),
                self.settings.reconcile_every,
                self.reconcile_metrics.clone(),
            ));
            Ok(())
        }
        .await;
        if let Err(error) = started.and(dead).and(reconciling) {
            return error;
        }
        self.connected.store(true, Ordering::Relaxed);
        tracing::info!(partitions = topology.partitions(), "projection workers consuming");
        // Any partition stopping means its channel or the connection broke: start over.
        let ended = partitions.join_next().await;
        partitions.abort_all();
        drop(connection.close(0, ShortString::from("reconnecting")).await);
        match ended {
            Some(Ok(error)) => error,
            Some(Err(join)) => anyhow!("partition task failed: {join}"),
            None => anyhow!("no partitions to consume"),
        }
    }
}

/// Consumes `queue` on `channel`, tagged with the queue and this process.
async fn subscribe(channel: &lapin::Channel, queue: &str) -> lapin::Result<lapin::Consumer> {
    channel
        .basic_consume(
            ShortString::from(queue),
            ShortString::from(format!("{queue}-{}", std::process::id())),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// How a partition's deliveries are gathered into one transaction.
#[derive(Debug, Clone, Copy)]
struct Batching {
    /// Most deliveries in one batch.
    most: usize,
    /// Longest wait, from a batch's first delivery, for the rest.
    linger: Duration,
}

/// Applies the partition's deliveries in batches gathered by [`gather`], each to every projector
/// in one transaction.
async fn consume(
    pool: PgPool,
    projectors: Arc<[Arc<dyn Projector>]>,
    consumer: lapin::Consumer,
    batching: Batching,
    metrics: WorkerMetrics,
) -> anyhow::Error {
    let mut consumer = consumer.fuse();
    loop {
        let deliveries = match gather(&mut consumer, batching).await {
            Some(Ok(deliveries)) => deliveries,
            Some(Err(error)) => return error.into(),
            None => return anyhow!("consumer was cancelled"),
        };
        if let Err(error) = handle_batch(&pool, &projectors, deliveries, &metrics).await {
            return error;
        }
    }
}

/// The next batch: from the first delivery, whatever arrives within the linger, up to `most`.
/// A backlog fills its batches at once; a trickle shares one transaction among the deliveries
/// of a few milliseconds instead of paying a transaction, a checkpoint per stream and an ack
/// for each (see `docs/ARCHITECTURE.md`, "Projection"). `None` once the stream has ended (it
/// must be fused: a batch cut short by the end is returned, and the next call polls again), an
/// error as soon as one arrives.
async fn gather<T, E>(
    arrivals: &mut (impl futures_util::Stream<Item = Result<T, E>> + Unpin),
    batching: Batching,
) -> Option<Result<Vec<T>, E>> {
    let mut batch = Vec::with_capacity(batching.most);
    match arrivals.next().await? {
        Ok(first) => batch.push(first),
        Err(error) => return Some(Err(error)),
    }
    // A deadline already passed still takes what has arrived: the timeout polls the stream
    // before its clock.
    let deadline = tokio::time::Instant::now() + batching.linger;
    while batch.len() < batching.most {
        match tokio::time::timeout_at(deadline, arrivals.next()).await {
            Ok(Some(Ok(next))) => batch.push(next),
            Ok(Some(Err(error))) => return Some(Err(error)),
            // Ended: what was gathered is applied; the next call says it ended.
            Ok(None) | Err(_) => break,
        }
    }
    Some(Ok(batch))
}

/// Applies several deliveries to every projector in one transaction (see
/// [`apply_batch_to_all`]). Anything but an unavailable database (an undecodable message, an
/// event that fails to apply) sends the batch down the one-by-one path, which dead-letters or
/// requeues exactly the delivery at fault.
async fn handle_batch(
    pool: &PgPool,
    projectors: &Arc<[Arc<dyn Projector>]>,
    deliveries: Vec<Delivery>,
    metrics: &WorkerMetrics,
) -> anyhow::Result<()> {
    let decoded: Result<Vec<EventEnvelope>, _> = deliveries
        .iter()
        .map(|delivery| serde_json::from_slice::<EventEnvelope>(&delivery.data))
        .collect();
    let Ok(envelopes) = decoded else {
        return one_by_one(pool, projectors, deliveries, metrics).await;
    };
    let envelopes = Arc::new(envelopes);
    let mut backoff = Duration::from_millis(100);
    let outcomes = loop {
        // In a task of its own, like a single delivery's transaction: never dropped half-way.
        let attempt = tokio::spawn({
            let (pool, projectors, envelopes) = (pool.clone(), projectors.clone(), envelopes.clone());
            async move { apply_batch_to_all(&pool, &projectors, &envelopes).await }
        });
        match attempt
            .await
            .map_err(|join| anyhow!("applying a batch panicked: {join}"))?
        {
            Ok(outcomes) => break outcomes,
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, "database unavailable; retrying the batch");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(error) => {
                tracing::info!(%error, "a batch failed; applying its deliveries one by one");
                return one_by_one(pool, projectors, deliveries, metrics).await;
            }
        }
    };
    for (projector, outcomes) in projectors.iter().zip(outcomes) {
        for outcome in outcomes {
            metrics.count(projector.name(), outcome);
        }
    }
    // One ack for the batch: every earlier delivery of this channel is in it or already settled.
    if let Some(last) = deliveries.last() {
        last.ack(BasicAckOptions { multiple: true }).await?;
    }
    Ok(())
}

impl WorkerMetrics {
    fn count(&self, projector: &str, outcome: Applied) {
        match outcome {
            Applied::Duplicate => self.duplicates.with_label_values(&[projector]).inc(),
            Applied::Applied { gap_filled } => {
                self.applied
                    .with_label_values(&[projector])
                    .inc_by(gap_filled as u64 + 1);
                if gap_filled > 0 {
                    self.gaps.with_label_values(&[projector]).inc();
                    tracing::info!(gap_filled, projector, "filled a gap from the store");
                }
            }
        }
    }
}

async fn one_by_one(
    pool: &PgPool,
    projectors: &Arc<[Arc<dyn Projector>]>,
    deliveries: Vec<Delivery>,
    metrics: &WorkerMetrics,
) -> anyhow::Result<()> {
    for delivery in deliveries {
        handle(pool, projectors, delivery, metrics).await?;
    }
    Ok(())
}

async fn handle(
    pool: &PgPool,
    projectors: &Arc<[Arc<dyn Projector>]>,
    delivery: Delivery,
    metrics: &WorkerMetrics,
) -> anyhow::Result<()> {
    let envelope: EventEnvelope = match serde_json::from_slice(&delivery.data) {
        Ok(envelope) => envelope,
        Err(error) => {
            // Not an event at all: no number of retries will help.
            for projector in projectors.iter() {
                metrics.failures.with_label_values(&[projector.name()]).inc();
            }
            tracing::error!(%error, "undecodable message dead-lettered");
            delivery
                .nack(BasicNackOptions {
                    requeue: false,
                    multiple: false,
                })
                .await?;
            return Ok(());
        }
    };
    let span = tracing::info_span!(
        "project",
        stream_id = %envelope.stream_id,
        sequence = envelope.sequence,
        event_id = %envelope.metadata.event_id
    );
    // The span is attached to the future, never entered across an await: a guard held over an
    // await leaves the span on the thread's stack while the task moves on, and the subscriber
    // panics when another task later finds the closed span there.
    applying(pool, projectors, delivery, envelope, metrics)
        .instrument(span)
        .await
}

/// Applies one delivery to each projector in a transaction of its own, so a projector that
/// cannot apply it does not hold back the others: the delivery is acked once every projector has
/// it, and requeued (to be skipped as a duplicate by those that applied it) otherwise.
async fn applying(
    pool: &PgPool,
    projectors: &Arc<[Arc<dyn Projector>]>,
    delivery: Delivery,
    envelope: EventEnvelope,
    metrics: &WorkerMetrics,
) -> anyhow::Result<()> {
    let envelope = Arc::new(envelope);
    let mut failed = false;
    for projector in projectors.iter() {
        let name = projector.name();
        let mut backoff = Duration::from_millis(100);
        loop {
            // The transaction runs in a task of its own, so that cancelling this consumer (its
            // session ending, the service stopping) never drops it half-way: it commits or rolls
            // back, and a delivery whose ack is lost comes back and is skipped as a duplicate.
            let attempt = tokio::spawn(
                {
                    let (pool, projector, envelope) = (pool.clone(), projector.clone(), envelope.clone());
                    async move { apply_once(&pool, projector.as_ref(), &envelope).await }
                }
                .in_current_span(),
            );
            let applied = attempt
                .await
                .map_err(|join| anyhow!("applying an event panicked: {join}"))?;
            match applied {
                Ok(outcome) => {
                    metrics.count(name, outcome);
                    break;
                }
                Err(error) if error.is_transient() => {
                    tracing::warn!(%error, projector = name, "database unavailable; retrying the delivery");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    metrics.failures.with_label_values(&[name]).inc();
                    tracing::error!(%error, projector = name, redelivered = delivery.redelivered, "event failed to apply; requeued");
                    failed = true;
                    break;
                }
            }
        }
    }
    if failed {
        delivery
            .nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            })
            .await?;
    } else {
        delivery.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}

/// Moves each dead-lettered delivery into `dead_letters` (acked once recorded), a row for each
/// projector it is dead to: from a partition queue, every projector whose checkpoint of the
/// stream stands below the event (all of them when the message is not an event); from a queue
/// of an earlier version, the projector that queue was for.
async fn record_dead_letters(
    pool: PgPool,
    topology: Topology,
    projectors: Vec<&'static str>,
    mut consumer: lapin::Consumer,
) -> anyhow::Error {
    while let Some(delivery) = consumer.next().await {
        let delivery = match delivery {
            Ok(delivery) => delivery,
            Err(error) => return error.into(),
        };
        let queue = dead_lettered_from(&delivery).unwrap_or_default();
        let envelope: Option<EventEnvelope> = serde_json::from_slice(&delivery.data).ok();
        let retired = projectors
            .iter()
            .find(|name| (0..topology.partitions()).any(|p| topology.retired_projector_queue(name, p) == queue));
        let candidates = retired.map_or(projectors.as_slice(), std::slice::from_ref);
        let recorded = record_dead_letter(&pool, candidates, &queue, envelope.as_ref(), &delivery.data).await;
        match recorded {
            Ok(dead_to) => {
                tracing::error!(?dead_to, %queue, "a dead-lettered delivery was recorded");
                if let Err(error) = delivery.ack(BasicAckOptions::default()).await {
                    return error.into();
                }
            }
            Err(error) => {
                tracing::warn!(%error, "recording a dead letter failed; it stays queued");
                if let Err(error) = delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        multiple: false,
                    })
                    .await
                {
                    return error.into();
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    anyhow!("dead-letter consumer was cancelled")
}

/// Records a dead letter for each of `projectors` that has not applied the event (each of them
/// when the body is not an event of the store); returns those projectors.
async fn record_dead_letter(
    pool: &PgPool,
    projectors: &[&str],
    queue: &str,
    envelope: Option<&EventEnvelope>,
    body: &[u8],
) -> Result<Vec<String>, sqlx::Error> {
    // An envelope names a stream only if the store holds that event at that position: a forged
    // or garbled one is kept as a message that is no event, which blocks no stream.
    sqlx::query_scalar(
        "WITH stored AS (
             SELECT EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = $3 AND e.aggregate_id = $4
                              AND e.sequence = $5 AND e.global_position = $6) AS genuine)
         INSERT INTO dead_letters (projector, queue, stream_type, stream_id, sequence, global_position, event_type, body)
         SELECT p, $2, CASE WHEN s.genuine THEN $3 END, CASE WHEN s.genuine THEN $4 END,
                CASE WHEN s.genuine THEN $5::bigint END, CASE WHEN s.genuine THEN $6::bigint END, $7, $8
           FROM UNNEST($1::text[]) AS p, stored s
          WHERE NOT s.genuine
             OR COALESCE((SELECT c.last_sequence FROM projector_checkpoints c
                           WHERE c.projector = p AND c.stream_type = $3 AND c.stream_id = $4), 0) < $5
         RETURNING projector",
    )
    .bind(projectors)
    .bind(queue)
    .bind(envelope.map(|e| e.stream_type.clone()))
    .bind(envelope.map(|e| e.stream_id.clone()))
    .bind(envelope.map(|e| e.sequence))
    .bind(envelope.map(|e| e.global_position))
    .bind(envelope.map(|e| e.event_type.clone()))
    .bind(body)
    .fetch_all(pool)
    .await
}

/// The queue a delivery was dead-lettered from (the first `x-death` entry's `queue`).
fn dead_lettered_from(delivery: &Delivery) -> Option<String> {
    use lapin::types::AMQPValue;
    let headers = delivery.properties.headers().as_ref()?;
    let AMQPValue::FieldArray(deaths) = headers.inner().get("x-death")? else {
        return None;
    };
    let AMQPValue::FieldTable(first) = deaths.as_slice().first()? else {
        return None;
    };
    match first.inner().get("queue")? {
        AMQPValue::LongString(queue) => Some(queue.to_string()),
        AMQPValue::ShortString(queue) => Some(queue.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::{Stream, StreamExt};
    use tokio::sync::mpsc;

    use super::{gather, Batching};

    /// A stream fed by the returned sender; it ends when the sender is dropped.
    fn arrivals() -> (
        mpsc::UnboundedSender<Result<u32, &'static str>>,
        impl Stream<Item = Result<u32, &'static str>> + Unpin,
    ) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        (sender, Box::pin(stream).fuse())
    }

    #[tokio::test]
    async fn deliveries_arriving_within_the_linger_share_one_batch() {
        let (sender, mut stream) = arrivals();
        let batching = Batching {
            most: 3,
            linger: Duration::from_secs(30),
        };
        let feeder = tokio::spawn(async move {
            for item in 1..=3 {
                sender.send(Ok(item)).unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sender.send(Ok(4)).unwrap();
        });
        // Full before the linger ends: handed over at once, not after 30 s.
        let first = tokio::time::timeout(Duration::from_secs(10), gather(&mut stream, batching)).await;
        assert_eq!(
            first.expect("a full batch does not wait out the linger"),
            Some(Ok(vec![1, 2, 3]))
        );
        feeder.await.unwrap();
        // The stream ended within the linger: what was gathered, then the end.
        assert_eq!(gather(&mut stream, batching).await, Some(Ok(vec![4])));
        assert_eq!(gather(&mut stream, batching).await, None);
    }

    #[tokio::test]
    async fn a_delivery_after_the_linger_starts_the_next_batch() {
        let (sender, mut stream) = arrivals();
        let batching = Batching {
            most: 256,
            linger: Duration::from_millis(20),
        };
        let feeder = tokio::spawn(async move {
            sender.send(Ok(1)).unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
            sender.send(Ok(2)).unwrap();
            sender
        });
        assert_eq!(gather(&mut stream, batching).await, Some(Ok(vec![1])));
        assert_eq!(gather(&mut stream, batching).await, Some(Ok(vec![2])));
        drop(feeder.await.unwrap());
        assert_eq!(gather(&mut stream, batching).await, None);
    }

    #[tokio::test]
    async fn without_a_linger_what_has_arrived_is_taken_up_to_the_most() {
        let (sender, mut stream) = arrivals();
        for item in 1..=5 {
            sender.send(Ok(item)).unwrap();
        }
        let batching = Batching {
            most: 3,
            linger: Duration::ZERO,
        };
        assert_eq!(gather(&mut stream, batching).await, Some(Ok(vec![1, 2, 3])));
        assert_eq!(gather(&mut stream, batching).await, Some(Ok(vec![4, 5])));
        sender.send(Ok(6)).unwrap();
        sender.send(Err("connection closed")).unwrap();
        // A broken consumer ends the batch with its error, not with what came before it.
        assert_eq!(gather(&mut stream, batching).await, Some(Err("connection closed")));
    }
}
