//! A whole cstrack system for one test: its own database, its own exchange and queue names, the
//! three services started in-process exactly as production starts them, on random ports, and a
//! client with one method per endpoint. Logs only when `TEST_LOG` is set.

pub mod bench;
pub mod faults;
pub mod load;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, Utc};
use command_service::relay::{Relay, RelayMetrics};
use events::metadata::Role;
use events::service::settings::{BrokerSettings, DatabaseSettings};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::types::ShortString;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub const ADMIN_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Signs the tokens of the test systems.
pub const TEST_JWT_SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
/// Prefix of every test database and broker name, so leftovers of an interrupted run can be
/// found and removed (`deploy/test.sh` does).
pub const TEST_PREFIX: &str = "cstrack_t";
const PARTITIONS: u16 = 2;
/// Connections each service of a test system may hold. A system then needs at most
/// 3 x TEST_POOL + 5 of the server's connections (the test's own pool, the relay's two); see
/// the README for what a shared server must leave free.
pub const TEST_POOL: u32 = 3;

/// A connection to the server's `postgres` database, waiting while the server has no free
/// connection slot (`too_many_connections`) instead of failing the test.
/// The networks test webhooks may call: this machine's 127.0.0.1 alone.
pub const WEBHOOK_ALLOW: &str = "127.0.0.1";
/// An address of this machine the test systems' webhooks may not call.
pub const INTERNAL_ADDRESS: &str = "127.0.0.2";

pub async fn admin_connection() -> Result<PgConnection, sqlx::Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match PgConnection::connect(ADMIN_DATABASE_URL).await {
            Err(sqlx::Error::Database(error))
                if error.code().as_deref() == Some("53300") && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            result => return result,
        }
    }
}

pub fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        events::service::telemetry::init("info,sqlx=warn,lapin=warn");
    }
}

/// The Slack signing secret the test systems verify Slack's requests with.
pub const SLACK_SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

pub struct TestSystem {
    pub name: String,
    pub database_url: String,
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub command_url: String,
    pub graphql_url: String,
    /// An admin's bearer token, used by the helpers below.
    pub admin: String,
    pub command_settings: command_service::Settings,
    stop: watch::Sender<bool>,
    services: Vec<JoinHandle<()>>,
    relay: Option<(watch::Sender<bool>, JoinHandle<()>)>,
    projection_settings: projection_service::Settings,
    projections: Vec<JoinHandle<()>>,
    /// The base URL of each projection-service replica started, oldest first.
    pub projection_urls: Vec<String>,
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("a socket address")
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    stop.wait_for(|stopped| *stopped).await.ok();
}

impl TestSystem {
    /// Starts everything: migrations, command service, relay, projection service and query API.
    pub async fn spawn() -> anyhow::Result<Self> {
        Self::spawn_with(TEST_POOL, 0.2).await
    }

    /// As [`TestSystem::spawn`], with `database_pool` connections per service (benchmarks use
    /// more) and the alert checker's interval in seconds.
    pub async fn spawn_with(database_pool: u32, alert_check_seconds: f64) -> anyhow::Result<Self> {
        Self::spawn_limited(database_pool, alert_check_seconds, Default::default()).await
    }

