//! The command side of cstrack: REST commands, aggregates over the PostgreSQL event store, and
//! the relay that publishes the store to RabbitMQ.

pub mod auth;
pub mod connectors;
pub mod domain;
pub mod http;
pub mod import;
pub mod playbooks;
pub mod relay;
pub mod reminders;
pub mod repository;
pub mod seed;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use events::service::http::HttpListener;
use events::service::ops::{self, FlagReady, PostgresReady, ReadinessCheck};
use events::service::settings::{BrokerSettings, DatabaseSettings};
use prometheus::Registry;
use sqlx::PgPool;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;

use domain::{DomainServices, SystemClock};
use relay::{Relay, RelayMetrics, RelaySettings};
pub use repository::AppendSettings;
use store::{Appends, CommandHandler, StoreDirectory};

/// Applies the event store migrations. Other services keep their own migrations in the same
/// database, so versions applied by them are not an error here.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut migrator = sqlx::migrate!();
    migrator.set_ignore_missing(true);
    migrator.run(pool).await
}

#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    #[command(flatten)]
    pub database: DatabaseSettings,
    #[command(flatten)]
    pub broker: BrokerSettings,
    #[command(flatten)]
    pub auth: auth::AuthSettings,
    /// Address of the REST API.
    #[arg(long, env = "CSTRACK_COMMAND_ADDR", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub append: AppendSettings,
    /// Run the relay in this process (one replica holds the lock; the others stand by).
    #[arg(long, env = "CSTRACK_RELAY", default_value_t = true, action = clap::ArgAction::Set)]
    pub relay: bool,
    #[command(flatten)]
    pub digests: DigestSettings,
    #[command(flatten)]
    pub http_limits: events::service::http::HttpLimits,
    #[command(flatten)]
    pub salesforce: connectors::salesforce::SalesforceSettings,
    #[command(flatten)]
    pub gainsight: connectors::gainsight::GainsightSettings,
    #[command(flatten)]
    pub microsoft: connectors::microsoft::MicrosoftSettings,
    #[command(flatten)]
    pub google: connectors::google::GoogleSettings,
    #[command(flatten)]
    pub targetprocess: connectors::targetprocess::TargetProcessSettings,
    #[command(flatten)]
    pub reminders: reminders::SchedulerSettings,
    /// Slack's signing secret, to verify its interaction and slash-command requests; the Slack
    /// routes answer 404 without it.
    #[arg(long, env = "CSTRACK_SLACK_SIGNING_SECRET", hide_env_values = true)]
    pub slack_signing_secret: Option<connectors::vendor::Secret>,
    /// Internal networks and host names webhooks may call (comma-separated, `10.1.0.0/16`,
    /// `hooks.corp.example`); by default only public addresses (docs/NOTIFICATIONS.md).
    #[arg(long, env = "CSTRACK_WEBHOOK_ALLOW", default_value = "")]
    pub webhook_allow: events::service::egress::EgressPolicy,
}

/// Sealing the store in digests (one Merkle root per range of global positions).
#[derive(clap::Args, Debug, Clone)]
pub struct DigestSettings {
    /// Global positions per sealed range.
    #[arg(long, env = "CSTRACK_DIGEST_RANGE", default_value_t = 10_000)]
    pub digest_range: i64,
    /// Seconds between two attempts to seal the ranges completed since.
    #[arg(long, env = "CSTRACK_DIGEST_SECONDS", default_value_t = 60.0)]
    pub digest_seconds: f64,
}

