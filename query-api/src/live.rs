//! GraphQL subscriptions: what the projectors commit, pushed to the screens that show it.
//!
//! The projection service sends a PostgreSQL notification inside each transaction that changes a
//! read model (`events::service::changes`), so a notification arrives only once the change is
//! visible to a query. One listener per query API process fans them out to every subscription
//! through a broadcast channel; each subscription filters by what its caller may see. The
//! WebSocket speaks `graphql-transport-ws` (and the older `graphql-ws`); the caller's bearer
//! token travels in `connection_init` and is checked like a request's.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Enum, Result, SimpleObject, Subscription};
use events::service::changes::{Change, CHANNEL};
use futures_util::stream::{Stream, StreamExt};
use sqlx::PgPool;
use tokio::sync::{broadcast, watch, Semaphore};
use uuid::Uuid;

use crate::access::{access, Access};
use crate::schema::coded_error;

/// Notifications a slow subscriber may fall behind by before it skips to the newest (it is told
/// nothing is lost: every notification only says "read again").
const BACKLOG: usize = 4_096;
/// Subscriptions one WebSocket may hold at once.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 16;
/// WebSocket connections one query API process holds at once.
pub const MAX_CONNECTIONS: usize = 2_000;
/// Largest WebSocket message accepted (a subscription document with its variables).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// How long a new WebSocket may take to send `connection_init`.
pub const INIT_WAIT: Duration = Duration::from_secs(10);
/// How often the projector lag is measured while someone watches it.
const LAG_INTERVAL: Duration = Duration::from_secs(1);

/// The committed read-model changes of this process, as they arrive.
#[derive(Clone)]
pub struct Changes {
    sender: broadcast::Sender<Arc<Change>>,
    lag: watch::Receiver<Vec<ProjectorLag>>,
    lag_watchers: Arc<LagWatchers>,
    /// Open WebSocket connections (`MAX_CONNECTIONS` permits).
    pub connections: Arc<Semaphore>,
}

