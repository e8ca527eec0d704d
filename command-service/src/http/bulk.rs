//! One command on many customers in one transaction: every customer's command is decided as a
//! single request's would be, and all the events are appended together, or none. The custom
//! field bulk edit and the partner's bulk assignment use it.

use std::collections::HashSet;

use uuid::Uuid;

use super::error::ApiError;
use super::extract::CommandContext;
use super::Handlers;
use crate::domain::customer::CustomerCommand;
use crate::domain::CommandError;
use crate::store::ExecuteError;

/// Most customers one bulk command names.
pub const MAX_BULK: usize = 1000;

/// The customers' events appended: how many events were appended (customers `unchanged` says
/// need nothing are left out). A refusal names the customer by its index in `customer_ids`.
pub async fn on_customers(
    app: &Handlers,
    context: &CommandContext,
    customer_ids: &[Uuid],
    command: impl Fn(Uuid) -> CustomerCommand,
    unchanged: impl Fn(&CommandError) -> bool,
) -> Result<usize, ApiError> {
    if customer_ids.is_empty() || customer_ids.len() > MAX_BULK {
        return Err(ApiError::validation(
            "out_of_range",
            "customer_ids",
            format!("a bulk command names 1 to {MAX_BULK} customers"),
        ));
    }
    let mut seen = HashSet::new();
    if let Some(index) = customer_ids.iter().position(|id| !seen.insert(*id)) {
        return Err(ApiError::validation(
            "duplicate",
            format!("customer_ids[{index}]"),
            "each customer appears once",
        ));
    }
    let metadata = context.metadata.to_map();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut batch = app.customers.batch();
        for (index, customer_id) in customer_ids.iter().enumerate() {
            let decided = batch
                .decide(
                    &customer_id.to_string(),
                    false,
                    command(*customer_id),
                    Some(&context.principal),
                    &metadata,
                )
                .await;
            match decided {
                Ok(_) => {}
                Err(ExecuteError::Rejected(rejection)) if unchanged(&rejection) => {}
                Err(ExecuteError::Rejected(rejection)) => {
                    return Err(rejection.within(&format!("customer_ids[{index}]")).into())
                }
                Err(error) => return Err(error.into()),
            }
        }
        let mut tx = app
            .pool
            .begin()
            .await
            .map_err(|error| ExecuteError::from_database(&error))?;
        let appends = batch.appends();
        match batch.append(&mut tx).await {
            Err(ExecuteError::Conflict) if attempt < 3 => continue,
            Err(error) => return Err(error.into()),
            Ok(appended) => {
                tx.commit().await.map_err(|error| ExecuteError::from_database(&error))?;
                appends.committed();
                return Ok(appended.len());
            }
        }
    }
}
