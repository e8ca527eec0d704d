//! "My focus": the accounts a user pinned to keep in view (docs/WEB.md). A user's own working
//! list, not a fact about the customer, so rows rather than events, kept in the backup. A user
//! pins only customers they see (a partner's users, their organisation's).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use events::metadata::Role;
use serde_json::json;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{CommandContext, EmptyBody};
use super::routes::Documented;
use super::{Answer, Handlers};
use crate::store::ExecuteError;

/// Most accounts one user pins.
pub const MAX_PINS: i64 = 200;

pub fn router(handlers: Arc<Handlers>, authenticator: Arc<crate::auth::Authenticator>) -> Router {
    super::authenticated(routes(), handlers, authenticator, 1024)
}

/// The focus routes, each described where it is served.
pub fn routes() -> Documented<Arc<Handlers>> {
    use super::openapi::{Other, EVERYONE};
    Documented::default()
        .other(
            Other::new(
                "PUT",
                "/api/v1/customers/{id}/focus",
                "pin a customer to the caller's focus (pinning twice changes nothing)",
                EVERYONE,
                200,
            ),
            pin,
        )
        .other(
            Other::new(
                "DELETE",
                "/api/v1/customers/{id}/focus",
                "unpin a customer from the caller's focus",
                EVERYONE,
                200,
            ),
            unpin,
        )
}

fn unavailable(error: sqlx::Error) -> ApiError {
    ExecuteError::from_database(&error).into()
}

/// The customer, when it exists and the caller sees it; otherwise 404 (existence does not leak).
pub(super) async fn visible(app: &Handlers, context: &CommandContext, id: &str) -> Result<Uuid, ApiError> {
    let not_found = || ApiError::NotFound { entity: "customer" };
    let customer: Uuid = id.parse().map_err(|_| not_found())?;
    let partner = (context.principal.role == Role::Partner).then_some(context.principal.partner_id);
    let seen: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'Customer' AND aggregate_id = $1)
            AND ($2::bool IS NOT TRUE OR EXISTS (SELECT 1 FROM customer_partners
                                                   WHERE customer_id = $3 AND partner_id = $4))",
    )
    .bind(customer.to_string())
    .bind(partner.is_some())
    .bind(customer)
    .bind(partner.flatten())
    .fetch_one(&app.pool)
    .await
    .map_err(unavailable)?;
    if seen {
        Ok(customer)
    } else {
        Err(not_found())
    }
}

async fn pin(
    State(app): State<Arc<Handlers>>,
    Path(id): Path<String>,
    context: CommandContext,
    _body: EmptyBody,
) -> Answer {
    let customer = visible(&app, &context, &id).await?;
    let user = &context.principal.user_id;
    // One statement: the limit is checked against the pins as they stand when the row goes in.
    let pinned: Option<bool> = sqlx::query_scalar(
        "INSERT INTO focus_pins (user_id, customer_id)
         SELECT $1, $2 WHERE (SELECT count(*) FROM focus_pins WHERE user_id = $1) < $3
             OR EXISTS (SELECT 1 FROM focus_pins WHERE user_id = $1 AND customer_id = $2)
         ON CONFLICT (user_id, customer_id) DO NOTHING
         RETURNING true",
    )
    .bind(user)
    .bind(customer)
    .bind(MAX_PINS)
    .fetch_optional(&app.pool)
    .await
    .map_err(unavailable)?;
    if pinned.is_none() {
        let already: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM focus_pins WHERE user_id = $1 AND customer_id = $2)")
                .bind(user)
                .bind(customer)
                .fetch_one(&app.pool)
                .await
                .map_err(unavailable)?;
        if !already {
            return Err(ApiError::Conflict {
                code: "too_many_pins",
                message: format!("a user pins at most {MAX_PINS} accounts; unpin one first"),
            });
        }
    }
    Ok((StatusCode::OK, Json(json!({"customer_id": customer, "pinned": true}))))
}

async fn unpin(
    State(app): State<Arc<Handlers>>,
    Path(id): Path<String>,
    context: CommandContext,
    _body: EmptyBody,
) -> Answer {
    let customer = visible(&app, &context, &id).await?;
    sqlx::query("DELETE FROM focus_pins WHERE user_id = $1 AND customer_id = $2")
        .bind(&context.principal.user_id)
        .bind(customer)
        .execute(&app.pool)
        .await
        .map_err(unavailable)?;
    Ok((StatusCode::OK, Json(json!({"customer_id": customer, "pinned": false}))))
}
