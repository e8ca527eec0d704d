//! The `Csm` aggregate: a customer-success manager of the team.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::csm::{CsmCapacityChanged, CsmEvent, CsmRegistered, DEFAULT_MONTHLY_CAPACITY_HOURS};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::permissions::Operation;
use super::{name_text, not_in_future, required_text, CommandError, DomainServices, Guarded};

/// Most hours a month one person can be given.
const MAX_MONTHLY_CAPACITY_HOURS: u32 = 744;

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterCsm {
    pub csm_id: Option<Uuid>,
    /// One line with a visible character: no control characters.
    #[schemars(length(max = 200), pattern(crate::domain::ONE_LINE))]
    pub name: String,
    #[schemars(length(min = 1, max = 254), pattern(crate::domain::EMAIL))]
    pub email: String,
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub team: String,
    #[schemars(range(min = 1, max = 744))]
    pub monthly_capacity_hours: Option<u32>,
    pub occurred_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeCapacity {
    #[schemars(range(min = 1, max = 744))]
    pub monthly_capacity_hours: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CsmCommand {
    Register(RegisterCsm),
    ChangeCapacity(ChangeCapacity),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Csm {
    registered: bool,
    monthly_capacity_hours: u32,
}

fn capacity(hours: u32) -> Result<u32, CommandError> {
    if hours == 0 || hours > MAX_MONTHLY_CAPACITY_HOURS {
        return Err(CommandError::invalid(
            "out_of_range",
            "monthly_capacity_hours",
            format!("monthly_capacity_hours must be between 1 and {MAX_MONTHLY_CAPACITY_HOURS}"),
        ));
    }
    Ok(hours)
}

impl Aggregate for Csm {
    const TYPE: &'static str = CsmEvent::STREAM_TYPE;
    type Command = CsmCommand;
    type Event = CsmEvent;
    type Error = CommandError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            CsmCommand::Register(register) => {
                if self.registered {
                    return Err(CommandError::conflict(
                        "already_exists",
                        "this CSM is already registered",
                    ));
                }
                let now = services.clock.now();
                let email = required_text(&register.email, "email", 254)?;
                if !email.contains('@') {
                    return Err(CommandError::invalid(
                        "invalid_email",
                        "email",
                        "email must be an e-mail address",
                    ));
                }
                let capacity = register
                    .monthly_capacity_hours
                    .unwrap_or(DEFAULT_MONTHLY_CAPACITY_HOURS);
                if capacity == 0 || capacity > MAX_MONTHLY_CAPACITY_HOURS {
                    return Err(CommandError::invalid(
                        "out_of_range",
                        "monthly_capacity_hours",
                        format!("monthly_capacity_hours must be between 1 and {MAX_MONTHLY_CAPACITY_HOURS}"),
                    ));
                }
                let event = CsmRegistered {
                    csm_id: register.csm_id.unwrap_or_else(Uuid::now_v7),
                    name: name_text(&register.name, "name", 200)?,
                    email,
                    team: super::optional_text(&register.team, "team", 200)?,
                    monthly_capacity_hours: capacity,
                    occurred_at: not_in_future(register.occurred_at.unwrap_or(now), now, "occurred_at")?,
                };
                sink.write(CsmEvent::CsmRegistered(event), self).await;
                Ok(())
            }
            CsmCommand::ChangeCapacity(change) => {
                if !self.registered {
                    return Err(CommandError::NotFound { entity: "csm" });
                }
                let hours = capacity(change.monthly_capacity_hours)?;
                if hours == self.monthly_capacity_hours {
                    return Err(CommandError::invalid(
                        "capacity_unchanged",
                        "monthly_capacity_hours",
                        "the CSM already has this capacity",
                    ));
                }
                let event = CsmCapacityChanged {
                    monthly_capacity_hours: hours,
                    previous_monthly_capacity_hours: self.monthly_capacity_hours,
                    occurred_at: services.clock.now(),
                };
                sink.write(CsmEvent::CsmCapacityChanged(event), self).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CsmEvent::CsmRegistered(registered) => {
                self.registered = true;
                self.monthly_capacity_hours = registered.monthly_capacity_hours;
            }
            CsmEvent::CsmCapacityChanged(changed) => self.monthly_capacity_hours = changed.monthly_capacity_hours,
        }
    }
}

impl Guarded for Csm {
    fn operation(command: &CsmCommand) -> Operation {
        match command {
            CsmCommand::Register(_) => Operation::RegisterCsm,
            CsmCommand::ChangeCapacity(_) => Operation::ChangeCsmCapacity,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::domain::fixed;

    type CsmTest = TestFramework<Csm>;

    fn register(id: Uuid) -> RegisterCsm {
        RegisterCsm {
            csm_id: Some(id),
            name: "Dana Whitfield".into(),
            email: "dana@example.com".into(),
            team: "East".into(),
            monthly_capacity_hours: None,
            occurred_at: None,
        }
    }

    fn registered(id: Uuid) -> CsmEvent {
        CsmEvent::CsmRegistered(CsmRegistered {
            csm_id: id,
            name: "Dana Whitfield".into(),
            email: "dana@example.com".into(),
            team: "East".into(),
            monthly_capacity_hours: 120,
            occurred_at: fixed::NOW.parse().unwrap(),
        })
    }

    #[tokio::test]
    async fn registers_with_default_capacity() {
        let id = Uuid::now_v7();
        CsmTest::with(fixed::services(vec![]))
            .given_no_previous_events()
            .when_async(CsmCommand::Register(register(id)))
            .await
            .then_expect_events(vec![registered(id)]);
    }

    #[tokio::test]
    async fn refuses_a_second_registration() {
        let id = Uuid::now_v7();
        CsmTest::with(fixed::services(vec![]))
            .given(vec![registered(id)])
            .when_async(CsmCommand::Register(register(id)))
            .await
            .then_expect_error_message("this CSM is already registered");
    }

    #[tokio::test]
    async fn changes_capacity_of_a_registered_csm_only() {
        let id = Uuid::now_v7();
        CsmTest::with(fixed::services(vec![]))
            .given(vec![registered(id)])
            .when_async(CsmCommand::ChangeCapacity(ChangeCapacity {
                monthly_capacity_hours: 100,
            }))
            .await
            .then_expect_events(vec![CsmEvent::CsmCapacityChanged(CsmCapacityChanged {
                monthly_capacity_hours: 100,
                previous_monthly_capacity_hours: 120,
                occurred_at: fixed::NOW.parse().unwrap(),
            })]);
        CsmTest::with(fixed::services(vec![]))
            .given(vec![registered(id)])
            .when_async(CsmCommand::ChangeCapacity(ChangeCapacity {
                monthly_capacity_hours: 120,
            }))
            .await
            .then_expect_error_message("the CSM already has this capacity");
        CsmTest::with(fixed::services(vec![]))
            .given_no_previous_events()
            .when_async(CsmCommand::ChangeCapacity(ChangeCapacity {
                monthly_capacity_hours: 100,
            }))
            .await
            .then_expect_error(CommandError::NotFound { entity: "csm" });
    }

    #[tokio::test]
    async fn refuses_a_bad_email_and_capacity() {
        let id = Uuid::now_v7();
        let mut bad_email = register(id);
        bad_email.email = "nobody".into();
        CsmTest::with(fixed::services(vec![]))
            .given_no_previous_events()
            .when_async(CsmCommand::Register(bad_email))
            .await
            .then_expect_error(CommandError::invalid(
                "invalid_email",
                "email",
                "email must be an e-mail address",
            ));
        let mut no_capacity = register(id);
        no_capacity.monthly_capacity_hours = Some(0);
        CsmTest::with(fixed::services(vec![]))
            .given_no_previous_events()
            .when_async(CsmCommand::Register(no_capacity))
            .await
            .then_expect_error_message("monthly_capacity_hours must be between 1 and 744");
    }
}
