use clap::Parser;
use events::service::supervise::shutdown_signal;
use events::service::telemetry;
use query_api::{Application, Settings};

#[derive(Parser)]
#[command(name = "query-api", about = "cstrack GraphQL API over the read models")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Serve GraphQL.
    Serve(Settings),
    /// Print the GraphQL SDL.
    Sdl,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("info,sqlx=warn");
    match Cli::parse().command {
        Command::Serve(settings) => {
            Application::build(&settings)
                .await?
                .run_until_stopped(shutdown_signal())
                .await
        }
        Command::Sdl => {
            let sdl = query_api::schema::sdl();
            std::io::Write::write_all(&mut std::io::stdout(), sdl.as_bytes())?;
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
