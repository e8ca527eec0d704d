//! Aggregates: plain domain code with no HTTP or SQL in it. Outside lookups sit behind
//! [`DomainServices`] so that aggregate tests can give them fixed answers.

pub mod csm;
pub mod customer;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Why a command was refused. Each variant says what the client should do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The stream named in the path does not exist.
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// The command contradicts the current state (e.g. onboarding twice).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A field breaks a rule of DOMAIN.md section 2.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        field: &'static str,
        message: String,
    },
    /// A lookup the command depends on could not be made.
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
}

impl CommandError {
    pub fn invalid(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        CommandError::Invalid {
            code,
            field,
            message: message.into(),
        }
    }
}

/// Lookups across streams that a command needs.
#[async_trait::async_trait]
pub trait Directory: Send + Sync {
    async fn csm_exists(&self, csm_id: Uuid) -> Result<bool, String>;
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

    /// Knows exactly the CSMs it is given.
    pub struct KnownCsms(pub Vec<Uuid>);

    #[async_trait::async_trait]
    impl Directory for KnownCsms {
        async fn csm_exists(&self, csm_id: Uuid) -> Result<bool, String> {
            Ok(self.0.contains(&csm_id))
        }
    }

    pub fn services(csms: Vec<Uuid>) -> DomainServices {
        DomainServices {
            directory: Arc::new(KnownCsms(csms)),
            clock: Arc::new(FixedClock),
        }
    }
}
