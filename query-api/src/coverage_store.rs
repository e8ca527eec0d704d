//! The coverage facts of accounts (shared with the alert checker).

pub use events::service::read_models::{account_facts, csms, AccountFacts};