    /// As [`TestSystem::spawn_with`], with the HTTP limits of both APIs.
    pub async fn spawn_limited(
        database_pool: u32,
        alert_check_seconds: f64,
        limits: events::service::http::HttpLimits,
    ) -> anyhow::Result<Self> {
        init_test_logging();
        let name = format!("{TEST_PREFIX}_{}", &Uuid::now_v7().simple().to_string()[20..]);
        let mut admin = admin_connection().await.context("connecting to PostgreSQL")?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        admin.close().await.ok();
        let database_url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        let database = DatabaseSettings {
            database_url: database_url.clone(),
            database_pool,
            // A busy server (the demo beside the suite) may make a connection wait for a slot.
            database_acquire_seconds: 30,
        };
        let broker = BrokerSettings {
            amqp_url: AMQP_URL.into(),
            amqp_prefix: name.clone(),
            partitions: PARTITIONS,
        };

        let (stop, stop_rx) = watch::channel(false);
        let command_settings = command_service::Settings {
            database: database.clone(),
            broker: broker.clone(),
            auth: auth_settings(),
            listen: any_port(),
            append: command_service::AppendSettings::from_env(),
            relay: false,
            // Tests seal on purpose (`chain::seal`); the background sealer stays out of the way.
            digests: command_service::DigestSettings {
                digest_range: 10_000,
                digest_seconds: 3600.0,
            },
            http_limits: limits,
            salesforce: Default::default(),
            gainsight: Default::default(),
            microsoft: Default::default(),
            google: Default::default(),
            targetprocess: Default::default(),
            // Paused with the alert checker (benchmarks, statement counts); tests that pin the
            // clock call `reminders::tick` themselves.
            reminders: command_service::reminders::SchedulerSettings {
                enabled: alert_check_seconds < 3600.0,
                // The reminder benchmark sets the production default (1 s) through this.
                reminder_poll_seconds: std::env::var("CSTRACK_TEST_REMINDER_POLL_SECONDS")
                    .ok()
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(0.2),
                reminder_rules_seconds: 1.0,
            },
            slack_signing_secret: Some(command_service::connectors::vendor::Secret::new(SLACK_SIGNING_SECRET)),
            // The tests' receivers listen on this machine, which webhooks may not call unless
            // the operator allows it; only 127.0.0.1 is, so 127.0.0.2 stands for an internal
            // address.
            webhook_allow: WEBHOOK_ALLOW.parse().expect("a valid allow-list"),
        };
        let command = command_service::Application::build(&command_settings).await?;
        let command_url = format!("http://127.0.0.1:{}", command.port());
        let projection_settings = projection_service::Settings {
            database: database.clone(),
            broker,
            listen: any_port(),
            prefetch: 16,
            apply_batch: 16,
            apply_linger_ms: projection_service::DEFAULT_APPLY_LINGER_MS,
            reconcile_seconds: 1.0,
            alert_check_seconds,
            notifications: projection_service::notify::NotificationSettings {
                retry_seconds: 0.2,
                // A system whose alert checker is paused (benchmarks, statement counts) has its
                // notification sender paused too.
                poll_seconds: if alert_check_seconds >= 3600.0 { 3600.0 } else { 0.1 },
                webhook_allow: WEBHOOK_ALLOW.parse().expect("a valid allow-list"),
                ..Default::default()
            },
        };
        let query = query_api::Application::build(&query_api::Settings {
            database: database.clone(),
            auth: auth_settings(),
            listen: any_port(),
            graphiql: true,
            http_limits: limits,
            web: query_api::web::WebSettings {
                command_public_url: command_url.clone(),
                ..Default::default()
            },
        })
        .await?;
        let graphql_url = format!("http://127.0.0.1:{}/graphql", query.port());
        let services = vec![
            tokio::spawn(async move {
                command.run_until_stopped(stopped(stop_rx.clone())).await.ok();
            }),
            tokio::spawn({
                let stop_rx = stop.subscribe();
                async move {
                    query.run_until_stopped(stopped(stop_rx)).await.ok();
                }
            }),
        ];
        let pool = database.connect().await?;
        let mut system = TestSystem {
            name,
            database_url,
            pool,
            http: reqwest::Client::new(),
            command_url,
            graphql_url,
            admin: token(Role::Admin, "test-admin", None),
            command_settings,
            stop,
            services,
            relay: None,
            projection_settings,
            projections: Vec::new(),
            projection_urls: Vec::new(),
        };
        system.start_projection().await?;
        system.start_relay();
        Ok(system)
    }

    /// Starts one more projection-service replica (the broker gives each partition to one
    /// consumer at a time; the others stand by).
    pub async fn start_projection(&mut self) -> anyhow::Result<()> {
        let projection = projection_service::Application::build(&self.projection_settings).await?;
        self.projection_urls
            .push(format!("http://127.0.0.1:{}", projection.port()));
        let stop_rx = self.stop.subscribe();
        self.projections.push(tokio::spawn(async move {
            projection.run_until_stopped(stopped(stop_rx)).await.ok();
        }));
        Ok(())
    }

