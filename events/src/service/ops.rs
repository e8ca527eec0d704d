//! `/healthz` (the process answers), `/readyz` (its dependencies answer) and `/metrics`
//! (Prometheus text format).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{Encoder, Registry, TextEncoder};
use serde_json::json;

/// A dependency that must answer before the service takes traffic.
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    async fn check(&self) -> Result<(), String>;
}

/// The database answers a trivial query.
pub struct PostgresReady(pub sqlx::PgPool);

#[async_trait::async_trait]
impl ReadinessCheck for PostgresReady {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn check(&self) -> Result<(), String> {
        sqlx::query("SELECT 1")
            .execute(&self.0)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// A flag a background task keeps up to date, such as "connected to the broker".
pub struct FlagReady {
    pub name: &'static str,
    pub flag: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl ReadinessCheck for FlagReady {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn check(&self) -> Result<(), String> {
        if self.flag.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err("not connected".into())
        }
    }
}

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    checks: Arc<Vec<Box<dyn ReadinessCheck>>>,
}

/// The operational routes (all `GET`): path, what it answers, its media type. The router below
/// serves exactly these, and the OpenAPI document describes them from here.
pub const ROUTES: [(&str, &str, &str); 3] = [
    ("/healthz", "the process is up", "application/json"),
    (
        "/readyz",
        "the database and broker answer (503 when not)",
        "application/json",
    ),
    ("/metrics", "Prometheus metrics", "text/plain"),
];

/// The operational routes of a service, with its own metrics registry (not the global one, so
/// that several services can run in one test process).
pub fn router<S: Clone + Send + Sync + 'static>(registry: Registry, checks: Vec<Box<dyn ReadinessCheck>>) -> Router<S> {
    let [healthz, ready, prometheus] = ROUTES.map(|(path, _, _)| path);
    Router::new()
        .route(healthz, get(|| async { Json(json!({"status": "ok"})) }))
        .route(ready, get(readyz))
        .route(prometheus, get(metrics))
        .with_state(OpsState {
            registry,
            checks: Arc::new(checks),
        })
}

async fn readyz(State(state): State<OpsState>) -> Response {
    let mut failures = serde_json::Map::new();
    for check in state.checks.iter() {
        if let Err(error) = check.check().await {
            failures.insert(check.name().to_owned(), error.into());
        }
    }
    if failures.is_empty() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "failing": failures})),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<OpsState>) -> Response {
    let mut buffer = Vec::new();
    match TextEncoder::new().encode(&state.registry.gather(), &mut buffer) {
        Ok(()) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], buffer).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
