//! Rebuilding projections from the store: a live rebuild while commands keep arriving equals
//! the read models built live, row for row, and switches without a gap; a rebuild as known at
//! an instant equals what the live model showed then and is queried by name.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{Days, Utc};
use projection_service::rebuild::{build, finish, RebuildRequest};
use serde_json::json;
use sqlx::PgPool;
use tests::TestSystem;
use uuid::Uuid;

/// Every row of every table the projectors own (memos are caches and left out), and the
/// projectors' checkpoints, as sorted text.
async fn read_models(pool: &PgPool, schema: &str) -> Vec<(String, Vec<String>)> {
    let mut tables: Vec<&str> = projection_service::projectors()
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .filter(|t| !t.ends_with("_memo"))
        .collect();
    tables.push("projector_checkpoints");
    let mut dump = Vec::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {schema}.{table} t ORDER BY 1"))
            .fetch_all(pool)
            .await
            .unwrap();
        dump.push((table.to_owned(), rows));
    }
    dump
}

/// Sends activities to `customers` in a loop until `stop`, counting them.
fn start_load(
    system: &TestSystem,
    customers: Vec<Uuid>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    let (http, url, token) = (system.http.clone(), system.command_url.clone(), system.admin.clone());
    tokio::spawn(async move {
        let mut k = 0_usize;
        while !stop.load(Ordering::Relaxed) {
            let customer = customers[k % customers.len()];
            let day = Utc::now().date_naive() - Days::new((k % 20) as u64);
            let response = http
                .post(format!("{url}/api/v1/customers/{customer}/activities"))
                .bearer_auth(&token)
                .json(
                    &json!({"kind": if k % 3 == 0 { "meeting" } else { "email" }, "direction": "outbound",
                    "occurred_at": day.and_hms_opt(12, 0, 0).unwrap().and_utc(),
                    "duration_minutes": if k % 3 == 0 { json!(45) } else { json!(null) },
                    "participants": [], "subject": format!("load {k}")}),
                )
                .send()
                .await
                .expect("the command service answers");
            assert!(response.status().is_success());
            sent.fetch_add(1, Ordering::Relaxed);
            k += 1;
        }
    })
}

async fn portfolio(system: &TestSystem) -> Vec<Uuid> {
    let csm = system.register_csm("Rita Rebuild").await;
    let mut customers = Vec::new();
    for (n, tier) in ["Enterprise", "MidMarket", "SMB"].iter().enumerate() {
        let customer = system
            .onboard(
                &format!("Rebuilt {n}"),
                tier,
                "50000.00",
                csm,
                Utc::now() - chrono::Duration::days(60),
            )
            .await;
        let person = system.add_stakeholder(customer, "Pat", "executive").await;
        system
            .log_activity(customer, "meeting", Utc::now().date_naive() - Days::new(5), &[person])
            .await;
        system
            .record_health(customer, 40.0 + 10.0 * n as f64, Utc::now().date_naive())
            .await;
        customers.push(customer);
    }
    customers
}

