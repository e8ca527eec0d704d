//! Read-side benchmark: 10,000 customers and 2,000,000 events, then p50/p95 of the portfolio
//! reports and of a single customer with its nested timeline, through GraphQL.
//!
//! The system runs in-process (release build, its own database). The events are appended by
//! set-based SQL (realistic payloads: onboarding, stakeholders, a year of activities, health
//! scores) and the read models are built from those stored events by set-based SQL writing what
//! the projectors write; pushing two million events through the broker one by one would take most
//! of an hour on this machine and measure the projectors, not the queries.
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
}

/// What the projectors write, from the stored events.
const PROJECT: &str = r#"
INSERT INTO coverage_accounts (customer_id, name, tier, arr, csm_id, onboarded_on)
SELECT aggregate_id::uuid, p->>'name', p->>'tier', (p->>'arr')::numeric, (p->>'csm_id')::uuid, (p->>'occurred_at')::timestamptz::date
  FROM (SELECT aggregate_id, payload->'CustomerOnboarded' p FROM events WHERE event_type = 'CustomerOnboarded') e;
INSERT INTO customer_profiles (customer_id, name, salesforce_id, tier, arr, industry, account_manager, csm_id, products_owned,
                               contract_start, renewal_date, onboarded_at)
SELECT aggregate_id::uuid, p->>'name', p->>'salesforce_id', p->>'tier', (p->>'arr')::numeric, p->>'industry', p->>'account_manager',
       (p->>'csm_id')::uuid, '{}', (p->>'contract_start')::date, (p->>'renewal_date')::date, (p->>'occurred_at')::timestamptz
  FROM (SELECT aggregate_id, payload->'CustomerOnboarded' p FROM events WHERE event_type = 'CustomerOnboarded') e;
INSERT INTO customer_stakeholders (customer_id, stakeholder_id, name, role, level, email)
SELECT aggregate_id::uuid, (p->>'stakeholder_id')::uuid, p->>'name', p->>'role', p->>'level', NULL
  FROM (SELECT aggregate_id, payload->'StakeholderAdded' p FROM events WHERE event_type = 'StakeholderAdded') e;
INSERT INTO coverage_contacts (customer_id, activity_id, kind, occurred_at, occurred_on, participants)
SELECT aggregate_id::uuid, (p->>'activity_id')::uuid, p->>'kind', (p->>'occurred_at')::timestamptz,
       ((p->>'occurred_at')::timestamptz AT TIME ZONE 'UTC')::date,
       ARRAY(SELECT jsonb_array_elements_text(p->'participants')::uuid)
  FROM (SELECT aggregate_id, payload->'ActivityLogged' p FROM events WHERE event_type = 'ActivityLogged') e;
INSERT INTO customer_activities (customer_id, activity_id, kind, direction, occurred_at, occurred_on, duration_minutes, participants,
                                 response_received, response_time_hours, subject, logged_by)
SELECT customer_id, activity_id, kind, p->>'direction', occurred_at, occurred_on, (p->>'duration_minutes')::int, participants,
       (p->>'response_received')::boolean, (p->>'response_time_hours')::float8, p->>'subject', p->>'logged_by'
  FROM coverage_contacts c
  JOIN (SELECT aggregate_id, payload->'ActivityLogged' p FROM events WHERE event_type = 'ActivityLogged') e
    ON e.aggregate_id = c.customer_id::text AND (e.p->>'activity_id')::uuid = c.activity_id;
INSERT INTO coverage_health_points (customer_id, sequence, measured_at, measured_on, score)
SELECT aggregate_id::uuid, sequence, (p->>'measured_at')::timestamptz, ((p->>'measured_at')::timestamptz AT TIME ZONE 'UTC')::date,
       (p->>'score')::float8
  FROM (SELECT aggregate_id, sequence, payload->'HealthScoreRecorded' p FROM events WHERE event_type = 'HealthScoreRecorded') e;
INSERT INTO health_points (customer_id, sequence, event_id, measured_at, measured_on, score, source, actor_id, actor_role, reason,
                           risk_factors, recorded_at)
SELECT aggregate_id::uuid, sequence, event_id, (p->>'measured_at')::timestamptz,
       ((p->>'measured_at')::timestamptz AT TIME ZONE 'UTC')::date, (p->>'score')::float8, 'gainsight', 'gainsight-sync', 'admin',
       NULL, '[]', recorded_at
  FROM (SELECT aggregate_id, sequence, event_id, recorded_at, payload->'HealthScoreRecorded' p FROM events
         WHERE event_type = 'HealthScoreRecorded') e;
INSERT INTO timeline_entries (customer_id, sequence, event_id, kind, event_type, occurred_at, recorded_at, actor_id, summary, detail)
SELECT aggregate_id::uuid, sequence, event_id,
       CASE WHEN event_type = 'HealthScoreRecorded' THEN 'health' WHEN payload->'ActivityLogged'->>'kind' = 'note' THEN 'note'
            WHEN event_type = 'CustomerOnboarded' THEN 'profile' ELSE 'activity' END,
       event_type,
       COALESCE(payload->'ActivityLogged'->>'occurred_at', payload->'HealthScoreRecorded'->>'measured_at',
                payload->'CustomerOnboarded'->>'occurred_at')::timestamptz,
       recorded_at, metadata->>'actor_id', event_type, payload->event_type
  FROM events WHERE aggregate_type = 'Customer' AND event_type <> 'StakeholderAdded';
INSERT INTO projector_checkpoints (projector, stream_type, stream_id, last_sequence)
SELECT projector, 'Customer', aggregate_id, max(sequence)
  FROM events, unnest(ARRAY['coverage', 'customers']) projector
 WHERE aggregate_type = 'Customer' GROUP BY projector, aggregate_id;
UPDATE relay_cursor SET tx_id = (SELECT max(tx_id) FROM events), global_position = (SELECT max(global_position) FROM events);
"#;

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
    let mut system = TestSystem::spawn_with(16, 3600.0).await?;
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
    let mut tx = system.pool.begin().await?;
    for statement in PROJECT.split(";\n").filter(|s| !s.trim().is_empty()) {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .context("building read models")?;
    }
    tx.commit().await?;
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
    let reports = [
        (
            "coverageReport",
            "{ coverageReport { summary { accounts underCovered } byTier { coveragePct } gaps { customerId } } }",
        ),
        (
            "engagementMetrics",
            "{ engagementMetrics { customers averageScore distribution { customers } outliers { customerId } } }",
        ),
        (
            "csmWorkload",
            "{ csmWorkload { csms { accounts utilizationPct } rebalancing { customerId } } }",
        ),
    ];
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
    let single =
        "query($id: UUID!) { customer(id: $id) { name tier arr csm { name } stakeholders { name } health { score }
        timeline(first: 20) { edges { node { kind summary occurredAt } } } } }";
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
    Ok(())
}
