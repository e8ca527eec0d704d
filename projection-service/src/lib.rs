//! The projection side of cstrack: RabbitMQ consumers that fold the event stream into read
//! models, each event applied exactly once with its checkpoint.

pub mod alerts;
pub mod backfill;
pub mod bulk;
pub mod coverage;
pub mod customers;
pub mod dead_letters;
pub mod notify;
pub mod projector;
pub mod rebuild;
pub mod reconcile;
pub mod reminders;
pub mod status;
pub mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use events::service::http::HttpListener;
use events::service::ops::{self, FlagReady, PostgresReady};
use events::service::settings::{BrokerSettings, DatabaseSettings};
use events::service::supervise::Scoped;
use prometheus::Registry;
use sqlx::PgPool;
use tokio::sync::watch;

use worker::{ProjectionWorkers, WorkerMetrics, WorkerSettings};

/// Applies the read-model migrations. The event store's migrations live in the same database
/// under other versions, so versions applied by them are not an error here.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut migrator = sqlx::migrate!();
    migrator.set_ignore_missing(true);
    migrator.run(pool).await
}

/// Every projector this service runs.
pub fn projectors() -> Vec<Arc<dyn projector::Projector>> {
    vec![
        Arc::new(coverage::CoverageProjector),
        Arc::new(customers::CustomersProjector),
    ]
}

/// Deliveries in flight per partition queue, unless configured: twice a batch, so the next batch
/// is already on its way while one is applied and acknowledged.
pub const DEFAULT_PREFETCH: u16 = 512;
/// Most deliveries applied in one transaction, unless configured.
pub const DEFAULT_APPLY_BATCH: u16 = 256;
/// Milliseconds a batch waits for company, unless configured.
pub const DEFAULT_APPLY_LINGER_MS: u64 = 10;
/// Longest linger the service accepts: a minute, far beyond any useful one, and well within
/// what a clock can add without overflowing.
pub const MOST_APPLY_LINGER_MS: u64 = 60_000;

#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub broker: BrokerSettings,
    /// Address of the health and metrics endpoints.
    #[arg(long, env = "CSTRACK_PROJECTION_ADDR", default_value = "127.0.0.1:8083")]
    pub listen: SocketAddr,
    /// Deliveries in flight per partition.
    #[arg(long, env = "CSTRACK_PREFETCH", default_value_t = DEFAULT_PREFETCH)]
    pub prefetch: u16,
    /// Most deliveries of a partition applied in one transaction, when that many have arrived
    /// (at most the prefetch; 1 applies each on its own).
    #[arg(long, env = "CSTRACK_APPLY_BATCH", default_value_t = DEFAULT_APPLY_BATCH)]
    pub apply_batch: u16,
    /// Milliseconds a partition waits, from a batch's first delivery, for more deliveries to
    /// apply in the same transaction (0 applies what has arrived at once; at most a minute).
    #[arg(long, env = "CSTRACK_APPLY_LINGER_MS", default_value_t = DEFAULT_APPLY_LINGER_MS,
          value_parser = clap::value_parser!(u64).range(0..=MOST_APPLY_LINGER_MS))]
    pub apply_linger_ms: u64,
    /// Seconds between two checks, while the partition queues are empty, for streams whose
    /// relayed events never arrived (applied from the store; see `reconcile`).
    #[arg(long, env = "CSTRACK_RECONCILE_SECONDS", default_value_t = 60.0)]
    pub reconcile_seconds: f64,
    /// Seconds between two alert checks (time-based conditions are thereby checked at least daily).
    #[arg(long, env = "CSTRACK_ALERT_CHECK_SECONDS", default_value_t = 60.0)]
    pub alert_check_seconds: f64,
    #[command(flatten)]
    pub notifications: notify::NotificationSettings,
}

pub struct Application {
    listener: HttpListener,
    router: Router,
    workers: ProjectionWorkers,
    alert_checker: (sqlx::PgPool, String, events::topology::Topology, std::time::Duration),
    status: status::StatusGauges,
    notifications: notify::NotificationSettings,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let pool = settings.database.connect().await.context("connecting to PostgreSQL")?;
        let pool_for_alerts = pool.clone();
        migrate(&pool).await.context("migrating the read models")?;
        let registry = Registry::new();
        for projector in projectors() {
            backfill::backfill_if_new(&pool, projector.as_ref())
                .await
                .with_context(|| format!("backfilling the {} projector", projector.name()))?;
        }
        let workers = ProjectionWorkers::new(
            pool.clone(),
            WorkerSettings {
                amqp_url: settings.broker.amqp_url.clone(),
                topology: settings.broker.topology(),
                prefetch: settings.prefetch,
                apply_batch: settings.apply_batch,
                apply_linger: std::time::Duration::from_millis(settings.apply_linger_ms),
                reconcile_every: std::time::Duration::from_secs_f64(settings.reconcile_seconds.max(0.1)),
            },
            projectors(),
            WorkerMetrics::register(&registry)?,
            reconcile::ReconcileMetrics::register(&registry)?,
        );
        let status = status::StatusGauges::register(&registry)?;
        let router = ops::router(
            registry,
            vec![
                Box::new(PostgresReady(pool)),
                Box::new(FlagReady {
                    name: "broker",
                    flag: workers.connected(),
                }),
            ],
        );
        let listener = HttpListener::bind(settings.listen).await?;
        let alert_checker = (
            pool_for_alerts,
            settings.broker.amqp_url.clone(),
            settings.broker.topology(),
            std::time::Duration::from_secs_f64(settings.alert_check_seconds.max(0.05)),
        );
        Ok(Application {
            listener,
            router,
            workers,
            alert_checker,
            status,
            notifications: settings.notifications.clone(),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let (pool, amqp_url, topology, interval) = self.alert_checker;
        // Scoped: if this future is dropped mid-way, the workers, checker and gauges go with it.
        let gauges = Scoped::spawn(
            self.status
                .run(pool.clone(), std::time::Duration::from_secs(5), stopped.clone()),
        );
        let notifications = self.notifications.notifications.then(|| {
            Scoped::spawn(notify::run(
                pool.clone(),
                amqp_url.clone(),
                topology.clone(),
                self.notifications.clone(),
                stopped.clone(),
            ))
        });
        let checker = Scoped::spawn(alerts::run(pool, amqp_url, topology, interval, stopped.clone()));
        let workers = Scoped::spawn(self.workers.run(stopped));
        self.listener.serve("projection service", self.router, shutdown).await?;
        stop.send_replace(true);
        workers.join().await.ok();
        checker.join().await.ok();
        if let Some(notifications) = notifications {
            if let Ok(Err(error)) = notifications.join().await {
                tracing::error!(error = format!("{error:#}"), "notifications stopped");
            }
        }
        gauges.join().await.ok();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        settings: super::Settings,
    }

    fn linger(value: &str) -> Result<u64, clap::error::ErrorKind> {
        Command::try_parse_from(["projection-service", "--apply-linger-ms", value])
            .map(|command| command.settings.apply_linger_ms)
            .map_err(|error| error.kind())
    }

    #[test]
    fn the_linger_is_refused_beyond_a_minute_or_below_zero() {
        assert_eq!(linger("0"), Ok(0));
        assert_eq!(linger("60000"), Ok(60_000));
        assert_eq!(linger("60001"), Err(clap::error::ErrorKind::ValueValidation));
        assert_eq!(
            linger("18446744073709551615"),
            Err(clap::error::ErrorKind::ValueValidation)
        );
        assert_eq!(linger("-1"), Err(clap::error::ErrorKind::UnknownArgument));
    }
}
