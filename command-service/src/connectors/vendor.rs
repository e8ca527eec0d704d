//! Talking to a vendor's API: OAuth2 access tokens (refresh-token or client-credentials
//! grants), one refresh and retry when a token is refused (401), waits on 429 and 503 as long
//! as `Retry-After` asks (within a ceiling), and secrets that never reach a log line.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

/// A configured secret. Its `Debug` and `Display` print `***`, so settings, errors and logs
/// never carry it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Secret(value.to_owned()))
    }
}

/// How the connector obtains access tokens (RFC 6749 section 6 and section 4.4).
#[derive(Debug, Clone)]
pub struct OAuth {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// With a refresh token: the refresh-token grant; without: client credentials.
    pub refresh_token: Option<Secret>,
    pub scope: Option<String>,
}

/// How requests are authenticated: OAuth2 access tokens, or a fixed key in a header (Gainsight's
/// `Accesskey`).
#[derive(Debug, Clone)]
pub enum Auth {
    OAuth(OAuth),
    Header {
        name: &'static str,
        key: Secret,
    },
    /// A fixed key as a query parameter (TargetProcess's `access_token`).
    Query {
        name: &'static str,
        key: Secret,
    },
    /// A service account acting for `subject` (Google's domain-wide delegation): a JWT signed
    /// with the account's RSA key exchanged for an access token (RFC 7523).
    ServiceAccount {
        token_url: String,
        client_email: String,
        private_key: Secret,
        scope: String,
        subject: String,
    },
}

#[derive(serde::Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
}

/// An access token and, for vendors that say so in the token answer (Salesforce), the base URL
/// of the instance to call.
#[derive(Clone)]
struct Token {
    access_token: Secret,
    instance_url: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    instance_url: Option<String>,
    /// A rotated refresh token (Google and Microsoft may issue one).
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    /// The vendor refused the credentials: a configuration problem, not worth retrying.
    #[error("the vendor refused the credentials: {0}")]
    Unauthorized(String),
    #[error("the vendor answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the vendor kept asking to wait (429/503) beyond {0:?}")]
    Throttled(Duration),
    #[error("the vendor could not be reached: {0}")]
    Unreachable(String),
    #[error("the vendor's answer is not what its API documents: {0}")]
    Malformed(String),
}

/// Longest single wait a `Retry-After` is honoured for; longer asks end the run (it resumes
/// from its cursor next time).
const MAX_WAIT: Duration = Duration::from_secs(120);
/// Most waits on one request.
const MAX_WAITS: u32 = 5;
/// A request the vendor does not answer in this time fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// An authenticated client of one vendor.
pub struct VendorClient {
    http: reqwest::Client,
    auth: Auth,
    refresh_token: Mutex<Option<Secret>>,
    /// Where rotated refresh tokens are kept, once attached.
    vault: Mutex<Option<super::vault::TokenVault>>,
    token: Mutex<Option<Token>>,
    /// Total seconds waited on `Retry-After` (for the run's record and the metrics).
    pub waited: std::sync::atomic::AtomicU64,
    /// Headers sent with every API request (Microsoft Graph's `Prefer`).
    headers: Vec<(&'static str, String)>,
}

/// A waiting time from `Retry-After`: seconds, or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return Some(Duration::from_secs_f64(seconds.max(0.0)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default(),
    )
}

impl VendorClient {
    pub fn new(oauth: OAuth) -> Result<Self, VendorError> {
        Self::with_auth(Auth::OAuth(oauth))
    }

    pub fn with_auth(auth: Auth) -> Result<Self, VendorError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("cstrack/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| VendorError::Unreachable(error.to_string()))?;
        let refresh_token = match &auth {
            Auth::OAuth(oauth) => oauth.refresh_token.clone(),
            Auth::Header { .. } | Auth::Query { .. } | Auth::ServiceAccount { .. } => None,
        };
        Ok(VendorClient {
            http,
            refresh_token: Mutex::new(refresh_token),
            vault: Mutex::new(None),
            auth,
            token: Mutex::new(None),
            waited: Default::default(),
            headers: Vec::new(),
        })
    }

