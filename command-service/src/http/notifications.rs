//! Notification settings and Slack (docs/NOTIFICATIONS.md): each user's preferences, the
//! webhooks subscribed to alert and event kinds with their delivery log, and Slack's inbound
//! requests (the Acknowledge button and the `/cstrack` slash command), verified with Slack's
//! signing secret.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use events::metadata::{Actor, CommandMetadata, Role, Source};
use events::service::auth::Principal;
use events::service::egress::EgressPolicy;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{CommandContext, EmptyBody, JsonBody, JsonValueOf};
use super::openapi::{Other, ADMINS, NOTIFIED};
use super::routes::{Described, Documented};
use super::{Answer, Handlers};
use crate::connectors::vendor::Secret;
use crate::store::ExecuteError;

/// The alert kinds a preference or a webhook may name (docs/DOMAIN.md section 8).
pub const ALERT_KINDS: [&str; 7] = [
    "coverage_urgent",
    "engagement_at_risk",
    "health_red",
    "task_overdue",
    "renewal_window",
    "partner_report_submitted",
    "churn_risk_high",
];
/// Oldest Slack request accepted, in seconds (Slack's own guidance).
const SLACK_MAX_AGE: i64 = 300;
/// Most webhooks.
const MAX_WEBHOOKS: i64 = 100;

#[derive(Clone)]
struct NotificationState {
    handlers: Arc<Handlers>,
    slack_signing_secret: Option<Secret>,
    webhook_allow: EgressPolicy,
}

pub fn router(
    handlers: Arc<Handlers>,
    authenticator: Arc<crate::auth::Authenticator>,
    slack_signing_secret: Option<Secret>,
    webhook_allow: EgressPolicy,
) -> Router {
    let state = NotificationState {
        handlers,
        slack_signing_secret,
        webhook_allow,
    };
    let (settings, _) = settings().finish();
    let settings = settings
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            authenticator,
            super::auth::authenticate,
        ))
        .with_state(state.clone());
    // Slack signs its requests; they carry no bearer token.
    let (slack, _) = slack().finish();
    let slack = slack
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state);
    settings.merge(slack)
}

/// The settings routes (preferences, webhooks), each described where it is served.
fn settings() -> Documented<NotificationState> {
    Documented::default()
        .other(
            Other::new(
                "GET",
                "/api/v1/notification-preferences",
                "the caller's notification preferences",
                NOTIFIED,
                200,
            ),
            own_preferences,
        )
        .other(
            Other::new(
                "PUT",
                "/api/v1/notification-preferences",
                "set the caller's notification preferences",
                NOTIFIED,
                200,
            ),
            set_own_preferences,
        )
        .other(
            Other::new(
                "PUT",
                "/api/v1/notification-preferences/{user}",
                "set another user's notification preferences",
                ADMINS,
                200,
            ),
            set_preferences,
        )
        .other(
            Other::new(
                "POST",
                "/api/v1/webhooks",
                "subscribe a URL to alerts and events (public addresses only, unless allowed); the secret is shown once",
                ADMINS,
                201,
            ),
            add_webhook,
        )
        .other(
            Other::new("GET", "/api/v1/webhooks", "the live webhooks", ADMINS, 200),
            list_webhooks,
        )
        .other(
            Other::new("DELETE", "/api/v1/webhooks/{id}", "stop a webhook", ADMINS, 200),
            remove_webhook,
        )
        .other(
            Other::new(
                "GET",
                "/api/v1/webhooks/{id}/deliveries",
                "a webhook's delivery log, every attempt",
                ADMINS,
                200,
            ),
            webhook_deliveries,
        )
        .other(
            Other::new(
                "POST",
                "/api/v1/webhooks/{id}/test",
                "send the webhook a test delivery (kind webhook.test), logged with its attempts like any other",
                ADMINS,
                202,
            ),
            test_webhook,
        )
}

/// Slack's requests, signed by Slack; they carry no bearer token.
fn slack() -> Documented<NotificationState> {
    const FORM: &str = "application/x-www-form-urlencoded";
    Documented::default()
        .other(
            Other::new(
                "POST",
                "/slack/interactions",
                "Slack's interaction payloads (signed by Slack; the Acknowledge button)",
                &[],
                200,
            )
            .taking(FORM),
            slack_interaction,
        )
        .other(
            Other::new(
                "POST",
                "/slack/commands",
                "Slack's slash command /cstrack (signed by Slack)",
                &[],
                200,
            )
            .taking(FORM),
            slack_command,
        )
}

