//! Read-side benchmark: 10,000 customers and 2,000,000 events, then p50/p95 of the portfolio
//! reports and of a single customer with its nested timeline, through GraphQL.
//!
//! The system runs in-process (release build, its own database). The events are appended by
//! set-based SQL (realistic payloads: onboarding, stakeholders, a year of activities, health
//! scores) and the read models are built from those stored events by the projection service's
//! rebuild (the projectors' folds, written with COPY); pushing two million events through the
//! broker one by one would take most of an hour on this machine and measure the projectors, not
//! the queries.
//!
//!     cargo run --release -p tests --bin read-bench -- --customers 10000 --events-per-customer 200
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde_json::json;
use tests::TestSystem;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    customers: i64,
    /// Events per customer: 1 onboarding, 3 stakeholders, 4 health scores and the rest activities.
    #[arg(long, default_value_t = 200)]
    events_per_customer: i64,
    #[arg(long, default_value_t = 20)]
    csms: usize,
    /// Runs of each portfolio report.
    #[arg(long, default_value_t = 30)]
    report_runs: usize,
    /// Customers whose streams move between two runs of a portfolio report (their report memo
    /// rows turn stale and are recomputed by the next run), as a steady command load would.
    #[arg(long, default_value_t = 100)]
    changed_between_runs: i64,
    /// Runs of the single-customer query.
    #[arg(long, default_value_t = 300)]
    customer_runs: usize,
    /// Cold first loads of each web client view in Chromium (0: none). Needs the client built
    /// (`npm run build` in query-api/web) and Debian's Chromium.
    #[arg(long, default_value_t = 0)]
    web_runs: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latency of the first run and p50/p95 of the `runs` after it; `between` runs before each of them.
async fn measure<F, Fut>(
    system: &TestSystem,
    runs: usize,
    query: &str,
    variables: impl Fn(usize) -> serde_json::Value,
    between: F,
) -> anyhow::Result<(Duration, Duration, Duration)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    system.graphql(query, variables(0)).await;
    let first = started.elapsed();
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        between().await?;
        let started = Instant::now();
        let answer = system.graphql_raw(query, variables(run)).await;
        times.push(started.elapsed());
        anyhow::ensure!(answer.get("errors").is_none(), "{answer}");
    }
    times.sort();
    Ok((first, percentile(&times, 50.0), percentile(&times, 95.0)))
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut system = TestSystem::spawn_limited(16, 3600.0, tests::bench::UNLIMITED).await?;
    let result = run(&args, &mut system).await;
    system.stop().await;
    result
}

async fn run(args: &Args, system: &mut TestSystem) -> anyhow::Result<()> {
    let mut csms = Vec::new();
    for n in 0..args.csms {
        csms.push(system.register_csm(&format!("CSM {n:02}")).await);
    }
    system.caught_up().await;
    system.kill_relay().await;
    let activities = args.events_per_customer - 8;
    let started = Instant::now();
    tests::bench::append_portfolio(&system.pool, &csms, args.customers as i32, activities as i32).await?;
    let generated = started.elapsed();
    let started = Instant::now();
    // The read models as the projection service rebuilds them from the store.
    tests::bench::rebuild_all(system)
        .await
        .context("building read models")?;
    sqlx::query("ANALYZE").execute(&system.pool).await?;
    let projected = started.elapsed();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await?;
    anyhow::ensure!(system.projected().await?, "read models must match the store");
    println!(
        "{events} events for {} customers: generated in {:.0} s, read models in {:.0} s",
        args.customers,
        generated.as_secs_f64(),
        projected.as_secs_f64()
    );

    let customers: Vec<Uuid> = sqlx::query_scalar("SELECT customer_id FROM customer_profiles ORDER BY customer_id")
        .fetch_all(&system.pool)
        .await?;
    let reports = tests::bench::PORTFOLIO_REPORTS;
    println!("| query | customers changed before each run | first run | p50 | p95 | runs |");
    println!("|---|---|---|---|---|---|");
    // A customer's stream moving is what makes its memo rows stale: advance the projectors'
    // checkpoints of randomly chosen customers as their events would.
    let pool = system.pool.clone();
    let churn = |changed: i64| {
        let pool = pool.clone();
        async move {
            if changed > 0 {
                sqlx::query(
                    "UPDATE projector_checkpoints SET last_sequence = last_sequence + 1
                  WHERE stream_type = 'Customer' AND stream_id IN (
                        SELECT customer_id::text FROM customer_profiles ORDER BY random() LIMIT $1)",
                )
                .bind(changed)
                .execute(&pool)
                .await?;
            }
            Ok(())
        }
    };
    for (name, query) in reports {
        for changed in [0, args.changed_between_runs] {
            let (first, p50, p95) = measure(system, args.report_runs, query, |_| json!({}), || churn(changed)).await?;
            println!(
                "| {name} | {changed} | {} | {} | {} | {} |",
                ms(first),
                ms(p50),
                ms(p95),
                args.report_runs
            );
        }
    }
    let single = tests::bench::CUSTOMER_360;
    let (_, p50, p95) = measure(
        system,
        args.customer_runs,
        single,
        |run| json!({"id": customers[(run * 7919) % customers.len()]}),
        || async { Ok(()) },
    )
    .await?;
    println!(
        "| customer with nested timeline | {} | {} | {} |",
        ms(p50),
        ms(p95),
        args.customer_runs
    );
    if args.web_runs > 0 {
        first_loads(args, system, customers[customers.len() / 2]).await?;
    }
    Ok(())
}

/// The web client's first loads at this portfolio's size (query-api/web/e2e/first-load.mjs).
async fn first_loads(args: &Args, system: &TestSystem, customer: Uuid) -> anyhow::Result<()> {
    let web = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../query-api/web");
    let environment = json!({
        "appUrl": system.graphql_url.trim_end_matches("/graphql"),
        "token": system.admin,
        "asOf": chrono::Utc::now().date_naive(),
        "customerId": customer,
        "runs": args.web_runs,
        "chromium": std::env::var("CSTRACK_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    });
    let run = tokio::process::Command::new("node")
        .arg("e2e/first-load.mjs")
        .current_dir(&web)
        .env("CSTRACK_FIRST_LOAD", environment.to_string())
        .output()
        .await
        .context("running node")?;
    anyhow::ensure!(
        run.status.success(),
        "first-load.mjs failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    print!("{}", String::from_utf8_lossy(&run.stdout));
    Ok(())
}
