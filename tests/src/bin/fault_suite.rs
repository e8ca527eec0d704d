//! The fault suite with real processes: the command service (with its relay) and the projection
//! service run as the binaries they are, on a database and broker names of their own, under the
//! same retried load as `tests/tests/faults.rs`; they are killed with SIGKILL at random moments
//! and started again, and (with the flags) RabbitMQ is stopped and started and PostgreSQL
//! restarted. Each scenario is then audited like the in-process suite and printed as a row of
//! the table in docs/RELIABILITY.md.
//!
//!   cargo build --release -p command-service -p projection-service
//!   cargo run --release -p tests --bin fault-suite -- --kills 20 [--restart-broker] [--restart-database]
//!
//! The broker and database restarts take the machine's shared servers away from everything else
//! for a moment: run them with nothing else using the servers.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use clap::Parser;
use events::metadata::Role;
use serde_json::json;
use tests::faults::{audit, pause, start_load, Load, Outcome, Target};
use tokio::process::{Child, Command};
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// SIGKILLs of each service.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Where the command-service and projection-service binaries are.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Stop and start RabbitMQ (rabbitmqctl stop_app / start_app) under load.
    #[arg(long)]
    restart_broker: bool,
    /// Restart PostgreSQL (pg_ctlcluster ... restart) under load.
    #[arg(long)]
    restart_database: bool,
}

struct Service {
    name: &'static str,
    binary: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    ready_url: String,
    child: Option<Child>,
}

impl Service {
    async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.binary)
            .arg("serve")
            .envs(self.env.iter().cloned())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(response) = reqwest::get(&self.ready_url).await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{} did not become ready (log: {})", self.name, self.log.display())
    }

    /// SIGKILL: no orderly shutdown, the process and its sockets simply end.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.ok();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