/// Every route of this router, described.
pub fn described() -> Vec<Described> {
    let mut described = settings().finish().1;
    described.extend(slack().finish().1);
    described
}

fn unavailable(error: sqlx::Error) -> ApiError {
    ExecuteError::from_database(&error).into()
}

fn refuse_partners(context: &CommandContext) -> Result<(), ApiError> {
    if context.principal.role == Role::Partner {
        Err(ApiError::Forbidden {
            message: "partners receive no notifications; their customers' CSMs do".into(),
        })
    } else {
        Ok(())
    }
}

fn admins_only(context: &CommandContext, what: &str) -> Result<(), ApiError> {
    if context.principal.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            message: format!("only admins may {what}"),
        })
    }
}

/// A user's notification preferences.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("allOf" = [
    {"if": {"required": ["channels"], "properties": {"channels": {"contains": {"const": "email"}}}},
     "then": {"required": ["email"], "properties": {"email": {"type": "string"}}}},
    {"if": {"required": ["channels"], "properties": {"channels": {"contains": {"const": "slack"}}}},
     "then": {"anyOf": [
         {"required": ["slack_user_id"], "properties": {"slack_user_id": {"type": "string"}}},
         {"required": ["slack_channel"], "properties": {"slack_channel": {"type": "string"}}}
     ]}}
]))]
pub struct Preferences {
    /// The CSM (csm_directory id) whose customers' alerts the user gets: a CSM's own id.
    #[serde(default)]
    pub csm_id: Option<Uuid>,
    /// A manager's team; none: every team (for managers and admins).
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub team: Option<String>,
    /// Needed for e-mail notifications.
    #[serde(default)]
    #[schemars(length(max = 254), pattern(crate::domain::EMAIL))]
    pub email: Option<String>,
    /// The user's Slack member id (U...), for direct messages and to link Slack actions.
    #[serde(default)]
    #[schemars(pattern(r"^[UW][A-Z0-9]{2,23}$"))]
    pub slack_user_id: Option<String>,
    /// A channel (C...) to post to instead of direct messages.
    #[serde(default)]
    #[schemars(pattern(r"^[CGD][A-Z0-9]{2,23}$"))]
    pub slack_channel: Option<String>,
    /// Alert kinds wanted; empty or absent: every kind.
    #[serde(default)]
    #[schemars(extend("items" = {"type": "string", "enum": ALERT_KINDS}))]
    pub kinds: Vec<String>,
    /// email and/or slack (in-app alerts are always on); e-mail needs `email`, Slack a member
    /// id or a channel.
    #[serde(default)]
    #[schemars(extend("items" = {"type": "string", "enum": ["email", "slack"]}))]
    pub channels: Vec<String>,
    /// immediate (default) or digest (e-mail once a day).
    #[serde(default)]
    #[schemars(extend("enum" = ["immediate", "digest", null]))]
    pub mode: Option<String>,
    /// An IANA time zone (`Europe/Paris`); default UTC. The digest goes at the digest hour of
    /// this zone, and the web client shows times in it.
    #[serde(default)]
    #[schemars(
        length(min = 1, max = 64),
        pattern(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")
    )]
    pub time_zone: Option<String>,
}

