//! The query side of cstrack: GraphQL over the read models.

pub mod access;
pub mod alerts;
pub mod as_of;
pub mod at_risk;
pub mod audit;
pub mod connectors;
pub mod coverage;
pub mod coverage_store;
pub mod custom_fields;
pub mod customers;
pub mod decks;
pub mod engagement;
pub mod export;
pub mod health;
pub mod history;
pub mod limits;
pub mod live;
pub mod next_touch;
pub mod playbooks;
pub mod portfolio;
pub mod portfolio_cache;
pub mod reminders;
pub mod replays;
pub mod risk;
pub mod rules;
pub mod scalars;
pub mod schema;
pub mod settings;
pub mod templates;
pub mod timeline;
pub mod today;
pub mod web;
pub mod workload;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use events::service::http::HttpListener;
use events::service::ops::{self, PostgresReady};
use events::service::settings::DatabaseSettings;
use prometheus::{HistogramOpts, HistogramVec, Registry};
use tower_http::trace::TraceLayer;

pub use schema::{build_schema, CstrackSchema};

#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub auth: events::service::auth::AuthSettings,
    /// Address of the GraphQL endpoint (`/graphql`, subscriptions at `/graphql/ws`, the web
    /// client at `/app`, GraphiQL at `/graphiql`).
    #[arg(long, env = "CSTRACK_QUERY_ADDR", default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,
    /// Serve GraphiQL at `/graphiql` (development).
    #[arg(long, env = "CSTRACK_GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphiql: bool,
    #[command(flatten)]
    pub web: web::WebSettings,
    #[command(flatten)]
    pub http_limits: events::service::http::HttpLimits,
}

pub struct Application {
    listener: HttpListener,
    router: Router,
    http_limits: events::service::http::HttpLimits,
}

#[derive(Clone)]
struct GraphqlState {
    schema: CstrackSchema,
    /// Answers introspection-only operations, under a deeper limit (`schema::build_introspection_schema`).
    introspection: CstrackSchema,
    /// Runs the exports' fixed queries (`schema::build_export_schema`).
    export: CstrackSchema,
    pool: sqlx::PgPool,
    authenticator: std::sync::Arc<events::service::auth::Authenticator>,
    changes: live::Changes,
}

/// One GraphQL request. The caller is authenticated (401 otherwise) before the body is read; the
/// body is read up to [`limits::MAX_BODY_BYTES`] and its document measured (size, nesting) before
/// anything parses it; what the caller may see is resolved once; the request gets its own
/// DataLoaders and runs within [`limits::REQUEST_BUDGET`]. Dropping the request (the client went
/// away) drops its execution.
async fn graphql(
    axum::extract::State(state): axum::extract::State<GraphqlState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::StatusCode;
    let (parts, body) = request.into_parts();
    let principal = match authenticate(&state, &parts.headers) {
        Ok(principal) => principal,
        Err(refused) => return *refused,
    };
    let json = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if !json {
        return graphql_refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the request as application/json",
        );
    }
    let Ok(bytes) = axum::body::to_bytes(body, limits::MAX_BODY_BYTES).await else {
        return graphql_refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!("a request body is at most {} bytes", limits::MAX_BODY_BYTES),
        );
    };
    let request = match parse_request(&bytes) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    if let Err(refusal) = limits::check_document(&request.query) {
        return graphql_refusal(StatusCode::BAD_REQUEST, refusal.code(), &refusal.message());
    }
    let access = match access::Access::resolve(&state.pool, principal).await {
        Ok(access) => access,
        Err(access::Refused::Deactivated(message)) => {
            return graphql_refusal(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &message)
        }
        Err(access::Refused::Unavailable(error)) => {
            tracing::error!(%error, "resolving access failed");
            return graphql_refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the read models are unavailable",
            );
        }
    };
    let loaders = async_graphql::dataloader::DataLoader::new(customers::Store(state.pool.clone()), tokio::spawn);
    let schema = if schema::is_introspection(&request.query, request.operation_name.as_deref()) {
        &state.introspection
    } else {
        &state.schema
    };
    let request = request.data(access).data(loaders).data(risk::Memo::default());
    match tokio::time::timeout(limits::REQUEST_BUDGET, schema.execute(request)).await {
        Ok(mut response) => {
            // Some validation rules report the same fault twice (a mutation to a schema without
            // mutations): each is said once.
            response
                .errors
                .dedup_by(|a, b| a.message == b.message && a.locations == b.locations && a.path == b.path);
            async_graphql_axum::GraphQLResponse::from(response).into_response()
        }
        Err(_) => {
            tracing::warn!("a GraphQL request ran out of its time budget and was cancelled");
            graphql_refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "TIMEOUT",
                &format!(
                    "the request did not finish within {} s; ask for less (a shorter range, fewer items)",
                    limits::REQUEST_BUDGET.as_secs()
                ),
            )
        }
    }
}

