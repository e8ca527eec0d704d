//! The one error type of the command API: a status and `{"error", "message", "fields"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use crate::domain::CommandError;
use crate::store::ExecuteError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Validation {
        code: &'static str,
        message: String,
        fields: Map<String, Value>,
    },
    #[error("{entity} not found")]
    NotFound { entity: &'static str },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
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
        ApiError::Validation { code, message, fields }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::NotFound { entity } => ApiError::NotFound { entity },
            CommandError::Conflict { code, message } => ApiError::Conflict { code, message },
            CommandError::Invalid { code, field, message } => ApiError::validation(code, field, message),
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
                message: "the customer changed concurrently too many times; retry the command".into(),
            },
            ExecuteError::Unavailable(reason) => ApiError::Unavailable(reason),
            ExecuteError::Internal(reason) => ApiError::Internal(reason),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let (code, message, fields) = match &self {
            ApiError::BadRequest { code, message } | ApiError::Conflict { code, message } => {
                (*code, message.clone(), Map::new())
            }
            ApiError::Validation { code, message, fields } => (*code, message.clone(), fields.clone()),
            ApiError::NotFound { entity } => {
                let code = match *entity {
                    "customer" => "customer_not_found",
                    "activity" => "activity_not_found",
                    "csm" => "csm_not_found",
                    _ => "not_found",
                };
                (code, self.to_string(), Map::new())
            }
            ApiError::PayloadTooLarge => ("payload_too_large", self.to_string(), Map::new()),
            ApiError::UnsupportedMediaType => (
                "unsupported_media_type",
                "send the body as application/json".to_owned(),
                Map::new(),
            ),
            // Internal details are logged, never returned.
            ApiError::Unavailable(reason) => {
                tracing::error!(%reason, "dependency unavailable");
                (
                    "store_unavailable",
                    "the event store is unavailable; retry later".to_owned(),
                    Map::new(),
                )
            }
            ApiError::Internal(reason) => {
                tracing::error!(%reason, "internal error");
                ("internal", "an internal error occurred".to_owned(), Map::new())
            }
        };
        (
            status,
            Json(json!({"error": code, "message": message, "fields": fields})),
        )
            .into_response()
    }
}