#[tokio::test]
async fn a_live_rebuild_under_load_equals_the_live_read_models_and_switches_atomically() {
    let system = TestSystem::spawn().await.unwrap();
    let customers = portfolio(&system).await;
    let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let load = start_load(&system, customers.clone(), stop.clone(), sent.clone());
    tests::eventually(std::time::Duration::from_secs(20), || async {
        sent.load(Ordering::Relaxed) >= 20
    })
    .await
    .unwrap();

    let request = RebuildRequest {
        projectors: projection_service::projectors(),
        known_at: None,
        snapshot_name: None,
        batch: 7,
    };
    let built = build(&system.pool, &system.database_url, &request).await.unwrap();
    // Live queries keep answering from the live tables during the rebuild.
    let during = system
        .graphql("{ coverageReport { summary { accounts } } }", json!({}))
        .await;
    assert_eq!(during["coverageReport"]["summary"]["accounts"], 3);
    tests::eventually(std::time::Duration::from_secs(20), || async {
        sent.load(Ordering::Relaxed) >= 40
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    system.caught_up().await;
    let live = read_models(&system.pool, "public").await;

    // The rebuilt tables missed the load's last events: the switch applies them from the store.
    let summary = finish(&system.pool, &request, built).await.unwrap();
    assert_eq!(summary.schema, "public");
    let rebuilt = read_models(&system.pool, "public").await;
    for ((table, live_rows), (_, rebuilt_rows)) in live.iter().zip(&rebuilt) {
        assert_eq!(live_rows.len(), rebuilt_rows.len(), "{table}");
        assert_eq!(live_rows, rebuilt_rows, "{table}: row for row");
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(summary.events as i64, events);
    let leftovers: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild_%'")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(leftovers, 0, "the shadow and retired schemas are dropped");

    // The live projectors go on applying new events on the switched tables.
    system
        .log_activity(customers[0], "call", Utc::now().date_naive(), &[])
        .await;
    system.caught_up().await;
    let status = system
        .graphql(
            "{ projectionStatus { projector lagEvents rebuild { state eventsDone } } }",
            json!({}),
        )
        .await;
    for row in status["projectionStatus"].as_array().unwrap() {
        assert_eq!(row["lagEvents"], 0);
        assert_eq!(row["rebuild"]["state"], "switched");
        assert_eq!(row["rebuild"]["eventsDone"], events);
    }
    system.stop().await;
}

#[tokio::test]
async fn a_rebuild_known_at_an_instant_equals_what_the_live_model_showed_then() {
    let system = TestSystem::spawn().await.unwrap();
    let customers = portfolio(&system).await;
    system.caught_up().await;
    let report = "{ coverageReport { summary { accounts averageScore } accounts { name touches30d healthScore score } }
                   engagementMetrics { averageScore items { name score } } }";
    // Capture the live model at an instant.
    let live_then = read_models(&system.pool, "public").await;
    let report_then = system.graphql(report, json!({})).await;
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    let known_at = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;

    // Later history.
    for customer in &customers {
        system
            .log_activity(*customer, "qbr", Utc::now().date_naive(), &[])
            .await;
        system.record_health(*customer, 90.0, Utc::now().date_naive()).await;
    }
    system.caught_up().await;
    assert_ne!(system.graphql(report, json!({})).await, report_then);

    let request = RebuildRequest {
        projectors: projection_service::projectors(),
        known_at: Some(known_at),
        snapshot_name: Some("2026-03-31".into()),
        batch: 1000,
    };
    let summary = projection_service::rebuild::rebuild(&system.pool, &system.database_url, &request)
        .await
        .unwrap();
    assert_eq!(summary.schema, "snapshot_2026_03_31");
    let snapshot = read_models(&system.pool, &summary.schema).await;
    for ((table, then), (_, rebuilt)) in live_then.iter().zip(&snapshot) {
        assert_eq!(then, rebuilt, "{table}: row for row as the live model held it then");
    }

    // GraphQL reads the snapshot by name.
    let by_name = system
        .graphql(
            &format!("{{ snapshot(name: \"2026-03-31\") {report} projectionSnapshots {{ name events }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(by_name["snapshot"], report_then);
    assert_eq!(by_name["projectionSnapshots"][0]["name"], "2026-03-31");
    let refused = system
        .graphql_raw(
            "{ snapshot(name: \"2026-03-31\") { customers { edges { cursor } } } }",
            json!({}),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // A snapshot of the same name is refused until it is dropped.
    assert!(
        projection_service::rebuild::rebuild(&system.pool, &system.database_url, &request)
            .await
            .is_err()
    );
    projection_service::rebuild::drop_snapshot(&system.pool, "2026-03-31")
        .await
        .unwrap();
    let missing = system
        .graphql_raw(
            "{ snapshot(name: \"2026-03-31\") { coverageReport { asOf } } }",
            json!({}),
        )
        .await;
    assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert!(projection_service::rebuild::snapshots(&system.pool)
        .await
        .unwrap()
        .is_empty());
    system.stop().await;
}
