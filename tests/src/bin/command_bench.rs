//! Command benchmarks, against the real system started in-process (its own database and broker
//! names, release build when run with `--release`):
//!
//! 1. latency of one `ActivityLogged` command on customers with 10 events and on a customer with
//!    20,000 events (snapshots keep the second close to the first);
//! 2. throughput of `ActivityLogged` commands from 32 concurrent clients, beside the raw rate of
//!    single-row INSERTs by pgbench, in the same run, into the events table itself and into a bare
//!    table with the same columns, defaults and indexes but none of its triggers (so what the
//!    triggers cost is a row of its own).
//!
//!     cargo run --release -p tests --bin command-bench
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use clap::Parser;
use serde_json::{json, Value};
use tests::TestSystem;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// Commands timed per latency case.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Events of the long stream.
    #[arg(long, default_value_t = 20_000)]
    long_stream: usize,
    /// Concurrent clients of the throughput run.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds of each throughput run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
}

fn activity() -> Value {
    json!({"kind": "email", "direction": "outbound", "occurred_at": Utc::now() - chrono::Duration::seconds(10), "subject": "bench"})
}

async fn post(system: &TestSystem, path: &str, body: &Value) -> anyhow::Result<Value> {
    let (status, answer) = system.post(path, body).await;
    if !status.is_success() {
        bail!("POST {path}: {status} {answer}");
    }
    Ok(answer)
}

