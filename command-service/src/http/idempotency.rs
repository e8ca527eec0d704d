//! `Idempotency-Key`: a retried command returns the first answer and appends nothing; the same
//! key with a different request is refused.
//!
//! Three things together make a key's command append at most once, whatever fails:
//! - the first request claims the key (a `pending` row) before the command runs, and stores its
//!   answer once it succeeded;
//! - the key travels in the events' metadata, with the answer the command gives (status and the
//!   ids it created), in the same transaction as the events;
//! - the store itself refuses a second transaction appending under a key already appended
//!   (`cstrack_idempotency_once`, SQLSTATE `CS409`).
//!
//! So a retry first looks for events carrying its key and, when there are some, answers what the
//! first attempt answered. Otherwise it runs the command, and if another attempt wins the race
//! to append, the store refuses this one and the answer again comes from the winner's events. A
//! failure whose outcome is unknown (503, 500) keeps the claim, so the retry settles from the
//! events at once; a refusal (4xx) appended nothing and releases the key for a corrected retry.

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::{AlreadyAppended, ApiError};
use super::MAX_BODY_BYTES;
use crate::auth::Principal;
use crate::store::IDEMPOTENT_ANSWER;

/// The key of the current request, for the command's metadata.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

pub const HEADER: &str = "idempotency-key";
/// A claim younger than this, with no events yet, may belong to a request still running: its
/// retries are asked to wait. An older one is taken over (the store keeps that safe).
const IN_FLIGHT_SECONDS: f64 = 5.0;

