//! The connectors as the settings screen sees them: which of them this service runs and how
//! often, and a "sync now" that starts a run at once (docs/CONNECTORS.md). What the runs did is
//! the query API's (GraphQL `connectors`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use events::metadata::Role;
use serde_json::json;

use super::error::ApiError;
use super::extract::{CommandContext, EmptyBody};
use super::routes::Documented;
use super::Answer;
use crate::connectors::{Directory, KNOWN};

const READERS: &[&str] = &["admin", "manager"];

pub fn router(directory: Directory, authenticator: Arc<crate::auth::Authenticator>) -> Router {
    let (router, _) = routes().finish();
    router
        .layer(axum::extract::DefaultBodyLimit::max(1024))
        .layer(axum::middleware::from_fn_with_state(
            authenticator,
            super::auth::authenticate,
        ))
        .with_state(directory)
}

/// The connector routes, each described where it is served.
pub fn routes() -> Documented<Directory> {
    use super::openapi::{Other, ADMINS};
    Documented::default()
        .other(
            Other::new(
                "GET",
                "/api/v1/connectors",
                "every connector: whether this service runs it, how often, and the setting that turns it on",
                READERS,
                200,
            ),
            list,
        )
        .other(
            Other::new(
                "POST",
                "/api/v1/connectors/{id}/sync",
                "start a run of a configured connector now (202; the run is recorded like any other)",
                ADMINS,
                202,
            ),
            sync_now,
        )
}

async fn list(State(directory): State<Directory>, context: CommandContext) -> Answer {
    if !matches!(context.principal.role, Role::Admin | Role::Manager) {
        return Err(ApiError::Forbidden {
            message: "admins and managers see the connectors".into(),
        });
    }
    let connectors: Vec<_> = KNOWN
        .iter()
        .map(|(name, label, setting)| {
            let interval = directory.interval(name);
            json!({
                "name": name,
                "label": label,
                "setting": setting,
                "configured": interval.is_some(),
                "interval_seconds": interval.map(|every| every.as_secs()),
            })
        })
        .collect();
    Ok((StatusCode::OK, Json(json!({ "connectors": connectors }))))
}

async fn sync_now(
    State(directory): State<Directory>,
    Path(name): Path<String>,
    context: CommandContext,
    _body: EmptyBody,
) -> Answer {
    if context.principal.role != Role::Admin {
        return Err(ApiError::Forbidden {
            message: "only admins start a sync".into(),
        });
    }
    if !KNOWN.iter().any(|(known, _, _)| *known == name) {
        return Err(ApiError::NotFound { entity: "connector" });
    }
    if !directory.wake(&name) {
        return Err(ApiError::Conflict {
            code: "connector_not_configured",
            message: format!("the {name} connector is not configured on this service (docs/CONNECTORS.md)"),
        });
    }
    tracing::info!(connector = %name, actor = %context.principal.user_id, "a sync was asked for");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "connector": name, "requested": true })),
    ))
}
