//! Events of the `Partner` stream: one stream per partner organisation and its users.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PartnerRegistered {
    pub partner_id: Uuid,
    pub name: String,
    pub occurred_at: DateTime<Utc>,
}

/// A user invited to the partner portal; they act once activated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PartnerUserInvited {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PartnerUserActivated {
    pub user_id: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PartnerUserDeactivated {
    pub user_id: String,
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PartnerEvent {
    PartnerRegistered(PartnerRegistered),
    PartnerUserInvited(PartnerUserInvited),
    PartnerUserActivated(PartnerUserActivated),
    PartnerUserDeactivated(PartnerUserDeactivated),
}

impl PartnerEvent {
    pub const STREAM_TYPE: &'static str = "Partner";
}

impl DomainEvent for PartnerEvent {
    fn event_type(&self) -> String {
        match self {
            PartnerEvent::PartnerRegistered(_) => "PartnerRegistered",
            PartnerEvent::PartnerUserInvited(_) => "PartnerUserInvited",
            PartnerEvent::PartnerUserActivated(_) => "PartnerUserActivated",
            PartnerEvent::PartnerUserDeactivated(_) => "PartnerUserDeactivated",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
