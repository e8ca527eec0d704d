//! Rebuilding projections from the store without taking the live read models down.
//!
//! A rebuild creates its own schema with an empty copy of each projector's tables (and its own
//! checkpoints), reads the store in global-position order in large batches straight from
//! PostgreSQL and applies every event with the projectors' own code, on a connection whose
//! `search_path` puts the copy first. Live projectors keep applying to the live tables and live
//! queries keep reading them meanwhile.
//!
//! - A live rebuild then catches up with the head, and switches in one transaction: it locks the
//!   checkpoints (live projectors wait at their first statement), applies every event of every
//!   stream that its checkpoints do not cover yet (late commits included), moves the live tables
//!   out and the rebuilt ones in, and replaces the projectors' checkpoints. Readers see the old
//!   tables or the new ones, never a mix; the old ones are dropped afterwards.
//! - A rebuild `--known-at` an instant applies only the events recorded by then and keeps the
//!   result as a named snapshot (schema `snapshot_<name>`), which GraphQL reads by name.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use events::service::store::stream_range;
use events::EventEnvelope;
use futures_util::StreamExt;
use sqlx::{Connection, PgConnection, PgPool};

use crate::bulk::{BulkRow, CopyTable, Decoded, Fold, TableWriter};
use crate::projector::Projector;

/// The last sequence applied of each stream, by (stream type, stream id).
pub type Checkpoints = HashMap<(String, String), i64, foldhash::fast::RandomState>;

