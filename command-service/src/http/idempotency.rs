//! `Idempotency-Key`: a retried command returns the first answer and appends nothing; the same
//! key with a different request is refused.
//!
//! The first request with a key claims it (a `pending` row) before the command runs; its
//! successful answer is then stored. The key also travels in the events' metadata, written in the
//! same transaction as the events, so when a process dies between appending and storing the
//! answer, a later retry finds the events and answers from them instead of appending again.

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::ApiError;
use super::MAX_BODY_BYTES;
use crate::auth::Principal;

/// The key of the current request, for the command's metadata.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub String);

pub const HEADER: &str = "idempotency-key";
/// A claim older than this belongs to a request that died.
const STALE_SECONDS: f64 = 30.0;

pub async fn idempotent(State(pool): State<PgPool>, request: Request, next: Next) -> Response {
    match handle(pool, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

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

    let claimed = sqlx::query(
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

    if !claimed {
        let (stored_hash, state, status, response, age): (String, String, Option<i16>, Option<Value>, f64) =
            sqlx::query_as(
                "SELECT request_hash, state, status, response, extract(epoch FROM now() - created_at)::float8
               FROM idempotency_keys WHERE user_id = $1 AND key = $2",
            )
            .bind(&user)
            .bind(&key)
            .fetch_one(&pool)
            .await
            .map_err(unavailable)?;
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
        if age < STALE_SECONDS {
            return Err(ApiError::Conflict {
                code: "idempotency_key_in_flight",
                message: "a request with this Idempotency-Key is still running; retry shortly".into(),
            }
            .into_response());
        }
        // The first attempt died. If it appended, answer from its events; otherwise take over.
        if let Some(answer) = answer_from_events(&pool, &user, &key).await.map_err(unavailable)? {
            store(&pool, &user, &key, StatusCode::OK, &answer)
                .await
                .map_err(unavailable)?;
            return Ok(replayed(StatusCode::OK, answer));
        }
        sqlx::query("UPDATE idempotency_keys SET created_at = now() WHERE user_id = $1 AND key = $2")
            .bind(&user)
            .bind(&key)
            .execute(&pool)
            .await
            .map_err(unavailable)?;
    }

    parts.extensions.insert(IdempotencyKey(key.clone()));
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let status = response.status();
    if !status.is_success() {
        // Nothing was appended: release the key so a corrected retry can use it.
        sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND state = 'pending'")
            .bind(&user)
            .bind(&key)
            .execute(&pool)
            .await
            .ok();
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

/// The answer a command would have given, rebuilt from the events carrying its key.
async fn answer_from_events(pool: &PgPool, user: &str, key: &str) -> Result<Option<Value>, sqlx::Error> {
    let rows: Vec<(String, String, i64, Uuid)> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, sequence, event_id FROM events
          WHERE metadata ->> 'idempotency_key' = $1 AND metadata ->> 'actor_id' = $2
          ORDER BY global_position",
    )
    .bind(key)
    .bind(user)
    .fetch_all(pool)
    .await?;
    let Some((stream_type, stream_id, _, _)) = rows.first().cloned() else {
        return Ok(None);
    };
    let sequence = rows.iter().map(|row| row.2).max().unwrap_or_default();
    let event_ids: Vec<Uuid> = rows.iter().map(|row| row.3).collect();
    Ok(Some(
        json!({"stream_type": stream_type, "stream_id": stream_id, "sequence": sequence, "event_ids": event_ids}),
    ))
}
