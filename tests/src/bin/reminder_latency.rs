//! Reminder firing latency under load (docs/BENCHMARKS.md): `--active` reminders in all, of
//! which `--due` one-time reminders come due spread over `--spread` seconds, the rest recurring
//! reminders not due for years (they load the scheduler's tables). For each due reminder it
//! measures, from the instant it was due, when its `ReminderFired` event was committed (fired)
//! and when it was in the user's queue (delivered in-app: the read model, polled every 20 ms),
//! and prints p50, p95, p99 and the largest of each, beside the scheduler's poll interval (the
//! raw limit: a reminder due just after a look waits for the next one).
//!
//!     CSTRACK_TEST_REMINDER_POLL_SECONDS=1 cargo run --release -p tests --bin reminder-latency -- --active 10000 --due 1000
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Parser;
use futures_util::StreamExt;
use serde_json::json;
use tests::TestSystem;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    active: usize,
    #[arg(long, default_value_t = 1_000)]
    due: usize,
    #[arg(long, default_value_t = 30)]
    spread: i64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    println!(
        "{name}: n={} p50={:.0} ms p95={:.0} ms p99={:.0} ms max={:.0} ms",
        values.len(),
        percentile(&values, 50.0),
        percentile(&values, 95.0),
        percentile(&values, 99.0),
        values.last().copied().unwrap_or_default()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let limits = events::service::http::HttpLimits {
        rate_limit_per_second: 1e9,
        rate_limit_burst: 1e9,
        ..Default::default()
    };
    let system = TestSystem::spawn_limited(16, 60.0, limits).await?;
    let started = Instant::now();
    let idle = args.active.saturating_sub(args.due);
    futures_util::stream::iter(0..idle)
        .for_each_concurrent(16, |n| {
            let system = &system;
            async move {
                system
                    .post_ok(
                        "/api/v1/reminders",
                        &json!({"title": format!("Quarterly review {n}"), "time_zone": "Europe/Berlin",
                                "schedule": {"kind": "recurring", "rrule": "FREQ=MONTHLY;INTERVAL=3", "starts": "2031-01-15T09:00:00"}}),
                    )
                    .await;
            }
        })
        .await;
    println!("{idle} idle reminders made in {:.1} s", started.elapsed().as_secs_f64());
    let first_due = Utc::now() + chrono::Duration::seconds(15 + args.due as i64 / 100);
    let mut due_at: HashMap<Uuid, DateTime<Utc>> = HashMap::new();
    let made: Vec<(Uuid, DateTime<Utc>)> = futures_util::stream::iter(0..args.due)
        .map(|n| {
            let system = &system;
            let at = first_due + chrono::Duration::milliseconds((n as i64 * args.spread * 1000) / args.due as i64);
            async move {
                let answer = system
                    .post_ok(
                        "/api/v1/reminders",
                        &json!({"title": format!("Call back {n}"), "schedule": {"kind": "once", "at": at}}),
                    )
                    .await;
                (tests::uuid(&answer["reminder_id"]), at)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    due_at.extend(made);
    anyhow::ensure!(
        Utc::now() < first_due,
        "making the due reminders took past the first due instant"
    );
    let (active,): (i64,) = sqlx::query_as("SELECT count(*) FROM reminders WHERE status = 'active'")
        .fetch_one(&system.pool)
        .await?;
    println!("{} reminders due from {first_due} over {} s", args.due, args.spread);
    let mut delivered: HashMap<Uuid, f64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(args.spread as u64 + 120);
    while delivered.len() < due_at.len() && Instant::now() < deadline {
        let visible: Vec<Uuid> =
            sqlx::query_scalar("SELECT reminder_id FROM reminder_occurrences WHERE trigger = 'once'")
                .fetch_all(&system.pool)
                .await?;
        let now = Utc::now();
        for id in visible {
            if let (Some(due), false) = (due_at.get(&id), delivered.contains_key(&id)) {
                delivered.insert(id, (now - *due).num_microseconds().unwrap_or_default() as f64 / 1000.0);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::ensure!(
        delivered.len() == due_at.len(),
        "only {} of {} were delivered",
        delivered.len(),
        due_at.len()
    );
    let fired: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT aggregate_id, (payload->'ReminderFired'->>'due_at')::timestamptz, recorded_at FROM events
          WHERE aggregate_type = 'Reminder' AND event_type = 'ReminderFired'",
    )
    .fetch_all(&system.pool)
    .await?;
    println!(
        "active reminders when the first came due: {active}; scheduler poll {} s",
        std::env::var("CSTRACK_TEST_REMINDER_POLL_SECONDS").unwrap_or_else(|_| "0.2".into())
    );
    report(
        "due -> fired (event committed)",
        fired
            .iter()
            .map(|(_, due, at)| (*at - *due).num_microseconds().unwrap_or_default() as f64 / 1000.0)
            .collect(),
    );
    report(
        "due -> delivered in-app (in the queue)",
        delivered.into_values().collect(),
    );
    system.stop().await;
    Ok(())
}