/// What to rebuild.
#[derive(Clone)]
pub struct RebuildRequest {
    pub projectors: Vec<Arc<dyn Projector>>,
    /// Only the events recorded by this instant, kept as the snapshot `snapshot_name`.
    pub known_at: Option<DateTime<Utc>>,
    pub snapshot_name: Option<String>,
    /// Events read per query.
    pub batch: i64,
    /// About how many events are folded in memory at once: a larger store is rebuilt in passes,
    /// each over a share of the streams.
    pub pass_events: u64,
    /// Threads the fold runs on, each over its share of the streams; `None`:
    /// `CSTRACK_FOLD_WORKERS`, else one per core but one.
    pub fold_workers: Option<usize>,
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildSummary {
    pub events: u64,
    pub elapsed: Duration,
    /// The schema the rebuilt tables ended in: `public` after a switch, or the snapshot's.
    pub schema: String,
    /// Streams rebuilt only up to an event that cannot be decoded.
    pub blocked: Vec<Undecodable>,
}

/// The schema of a named snapshot.
pub fn snapshot_schema(name: &str) -> anyhow::Result<String> {
    events::service::read_models::snapshot_schema(name).map_err(anyhow::Error::msg)
}

/// Reports progress: a bar on a terminal, plain lines otherwise.
pub struct Progress {
    total: u64,
    started: Instant,
    last: Instant,
    terminal: bool,
}

impl Progress {
    pub fn new(total: u64) -> Self {
        Progress {
            total,
            started: Instant::now(),
            last: Instant::now() - Duration::from_secs(60),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// A finished stage, with the seconds since the rebuild started.
    pub fn stage(&self, what: &str) {
        if self.terminal {
            eprint!("\r\x1b[K");
        }
        eprintln!("rebuild: {what} at {:.1} s", self.started.elapsed().as_secs_f64());
    }

    pub fn update(&mut self, done: u64, finished: bool) {
        // Events appended while the rebuild runs are folded too: the total grows with them, so
        // progress never reads past 100%.
        self.total = self.total.max(done);
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(2)
        };
        if !finished && self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64().max(1e-6);
        let rate = done as f64 / seconds;
        let left = self.total.saturating_sub(done);
        let eta = if rate > 0.0 { left as f64 / rate } else { 0.0 };
        let share = if self.total == 0 {
            1.0
        } else {
            (done as f64 / self.total as f64).min(1.0)
        };
        let line = format!("{done}/{} events, {rate:.0} events/s, ETA {eta:.0} s", self.total);
        if self.terminal {
            let filled = (share * 30.0).round() as usize;
            eprint!(
                "\r[{}{}] {:>3.0}% {line}   ",
                "#".repeat(filled),
                ".".repeat(30 - filled),
                share * 100.0
            );
            if finished {
                eprintln!();
            }
        } else {
            eprintln!("rebuild: {:.0}% {line}", share * 100.0);
        }
    }
}

async fn shadow_connection(database_url: &str, schema: &str) -> anyhow::Result<PgConnection> {
    let mut connection = PgConnection::connect(database_url)
        .await
        .context("connecting for the rebuild")?;
    sqlx::query(&format!("SET search_path TO {schema}, public"))
        .execute(&mut connection)
        .await?;
    Ok(connection)
}

/// Applies a batch of events (in global-position order) to every projector, with checkpoints,
/// skipping what a stream's checkpoint already covers and stopping a stream at a gap. Returns the
/// events applied.
async fn apply_batch(
    db: &mut PgConnection,
    projectors: &[Arc<dyn Projector>],
    events: &[EventEnvelope],
    checkpoints: &mut Checkpoints,
) -> anyhow::Result<u64> {
    let mut tx = db.begin().await?;
    let mut applied = 0;
    let mut moved = Checkpoints::default();
    for event in events {
        let key = (event.stream_type.clone(), event.stream_id.clone());
        let last = checkpoints.get(&key).copied().unwrap_or(0);
        if event.sequence != last + 1 {
            continue; // already applied, or a stream whose earlier events are not in this set
        }
        for projector in projectors {
            projector
                .apply(&mut tx, event)
                .await
                .map_err(|error| anyhow::anyhow!("{}: {error}", projector.name()))?;
        }
        checkpoints.insert(key.clone(), event.sequence);
        moved.insert(key, event.sequence);
        applied += 1;
    }
    if !moved.is_empty() {
        let (mut types, mut ids, mut sequences) = (Vec::new(), Vec::new(), Vec::new());
        for ((stream_type, stream_id), sequence) in moved {
            types.push(stream_type);
            ids.push(stream_id);
            sequences.push(sequence);
        }
        for projector in projectors {
            sqlx::query(
                "INSERT INTO projector_checkpoints (projector, stream_type, stream_id, last_sequence)
                 SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int8[])
                 ON CONFLICT (projector, stream_type, stream_id) DO UPDATE SET last_sequence = EXCLUDED.last_sequence",
            )
            .bind(projector.name())
            .bind(&types)
            .bind(&ids)
            .bind(&sequences)
            .execute(&mut *tx)
            .await?;
        }
    }
    if let Some(last) = events.last() {
        for projector in projectors {
            sqlx::query(crate::projector::RECORD_STATUS)
                .bind(projector.name())
                .bind(last.global_position)
                .bind(applied as i64)
                .bind(last.metadata.recorded_at)
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(applied)
}

/// A rebuild whose tables are built and caught up with the store, not yet switched.
pub struct Built {
    pub schema: String,
    rebuild_ids: Vec<i64>,
    tables: Vec<&'static str>,
    db: PgConnection,
    checkpoints: Checkpoints,
    progress: Progress,
    done: u64,
    started: Instant,
    blocked: Vec<Undecodable>,
}

/// Rebuilds `request.projectors` from the store and switches (or keeps the snapshot); see the
/// module documentation.
pub async fn rebuild(pool: &PgPool, database_url: &str, request: &RebuildRequest) -> anyhow::Result<RebuildSummary> {
    let request = request.with_what_they_read();
    let built = build(pool, database_url, &request).await?;
    finish(pool, &request, built).await
}

impl RebuildRequest {
    /// The request with the projectors whose tables the requested ones read
    /// ([`Projector::reads`]): coverage counts contact from the customers' activities.
    pub fn with_what_they_read(&self) -> RebuildRequest {
        let mut projectors = self.projectors.clone();
        for projector in crate::projectors() {
            let read = self.projectors.iter().any(|p| p.reads().contains(&projector.name()));
            if read && !projectors.iter().any(|p| p.name() == projector.name()) {
                projectors.push(projector);
            }
        }
        RebuildRequest {
            projectors,
            ..self.clone()
        }
    }
}

/// Records a rebuild as failed and removes what it built: a failed rebuild leaves nothing behind.
async fn fail(pool: &PgPool, rebuild_ids: &[i64], schema: &str) {
    mark_failed(pool, rebuild_ids).await;
    for schema in [schema.to_owned(), format!("{schema}_retired")] {
        if let Err(error) = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(pool)
            .await
        {
            tracing::error!(%error, %schema, "could not remove a failed rebuild's tables");
        }
    }
}

async fn mark_failed(pool: &PgPool, rebuild_ids: &[i64]) {
    sqlx::query(
        "UPDATE projection_rebuilds SET state = 'failed', updated_at = now(), finished_at = now() WHERE rebuild_id = ANY ($1)",
    )
    .bind(rebuild_ids)
    .execute(pool)
    .await
    .ok();
}

/// Builds the tables beside the live ones, from the whole store (or what was recorded by
/// `known_at`), reading it in batches by global position.
pub async fn build(pool: &PgPool, database_url: &str, request: &RebuildRequest) -> anyhow::Result<Built> {
    let started = Instant::now();
    let names: Vec<&str> = request.projectors.iter().map(|p| p.name()).collect();
    let schema = match &request.snapshot_name {
        Some(name) => snapshot_schema(name)?,
        None => {
            if request.known_at.is_some() {
                bail!("a rebuild as known at an instant is kept as a named snapshot: give it a name");
            }
            String::new()
        }
    };
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE $1::timestamptz IS NULL OR recorded_at <= $1")
            .bind(request.known_at)
            .fetch_one(pool)
            .await?;
    let target = request.snapshot_name.clone().unwrap_or_else(|| "live".into());
    let mut rebuild_ids = Vec::new();
    for name in &names {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO projection_rebuilds (projector, target, known_at, state, events_total)
             VALUES ($1, $2, $3, 'running', $4) RETURNING rebuild_id",
        )
        .bind(name)
        .bind(&target)
        .bind(request.known_at)
        .bind(total)
        .fetch_one(pool)
        .await?;
        rebuild_ids.push(id);
    }
    let schema = if schema.is_empty() {
        format!("rebuild_{}", rebuild_ids[0])
    } else {
        schema
    };
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(&schema)
        .fetch_one(pool)
        .await?;
    if exists {
        mark_failed(pool, &rebuild_ids).await;
        bail!("{schema} exists already (drop the snapshot first)");
    }
    match build_tables(pool, database_url, request, &schema, &rebuild_ids, total as u64).await {
        Ok((db, checkpoints, progress, done, tables, blocked)) => Ok(Built {
            schema,
            rebuild_ids,
            tables,
            db,
            checkpoints,
            progress,
            done,
            started,
            blocked,
        }),
        Err(error) => {
            fail(pool, &rebuild_ids, &schema).await;
            Err(error)
        }
    }
}

type Building = (
    PgConnection,
    Checkpoints,
    Progress,
    u64,
    Vec<&'static str>,
    Vec<Undecodable>,
);

async fn build_tables(
    pool: &PgPool,
    database_url: &str,
    request: &RebuildRequest,
    schema: &str,
    rebuild_ids: &[i64],
    total: u64,
) -> anyhow::Result<Building> {
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(pool).await?;
    let mut tables: Vec<&'static str> = vec!["projector_checkpoints", "projector_status"];
    for projector in &request.projectors {
        tables.extend(projector.tables());
    }
    // Indexes come after the rows: building an index once is cheaper than growing it row by row.
    for table in &tables {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        ))
        .execute(pool)
        .await?;
    }

