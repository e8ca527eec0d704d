//! Runtime plumbing every cstrack service shares: telemetry, the operational HTTP routes
//! (`/healthz`, `/readyz`, `/metrics`) and the AMQP topology.

pub mod amqp;
pub mod ops;
pub mod telemetry;