fn slack_id(value: &str, first: &[char]) -> bool {
    value.len() >= 3
        && value.len() <= 24
        && value.starts_with(first)
        && value.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

async fn check_preferences(app: &Handlers, body: &Preferences) -> Result<(), ApiError> {
    for kind in &body.kinds {
        if !ALERT_KINDS.contains(&kind.as_str()) {
            return Err(ApiError::validation(
                "unknown_kind",
                "kinds",
                format!("{kind:?} is not an alert kind ({})", ALERT_KINDS.join(", ")),
            ));
        }
    }
    for channel in &body.channels {
        if !matches!(channel.as_str(), "email" | "slack") {
            return Err(ApiError::validation(
                "unknown_channel",
                "channels",
                format!("{channel:?} is not a channel (email, slack)"),
            ));
        }
    }
    if let Some(mode) = &body.mode {
        if !matches!(mode.as_str(), "immediate" | "digest") {
            return Err(ApiError::validation(
                "invalid_mode",
                "mode",
                "mode is immediate or digest",
            ));
        }
    }
    if let Some(email) = &body.email {
        let plausible = email.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        }) && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
        if email.len() > 254 || !plausible {
            return Err(ApiError::validation(
                "invalid_email",
                "email",
                "email is an e-mail address",
            ));
        }
    }
    if body.channels.iter().any(|c| c == "email") && body.email.is_none() {
        return Err(ApiError::validation(
            "required",
            "email",
            "e-mail notifications need an address",
        ));
    }
    if let Some(user) = &body.slack_user_id {
        if !slack_id(user, &['U', 'W']) {
            return Err(ApiError::validation(
                "invalid_slack_id",
                "slack_user_id",
                "a Slack member id is U or W then capitals and digits",
            ));
        }
    }
    if let Some(channel) = &body.slack_channel {
        if !slack_id(channel, &['C', 'G', 'D']) {
            return Err(ApiError::validation(
                "invalid_slack_id",
                "slack_channel",
                "a Slack channel id is C, G or D then capitals and digits",
            ));
        }
    }
    if body.channels.iter().any(|c| c == "slack") && body.slack_user_id.is_none() && body.slack_channel.is_none() {
        return Err(ApiError::validation(
            "required",
            "slack_user_id",
            "Slack notifications need a member id or a channel",
        ));
    }
    if body.team.as_ref().is_some_and(|team| team.chars().count() > 100) {
        return Err(ApiError::validation(
            "too_long",
            "team",
            "a team name is at most 100 characters",
        ));
    }
    if let Some(zone) = &body.time_zone {
        let known: bool = zone.len() <= 64
            && sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)")
                .bind(zone)
                .fetch_one(&app.pool)
                .await
                .map_err(unavailable)?;
        if !known {
            return Err(ApiError::validation(
                "unknown_time_zone",
                "time_zone",
                format!("{zone:?} is not a time zone name (such as Europe/Paris or America/New_York)"),
            ));
        }
    }
    if let Some(csm_id) = body.csm_id {
        // The store, not the directory read model, which may not have caught up yet.
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1 AND aggregate_id = $2)")
                .bind(events::csm::CsmEvent::STREAM_TYPE)
                .bind(csm_id.to_string())
                .fetch_one(&app.pool)
                .await
                .map_err(unavailable)?;
        if !known {
            return Err(ApiError::validation(
                "unknown_csm",
                "csm_id",
                format!("no CSM {csm_id}"),
            ));
        }
    }
    Ok(())
}

async fn store_preferences(app: &Handlers, user_id: &str, role: Role, body: Preferences) -> Answer {
    check_preferences(app, &body).await?;
    let stored = sqlx::query(
        "INSERT INTO notification_preferences (user_id, role, csm_id, team, email, slack_user_id, slack_channel, kinds, channels, mode, time_zone)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (user_id) DO UPDATE SET role = EXCLUDED.role, csm_id = EXCLUDED.csm_id, team = EXCLUDED.team,
             email = EXCLUDED.email, slack_user_id = EXCLUDED.slack_user_id, slack_channel = EXCLUDED.slack_channel,
             kinds = EXCLUDED.kinds, channels = EXCLUDED.channels, mode = EXCLUDED.mode, time_zone = EXCLUDED.time_zone,
             updated_at = now()",
    )
    .bind(user_id)
    .bind(role.as_str())
    .bind(body.csm_id)
    .bind(&body.team)
    .bind(&body.email)
    .bind(&body.slack_user_id)
    .bind(&body.slack_channel)
    .bind(&body.kinds)
    .bind(&body.channels)
    .bind(body.mode.as_deref().unwrap_or("immediate"))
    .bind(body.time_zone.as_deref().unwrap_or("UTC"))
    .execute(&app.pool)
    .await;
    match stored {
        Err(sqlx::Error::Database(error)) if error.constraint() == Some("notification_preferences_slack") => {
            return Err(ApiError::Conflict {
                code: "slack_user_taken",
                message: "another user is linked to that Slack member id".into(),
            })
        }
        other => other.map_err(unavailable)?,
    };
    Ok((StatusCode::OK, Json(preferences_of(app, user_id).await?)))
}