    /// The sum of a counter of the newest projection-service replica's `/metrics` over its
    /// labels (0 when it has no sample).
    pub async fn projection_counter(&self, name: &str) -> f64 {
        let url = self.projection_urls.last().expect("a projection service");
        let text = self
            .http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .expect("the projection service answers")
            .text()
            .await
            .expect("metrics as text");
        text.lines()
            .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Replaces the projection-service replicas with one configured by `configure` (for
    /// example to point notifications at a local SMTP sink).
    pub async fn reconfigure_projection(
        &mut self,
        configure: impl FnOnce(&mut projection_service::Settings),
    ) -> anyhow::Result<()> {
        self.kill_every_projection().await;
        configure(&mut self.projection_settings);
        self.start_projection().await
    }

    /// Kills the oldest projection-service replica where it stands, as a crash would. A dead
    /// process's sockets close with it; an aborted task's broker connection lingers until the
    /// client library notices, so when no replica is left its connections are closed from the
    /// broker's side, as the operating system would have.
    pub async fn kill_projection(&mut self) {
        if !self.projections.is_empty() {
            let replica = self.projections.remove(0);
            replica.abort();
            replica.await.ok();
        }
        if self.projections.is_empty() {
            close_broker_connections(&format!("{}-projection", self.name)).ok();
            close_broker_connections(&format!("{}-notifications", self.name)).ok();
        }
    }

    /// Kills every projection-service replica, as a crash of all of them would.
    pub async fn kill_every_projection(&mut self) {
        while !self.projections.is_empty() {
            self.kill_projection().await;
        }
    }

    /// The broker names of this system.
    pub fn topology(&self) -> events::topology::Topology {
        events::topology::Topology::new(self.name.clone(), PARTITIONS)
    }

    /// Projection-service replicas running.
    pub fn projection_replicas(&self) -> usize {
        self.projections.len()
    }

    /// Starts the relay (the command service's own, run here so a test can kill it).
    pub fn start_relay(&mut self) {
        let relay = Relay::new(
            self.command_settings.relay_settings(),
            RelayMetrics::register(&prometheus::Registry::new()).expect("fresh registry"),
        );
        let (stop, stopped) = watch::channel(false);
        self.relay = Some((stop, tokio::spawn(relay.run(stopped))));
    }

    /// Kills the relay where it stands, as a crash would: no orderly shutdown.
    pub async fn kill_relay(&mut self) {
        if let Some((_stop, task)) = self.relay.take() {
            task.abort();
            task.await.ok();
        }
    }

    /// Stops every service and removes the database and the broker objects of this test.
    pub async fn stop(mut self) {
        self.kill_relay().await;
        self.stop.send_replace(true);
        for service in self.services.drain(..).chain(self.projections.drain(..)) {
            service.await.ok();
        }
        self.pool.close().await;
        if let Ok(connection) = events::service::amqp::connect(AMQP_URL, "test-cleanup").await {
            if let Ok(channel) = connection.create_channel().await {
                let topology = events::topology::Topology::new(self.name.clone(), PARTITIONS);
                let mut queues = vec![
                    topology.dead_letter_queue(),
                    topology.alerts_queue(),
                    topology.webhook_events_queue(),
                ];
                queues.extend((0..PARTITIONS).map(|partition| topology.projection_queue(partition)));
                for queue in queues {
                    channel
                        .queue_delete(ShortString::from(queue), QueueDeleteOptions::default())
                        .await
                        .ok();
                }
                for exchange in [
                    topology.events_exchange(),
                    topology.dead_letter_exchange(),
                    topology.alerts_exchange(),
                ] {
                    channel
                        .exchange_delete(ShortString::from(exchange), ExchangeDeleteOptions::default())
                        .await
                        .ok();
                }
            }
            connection.close(0, ShortString::from("done")).await.ok();
        }
        if let Ok(mut admin) = admin_connection().await {
            sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .execute(&mut admin)
                .await
                .ok();
        }
    }

    // ---- REST ------------------------------------------------------------------------------

    /// Sends a command as an admin.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        self.send_as(&self.admin, method, path, body).await
    }

    /// Sends a command with the given bearer token.
    pub async fn send_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.command_url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the command service answers");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// Posts and insists on `expected`, returning the body.
    pub async fn post_ok(&self, path: &str, body: &Value) -> Value {
        let (status, answer) = self.post(path, body).await;
        assert!(status.is_success(), "POST {path} answered {status}: {answer}");
        answer
    }

    /// Logs `activities` on `customer` through the batch endpoint, insisting on success.
    pub async fn log_activities(&self, customer: impl std::fmt::Display, activities: Vec<Value>) -> Value {
        self.post_ok(
            &format!("/api/v1/customers/{customer}/activities/batch"),
            &json!({ "activities": activities }),
        )
        .await
    }

    /// A connection holding `statement` prepared as `name` (parameters of `types`), planned as
    /// PostgreSQL plans a prepared statement after a few runs: once, for any parameters.
    pub async fn generically_planned(
        &self,
        name: &str,
        types: &str,
        statement: &str,
    ) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
        let mut connection = self.pool.acquire().await.expect("a pooled connection");
        sqlx::query("SET plan_cache_mode = force_generic_plan")
            .execute(&mut *connection)
            .await
            .expect("plan_cache_mode set");
        sqlx::query(&format!("PREPARE {name} ({types}) AS {statement}"))
            .execute(&mut *connection)
            .await
            .expect("the statement prepared");
        connection
    }