    // Each table gets its indexes and statistics as soon as its last rows are in.
    let mut finishing = finishing_statements(pool, schema, &tables).await?;
    let mut checkpoints = Checkpoints::default();
    let mut progress = Progress::new(total);
    let mut folded = Folded::default();
    let mut blocked = Vec::new();
    let passes = total.div_ceil(request.pass_events.max(1)).max(1);
    for pass in 0..passes {
        let mut folding = Folding::start(&request.projectors, fold_workers(request.fold_workers));
        let mut batches = read_batches(pool.clone(), request, pass, passes);
        while let Some(decoding) = batches.recv().await {
            let mut shares: Vec<Vec<(EventEnvelope, Decoded)>> = (0..folding.workers()).map(|_| Vec::new()).collect();
            for row in decoding.await?? {
                let (mut envelope, decoded) = match row {
                    Ok(decoded) => decoded,
                    Err(undecodable) => {
                        let key = (undecodable.stream_type.clone(), undecodable.stream_id.clone());
                        if checkpoints.get(&key).copied().unwrap_or(0) + 1 == undecodable.sequence {
                            tracing::warn!(stream_id = %undecodable.stream_id, sequence = undecodable.sequence,
                                error = %undecodable.error, "undecodable event: its stream is rebuilt up to the event before it");
                            blocked.push(undecodable);
                        }
                        continue;
                    }
                };
                let key = (
                    std::mem::take(&mut envelope.stream_type),
                    std::mem::take(&mut envelope.stream_id),
                );
                let last = checkpoints.get(&key).copied().unwrap_or(0);
                if envelope.sequence != last + 1 {
                    continue; // a stream whose earlier events committed after this read: caught up at the switch
                }
                folded.add(&envelope);
                shares[folding.worker_of(&key.1)].push((envelope, decoded));
                checkpoints.insert(key, last + 1);
            }
            folding.hand(shares).await?;
            progress.update(folded.events, false);
            sqlx::query(
                "UPDATE projection_rebuilds SET events_done = $2, events_total = GREATEST(events_total, $2), updated_at = now()
                  WHERE rebuild_id = ANY ($1)",
            )
            .bind(rebuild_ids)
            .bind(folded.events as i64)
            .execute(pool)
            .await?;
        }
        let mut writers = folding.finish().await?;
        progress.stage(&format!(
            "pass {} of {passes}: {} events folded",
            pass + 1,
            folded.events
        ));
        let last = pass + 1 == passes;
        if last {
            writers.extend(folded.tables(&request.projectors, &checkpoints));
        }
        // The largest tables first, so that the small ones fill in beside them.
        writers.sort_by_key(|writer| {
            LARGEST
                .iter()
                .position(|table| *table == writer.table)
                .unwrap_or(LARGEST.len())
        });
        let after: Vec<Vec<String>> = writers
            .iter()
            .map(|writer| match last {
                true => finishing.remove(writer.table).unwrap_or_default(),
                false => Vec::new(),
            })
            .collect();
        let rows = copy_all(pool, schema, writers, after).await?;
        progress.stage(&format!(
            "pass {} of {passes}: {rows} rows written{}",
            pass + 1,
            if last { ", indexed and analyzed" } else { "" }
        ));
    }
    // Tables no event wrote to.
    let rest: Vec<Vec<String>> = finishing.into_values().collect();
    run_two_at_a_time(pool, rest).await?;
    // Views over the rebuilt tables, so that a snapshot's queries read its own rows.
    for projector in &request.projectors {
        for statement in projector.views(schema) {
            sqlx::query(&statement).execute(pool).await?;
        }
    }
    let db = shadow_connection(database_url, schema).await?;
    Ok((db, checkpoints, progress, folded.events, tables, blocked))
}

