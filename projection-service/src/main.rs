use anyhow::Context;
use clap::{Parser, Subcommand};
use events::service::supervise::shutdown_signal;
use events::service::telemetry;
use projection_service::{migrate, Application, Settings};

/// A rebuild folds millions of small rows in memory; mimalloc allocates and frees them much
/// faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Rebuild projections from the store beside the live ones and switch reads to them
    /// atomically; or, with --known-at, build a named historical snapshot.
    Rebuild(RebuildArgs),
    /// List the named snapshots.
    Snapshots(DatabaseArgs),
    /// Drop a named snapshot.
    DropSnapshot(DropArgs),
    /// Dead letters: list them, or replay the streams they block once the cause is fixed.
    Dlq(DlqArgs),
}

#[derive(clap::Args)]
struct DlqArgs {
    #[command(flatten)]
    database: events::service::settings::DatabaseSettings,
    #[command(subcommand)]
    action: DlqAction,
}

#[derive(Subcommand)]
enum DlqAction {
    /// Every dead letter not replayed yet (`--all`: replayed ones too), oldest first.
    List {
        #[arg(long)]
        all: bool,
    },
    /// Apply each blocked stream from the store up to its head; report what still fails.
    Replay,
}

#[derive(clap::Args)]
struct DatabaseArgs {
    #[command(flatten)]
    database: events::service::settings::DatabaseSettings,
}

#[derive(clap::Args)]
struct DropArgs {
    #[command(flatten)]
    database: events::service::settings::DatabaseSettings,
    name: String,
}

#[derive(clap::Args)]
struct RebuildArgs {
    #[command(flatten)]
    database: events::service::settings::DatabaseSettings,
    /// A projector name, or `all`.
    #[arg(long)]
    projection: String,
    /// Only the events recorded by this instant (RFC 3339); the result is kept as a snapshot.
    #[arg(long, requires = "name")]
    known_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The snapshot's name (for example 2026-03-31).
    #[arg(long, requires = "known_at")]
    name: Option<String>,
    /// Events read from the store per query.
    #[arg(long, default_value_t = 50_000)]
    batch: i64,
    /// About how many events are held in memory at once (about 1 KB each); a larger store is
    /// rebuilt in several passes, each over a share of the streams.
    #[arg(long, default_value_t = 2_000_000)]
    pass_events: u64,
}

fn print_line(line: &str) -> anyhow::Result<()> {
    std::io::Write::write_all(&mut std::io::stdout(), format!("{line}\n").as_bytes())?;
    Ok(())
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
        Command::Rebuild(args) => {
            let pool = args.database.connect().await.context("connecting to PostgreSQL")?;
            migrate(&pool).await.context("migrating the read models")?;
            let projectors: Vec<_> = projection_service::projectors()
                .into_iter()
                .filter(|p| args.projection == "all" || p.name() == args.projection)
                .collect();
            anyhow::ensure!(
                !projectors.is_empty(),
                "unknown projection {}: one of {:?} or all",
                args.projection,
                events::topology::PROJECTORS
            );
            let request = projection_service::rebuild::RebuildRequest {
                projectors,
                known_at: args.known_at,
                snapshot_name: args.name,
                batch: args.batch.max(1),
                pass_events: args.pass_events.max(1),
                fold_workers: None,
            };
            let summary = projection_service::rebuild::rebuild(&pool, &args.database.database_url, &request).await?;
            for blocked in &summary.blocked {
                print_line(&format!(
                    "skipped: {} {} from sequence {} (event {} at position {}): {}",
                    blocked.stream_type,
                    blocked.stream_id,
                    blocked.sequence,
                    blocked.event_type,
                    blocked.global_position,
                    blocked.error
                ))?;
            }
            print_line(&format!(
                "rebuilt {} events in {:.1} s ({:.0} events/s) into {}",
                summary.events,
                summary.elapsed.as_secs_f64(),
                summary.events as f64 / summary.elapsed.as_secs_f64().max(1e-9),
                summary.schema
            ))
        }
        Command::Snapshots(args) => {
            let pool = args.database.connect().await.context("connecting to PostgreSQL")?;
            for (name, known_at, events) in projection_service::rebuild::snapshots(&pool).await? {
                print_line(&format!("{name}\tknown at {}\t{events} events", known_at.to_rfc3339()))?;
            }
            Ok(())
        }
        Command::Dlq(args) => {
            let pool = args.database.connect().await.context("connecting to PostgreSQL")?;
            migrate(&pool).await.context("migrating the read models")?;
            match args.action {
                DlqAction::List { all } => {
                    let letters = projection_service::dead_letters::list(&pool, !all).await?;
                    for letter in &letters {
                        print_line(&format!(
                            "{}\t{}\t{} {}\tsequence {}\t{}\tdead-lettered {}\t{}",
                            letter.dead_letter_id,
                            letter.projector,
                            letter.stream_type.as_deref().unwrap_or("-"),
                            letter.stream_id.as_deref().unwrap_or("(not an event)"),
                            letter.sequence.map_or("-".to_owned(), |s| s.to_string()),
                            letter.event_type.as_deref().unwrap_or("-"),
                            letter.recorded_at.to_rfc3339(),
                            match (&letter.replayed_at, &letter.replay_error) {
                                (Some(at), _) => format!("replayed {}", at.to_rfc3339()),
                                (None, Some(error)) => format!("replay failed: {error}"),
                                (None, None) => "open".to_owned(),
                            }
                        ))?;
                    }
                    print_line(&format!("{} dead letters", letters.len()))
                }
                DlqAction::Replay => {
                    let report =
                        projection_service::dead_letters::replay(&pool, &projection_service::projectors()).await?;
                    for (projector, stream_id, error) in &report.failed {
                        print_line(&format!("still failing: {projector} {stream_id}: {error}"))?;
                    }
                    print_line(&format!(
                        "replayed {} streams ({} events); {} still failing; {} dead letters are not events",
                        report.streams,
                        report.events,
                        report.failed.len(),
                        report.not_events
                    ))?;
                    anyhow::ensure!(report.failed.is_empty(), "some streams still fail to apply");
                    Ok(())
                }
            }
        }
        Command::DropSnapshot(args) => {
            let pool = args.database.connect().await.context("connecting to PostgreSQL")?;
            projection_service::rebuild::drop_snapshot(&pool, &args.name).await?;
            print_line(&format!("dropped {}", args.name))
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
