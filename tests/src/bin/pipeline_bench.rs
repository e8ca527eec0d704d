//! The whole pipeline, stage by stage, each stage beside its limit measured in the same run on
//! the same machine: the figure, the limit, their ratio, and the machine, day and commit.
//!
//! - append: `ActivityLogged` commands at 1, 8 and 32 clients beside postgres-es appending
//!   through its own API with nothing around it, pgbench single-row INSERTs into a bare table
//!   with the events table's columns (no triggers), and the same rows into the events table as
//!   the service appends them, hash chain computed by the statement (so the cost of the chain
//!   and the triggers is a row of its own); the stages of a command (from the command
//!   service's `cstrack_command_stage_seconds`); p99 at a paced 1,000 commands/s; a stream of
//!   20,000 events against streams of 10; batches of 1,000 activities beside multi-row INSERTs;
//! - relay: a backlog published with confirms, beside a bare lapin publisher with the relay's
//!   confirm window; projection: the backlog applied by the projectors, beside a bare lapin
//!   consumer draining as many messages; catch-up: relay and projectors together draining a
//!   backlog after an outage; freshness: command answered to visible in GraphQL at a steady
//!   1,000 commands/s;
//! - store: a rebuild of every projection beside `COPY (SELECT ... ORDER BY global_position)
//!   TO STDOUT`, then the portfolio reports and the customer 360 at 10,000 customers beside a
//!   GraphQL round trip that reads nothing.
//!
//!     cargo run --release -p tests --bin pipeline-bench -- --report target/pipeline.json
//!
//! Stop the demo first: 32 clients of each kind need the server's connection slots.
#![allow(clippy::print_stdout)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use chrono::Utc;
use clap::Parser;
use cqrs_es::{Aggregate, DomainEvent};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, ExchangeKind};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgPool;
use tests::load::{percentile, Pace, Provenance, Recorder, Request, Target};
use tests::TestSystem;
use uuid::Uuid;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// Stages to run: append (which ends with batches), batches alone, commands alone (32
    /// clients with the pipeline running and stopped, then paced, each with the database work it
    /// caused), pipeline, store.
    #[arg(long, value_delimiter = ',', default_value = "append,pipeline,store")]
    stages: Vec<String>,
    /// Seconds of each append run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Events of the long stream.
    #[arg(long, default_value_t = 20_000)]
    long_stream: usize,
    /// Events of the backlog the relay, the projectors and the catch-up drain.
    #[arg(long, default_value_t = 50_000)]
    backlog: usize,
    /// Commands per second of the freshness run (and of the paced append run).
    #[arg(long, default_value_t = 1000.0)]
    steady_rate: f64,
    /// Commands per second of the second freshness run, one this machine sustains.
    #[arg(long, default_value_t = 250.0)]
    sustained_rate: f64,
    /// Seconds of the freshness run.
    #[arg(long, default_value_t = 20)]
    steady_seconds: u64,
    /// Customers of the store stage.
    #[arg(long, default_value_t = 10_000)]
    customers: i32,
    /// Events per customer of the store stage.
    #[arg(long, default_value_t = 100)]
    events_per_customer: i32,
    /// Runs of each query in the store stage.
    #[arg(long, default_value_t = 20)]
    query_runs: usize,
    /// Deliveries in flight per partition for the projectors (the service's default unless set).
    #[arg(long, default_value_t = projection_service::DEFAULT_PREFETCH)]
    prefetch: u16,
    /// Most deliveries the projectors apply in one transaction (the service's default unless set).
    #[arg(long, default_value_t = projection_service::DEFAULT_APPLY_BATCH)]
    apply_batch: u16,
    /// Milliseconds a projector batch waits for company (the service's default unless set).
    #[arg(long, default_value_t = projection_service::DEFAULT_APPLY_LINGER_MS)]
    apply_linger_ms: u64,
    /// Where to write the rows as JSON.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
}

/// One measured figure beside its limit.
#[derive(Debug, Clone, Serialize)]
struct Row {
    stage: String,
    figure: f64,
    unit: &'static str,
    limit_name: String,
    limit: Option<f64>,
    ratio: Option<f64>,
    machine: String,
    date: String,
    commit: String,
}

struct Rows {
    provenance: Provenance,
    rows: Vec<Row>,
}

impl Rows {
    fn add(&mut self, stage: impl Into<String>, figure: f64, unit: &'static str, limit: Option<(String, f64)>) {
        let (limit_name, limit) = match limit {
            Some((name, value)) => (name, Some(value)),
            None => (String::new(), None),
        };
        let row = Row {
            stage: stage.into(),
            figure,
            unit,
            limit_name,
            limit,
            ratio: limit.filter(|limit| *limit > 0.0).map(|limit| figure / limit),
            machine: format!("{} x {}", self.provenance.cores, self.provenance.cpu),
            date: self.provenance.date.clone(),
            commit: self.provenance.commit.clone(),
        };
        eprintln!(
            "{}: {:.2} {} {}",
            row.stage,
            row.figure,
            row.unit,
            row.ratio
                .map(|ratio| format!("({ratio:.2} of {} {:.2})", row.limit_name, limit.unwrap_or_default()))
                .unwrap_or_default()
        );
        self.rows.push(row);
    }

    /// The p50 and p99 rows of `stage`'s sorted latencies.
    fn percentiles(&mut self, stage: &str, latencies: &[Duration]) {
        for p in [50.0, 99.0] {
            self.add(format!("{stage}, p{p:.0}"), ms(percentile(latencies, p)), "ms", None);
        }
    }