async fn customer(system: &TestSystem, csm: Uuid, events: usize) -> anyhow::Result<Uuid> {
    let id = system
        .onboard(
            "Bench customer",
            "MidMarket",
            "50000",
            csm,
            Utc::now() - chrono::Duration::days(400),
        )
        .await;
    let mut remaining = events.saturating_sub(1);
    while remaining > 0 {
        let batch = remaining.min(1000);
        let activities: Vec<Value> = (0..batch).map(|_| activity()).collect();
        post(
            system,
            &format!("/api/v1/customers/{id}/activities/batch"),
            &json!({"activities": activities}),
        )
        .await?;
        remaining -= batch;
    }
    Ok(id)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn time_command(system: &TestSystem, customer: Uuid) -> anyhow::Result<Duration> {
    let started = Instant::now();
    post(system, &format!("/api/v1/customers/{customer}/activities"), &activity()).await?;
    Ok(started.elapsed())
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// Single-row INSERTs per second by pgbench into `table` (the events table or its bare copy).
async fn pgbench(database_url: &str, table: &str, clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let payload = serde_json::to_string(&json!({"ActivityLogged": {
        "activity_id": Uuid::now_v7(), "kind": "email", "direction": "outbound", "occurred_at": Utc::now(),
        "duration_minutes": null, "participants": [], "response_received": null, "response_time_hours": null,
        "subject": "bench", "logged_by": "bench"}}))?;
    let metadata = r#"{"actor_id": "bench", "actor_role": "admin", "source": "api"}"#;
    let script = format!(
        "INSERT INTO {table} (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('PgBench', gen_random_uuid()::text, 1, 'ActivityLogged', '1', '{payload}', '{metadata}');\n"
    );
    let path = std::env::temp_dir().join(format!("cstrack-pgbench-{}.sql", Uuid::now_v7()));
    std::fs::write(&path, script)?;
    let output = tokio::process::Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&path)
        .arg(database_url)
        .output()
        .await
        .context("running pgbench (Debian: apt-get install postgresql-client)")?;
    std::fs::remove_file(&path).ok();
    let text = String::from_utf8_lossy(&output.stdout);
    let tps = text
        .lines()
        .find(|line| line.starts_with("tps = "))
        .and_then(|line| line.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|number| number.parse::<f64>().ok())
        .with_context(|| {
            format!(
                "pgbench printed no rate: {text} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    Ok(tps)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut system = TestSystem::spawn_limited(40, 60.0, tests::bench::UNLIMITED).await?;
    let result = run(&args, &mut system).await;
    system.stop().await;
    result
}

async fn run(args: &Args, system: &mut TestSystem) -> anyhow::Result<()> {
    let csm = system.register_csm("Bench CSM").await;

    // Latency: one command on each of `samples` customers holding 10 events, then `samples`
    // commands on one customer holding `long_stream` events; a warm-up first.
    let mut short = Vec::new();
    for _ in 0..args.samples {
        short.push(customer(system, csm, 10).await?);
    }
    let long = customer(system, csm, args.long_stream).await?;
    // Measure on a quiet system: the projectors first catch up with everything just appended.
    tests::eventually(Duration::from_secs(300), || async {
        system.projected().await.unwrap_or(false)
    })
    .await?;
    for customer in short.iter().take(20) {
        time_command(system, *customer).await?;
        time_command(system, long).await?;
    }
    // Interleaved, so both cases see the same conditions.
    let mut short_latency = Vec::new();
    let mut long_latency = Vec::new();
    for customer in short.iter().skip(20) {
        short_latency.push(time_command(system, *customer).await?);
        long_latency.push(time_command(system, long).await?);
    }
    short_latency.sort();
    long_latency.sort();

    // Throughput: each client logs activities on its own customer for `seconds`.
    let mut customers = Vec::new();
    for _ in 0..args.clients {
        customers.push(customer(system, csm, 10).await?);
    }
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let system_ref: &TestSystem = system;
    let started = Instant::now();
    let workers = customers.iter().map(|customer| {
        let done = done.clone();
        async move {
            while Instant::now() < deadline {
                if post(
                    system_ref,
                    &format!("/api/v1/customers/{customer}/activities"),
                    &activity(),
                )
                .await
                .is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    futures_util::future::join_all(workers).await;
    let command_rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();

    // The raw ceiling: pgbench INSERTs into the same table, the relay paused so it does not compete.
    system.kill_relay().await;
    let raw_rate = pgbench(&system.database_url, "events", args.clients, args.seconds).await?;
    sqlx::query("CREATE TABLE events_bare (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES)")
        .execute(&system.pool)
        .await?;
    // The hash the chain trigger would compute, as a constant of the same size.
    sqlx::query("ALTER TABLE events_bare ALTER COLUMN hash SET DEFAULT decode(repeat('00', 32), 'hex')")
        .execute(&system.pool)
        .await?;
    let bare_rate = pgbench(&system.database_url, "events_bare", args.clients, args.seconds).await?;
    system.start_relay();

    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Customer'")
        .fetch_one(&system.pool)
        .await?;
    println!("| case | p50 | p99 | samples |");
    println!("|---|---|---|---|");
    println!(
        "| customer with 10 events | {} | {} | {} |",
        ms(percentile(&short_latency, 50.0)),
        ms(percentile(&short_latency, 99.0)),
        short_latency.len()
    );
    println!(
        "| customer with {} events | {} | {} | {} |",
        args.long_stream,
        ms(percentile(&long_latency, 50.0)),
        ms(percentile(&long_latency, 99.0)),
        long_latency.len()
    );
    let ratio = percentile(&long_latency, 50.0).as_secs_f64() / percentile(&short_latency, 50.0).as_secs_f64();
    println!();
    println!("p50 long / p50 short = {ratio:.2}");
    println!();
    println!("| {} clients, {} s | rate |", args.clients, args.seconds);
    println!("|---|---|");
    println!("| ActivityLogged commands (HTTP, validated, appended, relayed, projected) | {command_rate:.0} /s |");
    println!("| raw single-row INSERTs into the events table (pgbench) | {raw_rate:.0} /s |");
    println!("| raw single-row INSERTs into a bare copy without triggers (pgbench) | {bare_rate:.0} /s |");
    println!(
        "| commands / INSERTs into the events table | {:.2} |",
        command_rate / raw_rate
    );
    println!(
        "| commands / INSERTs into the bare copy | {:.2} |",
        command_rate / bare_rate
    );
    println!(
        "| INSERTs into the events table / into the bare copy (the triggers' cost) | {:.2} |",
        raw_rate / bare_rate
    );
    println!();
    println!("({events} customer events in the store at the end)");
    Ok(())
}
