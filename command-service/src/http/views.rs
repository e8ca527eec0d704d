//! Saved views: a list screen's filters, order and columns kept under a name, private to the
//! user who saved it or shared with their team (docs/WEB.md). Settings, not facts: rows, kept in
//! the backup. Who sees a shared view is one rule: staff share with staff, a partner's users
//! with the users of the same partner organisation.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use events::metadata::Role;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{CommandContext, EmptyBody, JsonBody};
use super::routes::Documented;
use super::{Answer, Handlers};
use crate::store::ExecuteError;

/// The screens a view may be saved for.
pub const SCREENS: &[&str] = &["customers"];
/// Most views one user saves.
const MAX_VIEWS: i64 = 100;
/// Longest saved address query (the screen's filters).
const MAX_PARAMS: usize = 2000;

pub fn router(handlers: Arc<Handlers>, authenticator: Arc<crate::auth::Authenticator>) -> Router {
    super::authenticated(routes(), handlers, authenticator, 16 * 1024)
}

/// The saved-view routes, each described where it is served.
pub fn routes() -> Documented<Arc<Handlers>> {
    use super::openapi::{Other, EVERYONE};
    Documented::default()
        .other(
            Other::new(
                "GET",
                "/api/v1/saved-views",
                "the caller's saved views and those shared with their team, by screen and name",
                EVERYONE,
                200,
            ),
            list,
        )
        .other(
            Other::new(
                "POST",
                "/api/v1/saved-views",
                "save a screen's filters under a name, private or shared with the team",
                EVERYONE,
                201,
            ),
            save,
        )
        .other(
            Other::new(
                "PUT",
                "/api/v1/saved-views/{id}",
                "change a saved view (its owner only)",
                EVERYONE,
                200,
            ),
            change,
        )
        .other(
            Other::new(
                "DELETE",
                "/api/v1/saved-views/{id}",
                "remove a saved view (its owner, or an admin for a shared one)",
                EVERYONE,
                200,
            ),
            remove,
        )
}

/// A view to save.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedView {
    /// 1 to 100 characters, one line; unique per user and screen.
    #[schemars(length(min = 1, max = 100), pattern(crate::domain::ONE_LINE))]
    pub name: String,
    /// The screen it is for.
    #[schemars(extend("enum" = SCREENS))]
    pub screen: String,
    /// The screen's address query without `?` (`health=RED&sort=ARR_DESC`), at most 2,000
    /// characters.
    #[schemars(
        length(max = 2000),
        pattern(r"^([^?\s\u0000-\u001F\u007F-\u009F][^\s\u0000-\u001F\u007F-\u009F]*)?$")
    )]
    pub params: String,
    /// Shared with the team (staff with staff, a partner's users with each other).
    #[serde(default)]
    pub shared: bool,
}

fn unavailable(error: sqlx::Error) -> ApiError {
    ExecuteError::from_database(&error).into()
}

