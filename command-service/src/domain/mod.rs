//! Aggregates: plain domain code with no HTTP or SQL in it. Outside lookups sit behind
//! [`DomainServices`] so that aggregate tests can give them fixed answers.

pub mod alert;
pub mod csm;
pub mod customer;
pub mod fields;
pub mod partner;
pub mod permissions;
pub mod playbook;
pub mod reminder;
pub mod rules;
pub mod templates;

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::auth::Principal;

/// Why a command was refused. Each variant says what the client should do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The stream (or an item of it) named in the path does not exist.
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// The command contradicts the current state (onboarding twice, completing a completed task).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A field breaks a rule of docs/DOMAIN.md section 2.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: String,
        message: String,
    },
    /// The caller's role or partner organisation may not do this.
    #[error("{message}")]
    Forbidden { message: String },
    /// A lookup the command depends on could not be made.
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
}

impl CommandError {
    pub fn invalid(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        CommandError::Invalid {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        CommandError::Conflict {
            code,
            message: message.into(),
        }
    }

    /// Qualifies the field for an item of a batch: `occurred_at` -> `activities[3].occurred_at`.
    pub fn within(self, prefix: &str) -> Self {
        match self {
            CommandError::Invalid { code, field, message } => CommandError::Invalid {
                code,
                field: format!("{prefix}.{field}"),
                message: format!("{prefix}: {message}"),
            },
            other => other,
        }
    }
}

/// What the store knows of one activity of a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityRecord {
    pub retracted: bool,
}

/// Lookups beyond the aggregate's own state. Activities are looked up rather than held in the
/// aggregate: a customer logs them without bound, and carrying every id in the snapshot would
/// make each command cost more as the history grows.
#[async_trait::async_trait]
pub trait Directory: Send + Sync {
    async fn csm_exists(&self, csm_id: Uuid) -> Result<bool, String>;
    async fn partner_exists(&self, partner_id: Uuid) -> Result<bool, String>;
    async fn activity(&self, customer_id: Uuid, activity_id: Uuid) -> Result<Option<ActivityRecord>, String>;
    /// Which of `activity_ids` the customer already has (retracted or not): what a batch of
    /// activities must not repeat, asked at once rather than one lookup per activity.
    async fn existing_activities(
        &self,
        customer_id: Uuid,
        activity_ids: &[Uuid],
    ) -> Result<std::collections::HashSet<Uuid>, String> {
        let mut existing = std::collections::HashSet::new();
        for id in activity_ids {
            if self.activity(customer_id, *id).await?.is_some() {
                existing.insert(*id);
            }
        }
        Ok(existing)
    }
    /// Whether the projection service has raised this alert.
    async fn alert_exists(&self, alert_id: Uuid) -> Result<bool, String>;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// What aggregates may ask of the world outside their own stream.
#[derive(Clone)]
pub struct DomainServices {
    pub directory: Arc<dyn Directory>,
    pub clock: Arc<dyn Clock>,
}

/// Client clocks drift: an instant up to this far ahead of ours is still "now".
pub const CLOCK_SKEW_SECONDS: i64 = 300;

/// Rejects instants in the future (beyond clock skew).
pub(crate) fn not_in_future(
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    field: &'static str,
) -> Result<DateTime<Utc>, CommandError> {
    if at > now + chrono::Duration::seconds(CLOCK_SKEW_SECONDS) {
        return Err(CommandError::invalid(
            "in_future",
            field,
            format!("{field} is in the future"),
        ));
    }
    Ok(at)
}

/// A date that must not be after today.
pub(crate) fn not_after_today(
    day: NaiveDate,
    now: DateTime<Utc>,
    field: &'static str,
) -> Result<NaiveDate, CommandError> {
    if day > (now + chrono::Duration::seconds(CLOCK_SKEW_SECONDS)).date_naive() {
        return Err(CommandError::invalid(
            "in_future",
            field,
            format!("{field} is in the future"),
        ));
    }
    Ok(day)
}

/// Refuses a command that would change nothing.
pub(crate) fn require_change(changed: bool) -> Result<(), CommandError> {
    if changed {
        Ok(())
    } else {
        Err(CommandError::invalid(
            "no_change",
            "body",
            "the command changes no field",
        ))
    }
}

/// What [`required_text`] accepts, as a JSON Schema pattern: text with a visible character (and,
/// as all text, no U+0000).
pub const VISIBLE: &str = r"^[^\u0000]*[^\s\u0000][^\u0000]*$";

/// What [`name_text`] accepts, as a JSON Schema pattern: one line with a visible character.
pub const ONE_LINE: &str =
    r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

/// A Salesforce record id as a JSON Schema pattern: 15 or 18 letters and digits.
pub const SALESFORCE_ID: &str = "^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$";

/// A stakeholder's e-mail as the server checks it: blank (none) or text with an `@` in it.
pub const LOOSE_EMAIL: &str = r"^(\s*|[^\u0000]*@[^\u0000]*)$";

/// An e-mail address as the API accepts it, as a JSON Schema pattern (the server is no stricter).
pub const EMAIL: &str = r"^[^\s@<>\u0000-\u001F\u007F-\u009F]+@[^\s@<>.\u0000-\u001F\u007F-\u009F]+(\.[^\s@<>.\u0000-\u001F\u007F-\u009F]+)+$";

/// How the JSON Schemas describe an ARR (`customer::arr`): a number or a decimal text, not
/// negative, in cents, at most a trillion.
pub struct Arr;

impl schemars::JsonSchema for Arr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Arr".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Annual recurring revenue: not negative, at most two decimal places, at most 1,000,000,000,000.",
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": 1_000_000_000_000_i64, "multipleOf": 0.01},
                {"type": "string", "pattern": "^[0-9]{1,12}(\\.[0-9]{1,2})?$"}
            ]
        })
    }
}