async fn preferences_of(app: &Handlers, user_id: &str) -> Result<Value, ApiError> {
    let row: Option<Value> = sqlx::query_scalar(
        "SELECT json_build_object('user_id', user_id, 'role', role, 'csm_id', csm_id, 'team', team, 'email', email,
                'slack_user_id', slack_user_id, 'slack_channel', slack_channel, 'kinds', kinds, 'channels', channels,
                'mode', mode, 'time_zone', time_zone, 'updated_at', updated_at)
           FROM notification_preferences WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&app.pool)
    .await
    .map_err(unavailable)?;
    Ok(row.unwrap_or_else(
        || json!({"user_id": user_id, "kinds": [], "channels": [], "mode": "immediate", "time_zone": "UTC", "updated_at": null}),
    ))
}

async fn own_preferences(State(state): State<NotificationState>, context: CommandContext) -> Answer {
    refuse_partners(&context)?;
    Ok((
        StatusCode::OK,
        Json(preferences_of(&state.handlers, &context.principal.user_id).await?),
    ))
}

async fn set_own_preferences(
    State(state): State<NotificationState>,
    context: CommandContext,
    JsonBody(body): JsonBody<Preferences>,
) -> Answer {
    refuse_partners(&context)?;
    store_preferences(
        &state.handlers,
        &context.principal.user_id,
        context.principal.role,
        body,
    )
    .await
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPreferences {
    /// The user's role (what alerts a manager or admin gets depends on it); partners are
    /// notified of nothing.
    #[schemars(extend("enum" = ["admin", "manager", "csm", "readonly", "auditor"]))]
    pub role: Role,
    #[serde(flatten)]
    pub preferences: Preferences,
}

/// An admin sets another user's preferences.
async fn set_preferences(
    State(state): State<NotificationState>,
    Path(user): Path<String>,
    context: CommandContext,
    JsonValueOf(body, _): JsonValueOf<UserPreferences>,
) -> Answer {
    admins_only(&context, "set another user's notification preferences")?;
    let nul = user
        .contains('\0')
        .then(|| "user".to_owned())
        .or_else(|| super::extract::nul_field(&body, String::new()));
    if let Some(field) = nul {
        return Err(ApiError::validation(
            "invalid_character",
            field,
            "text may not contain the NUL character (U+0000)",
        ));
    }
    if user.is_empty() || user.len() > 200 {
        return Err(ApiError::validation(
            "invalid_user",
            "user",
            "a user id is 1 to 200 characters",
        ));
    }
    let role: Role = serde_json::from_value(body["role"].clone())
        .map_err(|_| ApiError::validation("invalid_role", "role", "role is one of the six roles"))?;
    if role == Role::Partner {
        return Err(ApiError::validation(
            "invalid_role",
            "role",
            "partners receive no notifications",
        ));
    }
    let mut rest = body;
    if let Some(object) = rest.as_object_mut() {
        object.remove("role");
    }
    let preferences: Preferences = serde_json::from_value(rest)
        .map_err(|error| ApiError::validation("invalid_body", "body", error.to_string()))?;
    store_preferences(&state.handlers, &user, role, preferences).await
}

/// A webhook subscription.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddWebhook {
    /// http or https, a public address unless the operator allows otherwise.
    #[schemars(length(min = 1, max = 2000), pattern(r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/@]+"))]
    pub url: String,
    /// alert.<kind>, alert.*, event.<EventType>, event.*
    pub kinds: Vec<String>,
    #[serde(default)]
    pub description: String,
}

fn check_kind(kind: &str) -> bool {
    match kind.split_once('.') {
        Some(("alert", "*")) | Some(("event", "*")) => true,
        Some(("alert", alert)) => ALERT_KINDS.contains(&alert),
        Some(("event", event)) => {
            event.len() <= 60
                && event.starts_with(|c: char| c.is_ascii_uppercase())
                && event.chars().all(|c| c.is_ascii_alphanumeric())
        }
        _ => false,
    }
}

