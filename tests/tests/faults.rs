//! The fault suite, short version (every CI run): under a steady load of retried commands, the
//! relay and the projection service are killed at random moments, database sessions are
//! terminated, broker connections are cut, and two projection-service replicas run at once.
//! After each scenario: every acknowledged command is in the store exactly once, every stored
//! event in every read model exactly once, and the live read models equal a rebuild.
//!
//! `CSTRACK_FAULTS=long` runs the long version: 20 kills of each process and longer loads.
//! Each scenario prints its row of the table in docs/RELIABILITY.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tests::faults::{audit, pause, start_load, terminate_sessions, Load, Outcome};
use tests::TestSystem;
use uuid::Uuid;

fn long() -> bool {
    std::env::var("CSTRACK_FAULTS").is_ok_and(|value| value == "long")
}

async fn customers(system: &TestSystem) -> Vec<Uuid> {
    let csm = system.register_csm("Fay Fault").await;
    let mut customers = Vec::new();
    for (n, tier) in ["Enterprise", "MidMarket", "SMB", "SMB"].iter().enumerate() {
        customers.push(
            system
                .onboard(
                    &format!("Fault {n}"),
                    tier,
                    "10000",
                    csm,
                    Utc::now() - chrono::Duration::days(40),
                )
                .await,
        );
    }
    customers
}

/// The load of one scenario, running.
struct Running {
    name: String,
    prefix: &'static str,
    stop: Arc<AtomicBool>,
    load: Arc<Load>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts a scenario's load and lets it settle before the faults.
async fn begin(system: &TestSystem, name: String, prefix: &'static str, customers: &[Uuid]) -> Running {
    let (stop, load) = (Arc::new(AtomicBool::new(false)), Arc::new(Load::default()));
    let workers = start_load(
        &system.target(),
        customers.to_vec(),
        4,
        prefix,
        stop.clone(),
        load.clone(),
    );
    pause(300, 301).await;
    Running {
        name,
        prefix,
        stop,
        load,
        workers,
    }
}

/// Ends a scenario once its faults are over: a little more load, then the audit.
async fn finish(system: &TestSystem, running: Running) -> Outcome {
    let fault_ended = Instant::now();
    pause(300, 301).await;
    running.stop.store(true, Ordering::Relaxed);
    for worker in running.workers {
        worker
            .await
            .expect("the load driver never sees a valid command refused");
    }
    let (name, load) = (&running.name, &running.load);
    let outcome = audit(
        &system.pool,
        &system.database_url,
        name,
        running.prefix,
        load,
        fault_ended,
    )
    .await
    .unwrap();
    println!("{}", outcome.row());
    assert_eq!(
        load.abandoned.load(Ordering::Relaxed),
        0,
        "{name}: every command was acknowledged in time"
    );
    assert!(outcome.acknowledged > 0, "{name}: the load ran");
    assert_eq!((outcome.duplicates, outcome.losses), (0, 0), "{name}: {outcome:?}");
    assert_eq!(outcome.stored, outcome.acknowledged, "{name}: {outcome:?}");
    assert!(outcome.rebuild_equal, "{name}: live equals a rebuild");
    outcome
}

#[tokio::test]
async fn no_acknowledged_command_is_lost_or_doubled_and_no_event_is_skipped_or_counted_twice_whatever_fails() {
    // The load driver shares one token; its rate limit is not what is under test here.
    let mut system = TestSystem::spawn_limited(tests::TEST_POOL, 0.2, tests::bench::UNLIMITED)
        .await
        .unwrap();
    let customers = customers(&system).await;
    let kills = if long() { 20 } else { 5 };
    println!("{}", Outcome::HEADER);

    let running = begin(&system, format!("relay killed {kills} times"), "relay", &customers).await;
    for _ in 0..kills {
        pause(20, 150).await;
        system.kill_relay().await;
        pause(20, 150).await;
        system.start_relay();
    }
    finish(&system, running).await;

    let running = begin(
        &system,
        format!("projection service killed {kills} times"),
        "projector",
        &customers,
    )
    .await;
    for _ in 0..kills {
        pause(20, 150).await;
        system.kill_projection().await;
        pause(20, 150).await;
        system.start_projection().await.unwrap();
    }
    finish(&system, running).await;

    let terminations = if long() { 10 } else { 3 };
    let running = begin(
        &system,
        format!("database sessions terminated {terminations} times"),
        "sessions",
        &customers,
    )
    .await;
    for _ in 0..terminations {
        pause(50, 200).await;
        terminate_sessions(&system).await.unwrap();
    }
    finish(&system, running).await;

    let running = begin(&system, "broker connections cut twice".into(), "broker", &customers).await;
    for _ in 0..2 {
        pause(50, 200).await;
        for who in ["relay", "projection"] {
            tests::close_broker_connections(&format!("{}-{who}", system.name)).unwrap();
        }
    }
    finish(&system, running).await;

    let running = begin(
        &system,
        "two projection replicas, the active one killed".into(),
        "replicas",
        &customers,
    )
    .await;
    system.start_projection().await.unwrap();
    assert_eq!(system.projection_replicas(), 2);
    pause(100, 300).await;
    system.kill_projection().await;
    finish(&system, running).await;
    system.stop().await;
}
