//! Request rate limits per bearer token: a token bucket for each token presented, holding up to
//! `burst` requests and refilled at `per_second`. A request past its token's budget is answered
//! 429 with `Retry-After` (whole seconds until a request is allowed again) before anything else
//! runs. Requests without a token are not counted here: they are refused as unauthenticated at
//! once, at less cost than counting them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::http::HttpLimits;

/// Buckets beyond this many are swept of the full ones (tokens idle long enough to be whole).
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct RateLimiter {
    settings: HttpLimits,
    buckets: Mutex<HashMap<[u8; 16], Bucket>>,
}

impl RateLimiter {
    pub fn new(settings: HttpLimits) -> Self {
        RateLimiter {
            settings,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket at `now`; the wait until one is available when empty.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let (rate, burst) = (
            self.settings.rate_limit_per_second.max(f64::MIN_POSITIVE),
            self.settings.rate_limit_burst.max(1.0),
        );
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > SWEEP_ABOVE {
            buckets.retain(|_, bucket| bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(id).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = (bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

/// The middleware: 429 with `Retry-After` once a token's budget is spent.
pub async fn limit(State(limiter): State<Arc<RateLimiter>>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if let Some(token) = token {
        if let Err(wait) = limiter.take(&token, Instant::now()) {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(serde_json::json!({
                    "error": "rate_limited",
                    "message": format!("too many requests with this token; retry in {seconds} s"),
                    "errors": [{"message": "too many requests with this token", "extensions": {"code": "RATE_LIMITED"}}],
                })),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gets_its_burst_then_its_rate_and_others_are_untouched() {
        let limiter = RateLimiter::new(HttpLimits {
            rate_limit_per_second: 2.0,
            rate_limit_burst: 3.0,
            ..HttpLimits::default()
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take("Bearer a", start).is_ok());
        }
        let wait = limiter.take("Bearer a", start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(
            limiter.take("Bearer b", start).is_ok(),
            "another token has its own bucket"
        );
        assert!(limiter.take("Bearer a", start + Duration::from_millis(500)).is_ok());
        assert!(limiter.take("Bearer a", start + Duration::from_millis(500)).is_err());
        // Idle, a bucket fills up to its burst and no further.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.take("Bearer a", later).is_ok());
        }
        assert!(limiter.take("Bearer a", later).is_err());
    }
}
