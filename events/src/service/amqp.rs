//! Connecting to RabbitMQ and declaring the topology of DESIGN.md. Both the relay and the
//! projectors declare everything on start (declarations are idempotent), so whichever starts first
//! the queues exist before the first `mandatory` publish.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::topology::{Topology, DELIVERY_LIMIT, PROJECTORS};

/// Opens a connection that shows as `name` in the broker's connection list.
pub async fn connect(url: &str, name: &str) -> lapin::Result<Connection> {
    let properties = ConnectionProperties::default().with_connection_name(LongString::from(name.to_owned()));
    Connection::connect(url, properties).await
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// Declares exchanges, the dead-letter queue and every projector's partition queues.
///
/// Projector queues are quorum queues: durable and replicated where there are several nodes, with
/// a single active consumer (so a partition keeps per-customer order however many workers run),
/// `x-delivery-limit` (bounded redelivery, supported by quorum queues on RabbitMQ 3.10) and a
/// dead-letter exchange for what exceeds it.
pub async fn declare_topology(channel: &Channel, topology: &Topology) -> lapin::Result<()> {
    let exchange_options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            ShortString::from(topology.events_exchange()),
            ExchangeKind::Topic,
            exchange_options,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            ShortString::from(topology.dead_letter_exchange()),
            ExchangeKind::Fanout,
            exchange_options,
            FieldTable::default(),
        )
        .await?;
    let mut dead_arguments = FieldTable::default();
    dead_arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    channel
        .queue_declare(
            ShortString::from(topology.dead_letter_queue()),
            durable(),
            dead_arguments,
        )
        .await?;
    channel
        .queue_bind(
            ShortString::from(topology.dead_letter_queue()),
            ShortString::from(topology.dead_letter_exchange()),
            ShortString::from(""),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    channel
        .exchange_declare(
            ShortString::from(topology.alerts_exchange()),
            ExchangeKind::Topic,
            exchange_options,
            FieldTable::default(),
        )
        .await?;
    let mut alert_arguments = FieldTable::default();
    alert_arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    channel
        .queue_declare(ShortString::from(topology.alerts_queue()), durable(), alert_arguments)
        .await?;
    channel
        .queue_bind(
            ShortString::from(topology.alerts_queue()),
            ShortString::from(topology.alerts_exchange()),
            ShortString::from("#"),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut webhook_arguments = FieldTable::default();
    webhook_arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    // Bounded, in case no projection service drains it for a long time.
    webhook_arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(1_000_000));
    channel
        .queue_declare(
            ShortString::from(topology.webhook_events_queue()),
            durable(),
            webhook_arguments,
        )
        .await?;
    // Bound by the notification intake to the event types the webhooks subscribe to.

    for partition in 0..topology.partitions() {
        let queue = topology.projection_queue(partition);
        let mut arguments = FieldTable::default();
        arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        arguments.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        arguments.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(DELIVERY_LIMIT));
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(topology.dead_letter_exchange().into()),
        );
        channel
            .queue_declare(ShortString::from(queue.clone()), durable(), arguments)
            .await?;
        channel
            .queue_bind(
                ShortString::from(queue),
                ShortString::from(topology.events_exchange()),
                ShortString::from(Topology::partition_binding(partition)),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        // Deleted only once the shared queue is bound, so every event reaches one of them.
        for projector in PROJECTORS {
            channel
                .queue_delete(
                    ShortString::from(topology.retired_projector_queue(projector, partition)),
                    QueueDeleteOptions::default(),
                )
                .await?;
        }
    }
    Ok(())
}
