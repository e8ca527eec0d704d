//! The query side of cstrack: GraphQL over the read models.

pub mod alerts;
pub mod coverage;
pub mod coverage_store;
pub mod engagement;
pub mod health;
pub mod scalars;
pub mod schema;
pub mod timeline;
pub mod workload;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::GraphQL;
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
    /// Address of the GraphQL endpoint (`/graphql`, GraphiQL at `/`).
    #[arg(long, env = "CSTRACK_QUERY_ADDR", default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,
    /// Serve GraphiQL at `/` (development).
    #[arg(long, env = "CSTRACK_GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphiql: bool,
}

pub struct Application {
    listener: HttpListener,
    router: Router,
}

async fn graphiql() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
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
        let schema = build_schema(pool.clone());
        let mut router = Router::new().route_service("/graphql", GraphQL::new(schema));
        if settings.graphiql {
            router = router.route("/", get(graphiql));
        }
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
        Ok(Application { listener, router })
    }

    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.listener.serve("query API", self.router, shutdown).await?;
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
