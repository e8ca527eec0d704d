//! The auditors' queries: a customer's event history, the verification of its hash chain, and
//! the store's sealed digests. Every one requires the auditor role and is logged.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use events::service::chain;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::history::{self, audited, HistoryEvent, HistoryFilter};
use crate::schema::{coded_error, unavailable};

#[derive(Default)]
pub struct AuditQuery;

/// Connections to the named snapshots, opened on first use: each reads its snapshot's schema
/// first (`search_path`), the store and the shared tables after it.
#[derive(Clone)]
pub struct Snapshots {
    database_url: String,
    pools: std::sync::Arc<tokio::sync::Mutex<std::collections::HashMap<String, PgPool>>>,
}

impl Snapshots {
    pub fn new(database_url: String) -> Self {
        Snapshots {
            database_url,
            pools: Default::default(),
        }
    }

    async fn pool(&self, live: &PgPool, name: &str) -> Result<PgPool> {
        let schema = events::service::read_models::snapshot_schema(name)
            .map_err(|error| coded_error("BAD_USER_INPUT", error))?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(&schema)
            .fetch_one(live)
            .await
            .map_err(unavailable)?;
        let mut pools = self.pools.lock().await;
        if !exists {
            pools.remove(name);
            return Err(coded_error("NOT_FOUND", format!("no snapshot {name}")));
        }
        if let Some(pool) = pools.get(name) {
            return Ok(pool.clone());
        }
        let search_path = format!("SET search_path TO {schema}, public");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .idle_timeout(std::time::Duration::from_secs(60))
            .after_connect(move |connection, _| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    sqlx::Executor::execute(connection, search_path.as_str()).await?;
                    Ok(())
                })
            })
            .connect(&self.database_url)
            .await
            .map_err(unavailable)?;
        pools.insert(name.to_owned(), pool.clone());
        Ok(pool)
    }
}

/// A named historical snapshot of the read models.
#[derive(SimpleObject, Debug, Clone)]
pub struct ProjectionSnapshot {
    pub name: String,
    pub known_at: DateTime<Utc>,
    pub events: i64,
}

/// The outcome of verifying one customer's hash chain.
#[derive(SimpleObject, Debug, Clone)]
pub struct HistoryVerification {
    pub customer_id: Uuid,
    /// Events checked.
    pub events: i64,
    /// The last sequence the stream's head records.
    pub head_sequence: Option<i64>,
    pub intact: bool,
    /// The first broken link: the sequence at which the chain breaks.
    pub broken_at_sequence: Option<i64>,
    /// altered (stored text or hash no longer match), missing (a deleted row) or truncated (the
    /// stream's last rows deleted).
    pub reason: Option<String>,
}

/// A sealed range of the store: the Merkle root of the hashes of its events in position order.
#[derive(SimpleObject, Debug, Clone)]
pub struct StoreDigest {
    pub range_start: i64,
    pub range_end: i64,
    pub events: i32,
    /// Hex.
    pub root: String,
}

/// A look into a customer's past as recorded by `known_at`: refused unless the caller sees the
/// customer, logged, and holding one of the caller's replay places while the answer is read.
pub async fn look_back(
    ctx: &Context<'_>,
    customer_id: Uuid,
    known_at: DateTime<Utc>,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>> {
    crate::access::customer(ctx, customer_id)?;
    let pool = ctx.data::<PgPool>()?;
    let principal = &crate::access::access(ctx)?.principal;
    let place = replay_place(ctx, &principal.user_id).await?;
    history::log_access(
        pool,
        principal,
        "as_of",
        Some(customer_id),
        json!({"known_at": known_at}),
        true,
    )
    .await
    .map_err(unavailable)?;
    Ok(place)
}

/// The customer folded from its stream as recorded by `known_at`: refused unless the caller sees
/// the customer; logged like every other look into the past.
pub async fn known(
    ctx: &Context<'_>,
    customer_id: Uuid,
    known_at: DateTime<Utc>,
) -> Result<crate::as_of::KnownCustomer> {
    let pool = ctx.data::<PgPool>()?;
    let _place = look_back(ctx, customer_id, known_at).await?;
    crate::as_of::load(pool, customer_id, known_at)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            coded_error(
                "NOT_FOUND",
                format!("no customer {customer_id} was known at {known_at}"),
            )
        })
}

/// One of the caller's places for a replay (none to take where no limit is kept: an export's
/// fixed queries).
async fn replay_place(ctx: &Context<'_>, caller: &str) -> Result<Option<tokio::sync::OwnedSemaphorePermit>> {
    match ctx.data_opt::<crate::replays::Replays>() {
        Some(replays) => replays.admit(caller).await.map(Some),
        None => Ok(None),
    }
}

