//! The backup and restore drill: the store is backed up by `deploy/backup.sh` while the system
//! runs, restored by `deploy/restore.sh` into a new database (which verifies every hash chain
//! and rebuilds every read model), and the restored system's read models and reports equal the
//! original's.

use std::path::PathBuf;
use std::process::Command;

use chrono::{Days, Utc};
use serde_json::{json, Value};
use tests::TestSystem;

/// The debug builds of the services' binaries, beside this test's own executable.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug")
        .to_owned();
    for binary in ["command-service", "projection-service"] {
        assert!(
            dir.join(binary).exists(),
            "{binary} is not built in {}: run the whole suite (cargo nextest run --workspace)",
            dir.display()
        );
    }
    dir
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(name)
}

const REPORTS: &str = "query($asOf: Date, $period: String) {
  coverageReport(asOf: $asOf) { summary { accounts underCovered wellCovered overCovered } accounts { name score status priority } }
  engagementMetrics(asOf: $asOf, period: $period) { averageScore items { name score category } }
  csmWorkload(asOf: $asOf) { csms { name accounts arr utilizationPct } }
}";

async fn reports(system_graphql: &str, token: &str, http: &reqwest::Client, variables: &Value) -> Value {
    http.post(system_graphql)
        .bearer_auth(token)
        .json(&json!({"query": REPORTS, "variables": variables}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_restored_backup_verifies_rebuilds_and_reports_as_the_original() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Bea Backup").await;
    let today = Utc::now().date_naive();
    for (n, tier) in ["Enterprise", "MidMarket", "SMB"].iter().enumerate() {
        let customer = system
            .onboard(
                &format!("Backup {n}"),
                tier,
                "25000",
                csm,
                Utc::now() - chrono::Duration::days(60),
            )
            .await;
        let person = system.add_stakeholder(customer, "Ada", "executive").await;
        system
            .log_activity(customer, "meeting", today - Days::new(2 + n as u64), &[person])
            .await;
        system.log_activity(customer, "email", today - Days::new(10), &[]).await;
        system
            .record_health(customer, 40.0 + 20.0 * n as f64, today - Days::new(1))
            .await;
    }
    system.caught_up().await;
    let variables = json!({"asOf": today, "period": today.format("%Y-%m").to_string()});
    let original = reports(&system.graphql_url, &system.admin, &system.http, &variables).await;
    assert!(original.get("errors").is_none(), "{original}");
    let original_models = tests::read_models(&system.pool, "public").await;

    let dir = std::env::temp_dir().join(format!("{}-backup", system.name));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("store.dump");
    let backup = Command::new("bash")
        .arg(script("backup.sh"))
        .arg(&file)
        .env("CSTRACK_DATABASE_URL", &system.database_url)
        .output()
        .unwrap();
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));

    let restored = format!("{}_restored", system.name);
    let restore = Command::new("bash")
        .arg(script("restore.sh"))
        .arg(&file)
        .arg(&restored)
        .env("CSTRACK_BIN_DIR", bin_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&restore.stdout).into_owned();
    assert!(
        restore.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    assert!(stdout.contains("rebuilt"), "{stdout}");

    let url = format!("postgres://postgres@127.0.0.1:5432/{restored}");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    assert_eq!(
        tests::read_models(&pool, "public").await,
        original_models,
        "read models rebuilt equal"
    );
    // New appends continue after the restored positions.
    let (last_value, head): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT last_value FROM events_global_position_seq), (SELECT max(global_position) FROM events)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(last_value >= head, "{last_value} < {head}");

    let query = query_api::Application::build(&query_api::Settings {
        database: events::service::settings::DatabaseSettings {
            database_url: url.clone(),
            database_pool: tests::TEST_POOL,
            database_acquire_seconds: 30,
        },
        auth: tests::auth_settings(),
        listen: "127.0.0.1:0".parse().unwrap(),
        graphiql: false,
        http_limits: Default::default(),
        web: Default::default(),
    })
    .await
    .unwrap();
    let graphql = format!("http://127.0.0.1:{}/graphql", query.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(query.run_until_stopped(async move {
        stopped.await.ok();
    }));
    let again = reports(&graphql, &system.admin, &system.http, &variables).await;
    assert_eq!(again, original, "the restored system reports as the original");
    stop.send(()).ok();
    served.await.ok();
    pool.close().await;

    let mut admin = tests::admin_connection().await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {restored} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    system.stop().await;
}