async fn add_webhook(
    State(state): State<NotificationState>,
    context: CommandContext,
    JsonBody(body): JsonBody<AddWebhook>,
) -> Answer {
    admins_only(&context, "manage webhooks")?;
    let url = reqwest::Url::parse(&body.url)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some() && body.url.len() <= 2000)
        .ok_or_else(|| ApiError::validation("invalid_url", "url", "url is an http or https address"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::validation(
            "invalid_url",
            "url",
            "a webhook url carries no user name or password; the signature authenticates cstrack",
        ));
    }
    let host = url.host_str().unwrap_or_default();
    state
        .webhook_allow
        .check(host, url.port_or_known_default().unwrap_or(80))
        .await
        .map_err(|refusal| ApiError::validation(refusal.code(), "url", refusal.to_string()))?;
    if body.kinds.is_empty() || body.kinds.len() > 50 {
        return Err(ApiError::validation(
            "required",
            "kinds",
            "a webhook subscribes to 1 to 50 kinds",
        ));
    }
    if let Some(kind) = body.kinds.iter().find(|kind| !check_kind(kind)) {
        return Err(ApiError::validation(
            "unknown_kind",
            "kinds",
            format!("{kind:?} is not alert.<kind>, alert.*, event.<EventType> or event.*"),
        ));
    }
    if body.description.chars().count() > 500 {
        return Err(ApiError::validation(
            "too_long",
            "description",
            "at most 500 characters",
        ));
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM webhooks WHERE removed_at IS NULL")
        .fetch_one(&state.handlers.pool)
        .await
        .map_err(unavailable)?;
    if count >= MAX_WEBHOOKS {
        return Err(ApiError::Conflict {
            code: "too_many_webhooks",
            message: format!("at most {MAX_WEBHOOKS} webhooks; remove one first"),
        });
    }
    let webhook_id = Uuid::now_v7();
    // 244 random bits from the operating system's generator.
    let secret = format!("whsec_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO webhooks (webhook_id, url, kinds, secret, description, created_by) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(webhook_id)
    .bind(url.as_str())
    .bind(&body.kinds)
    .bind(&secret)
    .bind(&body.description)
    .bind(&context.principal.user_id)
    .execute(&state.handlers.pool)
    .await
    .map_err(unavailable)?;
    Ok((
        StatusCode::CREATED,
        // The secret is shown once, here.
        Json(
            json!({"webhook_id": webhook_id, "url": url.as_str(), "kinds": body.kinds, "secret": secret,
                    "description": body.description}),
        ),
    ))
}

async fn list_webhooks(State(state): State<NotificationState>, context: CommandContext) -> Answer {
    admins_only(&context, "manage webhooks")?;
    let rows: Vec<Value> = sqlx::query_scalar(
        "SELECT json_build_object('webhook_id', webhook_id, 'url', url, 'kinds', kinds, 'description', description,
                'created_by', created_by, 'created_at', created_at)
           FROM webhooks WHERE removed_at IS NULL ORDER BY created_at",
    )
    .fetch_all(&state.handlers.pool)
    .await
    .map_err(unavailable)?;
    Ok((StatusCode::OK, Json(json!({"webhooks": rows}))))
}

fn webhook_id(id: &str) -> Result<Uuid, ApiError> {
    id.parse().map_err(|_| ApiError::NotFound { entity: "webhook" })
}

async fn remove_webhook(
    State(state): State<NotificationState>,
    Path(id): Path<String>,
    context: CommandContext,
) -> Answer {
    admins_only(&context, "manage webhooks")?;
    let removed = sqlx::query("UPDATE webhooks SET removed_at = now() WHERE webhook_id = $1 AND removed_at IS NULL")
        .bind(webhook_id(&id)?)
        .execute(&state.handlers.pool)
        .await
        .map_err(unavailable)?
        .rows_affected();
    if removed == 0 {
        return Err(ApiError::NotFound { entity: "webhook" });
    }
    Ok((StatusCode::OK, Json(json!({"webhook_id": id, "removed": true}))))
}