    fn print(&self) {
        let p = &self.provenance;
        println!(
            "Machine: {} cores, {}, {} GiB; {}; commit {}\n",
            p.cores, p.cpu, p.memory_gib, p.date, p.commit
        );
        println!("| stage | figure | limit | ratio |");
        println!("|---|---|---|---|");
        for row in &self.rows {
            let limit = match row.limit {
                Some(limit) => format!("{}: {}", row.limit_name, number(limit, row.unit)),
                None => "—".into(),
            };
            let ratio = row.ratio.map(|ratio| format!("{ratio:.2}")).unwrap_or_default();
            println!(
                "| {} | {} | {limit} | {ratio} |",
                row.stage,
                number(row.figure, row.unit)
            );
        }
    }
}

fn number(value: f64, unit: &str) -> String {
    if unit == "ms" || value < 100.0 {
        format!("{value:.2} {unit}")
    } else {
        let grouped = query_api::decks::thousands(value.round() as u64);
        format!("{grouped} {unit}")
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rows = Rows {
        provenance: Provenance::here(),
        rows: Vec::new(),
    };
    let wants = |stage: &str| args.stages.iter().any(|wanted| wanted == stage);
    if wants("append") || wants("batches") || wants("commands") || wants("pipeline") {
        // 24 connections per service: 32 clients need no more (a command holds one per statement),
        // and three services of 24 leave room on the server for pgbench's 32.
        let mut system = TestSystem::spawn_limited(24, 60.0, tests::bench::UNLIMITED).await?;
        let result = async {
            // The projectors as the service is deployed, unless told otherwise.
            system
                .reconfigure_projection(|settings| as_deployed(&args, settings))
                .await?;
            let customers = customers(&system, 32).await?;
            if wants("append") {
                append(&args, &mut system, &customers, &mut rows).await?;
            } else if wants("commands") {
                commands(&args, &mut system, &customers, &mut rows).await?;
            } else if wants("batches") {
                let limits = Limits::create(&system.name).await?;
                let result = batches(&args, &mut system, &customers, &limits, &mut rows).await;
                limits.drop().await;
                result?;
            }
            if wants("pipeline") {
                pipeline(&args, &mut system, &customers, &mut rows).await?;
            }
            anyhow::Ok(())
        }
        .await;
        system.stop().await;
        result?;
    }
    if wants("store") {
        let mut system = TestSystem::spawn_limited(16, 3600.0, tests::bench::UNLIMITED).await?;
        let result = store(&args, &mut system, &mut rows).await;
        system.stop().await;
        result?;
    }
    rows.print();
    if let Some(path) = &args.report {
        let report = json!({"provenance": rows.provenance, "rows": rows.rows});
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    Ok(())
}

/// The projection service's settings as deployed, with the batching the arguments give.
fn as_deployed(args: &Args, settings: &mut projection_service::Settings) {
    settings.prefetch = args.prefetch;
    settings.apply_batch = args.apply_batch;
    settings.apply_linger_ms = args.apply_linger_ms;
    settings.reconcile_seconds = 60.0;
}

fn target(system: &TestSystem) -> Target {
    Target {
        http: reqwest::Client::new(),
        command_url: system.command_url.clone(),
        graphql_url: system.graphql_url.clone(),
        token: system.admin.clone(),
    }
}

fn activity(customer: Uuid) -> Request {
    Request {
        kind: "log_activity",
        path: format!("/api/v1/customers/{customer}/activities"),
        body: json!({"kind": "email", "direction": "outbound",
                     "occurred_at": Utc::now() - chrono::Duration::seconds(5), "subject": "bench"}),
    }
}

async fn customers(system: &TestSystem, count: usize) -> anyhow::Result<Vec<Uuid>> {
    let csm = system.register_csm("Bench CSM").await;
    let mut customers = Vec::new();
    for n in 0..count {
        customers.push(
            system
                .onboard(
                    &format!("Bench customer {n}"),
                    "MidMarket",
                    "50000",
                    csm,
                    Utc::now() - chrono::Duration::days(400),
                )
                .await,
        );
    }
    Ok(customers)
}

/// `clients` clients, each sending `request(client)` back to back for `seconds` (or paced to
/// `rate` in all): completed per second and the latencies.
async fn closed_loop(
    target: &Target,
    clients: usize,
    seconds: u64,
    rate: f64,
    request: impl Fn(usize) -> Request + Send + Sync + 'static,
) -> (f64, Vec<Duration>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let request = Arc::new(request);
    let pace = Arc::new(Pace::new(rate));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (target, recorder, request, pace, latencies) = (
                target.clone(),
                recorder.clone(),
                request.clone(),
                pace.clone(),
                latencies.clone(),
            );
            tokio::spawn(async move {
                let mut own = Vec::new();
                loop {
                    pace.wait().await;
                    if Instant::now() >= deadline {
                        break;
                    }
                    let sent = Instant::now();
                    if target.send(&request(client), &recorder).await.is_some() {
                        own.push(sent.elapsed());
                    }
                }
                latencies.lock().expect("not poisoned").extend(own);
            })
        })
        .collect();
    for task in tasks {
        task.await.ok();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    latencies.sort();
    (latencies.len() as f64 / elapsed, latencies, recorder)
}

/// Sums and counts of `cstrack_command_stage_seconds` by stage, read from the command service.
async fn command_stages(system: &TestSystem) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let text = reqwest::get(format!("{}/metrics", system.command_url))
        .await?
        .text()
        .await?;
    let mut stages: Vec<(String, f64, f64)> = Vec::new();
    for line in text.lines() {
        for (suffix, is_sum) in [("_sum{", true), ("_count{", false)] {
            let Some(rest) = line.strip_prefix(&format!("cstrack_command_stage_seconds{suffix}")) else {
                continue;
            };
            let stage = rest.split('"').nth(1).unwrap_or_default().to_owned();
            let value: f64 = rest.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
            let entry = match stages.iter_mut().find(|(name, _, _)| *name == stage) {
                Some(entry) => entry,
                None => {
                    stages.push((stage, 0.0, 0.0));
                    stages.last_mut().expect("just pushed")
                }
            };
            if is_sum {
                entry.1 = value;
            } else {
                entry.2 = value;
            }
        }
    }
    Ok(stages)
}

