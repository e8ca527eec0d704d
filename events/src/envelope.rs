//! The message the relay publishes for each stored event.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::metadata::EventMetadata;

/// One stored event with its position in its stream and in the whole store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventEnvelope {
    pub stream_type: String,
    pub stream_id: String,
    /// Position in its stream, starting at 1, without gaps.
    pub sequence: i64,
    /// Position in the whole store (identity); commit order is `(tx_id, global_position)`.
    pub global_position: i64,
    pub event_type: String,
    pub event_version: String,
    pub metadata: EventMetadata,
    /// The stored payload, tagged by event type as the aggregate reads it.
    pub payload: serde_json::Value,
}

impl EventEnvelope {
    /// The typed event of the stream this envelope belongs to, upcast to the current version.
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, serde_json::Error> {
        serde_json::from_value(crate::upcast::to_current(
            &self.event_type,
            &self.event_version,
            self.payload.clone(),
        ))
    }

    pub fn recorded_at(&self) -> DateTime<Utc> {
        self.metadata.recorded_at
    }
}
