//! Bearer authentication, shared with the query API.

pub use events::service::auth::*;
