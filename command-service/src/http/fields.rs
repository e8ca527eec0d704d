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
use crate::domain::CommandError;
use crate::store::ExecuteError;

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
    let definitions = definitions(&app).await?;
    let command = |_| {
        CustomerCommand::SetCustomFields(SetCustomFields {
            values: BTreeMap::from([(key.clone(), body.value.clone())]),
            definitions: definitions.clone(),
            role: Some(context.principal.role),
        })
    };
    // Customers that already hold the value need nothing.
    let unchanged = |rejection: &CommandError| matches!(rejection, CommandError::Invalid { code: "no_change", .. });
    let changed = super::bulk::on_customers(&app, &context, &body.customer_ids, command, unchanged).await?;
    Ok((
        StatusCode::OK,
        Json(json!({
            "key": key,
            "customers": body.customer_ids.len(),
            "changed": changed,
        })),
    ))
}