/// The current name of a CSM (names are directory data, not part of a customer's history).
pub async fn csm_name(pool: &PgPool, csm_id: Uuid) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT name FROM coverage_csms WHERE csm_id = $1")
        .bind(csm_id)
        .fetch_optional(pool)
        .await
        .map_err(unavailable)
}

/// One projector against the store.
#[derive(SimpleObject, Debug, Clone)]
pub struct ProjectionStatus {
    pub projector: String,
    /// The highest global position applied.
    pub last_global_position: i64,
    pub events_applied: i64,
    pub store_events: i64,
    pub store_head_position: i64,
    /// Events in the store not yet applied.
    pub lag_events: i64,
    /// Age in seconds of the oldest stored event this projector has not applied (0 when caught up).
    pub lag_seconds: f64,
    /// Deliveries dead-lettered by this projector's queues and not replayed yet.
    pub dead_lettered: i64,
    /// Streams this projector stopped at, behind a dead-lettered event, oldest first.
    pub blocked_streams: Vec<BlockedStream>,
    pub rebuild: Option<RebuildProgress>,
}

/// A customer (or other stream) whose events a projector stopped applying: the event it waits
/// at was dead-lettered. Later events of the stream wait behind it, to keep their order; once
/// the cause is fixed, `projection-service dlq replay` applies them.
#[derive(SimpleObject, Debug, Clone)]
pub struct BlockedStream {
    pub stream_type: String,
    pub stream_id: String,
    /// The sequence the projector waits at.
    pub sequence: i64,
    pub event_type: String,
    /// Seconds since that event was recorded.
    pub age_seconds: f64,
    pub dead_lettered_at: DateTime<Utc>,
    pub dead_letters: i64,
}

/// The latest rebuild of a projection.
#[derive(SimpleObject, Debug, Clone)]
pub struct RebuildProgress {
    /// running, switched (live reads moved to it), snapshot (a named historical snapshot) or failed.
    pub state: String,
    pub events_done: i64,
    pub events_total: i64,
    pub started_at: DateTime<Utc>,
}

#[Object]
impl AuditQuery {
    /// The read models as a named snapshot holds them (built by `projection-service rebuild
    /// --known-at <instant> --name <name>`): the same reports, as the system knew them then.
    async fn snapshot(&self, ctx: &Context<'_>, name: String) -> Result<crate::schema::ReadQuery> {
        crate::access::portfolio(ctx)?;
        let pool = ctx.data::<Snapshots>()?.pool(ctx.data::<PgPool>()?, &name).await?;
        Ok(crate::schema::ReadQuery::of_snapshot(name, pool))
    }