    /// Uploads a file to import (`POST /api/v1/imports`, multipart) as `as_token`, with an
    /// optional mapping; answers the status and the preview.
    pub async fn upload_import(
        &self,
        as_token: &str,
        kind: &str,
        file_name: &str,
        bytes: Vec<u8>,
        mapping: Option<&str>,
    ) -> (u16, Value) {
        let mut form = reqwest::multipart::Form::new().text("kind", kind.to_owned()).part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()),
        );
        if let Some(mapping) = mapping {
            form = form.text("mapping", mapping.to_owned());
        }
        let response = self
            .http
            .post(format!("{}/api/v1/imports", self.command_url))
            .bearer_auth(as_token)
            .multipart(form)
            .send()
            .await
            .expect("the command API answers");
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    pub async fn register_csm(&self, name: &str) -> Uuid {
        let slug = name.to_lowercase().replace(' ', ".");
        let answer = self
            .post_ok(
                "/api/v1/csms",
                &json!({"name": name, "email": format!("{slug}@example.com")}),
            )
            .await;
        uuid(&answer["csm_id"])
    }

    /// Onboards a customer; `extra` overrides the defaults.
    pub async fn onboard(&self, name: &str, tier: &str, arr: &str, csm_id: Uuid, onboarded_at: DateTime<Utc>) -> Uuid {
        let answer = self
            .post_ok(
                "/api/v1/customers",
                &json!({
                    "name": name,
                    "salesforce_id": "0015g00000AbCdEAAV",
                    "tier": tier,
                    "arr": arr,
                    "csm_id": csm_id,
                    "contract_start": onboarded_at.date_naive(),
                    "renewal_date": "2027-12-31",
                    "occurred_at": onboarded_at,
                }),
            )
            .await;
        uuid(&answer["customer_id"])
    }

    pub async fn add_stakeholder(&self, customer: Uuid, name: &str, level: &str) -> Uuid {
        let answer = self
            .post_ok(
                &format!("/api/v1/customers/{customer}/stakeholders"),
                &json!({"name": name, "role": "Director", "level": level}),
            )
            .await;
        uuid(&answer["stakeholder_id"])
    }

    /// Logs an activity of `kind` on `day` at noon UTC (or now, earlier today) with the given
    /// participants.
    pub async fn log_activity(&self, customer: Uuid, kind: &str, day: NaiveDate, participants: &[Uuid]) -> Value {
        self.post_ok(
            &format!("/api/v1/customers/{customer}/activities"),
            &json!({
                "kind": kind,
                "direction": "outbound",
                "occurred_at": at_or_now(day, 12),
                "duration_minutes": if kind == "meeting" || kind == "qbr" { json!(60) } else { Value::Null },
                "participants": participants,
                "subject": format!("{kind} on {day}"),
            }),
        )
        .await
    }

    pub async fn record_health(&self, customer: Uuid, score: f64, day: NaiveDate) -> Value {
        self.post_ok(
            &format!("/api/v1/customers/{customer}/health-scores"),
            &json!({"score": score, "source": "gainsight", "measured_at": at_or_now(day, 8)}),
        )
        .await
    }

    // ---- GraphQL ---------------------------------------------------------------------------

    /// Runs a query and returns `data`, failing the test on GraphQL errors.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let answer = self.graphql_raw(query, variables).await;
        assert!(answer.get("errors").is_none(), "GraphQL errors: {answer}");
        answer["data"].clone()
    }

    pub async fn graphql_raw(&self, query: &str, variables: Value) -> Value {
        self.graphql_as(&self.admin, query, variables).await
    }

    /// Runs a query with the given bearer token and returns the whole answer.
    pub async fn graphql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        self.http
            .post(&self.graphql_url)
            .bearer_auth(token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .expect("the query API answers")
            .json()
            .await
            .expect("GraphQL answers JSON")
    }

    /// Every event appended so far has been applied by every projector (each projector keeps a
    /// checkpoint per stream, so together they hold the store's count once per projector).
    pub async fn projected(&self) -> anyhow::Result<bool> {
        Ok(faults::projected(&self.pool).await)
    }

    /// Appends an event to a customer's stream as a row, past the command path (as an import, an
    /// older version or a damaged store would have written it); returns its sequence.
    pub async fn append_stored(&self, customer: Uuid, event_type: &str, version: &str, payload: Value) -> i64 {
        let sequence: i64 = sqlx::query_scalar("SELECT max(sequence) + 1 FROM events WHERE aggregate_id = $1")
            .bind(customer.to_string())
            .fetch_one(&self.pool)
            .await
            .expect("the customer's stream");
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('Customer', $1, $2, $3, $4, $5,
                     '{\"actor_id\": \"import\", \"actor_role\": \"admin\", \"source\": \"import\"}')",
        )
        .bind(customer.to_string())
        .bind(sequence)
        .bind(event_type)
        .bind(version)
        .bind(payload)
        .execute(&self.pool)
        .await
        .expect("appending a stored event");
        sequence
    }

    /// Rows of a customer in the coverage read model's contacts.
    pub async fn contacts(&self, customer: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM coverage_contacts WHERE customer_id = $1")
            .bind(customer)
            .fetch_one(&self.pool)
            .await
            .expect("counting contacts")
    }

    /// Waits until the relay has published (and the broker confirmed) every stored event.
    pub async fn relayed_everything(&self) {
        eventually(Duration::from_secs(30), || async {
            let (head, relayed): (Option<i64>, i64) = sqlx::query_as(
                "SELECT (SELECT max(global_position) FROM events),
                        (SELECT global_position FROM relay_cursor WHERE relay = 'main')",
            )
            .fetch_one(&self.pool)
            .await
            .unwrap();
            head.unwrap_or(0) == relayed
        })
        .await
        .expect("the relay publishes every event");
    }

    /// Waits until the read models have caught up with the store.
    pub async fn caught_up(&self) {
        eventually(Duration::from_secs(20), || async {
            self.projected().await.unwrap_or(false)
        })
        .await
        .expect("the read models catch up with the store");
    }
}