    /// Sends `name: value` with every API request.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Keeps the refresh tokens the vendor rotates in `vault`, and, the first time, takes the
    /// newest one kept there in place of the configured one.
    pub async fn keep_rotated_tokens_in(
        &self,
        vault: super::vault::TokenVault,
    ) -> Result<(), super::vault::VaultError> {
        let mut attached = self.vault.lock().await;
        if attached.is_none() {
            if let Some(newest) = vault.load().await? {
                *self.refresh_token.lock().await = Some(newest);
            }
            *attached = Some(vault);
        }
        Ok(())
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A new access token from the token endpoint.
    async fn fetch_token(&self) -> Result<Token, VendorError> {
        let oauth = match &self.auth {
            Auth::OAuth(oauth) => oauth,
            Auth::Header { key, .. } | Auth::Query { key, .. } => {
                return Ok(Token {
                    access_token: key.clone(),
                    instance_url: None,
                })
            }
            Auth::ServiceAccount {
                token_url,
                client_email,
                private_key,
                scope,
                subject,
            } => {
                let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose().as_bytes()).map_err(|_| {
                    VendorError::Unauthorized("the service account's private key is not an RSA PEM key".into())
                })?;
                let now = chrono::Utc::now().timestamp();
                let claims = Assertion {
                    iss: client_email,
                    scope,
                    aud: token_url,
                    sub: subject,
                    iat: now,
                    exp: now + 3600,
                };
                let assertion = jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
                    &claims,
                    &key,
                )
                .map_err(|error| VendorError::Unauthorized(format!("signing the assertion: {error}")))?;
                let form = [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned()),
                    ("assertion", assertion),
                ];
                return self.exchange(token_url, &form).await;
            }
        };
        let refresh = self.refresh_token.lock().await.clone();
        let mut form: Vec<(&str, String)> = vec![
            ("client_id", oauth.client_id.clone()),
            ("client_secret", oauth.client_secret.expose().to_owned()),
        ];
        match &refresh {
            Some(token) => {
                form.push(("grant_type", "refresh_token".into()));
                form.push(("refresh_token", token.expose().to_owned()));
            }
            None => form.push(("grant_type", "client_credentials".into())),
        }
        if let Some(scope) = &oauth.scope {
            form.push(("scope", scope.clone()));
        }
        self.exchange(&oauth.token_url, &form).await
    }

    /// Posts a token request and reads the answer (RFC 6749 section 5).
    async fn exchange(&self, token_url: &str, form: &[(&str, String)]) -> Result<Token, VendorError> {
        let answer = self.send_with_waits(|| self.http.post(token_url).form(form)).await?;
        let status = answer.status();
        let body = answer
            .text()
            .await
            .map_err(|error| VendorError::Unreachable(error.to_string()))?;
        if status.as_u16() == 400 || status.as_u16() == 401 {
            // RFC 6749 5.2: {"error": "invalid_grant", "error_description": ...}; never the secret.
            let reason = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|error| error["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| status.to_string());
            return Err(VendorError::Unauthorized(format!("token endpoint: {reason}")));
        }
        if !status.is_success() {
            return Err(VendorError::Status {
                status: status.as_u16(),
                body: truncate(&body),
            });
        }
        let answer: TokenAnswer =
            serde_json::from_str(&body).map_err(|error| VendorError::Malformed(format!("token answer: {error}")))?;
        if let Some(rotated) = answer.refresh_token.map(Secret) {
            if let Some(vault) = self.vault.lock().await.as_ref() {
                // The provider may have revoked the token used: the new one must outlive a
                // restart. Kept in memory in any case, so this run goes on.
                if let Err(error) = vault.keep(&rotated).await {
                    tracing::error!(%error, "a rotated refresh token could not be kept in the store");
                }
            }
            *self.refresh_token.lock().await = Some(rotated);
        }
        Ok(Token {
            access_token: Secret(answer.access_token),
            instance_url: answer.instance_url,
        })
    }

    async fn current_token(&self, renew: bool) -> Result<Token, VendorError> {
        let mut held = self.token.lock().await;
        if renew || held.is_none() {
            *held = Some(self.fetch_token().await?);
        }
        Ok(held.clone().expect("a token was just set"))
    }

    /// The instance base URL the token answer named, if any.
    pub async fn instance_url(&self) -> Result<Option<String>, VendorError> {
        Ok(self.current_token(false).await?.instance_url)
    }

    /// Sends a request, waiting and resending while the vendor answers 429 or 503.
    async fn send_with_waits(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, VendorError> {
        let mut waits = 0;
        loop {
            let answer = request()
                .send()
                .await
                .map_err(|error| VendorError::Unreachable(error.without_url().to_string()))?;
            let status = answer.status().as_u16();
            if status != 429 && status != 503 {
                return Ok(answer);
            }
            let wait = retry_after(answer.headers()).unwrap_or(Duration::from_secs(1 << waits.min(5)));
            if wait > MAX_WAIT || waits >= MAX_WAITS {
                return Err(VendorError::Throttled(wait));
            }
            tracing::info!(status, wait_seconds = wait.as_secs_f64(), "vendor asked to wait");
            self.waited
                .fetch_add(wait.as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(wait).await;
            waits += 1;
        }
    }

    /// GETs `url` with the access token and reads a JSON answer. A refused token (401) is
    /// renewed once and the request sent again.
    pub async fn get_json(&self, url: &str, query: &[(&str, &str)]) -> Result<Value, VendorError> {
        self.send_json(reqwest::Method::GET, url, query, None).await
    }

    /// Sends `body` as JSON with the access token; as [`VendorClient::get_json`] otherwise.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, VendorError> {
        let mut renewed = false;
        loop {
            let token = self.current_token(renewed).await?;
            let answer = self
                .send_with_waits(|| {
                    let request = self.headers.iter().fold(
                        self.http.request(method.clone(), url).query(query),
                        |request, (name, value)| request.header(*name, value),
                    );
                    let request = match &self.auth {
                        Auth::Header { name, .. } => request.header(*name, token.access_token.expose()),
                        Auth::Query { name, .. } => request.query(&[(*name, token.access_token.expose())]),
                        _ => request.bearer_auth(token.access_token.expose()),
                    };
                    match body {
                        Some(body) => request.json(body),
                        None => request,
                    }
                })
                .await?;
            let status = answer.status().as_u16();
            if status == 401 && !renewed && !matches!(self.auth, Auth::Header { .. } | Auth::Query { .. }) {
                tracing::info!("vendor refused the access token; renewing it");
                renewed = true;
                continue;
            }
            let bytes = answer
                .bytes()
                .await
                .map_err(|error| VendorError::Unreachable(error.without_url().to_string()))?;
            if bytes.len() > MAX_ANSWER_BYTES {
                return Err(VendorError::Malformed(format!("an answer of {} bytes", bytes.len())));
            }
            if status == 401 {
                return Err(VendorError::Unauthorized(truncate(&String::from_utf8_lossy(&bytes))));
            }
            if !(200..300).contains(&status) {
                return Err(VendorError::Status {
                    status,
                    body: truncate(&String::from_utf8_lossy(&bytes)),
                });
            }
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|error| VendorError::Malformed(error.to_string()));
        }
    }
}

/// A vendor's error body, short enough for a log line and a run's record.
fn truncate(body: &str) -> String {
    body.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let oauth = OAuth {
            token_url: "https://login.example/token".into(),
            client_id: "client".into(),
            client_secret: Secret::new("s3cr3t"),
            refresh_token: Some(Secret::new("r3fr3sh")),
            scope: None,
        };
        let printed = format!("{oauth:?} {}", oauth.client_secret);
        assert!(!printed.contains("s3cr3t") && !printed.contains("r3fr3sh"), "{printed}");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        headers.insert(reqwest::header::RETRY_AFTER, later.parse().unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
