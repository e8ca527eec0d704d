//! The `Alert` aggregate: acknowledging an alert the projection service raised.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::alert::{AlertAcknowledged, AlertEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::permissions::Operation;
use super::{optional_text, CommandError, DomainServices, Guarded};

#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeAlert {
    #[serde(skip)]
    pub alert_id: Uuid,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Alert {
    acknowledged: bool,
}

impl Aggregate for Alert {
    const TYPE: &'static str = AlertEvent::STREAM_TYPE;
    type Command = AcknowledgeAlert;
    type Event = AlertEvent;
    type Error = CommandError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if self.acknowledged {
            return Err(CommandError::conflict(
                "already_acknowledged",
                "this alert is already acknowledged",
            ));
        }
        match services.directory.alert_exists(command.alert_id).await {
            Ok(true) => {}
            Ok(false) => return Err(CommandError::NotFound { entity: "alert" }),
            Err(error) => return Err(CommandError::Unavailable(error)),
        }
        let event = AlertAcknowledged {
            alert_id: command.alert_id,
            note: command
                .note
                .as_deref()
                .map(|note| optional_text(note, "note", 2000))
                .transpose()?,
            occurred_at: services.clock.now(),
        };
        sink.write(AlertEvent::AlertAcknowledged(event), self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AlertEvent::AlertAcknowledged(_) => self.acknowledged = true,
        }
    }
}

impl Guarded for Alert {
    fn operation(_command: &AcknowledgeAlert) -> Operation {
        Operation::AcknowledgeAlert
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::domain::fixed;

    #[tokio::test]
    async fn an_existing_alert_is_acknowledged_once() {
        let id = Uuid::now_v7();
        let known = || {
            fixed::with(fixed::Known {
                alerts: vec![id],
                ..Default::default()
            })
        };
        let acknowledged = AlertEvent::AlertAcknowledged(AlertAcknowledged {
            alert_id: id,
            note: Some("called them".into()),
            occurred_at: fixed::NOW.parse().unwrap(),
        });
        TestFramework::<Alert>::with(known())
            .given_no_previous_events()
            .when_async(AcknowledgeAlert {
                alert_id: id,
                note: Some("called them".into()),
            })
            .await
            .then_expect_events(vec![acknowledged.clone()]);
        TestFramework::<Alert>::with(known())
            .given(vec![acknowledged])
            .when_async(AcknowledgeAlert {
                alert_id: id,
                note: None,
            })
            .await
            .then_expect_error_message("this alert is already acknowledged");
        TestFramework::<Alert>::with(fixed::services(vec![]))
            .given_no_previous_events()
            .when_async(AcknowledgeAlert {
                alert_id: id,
                note: None,
            })
            .await
            .then_expect_error(CommandError::NotFound { entity: "alert" });
    }
}