async fn run_scenario<F, Fut>(
    name: String,
    prefix: &'static str,
    target: &Target,
    customers: &[Uuid],
    pool: &sqlx::PgPool,
    database_url: &str,
    fault: F,
) -> anyhow::Result<Outcome>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let (stop, load) = (Arc::new(AtomicBool::new(false)), Arc::new(Load::default()));
    let workers = start_load(target, customers.to_vec(), 4, prefix, stop.clone(), load.clone());
    pause(500, 501).await;
    fault().await?;
    let fault_ended = Instant::now();
    pause(500, 501).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    let outcome = audit(pool, database_url, &name, prefix, &load, fault_ended).await?;
    println!("{}", outcome.row());
    if load.abandoned.load(Ordering::Relaxed) > 0 {
        bail!("{name}: commands were given up on");
    }
    Ok(outcome)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin_dir = args.bin_dir.clone().unwrap_or_else(|| {
        let target = std::env::var("CARGO_TARGET_DIR")
            .unwrap_or_else(|_| format!("{}/.cache/cstrack/target", std::env::var("HOME").unwrap_or_default()));
        PathBuf::from(target).join("release")
    });
    let name = format!(
        "{}_faults_{}",
        tests::TEST_PREFIX,
        &Uuid::now_v7().simple().to_string()[20..]
    );
    let mut admin = tests::admin_connection().await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let database_url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let logs = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&logs)?;
    let (command_port, projection_port) = (free_port(), free_port());
    let env: Vec<(String, String)> = [
        ("CSTRACK_DATABASE_URL", database_url.clone()),
        ("CSTRACK_DATABASE_POOL", "6".into()),
        ("CSTRACK_AMQP_PREFIX", name.clone()),
        ("CSTRACK_PARTITIONS", "2".into()),
        ("CSTRACK_JWT_SECRET", tests::TEST_JWT_SECRET.into()),
        ("CSTRACK_COMMAND_ADDR", format!("127.0.0.1:{command_port}")),
        ("CSTRACK_PROJECTION_ADDR", format!("127.0.0.1:{projection_port}")),
        ("CSTRACK_RATE_LIMIT_PER_SECOND", "1000000".into()),
        ("CSTRACK_RATE_LIMIT_BURST", "1000000".into()),
        ("CSTRACK_ALERT_CHECK_SECONDS", "5".into()),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    let mut command = Service {
        name: "command-service",
        binary: bin_dir.join("command-service"),
        env: env.clone(),
        log: logs.join("command-service.log"),
        ready_url: format!("http://127.0.0.1:{command_port}/readyz"),
        child: None,
    };
    let mut projection = Service {
        name: "projection-service",
        binary: bin_dir.join("projection-service"),
        env,
        log: logs.join("projection-service.log"),
        ready_url: format!("http://127.0.0.1:{projection_port}/readyz"),
        child: None,
    };
    command.start().await?;
    projection.start().await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(60))
        .connect(&database_url)
        .await?;
    let target = Target {
        http: reqwest::Client::new(),
        command_url: format!("http://127.0.0.1:{command_port}"),
        token: tests::token(Role::Admin, "fault-suite", None),
    };
    let csm: serde_json::Value = target
        .http
        .post(format!("{}/api/v1/csms", target.command_url))
        .bearer_auth(&target.token)
        .json(&json!({"name": "Kay Kill", "email": "kay@example.com"}))
        .send()
        .await?
        .json()
        .await?;
    let mut customers = Vec::new();
    for n in 0..4 {
        let answer: serde_json::Value = target
            .http
            .post(format!("{}/api/v1/customers", target.command_url))
            .bearer_auth(&target.token)
            .json(&json!({"name": format!("Killed {n}"), "salesforce_id": "0015g00000AbCdEAAV", "tier": "SMB", "arr": "1000",
                "csm_id": csm["csm_id"], "contract_start": "2026-01-01", "renewal_date": "2027-12-31",
                "occurred_at": Utc::now() - chrono::Duration::days(30)}))
            .send()
            .await?
            .json()
            .await?;
        customers.push(tests::uuid(&answer["customer_id"]));
    }
    println!(
        "Real processes, {} kills each{}{}.\n{}",
        args.kills,
        if args.restart_broker {
            ", RabbitMQ restarted"
        } else {
            ""
        },
        if args.restart_database {
            ", PostgreSQL restarted"
        } else {
            ""
        },
        Outcome::HEADER
    );
    let mut outcomes = Vec::new();
    let kills = args.kills;
    for (service, label, prefix) in [
        (&mut command, "command service (relay)", "kill-command"),
        (&mut projection, "projection service", "kill-projection"),
    ] {
        let name = format!("{label} killed -9 {kills} times");
        let outcome = run_scenario(name, prefix, &target, &customers, &pool, &database_url, || async {
            for _ in 0..kills {
                pause(50, 300).await;
                service.kill().await;
                pause(50, 300).await;
                service.start().await?;
            }
            Ok(())
        })
        .await?;
        outcomes.push(outcome);
    }
    if args.restart_broker {
        outcomes.push(
            run_scenario(
                "RabbitMQ stopped and started".into(),
                "broker-restart",
                &target,
                &customers,
                &pool,
                &database_url,
                || async {
                    for step in ["stop_app", "start_app"] {
                        let status = Command::new("rabbitmqctl").args(["-q", step]).status().await?;
                        anyhow::ensure!(status.success(), "rabbitmqctl {step} failed");
                        pause(500, 1000).await;
                    }
                    Ok(())
                },
            )
            .await?,
        );
    }
    if args.restart_database {
        outcomes.push(
            run_scenario(
                "PostgreSQL restarted".into(),
                "database-restart",
                &target,
                &customers,
                &pool,
                &database_url,
                || async {
                    let version = std::fs::read_dir("/etc/postgresql")?
                        .flatten()
                        .map(|entry| entry.file_name().to_string_lossy().into_owned())
                        .max()
                        .context("no PostgreSQL cluster in /etc/postgresql")?;
                    let status = Command::new("pg_ctlcluster")
                        .args(["--skip-systemctl-redirect", &version, "main", "restart", "-m", "fast"])
                        .status()
                        .await?;
                    anyhow::ensure!(status.success(), "pg_ctlcluster restart failed");
                    Ok(())
                },
            )
            .await?,
        );
    }
    command.kill().await;
    projection.kill().await;
    pool.close().await;
    if let Ok(mut admin) = tests::admin_connection().await {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .ok();
    }
    let bad: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.duplicates > 0 || o.losses > 0 || !o.rebuild_equal || o.stored != o.acknowledged)
        .collect();
    if !bad.is_empty() {
        bail!("exactly-once broken: {bad:?} (logs in {})", logs.display());
    }
    std::fs::remove_dir_all(&logs).ok();
    Ok(())
}
