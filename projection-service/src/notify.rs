//! Notifications (docs/NOTIFICATIONS.md): alerts and events reach people and systems.
//!
//! - **Intake.** Alerts are read from the alerts queue (the checker publishes them from its
//!   outbox) and events from the webhook events queue, which the intake binds to just the event
//!   types live webhooks subscribe to: never from the command path. Each message is recorded
//!   once in `notification_inbox`, with one delivery per recipient and channel, in the transaction that precedes its ack; a redelivered
//!   message finds itself recorded and adds nothing, so each recipient is told once.
//! - **Delivery.** Due deliveries are claimed with a lease (`FOR UPDATE SKIP LOCKED`, so
//!   replicas share them), sent, and marked delivered; a failure is retried with exponential
//!   backoff up to a limit and every attempt is logged. A process that dies mid-send leaves the
//!   lease to expire and the delivery is sent again: at least once, with the delivery id in every
//!   message so a receiver can drop a duplicate.
//! - **Channels.** E-mail over SMTP (plain text and HTML), Slack `chat.postMessage` with Block
//!   Kit and an Acknowledge button, and webhooks: JSON bodies signed with HMAC-SHA256.
//! - **Digest.** Deliveries of users who asked for a daily digest wait for the digest hour and
//!   go out as one e-mail per user.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use events::service::egress::EgressPolicy;
use events::topology::{Topology, ALL_EVENTS};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueBindOptions};
use lapin::types::{FieldTable, ShortString};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

#[derive(clap::Args, Debug, Clone)]
pub struct NotificationSettings {
    /// Run intake and delivery in this process.
    #[arg(long, env = "CSTRACK_NOTIFICATIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub notifications: bool,
    /// SMTP server for e-mail; e-mail is off without it.
    #[arg(long, env = "CSTRACK_SMTP_HOST")]
    pub smtp_host: Option<String>,
    #[arg(long, env = "CSTRACK_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    /// none, starttls or tls.
    #[arg(long, env = "CSTRACK_SMTP_SECURITY", default_value = "starttls")]
    pub smtp_security: String,
    #[arg(long, env = "CSTRACK_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    #[arg(long, env = "CSTRACK_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    #[arg(long, env = "CSTRACK_SMTP_FROM", default_value = "cstrack <cstrack@localhost>")]
    pub smtp_from: String,
    /// Slack bot token (xoxb-...); Slack is off without it.
    #[arg(long, env = "CSTRACK_SLACK_BOT_TOKEN", hide_env_values = true)]
    pub slack_bot_token: Option<String>,
    #[arg(long, env = "CSTRACK_SLACK_API_URL", default_value = "https://slack.com/api")]
    pub slack_api_url: String,
    /// Where links in messages point (the query API's address).
    #[arg(long, env = "CSTRACK_PUBLIC_URL", default_value = "http://127.0.0.1:8082")]
    pub public_url: String,
    /// Seconds before the first retry of a failed delivery; each retry waits twice as long.
    #[arg(long, env = "CSTRACK_NOTIFY_RETRY_SECONDS", default_value_t = 30.0)]
    pub retry_seconds: f64,
    /// Attempts before a delivery is given up as failed.
    #[arg(long, env = "CSTRACK_NOTIFY_MAX_ATTEMPTS", default_value_t = 8)]
    pub max_attempts: i32,
    /// Hour of the day (UTC) the digests go out.
    #[arg(long, env = "CSTRACK_DIGEST_HOUR", default_value_t = 8)]
    pub digest_hour: u32,
    /// Seconds between two looks for due deliveries.
    #[arg(long, env = "CSTRACK_NOTIFY_POLL_SECONDS", default_value_t = 1.0)]
    pub poll_seconds: f64,
    /// Internal networks and host names webhooks may call (comma-separated, `10.1.0.0/16`,
    /// `hooks.corp.example`); by default only public addresses.
    #[arg(long, env = "CSTRACK_WEBHOOK_ALLOW", default_value = "")]
    pub webhook_allow: EgressPolicy,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            notifications: true,
            smtp_host: None,
            smtp_port: 587,
            smtp_security: "starttls".into(),
            smtp_username: None,
            smtp_password: None,
            smtp_from: "cstrack <cstrack@localhost>".into(),
            slack_bot_token: None,
            slack_api_url: "https://slack.com/api".into(),
            public_url: "http://127.0.0.1:8082".into(),
            retry_seconds: 30.0,
            max_attempts: 8,
            digest_hour: 8,
            poll_seconds: 1.0,
            webhook_allow: EgressPolicy::default(),
        }
    }
}

