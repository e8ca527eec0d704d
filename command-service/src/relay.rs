//! The relay: publishes the event store to RabbitMQ in commit order, never losing or skipping an
//! event.
//!
//! - It reads in `(tx_id, global_position)` order and only rows whose transaction id is below
//!   `pg_snapshot_xmin(pg_current_snapshot())`: every transaction below that horizon has finished,
//!   so no row can still appear behind the cursor. (An identity cursor alone skips the rows of a
//!   transaction that took its position early and committed late.)
//! - One relay publishes at a time: the active one holds a session advisory lock on the
//!   connection it reads and writes through; standby replicas retry the lock.
//! - Every message is published `mandatory` with publisher confirms; an unroutable return or a
//!   nack fails the batch, and the cursor moves only after every message of the batch (and of
//!   every batch before it) is confirmed. The next batch is read and published while the last
//!   one's confirms are on their way: at most two batches are unconfirmed. A crash in between
//!   republishes, and the projectors skip what they already have.
//! - A broken database or broker connection ends the session; the relay reconnects with backoff
//!   and carries on from its stored cursor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use events::service::amqp;
use events::service::store::{StoredEvent, COLUMNS};
use events::service::supervise::supervise;
use events::topology::Topology;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::BasicProperties;
use lapin::Confirmation;
use prometheus::{IntCounter, IntGauge, Registry};
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;

/// The relay's next batch: `$3` events after the cursor (`$1`, `$2`) in commit order (the
/// `events_commit_order` index), of transactions every snapshot sees as ended. `events.tx_id`,
/// not `tx_id`: in `ORDER BY` a bare name is the output column, here the id's text, whose order
/// is not the ids' ('100000' < '99999').
pub fn read_batch() -> String {
    format!(
        "SELECT {COLUMNS} FROM events
          WHERE (events.tx_id, global_position) > ($1::xid8, $2)
            AND events.tx_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY events.tx_id, global_position
          LIMIT $3"
    )
}

/// Run on the relay's connection first: each batch's read is planned for the store as large as
/// it is then. A plan cached after a few runs, made while a new store held a few pages, scanned
/// and sorted every event above the cursor for each batch (141,000 rows read to publish 1,000)
/// until autovacuum next analyzed the table. Planning a read costs a fraction of a millisecond;
/// a batch is up to a thousand events.
pub const SESSION: &str = "SET plan_cache_mode = force_custom_plan";

/// Advisory lock key of the active relay ("cstrack" + 1).
const RELAY_LOCK: i64 = 0x6373_7472_6163_6b01;
/// Channel on which committed appends are announced (see [`crate::store::Appends`]).
pub const APPEND_CHANNEL: &str = "cstrack_events_appended";
/// Longest wait for the broker to confirm a published batch. A connection the broker closed
/// should fail its pending confirms; should one be left hanging instead, the session ends here
/// and a new one republishes from the stored cursor (the projectors skip what they have).
const CONFIRM_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub database_url: String,
    pub amqp_url: String,
    pub topology: Topology,
    /// Events read and confirmed per round trip.
    pub batch_size: i64,
    /// Longest wait for new events when no notification arrives.
    pub idle_poll: Duration,
}

#[derive(Clone)]
pub struct RelayMetrics {
    published: IntCounter,
    failures: IntCounter,
    cursor: IntGauge,
    active: IntGauge,
}

impl RelayMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = RelayMetrics {
            published: IntCounter::new("cstrack_relay_published_total", "Events published and confirmed")?,
            failures: IntCounter::new("cstrack_relay_failures_total", "Relay sessions that ended in an error")?,
            cursor: IntGauge::new(
                "cstrack_relay_cursor_position",
                "Global position of the last confirmed event",
            )?,
            active: IntGauge::new("cstrack_relay_active", "1 while this process holds the relay lock")?,
        };
        registry.register(Box::new(metrics.published.clone()))?;
        registry.register(Box::new(metrics.failures.clone()))?;
        registry.register(Box::new(metrics.cursor.clone()))?;
        registry.register(Box::new(metrics.active.clone()))?;
        Ok(metrics)
    }
}

pub struct Relay {
    settings: RelaySettings,
    metrics: RelayMetrics,
    connected: Arc<AtomicBool>,
}

impl Relay {
    pub fn new(settings: RelaySettings, metrics: RelayMetrics) -> Self {
        Relay {
            settings,
            metrics,
            connected: Arc::new(AtomicBool::new(false)),
        }
    }

    /// True while the relay holds the lock and is connected to the broker.
    pub fn connected(&self) -> Arc<AtomicBool> {
        self.connected.clone()
    }

