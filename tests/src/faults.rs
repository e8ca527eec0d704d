//! The fault suite: a steady load of commands, each retried with its own `Idempotency-Key` until
//! acknowledged, while faults are injected; afterwards every acknowledged command must be in the
//! store exactly once and every stored event in every read model exactly once, and the live read
//! models must equal a rebuild.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::TestSystem;

/// What the load driver did.
#[derive(Debug, Default)]
pub struct Load {
    /// Requests sent, first attempts and retries.
    pub attempts: AtomicU64,
    /// Keys whose command was acknowledged (2xx), with the customer.
    pub acknowledged: Mutex<HashMap<String, Uuid>>,
    /// Keys given up on (never acknowledged within the driver's patience).
    pub abandoned: AtomicU64,
}

/// Where the load goes: a command API and a token for it.
#[derive(Clone)]
pub struct Target {
    pub http: reqwest::Client,
    pub command_url: String,
    pub token: String,
}

impl TestSystem {
    pub fn target(&self) -> Target {
        Target {
            http: self.http.clone(),
            command_url: self.command_url.clone(),
            token: self.admin.clone(),
        }
    }
}

/// Runs `workers` clients sending activities to `customers` until `stop`; each command is
/// retried with the same key on any failure but a refusal (4xx other than 409 and 429).
pub fn start_load(
    target: &Target,
    customers: Vec<Uuid>,
    workers: usize,
    prefix: &str,
    stop: Arc<AtomicBool>,
    load: Arc<Load>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|worker| {
            let (http, base, token) = (target.http.clone(), target.command_url.clone(), target.token.clone());
            let (customers, stop, load, prefix) = (customers.clone(), stop.clone(), load.clone(), prefix.to_owned());
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let key = format!("{prefix}-{worker}-{n}");
                    let customer = customers[(worker + n) % customers.len()];
                    let body = json!({"kind": "call", "direction": "outbound", "occurred_at": Utc::now() - chrono::Duration::seconds(1),
                        "subject": key});
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let mut wait = Duration::from_millis(20);
                    loop {
                        load.attempts.fetch_add(1, Ordering::Relaxed);
                        let sent = http
                            .post(format!("{base}/api/v1/customers/{customer}/activities"))
                            .bearer_auth(&token)
                            .header("Idempotency-Key", &key)
                            .json(&body)
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await;
                        let status = sent.as_ref().map(|response| response.status().as_u16()).ok();
                        match status {
                            Some(200..=299) => {
                                load.acknowledged
                                    .lock()
                                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                                    .insert(key.clone(), customer);
                                break;
                            }
                            Some(code @ 400..=499) if code != 409 && code != 429 => {
                                panic!("a valid command was refused with {code}");
                            }
                            _ if Instant::now() > deadline => {
                                load.abandoned.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            _ => {
                                tokio::time::sleep(wait).await;
                                wait = (wait * 2).min(Duration::from_millis(500));
                            }
                        }
                    }
                }
            })
        })
        .collect()
}

/// One scenario's figures.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub scenario: String,
    pub attempts: u64,
    pub acknowledged: usize,
    /// Keys of this scenario found in the store.
    pub stored: usize,
    /// Activities of this scenario in the coverage read model.
    pub projected: usize,
    /// Keys stored more than once, plus read-model rows beyond one per stored event.
    pub duplicates: usize,
    /// Acknowledged keys missing from the store or from a read model.
    pub losses: usize,
    /// From the end of the fault to every read model caught up.
    pub recovery: Duration,
    pub rebuild_equal: bool,
}

impl Outcome {
    pub const HEADER: &'static str =
        "| scenario | commands sent | acknowledged | stored | projected | duplicates | losses | recovery | live = rebuild |\n|---|---|---|---|---|---|---|---|---|";

    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} s | {} |",
            self.scenario,
            self.attempts,
            self.acknowledged,
            self.stored,
            self.projected,
            self.duplicates,
            self.losses,
            self.recovery.as_secs_f64(),
            if self.rebuild_equal { "yes" } else { "NO" }
        )
    }
}

