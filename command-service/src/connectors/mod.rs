//! Connectors (docs/CONNECTORS.md): supervised loops that pull a vendor's records from a stored
//! cursor, map each to the commands the REST API and imports take (same aggregates, same
//! validation), and append each record's events in a transaction of its own under an
//! idempotency key made from the vendor's id and modification stamp. A sync run read twice
//! appends once; a bad record is skipped with its reason and never stops the rest.
//!
//! A connector runs inside the command service when it is configured and not at all otherwise.
//! Replicas share the work through a PostgreSQL advisory lock per connector: one syncs, the
//! others skip that round.

pub mod gainsight;
pub mod google;
pub mod mailbox;
pub mod microsoft;
pub mod salesforce;
pub mod targetprocess;
pub mod vault;
pub mod vendor;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use events::metadata::{Actor, CommandMetadata, Source};
use events::service::auth::Principal;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::http::Handlers;
use crate::import::plan::{self, Kind, Mapping, World};
use crate::import::sheet::{Cell, Row, Sheet};
use crate::store::ExecuteError;

/// Most skipped records a run keeps the reasons of.
const MAX_SKIPS_KEPT: usize = 500;

/// Why a record was not applied.
#[derive(Debug, Clone, Serialize)]
pub struct Skip {
    pub object: String,
    pub record_id: String,
    pub code: String,
    pub field: Option<String>,
    pub message: String,
}

/// What one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its events were appended.
    Applied {
        events: usize,
    },
    /// The store already says what it says (or this version of it was applied before).
    Unchanged,
    Skipped,
}

/// The counts of a run, kept in `connector_runs`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RunCounts {
    pub records_read: usize,
    pub applied: usize,
    pub unchanged: usize,
    pub skipped: usize,
    pub events: usize,
    /// Records written back to the vendor.
    pub pushed: usize,
    /// Records read that concern no customer (mail with no customer's address in it).
    pub ignored: usize,
    pub skips: Vec<Skip>,
}

impl RunCounts {
    fn count(&mut self, outcome: Outcome, metrics: &ConnectorMetrics, connector: &str) {
        let label = match outcome {
            Outcome::Applied { events } => {
                self.applied += 1;
                self.events += events;
                "applied"
            }
            Outcome::Unchanged => {
                self.unchanged += 1;
                "unchanged"
            }
            Outcome::Skipped => {
                self.skipped += 1;
                "skipped"
            }
        };
        metrics.records.with_label_values(&[connector, label]).inc();
    }

    fn skip(&mut self, skip: Skip) {
        tracing::warn!(object = %skip.object, record = %skip.record_id, code = %skip.code, field = ?skip.field, message = %skip.message, "connector skipped a record");
        if self.skips.len() < MAX_SKIPS_KEPT {
            self.skips.push(skip);
        }
    }
}

/// Prometheus metrics of every connector, labelled by connector.
#[derive(Clone)]
pub struct ConnectorMetrics {
    records: IntCounterVec,
    runs: IntCounterVec,
    last_success: IntGaugeVec,
}

impl ConnectorMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let records = IntCounterVec::new(
            Opts::new("cstrack_connector_records_total", "Vendor records read, by outcome"),
            &["connector", "outcome"],
        )?;
        let runs = IntCounterVec::new(
            Opts::new("cstrack_connector_runs_total", "Sync runs, by how they ended"),
            &["connector", "status"],
        )?;
        let last_success = IntGaugeVec::new(
            Opts::new(
                "cstrack_connector_last_success_timestamp_seconds",
                "When the connector last finished a sync",
            ),
            &["connector"],
        )?;
        registry.register(Box::new(records.clone()))?;
        registry.register(Box::new(runs.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        Ok(ConnectorMetrics {
            records,
            runs,
            last_success,
        })
    }

    /// Metrics kept nowhere (a one-off sync from the command line).
    pub fn unregistered() -> Self {
        Self::register(&Registry::new()).expect("fresh registry")
    }
}

/// One sync run of one connector: its id (the correlation id of everything it appends), the
/// principal and metadata it appends under, and its counts.
pub struct Run<'a> {
    pub run_id: Uuid,
    pub connector: &'static str,
    source: Source,
    handlers: &'a Handlers,
    principal: Principal,
    metrics: ConnectorMetrics,
    pub counts: RunCounts,
    /// The activity ids the last `apply` logged activities under.
    pub issued: Vec<Uuid>,
}

