//! Links from a customer to the work items of a delivery tool (TargetProcess; docs/CONNECTORS.md):
//! set by the team, read back with the state the connector last pulled.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use events::metadata::Role;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{CommandContext, JsonBody};
use super::routes::Documented;
use super::{Answer, Handlers};
use crate::store::ExecuteError;

/// Most work items one customer links.
const MAX_LINKS: usize = 100;

pub fn router(handlers: Arc<Handlers>, authenticator: Arc<crate::auth::Authenticator>) -> Router {
    super::authenticated(routes(), handlers, authenticator, 64 * 1024)
}

/// The work-item routes, each described where it is served.
pub fn routes() -> Documented<Arc<Handlers>> {
    use super::openapi::{Other, EVERYONE, MANAGING};
    Documented::default()
        .other(
            Other::new(
                "PUT",
                "/api/v1/customers/{id}/work-items",
                "link a customer to the delivery tool's work items",
                MANAGING,
                200,
            ),
            set_links,
        )
        .other(
            Other::new(
                "GET",
                "/api/v1/customers/{id}/work-items",
                "the work items linked to a customer",
                EVERYONE,
                200,
            ),
            links,
        )
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkItemLinks {
    /// TargetProcess assignable ids (user stories, bugs, features, requests ...): at most 100.
    #[schemars(length(max = 100), inner(range(min = 1)), extend("uniqueItems" = true))]
    pub targetprocess_ids: Vec<i64>,
}

fn unavailable(error: sqlx::Error) -> ApiError {
    ExecuteError::from_database(&error).into()
}

/// The customer a path names, if its stream exists.
async fn customer(app: &Handlers, id: &str) -> Result<Uuid, ApiError> {
    let customer_id: Uuid = id.parse().map_err(|_| ApiError::NotFound { entity: "customer" })?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1 AND aggregate_id = $2)")
            .bind(events::customer::CustomerEvent::STREAM_TYPE)
            .bind(customer_id.to_string())
            .fetch_one(&app.pool)
            .await
            .map_err(unavailable)?;
    if exists {
        Ok(customer_id)
    } else {
        Err(ApiError::NotFound { entity: "customer" })
    }
}

async fn listed(app: &Handlers, customer_id: Uuid) -> Result<Value, ApiError> {
    let items: Vec<Value> = sqlx::query_scalar(
        "SELECT json_build_object('system', l.system, 'entity_id', l.entity_id, 'name', w.name, 'kind', w.kind,
                'state', w.state, 'modified_at', w.modified_at, 'synced_at', w.synced_at)
           FROM work_item_links l LEFT JOIN work_items w USING (system, entity_id)
          WHERE l.customer_id = $1 ORDER BY l.system, l.entity_id",
    )
    .bind(customer_id)
    .fetch_all(&app.pool)
    .await
    .map_err(unavailable)?;
    Ok(json!({"customer_id": customer_id, "work_items": items}))
}

/// `PUT /api/v1/customers/{id}/work-items`: the customer's linked work items, replaced whole.
async fn set_links(
    State(app): State<Arc<Handlers>>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<WorkItemLinks>,
) -> Answer {
    if !matches!(context.principal.role, Role::Admin | Role::Manager | Role::Csm) {
        return Err(ApiError::Forbidden {
            message: format!("the {} role may not link work items", context.principal.role.as_str()),
        });
    }
    let customer_id = customer(&app, &id).await?;
    let mut ids = body.targetprocess_ids;
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > MAX_LINKS {
        return Err(ApiError::validation(
            "too_many",
            "targetprocess_ids",
            format!("a customer links at most {MAX_LINKS} work items"),
        ));
    }
    if ids.iter().any(|id| *id <= 0) {
        return Err(ApiError::validation(
            "invalid_id",
            "targetprocess_ids",
            "TargetProcess ids are positive integers",
        ));
    }
    let mut tx = app.pool.begin().await.map_err(unavailable)?;
    sqlx::query("DELETE FROM work_item_links WHERE customer_id = $1 AND system = 'targetprocess' AND NOT (entity_id = ANY ($2))")
        .bind(customer_id)
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    sqlx::query(
        "INSERT INTO work_item_links (customer_id, system, entity_id, linked_by)
         SELECT $1, 'targetprocess', id, $3 FROM unnest($2::bigint[]) AS id ON CONFLICT DO NOTHING",
    )
    .bind(customer_id)
    .bind(&ids)
    .bind(&context.principal.user_id)
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)?;
    Ok((StatusCode::OK, Json(listed(&app, customer_id).await?)))
}

async fn links(State(app): State<Arc<Handlers>>, Path(id): Path<String>, context: CommandContext) -> Answer {
    if context.principal.role == Role::Partner {
        return Err(ApiError::Forbidden {
            message: "partners do not see the delivery tool's work items".into(),
        });
    }
    let customer_id = customer(&app, &id).await?;
    Ok((StatusCode::OK, Json(listed(&app, customer_id).await?)))
}
