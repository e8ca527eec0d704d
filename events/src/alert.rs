//! Events of the `Alert` stream (id = alert id). Alerts are raised by the projection service's
//! checker from the read models; a user acknowledging one is a fact, so it is an event.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AlertAcknowledged {
    pub alert_id: Uuid,
    pub note: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertEvent {
    AlertAcknowledged(AlertAcknowledged),
}

impl AlertEvent {
    pub const STREAM_TYPE: &'static str = "Alert";
}

impl DomainEvent for AlertEvent {
    fn event_type(&self) -> String {
        "AlertAcknowledged".to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