/// Threads folding a pass's events, each into its own copy of every projector's read model over
/// its share of the streams (by stream id), so the fold of one stream stays in order on one
/// thread. A stream's rows depend on that stream alone (as passes rely on too), so the copies'
/// tables are the read model's rows split in parts: each table is written once, part after part.
struct Folding {
    senders: Vec<tokio::sync::mpsc::Sender<Vec<(EventEnvelope, Decoded)>>>,
    workers: Vec<tokio::task::JoinHandle<anyhow::Result<Vec<Box<dyn Fold>>>>>,
    hasher: foldhash::fast::FixedState,
}

/// Threads that fold at once: as asked, else `CSTRACK_FOLD_WORKERS`, else one per core but one
/// (which the decoding and PostgreSQL's reading keep busy meanwhile), at most 8. On two cores
/// that is one: a second measured no gain there (docs/BENCHMARKS.md).
fn fold_workers(asked: Option<usize>) -> usize {
    asked
        .or_else(|| {
            std::env::var("CSTRACK_FOLD_WORKERS")
                .ok()
                .and_then(|workers| workers.parse().ok())
        })
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1)))
        .clamp(1, 8)
}

impl Folding {
    fn start(projectors: &[Arc<dyn Projector>], workers: usize) -> Self {
        let (mut senders, mut handles) = (Vec::new(), Vec::new());
        for _ in 0..workers {
            let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<(EventEnvelope, Decoded)>>(2);
            let projectors = projectors.to_vec();
            handles.push(tokio::task::spawn_blocking(move || {
                let mut folds: Vec<Box<dyn Fold>> = projectors.iter().map(|p| p.fold()).collect();
                while let Some(events) = receiver.blocking_recv() {
                    for (envelope, decoded) in &events {
                        for (fold, projector) in folds.iter_mut().zip(&projectors) {
                            fold.apply(envelope, decoded)
                                .map_err(|error| anyhow::anyhow!("{}: {error}", projector.name()))?;
                        }
                    }
                }
                Ok(folds)
            }));
            senders.push(sender);
        }
        Folding {
            senders,
            workers: handles,
            hasher: foldhash::fast::FixedState::with_seed(0),
        }
    }

