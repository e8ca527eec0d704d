//! Metadata carried by every event (docs/DOMAIN.md section 1).
//!
//! cqrs-es stores metadata as a string map shared by all events of one command. The event id and
//! the append time are per row, so the store fills them itself (`event_id` and `recorded_at`
//! columns) and the envelope joins them back in.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Api,
    Import,
    Gainsight,
    Google,
    Outlook,
    PartnerPortal,
    Salesforce,
    Slack,
    System,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "api",
            Source::Import => "import",
            Source::Gainsight => "gainsight",
            Source::Google => "google",
            Source::Outlook => "outlook",
            Source::PartnerPortal => "partner_portal",
            Source::Salesforce => "salesforce",
            Source::Slack => "slack",
            Source::System => "system",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(value.to_owned())).ok()
    }
}

/// What a user may do; the permission table in docs/PERMISSIONS.md says which commands each
/// role may issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Manager,
    Csm,
    Partner,
    Readonly,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Manager,
        Role::Csm,
        Role::Partner,
        Role::Readonly,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Csm => "csm",
            Role::Partner => "partner",
            Role::Readonly => "readonly",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }
}

/// The user (or system process) that issued a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    pub id: String,
    pub role: String,
}

impl Actor {
    pub fn system() -> Self {
        Actor {
            id: "system".into(),
            role: "system".into(),
        }
    }
}

/// What the command side knows about a command when it appends its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommandMetadata {
    pub actor: Actor,
    pub correlation_id: Uuid,
    pub causation_id: Uuid,
    pub source: Source,
    /// The client's `Idempotency-Key`, when the command carried one.
    pub idempotency_key: Option<String>,
}

impl CommandMetadata {
    const ACTOR_ID: &'static str = "actor_id";
    const ACTOR_ROLE: &'static str = "actor_role";
    const CORRELATION_ID: &'static str = "correlation_id";
    const CAUSATION_ID: &'static str = "causation_id";
    const SOURCE: &'static str = "source";
    const IDEMPOTENCY_KEY: &'static str = "idempotency_key";

    /// A command issued by the system itself, starting a new correlation.
    pub fn system(source: Source) -> Self {
        let id = Uuid::now_v7();
        CommandMetadata {
            actor: Actor::system(),
            correlation_id: id,
            causation_id: id,
            source,
            idempotency_key: None,
        }
    }

    /// The string map cqrs-es persists in the `metadata` column.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            (Self::ACTOR_ID.to_owned(), self.actor.id.clone()),
            (Self::ACTOR_ROLE.to_owned(), self.actor.role.clone()),
            (Self::CORRELATION_ID.to_owned(), self.correlation_id.to_string()),
            (Self::CAUSATION_ID.to_owned(), self.causation_id.to_string()),
            (Self::SOURCE.to_owned(), self.source.as_str().to_owned()),
        ]);
        if let Some(key) = &self.idempotency_key {
            map.insert(Self::IDEMPOTENCY_KEY.to_owned(), key.clone());
        }
        map
    }

    /// Reads the stored map back; rows written without a field get a neutral value rather than
    /// failing, so an old row never stops a reader.
    pub fn from_map(map: &HashMap<String, String>) -> Self {
        let uuid = |key: &str| {
            map.get(key)
                .and_then(|v| Uuid::parse_str(v).ok())
                .unwrap_or(Uuid::nil())
        };
        CommandMetadata {
            actor: Actor {
                id: map.get(Self::ACTOR_ID).cloned().unwrap_or_else(|| "unknown".into()),
                role: map.get(Self::ACTOR_ROLE).cloned().unwrap_or_else(|| "unknown".into()),
            },
            correlation_id: uuid(Self::CORRELATION_ID),
            causation_id: uuid(Self::CAUSATION_ID),
            source: map
                .get(Self::SOURCE)
                .and_then(|s| Source::parse(s))
                .unwrap_or(Source::System),
            idempotency_key: map.get(Self::IDEMPOTENCY_KEY).cloned(),
        }
    }
}

/// The full metadata of one stored event, as published and as shown to auditors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventMetadata {
    pub event_id: Uuid,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    pub actor: Actor,
    pub correlation_id: Uuid,
    pub causation_id: Uuid,
    pub source: Source,
}

impl EventMetadata {
    /// The metadata of a stored event: its id and recording time, and the command's metadata.
    pub fn stored(event_id: Uuid, recorded_at: chrono::DateTime<chrono::Utc>, command: CommandMetadata) -> Self {
        EventMetadata {
            event_id,
            recorded_at,
            actor: command.actor,
            correlation_id: command.correlation_id,
            causation_id: command.causation_id,
            source: command.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_metadata_survives_the_string_map() {
        let metadata = CommandMetadata {
            actor: Actor {
                id: "u-1".into(),
                role: "csm".into(),
            },
            correlation_id: Uuid::now_v7(),
            causation_id: Uuid::now_v7(),
            source: Source::PartnerPortal,
            idempotency_key: Some("retry-1".into()),
        };
        assert_eq!(CommandMetadata::from_map(&metadata.to_map()), metadata);
    }
}
