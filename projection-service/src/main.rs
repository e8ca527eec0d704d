use anyhow::Context;
use clap::{Parser, Subcommand};
use events::service::supervise::shutdown_signal;
use events::service::telemetry;
use projection_service::{migrate, Application, Settings};

#[derive(Parser)]
#[command(name = "projection-service", about = "cstrack projectors: events -> read models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume the event stream into the read models.
    Serve(Settings),
    /// Apply the read-model migrations and exit.
    Migrate(Settings),
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
            migrate(&pool).await.context("migrating the read models")?;
            tracing::info!("read models migrated");
            Ok(())
        }
    }
}
