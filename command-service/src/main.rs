use anyhow::Context;
use clap::{Parser, Subcommand};
use command_service::relay::{Relay, RelayMetrics};
use command_service::{migrate, Application, Settings};
use events::service::supervise::shutdown_signal;
use events::service::telemetry;

#[derive(Parser)]
#[command(name = "command-service", about = "cstrack commands, event store and relay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API (and the relay unless CSTRACK_RELAY=false).
    Serve(Settings),
    /// Apply the event store migrations and exit.
    Migrate(Settings),
    /// Run only the relay.
    Relay(Settings),
    /// Record the deterministic demo portfolio (idempotent).
    Seed(command_service::seed::SeedSettings),
    /// Mint a development token (HS256, signed with CSTRACK_JWT_SECRET) and print it.
    Token(TokenArgs),
}

#[derive(clap::Args)]
struct TokenArgs {
    #[command(flatten)]
    auth: command_service::auth::AuthSettings,
    /// The user id (`sub`).
    #[arg(long, default_value = "dev-admin")]
    user: String,
    /// admin, manager, csm, partner, readonly or auditor.
    #[arg(long, default_value = "admin", value_parser = parse_role)]
    role: events::metadata::Role,
    /// The partner organisation of a partner user.
    #[arg(long)]
    partner_id: Option<uuid::Uuid>,
    /// Lifetime in hours.
    #[arg(long, default_value_t = 12)]
    hours: i64,
}

fn parse_role(value: &str) -> Result<events::metadata::Role, String> {
    events::metadata::Role::parse(value).ok_or_else(|| format!("unknown role {value}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("info,sqlx=warn,lapin=warn");
    match Cli::parse().command {
        Command::Serve(settings) => {
            Application::build(&settings)
                .await?
                .run_until_stopped(shutdown_signal())
                .await
        }
        Command::Migrate(settings) => {
            let pool = settings.database.connect().await.context("connecting to PostgreSQL")?;
            migrate(&pool).await.context("migrating the event store")?;
            tracing::info!("event store migrated");
            Ok(())
        }
        Command::Relay(settings) => {
            let relay = Relay::new(
                settings.relay_settings(),
                RelayMetrics::register(&prometheus::Registry::new())?,
            );
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let running = tokio::spawn(relay.run(stopped));
            shutdown_signal().await;
            stop.send_replace(true);
            running.await.ok();
            Ok(())
        }
        Command::Seed(settings) => command_service::seed::run(&settings).await,
        Command::Token(args) => {
            let token = command_service::auth::mint(
                &args.auth,
                &args.user,
                args.role,
                args.partner_id,
                chrono::Duration::hours(args.hours),
            )?;
            std::io::Write::write_all(&mut std::io::stdout(), format!("{token}\n").as_bytes())?;
            Ok(())
        }
    }
}
