//! The connectors' state (docs/CONNECTORS.md): for each connector that has run, its latest
//! runs with what they read, applied and skipped (and why), and the cursors it resumes from.

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::schema::unavailable;

/// Runs listed per connector, newest first.
const RUNS_LISTED: i64 = 10;

#[derive(SimpleObject, Debug, Clone, serde::Deserialize)]
pub struct ConnectorSkip {
    /// The vendor's object (Account, Contact, ...).
    pub object: String,
    pub record_id: String,
    pub code: String,
    /// The field at fault, when one is.
    pub field: Option<String>,
    pub message: String,
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
#[graphql(complex)]
pub struct ConnectorRun {
    /// The correlation id of every event the run appended (`sync_run_id` in their metadata).
    pub run_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// running, succeeded or failed.
    pub status: String,
    pub records_read: i32,
    /// Records whose events were appended.
    pub applied: i32,
    /// Records the store already agreed with (or applied by an earlier run).
    pub unchanged: i32,
    pub skipped: i32,
    pub events: i32,
    /// Records written back to the vendor.
    pub pushed: i32,
    /// Records that concern no customer (mail with no customer's address in it).
    pub ignored: i32,
    /// Milliseconds spent waiting on the vendor's `Retry-After`.
    pub waited_ms: i64,
    /// Why records were skipped (at most 500 per run).
    #[graphql(skip)]
    pub skips: sqlx::types::Json<Vec<ConnectorSkip>>,
    /// Why the run failed.
    pub error: Option<String>,
}

#[async_graphql::ComplexObject]
impl ConnectorRun {
    async fn skipped_records(&self) -> &[ConnectorSkip] {
        &self.skips.0
    }
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct ConnectorCursor {
    /// The vendor's object or feed the cursor is of.
    pub stream: String,
    pub cursor: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Connector {
    pub name: String,
    pub last_run: Option<ConnectorRun>,
    /// The latest runs, newest first.
    pub runs: Vec<ConnectorRun>,
    pub cursors: Vec<ConnectorCursor>,
}

#[derive(Default)]
pub struct ConnectorQuery;

#[Object]
impl ConnectorQuery {
    /// Every connector that has synced: its latest runs and cursors. Not for partners.
    async fn connectors(&self, ctx: &Context<'_>) -> Result<Vec<Connector>> {
        crate::access::portfolio(ctx)?;
        let pool = ctx.data::<PgPool>()?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT connector FROM connector_runs UNION SELECT connector FROM connector_cursors ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .map_err(unavailable)?;
        let mut connectors = Vec::with_capacity(names.len());
        for name in names {
            let runs: Vec<ConnectorRun> = sqlx::query_as(
                "SELECT run_id, started_at, finished_at, status, records_read, applied, unchanged, skipped, events,
                        pushed, ignored, waited_ms, skips, error
                   FROM connector_runs WHERE connector = $1 ORDER BY started_at DESC, run_id DESC LIMIT $2",
            )
            .bind(&name)
            .bind(RUNS_LISTED)
            .fetch_all(pool)
            .await
            .map_err(unavailable)?;
            let cursors: Vec<ConnectorCursor> = sqlx::query_as(
                "SELECT stream, cursor, updated_at FROM connector_cursors WHERE connector = $1 ORDER BY stream",
            )
            .bind(&name)
            .fetch_all(pool)
            .await
            .map_err(unavailable)?;
            connectors.push(Connector {
                last_run: runs.first().cloned(),
                name,
                runs,
                cursors,
            });
        }
        Ok(connectors)
    }
}