/// `hour` o'clock UTC on `day`, or now when that is still to come: the command service refuses
/// facts from the future, and a test run early in the UTC day would otherwise trip over it.
pub fn at_or_now(day: NaiveDate, hour: u32) -> DateTime<Utc> {
    let start = day.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let at = start + chrono::Duration::hours(i64::from(hour));
    at.min(Utc::now() - chrono::Duration::seconds(1)).max(start)
}

pub fn auth_settings() -> command_service::auth::AuthSettings {
    command_service::auth::AuthSettings {
        jwt_secret: Some(TEST_JWT_SECRET.parse().expect("any text is a secret")),
        jwt_public_key_file: None,
        jwt_issuer: "cstrack".into(),
        jwt_audience: "cstrack-api".into(),
    }
}

/// A bearer token for `user` in `role` (and partner organisation), valid for an hour.
pub fn token(role: Role, user: &str, partner_id: Option<Uuid>) -> String {
    command_service::auth::mint(&auth_settings(), user, role, partner_id, chrono::Duration::hours(1))
        .expect("minting a token")
}

pub fn uuid(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|text| Uuid::parse_str(text).ok())
        .unwrap_or_else(|| panic!("not a UUID: {value}"))
}

/// Polls `condition` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut condition: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("condition still false after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Closes the broker connections named `name` from the broker's side, as a network failure or
/// broker restart would.
pub fn close_broker_connections(name: &str) -> anyhow::Result<usize> {
    // The tab-separated listing gives pids in the form `close_connection` accepts.
    let output = std::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
        .context("running rabbitmqctl")?;
    let listing = String::from_utf8_lossy(&output.stdout);
    let marker = format!("\"connection_name\",\"{name}\"");
    let mut closed = 0;
    for line in listing.lines().filter(|line| line.contains(&marker)) {
        let pid = line.split('\t').next().unwrap_or_default();
        let status = std::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid, "test: simulated connection loss"])
            .output()?
            .status;
        if status.success() {
            closed += 1;
        }
    }
    Ok(closed)
}