/// A GraphQL request body: one JSON object with `query`, and optionally `variables` and
/// `operationName`. Batches (a JSON array) are refused: each operation is its own request.
fn parse_request(bytes: &[u8]) -> Result<async_graphql::Request, Box<axum::response::Response>> {
    use axum::http::StatusCode;
    let bad = |code: &str, message: &str| Box::new(graphql_refusal(StatusCode::BAD_REQUEST, code, message));
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|error| bad("INVALID_JSON", &format!("the body is not JSON: {error}")))?;
    match value {
        serde_json::Value::Object(_) => serde_json::from_value(value)
            .map_err(|error| bad("INVALID_REQUEST", &format!("not a GraphQL request: {error}"))),
        serde_json::Value::Array(_) => Err(bad(
            "BATCH_NOT_SUPPORTED",
            "send one operation per request, not a batch",
        )),
        _ => Err(bad(
            "INVALID_REQUEST",
            "a GraphQL request is a JSON object with a query",
        )),
    }
}

/// A request refused before execution, in the GraphQL error shape.
fn graphql_refusal(status: axum::http::StatusCode, code: &str, message: &str) -> axum::response::Response {
    (
        status,
        axum::Json(serde_json::json!({"errors": [{"message": message, "extensions": {"code": code}}]})),
    )
        .into_response()
}

/// The caller of a request, from its bearer token; 401 without a valid one.
fn authenticate(
    state: &GraphqlState,
    headers: &axum::http::HeaderMap,
) -> Result<events::service::auth::Principal, Box<axum::response::Response>> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")));
    match token.map(|token| state.authenticator.verify(token.trim())) {
        Some(Ok(principal)) => Ok(principal),
        Some(Err(error)) => Err(Box::new(unauthenticated(&error.to_string()))),
        None => Err(Box::new(unauthenticated("a bearer token is required"))),
    }
}

/// Query string of a history export.
#[derive(serde::Deserialize, Debug)]
struct ExportParams {
    from_position: Option<i64>,
    to_known_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Comma-separated event types.
    event_types: Option<String>,
    /// Include each event's stored payload beside the upcast one.
    #[serde(default)]
    original: bool,
}

fn refusal(status: axum::http::StatusCode, code: &str, message: &str) -> axum::response::Response {
    (
        status,
        axum::Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// `GET /export/{report}.{xlsx|csv}`: a report or list as a workbook or CSV (docs/EXPORTS.md),
/// computed by the same GraphQL queries with the caller's access.
async fn export_report(
    axum::extract::State(state): axum::extract::State<GraphqlState>,
    headers: axum::http::HeaderMap,
    axum::extract::Path(name): axum::extract::Path<String>,
    axum::extract::Query(params): axum::extract::Query<std::collections::BTreeMap<String, String>>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    let principal = match authenticate(&state, &headers) {
        Ok(principal) => principal,
        Err(refused) => return *refused,
    };
    let access = match access::Access::resolve(&state.pool, principal).await {
        Ok(access) => access,
        Err(access::Refused::Deactivated(message)) => {
            return refusal(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", &message)
        }
        Err(access::Refused::Unavailable(error)) => {
            tracing::error!(%error, "resolving access failed");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the read models are unavailable",
            );
        }
    };
    let started = std::time::Instant::now();
    let built = tokio::time::timeout(
        limits::REQUEST_BUDGET * 4,
        export::build(&state.export, &state.pool, &access, &name, &params),
    )
    .await;
    match built {
        Ok(Ok(export)) => {
            let body = match export.body {
                export::Payload::Whole(bytes) => {
                    tracing::info!(export = %name, bytes = bytes.len(), seconds = started.elapsed().as_secs_f64(), "export built");
                    axum::body::Body::from(bytes)
                }
                export::Payload::Streamed(body) => {
                    tracing::info!(export = %name, seconds = started.elapsed().as_secs_f64(), "export streaming");
                    body
                }
            };
            (
                [
                    (axum::http::header::CONTENT_TYPE, export.content_type.to_owned()),
                    (
                        axum::http::header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}\"", export.file_name),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Ok(Err(refused)) => refusal(
            StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST),
            &refused.code,
            &refused.message,
        ),
        Err(_) => refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "TIMEOUT",
            "the export did not finish in time; narrow it",
        ),
    }
}

/// `GET /customers/{id}/history`: the customer's whole history as JSON Lines (one event per
/// line, oldest first), streamed. Auditors only; logged.
async fn export_history(
    axum::extract::State(state): axum::extract::State<GraphqlState>,
    headers: axum::http::HeaderMap,
    axum::extract::Path(customer_id): axum::extract::Path<String>,
    params: Result<axum::extract::Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    let principal = match authenticate(&state, &headers) {
        Ok(principal) => principal,
        Err(refused) => return *refused,
    };
    let Ok(customer_id) = customer_id.parse::<uuid::Uuid>() else {
        return refusal(StatusCode::BAD_REQUEST, "INVALID_ID", "customer id must be a UUID");
    };
    let params = match params {
        Ok(axum::extract::Query(params)) => params,
        Err(rejection) => return refusal(StatusCode::BAD_REQUEST, "INVALID_QUERY", &rejection.body_text()),
    };
    let filter = history::HistoryFilter {
        from_position: params.from_position,
        to_known_at: params.to_known_at,
        event_types: params.event_types.map(|types| {
            types
                .split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect()
        }),
    };
    let allowed = principal.role == events::metadata::Role::Auditor;
    let arguments = serde_json::json!({"filter": filter, "original": params.original});
    if let Err(error) =
        history::log_access(&state.pool, &principal, "export", Some(customer_id), arguments, allowed).await
    {
        tracing::error!(%error, "recording a history access failed");
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "history access cannot be recorded",
        );
    }
    if !allowed {
        return refusal(StatusCode::FORBIDDEN, "FORBIDDEN", "history is for the auditor role");
    }
    let known: Result<bool, _> = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'Customer' AND aggregate_id = $1)",
    )
    .bind(customer_id.to_string())
    .fetch_one(&state.pool)
    .await;
    match known {
        Ok(true) => {}
        Ok(false) => return refusal(StatusCode::NOT_FOUND, "NOT_FOUND", "no such customer"),
        Err(error) => {
            tracing::error!(%error, "history export failed");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the event store is unavailable",
            );
        }
    }
    let hidden = match events::service::read_models::custom_field_definitions(&state.pool, None).await {
        Ok(definitions) => definitions.hidden_keys(principal.role),
        Err(error) => {
            tracing::error!(%error, "history export failed");
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the event store is unavailable",
            );
        }
    };
    let body = axum::body::Body::from_stream(history::export(
        state.pool.clone(),
        customer_id,
        filter,
        params.original,
        hidden,
    ));
    ([(axum::http::header::CONTENT_TYPE, "application/jsonl")], body).into_response()
}