    fn workers(&self) -> usize {
        self.senders.len()
    }

    fn worker_of(&self, stream_id: &str) -> usize {
        use std::hash::BuildHasher;
        (self.hasher.hash_one(stream_id) % self.senders.len() as u64) as usize
    }

    /// Hands each worker its share of a batch, in stream order.
    async fn hand(&mut self, shares: Vec<Vec<(EventEnvelope, Decoded)>>) -> anyhow::Result<()> {
        for (sender, share) in self.senders.iter().zip(shares) {
            if !share.is_empty() && sender.send(share).await.is_err() {
                // The worker stopped at a failure: `finish` reports it.
                return self.finish().await.map(|_| ());
            }
        }
        Ok(())
    }

    /// Waits for every worker and returns a writer per table, filled part after part.
    async fn finish(&mut self) -> anyhow::Result<Vec<TableWriter>> {
        self.senders.clear();
        let mut tables: Vec<(&'static str, &'static str, Vec<TableFill>)> = Vec::new();
        for worker in self.workers.drain(..) {
            for fold in worker.await?? {
                for writer in fold.into_tables() {
                    match tables.iter_mut().find(|(table, _, _)| *table == writer.table) {
                        Some((_, _, fills)) => fills.push(writer.fill),
                        None => tables.push((writer.table, writer.columns, vec![writer.fill])),
                    }
                }
            }
        }
        Ok(tables
            .into_iter()
            .map(|(table, columns, fills)| {
                TableWriter::new(table, columns, move |out| {
                    for fill in fills {
                        fill(out);
                    }
                })
            })
            .collect())
    }
}

type TableFill = Box<dyn FnOnce(&mut CopyTable) + Send>;

/// What the folds have taken in so far, for the checkpoints and status they are written with.
#[derive(Default)]
struct Folded {
    events: u64,
    last_position: i64,
    last_recorded_at: Option<DateTime<Utc>>,
}

impl Folded {
    fn add(&mut self, event: &EventEnvelope) {
        self.events += 1;
        self.last_position = self.last_position.max(event.global_position);
        self.last_recorded_at = self.last_recorded_at.max(Some(event.metadata.recorded_at));
    }

    /// The rebuilt `projector_checkpoints` and `projector_status` rows.
    fn tables(&self, projectors: &[Arc<dyn Projector>], checkpoints: &Checkpoints) -> Vec<TableWriter> {
        let mut rows = CopyTable::new(
            "projector_checkpoints",
            "projector, stream_type, stream_id, last_sequence",
        );
        let mut status = CopyTable::new(
            "projector_status",
            "projector, last_global_position, events_applied, last_recorded_at",
        );
        for projector in projectors {
            let name = projector.name();
            for ((stream_type, stream_id), sequence) in checkpoints {
                rows.row(&[&name, stream_type, stream_id, sequence]);
            }
            status.row(&[
                &name,
                &self.last_position,
                &(self.events as i64),
                &self.last_recorded_at,
            ]);
        }
        vec![rows.into_writer(), status.into_writer()]
    }
}

/// A stored event this version cannot decode, and so the stream it blocks: its later events
/// are not applied (as the live projectors do not apply them), and the rebuild reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    pub stream_type: String,
    pub stream_id: String,
    pub sequence: i64,
    pub global_position: i64,
    pub event_type: String,
    pub error: String,
}

type Decoding = tokio::task::JoinHandle<anyhow::Result<Vec<Result<(EventEnvelope, Decoded), Undecodable>>>>;