async fn append(args: &Args, system: &mut TestSystem, customers: &[Uuid], rows: &mut Rows) -> anyhow::Result<()> {
    let target = target(system);
    let limits = Limits::create(&system.name).await?;
    let result = async {
        let mut limits_32 = 0.0;
        for clients in [1, 8, 32] {
            // The limits first: afterwards the command service's pool holds a connection per
            // client, which pgbench's clients would then find taken.
            let pes = limits.postgres_es(clients, args.seconds).await?;
            let bare = limits.pgbench("events_bare", clients, args.seconds, 1).await?;
            let ours = limits.pgbench("events", clients, args.seconds, 1).await?;
            let owned = customers.to_vec();
            let before = command_stages(system).await?;
            let (rate, latencies, _) = closed_loop(&target, clients, args.seconds, 0.0, move |client| {
                activity(owned[client])
            })
            .await;
            let after = command_stages(system).await?;
            let stage = format!("append: commands, {clients} clients");
            rows.add(
                &stage,
                rate,
                "/s",
                Some((format!("postgres-es bare, {clients} clients"), pes)),
            );
            limits_32 = pes;
            rows.add(
                &stage,
                rate,
                "/s",
                Some((format!("INSERTs into a bare table, {clients} clients"), bare)),
            );
            rows.add(
                format!("append: INSERTs into the events table (chain and triggers), {clients} clients"),
                ours,
                "/s",
                Some(("INSERTs into a bare table".into(), bare)),
            );
            rows.percentiles(&format!("append: commands, {clients} clients"), &latencies);
            if clients == 32 {
                let mut accounted = 0.0;
                let total = latencies.iter().map(Duration::as_secs_f64).sum::<f64>() / latencies.len().max(1) as f64;
                for (stage, sum, count) in &after {
                    let (before_sum, before_count) = before
                        .iter()
                        .find(|(name, _, _)| name == stage)
                        .map_or((0.0, 0.0), |(_, sum, count)| (*sum, *count));
                    let mean = (sum - before_sum) / (count - before_count).max(1.0);
                    accounted += mean;
                    rows.add(
                        format!("append: a command's `{stage}` stage, mean at 32 clients"),
                        mean * 1000.0,
                        "ms",
                        Some(("the whole request".into(), total * 1000.0)),
                    );
                }
                rows.add(
                    "append: a command outside its stages (HTTP, auth, JSON, queueing), mean at 32 clients",
                    (total - accounted) * 1000.0,
                    "ms",
                    Some(("the whole request".into(), total * 1000.0)),
                );
            }
        }

        // The command path alone: the relay and the projectors away, so they take no CPU.
        stop_pipeline(system).await;
        let owned = customers.to_vec();
        let (alone, _, _) = closed_loop(&target, 32, args.seconds, 0.0, move |client| activity(owned[client])).await;
        system.start_relay();
        system.start_projection().await?;
        let pool = system.pool.clone();
        caught_up(&pool, Duration::from_secs(600)).await?;
        rows.add(
            "append: commands, 32 clients, relay and projectors stopped",
            alone,
            "/s",
            Some(("postgres-es bare, 32 clients".into(), limits_32)),
        );

        // p99 at a paced rate: an open-loop schedule, so slow answers do not lower the offered load.
        let owned = customers.to_vec();
        let (rate, latencies, _) = closed_loop(&target, 32, args.seconds, args.steady_rate, move |client| {
            activity(owned[client])
        })
        .await;
        rows.add(
            format!("append: commands paced at {:.0}/s, achieved", args.steady_rate),
            rate,
            "/s",
            None,
        );
        rows.add(
            format!("append: commands paced at {:.0}/s, p99", args.steady_rate),
            ms(percentile(&latencies, 99.0)),
            "ms",
            None,
        );

        // Cost against stream length: one long stream and short ones, interleaved.
        let long = customers[0];
        let mut remaining = args.long_stream;
        let recorder = Recorder::default();
        while remaining > 0 {
            let size = remaining.min(1000);
            let activities: Vec<Value> = (0..size).map(|_| activity(long).body).collect();
            let request = Request {
                kind: "log_activities",
                path: format!("/api/v1/customers/{long}/activities/batch"),
                body: json!({"activities": activities}),
            };
            ensure!(
                target.send(&request, &recorder).await.is_some(),
                "{:?}",
                recorder.errors()
            );
            remaining -= size;
        }
        let short = self::customers(system, 200).await?;
        let (mut long_times, mut short_times) = (Vec::new(), Vec::new());
        for (index, customer) in short.iter().enumerate() {
            for (stream, times) in [(*customer, &mut short_times), (long, &mut long_times)] {
                let started = Instant::now();
                ensure!(
                    target.send(&activity(stream), &recorder).await.is_some(),
                    "{:?}",
                    recorder.errors()
                );
                if index >= 20 {
                    times.push(started.elapsed());
                }
            }
        }
        long_times.sort();
        short_times.sort();
        rows.add(
            format!("append: command on a stream of {} events, p50", args.long_stream),
            ms(percentile(&long_times, 50.0)),
            "ms",
            Some(("on streams of a few events".into(), ms(percentile(&short_times, 50.0)))),
        );

        batches(args, system, customers, &limits, rows).await
    }
    .await;
    limits.drop().await;
    result
}

