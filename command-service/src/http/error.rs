//! The one error type of the command API: a status and `{"error", "message", "fields"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::domain::CommandError;
use crate::store::ExecuteError;

/// Marks the response of a command whose `Idempotency-Key` another attempt appended first.
#[derive(Debug, Clone, Copy)]
pub struct AlreadyAppended;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unauthenticated { message: String },
    #[error("{message}")]
    Forbidden { message: String },
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    /// Concurrency: the stream kept changing, or the same idempotency key is in flight.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("this route does not take that method")]
    MethodNotAllowed,
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body's media type is not the route's; the message says which it takes.
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    /// A field breaks a rule (with the field), or the command contradicts the stream's state.
    #[error("{message}")]
    Unprocessable {
        code: &'static str,
        message: String,
        fields: Map<String, Value>,
    },
    /// Another attempt with the same `Idempotency-Key` appended the command first; the
    /// idempotency layer answers with that attempt's answer instead.
    #[error("this Idempotency-Key's command was already appended")]
    AlreadyAppended,
    /// The stream holds an event this version cannot read; a retry will not help.
    #[error("this record's history holds an event this version cannot read; an operator must upcast or repair it")]
    StreamUnreadable(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut fields = Map::new();
        fields.insert(field.into(), Value::String(message.clone()));
        ApiError::Unprocessable { code, message, fields }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } | ApiError::AlreadyAppended | ApiError::StreamUnreadable(_) => {
                StatusCode::CONFLICT
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code of the answer.
    pub fn code(&self) -> String {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unprocessable { code, .. } => (*code).to_owned(),
            ApiError::Unauthenticated { .. } => "unauthenticated".into(),
            ApiError::Forbidden { .. } => "forbidden".into(),
            ApiError::NotFound { entity } => format!("{}_not_found", entity.replace(' ', "_")),
            ApiError::MethodNotAllowed => "method_not_allowed".into(),
            ApiError::PayloadTooLarge => "payload_too_large".into(),
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type".into(),
            ApiError::AlreadyAppended => "idempotency_key_settled".into(),
            ApiError::StreamUnreadable(_) => "stream_unreadable".into(),
            ApiError::Unavailable(_) => "store_unavailable".into(),
            ApiError::Internal(_) => "internal".into(),
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::NotFound { entity } => ApiError::NotFound { entity },
            CommandError::Conflict { code, message } => ApiError::Unprocessable {
                code,
                message,
                fields: Map::new(),
            },
            CommandError::Invalid { code, field, message } => ApiError::validation(code, field, message),
            CommandError::Forbidden { message } => ApiError::Forbidden { message },
            CommandError::Unavailable(reason) => ApiError::Unavailable(reason),
        }
    }
}

impl From<ExecuteError> for ApiError {
    fn from(error: ExecuteError) -> Self {
        match error {
            ExecuteError::Rejected(rejection) => rejection.into(),
            ExecuteError::Conflict => ApiError::Conflict {
                code: "concurrent_modification",
                message: "the stream changed concurrently too many times; retry the command".into(),
            },
            ExecuteError::AlreadyAppended => ApiError::AlreadyAppended,
            ExecuteError::Unreadable(reason) => ApiError::StreamUnreadable(reason),
            ExecuteError::Unavailable(reason) => ApiError::Unavailable(reason),
            ExecuteError::Internal(reason) => ApiError::Internal(reason),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let code = self.code();
        let (message, fields) = match &self {
            ApiError::Unprocessable { message, fields, .. } => (message.clone(), fields.clone()),
            ApiError::UnsupportedMediaType(message) => ((*message).to_owned(), Map::new()),
            // Internal details are logged, never returned.
            ApiError::Unavailable(reason) => {
                tracing::error!(%reason, "dependency unavailable");
                ("the event store is unavailable; retry later".to_owned(), Map::new())
            }
            ApiError::StreamUnreadable(reason) => {
                tracing::error!(%reason, "a stream holds an undecodable event");
                (self.to_string(), Map::new())
            }
            ApiError::Internal(reason) => {
                tracing::error!(%reason, "internal error");
                ("an internal error occurred".to_owned(), Map::new())
            }
            other => (other.to_string(), Map::new()),
        };
        let body = Json(json!({"error": code, "message": message, "fields": fields}));
        let mut response = (status, body).into_response();
        match self {
            ApiError::Unauthenticated { .. } => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::AlreadyAppended => {
                response.extensions_mut().insert(AlreadyAppended);
            }
            _ => {}
        }
        response
    }
}
