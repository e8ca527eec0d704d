//! Runtime plumbing every cstrack service shares: settings, telemetry, the operational HTTP
//! routes (`/healthz`, `/readyz`, `/metrics`), reading the event store and the AMQP topology.

pub mod amqp;
pub mod ops;
pub mod settings;
pub mod store;
pub mod telemetry;
