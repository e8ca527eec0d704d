//! Custom-field routes: definitions (admins), a customer's values, and the bulk edit that sets
//! one field on many customers in one transaction (docs/DOMAIN.md section 9).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use events::fields::{Definitions, FIELDS_STREAM_ID};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{CommandContext, EmptyBody, JsonBody};
use super::{path_id, run, Answer, AppState, Reply};
use crate::domain::customer::{CustomerCommand, SetCustomFields};
use crate::domain::fields::{DefineField, FieldsCommand, Reorder};
use crate::store::ExecuteError;

/// Most customers one bulk edit sets.
pub const MAX_BULK: usize = 1000;

pub async fn definitions(app: &super::Handlers) -> Result<Arc<Definitions>, ApiError> {
    events::service::read_models::custom_field_definitions(&app.pool, None)
        .await
        .map(Arc::new)
        .map_err(|error| ExecuteError::from_database(&error).into())
}

pub async fn define_field(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(body): JsonBody<DefineField>,
) -> Answer {
    let reply = Reply::created("key", body.key.clone());
    run(
        &app.fields,
        FIELDS_STREAM_ID,
        FieldsCommand::Define(body),
        &context,
        reply,
    )
    .await
}

pub async fn change_field(
    State(app): State<AppState>,
    Path(key): Path<String>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<DefineField>,
) -> Answer {
    if body.key != key {
        return Err(ApiError::validation(
            "key_mismatch",
            "key",
            "the body's key must be the key in the path",
        ));
    }
    body.key = key;
    run(
        &app.fields,
        FIELDS_STREAM_ID,
        FieldsCommand::Change(body),
        &context,
        Reply::OK,
    )
    .await
}

pub async fn retire_field(
    State(app): State<AppState>,
    Path(key): Path<String>,
    context: CommandContext,
    _body: EmptyBody,
) -> Answer {
    run(
        &app.fields,
        FIELDS_STREAM_ID,
        FieldsCommand::Retire { key },
        &context,
        Reply::OK,
    )
    .await
}

pub async fn reorder_fields(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(body): JsonBody<Reorder>,
) -> Answer {
    run(
        &app.fields,
        FIELDS_STREAM_ID,
        FieldsCommand::Reorder(body),
        &context,
        Reply::OK,
    )
    .await
}

pub async fn set_custom_fields(
    State(app): State<AppState>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(mut body): JsonBody<SetCustomFields>,
) -> Answer {
    let customer_id = path_id(&id, "customer")?;
    body.definitions = definitions(&app).await?;
    body.role = Some(context.principal.role);
    run(
        &app.customers,
        &customer_id.to_string(),
        CustomerCommand::SetCustomFields(body),
        &context,
        Reply::OK,
    )
    .await
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkSet {
    /// 1 to 1,000 distinct customers.
    #[schemars(length(min = 1, max = 1000), extend("uniqueItems" = true))]
    pub customer_ids: Vec<Uuid>,
    /// The value to set (`null` clears the field).
    #[schemars(with = "crate::domain::FieldValue")]
    pub value: Value,
}

/// Sets one field on up to 1,000 customers: every customer's command is checked as a single
/// edit would be, and all are appended in one transaction, or none.
pub async fn bulk_set(
    State(app): State<AppState>,
    Path(key): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<BulkSet>,
) -> Answer {
    if body.customer_ids.is_empty() || body.customer_ids.len() > MAX_BULK {
        return Err(ApiError::validation(
            "out_of_range",
            "customer_ids",
            format!("a bulk edit names 1 to {MAX_BULK} customers"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(index) = body.customer_ids.iter().position(|id| !seen.insert(*id)) {
        return Err(ApiError::validation(
            "duplicate",
            format!("customer_ids[{index}]"),
            "each customer appears once",
        ));
    }
    let definitions = definitions(&app).await?;
    let metadata = context.metadata.to_map();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut batch = app.customers.batch();
        for (index, customer_id) in body.customer_ids.iter().enumerate() {
            let command = CustomerCommand::SetCustomFields(SetCustomFields {
                values: BTreeMap::from([(key.clone(), body.value.clone())]),
                definitions: definitions.clone(),
                role: Some(context.principal.role),
            });
            match batch
                .decide(
                    &customer_id.to_string(),
                    false,
                    command,
                    Some(&context.principal),
                    &metadata,
                )
                .await
            {
                Ok(_) => {}
                // Customers that already hold the value need nothing.
                Err(ExecuteError::Rejected(crate::domain::CommandError::Invalid { code: "no_change", .. })) => {}
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
                return Ok((
                    StatusCode::OK,
                    Json(json!({
                        "key": key,
                        "customers": body.customer_ids.len(),
                        "changed": appended.len(),
                    })),
                ));
            }
        }
    }
}
