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
    /// Verify the store: every stream's hash chain (the first broken link of each) and every
    /// sealed digest, or those of an exported digest file. Exits with 1 when anything is broken.
    Verify(VerifyArgs),
    /// Seal the completed ranges of the store now and print every digest as JSON lines (an
    /// export to keep elsewhere and check later with `verify --digests <file>`).
    Digest(DigestArgs),
    /// Run one sync of a configured connector now and print its record as JSON (the service
    /// runs them on their own when configured; this is for a first sync or a check).
    Sync(SyncArgs),
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

#[derive(clap::Args)]
struct SyncArgs {
    /// The connector: salesforce, gainsight, microsoft365, google or targetprocess.
    connector: String,
    #[command(flatten)]
    database: events::service::settings::DatabaseSettings,
    #[command(flatten)]
    salesforce: command_service::connectors::salesforce::SalesforceSettings,
    #[command(flatten)]
    gainsight: command_service::connectors::gainsight::GainsightSettings,
    #[command(flatten)]
    microsoft: command_service::connectors::microsoft::MicrosoftSettings,
    #[command(flatten)]
    google: command_service::connectors::google::GoogleSettings,
    #[command(flatten)]
    targetprocess: command_service::connectors::targetprocess::TargetProcessSettings,
}

#[derive(clap::Args)]
struct VerifyArgs {
    #[command(flatten)]
    database: events::service::settings::DatabaseSettings,
    /// Every stream and every recorded digest.
    #[arg(long)]
    all: bool,
    /// One customer's stream.
    #[arg(long, conflicts_with = "all")]
    customer: Option<uuid::Uuid>,
    /// Digests exported earlier (JSON lines) to check against the store as it is now.
    #[arg(long)]
    digests: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct DigestArgs {
    #[command(flatten)]
    database: events::service::settings::DatabaseSettings,
    #[command(flatten)]
    digests: command_service::DigestSettings,
}

fn print_line(line: &str) -> anyhow::Result<()> {
    std::io::Write::write_all(&mut std::io::stdout(), format!("{line}\n").as_bytes())?;
    Ok(())
}

/// Prints what `verify` found; true when nothing is broken.
async fn verify(args: VerifyArgs) -> anyhow::Result<bool> {
    use events::service::chain;
    anyhow::ensure!(
        args.all || args.customer.is_some() || args.digests.is_some(),
        "say what to verify: --all, --customer <id> or --digests <file>"
    );
    let pool = args.database.connect().await.context("connecting to PostgreSQL")?;
    let mut intact = true;
    let mut report = |verification: &chain::StreamVerification| -> anyhow::Result<()> {
        if let Some(broken) = verification.broken {
            intact = false;
            print_line(&format!(
                "BROKEN {}/{} at sequence {}: {:?} ({} events checked)",
                verification.stream_type, verification.stream_id, broken.sequence, broken.reason, verification.events
            ))?;
        }
        Ok(())
    };
    if let Some(customer) = args.customer {
        let verification = chain::verify_stream(&pool, "Customer", &customer.to_string()).await?;
        report(&verification)?;
        print_line(&format!("checked 1 stream, {} events", verification.events))?;
    }
    if args.all {
        let (streams, events, broken) = chain::verify_all(&pool).await?;
        for verification in &broken {
            report(verification)?;
        }
        print_line(&format!("checked {streams} streams, {events} events"))?;
    }
    let recorded = if args.all {
        chain::digests(&pool).await?
    } else {
        Vec::new()
    };
    let exported = match &args.digests {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<Vec<chain::StoreDigest>, _>>()
            .context("reading the exported digests")?,
        None => Vec::new(),
    };
    for (what, list) in [("recorded", &recorded), ("exported", &exported)] {
        if list.is_empty() {
            continue;
        }
        let changed = chain::verify_digests(&pool, list).await?;
        for digest in &changed {
            intact = false;
            print_line(&format!(
                "CHANGED positions {}..={}: the {what} root {} no longer matches",
                digest.range_start, digest.range_end, digest.root.0
            ))?;
        }
        print_line(&format!("checked {} {what} digests", list.len()))?;
    }
    print_line(if intact { "intact" } else { "tampered" })?;
    Ok(intact)
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
        Command::Verify(args) => {
            if !verify(args).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Digest(args) => {
            let pool = args.database.connect().await.context("connecting to PostgreSQL")?;
            let wait = std::time::Duration::from_secs(30);
            events::service::chain::seal(&pool, args.digests.digest_range, wait).await?;
            for digest in events::service::chain::digests(&pool).await? {
                print_line(&serde_json::to_string(&digest)?)?;
            }
            Ok(())
        }
        Command::Seed(settings) => command_service::seed::run(&settings).await,
        Command::Sync(args) => {
            let pool = args.database.connect().await.context("connecting to PostgreSQL")?;
            migrate(&pool).await.context("migrating the event store")?;
            let handlers = command_service::handlers(&pool);
            let metrics = command_service::connectors::ConnectorMetrics::unregistered();
            use command_service::connectors::{
                gainsight::Gainsight, google::Google, microsoft::Microsoft365, run_once, salesforce::Salesforce,
                targetprocess::TargetProcess,
            };
            let report = match args.connector.as_str() {
                "salesforce" => run_once(&Salesforce::new(args.salesforce)?, &handlers, &metrics).await?,
                "gainsight" => run_once(&Gainsight::new(args.gainsight)?, &handlers, &metrics).await?,
                "microsoft365" => run_once(&Microsoft365::new(args.microsoft)?, &handlers, &metrics).await?,
                "google" => run_once(&Google::new(args.google)?, &handlers, &metrics).await?,
                "targetprocess" => run_once(&TargetProcess::new(args.targetprocess)?, &handlers, &metrics).await?,
                other => anyhow::bail!(
                    "unknown connector {other:?}; connectors: salesforce, gainsight, microsoft365, google"
                ),
            };
            match report {
                Some(report) => print_line(&serde_json::to_string(&report)?)?,
                None => print_line("{\"skipped\": \"another replica is syncing\"}")?,
            }
            Ok(())
        }
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

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_line_is_consistent() {
        // Flattened settings must not reuse an argument id (clap checks this only when a
        // subcommand is parsed, which would otherwise fail at start-up).
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