/// `GET /graphql/ws`: GraphQL subscriptions over a WebSocket (`graphql-transport-ws`, or the
/// older `graphql-ws`). The bearer token comes in `connection_init`'s payload
/// (`{"Authorization": "Bearer <token>"}`) and is verified like a request's; what the caller may
/// see is resolved then, and each subscription filters by it.
async fn graphql_ws(
    axum::extract::State(state): axum::extract::State<GraphqlState>,
    protocol: async_graphql_axum::GraphQLProtocol,
    upgrade: axum::extract::WebSocketUpgrade,
) -> axum::response::Response {
    let Ok(connection) = state.changes.connections.clone().try_acquire_owned() else {
        return graphql_refusal(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "too many live connections; retry later",
        );
    };
    upgrade
        .max_message_size(live::MAX_MESSAGE_BYTES)
        .max_frame_size(live::MAX_MESSAGE_BYTES)
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let _connection = connection;
            let GraphqlState {
                schema,
                pool,
                authenticator,
                ..
            } = state;
            let initialised = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let init = initialised.clone();
            let serving = async_graphql_axum::GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    init.store(true, std::sync::atomic::Ordering::SeqCst);
                    let principal = authenticator
                        .verify(
                            live_token(&payload)
                                .ok_or_else(|| async_graphql::Error::new("a bearer token is required"))?,
                        )
                        .map_err(|error| async_graphql::Error::new(error.to_string()))?;
                    let access = access::Access::resolve(&pool, principal)
                        .await
                        .map_err(|refused| match refused {
                            access::Refused::Deactivated(message) => async_graphql::Error::new(message),
                            access::Refused::Unavailable(_) => {
                                async_graphql::Error::new("the read models are unavailable")
                            }
                        })?;
                    let mut data = async_graphql::Data::default();
                    data.insert(access);
                    data.insert(live::SubscriptionSlots::default());
                    Ok(data)
                })
                .serve();
            // A socket that never says who it is gives its slot back (graphql-transport-ws
            // leaves the wait to the server).
            let unannounced = async {
                tokio::time::sleep(live::INIT_WAIT).await;
                if initialised.load(std::sync::atomic::Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = serving => {}
                () = unannounced => tracing::debug!("a live connection sent no connection_init in time and was closed"),
            }
        })
}

/// The token of a subscription's `connection_init` payload: `Authorization` (any case) as
/// `Bearer <token>`, or `token`.
fn live_token(payload: &serde_json::Value) -> Option<&str> {
    let object = payload.as_object()?;
    object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .or_else(|| object.get("token").and_then(|value| value.as_str()))
        .map(str::trim)
}

