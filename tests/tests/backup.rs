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

/// The tables of `SETTINGS_TABLES` that a running system keeps writing (deliveries retried,
/// alerts raised): a backup holds one moment of them.
const LIVE_LOGS: [&str; 3] = ["notification_deliveries", "notification_attempts", "notification_inbox"];

/// A list of tables of `deploy/lib.sh`.
fn listed(name: &str) -> Vec<String> {
    let lib = std::fs::read_to_string(script("lib.sh")).unwrap();
    let start = lib
        .find(&format!("{name}=("))
        .unwrap_or_else(|| panic!("{name} in deploy/lib.sh"));
    let list = &lib[start + name.len() + 2..];
    list[..list.find(')').unwrap()]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Every row of the tables backed up beside the store (`SETTINGS_TABLES`), as text.
async fn settings_tables(pool: &sqlx::PgPool) -> Vec<(String, Vec<String>)> {
    let mut dump = Vec::new();
    for table in listed("SETTINGS_TABLES") {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY 1"))
            .fetch_all(pool)
            .await
            .unwrap_or_else(|error| panic!("{table}: {error}"));
        dump.push((table, rows));
    }
    dump
}

/// Every table is either backed up (the store's, or the state that is not an event), rebuilt
/// from the store (a read model), or passing (a replay guard, a rebuild's or a projector's
/// bookkeeping): a new table must take a side, or this fails.
#[tokio::test]
async fn every_table_is_backed_up_rebuilt_or_passing() {
    let system = TestSystem::spawn().await.unwrap();
    let mut accounted: Vec<String> = listed("STORE_TABLES");
    accounted.extend(listed("SETTINGS_TABLES"));
    accounted.extend(
        projection_service::projectors()
            .iter()
            .flat_map(|p| p.tables().iter().map(|t| (*t).to_owned())),
    );
    accounted.extend(
        [
            "_sqlx_migrations",
            "projector_checkpoints",
            "projector_status",
            "projection_rebuilds",
            "dead_letters",
            "slack_requests_seen",
        ]
        .map(str::to_owned),
    );
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            .fetch_all(&system.pool)
            .await
            .unwrap();
    let unaccounted: Vec<&String> = tables.iter().filter(|t| !accounted.contains(t)).collect();
    assert!(unaccounted.is_empty(), "neither backed up nor rebuilt: {unaccounted:?}");
    system.stop().await;
}

/// `backup.sh --dir` names each backup by its time and keeps the newest N.
#[tokio::test]
async fn scheduled_backups_keep_the_newest() {
    let system = TestSystem::spawn().await.unwrap();
    let dir = std::env::temp_dir().join(format!("{}-backups", system.name));
    std::fs::create_dir_all(&dir).unwrap();
    // Two older backups from earlier days, and a stray file that is no backup.
    for name in [
        "cstrack-20261201T023000Z.dump",
        "cstrack-20261202T023000Z.dump",
        "notes.txt",
    ] {
        std::fs::write(dir.join(name), b"old").unwrap();
    }
    let backup = Command::new("bash")
        .arg(script("backup.sh"))
        .args(["--dir", dir.to_str().unwrap(), "--keep", "2"])
        .env("CSTRACK_DATABASE_URL", &system.database_url)
        .output()
        .unwrap();
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "cstrack-20261202T023000Z.dump");
    assert!(names[1].starts_with("cstrack-2") && names[1] > names[0], "{names:?}");
    assert_eq!(names[2], "notes.txt");
    let refused = Command::new("bash")
        .arg(script("backup.sh"))
        .args(["--dir", dir.to_str().unwrap(), "--keep", "0"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    std::fs::remove_dir_all(&dir).ok();
    system.stop().await;
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
    // State that is not an event: an import (its file and what undo needs), a webhook and its
    // secret, notification preferences, a connector's cursor.
    let csv = "customer,score,measured at,source\n0015g00000AbCdEAAV,55,2026-11-02,gainsight\n";
    let (_, preview) = system
        .upload_import(
            &system.admin,
            "health_scores",
            "health.csv",
            csv.as_bytes().to_vec(),
            None,
        )
        .await;
    let import_id = preview["import_id"].as_str().expect("an import").to_owned();
    system
        .post_ok(&format!("/api/v1/imports/{import_id}/commit"), &json!({}))
        .await;
    system
        .post_ok(
            "/api/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "kinds": ["alert.*"]}),
        )
        .await;
    let (status, _) = system
        .send(
            reqwest::Method::PUT,
            "/api/v1/notification-preferences",
            Some(&json!({"email": "bea@example.com", "channels": ["email"]})),
        )
        .await;
    assert_eq!(status, 200);
    sqlx::query("INSERT INTO connector_cursors (connector, stream, cursor) VALUES ('salesforce', 'Account', '2026-11-22T11:00:00+00:00')")
        .execute(&system.pool)
        .await
        .unwrap();
    system.caught_up().await;
    let settings_before = settings_tables(&system.pool).await;
    assert!(
        settings_before.iter().filter(|(_, rows)| !rows.is_empty()).count() >= 4,
        "{settings_before:?}"
    );
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
    // Settings are restored row for row. The delivery log and the inbox keep moving while the
    // system runs (retries, new alerts), so the backup holds some moment of them: every row
    // restored was the original's, and none of them is lost entirely.
    let restored_settings = settings_tables(&pool).await;
    let now = settings_tables(&system.pool).await;
    for ((table, restored), (_, before)) in restored_settings.iter().zip(&settings_before) {
        if LIVE_LOGS.contains(&table.as_str()) {
            let key = |row: &String| row.split(',').next().unwrap_or_default().to_owned();
            let originals: Vec<String> = now
                .iter()
                .find(|(name, _)| name == table)
                .map(|(_, rows)| rows.iter().map(key).collect())
                .unwrap_or_default();
            assert!(before.is_empty() || !restored.is_empty(), "{table} was backed up");
            assert!(restored.iter().all(|row| originals.contains(&key(row))), "{table}");
        } else {
            assert_eq!(restored, before, "{table} is restored row for row");
        }
    }
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

    // The restored system undoes the import made before the backup.
    let mut settings = system.command_settings.clone();
    settings.database.database_url = url.clone();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    let command = command_service::Application::build(&settings).await.unwrap();
    let command_url = format!("http://127.0.0.1:{}", command.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(command.run_until_stopped(async move {
        stopped.await.ok();
    }));
    let undone: Value = system
        .http
        .post(format!("{command_url}/api/v1/imports/{import_id}/undo"))
        .bearer_auth(&system.admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(undone["status"], "undone", "{undone}");
    assert_eq!(undone["undo"]["retracted"]["health_scores"], 1, "{undone}");
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
