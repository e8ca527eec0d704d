//! Names of the broker topology, shared by the relay (which publishes) and the projectors (which
//! consume). Declaring them is in `service::amqp`; the names and the partitioning are pure so that
//! both sides agree on them by construction.

/// Projectors that fold the event stream. They share one queue per partition: each delivery is
/// applied to every projector in one transaction (each with its own checkpoints), so the broker
/// stores, delivers and takes an ack for one message per event, not one per projector.
pub const PROJECTORS: &[&str] = &["coverage", "customers"];

/// Binding of every event.
pub const ALL_EVENTS: &str = "#";

/// Redeliveries of one message before it is dead-lettered: RabbitMQ's `x-delivery-limit` counts
/// returns to the queue, so a message that never applies is delivered 1 + 5 = 6 times in all.
pub const DELIVERY_LIMIT: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
    partitions: u16,
}

impl Topology {
    pub fn new(prefix: impl Into<String>, partitions: u16) -> Self {
        Topology {
            prefix: prefix.into(),
            partitions: partitions.max(1),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn partitions(&self) -> u16 {
        self.partitions
    }

    /// The topic exchange every event is published to.
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.events.dlx", self.prefix)
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}.events.dead", self.prefix)
    }

    /// The topic exchange alerts are published to (routing key `alert.<kind>`), for notification
    /// connectors.
    pub fn alerts_exchange(&self) -> String {
        format!("{}.alerts", self.prefix)
    }

    /// Keeps every alert until a connector takes it.
    pub fn alerts_queue(&self) -> String {
        format!("{}.alerts.notifications", self.prefix)
    }

    /// The stored events webhooks subscribe to. The notification intake binds it to the event
    /// types its webhooks name (`event_type_binding`), or to every event (`ALL_EVENTS`) when
    /// one takes `event.*`; with no event subscription nothing is copied into it.
    pub fn webhook_events_queue(&self) -> String {
        format!("{}.events.webhooks", self.prefix)
    }

    /// Binding of one event type, whatever its stream and partition.
    pub fn event_type_binding(event_type: &str) -> String {
        format!("*.*.{event_type}")
    }

    /// The queue of partition `partition`, consumed for every projector at once.
    pub fn projection_queue(&self, partition: u16) -> String {
        format!("{}.projection.p{partition}", self.prefix)
    }

    /// The queue a projector had to itself in earlier versions, one per partition. Retired: the
    /// services delete it on start (what it still held is applied from the store by
    /// reconciliation, as for any message the broker never delivered).
    pub fn retired_projector_queue(&self, projector: &str, partition: u16) -> String {
        format!("{}.{projector}.p{partition}", self.prefix)
    }

    /// Binding of partition `partition`: every stream type and event type of that partition.
    pub fn partition_binding(partition: u16) -> String {
        format!("*.p{partition}.*")
    }

    /// `<stream type>.p<partition>.<event type>`, e.g. `Customer.p3.ActivityLogged`.
    pub fn routing_key(&self, stream_type: &str, stream_id: &str, event_type: &str) -> String {
        format!("{stream_type}.p{}.{event_type}", self.partition_of(stream_id))
    }

    /// Stable partition of a stream: FNV-1a of its id, so every process (and every version of
    /// the relay) sends a customer's events to the same queue and keeps their order.
    pub fn partition_of(&self, stream_id: &str) -> u16 {
        let hash = stream_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        (hash % u64::from(self.partitions)) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_always_maps_to_the_same_partition() {
        let topology = Topology::new("cstrack", 4);
        let id = "0191f0b2-7e6f-7a4c-9d0e-3f1a2b3c4d5e";
        let partition = topology.partition_of(id);
        assert!(partition < 4);
        assert_eq!(topology.partition_of(id), partition);
        assert_eq!(
            topology.routing_key("Customer", id, "ActivityLogged"),
            format!("Customer.p{partition}.ActivityLogged")
        );
    }

    #[test]
    fn partitions_spread_streams() {
        let topology = Topology::new("cstrack", 4);
        let mut counts = [0_u32; 4];
        for i in 0..400 {
            counts[usize::from(topology.partition_of(&format!("customer-{i}")))] += 1;
        }
        assert!(counts.iter().all(|&c| c > 60), "{counts:?}");
    }
}