pub async fn idempotent(State(pool): State<PgPool>, request: Request, next: Next) -> Response {
    match handle(pool, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

type Stored = (String, String, Option<i16>, Option<Value>, f64);

async fn handle(pool: PgPool, request: Request, next: Next) -> Result<Response, Response> {
    let Some(key) = request
        .headers()
        .get(HEADER)
        .map(|value| value.to_str().map(str::to_owned))
    else {
        return Ok(next.run(request).await);
    };
    let key = key
        .ok()
        .filter(|key| !key.is_empty() && key.len() <= 200)
        .ok_or_else(|| {
            ApiError::validation(
                "invalid_header",
                "Idempotency-Key",
                "Idempotency-Key is 1 to 200 visible characters",
            )
            .into_response()
        })?;
    let user = request
        .extensions()
        .get::<Principal>()
        .map(|principal| principal.user_id.clone())
        .unwrap_or_default();

    let (mut parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge.into_response())?;
    let hash = request_hash(parts.method.as_str(), parts.uri.path(), &bytes);
    let unavailable = |error: sqlx::Error| ApiError::Unavailable(error.to_string()).into_response();

    // Claim the key, or find out what became of the attempt that holds it. A claim released
    // between our insert and our read (its request was refused) is claimed again.
    let mut claimed = false;
    for _ in 0..3 {
        claimed = sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, state) VALUES ($1, $2, $3, 'pending')
             ON CONFLICT DO NOTHING",
        )
        .bind(&user)
        .bind(&key)
        .bind(&hash)
        .execute(&pool)
        .await
        .map_err(unavailable)?
        .rows_affected()
            == 1;
        if claimed {
            break;
        }
        let stored: Option<Stored> = sqlx::query_as(
            "SELECT request_hash, state, status, response, extract(epoch FROM now() - created_at)::float8
               FROM idempotency_keys WHERE user_id = $1 AND key = $2",
        )
        .bind(&user)
        .bind(&key)
        .fetch_optional(&pool)
        .await
        .map_err(unavailable)?;
        let Some((stored_hash, state, status, response, age)) = stored else {
            continue;
        };
        if stored_hash != hash {
            return Err(ApiError::validation(
                "idempotency_key_reused",
                "Idempotency-Key",
                "this Idempotency-Key was used for a different request",
            )
            .into_response());
        }
        if state == "done" {
            let status = status
                .and_then(|status| StatusCode::from_u16(status as u16).ok())
                .unwrap_or(StatusCode::OK);
            return Ok(replayed(status, response.unwrap_or(Value::Null)));
        }
        // Pending: the first attempt is running, or failed or died after claiming.
        if let Some(response) = settle(&pool, &user, &key).await.map_err(unavailable)? {
            return Ok(response);
        }
        if age < IN_FLIGHT_SECONDS {
            let mut response = ApiError::Conflict {
                code: "idempotency_key_in_flight",
                message: "a request with this Idempotency-Key is still running; retry shortly".into(),
            }
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Err(response);
        }
        // Nothing was appended under the key: take the claim over and run the command.
        sqlx::query("UPDATE idempotency_keys SET created_at = now() WHERE user_id = $1 AND key = $2")
            .bind(&user)
            .bind(&key)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
        claimed = true;
        break;
    }
    if !claimed {
        return Err(ApiError::Conflict {
            code: "idempotency_key_in_flight",
            message: "requests with this Idempotency-Key keep failing concurrently; retry shortly".into(),
        }
        .into_response());
    }

    parts.extensions.insert(IdempotencyKey(key.clone()));
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let status = response.status();
    if response.extensions().get::<AlreadyAppended>().is_some() {
        // Another attempt appended first; its events hold the answer.
        return match settle(&pool, &user, &key).await {
            Ok(Some(response)) => Ok(response),
            Ok(None) => Err(ApiError::Internal("a key refused as appended has no events".into()).into_response()),
            Err(error) => Err(unavailable(error)),
        };
    }
    if status.is_server_error() {
        // The command may or may not have been appended: keep the claim, and let a retry
        // settle from the events at once instead of waiting for the claim to age.
        on_pending_claim(
            &pool,
            &user,
            &key,
            "UPDATE idempotency_keys SET created_at = now() - interval '1 hour'",
        )
        .await;
        return Ok(response);
    }
    if !status.is_success() {
        // Refused: nothing was appended. Release the key so a corrected retry can use it.
        on_pending_claim(&pool, &user, &key, "DELETE FROM idempotency_keys").await;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let Err(error) = store(&pool, &user, &key, status, &answer).await {
        tracing::error!(%error, "could not store an idempotent answer; a retry will answer from the events");
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Runs `statement` (an UPDATE or DELETE of `idempotency_keys`) on the key's claim while it is
/// pending. Best effort: a failure leaves the claim as it was, which a retry also handles.
async fn on_pending_claim(pool: &PgPool, user: &str, key: &str, statement: &str) {
    let statement = format!("{statement} WHERE user_id = $1 AND key = $2 AND state = 'pending'");
    if let Err(error) = sqlx::query(&statement).bind(user).bind(key).execute(pool).await {
        tracing::warn!(%error, "could not update an idempotency claim");
    }
}

/// The first answer of a key whose command was appended, rebuilt from its events and stored;
/// `None` when no event carries the key.
async fn settle(pool: &PgPool, user: &str, key: &str) -> Result<Option<Response>, sqlx::Error> {
    let Some((status, answer)) = answer_from_events(pool, user, key).await? else {
        return Ok(None);
    };
    store(pool, user, key, status, &answer).await?;
    Ok(Some(replayed(status, answer)))
}

fn request_hash(method: &str, path: &str, body: &Bytes) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

async fn store(pool: &PgPool, user: &str, key: &str, status: StatusCode, answer: &Value) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'done', status = $3, response = $4 WHERE user_id = $1 AND key = $2",
    )
    .bind(user)
    .bind(key)
    .bind(status.as_u16() as i16)
    .bind(answer)
    .execute(pool)
    .await
    .map(drop)
}

fn replayed(status: StatusCode, answer: Value) -> Response {
    let mut response = (status, Json(answer)).into_response();
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// The answer a command gave, rebuilt from the events carrying its key: the stream, its
/// sequence after the command and the event ids, with the status and created ids the command
/// recorded in the events' metadata (events appended before answers were recorded: 200, none).
async fn answer_from_events(pool: &PgPool, user: &str, key: &str) -> Result<Option<(StatusCode, Value)>, sqlx::Error> {
    let rows: Vec<(String, String, i64, Uuid, Option<String>)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence, event_id, metadata ->> $3 FROM events
          WHERE metadata ->> 'idempotency_key' = $1 AND metadata ->> 'actor_id' = $2
          ORDER BY global_position",
    )
    .bind(key)
    .bind(user)
    .bind(IDEMPOTENT_ANSWER)
    .fetch_all(pool)
    .await?;
    let Some((stream_type, stream_id, _, _, recorded)) = rows.first().cloned() else {
        return Ok(None);
    };
    let sequence = rows.iter().map(|row| row.2).max().unwrap_or_default();
    let event_ids: Vec<Uuid> = rows.iter().map(|row| row.3).collect();
    let mut answer =
        json!({"stream_type": stream_type, "stream_id": stream_id, "sequence": sequence, "event_ids": event_ids});
    let recorded: Value = recorded
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    if let (Some(created), Some(map)) = (recorded["created"].as_object(), answer.as_object_mut()) {
        map.extend(created.clone());
    }
    let status = recorded["status"]
        .as_u64()
        .and_then(|status| StatusCode::from_u16(status as u16).ok())
        .unwrap_or(StatusCode::OK);
    Ok(Some((status, answer)))
}
