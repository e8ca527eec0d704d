//! Event versions and the upcasters that read older stored versions as the current one. Stored
//! rows are never rewritten: every reader (aggregates, relay consumers, history) upcasts on read.

use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use serde_json::{json, Value};

/// The version new events of this type are written with.
pub fn current_version(event_type: &str) -> u32 {
    match event_type {
        "HealthScoreRecorded" => 2,
        _ => 1,
    }
}

/// HealthScoreRecorded 1 -> 2: plain risk-factor strings become `{name, weight: null}`.
fn health_score_v1_to_v2(mut payload: Value) -> Value {
    if let Some(factors) = payload
        .pointer_mut("/HealthScoreRecorded/risk_factors")
        .and_then(Value::as_array_mut)
    {
        for factor in factors.iter_mut() {
            if let Value::String(name) = factor {
                *factor = json!({"name": name, "weight": null});
            }
        }
    }
    payload
}

/// The upcasters cqrs-es applies when loading aggregates.
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![Box::new(SemanticVersionEventUpcaster::new(
        "HealthScoreRecorded",
        "2",
        Box::new(health_score_v1_to_v2),
    ))]
}

/// Upcasts one stored payload to the current version of its type.
/// Whether an event stored at `event_version` reads as it is, without upcasting.
pub fn is_current(event_type: &str, event_version: &str) -> bool {
    event_version.parse::<u32>().ok() == Some(current_version(event_type))
}

pub fn to_current(event_type: &str, event_version: &str, payload: Value) -> Value {
    if is_current(event_type, event_version) {
        return payload;
    }
    upcasters().into_iter().fold(payload, |payload, upcaster| {
        if upcaster.can_upcast(event_type, event_version) {
            let event = cqrs_es::persist::SerializedEvent::new(
                String::new(),
                0,
                String::new(),
                event_type.to_owned(),
                event_version.to_owned(),
                payload,
                Value::Null,
            );
            upcaster.upcast(event).payload
        } else {
            payload
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::{CustomerEvent, HealthSource, RiskFactor};

    #[test]
    fn a_version_1_health_score_reads_as_version_2() {
        let stored = json!({"HealthScoreRecorded": {
            "score": 45.0, "source": "gainsight", "reason": null,
            "risk_factors": ["low usage", "champion left"], "measured_at": "2026-03-01T08:00:00Z"
        }});
        let event: CustomerEvent =
            serde_json::from_value(to_current("HealthScoreRecorded", "1", stored.clone())).unwrap();
        let CustomerEvent::HealthScoreRecorded(health) = event else {
            panic!("wrong event")
        };
        assert_eq!(health.source, HealthSource::Gainsight);
        assert_eq!(
            health.risk_factors,
            vec![
                RiskFactor {
                    name: "low usage".into(),
                    weight: None
                },
                RiskFactor {
                    name: "champion left".into(),
                    weight: None
                }
            ]
        );
        // Version 1 cannot be read as version 2 without the upcaster.
        assert!(serde_json::from_value::<CustomerEvent>(stored).is_err());
    }

    #[test]
    fn current_versions_pass_through() {
        let stored = json!({"HealthScoreRecorded": {"risk_factors": [{"name": "x", "weight": 0.5}]}});
        assert_eq!(to_current("HealthScoreRecorded", "2", stored.clone()), stored);
        assert_eq!(to_current("HealthScoreRecorded", "2.0.0", stored.clone()), stored);
    }
}
