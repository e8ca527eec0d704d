//! Authentication of every `/api/v1` request, and a log line for every refused command.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::auth::{AuthError, Authenticator, Principal};
use events::metadata::Role;
use sqlx::PgPool;
use uuid::Uuid;

pub async fn authenticate(
    State(authenticator): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim);
    let principal = match token
        .map(|token| authenticator.verify(token))
        .unwrap_or(Err(AuthError::Missing))
    {
        Ok(principal) => principal,
        Err(error) => {
            return ApiError::Unauthenticated {
                message: error.to_string(),
            }
            .into_response()
        }
    };
    match authenticator.refused(&principal).await {
        Ok(None) => {}
        Ok(Some(message)) => return ApiError::Unauthenticated { message }.into_response(),
        Err(error) => return ApiError::Unavailable(error.to_string()).into_response(),
    }
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    request.extensions_mut().insert(principal.clone());
    let response = next.run(request).await;
    if response.status() == StatusCode::FORBIDDEN {
        // Refused commands are never events, but they are on record.
        tracing::warn!(
            user = %principal.user_id,
            role = principal.role.as_str(),
            partner_id = ?principal.partner_id,
            %method,
            %path,
            "command refused: forbidden"
        );
    }
    response
}

/// The route-level check, made before the body is read: the caller's role must be allowed on the
/// endpoint (per the permission table), and a partner must be assigned to the customer the path
/// names. The aggregate checks both again on the state it appends to, which settles any race.
#[derive(Clone)]
pub struct Guard {
    pool: PgPool,
    endpoints: Arc<HashMap<(String, &'static str), Vec<Role>>>,
}

impl Guard {
    pub fn new(pool: PgPool) -> Self {
        let endpoints = super::openapi::endpoints()
            .into_iter()
            .map(|endpoint| ((endpoint.method.to_owned(), endpoint.path), endpoint.roles()))
            .collect();
        Guard {
            pool,
            endpoints: Arc::new(endpoints),
        }
    }
}

pub async fn guard(State(guard): State<Guard>, matched: MatchedPath, request: Request, next: Next) -> Response {
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return ApiError::Unauthenticated {
            message: "a bearer token is required".into(),
        }
        .into_response();
    };
    let key = (request.method().as_str().to_owned(), matched.as_str());
    if let Some(roles) = guard.endpoints.get(&(key.0.clone(), key.1)) {
        if !roles.contains(&principal.role) {
            return ApiError::Forbidden {
                message: format!("the {} role may not use this endpoint", principal.role.as_str()),
            }
            .into_response();
        }
    }
    if principal.role == Role::Partner && matched.as_str().starts_with("/api/v1/customers/{id}") {
        let customer = request
            .uri()
            .path()
            .trim_start_matches("/api/v1/customers/")
            .split('/')
            .next()
            .unwrap_or_default();
        match partner_assigned(&guard.pool, customer, principal.partner_id).await {
            Ok(true) => {}
            Ok(false) => {
                return ApiError::Forbidden {
                    message: "this customer is not assigned to your partner organisation".into(),
                }
                .into_response()
            }
            Err(error) => return ApiError::Unavailable(error.to_string()).into_response(),
        }
    }
    next.run(request).await
}

/// Whether the partner's latest assignment event on the customer is an assignment.
async fn partner_assigned(pool: &PgPool, customer: &str, partner: Option<Uuid>) -> Result<bool, sqlx::Error> {
    let Some(partner) = partner else { return Ok(false) };
    let latest: Option<String> = sqlx::query_scalar(
        "SELECT event_type FROM events
          WHERE aggregate_type = 'Customer' AND aggregate_id = $1
            AND event_type IN ('PartnerAssigned', 'PartnerUnassigned')
            AND COALESCE(payload -> 'PartnerAssigned' ->> 'partner_id', payload -> 'PartnerUnassigned' ->> 'partner_id') = $2
          ORDER BY sequence DESC LIMIT 1",
    )
    .bind(customer)
    .bind(partner.to_string())
    .fetch_optional(pool)
    .await?;
    Ok(latest.as_deref() == Some("PartnerAssigned"))
}