/// Commands alone: 32 clients with the relay and projectors running, then stopped, then paced
/// at the steady rate; beside each, what the database did per command (transactions, WAL
/// flushes, relay batches, projector batches: each updates its projectors' status once), to
/// see where the pipeline's share goes.
async fn commands(args: &Args, system: &mut TestSystem, customers: &[Uuid], rows: &mut Rows) -> anyhow::Result<()> {
    let target = target(system);
    let pool = system.pool.clone();
    let work = || async {
        sqlx::query_as::<_, (f64, f64, f64, f64)>(
            "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::float8,
                    (SELECT wal_sync FROM pg_stat_wal)::float8,
                    (SELECT coalesce(sum(n_tup_upd), 0) FROM pg_stat_user_tables WHERE relname = 'relay_cursor')::float8,
                    (SELECT coalesce(sum(n_tup_upd + n_tup_ins), 0) FROM pg_stat_user_tables WHERE relname = 'projector_status')::float8
                    / (SELECT count(*) FROM projector_status)::float8",
        )
        .fetch_one(&pool)
        .await
    };
    let mut run = |name: String,
                   rate: f64,
                   latencies: Vec<Duration>,
                   before: (f64, f64, f64, f64),
                   after: (f64, f64, f64, f64)| {
        let count = (latencies.len() as f64).max(1.0);
        rows.add(format!("commands: {name}"), rate, "/s", None);
        rows.percentiles(&format!("commands: {name}"), &latencies);
        let counted = ["transactions", "WAL flushes", "relay batches", "projector batches"];
        let deltas = [
            after.0 - before.0,
            after.1 - before.1,
            after.2 - before.2,
            after.3 - before.3,
        ];
        for (counted, delta) in counted.into_iter().zip(deltas) {
            rows.add(
                format!("commands: {name}, {counted} per command"),
                delta / count,
                "",
                None,
            );
        }
    };
    for (name, rate) in [
        ("32 clients".to_string(), 0.0),
        (format!("paced at {:.0}/s", args.steady_rate), args.steady_rate),
    ] {
        caught_up(&pool, Duration::from_secs(600)).await?;
        let owned = customers.to_vec();
        let before = work().await?;
        let (achieved, latencies, _) =
            closed_loop(&target, 32, args.seconds, rate, move |client| activity(owned[client])).await;
        let after = work().await?;
        run(name, achieved, latencies, before, after);
    }
    stop_pipeline(system).await;
    let owned = customers.to_vec();
    let before = work().await?;
    let (achieved, latencies, _) =
        closed_loop(&target, 32, args.seconds, 0.0, move |client| activity(owned[client])).await;
    let after = work().await?;
    run(
        "32 clients, relay and projectors stopped".into(),
        achieved,
        latencies,
        before,
        after,
    );
    system.start_relay();
    system.start_projection().await?;
    caught_up(&pool, Duration::from_secs(600)).await?;
    Ok(())
}

/// Batches of 1,000 activities through the batch endpoint, 4 clients each on its own customer,
/// with the pipeline applying what they append and then with it stopped, beside 1,000-row
/// INSERTs into the bare table and into the events table.
async fn batches(
    args: &Args,
    system: &mut TestSystem,
    customers: &[Uuid],
    limits: &Limits,
    rows: &mut Rows,
) -> anyhow::Result<()> {
    let target = target(system);
    let batch = |customers: Vec<Uuid>| {
        move |client: usize| {
            let customer = customers[4 + client];
            let activities: Vec<Value> = (0..1000).map(|_| activity(customer).body).collect();
            Request {
                kind: "log_activities",
                path: format!("/api/v1/customers/{customer}/activities/batch"),
                body: json!({"activities": activities}),
            }
        }
    };
    let (rate, _, recorder) = closed_loop(&target, 4, args.seconds, 0.0, batch(customers.to_vec())).await;
    ensure!(recorder.failed.load(Ordering::Relaxed) == 0, "{:?}", recorder.errors());
    stop_pipeline(system).await;
    let (alone, _, recorder) = closed_loop(&target, 4, args.seconds, 0.0, batch(customers.to_vec())).await;
    ensure!(recorder.failed.load(Ordering::Relaxed) == 0, "{:?}", recorder.errors());
    system.start_relay();
    system.start_projection().await?;
    caught_up(&system.pool.clone(), Duration::from_secs(600)).await?;
    let bare = limits.pgbench("events_bare", 4, args.seconds, 1000).await?;
    let ours = limits.pgbench("events", 4, args.seconds, 1000).await?;
    rows.add(
        "append: batches of 1,000 activities, 4 clients, events",
        rate * 1000.0,
        "/s",
        Some(("1,000-row INSERTs into a bare table, 4 clients".into(), bare * 1000.0)),
    );
    rows.add(
        "append: batches of 1,000 activities, 4 clients, relay and projectors stopped, events",
        alone * 1000.0,
        "/s",
        Some(("1,000-row INSERTs into the events table".into(), ours * 1000.0)),
    );
    rows.add(
        "append: 1,000-row INSERTs into the events table, 4 clients",
        ours * 1000.0,
        "/s",
        Some(("into a bare table".into(), bare * 1000.0)),
    );
    Ok(())
}

