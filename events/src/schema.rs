//! JSON Schema of every event type and version, generated into `schemas/events/` and checked
//! against the code by a drift test.

use schemars::{schema_for, Schema};

use crate::csm::CsmRegistered;
use crate::customer::{
    ActivityLogged, ActivityRetracted, CsmAssigned, CustomerOnboarded, HealthScoreRecorded, StakeholderAdded,
};
use crate::envelope::EventEnvelope;

/// One generated schema file.
pub struct SchemaFile {
    /// Path relative to `schemas/`.
    pub path: String,
    pub schema: Schema,
}

fn event(stream: &str, event_type: &str, version: u32, schema: Schema) -> SchemaFile {
    SchemaFile {
        path: format!("events/{stream}/{event_type}.v{version}.json"),
        schema,
    }
}

/// Every schema the contract publishes.
pub fn all() -> Vec<SchemaFile> {
    vec![
        SchemaFile {
            path: "events/envelope.v1.json".into(),
            schema: schema_for!(EventEnvelope),
        },
        event("customer", "CustomerOnboarded", 1, schema_for!(CustomerOnboarded)),
        event("customer", "CsmAssigned", 1, schema_for!(CsmAssigned)),
        event("customer", "StakeholderAdded", 1, schema_for!(StakeholderAdded)),
        event("customer", "ActivityLogged", 1, schema_for!(ActivityLogged)),
        event("customer", "ActivityRetracted", 1, schema_for!(ActivityRetracted)),
        event("customer", "HealthScoreRecorded", 1, schema_for!(HealthScoreRecorded)),
        event("csm", "CsmRegistered", 1, schema_for!(CsmRegistered)),
    ]
}

/// The text written to disk: pretty JSON with a trailing newline.
pub fn render(schema: &Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema always serializes");
    text.push('\n');
    text
}