/// The delivery log of a webhook: each delivery with its attempts, newest first.
async fn webhook_deliveries(
    State(state): State<NotificationState>,
    Path(id): Path<String>,
    context: CommandContext,
) -> Answer {
    admins_only(&context, "manage webhooks")?;
    let id = webhook_id(&id)?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhooks WHERE webhook_id = $1)")
        .bind(id)
        .fetch_one(&state.handlers.pool)
        .await
        .map_err(unavailable)?;
    if !exists {
        return Err(ApiError::NotFound { entity: "webhook" });
    }
    let rows: Vec<Value> = sqlx::query_scalar(
        "SELECT json_build_object('delivery_id', d.delivery_id, 'message_id', d.message_id, 'kind', d.kind,
                'status', d.status, 'attempts', d.attempts, 'last_error', d.last_error, 'created_at', d.created_at,
                'delivered_at', d.delivered_at,
                'log', COALESCE((SELECT json_agg(json_build_object('attempt', a.attempt, 'at', a.at, 'succeeded', a.succeeded,
                        'status_code', a.status_code, 'error', a.error, 'duration_ms', a.duration_ms) ORDER BY a.attempt)
                   FROM notification_attempts a WHERE a.delivery_id = d.delivery_id), '[]'::json))
           FROM notification_deliveries d WHERE d.channel = 'webhook' AND d.recipient = $1
          ORDER BY d.created_at DESC LIMIT 200",
    )
    .bind(id.to_string())
    .fetch_all(&state.handlers.pool)
    .await
    .map_err(unavailable)?;
    Ok((StatusCode::OK, Json(json!({"deliveries": rows}))))
}

/// Queues a test delivery to a live webhook; the delivery loop sends it, signed, within a poll,
/// and its attempts appear in the webhook's delivery log.
async fn test_webhook(
    State(state): State<NotificationState>,
    Path(id): Path<String>,
    context: CommandContext,
    _body: EmptyBody,
) -> Answer {
    admins_only(&context, "manage webhooks")?;
    let id = webhook_id(&id)?;
    let delivery_id = Uuid::now_v7();
    let payload = json!({
        "webhook_id": id,
        "message": "A test delivery from cstrack: this webhook receives what it subscribes to.",
        "requested_by": context.principal.user_id,
        "requested_at": chrono::Utc::now(),
    });
    let queued = sqlx::query(
        "INSERT INTO notification_deliveries (delivery_id, message_id, kind, channel, recipient, mode, payload)
         SELECT $1, 'test:' || $1::text, 'webhook.test', 'webhook', webhook_id::text, 'immediate', $2
           FROM webhooks WHERE webhook_id = $3 AND removed_at IS NULL",
    )
    .bind(delivery_id)
    .bind(&payload)
    .bind(id)
    .execute(&state.handlers.pool)
    .await
    .map_err(unavailable)?
    .rows_affected();
    if queued == 0 {
        return Err(ApiError::NotFound { entity: "webhook" });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"webhook_id": id, "delivery_id": delivery_id, "kind": "webhook.test"})),
    ))
}

/// Why a Slack request was refused.
fn slack_refusal(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": "slack_signature", "message": message}))).into_response()
}

/// Checks Slack's signature (`v0=` HMAC-SHA256 of `v0:<timestamp>:<body>` keyed by the signing
/// secret), the timestamp's age, and that the same request was not seen before.
async fn verify_slack(state: &NotificationState, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
    let Some(secret) = &state.slack_signing_secret else {
        return Err(slack_refusal(StatusCode::NOT_FOUND, "Slack is not configured"));
    };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(timestamp), Some(signature)) = (header("x-slack-request-timestamp"), header("x-slack-signature")) else {
        return Err(slack_refusal(StatusCode::UNAUTHORIZED, "the request is not signed"));
    };
    let Ok(at) = timestamp.parse::<i64>() else {
        return Err(slack_refusal(StatusCode::UNAUTHORIZED, "the timestamp is not a number"));
    };
    if (chrono::Utc::now().timestamp() - at).abs() > SLACK_MAX_AGE {
        return Err(slack_refusal(
            StatusCode::UNAUTHORIZED,
            "the request is too old (a replay?)",
        ));
    }
    let Some(given) = signature.strip_prefix("v0=").and_then(|hex| hex::decode(hex).ok()) else {
        return Err(slack_refusal(StatusCode::UNAUTHORIZED, "the signature is not v0=<hex>"));
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key");
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    if mac.verify_slice(&given).is_err() {
        return Err(slack_refusal(StatusCode::UNAUTHORIZED, "the signature does not match"));
    }
    let fresh = sqlx::query("INSERT INTO slack_requests_seen (signature) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(signature)
        .execute(&state.handlers.pool)
        .await
        .map_err(|error| unavailable(error).into_response())?
        .rows_affected()
        > 0;
    sqlx::query("DELETE FROM slack_requests_seen WHERE seen_at < now() - interval '1 hour'")
        .execute(&state.handlers.pool)
        .await
        .ok();
    if !fresh {
        return Err(slack_refusal(
            StatusCode::UNAUTHORIZED,
            "this request was already answered (a replay)",
        ));
    }
    Ok(())
}

/// The cstrack user linked to a Slack member id in the notification preferences.
async fn linked_user(app: &Handlers, slack_user: &str) -> Result<Option<(String, Role)>, ApiError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT user_id, role FROM notification_preferences WHERE slack_user_id = $1")
            .bind(slack_user)
            .fetch_optional(&app.pool)
            .await
            .map_err(unavailable)?;
    Ok(row.and_then(|(user, role)| Role::parse(&role).map(|role| (user, role))))
}

