//! Events of the `Csm` stream: one stream per customer-success manager.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Monthly hours a CSM has for their book when none is given (docs/DOMAIN.md section 7).
pub const DEFAULT_MONTHLY_CAPACITY_HOURS: u32 = 120;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CsmRegistered {
    pub csm_id: Uuid,
    pub name: String,
    pub email: String,
    pub team: String,
    pub monthly_capacity_hours: u32,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CsmCapacityChanged {
    pub monthly_capacity_hours: u32,
    pub previous_monthly_capacity_hours: u32,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CsmEvent {
    CsmRegistered(CsmRegistered),
    CsmCapacityChanged(CsmCapacityChanged),
}

impl CsmEvent {
    pub const STREAM_TYPE: &'static str = "Csm";
}

impl DomainEvent for CsmEvent {
    fn event_type(&self) -> String {
        match self {
            CsmEvent::CsmRegistered(_) => "CsmRegistered",
            CsmEvent::CsmCapacityChanged(_) => "CsmCapacityChanged",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