/// A vendor record as a row for the import plan: target key -> cell.
pub type Record = Vec<(String, Cell)>;

impl<'a> Run<'a> {
    pub fn pool(&self) -> &PgPool {
        &self.handlers.pool
    }

    /// Counts a vendor record mirrored into a table of its own (no events): applied when it
    /// changed, unchanged otherwise.
    pub fn mirrored(&mut self, changed: bool) {
        self.counts.records_read += 1;
        let outcome = if changed {
            Outcome::Applied { events: 0 }
        } else {
            Outcome::Unchanged
        };
        self.counts.count(outcome, &self.metrics, self.connector);
    }

    /// Counts a record read that concerns no customer.
    pub fn ignore(&mut self) {
        self.counts.records_read += 1;
        self.counts.ignored += 1;
        self.metrics
            .records
            .with_label_values(&[self.connector, "ignored"])
            .inc();
    }

    /// Counts a record written back to the vendor.
    pub fn pushed(&mut self) {
        self.counts.pushed += 1;
        self.metrics
            .records
            .with_label_values(&[self.connector, "pushed"])
            .inc();
    }

    /// A record the vendor refused to take back: skipped with its reason, not read.
    pub fn push_refused(&mut self, object: &str, record_id: &str, message: String) {
        self.counts.skip(Skip {
            object: object.to_owned(),
            record_id: record_id.to_owned(),
            code: "write_back_refused".into(),
            field: None,
            message,
        });
        self.counts.skipped += 1;
    }

    /// A record that could not even be read as one (no id, no stamp): counted and skipped.
    pub fn skip(&mut self, object: &str, record_id: &str, code: &str, field: Option<&str>, message: String) {
        self.counts.records_read += 1;
        self.counts.skip(Skip {
            object: object.to_owned(),
            record_id: record_id.to_owned(),
            code: code.to_owned(),
            field: field.map(str::to_owned),
            message,
        });
        self.counts.count(Outcome::Skipped, &self.metrics, self.connector);
    }

    /// Maps one record through the import plan of `kind` (the same validation and the same
    /// create / update / unchanged decision as an import row) and appends its events in a
    /// transaction of their own under `idempotency_key`. Only a store failure is an error: a
    /// refused record is counted as skipped with the plan's reasons.
    pub async fn apply(
        &mut self,
        kind: Kind,
        world: &World,
        object: &str,
        record_id: &str,
        idempotency_key: &str,
        record: Record,
    ) -> Result<Outcome, ExecuteError> {
        self.counts.records_read += 1;
        self.issued.clear();
        let mapping: Mapping = record.iter().map(|(key, _)| (key.clone(), key.clone())).collect();
        let sheet = Sheet {
            headers: record.iter().map(|(key, _)| key.clone()).collect(),
            rows: vec![Row {
                sheet: None,
                number: 2,
                cells: record.into_iter().map(|(_, cell)| cell).collect(),
            }],
            ignored_sheets: Vec::new(),
        };
        let mut metadata = CommandMetadata {
            actor: Actor {
                id: self.principal.user_id.clone(),
                role: "system".into(),
            },
            correlation_id: self.run_id,
            causation_id: self.run_id,
            source: self.source,
            idempotency_key: Some(idempotency_key.to_owned()),
        }
        .to_map();
        metadata.insert("sync_run_id".into(), self.run_id.to_string());
        metadata.insert("vendor_record".into(), format!("{object}/{record_id}"));
        let mut attempt = 1;
        let outcome = loop {
            let (mut batch, fresh) = crate::import::plan_batch(self.handlers);
            let plan = plan::decide(
                kind,
                &sheet,
                &mapping,
                world,
                &mut batch,
                &self.principal,
                &metadata,
                Utc::now(),
                &fresh,
            )
            .await?;
            let row = &plan.outcomes[0];
            if row.action == "error" {
                for error in &row.errors {
                    self.counts.skip(Skip {
                        object: object.to_owned(),
                        record_id: record_id.to_owned(),
                        code: error.code.clone(),
                        field: error.column.clone(),
                        message: error.message.clone(),
                    });
                }
                break Outcome::Skipped;
            }
            if batch.is_empty() {
                break Outcome::Unchanged;
            }
            let events = batch.len();
            self.issued = fresh
                .fresh
                .lock()
                .map(|issued| issued.iter().copied().collect())
                .unwrap_or_default();
            let mut tx = self
                .pool()
                .begin()
                .await
                .map_err(|error| ExecuteError::from_database(&error))?;
            let appends = batch.appends();
            match batch.append(&mut tx).await {
                Ok(_) => {
                    tx.commit().await.map_err(|error| ExecuteError::from_database(&error))?;
                    appends.committed();
                    break Outcome::Applied { events };
                }
                // This version of the record was applied by an earlier run.
                Err(ExecuteError::AlreadyAppended) => break Outcome::Unchanged,
                Err(ExecuteError::Conflict) if attempt < 3 => attempt += 1,
                Err(error) => return Err(error),
            }
        };
        self.counts.count(outcome, &self.metrics, self.connector);
        Ok(outcome)
    }
}