fn ephemeral(text: String) -> Response {
    Json(json!({"response_type": "ephemeral", "replace_original": false, "text": text})).into_response()
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `POST /slack/interactions`: the Acknowledge button of an alert message becomes the
/// acknowledge command, as the cstrack user linked to the Slack member who pressed it.
async fn slack_interaction(State(state): State<NotificationState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = verify_slack(&state, &headers, &body).await {
        return refused;
    }
    let payload: Value = match form_field(&body, "payload").map(|text| serde_json::from_str(&text)) {
        Some(Ok(payload)) => payload,
        _ => return ApiError::validation("invalid_payload", "payload", "a Slack interaction payload").into_response(),
    };
    let slack_user = payload["user"]["id"].as_str().unwrap_or_default();
    let Some(action) = payload["actions"].as_array().and_then(|actions| {
        actions.iter().find(|action| {
            matches!(
                action["action_id"].as_str(),
                Some("acknowledge" | "complete_reminder" | "snooze_reminder")
            )
        })
    }) else {
        return ephemeral("Nothing to do for that action.".into());
    };
    let (user_id, role) = match linked_user(&state.handlers, slack_user).await {
        Ok(Some(user)) => user,
        Ok(None) => return ephemeral(
            "Your Slack account is not linked to cstrack: add your Slack member id to your notification preferences."
                .into(),
        ),
        Err(error) => return error.into_response(),
    };
    let principal = Principal {
        user_id: user_id.clone(),
        role,
        partner_id: None,
    };
    let id = Uuid::now_v7();
    let metadata = CommandMetadata {
        actor: Actor {
            id: user_id.clone(),
            role: role.as_str().to_owned(),
        },
        correlation_id: id,
        causation_id: id,
        source: Source::Slack,
        idempotency_key: None,
    };
    if action["action_id"] != "acknowledge" {
        return reminder_action(&state.handlers, action, &principal, &metadata).await;
    }
    let Some(alert_id) = action["value"].as_str().and_then(|id| id.parse::<Uuid>().ok()) else {
        return ApiError::validation("invalid_payload", "actions", "the action carries no alert id").into_response();
    };
    let command = crate::domain::alert::AcknowledgeAlert {
        alert_id,
        ..Default::default()
    };
    match state
        .handlers
        .alerts
        .execute(&alert_id.to_string(), command, &metadata, Some(&principal))
        .await
    {
        Ok(_) => ephemeral(format!("Alert acknowledged by {user_id}.")),
        Err(error) => {
            let error = ApiError::from(error);
            let text = format!("The alert was not acknowledged: {error}");
            match error {
                ApiError::Unavailable(_) | ApiError::Internal(_) => error.into_response(),
                _ => ephemeral(text),
            }
        }
    }
}

/// A reminder's Complete or Snooze button: the command as the linked user, who must be the
/// reminder's owner (or manage). A snooze from Slack lasts until tomorrow 09:00 in their time.
async fn reminder_action(
    handlers: &Handlers,
    action: &Value,
    principal: &Principal,
    metadata: &CommandMetadata,
) -> Response {
    use crate::domain::reminder::*;
    let value: Value = action["value"]
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let (Some(reminder), Some(key)) = (
        value["reminder_id"].as_str().and_then(|id| id.parse::<Uuid>().ok()),
        value["occurrence_key"].as_str().map(str::to_owned),
    ) else {
        return ApiError::validation("invalid_payload", "actions", "the action names no reminder").into_response();
    };
    let (acting, zone) = match super::reminders::acting(handlers, principal).await {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let (command, done) = if action["action_id"] == "complete_reminder" {
        (
            ReminderCommand::Complete(CompleteReminder {
                acting,
                occurrence_key: key,
                note: Some("completed from Slack".into()),
            }),
            "Reminder completed.",
        )
    } else {
        let zone = events::reminder::time_zone(&zone).unwrap_or(chrono_tz::UTC);
        let preset = events::reminder::SnoozePreset::TomorrowMorning;
        (
            ReminderCommand::Snooze(SnoozeReminder {
                acting,
                until: Some(events::reminder::snooze_end(preset, chrono::Utc::now(), zone)),
                score_now: None,
                occurrence_key: key,
                snooze: SnoozeFor::Preset(preset),
                reason: "snoozed from Slack until tomorrow 09:00".into(),
            }),
            "Reminder snoozed until tomorrow 09:00.",
        )
    };
    match handlers
        .reminders
        .execute(&reminder.to_string(), command, metadata, Some(principal))
        .await
    {
        Ok(_) => ephemeral(done.into()),
        Err(error) => {
            let error = ApiError::from(error);
            let text = format!("The reminder was not changed: {error}");
            match error {
                ApiError::Unavailable(_) | ApiError::Internal(_) => error.into_response(),
                _ => ephemeral(text),
            }
        }
    }
}

/// `POST /slack/commands`: `/cstrack <customer>` answers (to the asker only) with the matching
/// accounts' coverage and health as of today.
async fn slack_command(State(state): State<NotificationState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = verify_slack(&state, &headers, &body).await {
        return refused;
    }
    let text = form_field(&body, "text").unwrap_or_default();
    let text = text.trim();
    let slack_user = form_field(&body, "user_id").unwrap_or_default();
    match linked_user(&state.handlers, &slack_user).await {
        Ok(Some(_)) => {}
        Ok(None) => return ephemeral(
            "Your Slack account is not linked to cstrack: add your Slack member id to your notification preferences."
                .into(),
        ),
        Err(error) => return error.into_response(),
    }
    if text.is_empty() || text.chars().count() > 200 {
        return ephemeral("Usage: /cstrack <customer name>".into());
    }
    let pool = &state.handlers.pool;
    let pattern = format!(
        "%{}%",
        text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    );
    let ids: Vec<Uuid> = match sqlx::query_scalar(
        "SELECT customer_id FROM customer_profiles WHERE name ILIKE $1 AND churned_on IS NULL ORDER BY lower(name) LIMIT 5",
    )
    .bind(&pattern)
    .fetch_all(pool)
    .await
    {
        Ok(ids) => ids,
        Err(error) => return unavailable(error).into_response(),
    };
    if ids.is_empty() {
        return ephemeral(format!("No customer matches \"{text}\"."));
    }
    let today = chrono::Utc::now().date_naive();
    let answer = async {
        let rules = events::service::read_models::current_rules(pool).await?;
        let facts = events::service::read_models::account_facts(pool, today, Some(&ids)).await?;
        Ok::<_, sqlx::Error>((rules, facts))
    }
    .await;
    let (rules, facts) = match answer {
        Ok(answer) => answer,
        Err(error) => return unavailable(error).into_response(),
    };
    let blocks: Vec<Value> = facts
        .iter()
        .map(|account| {
            let assessment = events::coverage::assess(&account.inputs, &rules.standard(account.tier));
            let health = account
                .inputs
                .health_score
                .map_or("no score".to_owned(), |score| {
                    format!("{score} ({:?})", events::coverage::HealthColour::of(score)).to_lowercase()
                });
            json!({"type": "section", "text": {"type": "mrkdwn", "text": format!(
                "*{}* · {} · ARR {}\nCoverage {:.1} ({}), gaps: {}\nHealth {}",
                account.name.replace('*', ""), account.tier.as_str(), account.arr.normalize(),
                events::coverage::round1(assessment.score), assessment.status.as_str(),
                if assessment.gap_areas.is_empty() { "none".to_owned() } else {
                    assessment.gap_areas.iter().map(|gap| format!("{gap:?}").to_lowercase()).collect::<Vec<_>>().join(", ")
                },
                health)}})
        })
        .collect();
    Json(json!({"response_type": "ephemeral", "text": format!("{} accounts match \"{text}\"", blocks.len()), "blocks": blocks}))
        .into_response()
}