pub const ACCOUNT_COVERAGE: &str = "query($id: UUID!, $asOf: Date) {
  accountCoverage(customerId: $id, asOf: $asOf) {
    customerId name tier arr lastContactDate daysSinceContact touches30d meetings90d stakeholdersEngaged
    standards { maxDaysBetweenContact expectedTouchesPerMonth minMeetingsPerQuarter stakeholderBreadth }
    score deductions { contact touches meetings stakeholders } gapAreas status priority atRisk healthScore healthColour
  }
}";

/// A read-model row as text, for comparing tables row for row: a checkpoint without the id of the
/// transaction that last wrote it, which differs between equal read models.
pub fn row_text(table: &str) -> &'static str {
    if table == "projector_checkpoints" {
        "(t.projector, t.stream_type, t.stream_id, t.last_sequence)::text"
    } else {
        "t::text"
    }
}

/// Every row of every read-model table (memos aside) and the checkpoints, as text, ordered: two
/// read models are equal when their dumps are.
pub async fn read_models(pool: &PgPool, schema: &str) -> Vec<(String, Vec<String>)> {
    let mut tables: Vec<&str> = projection_service::projectors()
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .filter(|t| !t.ends_with("_memo"))
        .collect();
    tables.push("projector_checkpoints");
    let mut dump = Vec::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT {} FROM {schema}.{table} t ORDER BY 1",
            row_text(table)
        ))
        .fetch_all(pool)
        .await
        .expect("a read-model table");
        dump.push((table.to_owned(), rows));
    }
    dump
}