fn unauthenticated(message: &str) -> axum::response::Response {
    let mut response = graphql_refusal(axum::http::StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message);
    response.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    response
}

/// GraphiQL's page and assets, served by this service itself: it works without internet access
/// and under a strict content policy (no inline script, nothing from another origin).
mod graphiql_assets {
    pub const INDEX: &str = include_str!("../assets/graphiql/index.html");
    pub const FILES: &[(&str, &str, &[u8])] = &[
        (
            "graphiql.min.js",
            "text/javascript",
            include_bytes!("../assets/graphiql/graphiql.min.js"),
        ),
        (
            "graphiql.min.css",
            "text/css",
            include_bytes!("../assets/graphiql/graphiql.min.css"),
        ),
        (
            "react.production.min.js",
            "text/javascript",
            include_bytes!("../assets/graphiql/react.production.min.js"),
        ),
        (
            "react-dom.production.min.js",
            "text/javascript",
            include_bytes!("../assets/graphiql/react-dom.production.min.js"),
        ),
        (
            "cstrack.js",
            "text/javascript",
            include_bytes!("../assets/graphiql/cstrack.js"),
        ),
        (
            "cstrack.css",
            "text/css",
            include_bytes!("../assets/graphiql/cstrack.css"),
        ),
    ];
    /// Scripts and styles from this origin only; GraphiQL's editor sets inline styles and loads
    /// its fonts and icons as data URLs.
    pub const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'";
}

async fn graphiql() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_SECURITY_POLICY, graphiql_assets::POLICY)],
        Html(graphiql_assets::INDEX),
    )
}

async fn graphiql_asset(axum::extract::Path(name): axum::extract::Path<String>) -> axum::response::Response {
    match graphiql_assets::FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => (
            [
                (axum::http::header::CONTENT_TYPE, *content_type),
                (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => refusal(axum::http::StatusCode::NOT_FOUND, "NOT_FOUND", "no such asset"),
    }
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let pool = settings.database.connect().await.context("connecting to PostgreSQL")?;
        let registry = Registry::new();
        let latency = HistogramVec::new(
            HistogramOpts::new("cstrack_graphql_request_seconds", "GraphQL request latency"),
            &["status"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        let changes = live::Changes::listen(settings.database.database_url.clone(), pool.clone());
        let schema = build_schema(pool.clone(), &settings.database.database_url, changes.clone());
        let authenticator = std::sync::Arc::new(events::service::auth::Authenticator::from_settings(&settings.auth)?);
        let state = GraphqlState {
            schema,
            introspection: schema::build_introspection_schema(),
            export: schema::build_export_schema(pool.clone(), &settings.database.database_url),
            pool: pool.clone(),
            authenticator,
            changes,
        };
        let mut router = Router::new()
            .route("/graphql", axum::routing::post(graphql).with_state(state.clone()))
            .route("/graphql/ws", get(graphql_ws).with_state(state.clone()))
            .route("/export/{name}", get(export_report).with_state(state.clone()))
            .route(
                "/customers/{customer_id}/history",
                get(export_history).with_state(state),
            );
        if settings.graphiql {
            router = router
                .route("/graphiql", get(graphiql))
                .route("/graphiql/{name}", get(graphiql_asset));
        }
        router = router.merge(web::router(settings.web.clone()));
        let router = router
            .layer(axum::middleware::from_fn(
                move |request, next: axum::middleware::Next| {
                    let latency = latency.clone();
                    async move {
                        let timer = std::time::Instant::now();
                        let response = next.run(request).await;
                        latency
                            .with_label_values(&[response.status().as_str()])
                            .observe(timer.elapsed().as_secs_f64());
                        response
                    }
                },
            ))
            .merge(ops::router(registry, vec![Box::new(PostgresReady(pool))]))
            .layer(TraceLayer::new_for_http());
        let listener = HttpListener::bind(settings.listen).await?;
        Ok(Application {
            listener,
            router,
            http_limits: settings.http_limits,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.listener
            .serve_limited("query API", self.router, self.http_limits, shutdown)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod sdl_drift {
    //! The checked-in SDL must be what the code serves. Regenerate with
    //! `UPDATE_SCHEMAS=1 cargo test -p query-api`.

    #[test]
    fn checked_in_sdl_matches_the_code() {
        let sdl = crate::schema::sdl();
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/graphql/schema.graphql");
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &sdl).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).expect("schemas/graphql/schema.graphql is missing");
        assert_eq!(
            checked_in, sdl,
            "the GraphQL SDL drifted: run UPDATE_SCHEMAS=1 cargo test -p query-api"
        );
    }
}
