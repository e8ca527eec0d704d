//! The `Partner` aggregate: a partner organisation and its portal users, each invited, then
//! active, possibly deactivated (and reactivated).

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::partner::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::permissions::Operation;
use super::{name_text, required_text, CommandError, DomainServices, Guarded};

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterPartner {
    pub partner_id: Option<Uuid>,
    /// One line with a visible character: no control characters.
    #[schemars(length(max = 200), pattern(crate::domain::ONE_LINE))]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteUser {
    /// The user's id in the identity provider (the `sub` of their tokens); a UUID v7 when omitted.
    #[schemars(length(max = 200), pattern(crate::domain::VISIBLE))]
    pub user_id: Option<String>,
    /// One line with a visible character: no control characters.
    #[schemars(length(max = 200), pattern(crate::domain::ONE_LINE))]
    pub name: String,
    #[schemars(length(max = 254), pattern(crate::domain::EMAIL))]
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeactivateUser {
    #[serde(skip)]
    #[schemars(length(max = 200))]
    pub user_id: String,
    #[schemars(length(max = 1000), pattern(crate::domain::VISIBLE))]
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PartnerCommand {
    Register(RegisterPartner),
    InviteUser(InviteUser),
    ActivateUser { user_id: String },
    DeactivateUser(DeactivateUser),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum UserStatus {
    Invited,
    Active,
    Deactivated,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Partner {
    registered: bool,
    users: BTreeMap<String, UserStatus>,
}

impl Partner {
    fn user(&self, user_id: &str) -> Result<UserStatus, CommandError> {
        if !self.registered {
            return Err(CommandError::NotFound { entity: "partner" });
        }
        self.users
            .get(user_id)
            .copied()
            .ok_or(CommandError::NotFound { entity: "partner user" })
    }
}

impl Aggregate for Partner {
    const TYPE: &'static str = PartnerEvent::STREAM_TYPE;
    type Command = PartnerCommand;
    type Event = PartnerEvent;
    type Error = CommandError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let occurred_at = services.clock.now();
        let event = match command {
            PartnerCommand::Register(register) => {
                if self.registered {
                    return Err(CommandError::conflict(
                        "already_exists",
                        "this partner is already registered",
                    ));
                }
                PartnerEvent::PartnerRegistered(PartnerRegistered {
                    partner_id: register.partner_id.unwrap_or_else(Uuid::now_v7),
                    name: name_text(&register.name, "name", 200)?,
                    occurred_at,
                })
            }
            PartnerCommand::InviteUser(invite) => {
                if !self.registered {
                    return Err(CommandError::NotFound { entity: "partner" });
                }
                let user_id = match invite.user_id {
                    Some(user_id) => required_text(&user_id, "user_id", 200)?,
                    None => Uuid::now_v7().to_string(),
                };
                if self.users.contains_key(&user_id) {
                    return Err(CommandError::conflict("user_exists", "this user is already invited"));
                }
                let email = required_text(&invite.email, "email", 254)?;
                if !email.contains('@') {
                    return Err(CommandError::invalid(
                        "invalid_email",
                        "email",
                        "email must be an e-mail address",
                    ));
                }
                PartnerEvent::PartnerUserInvited(PartnerUserInvited {
                    user_id,
                    name: name_text(&invite.name, "name", 200)?,
                    email,
                    occurred_at,
                })
            }
            PartnerCommand::ActivateUser { user_id } => {
                if self.user(&user_id)? == UserStatus::Active {
                    return Err(CommandError::conflict("user_active", "this user is already active"));
                }
                PartnerEvent::PartnerUserActivated(PartnerUserActivated { user_id, occurred_at })
            }
            PartnerCommand::DeactivateUser(deactivate) => {
                if self.user(&deactivate.user_id)? == UserStatus::Deactivated {
                    return Err(CommandError::conflict(
                        "user_deactivated",
                        "this user is already deactivated",
                    ));
                }
                PartnerEvent::PartnerUserDeactivated(PartnerUserDeactivated {
                    user_id: deactivate.user_id,
                    reason: required_text(&deactivate.reason, "reason", 1000)?,
                    occurred_at,
                })
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PartnerEvent::PartnerRegistered(_) => self.registered = true,
            PartnerEvent::PartnerUserInvited(invited) => {
                self.users.insert(invited.user_id, UserStatus::Invited);
            }
            PartnerEvent::PartnerUserActivated(activated) => {
                self.users.insert(activated.user_id, UserStatus::Active);
            }
            PartnerEvent::PartnerUserDeactivated(deactivated) => {
                self.users.insert(deactivated.user_id, UserStatus::Deactivated);
            }
        }
    }
}

impl Guarded for Partner {
    fn operation(command: &PartnerCommand) -> Operation {
        match command {
            PartnerCommand::Register(_) => Operation::RegisterPartner,
            PartnerCommand::InviteUser(_) => Operation::InvitePartnerUser,
            PartnerCommand::ActivateUser { .. } => Operation::ActivatePartnerUser,
            PartnerCommand::DeactivateUser(_) => Operation::DeactivatePartnerUser,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::domain::fixed;

    type PartnerTest = TestFramework<Partner>;

    fn at() -> chrono::DateTime<chrono::Utc> {
        fixed::NOW.parse().unwrap()
    }

    fn registered(id: Uuid) -> PartnerEvent {
        PartnerEvent::PartnerRegistered(PartnerRegistered {
            partner_id: id,
            name: "Northwind Consulting".into(),
            occurred_at: at(),
        })
    }

    fn invited() -> PartnerEvent {
        PartnerEvent::PartnerUserInvited(PartnerUserInvited {
            user_id: "p-user".into(),
            name: "Pat".into(),
            email: "pat@northwind.example".into(),
            occurred_at: at(),
        })
    }

    #[tokio::test]
    async fn registers_once() {
        let id = Uuid::now_v7();
        PartnerTest::with(fixed::services(vec![]))
            .given_no_previous_events()
            .when_async(PartnerCommand::Register(RegisterPartner {
                partner_id: Some(id),
                name: "Northwind Consulting".into(),
            }))
            .await
            .then_expect_events(vec![registered(id)]);
        PartnerTest::with(fixed::services(vec![]))
            .given(vec![registered(id)])
            .when_async(PartnerCommand::Register(RegisterPartner {
                partner_id: Some(id),
                name: "Again".into(),
            }))
            .await
            .then_expect_error_message("this partner is already registered");
    }

    #[tokio::test]
    async fn a_user_is_invited_activated_and_deactivated() {
        let id = Uuid::now_v7();
        let invite = InviteUser {
            user_id: Some("p-user".into()),
            name: "Pat".into(),
            email: "pat@northwind.example".into(),
        };
        PartnerTest::with(fixed::services(vec![]))
            .given(vec![registered(id)])
            .when_async(PartnerCommand::InviteUser(invite.clone()))
            .await
            .then_expect_events(vec![invited()]);
        PartnerTest::with(fixed::services(vec![]))
            .given(vec![registered(id), invited()])
            .when_async(PartnerCommand::InviteUser(invite))
            .await
            .then_expect_error_message("this user is already invited");
        let activated = PartnerEvent::PartnerUserActivated(PartnerUserActivated {
            user_id: "p-user".into(),
            occurred_at: at(),
        });
        PartnerTest::with(fixed::services(vec![]))
            .given(vec![registered(id), invited()])
            .when_async(PartnerCommand::ActivateUser {
                user_id: "p-user".into(),
            })
            .await
            .then_expect_events(vec![activated.clone()]);
        PartnerTest::with(fixed::services(vec![]))
            .given(vec![registered(id), invited(), activated.clone()])
            .when_async(PartnerCommand::ActivateUser {
                user_id: "p-user".into(),
            })
            .await
            .then_expect_error_message("this user is already active");
        let deactivate = DeactivateUser {
            user_id: "p-user".into(),
            reason: "left the firm".into(),
        };
        PartnerTest::with(fixed::services(vec![]))
            .given(vec![registered(id), invited(), activated])
            .when_async(PartnerCommand::DeactivateUser(deactivate))
            .await
            .then_expect_events(vec![PartnerEvent::PartnerUserDeactivated(PartnerUserDeactivated {
                user_id: "p-user".into(),
                reason: "left the firm".into(),
                occurred_at: at(),
            })]);
    }

    #[tokio::test]
    async fn refuses_unknown_users_and_partners_and_bad_emails() {
        let id = Uuid::now_v7();
        PartnerTest::with(fixed::services(vec![]))
            .given(vec![registered(id)])
            .when_async(PartnerCommand::ActivateUser {
                user_id: "nobody".into(),
            })
            .await
            .then_expect_error(CommandError::NotFound { entity: "partner user" });
        PartnerTest::with(fixed::services(vec![]))
            .given_no_previous_events()
            .when_async(PartnerCommand::InviteUser(InviteUser {
                user_id: None,
                name: "Pat".into(),
                email: "pat@x.example".into(),
            }))
            .await
            .then_expect_error(CommandError::NotFound { entity: "partner" });
        PartnerTest::with(fixed::services(vec![]))
            .given(vec![registered(id)])
            .when_async(PartnerCommand::InviteUser(InviteUser {
                user_id: None,
                name: "Pat".into(),
                email: "pat".into(),
            }))
            .await
            .then_expect_error(CommandError::invalid(
                "invalid_email",
                "email",
                "email must be an e-mail address",
            ));
    }
}
