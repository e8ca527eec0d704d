//! Request extractors: a JSON body whose errors name the offending field, and the command
//! context (who, why, from where) that becomes every event's metadata.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use events::metadata::{Actor, CommandMetadata, Source};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::error::ApiError;
use super::idempotency::IdempotencyKey;
use crate::auth::Principal;

/// A JSON body: 415 without a JSON content type, 413 over the size limit, 400 when it is not
/// JSON at all, 422 naming the field when a field is missing, unknown or of the wrong type.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType("send the body as application/json"));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest {
                    code: "unreadable_body",
                    message: rejection.body_text(),
                }
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body its handler reads as a value and checks itself, described as a `T` (a body serde
/// cannot check in one pass, such as a role beside flattened preferences).
pub struct JsonValueOf<T>(pub serde_json::Value, pub std::marker::PhantomData<T>);

impl<S, T> FromRequest<S> for JsonValueOf<T>
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBody(value) = JsonBody::from_request(request, state).await?;
        Ok(JsonValueOf(value, std::marker::PhantomData))
    }
}

/// Parses a command body, which is always a JSON object (serde would otherwise read an array
/// positionally into a struct).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9') => {
            return Err(ApiError::validation(
                "invalid_type",
                "body",
                "the body must be a JSON object",
            ))
        }
        _ => {
            return Err(ApiError::BadRequest {
                code: "malformed_json",
                message: "the body is not a JSON object".into(),
            })
        }
    }
    // PostgreSQL cannot store U+0000 in text or jsonb: refuse it here, naming the field, rather
    // than failing the append. JSON can only carry it escaped.
    if bytes.windows(6).any(|window| window == b"\\u0000") {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
            if let Some(field) = nul_field(&value, String::new()) {
                return Err(ApiError::validation(
                    "invalid_character",
                    field,
                    "text may not contain the NUL character (U+0000)",
                ));
            }
        }
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let command: T = match deserialize(deserializer, bytes) {
        Ok(command) => command,
        Err(error) => whole_numbers_as_integers::<T>(bytes).ok_or(error)?,
    };
    // Dates and instants are checked where they stand in the body, so the error names the field.
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        if let Some(field) = implausible_date(&value, String::new()) {
            return Err(ApiError::validation(
                "implausible_date",
                field.clone(),
                events::dates::implausible(&field),
            ));
        }
    }
    Ok(command)
}

fn deserialize<'de, T: DeserializeOwned>(
    deserializer: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
    bytes: &[u8],
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        // serde_json reports some shape errors (an enum given a list) as syntax errors: only a
        // body that is not JSON at all is malformed.
        let not_json = || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof if not_json() => {
                ApiError::BadRequest {
                    code: "malformed_json",
                    message: format!("the body is not valid JSON: {inner}"),
                }
            }
            _ => {
                let message = inner.to_string();
                // A missing field is reported at its parent object; name the field itself.
                let field = missing_field(&message).map_or(field.clone(), |name| {
                    if field == "." {
                        name
                    } else {
                        format!("{field}.{name}")
                    }
                });
                let code = if message.starts_with("unknown field") {
                    "unknown_field"
                } else if message.starts_with("missing field") {
                    "missing_field"
                } else {
                    "invalid_type"
                };
                ApiError::validation(code, field, message)
            }
        }
    })
}

/// JSON has one number type: `5.0` is the integer 5 to a JSON Schema, and so to this API. serde
/// reads it as a float, which an integer field refuses; on such a refusal the body is read again
/// with every whole-number float written as an integer (floats fields read integers as they were).
fn whole_numbers_as_integers<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    fn rewrite(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::Number(number) if !number.is_i64() && !number.is_u64() => {
                let whole = number
                    .as_f64()
                    .filter(|float| float.fract() == 0.0 && float.abs() < 9.0e15);
                if let Some(whole) = whole {
                    *value = serde_json::Value::from(whole as i64);
                    true
                } else {
                    false
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().fold(false, |changed, item| rewrite(item) | changed),
            serde_json::Value::Object(map) => map.values_mut().fold(false, |changed, item| rewrite(item) | changed),
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    rewrite(&mut value)
        .then(|| serde_json::from_value(value).ok())
        .flatten()
}

/// The path of the first date (`YYYY-MM-DD`) or instant (`YYYY-MM-DDT...`) outside the accepted
/// range. Free text that merely begins with a date is not one: only a whole date, or a date
/// followed by `T` and a time, counts.
fn implausible_date(value: &serde_json::Value, path: String) -> Option<String> {
    match value {
        serde_json::Value::String(text) => {
            let bytes = text.as_bytes();
            let shaped = bytes.len() >= 10
                && bytes[..10].iter().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        *b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                })
                && (bytes.len() == 10 || (bytes[10] == b'T' || bytes[10] == b't') && bytes.len() >= 16);
            let day = shaped
                .then(|| chrono::NaiveDate::parse_from_str(&text[..10], "%Y-%m-%d").ok())
                .flatten();
            day.is_some_and(|day| !events::dates::plausible(day)).then_some(path)
        }
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| implausible_date(item, format!("{path}[{index}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(name, item)| {
            implausible_date(
                item,
                if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                },
            )
        }),
        _ => None,
    }
}