    /// The named snapshots that exist.
    async fn projection_snapshots(&self, ctx: &Context<'_>) -> Result<Vec<ProjectionSnapshot>> {
        crate::access::portfolio(ctx)?;
        let rows = events::service::read_models::snapshots(ctx.data::<PgPool>()?)
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|(name, known_at, events)| ProjectionSnapshot { name, known_at, events })
            .collect())
    }

    /// Each projector's position, lag and dead letters, and its latest rebuild. Not for partners.
    async fn projection_status(&self, ctx: &Context<'_>) -> Result<Vec<ProjectionStatus>> {
        crate::access::portfolio(ctx)?;
        let statuses =
            events::service::read_models::projector_status(ctx.data::<PgPool>()?, events::topology::PROJECTORS)
                .await
                .map_err(unavailable)?;
        let blocked = events::service::read_models::blocked_streams(ctx.data::<PgPool>()?)
            .await
            .map_err(unavailable)?;
        let now = Utc::now();
        Ok(statuses
            .into_iter()
            .map(|s| ProjectionStatus {
                blocked_streams: blocked
                    .iter()
                    .filter(|b| b.projector == s.projector)
                    .map(|b| BlockedStream {
                        stream_type: b.stream_type.clone(),
                        stream_id: b.stream_id.clone(),
                        sequence: b.sequence,
                        event_type: b.event_type.clone(),
                        age_seconds: ((now - b.recorded_at).num_milliseconds() as f64 / 1000.0).max(0.0),
                        dead_lettered_at: b.dead_lettered_at,
                        dead_letters: b.dead_letters,
                    })
                    .collect(),
                projector: s.projector,
                last_global_position: s.last_global_position,
                events_applied: s.events_applied,
                store_events: s.store_events,
                store_head_position: s.store_head_position,
                lag_events: s.lag_events,
                lag_seconds: (s.lag_seconds * 1000.0).round() / 1000.0,
                dead_lettered: s.dead_lettered,
                rebuild: match (s.rebuild_state, s.rebuild_started_at) {
                    (Some(state), Some(started_at)) => Some(RebuildProgress {
                        state,
                        events_done: s.rebuild_events_done.unwrap_or(0),
                        events_total: s.rebuild_events_total.unwrap_or(0),
                        started_at,
                    }),
                    _ => None,
                },
            })
            .collect())
    }

    /// The customer as the system knew it at `knownAt`: its stream folded up to the events
    /// recorded by then (profile, CSM, partners, stakeholders, health, open tasks, and coverage on
    /// that day from what was known).
    #[graphql(complexity = "crate::replays::REPLAY_COST + child_complexity")]
    async fn customer_as_of(
        &self,
        ctx: &Context<'_>,
        customer_id: Uuid,
        known_at: DateTime<Utc>,
    ) -> Result<crate::as_of::CustomerAsOf> {
        let known = known(ctx, customer_id, known_at).await?;
        let name = csm_name(ctx.data::<PgPool>()?, known.csm_id).await?;
        let rules = crate::rules::effective(ctx, None).await?;
        let definitions = events::service::read_models::custom_field_definitions(ctx.data::<PgPool>()?, Some(known_at))
            .await
            .map_err(unavailable)?;
        let mut view = known.view(name, &rules);
        view.custom_fields =
            crate::custom_fields::visible_values(&definitions, &known.custom_fields, crate::custom_fields::role(ctx)?);
        Ok(view)
    }

    /// Every event of a customer's stream, oldest first, upcast to the current versions (the
    /// stored payload and version alongside), with full metadata and the hash chain. Auditors
    /// only; each call is logged.
    #[allow(clippy::too_many_arguments)]
    async fn customer_history(
        &self,
        ctx: &Context<'_>,
        customer_id: Uuid,
        #[graphql(desc = "The first sequence (position in the stream) included.")] from_position: Option<i64>,
        #[graphql(desc = "Only the events the store had recorded by this instant.")] to_known_at: Option<DateTime<Utc>>,
        event_types: Option<Vec<String>>,
        #[graphql(default = 100)] first: i32,
        after: Option<String>,
    ) -> Result<Connection<String, HistoryEvent, EmptyFields, EmptyFields>> {
        let filter = HistoryFilter {
            from_position,
            to_known_at,
            event_types,
        };
        audited(
            ctx,
            "history",
            Some(customer_id),
            json!({"filter": filter, "first": first, "after": after}),
        )
        .await?;
        let after = match after {
            None => None,
            Some(cursor) => {
                Some(history::decode_cursor(&cursor).ok_or_else(|| coded_error("BAD_USER_INPUT", "unknown cursor"))?)
            }
        };
        let hidden = crate::custom_fields::in_force(ctx)
            .await?
            .hidden_keys(crate::custom_fields::role(ctx)?);
        history::page(
            ctx.data::<PgPool>()?,
            customer_id,
            &filter,
            first.max(1) as usize,
            after,
            &hidden,
        )
        .await
        .map_err(unavailable)
    }

    /// Recomputes a customer's hash chain from the stored text and reports the first broken link.
    #[graphql(complexity = "crate::replays::REPLAY_COST + child_complexity")]
    async fn verify_customer_history(&self, ctx: &Context<'_>, customer_id: Uuid) -> Result<HistoryVerification> {
        audited(ctx, "verify", Some(customer_id), json!({})).await?;
        let caller = crate::access::access(ctx)?.principal.user_id.clone();
        let _place = replay_place(ctx, &caller).await?;
        let verification = chain::verify_stream(
            ctx.data::<PgPool>()?,
            history::CUSTOMER_STREAM,
            &customer_id.to_string(),
        )
        .await
        .map_err(unavailable)?;
        if verification.events == 0 && verification.head_sequence.is_none() {
            return Err(coded_error("NOT_FOUND", format!("no customer {customer_id}")));
        }
        Ok(HistoryVerification {
            customer_id,
            events: verification.events,
            head_sequence: verification.head_sequence,
            intact: verification.broken.is_none(),
            broken_at_sequence: verification.broken.map(|broken| broken.sequence),
            reason: verification.broken.map(|broken| {
                serde_json::to_value(broken.reason)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_owned))
                    .unwrap_or_default()
            }),
        })
    }

    /// The store's sealed digests, in position order: export them, and `command-service verify
    /// --digests <file>` proves later that those ranges are unchanged.
    async fn store_digests(&self, ctx: &Context<'_>) -> Result<Vec<StoreDigest>> {
        audited(ctx, "digests", None, json!({})).await?;
        Ok(chain::digests(ctx.data::<PgPool>()?)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|digest| StoreDigest {
                range_start: digest.range_start,
                range_end: digest.range_end,
                events: digest.events,
                root: digest.root.0,
            })
            .collect())
    }
}
