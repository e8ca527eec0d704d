//! The load generator: makes up a portfolio from a seed (CSMs holding 20 to 60 customers each,
//! tiers, ARR, stakeholders, partners, a year of activities on a weekday rhythm, weekly health
//! scores, tasks, monthly partner reports) and plays it through the real command API, then
//! optionally holds a steady mix of new commands and GraphQL reads. A progress bar on a
//! terminal; a JSON report at the end.
//!
//!     cargo run --release -p tests --bin loadgen -- --in-process --customers 200 --clients 8
//!     cargo run --release -p tests --bin loadgen -- --token "$TOKEN" --mode steady --duration 60
//!
//! Against a running system (`deploy/start.sh`) pass a token that may register CSMs and
//! onboard customers (`command-service token --role admin --user loadgen`). The same seed and
//! `--as-of` make the same portfolio with the same ids, so `--mode steady` after a `bulk` run
//! with the same seed writes to and reads the customers that run created.
#![allow(clippy::print_stdout)]

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{NaiveDate, Utc};
use clap::{Parser, ValueEnum};
use serde_json::{json, Value};
use tests::load::{self, Portfolio, Provenance, Recorder, Target};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Play the portfolio's history.
    Bulk,
    /// Commands and reads on the portfolio's customers for `--duration`.
    Steady,
    /// Bulk, then steady.
    Both,
}

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum, default_value = "bulk")]
    mode: Mode,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 200)]
    customers: usize,
    /// The day the history ends on (default: today, UTC).
    #[arg(long)]
    as_of: Option<NaiveDate>,
    /// Concurrent clients (each plays whole customers, in order).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Target commands per second of the bulk run; 0 sends as fast as answers come.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Activities per batch request in the bulk run (up to 1,000); 1 sends each on its own.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Seconds of the steady mix.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Commands per second of the steady mix.
    #[arg(long, default_value_t = 50.0)]
    write_rate: f64,
    /// GraphQL reads per second of the steady mix.
    #[arg(long, default_value_t = 50.0)]
    read_rate: f64,
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    command_url: String,
    #[arg(long, default_value = "http://127.0.0.1:8082/graphql")]
    graphql_url: String,
    /// Bearer token (or CSTRACK_TOKEN).
    #[arg(long, env = "CSTRACK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Start a whole system in this process (its own database and broker names) and load that.
    #[arg(long)]
    in_process: bool,
    /// Where to write the JSON report (default: standard output).
    #[arg(long)]
    report: Option<std::path::PathBuf>,
}

fn summary(recorder: &Recorder, seconds: f64) -> Value {
    let requests = recorder.sent.load(Ordering::Relaxed);
    let events = recorder.events.load(Ordering::Relaxed);
    json!({
        "seconds": (seconds * 100.0).round() / 100.0,
        "requests": requests,
        "failed": recorder.failed.load(Ordering::Relaxed),
        "events_appended": events,
        "throttled_and_resent": recorder.throttled.load(Ordering::Relaxed),
        "requests_per_second": (requests as f64 / seconds * 10.0).round() / 10.0,
        "events_per_second": (events as f64 / seconds * 10.0).round() / 10.0,
        "by_kind": recorder.report(),
        "first_errors": recorder.errors(),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let as_of = args.as_of.unwrap_or_else(|| Utc::now().date_naive());
    if args.batch == 0 || args.batch > 1000 {
        bail!("--batch must be 1 to 1,000");
    }
    let system = if args.in_process {
        Some(tests::TestSystem::spawn_limited(16, 5.0, tests::bench::UNLIMITED).await?)
    } else {
        None
    };
    let target = match &system {
        Some(system) => Target {
            http: reqwest::Client::new(),
            command_url: system.command_url.clone(),
            graphql_url: system.graphql_url.clone(),
            token: system.admin.clone(),
        },
        None => Target {
            http: reqwest::Client::new(),
            command_url: args.command_url.trim_end_matches('/').to_owned(),
            graphql_url: args.graphql_url.clone(),
            token: args
                .token
                .clone()
                .context("--token or CSTRACK_TOKEN: a token that may onboard customers")?,
        },
    };
    let portfolio = Portfolio::generate(args.seed, args.customers, as_of);
    eprintln!(
        "portfolio: seed {}, {} CSMs, {} customers, {} commands of history to {as_of}",
        args.seed,
        portfolio.csms.len(),
        portfolio.customers.len(),
        portfolio.commands()
    );
    let mut report = json!({
        "provenance": Provenance::here(),
        "seed": args.seed,
        "as_of": as_of,
        "csms": portfolio.csms.len(),
        "customers": portfolio.customers.len(),
        "commands_planned": portfolio.commands(),
    });
    if matches!(args.mode, Mode::Bulk | Mode::Both) {
        let started = Instant::now();
        let recorder = load::bulk(&target, &portfolio, args.clients, args.rate, args.batch).await;
        let mut bulk = summary(&recorder, started.elapsed().as_secs_f64());
        bulk["clients"] = json!(args.clients);
        bulk["target_rate"] = json!(args.rate);
        bulk["batch"] = json!(args.batch);
        report["bulk"] = bulk;
    }
    if matches!(args.mode, Mode::Steady | Mode::Both) {
        let started = Instant::now();
        let recorder = load::steady(
            &target,
            &portfolio,
            args.clients,
            args.write_rate,
            args.read_rate,
            Duration::from_secs(args.duration),
        )
        .await;
        let mut steady = summary(&recorder, started.elapsed().as_secs_f64());
        steady["clients"] = json!(args.clients);
        steady["write_rate"] = json!(args.write_rate);
        steady["read_rate"] = json!(args.read_rate);
        report["steady"] = steady;
    }
    let text = serde_json::to_string_pretty(&report)?;
    match &args.report {
        Some(path) => std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?,
        None => println!("{text}"),
    }
    if let Some(system) = system {
        system.stop().await;
    }
    let failed = ["bulk", "steady"]
        .iter()
        .filter_map(|mode| report[mode]["failed"].as_u64())
        .sum::<u64>();
    if failed > 0 {
        bail!("{failed} requests failed (see first_errors in the report)");
    }
    Ok(())
}