/// Reads the store (or one pass's share of its streams) in global-position order, one batch per
/// short query, and decodes each batch on a blocking thread while the next one is read.
fn read_batches(
    pool: PgPool,
    request: &RebuildRequest,
    pass: u64,
    passes: u64,
) -> tokio::sync::mpsc::Receiver<Decoding> {
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    let (known_at, batch) = (request.known_at, request.batch);
    tokio::spawn(async move {
        let statement = format!(
            "SELECT {} FROM public.events
              WHERE global_position > $1 AND ($2::timestamptz IS NULL OR recorded_at <= $2)
                AND ($4::int8 = 1 OR (hashtext(aggregate_id) & 2147483647) % $4 = $5)
              ORDER BY global_position LIMIT $3",
            BulkRow::COLUMNS
        );
        let mut position = 0_i64;
        loop {
            let rows: Result<Vec<BulkRow>, _> = sqlx::query_as(&statement)
                .bind(position)
                .bind(known_at)
                .bind(batch)
                .bind(passes as i64)
                .bind(pass as i64)
                .fetch_all(&pool)
                .await;
            let (decoding, more) = match rows {
                Ok(rows) if rows.is_empty() => break,
                Ok(rows) => {
                    position = rows.last().map_or(position, |row| row.global_position);
                    let decoding = tokio::task::spawn_blocking(move || {
                        Ok(rows
                            .into_iter()
                            .map(|row| {
                                let undecodable = |row: &BulkRow, error: String| Undecodable {
                                    stream_type: row.aggregate_type.clone(),
                                    stream_id: row.aggregate_id.clone(),
                                    sequence: row.sequence,
                                    global_position: row.global_position,
                                    event_type: row.event_type.clone(),
                                    error,
                                };
                                let kept = undecodable(&row, String::new());
                                row.decode().map_err(|error| Undecodable {
                                    error: error.to_string(),
                                    ..kept
                                })
                            })
                            .collect())
                    });
                    (decoding, true)
                }
                Err(error) => (tokio::spawn(async move { Err(error.into()) }), false),
            };
            if sender.send(decoding).await.is_err() || !more {
                break;
            }
        }
    });
    receiver
}

/// Tables that dominate a rebuild's writes, the longest to load and index first.
const LARGEST: [&str; 3] = ["customer_activities", "health_points", "coverage_health_points"];

/// Writes every table with `COPY`, two tables at a time, each streamed to the database while
/// its rows are written and followed on the same connection by its `after` statements; returns
/// the rows written.
async fn copy_all(
    pool: &PgPool,
    schema: &str,
    writers: Vec<TableWriter>,
    after: Vec<Vec<String>>,
) -> anyhow::Result<u64> {
    let writes = writers.into_iter().zip(after).map(|(writer, after)| async move {
        let (sink, mut chunks) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
        let mut table = CopyTable::streaming(writer.table, writer.columns, sink);
        let statement = table.statement(schema);
        let fill = writer.fill;
        let filling = tokio::task::spawn_blocking(move || {
            fill(&mut table);
            table.finish()
        });
        let mut connection = pool.acquire().await?;
        let mut copy = connection.copy_in_raw(&statement).await?;
        while let Some(chunk) = chunks.recv().await {
            copy.send(chunk).await?;
        }
        let rows = match filling.await {
            Ok(rows) => {
                copy.finish().await.with_context(|| statement.clone())?;
                rows
            }
            Err(error) => {
                copy.abort("the rows could not be written").await.ok();
                return Err(error.into());
            }
        };
        run_in_order(&mut connection, &after).await?;
        Ok::<u64, anyhow::Error>(rows)
    });
    let mut writes = futures_util::stream::iter(writes).buffer_unordered(2);
    let mut rows = 0;
    while let Some(written) = writes.next().await {
        rows += written?;
    }
    Ok(rows)
}

