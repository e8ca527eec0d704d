//! REST routes under `/api/v1`. Every answer to an accepted command names the stream, its new
//! sequence and the ids of the appended events.

pub mod error;
pub mod extract;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::domain::csm::{Csm, CsmCommand, RegisterCsm};
use crate::domain::customer::{
    AddStakeholder, AssignCsm, Customer, CustomerCommand, LogActivity, OnboardCustomer, RecordHealthScore,
    RetractActivity,
};
use crate::store::{Appended, CommandHandler};
use error::ApiError;
use extract::{CommandContext, JsonBody};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub struct Handlers {
    pub customers: CommandHandler<Customer>,
    pub csms: CommandHandler<Csm>,
}

type AppState = Arc<Handlers>;
type Accepted = (StatusCode, Json<Value>);

pub fn router(handlers: Arc<Handlers>) -> Router {
    Router::new()
        .route("/api/v1/csms", post(register_csm))
        .route("/api/v1/customers", post(onboard_customer))
        .route("/api/v1/customers/{id}/csm", put(assign_csm))
        .route("/api/v1/customers/{id}/stakeholders", post(add_stakeholder))
        .route("/api/v1/customers/{id}/activities", post(log_activity))
        .route(
            "/api/v1/customers/{id}/activities/{activity_id}",
            delete(retract_activity),
        )
        .route("/api/v1/customers/{id}/health-scores", post(record_health_score))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(handlers)
}

/// The answer to an accepted command, with the id of what it created when it created something.
fn accepted(status: StatusCode, appended: Appended, created: Option<(&str, Uuid)>) -> Accepted {
    let mut body = serde_json::to_value(appended).expect("an append result serializes");
    if let (Some((name, id)), Value::Object(map)) = (created, &mut body) {
        map.insert(name.to_owned(), json!(id));
    }
    (status, Json(body))
}

/// A path id that is not a UUID cannot name anything that exists.
fn path_id(value: &str, entity: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value).map_err(|_| ApiError::NotFound { entity })
}

async fn register_csm(
    State(handlers): State<AppState>,
    CommandContext(metadata): CommandContext,
    JsonBody(mut command): JsonBody<RegisterCsm>,
) -> Result<Accepted, ApiError> {
    let csm_id = *command.csm_id.get_or_insert_with(Uuid::now_v7);
    let appended = handlers
        .csms
        .execute(&csm_id.to_string(), CsmCommand::Register(command), &metadata)
        .await?;
    Ok(accepted(StatusCode::CREATED, appended, Some(("csm_id", csm_id))))
}

async fn onboard_customer(
    State(handlers): State<AppState>,
    CommandContext(metadata): CommandContext,
    JsonBody(mut command): JsonBody<OnboardCustomer>,
) -> Result<Accepted, ApiError> {
    let customer_id = *command.customer_id.get_or_insert_with(Uuid::now_v7);
    let appended = handlers
        .customers
        .execute(&customer_id.to_string(), CustomerCommand::Onboard(command), &metadata)
        .await?;
    Ok(accepted(
        StatusCode::CREATED,
        appended,
        Some(("customer_id", customer_id)),
    ))
}

async fn assign_csm(
    State(handlers): State<AppState>,
    Path(id): Path<String>,
    CommandContext(metadata): CommandContext,
    JsonBody(command): JsonBody<AssignCsm>,
) -> Result<Accepted, ApiError> {
    let customer_id = path_id(&id, "customer")?;
    let appended = handlers
        .customers
        .execute(&customer_id.to_string(), CustomerCommand::AssignCsm(command), &metadata)
        .await?;
    Ok(accepted(StatusCode::OK, appended, None))
}

async fn add_stakeholder(
    State(handlers): State<AppState>,
    Path(id): Path<String>,
    CommandContext(metadata): CommandContext,
    JsonBody(mut command): JsonBody<AddStakeholder>,
) -> Result<Accepted, ApiError> {
    let customer_id = path_id(&id, "customer")?;
    let stakeholder_id = *command.stakeholder_id.get_or_insert_with(Uuid::now_v7);
    let appended = handlers
        .customers
        .execute(
            &customer_id.to_string(),
            CustomerCommand::AddStakeholder(command),
            &metadata,
        )
        .await?;
    Ok(accepted(
        StatusCode::CREATED,
        appended,
        Some(("stakeholder_id", stakeholder_id)),
    ))
}

async fn log_activity(
    State(handlers): State<AppState>,
    Path(id): Path<String>,
    CommandContext(metadata): CommandContext,
    JsonBody(mut command): JsonBody<LogActivity>,
) -> Result<Accepted, ApiError> {
    let customer_id = path_id(&id, "customer")?;
    let activity_id = *command.activity_id.get_or_insert_with(Uuid::now_v7);
    command.logged_by.get_or_insert_with(|| metadata.actor.id.clone());
    let appended = handlers
        .customers
        .execute(
            &customer_id.to_string(),
            CustomerCommand::LogActivity(command),
            &metadata,
        )
        .await?;
    Ok(accepted(
        StatusCode::CREATED,
        appended,
        Some(("activity_id", activity_id)),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Retraction {
    reason: String,
}

async fn retract_activity(
    State(handlers): State<AppState>,
    Path((id, activity_id)): Path<(String, String)>,
    CommandContext(metadata): CommandContext,
    JsonBody(retraction): JsonBody<Retraction>,
) -> Result<Accepted, ApiError> {
    let customer_id = path_id(&id, "customer")?;
    let activity_id = path_id(&activity_id, "activity")?;
    let command = CustomerCommand::RetractActivity(RetractActivity {
        activity_id,
        reason: retraction.reason,
    });
    let appended = handlers
        .customers
        .execute(&customer_id.to_string(), command, &metadata)
        .await?;
    Ok(accepted(StatusCode::OK, appended, None))
}

async fn record_health_score(
    State(handlers): State<AppState>,
    Path(id): Path<String>,
    CommandContext(metadata): CommandContext,
    JsonBody(command): JsonBody<RecordHealthScore>,
) -> Result<Accepted, ApiError> {
    let customer_id = path_id(&id, "customer")?;
    let appended = handlers
        .customers
        .execute(
            &customer_id.to_string(),
            CustomerCommand::RecordHealthScore(command),
            &metadata,
        )
        .await?;
    Ok(accepted(StatusCode::CREATED, appended, None))
}