    /// Runs until `shutdown` turns true, surviving database and broker restarts.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        supervise(
            "relay",
            shutdown,
            || async {
                self.session()
                    .await
                    .err()
                    .unwrap_or_else(|| anyhow::anyhow!("session returned"))
            },
            || {
                self.metrics.failures.inc();
                self.connected.store(false, Ordering::Relaxed);
                self.metrics.active.set(0);
            },
        )
        .await;
    }

    async fn session(&self) -> anyhow::Result<()> {
        let settings = &self.settings;
        let mut db = PgConnection::connect(&settings.database_url)
            .await
            .context("connecting to the event store")?;
        sqlx::query(SESSION).execute(&mut db).await?;
        while !sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut db)
            .await?
        {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        self.metrics.active.set(1);
        let mut listener = PgListener::connect(&settings.database_url).await?;
        listener.listen(APPEND_CHANNEL).await?;

        let connection = amqp::connect(&settings.amqp_url, &format!("{}-relay", settings.topology.prefix())).await?;
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        amqp::declare_topology(&channel, &settings.topology).await?;
        self.connected.store(true, Ordering::Relaxed);
        tracing::info!("relay active");

        sqlx::query(
            "INSERT INTO relay_cursor (relay, tx_id, global_position) VALUES ('main', '0', 0) ON CONFLICT DO NOTHING",
        )
        .execute(&mut db)
        .await?;
        let (mut tx_id, mut position): (String, i64) =
            sqlx::query_as("SELECT tx_id::text, global_position FROM relay_cursor WHERE relay = 'main'")
                .fetch_one(&mut db)
                .await?;

        // Two batches in flight: the next is read and published while the broker confirms the
        // last, and the cursor follows the confirms.
        let mut unconfirmed: Option<Published> = None;
        loop {
            let batch: Vec<StoredEvent> = sqlx::query_as(&read_batch())
                .bind(&tx_id)
                .bind(position)
                .bind(settings.batch_size)
                .fetch_all(&mut db)
                .await?;

            let published = match batch.last() {
                Some(last) => {
                    (tx_id, position) = (last.tx_id.clone(), last.global_position);
                    Some(self.publish(&channel, batch).await?)
                }
                None => None,
            };
            if let Some(confirmed) = unconfirmed.take() {
                self.settle(&mut db, confirmed).await?;
            }
            unconfirmed = published;
            if unconfirmed.is_none() {
                // Nothing committed below the horizon: wait for an append (or poll).
                if let Ok(Err(error)) = tokio::time::timeout(settings.idle_poll, listener.recv()).await {
                    return Err(error.into());
                }
                // Notifications that queued while batches were published are answered by the
                // next read, not by a read each.
                while listener.next_buffered().is_some() {}
            }
        }
    }

    /// Publishes a batch; its confirms are awaited by [`Relay::settle`].
    async fn publish(&self, channel: &lapin::Channel, batch: Vec<StoredEvent>) -> anyhow::Result<Published> {
        let topology = &self.settings.topology;
        let exchange = ShortString::from(topology.events_exchange());
        let mut confirms = Vec::with_capacity(batch.len());
        let last = batch
            .last()
            .map(|row| (row.tx_id.clone(), row.global_position))
            .unwrap_or_default();
        for row in batch {
            let envelope = row.into_envelope();
            let routing_key = topology.routing_key(&envelope.stream_type, &envelope.stream_id, &envelope.event_type);
            let body = serde_json::to_vec(&envelope)?;
            let confirm = channel
                .basic_publish(
                    exchange.clone(),
                    ShortString::from(routing_key),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &body,
                    properties(&envelope),
                )
                .await?;
            confirms.push((envelope.global_position, confirm));
        }
        Ok(Published { confirms, last })
    }

    /// Waits until the broker has confirmed every message of a published batch, then moves the
    /// cursor past it.
    async fn settle(&self, db: &mut PgConnection, published: Published) -> anyhow::Result<()> {
        let count = published.confirms.len();
        for (position, confirm) in published.confirms {
            let confirmation = tokio::time::timeout(CONFIRM_WAIT, confirm).await.with_context(|| {
                format!("no confirm for the event at position {position} within {CONFIRM_WAIT:?}")
            })??;
            match confirmation {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                    bail!(
                        "event at position {position} was returned unroutable: {}",
                        returned.reply_text
                    )
                }
                Confirmation::Nack(None) => bail!("broker refused event at position {position}"),
                Confirmation::NotRequested => bail!("publisher confirms are not enabled"),
            }
        }
        let (tx_id, position) = published.last;
        sqlx::query(
            "UPDATE relay_cursor SET tx_id = $1::xid8, global_position = $2, updated_at = now() WHERE relay = 'main'",
        )
        .bind(&tx_id)
        .bind(position)
        .execute(db)
        .await?;
        self.metrics.published.inc_by(count as u64);
        self.metrics.cursor.set(position);
        tracing::debug!(count, position, "published batch");
        Ok(())
    }
}

/// A batch handed to the broker: each message's confirm, and where the batch ends.
struct Published {
    confirms: Vec<(i64, lapin::PublisherConfirm)>,
    last: (String, i64),
}

/// Persistent JSON message, `message_id` = event id, with CloudEvents-style headers.
fn properties(envelope: &events::EventEnvelope) -> BasicProperties {
    let text = |value: String| AMQPValue::LongString(value.into());
    let mut headers = FieldTable::default();
    headers.insert("ce-specversion".into(), text("1.0".into()));
    headers.insert("ce-id".into(), text(envelope.metadata.event_id.to_string()));
    headers.insert("ce-source".into(), text(format!("/cstrack/{}", envelope.stream_type)));
    headers.insert(
        "ce-type".into(),
        text(format!(
            "cstrack.{}.{}.v{}",
            envelope.stream_type, envelope.event_type, envelope.event_version
        )),
    );
    headers.insert("ce-subject".into(), text(envelope.stream_id.clone()));
    headers.insert("ce-time".into(), text(envelope.metadata.recorded_at.to_rfc3339()));
    headers.insert("ce-datacontenttype".into(), text("application/json".into()));
    headers.insert("stream-sequence".into(), AMQPValue::LongLongInt(envelope.sequence));
    headers.insert(
        "global-position".into(),
        AMQPValue::LongLongInt(envelope.global_position),
    );
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(envelope.metadata.event_id.to_string().into())
        .with_correlation_id(envelope.metadata.correlation_id.to_string().into())
        .with_type(envelope.event_type.clone().into())
        .with_app_id("cstrack-relay".into())
        .with_timestamp(envelope.metadata.recorded_at.timestamp().max(0) as u64)
        .with_headers(headers)
}