/// Seals completed ranges at the configured interval until `stopped` turns true.
pub async fn run_sealer(pool: PgPool, settings: DigestSettings, mut stopped: watch::Receiver<bool>) {
    let interval = Duration::from_secs_f64(settings.digest_seconds.max(0.05));
    while !*stopped.borrow() {
        match events::service::chain::seal(&pool, settings.digest_range, interval).await {
            Ok(sealed) if !sealed.is_empty() => {
                let last = &sealed[sealed.len() - 1];
                tracing::info!(ranges = sealed.len(), through = last.range_end, root = %last.root.0, "store sealed");
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "sealing the store failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stopped.changed() => {}
        }
    }
}

impl Settings {
    pub fn relay_settings(&self) -> RelaySettings {
        RelaySettings {
            database_url: self.database.database_url.clone(),
            amqp_url: self.broker.amqp_url.clone(),
            topology: self.broker.topology(),
            batch_size: 500,
            idle_poll: Duration::from_millis(250),
        }
    }
}

/// The command handlers of every aggregate, over one pool, appending as [`AppendSettings`]'s
/// defaults say.
pub fn handlers(pool: &PgPool) -> http::Handlers {
    handlers_appending(pool, AppendSettings::default())
}

/// As [`handlers`], appending as `append` says.
pub fn handlers_appending(pool: &PgPool, append: AppendSettings) -> http::Handlers {
    let services = DomainServices {
        directory: Arc::new(StoreDirectory(pool.clone())),
        clock: Arc::new(SystemClock),
    };
    let appends = Appends::new(pool.clone());
    http::Handlers {
        customers: CommandHandler::new(pool.clone(), services.clone(), appends.clone(), append),
        csms: CommandHandler::new(pool.clone(), services.clone(), appends.clone(), append),
        partners: CommandHandler::new(pool.clone(), services.clone(), appends.clone(), append),
        rules: CommandHandler::new(pool.clone(), services.clone(), appends.clone(), append),
        alerts: CommandHandler::new(pool.clone(), services.clone(), appends.clone(), append),
        reminders: CommandHandler::new(pool.clone(), services.clone(), appends.clone(), append),
        task_templates: CommandHandler::new(pool.clone(), services.clone(), appends.clone(), append),
        recurrences: CommandHandler::new(pool.clone(), services.clone(), appends.clone(), append),
        playbooks: CommandHandler::new(pool.clone(), services.clone(), appends.clone(), append),
        playbook_runs: CommandHandler::new(pool.clone(), services.clone(), appends.clone(), append),
        fields: CommandHandler::new(pool.clone(), services, appends, append),
        pool: pool.clone(),
    }
}

/// The running command service, as production and the tests start it.
pub struct Application {
    listener: HttpListener,
    router: Router,
    relay: Option<Relay>,
    sealer: (PgPool, DigestSettings),
    http_limits: events::service::http::HttpLimits,
    /// The configured connectors, run until the service stops.
    connectors: Vec<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>,
    stop_connectors: watch::Sender<bool>,
}

impl Application {
    /// Connects, migrates and binds; serving starts with [`Application::run_until_stopped`].
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let pool = settings.database.connect().await.context("connecting to PostgreSQL")?;
        migrate(&pool).await.context("migrating the event store")?;

        let registry = Registry::new();
        registry.register(Box::new(store::COMMAND_STAGES.clone()))?;
        registry.register(Box::new(repository::APPENDS_WAITING.clone()))?;
        registry.register(Box::new(repository::APPEND_GROUPS.clone()))?;
        let mut checks: Vec<Box<dyn ReadinessCheck>> = vec![Box::new(PostgresReady(pool.clone()))];
        let relay = if settings.relay {
            let relay = Relay::new(settings.relay_settings(), RelayMetrics::register(&registry)?);
            checks.push(Box::new(FlagReady {
                name: "relay",
                flag: relay.connected(),
            }));
            Some(relay)
        } else {
            None
        };
        let authenticator = Arc::new(auth::Authenticator::from_settings(&settings.auth)?.with_directory(pool.clone()));
        let handlers = Arc::new(handlers_appending(&pool, settings.append));
        let metrics = connectors::ConnectorMetrics::register(&registry)?;
        let (stop_connectors, connectors_stopped) = watch::channel(false);
        let scheduler_stopped = connectors_stopped.clone();
        let mut supervisor = connectors::Supervisor::new(handlers.clone(), metrics, connectors_stopped);
        if settings.salesforce.token_url.is_some() {
            let salesforce = connectors::salesforce::Salesforce::new(settings.salesforce.clone())
                .context("configuring the Salesforce connector")?;
            supervisor.add(salesforce);
        }
        if settings.gainsight.url.is_some() {
            let gainsight = connectors::gainsight::Gainsight::new(settings.gainsight.clone())
                .context("configuring the Gainsight connector")?;
            supervisor.add(gainsight);
        }
        if settings.microsoft.token_url.is_some() {
            let microsoft = connectors::microsoft::Microsoft365::new(settings.microsoft.clone())
                .context("configuring the Microsoft 365 connector")?;
            supervisor.add(microsoft);
        }
        if settings.google.client_email.is_some() {
            let google = connectors::google::Google::new(settings.google.clone())
                .context("configuring the Google Workspace connector")?;
            supervisor.add(google);
        }
        if settings.targetprocess.url.is_some() {
            let targetprocess = connectors::targetprocess::TargetProcess::new(settings.targetprocess.clone())
                .context("configuring the TargetProcess connector")?;
            supervisor.add(targetprocess);
        }
        let scheduler = handlers.clone();
        let router = http::router(handlers.clone(), authenticator.clone(), pool.clone())
            .merge(http::notifications::router(
                handlers.clone(),
                authenticator.clone(),
                settings.slack_signing_secret.clone(),
                settings.webhook_allow.clone(),
            ))
            .merge(http::views::router(handlers.clone(), authenticator.clone()))
            .merge(http::focus::router(handlers.clone(), authenticator.clone()))
            .merge(http::links::router(handlers, authenticator.clone()))
            .merge(http::connectors::router(supervisor.directory(), authenticator))
            .merge(ops::router(registry, checks))
            .layer(http::browsers())
            .layer(TraceLayer::new_for_http());
        let listener = HttpListener::bind(settings.listen).await?;
        Ok(Application {
            listener,
            router,
            relay,
            sealer: (pool, settings.digests.clone()),
            http_limits: settings.http_limits,
            connectors: {
                let mut loops = supervisor.loops;
                if settings.reminders.enabled {
                    loops.push(Box::pin(reminders::run(
                        scheduler,
                        settings.reminders,
                        scheduler_stopped,
                    )));
                }
                loops
            },
            stop_connectors,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.port()
    }

    /// Serves until `shutdown` completes, then stops the relay.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_relay, relay_stopped) = watch::channel(false);
        // Scoped: if this future is dropped mid-way, the sealer and the relay go with it.
        let sealer =
            events::service::supervise::Scoped::spawn(run_sealer(self.sealer.0, self.sealer.1, relay_stopped.clone()));
        let relay = self
            .relay
            .map(|relay| events::service::supervise::Scoped::spawn(relay.run(relay_stopped)));
        let connectors: Vec<_> = self
            .connectors
            .into_iter()
            .map(events::service::supervise::Scoped::spawn)
            .collect();
        self.listener
            .serve_limited("command service", self.router, self.http_limits, shutdown)
            .await?;
        stop_relay.send_replace(true);
        self.stop_connectors.send_replace(true);
        for connector in connectors {
            connector.join().await.ok();
        }
        if let Some(relay) = relay {
            relay.join().await.ok();
        }
        sealer.join().await.ok();
        Ok(())
    }
}