impl Run<'_> {
    /// Runs one customer command for a vendor record (one the import plan does not cover, such
    /// as an NPS response) under `idempotency_key`. A refusal is counted as skipped with its
    /// reason; only a store failure is an error.
    pub async fn command(
        &mut self,
        customer_id: Uuid,
        command: crate::domain::customer::CustomerCommand,
        object: &str,
        record_id: &str,
        idempotency_key: &str,
    ) -> Result<Outcome, ExecuteError> {
        self.counts.records_read += 1;
        let metadata = CommandMetadata {
            actor: Actor {
                id: self.principal.user_id.clone(),
                role: "system".into(),
            },
            correlation_id: self.run_id,
            causation_id: self.run_id,
            source: self.source,
            idempotency_key: Some(idempotency_key.to_owned()),
        };
        let mut stored = metadata.to_map();
        stored.insert("sync_run_id".into(), self.run_id.to_string());
        stored.insert("vendor_record".into(), format!("{object}/{record_id}"));
        let outcome = match self
            .handlers
            .customers
            .execute_with_metadata(&customer_id.to_string(), command, stored, Some(&self.principal))
            .await
        {
            Ok(appended) if appended.event_ids.is_empty() => Outcome::Unchanged,
            Ok(appended) => Outcome::Applied {
                events: appended.event_ids.len(),
            },
            Err(ExecuteError::AlreadyAppended) => Outcome::Unchanged,
            Err(ExecuteError::Rejected(rejection)) => {
                let (code, field, message) = match rejection {
                    crate::domain::CommandError::Invalid { code, field, message } => {
                        (code.to_owned(), Some(field), message)
                    }
                    crate::domain::CommandError::Conflict { code, message } => (code.to_owned(), None, message),
                    crate::domain::CommandError::NotFound { entity } => {
                        ("not_found".into(), None, format!("{entity} not found"))
                    }
                    crate::domain::CommandError::Forbidden { message } => ("forbidden".into(), None, message),
                    crate::domain::CommandError::Unavailable(reason) => return Err(ExecuteError::Unavailable(reason)),
                };
                self.counts.skip(Skip {
                    object: object.to_owned(),
                    record_id: record_id.to_owned(),
                    code,
                    field,
                    message,
                });
                Outcome::Skipped
            }
            Err(error) => return Err(error),
        };
        self.counts.count(outcome, &self.metrics, self.connector);
        Ok(outcome)
    }
}

/// The value a connector last applied for a record's fact, if any.
pub async fn last_value(
    pool: &PgPool,
    connector: &str,
    record_id: &str,
    fact: &str,
) -> Result<Option<Value>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM connector_values WHERE connector = $1 AND record_id = $2 AND fact = $3")
        .bind(connector)
        .bind(record_id)
        .bind(fact)
        .fetch_optional(pool)
        .await
}

pub async fn save_value(
    pool: &PgPool,
    connector: &str,
    record_id: &str,
    fact: &str,
    value: &Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO connector_values (connector, record_id, fact, value) VALUES ($1, $2, $3, $4)
         ON CONFLICT (connector, record_id, fact) DO UPDATE SET value = EXCLUDED.value, applied_at = now()",
    )
    .bind(connector)
    .bind(record_id)
    .bind(fact)
    .bind(value)
    .execute(pool)
    .await?;
    Ok(())
}

/// A connector's stored cursors: stream -> cursor.
pub async fn cursors(pool: &PgPool, connector: &str) -> Result<HashMap<String, String>, sqlx::Error> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT stream, cursor FROM connector_cursors WHERE connector = $1")
            .bind(connector)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Moves a stream's cursor on, once everything before it was applied or skipped.
pub async fn save_cursor(pool: &PgPool, connector: &str, stream: &str, cursor: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO connector_cursors (connector, stream, cursor) VALUES ($1, $2, $3)
         ON CONFLICT (connector, stream) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()",
    )
    .bind(connector)
    .bind(stream)
    .bind(cursor)
    .execute(pool)
    .await?;
    Ok(())
}