/// How the JSON Schemas describe a custom field's value: text, a number, a yes/no, a list of
/// texts (multi-select), or null to clear it; which of them a field takes is its definition's.
pub struct FieldValue;

impl schemars::JsonSchema for FieldValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FieldValue".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A custom field's value; its definition says which kind it takes.",
            "anyOf": [
                {"type": "string", "pattern": "^[^\\u0000]*$"},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "array", "items": {"type": "string", "pattern": "^[^\\u0000]*$"}},
                {"type": "null"}
            ]
        })
    }
}

/// Trims a required text field and checks its length.
pub(crate) fn required_text(value: &str, field: &'static str, max: usize) -> Result<String, CommandError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(CommandError::invalid(
            "required",
            field,
            format!("{field} must not be empty"),
        ));
    }
    optional_text(value, field, max)
}

/// A required name: one line of text, without control characters (a tab, a newline, an escape
/// in a name breaks every list, export and deck that shows it).
pub(crate) fn name_text(value: &str, field: &'static str, max: usize) -> Result<String, CommandError> {
    let value = required_text(value, field, max)?;
    if value.chars().any(char::is_control) {
        return Err(CommandError::invalid(
            "invalid_character",
            field,
            format!("{field} must be one line of text without control characters"),
        ));
    }
    Ok(value)
}

/// Checks the length of a text field that may be empty.
pub(crate) fn optional_text(value: &str, field: &'static str, max: usize) -> Result<String, CommandError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(CommandError::invalid(
            "too_long",
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// Who may issue which command on an aggregate: the role must be in the permission table, and a
/// partner must belong to an organisation the stream admits.
pub trait Guarded: cqrs_es::Aggregate {
    fn operation(command: &Self::Command) -> permissions::Operation;

    /// Whether users of this partner organisation may act on this stream at all.
    fn admits_partner(&self, _partner_id: Uuid) -> bool {
        false
    }
}

pub fn authorize<A: Guarded>(aggregate: &A, command: &A::Command, principal: &Principal) -> Result<(), CommandError> {
    let operation = A::operation(command);
    if !operation.permits(principal.role) {
        return Err(CommandError::Forbidden {
            message: format!("the {} role may not {}", principal.role.as_str(), operation.describe()),
        });
    }
    if principal.role == events::metadata::Role::Partner
        && !principal
            .partner_id
            .is_some_and(|partner| aggregate.admits_partner(partner))
    {
        return Err(CommandError::Forbidden {
            message: "this customer is not assigned to your partner organisation".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod fixed {
    //! Services with fixed answers for aggregate tests.

    use super::*;

    pub const NOW: &str = "2026-06-30T12:00:00Z";

    pub struct FixedClock;

    impl Clock for FixedClock {
        fn now(&self) -> DateTime<Utc> {
            NOW.parse().unwrap()
        }
    }

    /// Knows exactly what it is given.
    #[derive(Default)]
    pub struct Known {
        pub csms: Vec<Uuid>,
        pub partners: Vec<Uuid>,
        pub activities: Vec<(Uuid, ActivityRecord)>,
        pub alerts: Vec<Uuid>,
    }

    #[async_trait::async_trait]
    impl Directory for Known {
        async fn csm_exists(&self, csm_id: Uuid) -> Result<bool, String> {
            Ok(self.csms.contains(&csm_id))
        }

        async fn partner_exists(&self, partner_id: Uuid) -> Result<bool, String> {
            Ok(self.partners.contains(&partner_id))
        }

        async fn activity(&self, _customer_id: Uuid, activity_id: Uuid) -> Result<Option<ActivityRecord>, String> {
            Ok(self
                .activities
                .iter()
                .find(|(id, _)| *id == activity_id)
                .map(|(_, record)| *record))
        }

        async fn alert_exists(&self, alert_id: Uuid) -> Result<bool, String> {
            Ok(self.alerts.contains(&alert_id))
        }
    }

    pub fn services(csms: Vec<Uuid>) -> DomainServices {
        with(Known {
            csms,
            ..Known::default()
        })
    }

    pub fn with(known: Known) -> DomainServices {
        DomainServices {
            directory: Arc::new(known),
            clock: Arc::new(FixedClock),
        }
    }
}