/// Reads a workbook with Python's openpyxl, a reader independent of ours: sheet name -> rows of
/// cell values (dates as ISO text), plus each sheet's frozen pane and autofilter range.
pub fn openpyxl(bytes: &[u8]) -> Value {
    let dir = std::env::temp_dir().join(format!("cstrack-openpyxl-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("book.xlsx");
    std::fs::write(&path, bytes).unwrap();
    let script = r#"
import json, sys, datetime, openpyxl
book = openpyxl.load_workbook(sys.argv[1])
out = {}
for sheet in book.worksheets:
    rows = [[c.isoformat() if isinstance(c, (datetime.date, datetime.datetime)) else c for c in row]
            for row in sheet.iter_rows(values_only=True)]
    formats = [[cell.number_format for cell in row] for row in sheet.iter_rows(min_row=2, max_row=2)]
    out[sheet.title] = {"rows": rows, "freeze": sheet.freeze_panes, "filter": sheet.auto_filter.ref,
                        "bold_header": all(c.font.b for c in sheet[1] if c.value is not None),
                        "formats": formats[0] if formats else []}
print(json.dumps(out))
"#;
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs (deploy/test.sh installs openpyxl)");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "openpyxl could not read the workbook: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Converts an Office document to PDF with LibreOffice (`soffice --headless`, in a profile of
/// its own so conversions can run side by side) and answers the PDF's bytes.
pub fn libreoffice_pdf(bytes: &[u8], extension: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("cstrack-soffice-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join(format!("deck.{extension}"));
    std::fs::write(&input, bytes).unwrap();
    let output = std::process::Command::new("soffice")
        .arg(format!("-env:UserInstallation=file://{}/profile", dir.display()))
        .args(["--headless", "--norestore", "--convert-to", "pdf", "--outdir"])
        .arg(&dir)
        .arg(&input)
        .output()
        .expect("LibreOffice runs (deploy/test.sh installs libreoffice-impress)");
    let pdf = std::fs::read(dir.join("deck.pdf")).unwrap_or_else(|_| {
        panic!(
            "LibreOffice did not convert the document: {} {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let _ = std::fs::remove_dir_all(&dir);
    pdf
}

/// Pages of a PDF (its `/Type /Page` objects).
/// One page of a PDF as poppler reads it: its size and every word with its box (points, from the
/// top left).
#[derive(Debug, Clone)]
pub struct PdfPage {
    pub width: f64,
    pub height: f64,
    pub words: Vec<PdfWord>,
}

#[derive(Debug, Clone)]
pub struct PdfWord {
    pub text: String,
    pub x_min: f64,
    pub y_min: f64,
    pub x_max: f64,
    pub y_max: f64,
}

impl PdfPage {
    /// The page's words in reading order, joined by spaces.
    pub fn text(&self) -> String {
        self.words
            .iter()
            .map(|word| word.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The pages of `pdf` with where each word lands (`pdftotext -bbox`, poppler-utils, which
/// deploy/test.sh installs).
pub fn pdf_words(pdf: &[u8]) -> Vec<PdfPage> {
    let dir = std::env::temp_dir().join(format!("cstrack-pdf-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("deck.pdf");
    std::fs::write(&input, pdf).unwrap();
    let output = std::process::Command::new("pdftotext")
        .arg("-bbox")
        .arg(&input)
        .arg("-")
        .output()
        .expect("pdftotext runs (deploy/test.sh installs poppler-utils)");
    let _ = std::fs::remove_dir_all(&dir);
    let html = String::from_utf8_lossy(&output.stdout);
    let number = |tag: &str, name: &str| -> f64 {
        let key = format!("{name}=\"");
        tag.find(&key)
            .and_then(|at| tag[at + key.len()..].split('"').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let mut pages = Vec::new();
    for chunk in html.split("<page ").skip(1) {
        let head = &chunk[..chunk.find('>').unwrap_or(0)];
        let mut page = PdfPage {
            width: number(head, "width"),
            height: number(head, "height"),
            words: Vec::new(),
        };
        for word in chunk.split("<word ").skip(1) {
            let Some(close) = word.find('>') else { continue };
            let tag = &word[..close];
            let text = word[close + 1..].split("</word>").next().unwrap_or_default();
            page.words.push(PdfWord {
                text: text
                    .replace("&amp;", "&")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\""),
                x_min: number(tag, "xMin"),
                y_min: number(tag, "yMin"),
                x_max: number(tag, "xMax"),
                y_max: number(tag, "yMax"),
            });
        }
        pages.push(page);
    }
    pages
}

pub fn pdf_pages(pdf: &[u8]) -> usize {
    let text = String::from_utf8_lossy(pdf);
    text.match_indices("/Type")
        .filter(|(at, _)| {
            let rest = text[at + 5..].trim_start();
            rest.starts_with("/Page") && !rest.starts_with("/Pages")
        })
        .count()
}
