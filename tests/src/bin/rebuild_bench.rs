//! Rebuild benchmark: every projection rebuilt from a store of 1,000,000 events, beside the rate
//! at which PostgreSQL itself streams the same rows out (`COPY (SELECT ... ORDER BY
//! global_position) TO STDOUT`) in the same run; then the history export of one 100,000-event
//! stream through the query API.
//!
//!     cargo run --release -p tests --bin rebuild-bench -- --customers 5000 --events-per-customer 200
#![allow(clippy::print_stdout)]

use std::time::Instant;

use clap::Parser;
use events::metadata::Role;
use futures_util::StreamExt;
use tests::TestSystem;

/// The allocator of the projection service's binary, which runs rebuilds.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 5_000)]
    customers: i32,
    #[arg(long, default_value_t = 200)]
    events_per_customer: i32,
    #[arg(long, default_value_t = 50_000)]
    batch: i64,
    #[arg(long, default_value_t = 2_000_000)]
    pass_events: u64,
    /// Measure only the history export.
    #[arg(long)]
    export_only: bool,
    /// Events of the single stream exported.
    #[arg(long, default_value_t = 100_000)]
    export_events: i32,
    /// libpq `sslmode` of the COPY's and the rebuild's connections (PostgreSQL's default client
    /// setting, `prefer`, encrypts even over loopback when the server offers TLS).
    #[arg(long, default_value = "prefer")]
    sslmode: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut system = TestSystem::spawn_limited(8, 3600.0, tests::bench::UNLIMITED).await?;
    let result = run(&args, &mut system).await;
    system.stop().await;
    result
}

async fn run(args: &Args, system: &mut TestSystem) -> anyhow::Result<()> {
    if !args.export_only {
        rebuild(args, system).await?;
    }
    export(args, system).await
}

async fn rebuild(args: &Args, system: &mut TestSystem) -> anyhow::Result<()> {
    let mut csms = Vec::new();
    for n in 0..20 {
        csms.push(system.register_csm(&format!("CSM {n:02}")).await);
    }
    system.caught_up().await;
    system.kill_relay().await;
    let started = Instant::now();
    tests::bench::append_portfolio(&system.pool, &csms, args.customers, args.events_per_customer - 8).await?;
    sqlx::query("ANALYZE events").execute(&system.pool).await?;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await?;
    println!("{events} events appended in {:.0} s", started.elapsed().as_secs_f64());

    // PostgreSQL's own rate of streaming the rows out in position order.
    let database_url = format!("{}?sslmode={}", system.database_url, args.sslmode);
    let (copied, bytes, copy_time) = tests::bench::copy_events(&database_url).await?;
    let copy_seconds = copy_time.as_secs_f64();
    let copy_rate = copied as f64 / copy_seconds;
    println!(
        "COPY: {copied} rows ({:.0} MB) in {copy_seconds:.1} s: {copy_rate:.0} rows/s",
        bytes as f64 / 1e6
    );

    let request = projection_service::rebuild::RebuildRequest {
        projectors: projection_service::projectors(),
        known_at: None,
        snapshot_name: None,
        batch: args.batch,
        pass_events: args.pass_events,
        fold_workers: None,
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&database_url)
        .await?;
    let summary = projection_service::rebuild::rebuild(&pool, &database_url, &request).await?;
    pool.close().await;
    let rebuild_rate = summary.events as f64 / summary.elapsed.as_secs_f64();
    println!(
        "rebuild (all projections): {} events in {:.1} s: {rebuild_rate:.0} events/s, {:.3} of the COPY rate",
        summary.events,
        summary.elapsed.as_secs_f64(),
        rebuild_rate / copy_rate
    );

    Ok(())
}

async fn export(args: &Args, system: &mut TestSystem) -> anyhow::Result<()> {
    // One customer with a very long history, bulk-loaded like the portfolio (chain trigger off;
    // the export reads the rows as stored).
    let customer = uuid::Uuid::now_v7();
    let mut tx = system.pool.begin().await?;
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, hash)
         SELECT 'Customer', $1, n, 'ActivityLogged', '1',
                jsonb_build_object('ActivityLogged', jsonb_build_object('activity_id', md5('x' || n)::uuid, 'kind', 'note',
                    'direction', 'outbound', 'occurred_at', '2026-01-01T00:00:00Z', 'duration_minutes', NULL,
                    'participants', '[]'::jsonb, 'response_received', NULL, 'response_time_hours', NULL,
                    'subject', 'note ' || n, 'logged_by', 'bench')),
                '{\"actor_id\": \"bench\", \"actor_role\": \"csm\", \"source\": \"import\"}', ''::bytea
           FROM generate_series(1, $2) n",
    )
    .bind(customer.to_string())
    .bind(args.export_events)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let auditor = tests::token(Role::Auditor, "bench-auditor", None);
    let started = Instant::now();
    let response = system
        .http
        .get(format!(
            "{}/customers/{customer}/history",
            system.graphql_url.trim_end_matches("/graphql")
        ))
        .bearer_auth(&auditor)
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "export answered {}", response.status());
    let mut stream = response.bytes_stream();
    let (mut lines, mut exported_bytes) = (0_u64, 0_u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        exported_bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(lines == args.export_events as u64, "exported {lines} lines");
    println!(
        "history export: {lines} events ({:.0} MB) in {seconds:.2} s: {:.0} events/s",
        exported_bytes as f64 / 1e6,
        lines as f64 / seconds
    );
    Ok(())
}