/// Seconds a claimed delivery is kept from other senders.
const LEASE_SECONDS: f64 = 60.0;
/// Deliveries claimed at a time.
const CLAIM: i64 = 50;
/// A webhook or Slack call that takes longer fails.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a subscription's kinds (`alert.*`, `alert.health_red`, `event.*`,
/// `event.ActivityLogged`) take `kind` (`alert.health_red`, `event.ActivityLogged`).
pub fn subscribed(kinds: &[String], kind: &str) -> bool {
    let family = kind.split('.').next().unwrap_or_default();
    kinds
        .iter()
        .any(|wanted| wanted == kind || *wanted == format!("{family}.*"))
}

/// The signature header of a webhook body: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>" keyed by the webhook's secret>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Records one message and its deliveries, unless it was recorded before. Returns the number
/// of deliveries added.
pub async fn intake(pool: &PgPool, message_id: &str, kind: &str, payload: &Value) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let fresh = sqlx::query("INSERT INTO notification_inbox (message_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(message_id)
        .bind(kind)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    if !fresh {
        return Ok(0);
    }
    let mut deliveries: Vec<(&'static str, String, &'static str)> = Vec::new();
    let webhooks: Vec<(Uuid, Vec<String>)> =
        sqlx::query_as("SELECT webhook_id, kinds FROM webhooks WHERE removed_at IS NULL")
            .fetch_all(&mut *tx)
            .await?;
    for (webhook_id, kinds) in webhooks {
        if subscribed(&kinds, kind) {
            deliveries.push(("webhook", webhook_id.to_string(), "immediate"));
        }
    }
    if let Some(alert_kind) = kind.strip_prefix("alert.") {
        // The CSM of the customer, and the managers of the CSM's team (or of every team).
        let csm_id: Option<Uuid> = payload["csm_id"].as_str().and_then(|id| id.parse().ok());
        let people: Vec<(String, Vec<String>, String)> = sqlx::query_as(
            "SELECT user_id, channels, mode FROM notification_preferences p
              WHERE (cardinality(kinds) = 0 OR $2 = ANY (kinds))
                AND (csm_id = $1
                     OR (role IN ('manager', 'admin') AND (team IS NULL
                         OR team = (SELECT team FROM csm_directory WHERE csm_directory.csm_id = $1))))",
        )
        .bind(csm_id)
        .bind(alert_kind)
        .fetch_all(&mut *tx)
        .await?;
        for (user_id, channels, mode) in people {
            let mode = if mode == "digest" { "digest" } else { "immediate" };
            for channel in channels {
                match channel.as_str() {
                    "email" => deliveries.push(("email", user_id.clone(), mode)),
                    "slack" => deliveries.push(("slack", user_id.clone(), "immediate")),
                    _ => {}
                }
            }
        }
    }
    for (channel, recipient, mode) in &deliveries {
        sqlx::query(
            "INSERT INTO notification_deliveries (delivery_id, message_id, kind, channel, recipient, mode, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(message_id)
        .bind(kind)
        .bind(channel)
        .bind(recipient)
        .bind(mode)
        .bind(payload)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(deliveries.len())
}

/// Takes alerts and events from their queues until the connection breaks.
async fn intake_session(pool: PgPool, amqp_url: String, topology: Topology) -> anyhow::Error {
    let session: anyhow::Result<()> = async {
        let connection =
            events::service::amqp::connect(&amqp_url, &format!("{}-notifications", topology.prefix())).await?;
        let channel = connection.create_channel().await?;
        events::service::amqp::declare_topology(&channel, &topology).await?;
        channel.basic_qos(64, BasicQosOptions::default()).await?;
        // Bound before consuming: a consumer on the webhook queue means its bindings are set.
        let mut subscriptions = Subscriptions::default();
        subscriptions.refresh(&pool, &channel, &topology, true).await?;
        let tag = |queue: &str| ShortString::from(format!("{queue}-{}", std::process::id()));
        let alerts = channel
            .basic_consume(
                ShortString::from(topology.alerts_queue()),
                tag(&topology.alerts_queue()),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let events = channel
            .basic_consume(
                ShortString::from(topology.webhook_events_queue()),
                tag(&topology.webhook_events_queue()),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut both = futures_util::stream::select(alerts.map(|d| (true, d)), events.map(|d| (false, d)));
        let mut refresh = tokio::time::interval(SUBSCRIPTIONS_FRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!("notifications consuming alerts and events");
        loop {
            let (is_alert, delivery) = tokio::select! {
                _ = refresh.tick() => {
                    if let Err(error) = subscriptions.refresh(&pool, &channel, &topology, false).await {
                        tracing::warn!(error = format!("{error:#}"), "reading the webhooks' subscriptions failed");
                    }
                    continue;
                }
                next = both.next() => match next {
                    Some(next) => next,
                    None => break,
                },
            };
            let delivery = delivery?;
            let taken = match serde_json::from_slice::<Value>(&delivery.data) {
                Err(error) => {
                    tracing::warn!(%error, "an unreadable notification message was dropped");
                    Ok(())
                }
                Ok(body) if is_alert => {
                    let id = body["alert_id"].as_str().unwrap_or_default().to_owned();
                    let kind = format!("alert.{}", body["kind"].as_str().unwrap_or_default());
                    intake(&pool, &id, &kind, &body).await.map(drop)
                }
                Ok(body) => {
                    let kind = format!("event.{}", body["event_type"].as_str().unwrap_or_default());
                    let id = format!(
                        "{}/{}/{}",
                        body["stream_type"].as_str().unwrap_or_default(),
                        body["stream_id"].as_str().unwrap_or_default(),
                        body["sequence"]
                    );
                    // Queued while a webhook wanted it; recorded only if one still does.
                    if subscriptions.wanted(&kind) {
                        intake(&pool, &id, &kind, &body).await.map(drop)
                    } else {
                        Ok(())
                    }
                }
            };
            match taken {
                Ok(()) => {
                    delivery.ack(BasicAckOptions::default()).await?;
                }
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "recording a notification failed; it is redelivered"
                    );
                    delivery
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..Default::default()
                        })
                        .await?;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        anyhow::bail!("the notification consumers were cancelled")
    }
    .await;
    session
        .err()
        .unwrap_or_else(|| anyhow::anyhow!("notification intake ended"))
}

/// How often the webhooks' kinds are read again and the webhook queue's bindings made to match
/// them: a new subscription takes the events published from then on, within this long.
const SUBSCRIPTIONS_FRESH: Duration = Duration::from_secs(1);

/// The routing-key patterns that bring the events `kinds` name to the webhook queue: every
/// event if one is `event.*`, else one pattern per event type named. Alert kinds need none.
pub fn event_bindings<'a>(kinds: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    let mut bindings = BTreeSet::new();
    for kind in kinds {
        match kind.strip_prefix("event.") {
            Some("*") => return BTreeSet::from([ALL_EVENTS.to_owned()]),
            Some(event_type) => {
                bindings.insert(Topology::event_type_binding(event_type));
            }
            None => {}
        }
    }
    bindings
}

/// The kinds the live webhooks subscribe to, and the bindings made for them. Events reach the
/// webhook queue only while a webhook wants them: most events concern none, and the broker then
/// copies them nowhere but to the projectors.
#[derive(Default)]
struct Subscriptions {
    kinds: Vec<Vec<String>>,
    bound: BTreeSet<String>,
}

impl Subscriptions {
    fn wanted(&self, kind: &str) -> bool {
        self.kinds.iter().any(|kinds| subscribed(kinds, kind))
    }

    /// Reads the webhooks and binds the webhook queue to exactly the events the live ones name.
    /// Bindings outlive the process, so the first pass also removes every binding a webhook ever
    /// asked for (removed webhooks stay in their table) and the every-event one, unless wanted.
    /// The wanted bindings are made on every pass, so replicas that disagree for a moment end up
    /// agreeing.
    async fn refresh(
        &mut self,
        pool: &PgPool,
        channel: &lapin::Channel,
        topology: &Topology,
        first: bool,
    ) -> anyhow::Result<()> {
        let webhooks: Vec<(Vec<String>, bool)> = sqlx::query_as("SELECT kinds, removed_at IS NULL FROM webhooks")
            .fetch_all(pool)
            .await?;
        let live: Vec<Vec<String>> = webhooks
            .iter()
            .filter(|(_, live)| *live)
            .map(|(kinds, _)| kinds.clone())
            .collect();
        let wanted = event_bindings(live.iter().flatten());
        let stale = if first {
            let mut ever = event_bindings(webhooks.iter().flat_map(|(kinds, _)| kinds));
            ever.insert(ALL_EVENTS.to_owned());
            ever
        } else {
            std::mem::take(&mut self.bound)
        };
        let queue = ShortString::from(topology.webhook_events_queue());
        let exchange = ShortString::from(topology.events_exchange());
        for binding in &wanted {
            channel
                .queue_bind(
                    queue.clone(),
                    exchange.clone(),
                    ShortString::from(binding.as_str()),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        for binding in stale.difference(&wanted) {
            channel
                .queue_unbind(
                    queue.clone(),
                    exchange.clone(),
                    ShortString::from(binding.as_str()),
                    FieldTable::default(),
                )
                .await?;
        }
        self.kinds = live;
        self.bound = wanted;
        Ok(())
    }
}

/// A delivery claimed for sending.
#[derive(sqlx::FromRow, Debug)]
struct Due {
    delivery_id: Uuid,
    kind: String,
    channel: String,
    recipient: String,
    payload: Value,
    attempts: i32,
}

/// Why one attempt failed, the HTTP status if there was one, and how long the receiver asked
/// to wait (`Retry-After`, in seconds).
struct Failure {
    status: Option<u16>,
    error: String,
    retry_after: Option<f64>,
}

fn failure(error: impl std::fmt::Display) -> Failure {
    Failure {
        status: None,
        error: error.to_string(),
        retry_after: None,
    }
}

/// An error with the chain of its causes (a refused address is a cause of reqwest's error).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Resolves a webhook's host and keeps only what the egress policy allows: a name that
/// resolves inside (now, or after a change of DNS since it was registered) is refused.
struct GuardedResolver(EgressPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = policy.check(&host, 0).await?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Redirects a webhook delivery follows, each to an allowed address.
const MAX_REDIRECTS: usize = 5;

/// A refusal answered with an HTTP status, and the receiver's `Retry-After` seconds if given.
fn refused(status: u16, error: String, headers: &reqwest::header::HeaderMap) -> Failure {
    Failure {
        status: Some(status),
        error,
        retry_after: headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<f64>().ok())
            .filter(|seconds| seconds.is_finite() && *seconds >= 0.0),
    }
}

pub struct Sender {
    pool: PgPool,
    settings: NotificationSettings,
    http: reqwest::Client,
    /// Webhooks' own client: it connects only to addresses the egress policy allows, whatever
    /// a name resolves to at the moment of the call, and follows redirects only to such.
    webhooks: reqwest::Client,
    mailer: Option<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>>,
}

impl Sender {
    pub fn new(pool: PgPool, settings: NotificationSettings) -> anyhow::Result<Self> {
        let mailer = match &settings.smtp_host {
            None => None,
            Some(host) => {
                use lettre::transport::smtp::authentication::Credentials;
                let builder = match settings.smtp_security.as_str() {
                    "none" => lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(host),
                    "starttls" => lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::starttls_relay(host)?,
                    "tls" => lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::relay(host)?,
                    other => anyhow::bail!("CSTRACK_SMTP_SECURITY is none, starttls or tls, not {other:?}"),
                };
                let mut builder = builder.port(settings.smtp_port).timeout(Some(SEND_TIMEOUT));
                if let (Some(user), Some(password)) = (&settings.smtp_username, &settings.smtp_password) {
                    builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
                }
                Some(builder.build())
            }
        };
        let policy = settings.webhook_allow.clone();
        Ok(Sender {
            pool,
            http: reqwest::Client::builder()
                .timeout(SEND_TIMEOUT)
                .user_agent(concat!("cstrack/", env!("CARGO_PKG_VERSION")))
                .build()?,
            webhooks: reqwest::Client::builder()
                .timeout(SEND_TIMEOUT)
                .user_agent(concat!("cstrack/", env!("CARGO_PKG_VERSION")))
                .dns_resolver(Arc::new(GuardedResolver(policy.clone())))
                .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                    if attempt.previous().len() >= MAX_REDIRECTS {
                        return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                    }
                    let refusal = attempt.url().host_str().map(|host| policy.check_literal(host));
                    match refusal {
                        Some(Err(refusal)) => attempt.error(refusal),
                        _ => attempt.follow(),
                    }
                }))
                .build()?,
            settings,
            mailer,
        })
    }

    /// Claims the due immediate deliveries, sends each and records the outcome. Returns how
    /// many were attempted.
    pub async fn send_due(&self) -> anyhow::Result<usize> {
        let due: Vec<Due> = sqlx::query_as(
            "UPDATE notification_deliveries d SET next_attempt_at = now() + make_interval(secs => $1)
              WHERE delivery_id IN (SELECT delivery_id FROM notification_deliveries
                                     WHERE status = 'pending' AND mode = 'immediate' AND next_attempt_at <= now()
                                     ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING delivery_id, kind, channel, recipient, payload, attempts",
        )
        .bind(LEASE_SECONDS)
        .bind(CLAIM)
        .fetch_all(&self.pool)
        .await?;
        for delivery in &due {
            let started = Instant::now();
            let outcome = self.send(delivery).await;
            self.record(delivery, outcome, started.elapsed()).await?;
        }
        Ok(due.len())
    }

    async fn record(
        &self,
        delivery: &Due,
        outcome: Result<Option<u16>, Failure>,
        took: Duration,
    ) -> anyhow::Result<()> {
        let attempt = delivery.attempts + 1;
        let (succeeded, status, error, asked) = match &outcome {
            Ok(status) => (true, *status, None, None),
            Err(failure) => (false, failure.status, Some(failure.error.clone()), failure.retry_after),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO notification_attempts (delivery_id, attempt, succeeded, status_code, error, duration_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(delivery.delivery_id)
        .bind(attempt)
        .bind(succeeded)
        .bind(status.map(i32::from))
        .bind(&error)
        .bind(took.as_secs_f64() * 1000.0)
        .execute(&mut *tx)
        .await?;
        if succeeded {
            sqlx::query(
                "UPDATE notification_deliveries SET status = 'delivered', attempts = $2, delivered_at = now(), last_error = NULL
                  WHERE delivery_id = $1",
            )
            .bind(delivery.delivery_id)
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
        } else {
            let gave_up = attempt >= self.settings.max_attempts;
            // The backoff, or longer when the receiver asked for it (Slack's and webhooks' 429).
            let wait = (self.settings.retry_seconds * 2f64.powi(attempt - 1)).max(asked.unwrap_or(0.0).min(3600.0));
            sqlx::query(
                "UPDATE notification_deliveries
                    SET status = CASE WHEN $3 THEN 'failed' ELSE 'pending' END, attempts = $2, last_error = $4,
                        next_attempt_at = now() + make_interval(secs => $5)
                  WHERE delivery_id = $1",
            )
            .bind(delivery.delivery_id)
            .bind(attempt)
            .bind(gave_up)
            .bind(&error)
            .bind(wait)
            .execute(&mut *tx)
            .await?;
            tracing::warn!(delivery = %delivery.delivery_id, channel = %delivery.channel, attempt, gave_up,
                error = error.as_deref().unwrap_or_default(), "a notification was not delivered");
        }
        tx.commit().await?;
        Ok(())
    }

    async fn send(&self, delivery: &Due) -> Result<Option<u16>, Failure> {
        match delivery.channel.as_str() {
            "webhook" => self.send_webhook(delivery).await.map(Some),
            "slack" => self.send_slack(delivery).await.map(Some),
            "email" => {
                let (subject, text, html) = email_of(&delivery.kind, &delivery.payload, &self.settings.public_url);
                self.send_email(&delivery.recipient, &subject, text, html)
                    .await
                    .map(|()| None)
            }
            other => Err(failure(format!("unknown channel {other}"))),
        }
    }

    async fn send_webhook(&self, delivery: &Due) -> Result<u16, Failure> {
        let hook: Option<(String, String)> =
            sqlx::query_as("SELECT url, secret FROM webhooks WHERE webhook_id::text = $1 AND removed_at IS NULL")
                .bind(&delivery.recipient)
                .fetch_optional(&self.pool)
                .await
                .map_err(failure)?;
        let Some((url, secret)) = hook else {
            return Err(failure("the webhook was removed"));
        };
        // An address literal is not resolved, so the resolver cannot judge it: it is checked here.
        let host = reqwest::Url::parse(&url)
            .map_err(failure)?
            .host_str()
            .map(str::to_owned)
            .unwrap_or_default();
        self.settings.webhook_allow.check_literal(&host).map_err(failure)?;
        let body = serde_json::to_vec(&json!({
            "delivery_id": delivery.delivery_id,
            "type": delivery.kind,
            "data": delivery.payload,
        }))
        .map_err(failure)?;
        let answer = self
            .webhooks
            .post(&url)
            .header("content-type", "application/json")
            .header("x-cstrack-delivery", delivery.delivery_id.to_string())
            .header("x-cstrack-event", &delivery.kind)
            .header("x-cstrack-signature", signature(&secret, Utc::now().timestamp(), &body))
            .body(body)
            .send()
            .await
            .map_err(|error| failure(with_causes(&error.without_url())))?;
        let status = answer.status().as_u16();
        if answer.status().is_success() {
            Ok(status)
        } else {
            Err(refused(
                status,
                format!("the receiver answered {status}"),
                answer.headers(),
            ))
        }
    }

    async fn send_slack(&self, delivery: &Due) -> Result<u16, Failure> {
        let token = self
            .settings
            .slack_bot_token
            .as_deref()
            .ok_or_else(|| failure("Slack is not configured (CSTRACK_SLACK_BOT_TOKEN)"))?;
        let target: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT slack_channel, slack_user_id FROM notification_preferences WHERE user_id = $1")
                .bind(&delivery.recipient)
                .fetch_optional(&self.pool)
                .await
                .map_err(failure)?;
        let channel = target
            .and_then(|(channel, user)| channel.or(user))
            .ok_or_else(|| failure("the user has no Slack channel or user id"))?;
        let message = slack_message(&channel, &delivery.kind, &delivery.payload, &self.settings.public_url);
        let answer = self
            .http
            .post(format!(
                "{}/chat.postMessage",
                self.settings.slack_api_url.trim_end_matches('/')
            ))
            .bearer_auth(token)
            .json(&message)
            .send()
            .await
            .map_err(|error| failure(error.without_url()))?;
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        // Slack answers 200 with {"ok": false, "error": ...} for most refusals, and 429 with
        // Retry-After when rate limited.
        if status == 200 && body["ok"] == true {
            Ok(status)
        } else {
            Err(refused(
                status,
                format!(
                    "Slack refused the message: {}",
                    body["error"].as_str().unwrap_or("no answer")
                ),
                &headers,
            ))
        }
    }

    async fn send_email(&self, user_id: &str, subject: &str, text: String, html: String) -> Result<(), Failure> {
        use lettre::message::{Mailbox, MultiPart};
        use lettre::AsyncTransport;
        let mailer = self
            .mailer
            .as_ref()
            .ok_or_else(|| failure("e-mail is not configured (CSTRACK_SMTP_HOST)"))?;
        let address: Option<Option<String>> =
            sqlx::query_scalar("SELECT email FROM notification_preferences WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(failure)?;
        let address = address
            .flatten()
            .ok_or_else(|| failure("the user has no e-mail address"))?;
        let to: Mailbox = address.parse().map_err(failure)?;
        let from: Mailbox = self.settings.smtp_from.parse().map_err(failure)?;
        let message = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(failure)?;
        mailer.send(message).await.map_err(failure)?;
        Ok(())
    }

    /// Sends each user's waiting digest deliveries as one e-mail, whatever the hour. Returns the
    /// e-mails sent.
    pub async fn send_digests(&self) -> anyhow::Result<usize> {
        self.digests(None).await
    }

    /// Sends the digests of the users for whom, at `now`, the digest hour has come in their own
    /// time zone and no digest went out yet on their day.
    pub async fn send_digests_due(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        self.digests(Some(now)).await
    }

    async fn digests(&self, due_at: Option<DateTime<Utc>>) -> anyhow::Result<usize> {
        let users: Vec<(String, Option<chrono::NaiveDate>)> = sqlx::query_as(
            "SELECT recipient, local_date FROM (
                SELECT DISTINCT d.recipient,
                       ($1::timestamptz AT TIME ZONE coalesce(p.time_zone, 'UTC'))::date AS local_date,
                       extract(hour FROM $1::timestamptz AT TIME ZONE coalesce(p.time_zone, 'UTC')) AS local_hour
                  FROM notification_deliveries d LEFT JOIN notification_preferences p ON p.user_id = d.recipient
                 WHERE d.status = 'pending' AND d.mode = 'digest' AND d.channel = 'email') due
              WHERE $1::timestamptz IS NULL
                 OR (local_hour >= $2 AND NOT EXISTS (SELECT 1 FROM notification_digests g
                                                       WHERE g.user_id = due.recipient AND g.local_date = due.local_date))
              ORDER BY recipient",
        )
        .bind(due_at)
        .bind(self.settings.digest_hour as i32)
        .fetch_all(&self.pool)
        .await?;
        let mut sent = 0;
        for (user, local_date) in users {
            let mut tx = self.pool.begin().await?;
            let items: Vec<(Uuid, String, Value, i32)> = sqlx::query_as(
                "SELECT delivery_id, kind, payload, attempts FROM notification_deliveries
                  WHERE status = 'pending' AND mode = 'digest' AND channel = 'email' AND recipient = $1
                  ORDER BY created_at FOR UPDATE SKIP LOCKED",
            )
            .bind(&user)
            .fetch_all(&mut *tx)
            .await?;
            if items.is_empty() {
                continue;
            }
            let (subject, text, html) = digest_of(&items, &self.settings.public_url);
            let started = Instant::now();
            let outcome = self.send_email(&user, &subject, text, html).await;
            let took = started.elapsed().as_secs_f64() * 1000.0;
            for (delivery_id, _, _, attempts) in &items {
                sqlx::query(
                    "INSERT INTO notification_attempts (delivery_id, attempt, succeeded, error, duration_ms)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(delivery_id)
                .bind(attempts + 1)
                .bind(outcome.is_ok())
                .bind(outcome.as_ref().err().map(|failure| failure.error.clone()))
                .bind(took)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE notification_deliveries SET attempts = attempts + 1,
                            status = CASE WHEN $2 THEN 'delivered' ELSE status END,
                            delivered_at = CASE WHEN $2 THEN now() END, last_error = $3
                      WHERE delivery_id = $1",
                )
                .bind(delivery_id)
                .bind(outcome.is_ok())
                .bind(outcome.as_ref().err().map(|failure| failure.error.clone()))
                .execute(&mut *tx)
                .await?;
            }
            if let (Some(local_date), true) = (local_date, outcome.is_ok()) {
                sqlx::query(
                    "INSERT INTO notification_digests (user_id, local_date) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(&user)
                .bind(local_date)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            if outcome.is_ok() {
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Sends due deliveries every poll, and each user's digest once a day at the digest hour of
    /// their time zone.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        let poll = Duration::from_secs_f64(self.settings.poll_seconds.max(0.05));
        // Digests are looked for once a minute, not every poll.
        let mut digests_checked: Option<Instant> = None;
        while !*stopped.borrow() {
            if let Err(error) = self.send_due().await {
                tracing::warn!(error = format!("{error:#}"), "sending notifications failed; retrying");
            }
            if digests_checked.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                match self.send_digests_due(Utc::now()).await {
                    Ok(sent) => {
                        digests_checked = Some(Instant::now());
                        if sent > 0 {
                            tracing::info!(sent, "daily digests sent");
                        }
                    }
                    Err(error) => tracing::warn!(error = format!("{error:#}"), "sending digests failed; retrying"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = stopped.changed() => {}
            }
        }
    }
}

/// Runs intake (supervised, reconnecting) and delivery until `stopped`.
pub async fn run(
    pool: PgPool,
    amqp_url: String,
    topology: Topology,
    settings: NotificationSettings,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let sender = Sender::new(pool.clone(), settings).context("configuring notifications")?;
    // Scoped: when this task is dropped (the service killed where it stands), the delivery loop
    // and its connections go with it instead of polling on.
    let delivery = events::service::supervise::Scoped::spawn(sender.run(stopped.clone()));
    events::service::supervise::supervise(
        "notification intake",
        stopped,
        || intake_session(pool.clone(), amqp_url.clone(), topology.clone()),
        || {},
    )
    .await;
    delivery.join().await.ok();
    Ok(())
}

fn customer_link(public_url: &str, payload: &Value) -> String {
    let base = public_url.trim_end_matches('/');
    match payload["customer_id"].as_str() {
        Some(customer) => format!("{base}/app/customers/{customer}"),
        // A reminder about no customer: the reminder queue.
        None => format!("{base}/app/reminders"),
    }
}

/// An alert's one-line text.
fn headline(kind: &str, payload: &Value) -> String {
    payload["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| kind.to_owned())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Subject, plain text and HTML of one alert's e-mail.
pub fn email_of(kind: &str, payload: &Value, public_url: &str) -> (String, String, String) {
    let line = headline(kind, payload);
    let link = customer_link(public_url, payload);
    if let Some(why) = payload["why"].as_str().filter(|_| kind.starts_with("reminder.")) {
        // A reminder says why it fired (or why its snooze ended).
        let due = payload["due_at"].as_str().unwrap_or_default();
        return (
            format!("[cstrack] {line}"),
            format!("{line}\n\nWhy: {why}\nDue: {due}\nOpen: {link}\n"),
            format!(
                "<p><strong>{}</strong></p><p>Why: {}<br>Due: {}</p><p><a href=\"{}\">Open</a></p>",
                escape(&line),
                escape(why),
                escape(due),
                escape(&link)
            ),
        );
    }
    let label = kind.trim_start_matches("alert.").replace('_', " ");
    (
        format!("[cstrack] {line}"),
        format!(
            "{line}\n\nAlert: {label}\nRaised at: {}\nOpen the customer: {link}\n",
            payload["raised_at"].as_str().unwrap_or_default()
        ),
        format!(
            "<p><strong>{}</strong></p><p>Alert: {}<br>Raised at: {}</p><p><a href=\"{}\">Open the customer</a></p>",
            escape(&line),
            escape(&label),
            escape(payload["raised_at"].as_str().unwrap_or_default()),
            escape(&link)
        ),
    )
}

/// Subject, plain text and HTML of one user's daily digest.
fn digest_of(items: &[(Uuid, String, Value, i32)], public_url: &str) -> (String, String, String) {
    let mut text = format!("{} alerts since your last digest:\n\n", items.len());
    let mut html = format!("<p>{} alerts since your last digest:</p><ul>", items.len());
    for (_, kind, payload, _) in items {
        let line = headline(kind, payload);
        let link = customer_link(public_url, payload);
        text.push_str(&format!("- {line} ({link})\n"));
        html.push_str(&format!("<li><a href=\"{}\">{}</a></li>", escape(&link), escape(&line)));
    }
    html.push_str("</ul>");
    (
        format!("[cstrack] Your daily digest: {} alerts", items.len()),
        text,
        html,
    )
}

/// A `chat.postMessage` body: the alert as Block Kit, with an Acknowledge button whose value is
/// the alert id (the interaction becomes the acknowledge command).
pub fn slack_message(channel: &str, kind: &str, payload: &Value, public_url: &str) -> Value {
    let line = headline(kind, payload);
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*", line.replace('*', ""))}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn",
            "text": format!("{} · raised {}", kind.trim_start_matches("alert.").replace('_', " "),
                            payload["raised_at"].as_str().unwrap_or_default())}]}),
    ];
    let mut actions = vec![
        json!({"type": "button", "text": {"type": "plain_text", "text": "Open customer"},
                                  "url": customer_link(public_url, payload), "action_id": "open_customer"}),
    ];
    if let (Some(reminder_id), Some(key)) = (payload["reminder_id"].as_str(), payload["occurrence_key"].as_str()) {
        // A reminder's buttons: Complete, and Snooze until tomorrow 09:00 (the user's time).
        let value = json!({"reminder_id": reminder_id, "occurrence_key": key}).to_string();
        blocks.insert(
            1,
            json!({"type": "section", "text": {"type": "mrkdwn",
                   "text": format!("Why: {}", payload["why"].as_str().unwrap_or_default().replace('*', ""))}}),
        );
        actions.insert(
            0,
            json!({"type": "button", "text": {"type": "plain_text", "text": "Snooze until tomorrow 09:00"},
                   "action_id": "snooze_reminder", "value": value}),
        );
        actions.insert(
            0,
            json!({"type": "button", "style": "primary", "text": {"type": "plain_text", "text": "Complete"},
                   "action_id": "complete_reminder", "value": value}),
        );
    } else if let Some(alert_id) = payload["alert_id"].as_str() {
        actions.insert(
            0,
            json!({"type": "button", "style": "primary", "text": {"type": "plain_text", "text": "Acknowledge"},
                   "action_id": "acknowledge", "value": alert_id}),
        );
    }
    blocks.push(json!({"type": "actions", "elements": actions}));
    json!({"channel": channel, "text": line, "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_queue_is_bound_to_the_event_types_named_or_to_every_event() {
        let kinds = |list: &[&str]| list.iter().map(|kind| kind.to_string()).collect::<Vec<_>>();
        assert_eq!(
            event_bindings(&kinds(&["alert.*", "event.ActivityLogged", "event.TaskCompleted"])),
            BTreeSet::from(["*.*.ActivityLogged".to_owned(), "*.*.TaskCompleted".to_owned()])
        );
        assert_eq!(
            event_bindings(&kinds(&["event.ActivityLogged", "event.*"])),
            BTreeSet::from(["#".to_owned()])
        );
        assert!(event_bindings(&kinds(&["alert.health_red"])).is_empty());
    }

    #[test]
    fn subscriptions_match_kinds_and_families() {
        let kinds = vec!["alert.*".to_owned(), "event.ActivityLogged".to_owned()];
        assert!(subscribed(&kinds, "alert.health_red"));
        assert!(subscribed(&kinds, "event.ActivityLogged"));
        assert!(!subscribed(&kinds, "event.TaskCreated"));
        assert!(!subscribed(&["alert.health_red".to_owned()], "alert.task_overdue"));
    }

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_and_body() {
        // HMAC-SHA256(key "secret", "1700000000.{}"), as Python's hmac module computes it.
        let expected = "b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163";
        assert_eq!(
            signature("secret", 1_700_000_000, b"{}"),
            format!("t=1700000000,v1={expected}")
        );
    }

    #[test]
    fn messages_escape_what_they_quote() {
        let payload = json!({"message": "<b>Acme</b> & co: health turned red (35)", "customer_id": "c1",
                             "alert_id": "a1", "raised_at": "2026-12-01T00:00:00Z"});
        let (subject, text, html) = email_of("alert.health_red", &payload, "http://x");
        assert_eq!(subject, "[cstrack] <b>Acme</b> & co: health turned red (35)");
        assert!(text.contains("http://x/app/customers/c1"));
        assert!(html.contains("&lt;b&gt;Acme&lt;/b&gt; &amp; co"));
        let slack = slack_message("C1", "alert.health_red", &payload, "http://x");
        assert_eq!(slack["blocks"][2]["elements"][0]["value"], "a1");
    }
}