/// By table, what makes a loaded table ready for readers: the live table's indexes and
/// constraints (same names, in the rebuild's schema), then statistics for the planner.
async fn finishing_statements(
    pool: &PgPool,
    schema: &str,
    tables: &[&'static str],
) -> anyhow::Result<HashMap<&'static str, Vec<String>>> {
    let definitions: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT t.relname::text, pg_get_indexdef(i.oid), c.conname::text, pg_get_constraintdef(c.oid)
           FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid
           JOIN pg_class t ON t.oid = x.indrelid
           LEFT JOIN pg_constraint c ON c.conindid = i.oid AND c.conrelid = t.oid
          WHERE t.relnamespace = 'public'::regnamespace AND t.relname = ANY ($1)
          ORDER BY t.relname, i.relname",
    )
    .bind(tables)
    .fetch_all(pool)
    .await?;
    let mut statements: HashMap<&'static str, Vec<String>> = tables.iter().map(|table| (*table, Vec::new())).collect();
    for (table, index, constraint, definition) in definitions {
        let statement = match (constraint, definition) {
            (Some(name), Some(definition)) => {
                format!("ALTER TABLE {schema}.{table} ADD CONSTRAINT {name} {definition}")
            }
            _ => index.replacen(" ON public.", &format!(" ON {schema}."), 1),
        };
        if let Some(list) = tables.iter().find(|t| **t == table).and_then(|t| statements.get_mut(t)) {
            list.push(statement);
        }
    }
    for (table, list) in statements.iter_mut() {
        list.push(format!("ANALYZE {schema}.{table}"));
    }
    Ok(statements)
}

/// Runs statements one after the other on one connection, with room to sort for index builds.
async fn run_in_order(connection: &mut PgConnection, statements: &[String]) -> anyhow::Result<()> {
    for statement in statements {
        let mut tx = connection.begin().await?;
        sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
            .execute(&mut *tx)
            .await?;
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .with_context(|| statement.clone())?;
        tx.commit().await?;
    }
    Ok(())
}

/// Runs each list of statements in order on its own connection, two lists at a time.
async fn run_two_at_a_time(pool: &PgPool, lists: Vec<Vec<String>>) -> anyhow::Result<()> {
    let runs = lists.into_iter().map(|statements| async move {
        let mut connection = pool.acquire().await?;
        run_in_order(&mut connection, &statements).await
    });
    let mut runs = futures_util::stream::iter(runs).buffer_unordered(2);
    while let Some(ran) = runs.next().await {
        ran?;
    }
    Ok(())
}

/// Switches a live rebuild in (or records a snapshot as done).
pub async fn finish(pool: &PgPool, request: &RebuildRequest, mut built: Built) -> anyhow::Result<RebuildSummary> {
    let state = if request.known_at.is_some() {
        "snapshot"
    } else {
        match switch(
            &mut built.db,
            &built.schema,
            request,
            &built.tables,
            &mut built.checkpoints,
            &built.blocked,
        )
        .await
        {
            Ok(caught_up) => {
                built.done += caught_up;
                built.progress.stage(&format!("switched, {caught_up} events caught up"));
            }
            Err(error) => {
                fail(pool, &built.rebuild_ids, &built.schema).await;
                return Err(error);
            }
        }
        "switched"
    };
    built.progress.update(built.done, true);
    sqlx::query(
        "UPDATE projection_rebuilds SET state = $2, events_done = $3, events_total = GREATEST(events_total, $3),
                updated_at = now(), finished_at = now()
          WHERE rebuild_id = ANY ($1)",
    )
    .bind(&built.rebuild_ids)
    .bind(state)
    .bind(built.done as i64)
    .execute(pool)
    .await?;
    let schema = if state == "switched" {
        sqlx::query(&format!("DROP SCHEMA {}_retired CASCADE", built.schema))
            .execute(pool)
            .await?;
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", built.schema))
            .execute(pool)
            .await?;
        "public".to_owned()
    } else {
        built.schema.clone()
    };
    Ok(RebuildSummary {
        events: built.done,
        elapsed: built.started.elapsed(),
        schema,
        blocked: built.blocked,
    })
}

/// How many times the switch lets go of its locks and starts over when a reader holds a table it
/// must move, and the longest pause between two tries.
const SWITCH_TRIES: u32 = 60;
const SWITCH_PAUSE_MAX: Duration = Duration::from_millis(500);

/// Catches up and swaps the rebuilt tables in, in one transaction; returns the events applied
/// while catching up.
///
/// A report reads several read-model tables in one statement and locks them one by one, in its
/// own order; the switch moves them one by one too. Each can hold a table the other waits for.
/// So the switch waits for any one table's lock only a fifth of the server's `deadlock_timeout`
/// (at most 200 ms): it gives up before PostgreSQL would look for a deadlock and cancel a reader,
/// rolls back (the readers go on with the old tables) and tries again from the start, catch-up
/// included, with the checkpoints it had before the try.
async fn switch(
    db: &mut PgConnection,
    schema: &str,
    request: &RebuildRequest,
    tables: &[&str],
    checkpoints: &mut Checkpoints,
    blocked: &[Undecodable],
) -> anyhow::Result<u64> {
    let mut tries = 1;
    loop {
        let before = checkpoints.clone();
        match switch_once(db, schema, request, tables, checkpoints, blocked).await {
            Err(error) if tries < SWITCH_TRIES && is_lock_conflict(&error) => {
                *checkpoints = before;
                let pause = (Duration::from_millis(20) * tries).min(SWITCH_PAUSE_MAX);
                tracing::info!(tries, ?pause, %error, "a reader holds a table the switch moves: trying again");
                tokio::time::sleep(pause).await;
                tries += 1;
            }
            result => return result,
        }
    }
}