/// A scratch database beside the system's, holding the events table as the command service
/// migrates it, a bare copy of it without triggers, and postgres-es's own tables.
struct Limits {
    name: String,
    url: String,
    pool: PgPool,
}

impl Limits {
    async fn create(system: &str) -> anyhow::Result<Self> {
        let name = format!("{system}_limits");
        let mut admin = tests::admin_connection().await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&url)
            .await?;
        command_service::migrate(&pool).await?;
        for statement in [
            "CREATE TABLE events_bare (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED INCLUDING INDEXES)",
            // The hash the chain trigger would compute, as a constant of the same size.
            "ALTER TABLE events_bare ALTER COLUMN hash SET DEFAULT decode(repeat('00', 32), 'hex')",
            // postgres-es's schema, as its repository ships it.
            "CREATE TABLE pes_events (aggregate_type text NOT NULL, aggregate_id text NOT NULL,
                 sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL,
                 event_version text NOT NULL, payload json NOT NULL, metadata json NOT NULL,
                 PRIMARY KEY (aggregate_type, aggregate_id, sequence))",
            "CREATE TABLE pes_snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL,
                 last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
                 current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, payload json NOT NULL,
                 PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))",
        ] {
            sqlx::query(statement).execute(&pool).await?;
        }
        Ok(Limits { name, url, pool })
    }

    async fn drop(self) {
        self.pool.close().await;
        if let Ok(mut admin) = tests::admin_connection().await {
            sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .execute(&mut admin)
                .await
                .ok();
        }
    }

    /// Transactions per second of pgbench inserting `rows` rows (an activity each, of its own
    /// id) per transaction into `table`, each transaction to a new stream.
    async fn pgbench(&self, table: &str, clients: usize, seconds: u64, rows: usize) -> anyhow::Result<f64> {
        let payload = serde_json::to_string(&json!({"ActivityLogged": {
            "activity_id": Uuid::now_v7(), "kind": "email", "direction": "outbound", "occurred_at": Utc::now(),
            "duration_minutes": null, "participants": [], "response_received": null, "response_time_hours": null,
            "subject": "bench", "logged_by": "bench"}}))?;
        let metadata = r#"{"actor_id": "bench", "actor_role": "admin", "source": "api"}"#;
        // Into the events table as the command service appends: the hash chain computed by the
        // statement (the bare table takes a constant hash of the same size).
        let hash = if table == "events" {
            "cstrack_chain(NULL, cstrack_event_line('Customer', s::text, n, 'ActivityLogged', '1', payload, metadata)) \
                 OVER (ORDER BY n)"
        } else {
            "decode(repeat('00', 32), 'hex')"
        };
        let script = format!(
            "INSERT INTO {table} (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, hash) \
             SELECT 'Customer', s::text, n, 'ActivityLogged', '1', payload, metadata, {hash} \
               FROM (SELECT gen_random_uuid() AS s) stream, \
                    (SELECT n, jsonb_set('{payload}', '{{ActivityLogged,activity_id}}', to_jsonb(gen_random_uuid())) \
                            AS payload, '{metadata}'::jsonb AS metadata FROM generate_series(1, {rows}) n) body;\n"
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
            .arg(&self.url)
            .output()
            .await
            .context("running pgbench (Debian: apt-get install postgresql-client)")?;
        std::fs::remove_file(&path).ok();
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines()
            .find_map(|line| line.strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|number| number.parse::<f64>().ok())
            .with_context(|| {
                format!(
                    "pgbench printed no rate: {text} {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            })
    }

    /// Events per second postgres-es appends through its own API (load the aggregate from its
    /// snapshot, decide, append; a snapshot every 50 events, as the command service keeps them),
    /// `clients` clients each on its own aggregate.
    async fn postgres_es(&self, clients: usize, seconds: u64) -> anyhow::Result<f64> {
        // A pool of its own, closed after the run, so its connections do not linger.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(clients as u32)
            .connect(&self.url)
            .await?;
        let repository =
            postgres_es::PostgresEventRepository::new(pool.clone()).with_tables("pes_events", "pes_snapshots");
        let store = cqrs_es::persist::PersistedEventStore::<_, Tally>::new_snapshot_store(repository, 50);
        let cqrs = Arc::new(cqrs_es::CqrsFramework::new(store, Vec::new(), ()));
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (cqrs, done) = (cqrs.clone(), done.clone());
                tokio::spawn(async move {
                    let id = Uuid::now_v7().to_string();
                    while Instant::now() < deadline {
                        cqrs.execute(&id, ())
                            .await
                            .map_err(|error| anyhow::anyhow!("postgres-es: {error}"))?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
        pool.close().await;
        Ok(rate)
    }
}

/// The smallest aggregate postgres-es can append for: it counts the activities logged on it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Tally {
    activities: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum TallyEvent {
    ActivityLogged(Box<Value>),
}

fn logged() -> Value {
    json!({"activity_id": Uuid::now_v7(), "kind": "email", "direction": "outbound", "occurred_at": Utc::now(),
           "duration_minutes": null, "participants": [], "response_received": null, "response_time_hours": null,
           "subject": "bench", "logged_by": "bench"})
}

impl DomainEvent for TallyEvent {
    fn event_type(&self) -> String {
        "ActivityLogged".into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never refused")]
struct Never;

impl Aggregate for Tally {
    const TYPE: &'static str = "Tally";
    type Command = ();
    type Event = TallyEvent;
    type Error = Never;
    type Services = ();

    async fn handle(
        &mut self,
        _command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        sink.write(TallyEvent::ActivityLogged(Box::new(logged())), self).await;
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {
        self.activities += 1;
    }
}

/// Appends `events` activities through the batch endpoint, 1,000 per request, over `customers`.
async fn backlog(target: &Target, customers: &[Uuid], events: usize) -> anyhow::Result<()> {
    let recorder = Arc::new(Recorder::default());
    let requests: Vec<Request> = (0..events.div_ceil(1000))
        .map(|index| {
            let customer = customers[index % customers.len()];
            let size = (events - index * 1000).min(1000);
            Request {
                kind: "log_activities",
                path: format!("/api/v1/customers/{customer}/activities/batch"),
                body: json!({"activities": (0..size).map(|_| activity(customer).body).collect::<Vec<_>>()}),
            }
        })
        .collect();
    // One client per customer at a time keeps a stream's batches from racing each other.
    let lanes = customers.len().min(4);
    let requests = Arc::new(requests);
    let tasks: Vec<_> = (0..lanes)
        .map(|lane| {
            let (target, recorder, requests) = (target.clone(), recorder.clone(), requests.clone());
            tokio::spawn(async move {
                for request in requests.iter().skip(lane).step_by(lanes) {
                    target.send(request, &recorder).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    ensure!(recorder.failed.load(Ordering::Relaxed) == 0, "{:?}", recorder.errors());
    Ok(())
}

async fn head(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(max(global_position), 0) FROM events")
            .fetch_one(pool)
            .await?,
    )
}

async fn wait_for(timeout: Duration, mut done: impl AsyncFnMut() -> anyhow::Result<bool>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while !done().await? {
        if started.elapsed() > timeout {
            bail!("not done within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(started.elapsed())
}

/// Waits until every projector has applied every event stored now. Counting the store once and
/// then polling the projectors' one-row status keeps the wait itself off the CPU the
/// projectors are measured on (counting a large store every few milliseconds would not).
async fn caught_up(pool: &PgPool, timeout: Duration) -> anyhow::Result<Duration> {
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?;
    let projectors = events::topology::PROJECTORS.len() as i64;
    wait_for(timeout, async || {
        let (count, least): (i64, Option<i64>) =
            sqlx::query_as("SELECT count(*), min(events_applied) FROM projector_status")
                .fetch_one(pool)
                .await?;
        Ok(count == projectors && least.unwrap_or(0) >= stored)
    })
    .await
}

/// Waits until the relay has published up to global position `head`.
async fn relayed_to(pool: &PgPool, head: i64, timeout: Duration) -> anyhow::Result<Duration> {
    wait_for(timeout, async || {
        let cursor: Option<i64> = sqlx::query_scalar("SELECT global_position FROM relay_cursor WHERE relay = 'main'")
            .fetch_optional(pool)
            .await?;
        Ok(cursor.unwrap_or(0) >= head)
    })
    .await
}

async fn stop_pipeline(system: &mut TestSystem) {
    system.kill_relay().await;
    system.kill_every_projection().await;
}

async fn pipeline(args: &Args, system: &mut TestSystem, customers: &[Uuid], rows: &mut Rows) -> anyhow::Result<()> {
    let target = target(system);
    let timeout = Duration::from_secs(600);
    let pool = system.pool.clone();
    caught_up(&pool, timeout).await?;
    let events = args.backlog;

    // Relay: a backlog published with confirms while the projectors are away.
    stop_pipeline(system).await;
    backlog(&target, customers, events).await?;
    let body_size: f64 = sqlx::query_scalar(
        "SELECT avg(octet_length(payload::text) + octet_length(metadata::text))::float8 FROM events",
    )
    .fetch_one(&system.pool)
    .await?;
    let head = self::head(&system.pool).await?;
    system.start_relay();
    let relayed = relayed_to(&system.pool, head, timeout).await?;
    let bare = BareBroker::new(&system.name).await?;
    // The envelope carries the event's fields around payload and metadata: about 300 bytes more.
    let body = vec![b'x'; body_size as usize + 300];
    let published = bare.publish(events, &body, 500).await?;
    rows.add(
        "relay: events published with confirms",
        events as f64 / relayed.as_secs_f64(),
        "/s",
        Some((
            "bare lapin publisher, confirm window 500".into(),
            events as f64 / published.as_secs_f64(),
        )),
    );

    // Projection: the projectors, as the service is configured unless told otherwise, drain the
    // backlog the relay queued.
    let (prefetch, batch) = (args.prefetch, args.apply_batch);
    let consumed = bare.consume(events, prefetch, usize::from(batch)).await?;
    bare.delete().await;
    system
        .reconfigure_projection(|settings| as_deployed(args, settings))
        .await?;
    let pool = system.pool.clone();
    let projected = caught_up(&pool, timeout).await?;
    rows.add(
        "projection: events applied by every projector",
        events as f64 / projected.as_secs_f64(),
        "/s",
        Some((
            format!("bare lapin consumer, prefetch {prefetch}, a multiple ack per {batch}"),
            events as f64 / consumed.as_secs_f64(),
        )),
    );

    // The same backlog applied one delivery per transaction, as the projectors did before
    // they applied what had arrived together.
    stop_pipeline(system).await;
    backlog(&target, customers, events).await?;
    let head = self::head(&system.pool).await?;
    system.start_relay();
    relayed_to(&system.pool, head, timeout).await?;
    let pool = system.pool.clone();
    system
        .reconfigure_projection(|settings| settings.apply_batch = 1)
        .await?;
    let single = caught_up(&pool, timeout).await?;
    rows.add(
        "projection: events applied, one transaction per delivery",
        events as f64 / single.as_secs_f64(),
        "/s",
        Some((
            "batches of what has arrived, above".into(),
            events as f64 / projected.as_secs_f64(),
        )),
    );

    // Catch-up: relay and projectors away while the backlog grows, then both back.
    stop_pipeline(system).await;
    backlog(&target, customers, events).await?;
    system.start_relay();
    system
        .reconfigure_projection(|settings| as_deployed(args, settings))
        .await?;
    let pool = system.pool.clone();
    let drained = caught_up(&pool, timeout).await?;
    rows.add(
        "catch-up: events relayed and applied after an outage",
        events as f64 / drained.as_secs_f64(),
        "/s",
        Some(("the relay alone, above".into(), events as f64 / relayed.as_secs_f64())),
    );

    // Freshness: a command answered to its event visible in GraphQL, at a steady rate; every
    // 50th command is followed until the timeline shows it.
    for rate in [args.steady_rate, args.sustained_rate] {
        let (achieved, freshness) = freshness(&target, customers, rate, args.steady_seconds).await?;
        rows.add(
            format!("freshness: commands offered at {rate:.0}/s, achieved"),
            achieved,
            "/s",
            None,
        );
        rows.add(
            format!("freshness: answered to visible in GraphQL at {rate:.0}/s offered, p50"),
            ms(percentile(&freshness, 50.0)),
            "ms",
            None,
        );
        rows.add(
            format!("freshness: answered to visible in GraphQL at {rate:.0}/s offered, p99"),
            ms(percentile(&freshness, 99.0)),
            "ms",
            Some(("target".into(), 1000.0)),
        );
    }
    Ok(())
}

/// Commands offered at `rate` per second for `seconds` by one client per customer; every 50th
/// is followed until the customer's timeline in GraphQL shows its event. The rate achieved and
/// the sorted delays from each followed command's answer to its event visible.
async fn freshness(
    target: &Target,
    customers: &[Uuid],
    rate: f64,
    seconds: u64,
) -> anyhow::Result<(f64, Vec<Duration>)> {
    let freshness = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = Arc::new(Recorder::default());
    let pace = Arc::new(Pace::new(rate));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let ticket = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = customers
        .iter()
        .map(|customer| {
            let (target, recorder, pace, freshness, ticket, customer) =
                (target.clone(), recorder.clone(), pace.clone(), freshness.clone(), ticket.clone(), *customer);
            tokio::spawn(async move {
                let mut watches = Vec::new();
                loop {
                    pace.wait().await;
                    if Instant::now() >= deadline {
                        break;
                    }
                    let request = activity(customer);
                    let Some(answer) = target.send(&request, &recorder).await else { continue };
                    let answered = Instant::now();
                    if ticket.fetch_add(1, Ordering::Relaxed) % 50 != 0 {
                        continue;
                    }
                    let event = answer["event_ids"][0].clone();
                    let (target, freshness) = (target.clone(), freshness.clone());
                    let since = request.body["occurred_at"].clone();
                    watches.push(tokio::spawn(async move {
                        let query = "query($id: UUID!, $since: DateTime) { customerTimeline(customerId: $id, from: $since, first: 100) { edges { node { eventId } } } }";
                        let quiet = Recorder::default();
                        while answered.elapsed() < Duration::from_secs(30) {
                            let found = target
                                .query("freshness", query, json!({"id": customer, "since": since}), &quiet)
                                .await
                                .and_then(|answer| {
                                    answer["data"]["customerTimeline"]["edges"]
                                        .as_array()
                                        .map(|edges| edges.iter().any(|edge| edge["node"]["eventId"] == event))
                                });
                            if found == Some(true) {
                                freshness.lock().expect("not poisoned").push(answered.elapsed());
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(25)).await;
                        }
                    }));
                }
                for watch in watches {
                    watch.await.ok();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    let achieved = recorder.sent.load(Ordering::Relaxed) as f64 / seconds as f64;
    ensure!(recorder.failed.load(Ordering::Relaxed) == 0, "{:?}", recorder.errors());
    let mut freshness = std::mem::take(&mut *freshness.lock().expect("not poisoned"));
    freshness.sort();
    ensure!(!freshness.is_empty(), "no command became visible");
    Ok((achieved, freshness))
}

/// An exchange and a queue of their own on the broker, for the bare publisher and consumer.
struct BareBroker {
    connection: lapin::Connection,
    channel: lapin::Channel,
    name: String,
}

impl BareBroker {
    async fn new(system: &str) -> anyhow::Result<Self> {
        let name = format!("{system}_bare");
        let connection = events::service::amqp::connect(tests::AMQP_URL, &name).await?;
        let channel = connection.create_channel().await?;
        channel
            .exchange_declare(
                ShortString::from(name.clone()),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(
                ShortString::from(name.clone()),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                ShortString::from(name.clone()),
                ShortString::from(name.clone()),
                ShortString::from("bench"),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(BareBroker {
            connection,
            channel,
            name,
        })
    }

    /// Publishes `count` persistent messages of `body` in windows of `window`, with at most two
    /// windows unconfirmed: the next is sent while the last one's confirms are awaited (as the
    /// relay does with its batches).
    async fn publish(&self, count: usize, body: &[u8], window: usize) -> anyhow::Result<Duration> {
        let channel = self.connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let started = Instant::now();
        let mut sent = 0;
        let mut unconfirmed: Vec<lapin::PublisherConfirm> = Vec::new();
        while sent < count || !unconfirmed.is_empty() {
            let mut confirms = Vec::with_capacity(window);
            for _ in 0..window.min(count - sent) {
                confirms.push(
                    channel
                        .basic_publish(
                            ShortString::from(self.name.clone()),
                            ShortString::from("bench"),
                            BasicPublishOptions {
                                mandatory: true,
                                ..Default::default()
                            },
                            body,
                            BasicProperties::default().with_delivery_mode(2),
                        )
                        .await?,
                );
                sent += 1;
            }
            for confirm in std::mem::replace(&mut unconfirmed, confirms) {
                ensure!(confirm.await?.is_ack(), "the broker refused a message");
            }
        }
        Ok(started.elapsed())
    }

    /// Drains `count` messages, acknowledging every `ack_every` of them (and the last) with one
    /// `multiple` ack, as the projectors acknowledge a batch.
    async fn consume(&self, count: usize, prefetch: u16, ack_every: usize) -> anyhow::Result<Duration> {
        let channel = self.connection.create_channel().await?;
        channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
        let mut consumer = channel
            .basic_consume(
                ShortString::from(self.name.clone()),
                ShortString::from("bench"),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let started = Instant::now();
        for n in 1..=count {
            let delivery = consumer.next().await.context("the queue ended early")??;
            if n % ack_every.max(1) == 0 || n == count {
                delivery.ack(BasicAckOptions { multiple: true }).await?;
            }
        }
        Ok(started.elapsed())
    }

    async fn delete(self) {
        self.channel
            .queue_delete(ShortString::from(self.name.clone()), QueueDeleteOptions::default())
            .await
            .ok();
        self.channel
            .exchange_delete(ShortString::from(self.name.clone()), ExchangeDeleteOptions::default())
            .await
            .ok();
        self.connection.close(0, ShortString::from("done")).await.ok();
    }
}

async fn store(args: &Args, system: &mut TestSystem, rows: &mut Rows) -> anyhow::Result<()> {
    let mut csms = Vec::new();
    for n in 0..(args.customers / 40).max(1) {
        csms.push(system.register_csm(&format!("CSM {n:03}")).await);
    }
    system.caught_up().await;
    system.kill_relay().await;
    tests::bench::append_portfolio(&system.pool, &csms, args.customers, args.events_per_customer - 8).await?;
    sqlx::query("ANALYZE events").execute(&system.pool).await?;

    let (copied, _, copy_time) = tests::bench::copy_events(&system.database_url).await?;
    let summary = tests::bench::rebuild_all(system).await?;
    let copy_rate = copied as f64 / copy_time.as_secs_f64();
    rows.add(
        format!("rebuild: every projection, {} events", summary.events),
        summary.events as f64 / summary.elapsed.as_secs_f64(),
        "/s",
        Some(("COPY (SELECT ... ORDER BY global_position) TO STDOUT".into(), copy_rate)),
    );
    sqlx::query("ANALYZE").execute(&system.pool).await?;
    ensure!(system.projected().await?, "read models must match the store");

    let target = target(system);
    let customers: Vec<Uuid> = sqlx::query_scalar("SELECT customer_id FROM customer_profiles ORDER BY customer_id")
        .fetch_all(&system.pool)
        .await?;
    let floor = measure(&target, args.query_runs, "{ __typename }", |_| json!({})).await?;
    let single = tests::bench::CUSTOMER_360;
    let reports = tests::bench::PORTFOLIO_REPORTS;
    let count = customers.len();
    for (name, query) in reports {
        let times = measure(&target, args.query_runs, query, |_| json!({})).await?;
        for p in [50.0, 95.0] {
            rows.add(
                format!("queries: {name} at {count} customers, p{p:.0}"),
                ms(percentile(&times, p)),
                "ms",
                Some(("a GraphQL round trip reading nothing".into(), ms(percentile(&floor, p)))),
            );
        }
    }
    let times = measure(
        &target,
        args.query_runs * 5,
        single,
        |run| json!({"id": customers[(run * 7919) % customers.len()]}),
    )
    .await?;
    for p in [50.0, 95.0] {
        rows.add(
            format!("queries: customer 360 with its timeline at {count} customers, p{p:.0}"),
            ms(percentile(&times, p)),
            "ms",
            Some(("a GraphQL round trip reading nothing".into(), ms(percentile(&floor, p)))),
        );
    }
    Ok(())
}

/// Sorted latencies of `runs` runs of `query`, after one unmeasured run.
async fn measure(
    target: &Target,
    runs: usize,
    query: &str,
    variables: impl Fn(usize) -> Value,
) -> anyhow::Result<Vec<Duration>> {
    let recorder = Recorder::default();
    target.query("warm-up", query, variables(0), &recorder).await;
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        let started = Instant::now();
        target.query("measured", query, variables(run), &recorder).await;
        times.push(started.elapsed());
    }
    ensure!(recorder.failed.load(Ordering::Relaxed) == 0, "{:?}", recorder.errors());
    times.sort();
    Ok(times)
}