/// The path (`a.b[2]`) of the first string or key holding U+0000.
pub fn nul_field(value: &serde_json::Value, path: String) -> Option<String> {
    match value {
        serde_json::Value::String(text) => text.contains('\0').then_some(path),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| nul_field(item, format!("{path}[{index}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(name, item)| {
            let inner = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            if name.contains('\0') {
                Some(inner)
            } else {
                nul_field(item, inner)
            }
        }),
        _ => None,
    }
}

/// The field name in serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<String> {
    if !message.starts_with("missing field") {
        return None;
    }
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

/// Who issued the command (the authenticated principal) and under which correlation, source
/// and idempotency key; this becomes every appended event's metadata.
pub struct CommandContext {
    pub principal: Principal,
    pub metadata: CommandMetadata,
}

impl<S: Send + Sync> FromRequestParts<S> for CommandContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthenticated {
                message: "a bearer token is required".into(),
            })?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let uuid_header = |name: &'static str| -> Result<Option<Uuid>, ApiError> {
            header(name)
                .map(|value| {
                    Uuid::parse_str(&value)
                        .map_err(|_| ApiError::validation("invalid_header", name, format!("{name} must be a UUID")))
                })
                .transpose()
        };
        let source = match header("x-source") {
            None => Source::Api,
            Some(value) => Source::parse(&value).ok_or_else(|| {
                ApiError::validation(
                    "invalid_header",
                    "x-source",
                    "x-source is one of api, import, gainsight, outlook, partner_portal, system",
                )
            })?,
        };
        let causation_id = uuid_header("x-causation-id")?.unwrap_or_else(Uuid::now_v7);
        let metadata = CommandMetadata {
            actor: Actor {
                id: principal.user_id.clone(),
                role: principal.role.as_str().to_owned(),
            },
            correlation_id: uuid_header("x-correlation-id")?.unwrap_or(causation_id),
            causation_id,
            source,
            idempotency_key: parts.extensions.get::<IdempotencyKey>().map(|key| key.0.clone()),
        };
        Ok(CommandContext { principal, metadata })
    }
}

/// The body of a command that takes no fields: none, or an empty JSON object.
pub struct EmptyBody;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

impl<S: Send + Sync> FromRequest<S> for EmptyBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(EmptyBody);
        }
        parse_json::<NoFields>(&bytes).map(|_| EmptyBody)
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Counted {
        count: u32,
        share: f64,
        items: Vec<u8>,
    }

    /// JSON Schema's integers include `5.0`; a fraction, or a float where a float stands, stays
    /// as it is.
    #[test]
    fn whole_number_floats_are_integers() {
        let read = |text: &str| super::parse_json::<Counted>(text.as_bytes());
        assert_eq!(
            read(r#"{"count": 5.0, "share": 2, "items": [1.0, 2]}"#).unwrap(),
            Counted {
                count: 5,
                share: 2.0,
                items: vec![1, 2]
            }
        );
        assert_eq!(read(r#"{"count": 1e2, "share": 0.5, "items": []}"#).unwrap().count, 100);
        let refused = read(r#"{"count": 5.5, "share": 0.5, "items": []}"#).unwrap_err();
        assert_eq!(refused.code(), "invalid_type");
        assert!(read(r#"{"count": -1.0, "share": 0.5, "items": []}"#).is_err());
    }
}