/// What a connector does in one run, given the run to record into.
pub trait Connector: Send + Sync {
    fn name(&self) -> &'static str;
    fn source(&self) -> Source;
    /// Minimum time between two runs.
    fn interval(&self) -> Duration;
    /// Reads and applies everything changed since the stored cursors. An error ends the run as
    /// failed; the cursors saved so far stay, so the next run resumes there.
    fn sync<'r>(&'r self, run: &'r mut Run<'_>) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'r;
    /// Seconds waited on the vendor's `Retry-After` so far.
    fn waited_ms(&self) -> u64 {
        0
    }
}

/// The record of a finished run, as `run_once` answers it.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: Uuid,
    pub connector: &'static str,
    pub status: &'static str,
    pub counts: RunCounts,
    pub error: Option<String>,
}

/// Runs one sync now, unless another replica holds the connector's lock (then `None`).
pub async fn run_once<C: Connector>(
    connector: &C,
    handlers: &Handlers,
    metrics: &ConnectorMetrics,
) -> Result<Option<RunReport>, sqlx::Error> {
    let name = connector.name();
    let mut lock = handlers.pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('cstrack-connector:' || $1))")
        .bind(name)
        .fetch_one(&mut *lock)
        .await?;
    if !locked {
        tracing::info!(connector = name, "another replica is syncing; skipping this round");
        return Ok(None);
    }
    let run_id = Uuid::now_v7();
    sqlx::query("INSERT INTO connector_runs (run_id, connector, status) VALUES ($1, $2, 'running')")
        .bind(run_id)
        .bind(name)
        .execute(&handlers.pool)
        .await?;
    let mut run = Run {
        run_id,
        connector: name,
        source: connector.source(),
        handlers,
        principal: Principal {
            user_id: format!("connector:{name}"),
            role: events::metadata::Role::Admin,
            partner_id: None,
        },
        metrics: metrics.clone(),
        counts: RunCounts::default(),
        issued: Vec::new(),
    };
    let span = tracing::info_span!("connector_run", connector = name, %run_id);
    let result = tracing::Instrument::instrument(connector.sync(&mut run), span).await;
    let (status, error) = match &result {
        Ok(()) => ("succeeded", None),
        Err(error) => ("failed", Some(format!("{error:#}"))),
    };
    let counts = run.counts;
    sqlx::query(
        "UPDATE connector_runs SET finished_at = now(), status = $2, records_read = $3, applied = $4, unchanged = $5,
                skipped = $6, events = $7, waited_ms = $8, skips = $9, error = $10, pushed = $11, ignored = $12
          WHERE run_id = $1",
    )
    .bind(run_id)
    .bind(status)
    .bind(counts.records_read as i32)
    .bind(counts.applied as i32)
    .bind(counts.unchanged as i32)
    .bind(counts.skipped as i32)
    .bind(counts.events as i32)
    .bind(connector.waited_ms() as i64)
    .bind(json!(counts.skips))
    .bind(&error)
    .bind(counts.pushed as i32)
    .bind(counts.ignored as i32)
    .execute(&handlers.pool)
    .await?;
    sqlx::query("SELECT pg_advisory_unlock(hashtext('cstrack-connector:' || $1))")
        .bind(name)
        .execute(&mut *lock)
        .await?;
    metrics.runs.with_label_values(&[name, status]).inc();
    if error.is_none() {
        metrics
            .last_success
            .with_label_values(&[name])
            .set(Utc::now().timestamp());
    }
    match &error {
        None => tracing::info!(connector = name, %run_id, read = counts.records_read, applied = counts.applied,
            unchanged = counts.unchanged, skipped = counts.skipped, events = counts.events, "sync run finished"),
        Some(error) => tracing::warn!(connector = name, %run_id, %error, "sync run failed"),
    }
    Ok(Some(RunReport {
        run_id,
        connector: name,
        status,
        counts,
        error,
    }))
}

