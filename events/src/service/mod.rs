//! Runtime plumbing every cstrack service shares: settings, telemetry, HTTP serving and the
//! operational routes (`/healthz`, `/readyz`, `/metrics`), connection supervision, reading the
//! event store and the AMQP topology.

pub mod amqp;
pub mod auth;
pub mod chain;
pub mod changes;
pub mod deck;
pub mod egress;
pub mod http;
pub mod ops;
pub mod rate_limit;
pub mod read_models;
pub mod report_cache;
pub mod settings;
pub mod store;
pub mod supervise;
pub mod telemetry;
pub mod workbook;