fn check(body: &SavedView) -> Result<String, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "invalid_name",
            "name",
            "a view's name is 1 to 100 characters on one line",
        ));
    }
    if !SCREENS.contains(&body.screen.as_str()) {
        return Err(ApiError::validation(
            "unknown_screen",
            "screen",
            format!("views are saved for {}", SCREENS.join(", ")),
        ));
    }
    if body.params.len() > MAX_PARAMS
        || body.params.starts_with('?')
        || body.params.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ApiError::validation(
            "invalid_params",
            "params",
            format!("params is an address query without '?', at most {MAX_PARAMS} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// The caller's team for sharing: `None` for staff, the organisation for a partner's users.
fn team(context: &CommandContext) -> Option<Uuid> {
    (context.principal.role == Role::Partner)
        .then_some(context.principal.partner_id)
        .flatten()
}

fn taken(error: sqlx::Error) -> ApiError {
    match &error {
        sqlx::Error::Database(database) if database.constraint() == Some("saved_views_name") => ApiError::Conflict {
            code: "view_name_taken",
            message: "you already have a view of that name on this screen".into(),
        },
        _ => unavailable(error),
    }
}

async fn list(State(app): State<Arc<Handlers>>, context: CommandContext) -> Answer {
    let views: Vec<Value> = sqlx::query_scalar(
        "SELECT json_build_object('view_id', view_id, 'name', name, 'screen', screen, 'params', params,
                'shared', shared, 'owner', owner_id, 'mine', owner_id = $1, 'updated_at', updated_at)
           FROM saved_views
          WHERE owner_id = $1 OR (shared AND owner_partner_id IS NOT DISTINCT FROM $2)
          ORDER BY screen, lower(name), view_id",
    )
    .bind(&context.principal.user_id)
    .bind(team(&context))
    .fetch_all(&app.pool)
    .await
    .map_err(unavailable)?;
    Ok((StatusCode::OK, Json(json!({"views": views}))))
}

async fn save(
    State(app): State<Arc<Handlers>>,
    context: CommandContext,
    JsonBody(body): JsonBody<SavedView>,
) -> Answer {
    let name = check(&body)?;
    let owned: i64 = sqlx::query_scalar("SELECT count(*) FROM saved_views WHERE owner_id = $1")
        .bind(&context.principal.user_id)
        .fetch_one(&app.pool)
        .await
        .map_err(unavailable)?;
    if owned >= MAX_VIEWS {
        return Err(ApiError::Conflict {
            code: "too_many_views",
            message: format!("a user saves at most {MAX_VIEWS} views; remove one first"),
        });
    }
    let view_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO saved_views (view_id, owner_id, owner_partner_id, name, screen, params, shared)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(view_id)
    .bind(&context.principal.user_id)
    .bind(team(&context))
    .bind(&name)
    .bind(&body.screen)
    .bind(&body.params)
    .bind(body.shared)
    .execute(&app.pool)
    .await
    .map_err(taken)?;
    Ok((StatusCode::CREATED, Json(json!({"view_id": view_id, "name": name}))))
}

fn view_id(id: &str) -> Result<Uuid, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound { entity: "saved view" })
}

async fn change(
    State(app): State<Arc<Handlers>>,
    Path(id): Path<String>,
    context: CommandContext,
    JsonBody(body): JsonBody<SavedView>,
) -> Answer {
    let name = check(&body)?;
    let changed = sqlx::query(
        "UPDATE saved_views SET name = $3, screen = $4, params = $5, shared = $6, updated_at = now()
          WHERE view_id = $1 AND owner_id = $2",
    )
    .bind(view_id(&id)?)
    .bind(&context.principal.user_id)
    .bind(&name)
    .bind(&body.screen)
    .bind(&body.params)
    .bind(body.shared)
    .execute(&app.pool)
    .await
    .map_err(taken)?
    .rows_affected();
    if changed == 0 {
        return Err(ApiError::NotFound { entity: "saved view" });
    }
    Ok((StatusCode::OK, Json(json!({"view_id": id, "name": name}))))
}

async fn remove(
    State(app): State<Arc<Handlers>>,
    Path(id): Path<String>,
    context: CommandContext,
    _body: EmptyBody,
) -> Answer {
    // The owner removes their own; an admin may remove a view shared with the staff.
    let removed = sqlx::query(
        "DELETE FROM saved_views
          WHERE view_id = $1 AND (owner_id = $2 OR ($3 AND shared AND owner_partner_id IS NULL))",
    )
    .bind(view_id(&id)?)
    .bind(&context.principal.user_id)
    .bind(context.principal.role == Role::Admin)
    .execute(&app.pool)
    .await
    .map_err(unavailable)?
    .rows_affected();
    if removed == 0 {
        return Err(ApiError::NotFound { entity: "saved view" });
    }
    Ok((StatusCode::OK, Json(json!({"view_id": id, "removed": true}))))
}