/// Syncs every `interval` until `stopped` turns true, and at once when `wake` is notified (a
/// "sync now"). A run that fails is logged and recorded; the next one starts at the next tick.
pub async fn run_supervised<C: Connector>(
    connector: C,
    handlers: Arc<Handlers>,
    metrics: ConnectorMetrics,
    mut stopped: watch::Receiver<bool>,
    wake: Arc<tokio::sync::Notify>,
) {
    while !*stopped.borrow() {
        if let Err(error) = run_once(&connector, &handlers, &metrics).await {
            tracing::warn!(connector = connector.name(), %error, "recording a sync run failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(connector.interval()) => {}
            _ = wake.notified() => tracing::info!(connector = connector.name(), "a sync was asked for"),
            _ = stopped.changed() => {}
        }
    }
}

/// Every connector the service knows: its name, how people call it, and the setting that turns
/// it on (docs/CONNECTORS.md).
pub const KNOWN: [(&str, &str, &str); 5] = [
    (salesforce::NAME, "Salesforce", "CSTRACK_SALESFORCE_TOKEN_URL"),
    (gainsight::NAME, "Gainsight", "CSTRACK_GAINSIGHT_URL"),
    (microsoft::NAME, "Microsoft 365", "CSTRACK_M365_TOKEN_URL"),
    (google::NAME, "Google Workspace", "CSTRACK_GOOGLE_CLIENT_EMAIL"),
    (targetprocess::NAME, "TargetProcess", "CSTRACK_TARGETPROCESS_URL"),
];

/// The connectors this service runs, each with its interval and the bell that starts a run now.
#[derive(Clone, Default)]
pub struct Directory {
    running: Arc<HashMap<&'static str, (Duration, Arc<tokio::sync::Notify>)>>,
}

impl Directory {
    /// Whether `name` runs here, and its interval.
    pub fn interval(&self, name: &str) -> Option<Duration> {
        self.running.get(name).map(|(interval, _)| *interval)
    }

    /// Starts a run of `name` now (or as soon as its current run ends); false if it does not
    /// run here.
    pub fn wake(&self, name: &str) -> bool {
        self.running.get(name).map(|(_, bell)| bell.notify_one()).is_some()
    }
}

/// The configured connectors' supervised loops, and their directory.
pub struct Supervisor {
    handlers: Arc<Handlers>,
    metrics: ConnectorMetrics,
    stopped: watch::Receiver<bool>,
    running: HashMap<&'static str, (Duration, Arc<tokio::sync::Notify>)>,
    pub loops: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
}

impl Supervisor {
    pub fn new(handlers: Arc<Handlers>, metrics: ConnectorMetrics, stopped: watch::Receiver<bool>) -> Self {
        Supervisor {
            handlers,
            metrics,
            stopped,
            running: HashMap::new(),
            loops: Vec::new(),
        }
    }

    /// Runs `connector` until the service stops.
    pub fn add<C: Connector + 'static>(&mut self, connector: C) {
        tracing::info!(connector = connector.name(), "the connector is configured");
        let bell = Arc::new(tokio::sync::Notify::new());
        self.running
            .insert(connector.name(), (connector.interval(), bell.clone()));
        self.loops.push(Box::pin(run_supervised(
            connector,
            self.handlers.clone(),
            self.metrics.clone(),
            self.stopped.clone(),
            bell,
        )));
    }

    pub fn directory(&self) -> Directory {
        Directory {
            running: Arc::new(self.running.clone()),
        }
    }
}

/// A vendor value as a cell of an import row: numbers, booleans, dates and instants typed.
pub fn cell(value: &Value) -> Cell {
    match value {
        Value::Null => Cell::Empty,
        Value::Bool(flag) => Cell::Bool(*flag),
        Value::Number(number) => number.as_f64().map_or(Cell::Empty, Cell::Number),
        Value::String(text) => instant(text)
            .map(|at| Cell::DateTime(at.naive_utc()))
            .unwrap_or_else(|| Cell::Text(text.clone())),
        other => Cell::Text(other.to_string()),
    }
}

/// An instant in the forms vendors write (`2026-11-30T10:00:00.000+0000`, RFC 3339).
pub fn instant(text: &str) -> Option<DateTime<Utc>> {
    if text.len() < 19 || text.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_values_become_typed_cells() {
        assert_eq!(
            cell(&json!("2026-11-30T10:15:00.000+0000")),
            Cell::DateTime(
                chrono::NaiveDate::from_ymd_opt(2026, 11, 30)
                    .unwrap()
                    .and_hms_opt(10, 15, 0)
                    .unwrap()
            )
        );
        assert_eq!(cell(&json!("2027-03-31")), Cell::Text("2027-03-31".into()));
        assert_eq!(cell(&json!(125000.5)), Cell::Number(125000.5));
        assert_eq!(cell(&Value::Null), Cell::Empty);
    }
}