impl Changes {
    /// Starts listening on `database_url` (a connection of its own, reconnected when lost) and
    /// measuring projector lag for whoever watches it.
    pub fn listen(database_url: String, pool: PgPool) -> Self {
        let (sender, _) = broadcast::channel(BACKLOG);
        let (lag_sender, lag) = watch::channel(Vec::new());
        let lag_watchers = Arc::new(LagWatchers::default());
        tokio::spawn(listen(database_url, sender.clone()));
        tokio::spawn(measure_lag(pool, lag_sender, sender.subscribe(), lag_watchers.clone()));
        Changes {
            sender,
            lag,
            lag_watchers,
            connections: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.sender.subscribe()
    }
}

async fn listen(database_url: String, sender: broadcast::Sender<Arc<Change>>) {
    let mut delay = Duration::from_millis(200);
    loop {
        let listener = async {
            let mut listener = sqlx::postgres::PgListener::connect(&database_url).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listener.await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "listening for read-model changes failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        delay = Duration::from_millis(200);
        tracing::info!("listening for read-model changes");
        loop {
            // `recv` reconnects by itself; what was sent while it was away is not replayed, so
            // clients read again whenever they (re)subscribe.
            match listener.recv().await {
                Ok(notification) => match serde_json::from_str::<Change>(notification.payload()) {
                    Ok(change) => {
                        sender.send(Arc::new(change)).ok();
                    }
                    Err(error) => tracing::warn!(%error, "an unreadable read-model change was ignored"),
                },
                Err(error) => {
                    tracing::warn!(%error, "the read-model change listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}

/// The subscriptions watching projector lag: measured only while there is one.
#[derive(Default)]
struct LagWatchers {
    count: std::sync::atomic::AtomicUsize,
    first: tokio::sync::Notify,
}

/// One lag subscription, counted while its stream lives.
struct LagWatch(Arc<LagWatchers>);

impl LagWatch {
    fn new(watchers: &Arc<LagWatchers>) -> Self {
        watchers.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        watchers.first.notify_one();
        LagWatch(watchers.clone())
    }
}

impl Drop for LagWatch {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Measures every projector's lag once a second while a subscription watches it, and after
/// a quiet spell only when something changed.
async fn measure_lag(
    pool: PgPool,
    lag: watch::Sender<Vec<ProjectorLag>>,
    mut changes: broadcast::Receiver<Arc<Change>>,
    watchers: Arc<LagWatchers>,
) {
    loop {
        if watchers.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            watchers.first.notified().await;
            continue;
        }
        match events::service::read_models::projector_status(&pool, events::topology::PROJECTORS).await {
            Ok(statuses) => {
                lag.send_replace(
                    statuses
                        .into_iter()
                        .map(|s| ProjectorLag {
                            projector: s.projector,
                            last_global_position: s.last_global_position,
                            store_head_position: s.store_head_position,
                            lag_events: s.lag_events,
                            lag_seconds: (s.lag_seconds * 1000.0).round() / 1000.0,
                            dead_lettered: s.dead_lettered,
                        })
                        .collect(),
                );
            }
            Err(error) => tracing::warn!(%error, "measuring projector lag failed"),
        }
        tokio::time::sleep(LAG_INTERVAL).await;
        // Nothing committed since: the lag in seconds still grows while events wait, so measure
        // again at least every 5 s.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match changes.recv().await {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        })
        .await;
        while changes.try_recv().is_ok() {}
    }
}

/// A customer's read models changed: read what the screen shows of it again.
#[derive(SimpleObject, Debug, Clone)]
pub struct ReadModelChange {
    pub customer_id: Uuid,
    /// The projector that committed the change.
    pub projector: String,
    /// The event it applied.
    pub event_type: String,
    pub global_position: i64,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AlertChangeKind {
    Raised,
    Acknowledged,
}

/// An alert was raised or acknowledged.
#[derive(SimpleObject, Debug, Clone)]
pub struct AlertChange {
    pub alert_id: Uuid,
    pub customer_id: Uuid,
    pub change: AlertChangeKind,
}

/// Where one projector stands against the store.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct ProjectorLag {
    pub projector: String,
    pub last_global_position: i64,
    pub store_head_position: i64,
    pub lag_events: i64,
    pub lag_seconds: f64,
    pub dead_lettered: i64,
}

#[derive(Default)]
pub struct SubscriptionRoot;

/// Held by a subscription's stream: a connection's share of [`MAX_SUBSCRIPTIONS_PER_CONNECTION`].
pub struct SubscriptionSlots(pub Arc<Semaphore>);

impl Default for SubscriptionSlots {
    fn default() -> Self {
        SubscriptionSlots(Arc::new(Semaphore::new(MAX_SUBSCRIPTIONS_PER_CONNECTION)))
    }
}

fn slot(ctx: &Context<'_>) -> Result<tokio::sync::OwnedSemaphorePermit> {
    let slots = ctx
        .data::<SubscriptionSlots>()
        .map_err(|_| coded_error("UNAUTHENTICATED", "subscribe over the WebSocket at /graphql/ws"))?;
    slots.0.clone().try_acquire_owned().map_err(|_| {
        coded_error(
            "TOO_MANY_SUBSCRIPTIONS",
            format!("a connection holds at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions"),
        )
    })
}

fn changes<'a>(ctx: &'a Context<'_>) -> Result<&'a Changes> {
    ctx.data::<Changes>()
        .map_err(|_| coded_error("UNAVAILABLE", "live changes are not served here"))
}

/// Whether the caller may see `customer_id` now: a partner's customers are read again for a
/// customer outside the list resolved at sign-in (it may have been assigned since).
async fn sees(pool: &PgPool, access: &Access, customer_id: Uuid) -> bool {
    if access.sees(customer_id) {
        return true;
    }
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM customer_partners WHERE partner_id = $1 AND customer_id = $2)",
    )
    .bind(access.principal.partner_id)
    .bind(customer_id)
    .fetch_one(pool)
    .await
    .unwrap_or(false)
}

/// The changes of `receiver` as a stream, skipping ahead when it lags.
fn received(receiver: broadcast::Receiver<Arc<Change>>) -> impl Stream<Item = Arc<Change>> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(change) => return Some((change, receiver)),
                Err(broadcast::error::RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, "a subscription fell behind and skipped changes");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// The customer a read-model change is about, when it is a customer's stream.
fn customer_of(change: &Change) -> Option<ReadModelChange> {
    match change {
        Change::Applied {
            projector,
            stream_type,
            stream_id,
            event_type,
            global_position,
        } if stream_type == events::customer::CustomerEvent::STREAM_TYPE => Some(ReadModelChange {
            customer_id: stream_id.parse().ok()?,
            projector: projector.clone(),
            event_type: event_type.clone(),
            global_position: *global_position,
        }),
        _ => None,
    }
}

/// The changes the caller may see, as `report` turns them into what a subscription sends: it
/// answers the customer a change is about and the item, or `None` to pass it by.
fn visible_changes<T, F, Fut>(ctx: &Context<'_>, report: F) -> Result<impl Stream<Item = T> + use<T, F, Fut>>
where
    T: Send + 'static,
    F: Fn(Arc<Change>, PgPool) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<(Uuid, T)>> + Send + 'static,
{
    let access = access(ctx)?.clone();
    let pool = ctx.data::<PgPool>()?.clone();
    let permit = slot(ctx)?;
    Ok(received(changes(ctx)?.subscribe()).filter_map(move |change| {
        let _held = &permit;
        let (access, pool) = (access.clone(), pool.clone());
        let reported = report(change, pool.clone());
        async move {
            let (customer_id, item) = reported.await?;
            sees(&pool, &access, customer_id).await.then_some(item)
        }
    }))
}

#[Subscription]
impl SubscriptionRoot {
    /// Each committed change to one customer's read models (profile, coverage, engagement,
    /// health, tasks, timeline). A change says what to read again; it carries no figures.
    async fn customer_changed(
        &self,
        ctx: &Context<'_>,
        customer_id: Uuid,
    ) -> Result<impl Stream<Item = ReadModelChange>> {
        crate::access::customer(ctx, customer_id)?;
        visible_changes(ctx, move |change, _| {
            let change = customer_of(&change).filter(|change| change.customer_id == customer_id);
            async move { change.map(|change| (change.customer_id, change)) }
        })
    }

    /// Each committed change to any customer the caller may see: what a portfolio screen
    /// listens to.
    async fn portfolio_changed(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = ReadModelChange>> {
        visible_changes(ctx, |change, _| {
            let change = customer_of(&change);
            async move { change.map(|change| (change.customer_id, change)) }
        })
    }

    /// Alerts raised by the checker or acknowledged by a user, of customers the caller may see.
    async fn alert_changed(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = AlertChange>> {
        visible_changes(ctx, |change, pool| async move {
            let change = match change.as_ref() {
                Change::AlertRaised { alert_id, customer_id } => AlertChange {
                    alert_id: *alert_id,
                    customer_id: *customer_id,
                    change: AlertChangeKind::Raised,
                },
                // The alerts table is the customers projector's: its commit is the one that
                // makes the acknowledgement visible.
                Change::Applied {
                    projector,
                    stream_type,
                    stream_id,
                    ..
                } if stream_type == events::alert::AlertEvent::STREAM_TYPE && projector == "customers" => {
                    let alert_id: Uuid = stream_id.parse().ok()?;
                    let customer_id: Uuid = sqlx::query_scalar("SELECT customer_id FROM alerts WHERE alert_id = $1")
                        .bind(alert_id)
                        .fetch_optional(&pool)
                        .await
                        .ok()
                        .flatten()?;
                    AlertChange {
                        alert_id,
                        customer_id,
                        change: AlertChangeKind::Acknowledged,
                    }
                }
                _ => return None,
            };
            Some((change.customer_id, change))
        })
    }

    /// Every projector's lag behind the store: now, then about once a second while events are
    /// being applied (at least every 5 s). Not for partners.
    async fn projector_lag(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = Vec<ProjectorLag>>> {
        crate::access::portfolio(ctx)?;
        let permit = slot(ctx)?;
        let changes = changes(ctx)?;
        let mut lag = changes.lag.clone();
        lag.mark_changed();
        let watch = LagWatch::new(&changes.lag_watchers);
        Ok(
            futures_util::stream::unfold((lag, permit, watch), |(mut lag, permit, watch)| async move {
                lag.changed().await.ok()?;
                let now = lag.borrow_and_update().clone();
                Some((now, (lag, permit, watch)))
            })
            .filter(|lag| std::future::ready(!lag.is_empty())),
        )
    }
}