/// Every event of the store applied by every projector.
pub async fn projected(pool: &sqlx::PgPool) -> bool {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM events) * $1 = (SELECT COALESCE(sum(last_sequence), 0) FROM projector_checkpoints)",
    )
    .bind(events::topology::PROJECTORS.len() as i64)
    .fetch_one(pool)
    .await
    .unwrap_or(false)
}

/// Checks the store and the read models against what the load driver was told.
pub async fn audit(
    pool: &sqlx::PgPool,
    database_url: &str,
    scenario: &str,
    prefix: &str,
    load: &Load,
    fault_ended: Instant,
) -> anyhow::Result<Outcome> {
    crate::eventually(Duration::from_secs(120), || projected(pool)).await?;
    let recovery = fault_ended.elapsed();
    let pattern = format!("{prefix}-%");
    let stored: Vec<(String, i64)> = sqlx::query_as(
        "SELECT metadata ->> 'idempotency_key', count(*) FROM events
          WHERE metadata ->> 'idempotency_key' LIKE $1 GROUP BY 1",
    )
    .bind(&pattern)
    .fetch_all(pool)
    .await?;
    let stored: HashMap<String, i64> = stored.into_iter().collect();
    // The coverage read model keeps one contact row per activity; the customers projector one
    // activity row per activity.
    let projected: Vec<(String, i64)> = sqlx::query_as(
        "SELECT e.metadata ->> 'idempotency_key', count(c.activity_id) FROM events e
           LEFT JOIN coverage_contacts c
             ON c.customer_id::text = e.aggregate_id AND c.activity_id::text = e.payload -> 'ActivityLogged' ->> 'activity_id'
          WHERE e.metadata ->> 'idempotency_key' LIKE $1 GROUP BY 1",
    )
    .bind(&pattern)
    .fetch_all(pool)
    .await?;
    let projected: HashMap<String, i64> = projected.into_iter().collect();
    let in_customers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customer_activities a JOIN events e
            ON a.customer_id::text = e.aggregate_id AND a.activity_id::text = e.payload -> 'ActivityLogged' ->> 'activity_id'
         WHERE e.metadata ->> 'idempotency_key' LIKE $1",
    )
    .bind(&pattern)
    .fetch_one(pool)
    .await?;
    let acknowledged = load
        .acknowledged
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    let duplicates = stored.values().filter(|count| **count > 1).count()
        + projected
            .values()
            .map(|count| (*count - 1).max(0) as usize)
            .sum::<usize>()
        + (in_customers as usize).saturating_sub(stored.len());
    let losses = acknowledged
        .keys()
        .filter(|key| !stored.contains_key(*key) || projected.get(*key).copied().unwrap_or(0) == 0)
        .count()
        + stored.len().saturating_sub(in_customers as usize);

    let live = crate::read_models(pool, "public").await;
    let request = projection_service::rebuild::RebuildRequest {
        projectors: projection_service::projectors(),
        known_at: None,
        snapshot_name: None,
        batch: 10_000,
        pass_events: 1_000_000,
        fold_workers: None,
    };
    projection_service::rebuild::rebuild(pool, database_url, &request).await?;
    let rebuild_equal = crate::read_models(pool, "public").await == live;
    Ok(Outcome {
        scenario: scenario.to_owned(),
        attempts: load.attempts.load(Ordering::Relaxed),
        acknowledged: acknowledged.len(),
        stored: stored.len(),
        projected: projected.values().filter(|count| **count > 0).count(),
        duplicates,
        losses,
        recovery,
        rebuild_equal,
    })
}

/// Terminates every session of the test's database but the caller's, as a database restart or
/// an administrator would.
pub async fn terminate_sessions(system: &TestSystem) -> anyhow::Result<i64> {
    let mut admin = crate::admin_connection().await?;
    let terminated: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = $1 AND pid <> pg_backend_pid()) t",
    )
    .bind(&system.name)
    .fetch_one(&mut admin)
    .await?;
    Ok(terminated)
}

/// A pause of `min..max` milliseconds, drawn at random.
pub async fn pause(min: u64, max: u64) {
    tokio::time::sleep(Duration::from_millis(fastrand::u64(min..max))).await;
}