/// A lock not had in time (55P03), or a deadlock PostgreSQL broke by cancelling the switch
/// (40P01).
fn is_lock_conflict(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<sqlx::Error>(),
            Some(sqlx::Error::Database(db)) if matches!(db.code().as_deref(), Some("55P03" | "40P01"))
        )
    })
}

async fn switch_once(
    db: &mut PgConnection,
    schema: &str,
    request: &RebuildRequest,
    tables: &[&str],
    checkpoints: &mut Checkpoints,
    blocked: &[Undecodable],
) -> anyhow::Result<u64> {
    let names: Vec<&str> = request.projectors.iter().map(|p| p.name()).collect();
    let mut tx = db.begin().await?;
    // Live projectors write their checkpoint first in each transaction: they wait here.
    sqlx::query("LOCK TABLE public.projector_checkpoints IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let behind: Vec<(String, String, i64)> = sqlx::query_as(&format!(
        "SELECT h.aggregate_type, h.aggregate_id, h.sequence FROM public.stream_heads h
           LEFT JOIN {schema}.projector_checkpoints c
             ON c.projector = $1 AND c.stream_type = h.aggregate_type AND c.stream_id = h.aggregate_id
          WHERE h.sequence > COALESCE(c.last_sequence, 0)"
    ))
    .bind(names[0])
    .fetch_all(&mut *tx)
    .await?;
    let mut caught_up = 0;
    for (stream_type, stream_id, head) in behind {
        if blocked
            .iter()
            .any(|b| b.stream_type == stream_type && b.stream_id == stream_id)
        {
            continue; // held at the event before its undecodable one, as live
        }
        let from = checkpoints
            .get(&(stream_type.clone(), stream_id.clone()))
            .copied()
            .unwrap_or(0);
        let events = stream_range(&mut *tx, &stream_type, &stream_id, from, head).await?;
        caught_up += apply_batch(&mut tx, &request.projectors, &events, checkpoints).await?;
    }
    // From here the switch takes the live tables, which readers hold: see `switch`.
    sqlx::query(
        "SELECT set_config('lock_timeout',
                GREATEST(1, LEAST(200, EXTRACT(EPOCH FROM current_setting('deadlock_timeout')::interval) * 200))::int || 'ms', true)",
    )
    .execute(&mut *tx)
    .await?;
    let retired = format!("{schema}_retired");
    sqlx::query(&format!("CREATE SCHEMA {retired}"))
        .execute(&mut *tx)
        .await?;
    for table in tables
        .iter()
        .filter(|t| !["projector_checkpoints", "projector_status"].contains(t))
    {
        sqlx::query(&format!("ALTER TABLE public.{table} SET SCHEMA {retired}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {schema}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    // A view follows the table it reads into the retired schema: point it at the new one.
    for projector in &request.projectors {
        for statement in projector.views("public") {
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
    }
    for table in ["projector_checkpoints", "projector_status"] {
        sqlx::query(&format!("DELETE FROM public.{table} WHERE projector = ANY ($1)"))
            .bind(&names)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "INSERT INTO public.{table} SELECT * FROM {schema}.{table} WHERE projector = ANY ($1)"
        ))
        .bind(&names)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(caught_up)
}

pub use events::service::read_models::snapshots;

/// Drops a named snapshot.
pub async fn drop_snapshot(pool: &PgPool, name: &str) -> anyhow::Result<()> {
    let schema = snapshot_schema(name)?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(pool)
        .await?;
    sqlx::query(
        "UPDATE projection_rebuilds SET state = 'failed', updated_at = now() WHERE state = 'snapshot' AND target = $1",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(())
}
