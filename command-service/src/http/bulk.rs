//! Many commands on customers' streams in one transaction: each is decided as a single request's
//! would be, and all the events are appended together, or none. The custom-field bulk edit, the
//! partner's bulk assignment and the bulk task actions use it.

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

/// Refuses a bulk request naming no item, more than [`MAX_BULK`], or one twice (`field` names
/// the list in the refusal).
pub fn check_ids<T: Eq + std::hash::Hash>(ids: &[T], field: &str) -> Result<(), ApiError> {
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Err(ApiError::validation(
            "out_of_range",
            field,
            format!("a bulk command names 1 to {MAX_BULK} items"),
        ));
    }
    let mut seen = HashSet::new();
    if let Some(index) = ids.iter().position(|id| !seen.insert(id)) {
        return Err(ApiError::validation(
            "duplicate",
            format!("{field}[{index}]"),
            "each appears once",
        ));
    }
    Ok(())
}

/// One command per customer: how many customers changed (those `unchanged` says need nothing
/// are left out). A refusal names the customer by its index in `customer_ids`.
pub async fn on_customers(
    app: &Handlers,
    context: &CommandContext,
    customer_ids: &[Uuid],
    command: impl Fn(Uuid) -> CustomerCommand,
    unchanged: impl Fn(&CommandError) -> bool,
) -> Result<usize, ApiError> {
    check_ids(customer_ids, "customer_ids")?;
    let commands = customer_ids.iter().map(|id| (*id, command(*id))).collect();
    decide_all(app, context, commands, "customer_ids", unchanged).await
}

/// Decides each (customer, command) in order as [`decide_all`] would, and appends nothing: for
/// each, whether it would change the account (false where `unchanged` says it needs nothing).
pub async fn decide_each(
    app: &Handlers,
    context: &CommandContext,
    commands: &[(Uuid, CustomerCommand)],
    field: &str,
    unchanged: impl Fn(&CommandError) -> bool,
) -> Result<Vec<bool>, ApiError> {
    let metadata = context.metadata.to_map();
    let mut batch = app.customers.batch();
    let mut changes = Vec::with_capacity(commands.len());
    for (index, (customer_id, command)) in commands.iter().enumerate() {
        match batch
            .decide(
                &customer_id.to_string(),
                false,
                command.clone(),
                Some(&context.principal),
                &metadata,
            )
            .await
        {
            Ok(appended) => changes.push(appended > 0),
            Err(ExecuteError::Rejected(rejection)) if unchanged(&rejection) => changes.push(false),
            Err(ExecuteError::Rejected(rejection)) => {
                return Err(rejection.within(&format!("{field}[{index}]")).into())
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(changes)
}

/// Decides each (customer, command) in order, on the customer's stream as the batch leaves it,
/// and appends every event in one transaction, or none; retried on a concurrent change. A
/// refusal names the command by its index in `field`. Answers how many commands changed
/// something (appended events).
pub async fn decide_all(
    app: &Handlers,
    context: &CommandContext,
    commands: Vec<(Uuid, CustomerCommand)>,
    field: &str,
    unchanged: impl Fn(&CommandError) -> bool,
) -> Result<usize, ApiError> {
    let metadata = context.metadata.to_map();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut batch = app.customers.batch();
        let mut changed = 0;
        for (index, (customer_id, command)) in commands.iter().enumerate() {
            let decided = batch
                .decide(
                    &customer_id.to_string(),
                    false,
                    command.clone(),
                    Some(&context.principal),
                    &metadata,
                )
                .await;
            match decided {
                Ok(0) => {}
                Ok(_) => changed += 1,
                Err(ExecuteError::Rejected(rejection)) if unchanged(&rejection) => {}
                Err(ExecuteError::Rejected(rejection)) => {
                    return Err(rejection.within(&format!("{field}[{index}]")).into())
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
            Ok(_) => {
                tx.commit().await.map_err(|error| ExecuteError::from_database(&error))?;
                appends.committed();
                return Ok(changed);
            }
        }
    }
}
