//! The reference web client (`query-api/web`), served at `/app` from its built files: a
//! single-page application, so any path under `/app` without a file answers its `index.html`.
//! `/app/config.json` tells the client where the command API and the sign-in issuer are.

use std::path::{Path, PathBuf};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

#[derive(clap::Args, Debug, Clone)]
pub struct WebSettings {
    /// The built web client (`npm run build` in query-api/web writes it).
    #[arg(long, env = "CSTRACK_WEB_DIR", default_value = "query-api/web/dist")]
    pub web_dir: PathBuf,
    /// Where browsers reach the command API (the client sends its commands there).
    #[arg(long, env = "CSTRACK_COMMAND_PUBLIC_URL", default_value = "http://127.0.0.1:8081")]
    pub command_public_url: String,
    /// OpenID Connect issuer the client signs users in with (authorization code with PKCE);
    /// unset: bearer tokens only.
    #[arg(long, env = "CSTRACK_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The client id registered with that issuer.
    #[arg(long, env = "CSTRACK_OIDC_CLIENT_ID", default_value = "cstrack-web")]
    pub oidc_client_id: String,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            web_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/dist"),
            command_public_url: "http://127.0.0.1:8081".into(),
            oidc_issuer: None,
            oidc_client_id: "cstrack-web".into(),
        }
    }
}

#[derive(Clone)]
struct Web {
    dir: PathBuf,
    config: String,
    policy: HeaderValue,
}

pub fn router(settings: WebSettings) -> Router {
    let origin = |url: &str| {
        url.split('/')
            .take(3)
            .collect::<Vec<_>>()
            .join("/")
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ';' && *c != '\'')
            .collect::<String>()
    };
    let command = origin(&settings.command_public_url);
    let issuer = settings.oidc_issuer.as_deref().map(origin).unwrap_or_default();
    // Scripts from this origin only; Carbon's charts set inline styles. The client talks to this
    // service (GraphQL, its WebSocket), the command API and the sign-in issuer, nothing else.
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
         font-src 'self' data:; connect-src 'self' {command} {issuer}; form-action 'self' {issuer}; \
         base-uri 'self'; frame-ancestors 'none'"
    );
    let web = Web {
        dir: settings.web_dir.clone(),
        config: serde_json::json!({
            "commandUrl": settings.command_public_url.trim_end_matches('/'),
            "oidc": settings.oidc_issuer.as_ref().map(|issuer| serde_json::json!({
                "issuer": issuer.trim_end_matches('/'),
                "clientId": settings.oidc_client_id,
            })),
        })
        .to_string(),
        policy: HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'self'")),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/app/") }))
        .route("/app", get(|| async { Redirect::to("/app/") }))
        .route("/app/config.json", get(config).with_state(web.clone()))
        .route("/app/", get(file).with_state(web.clone()))
        .route("/app/{*path}", get(file).with_state(web))
}

async fn config(axum::extract::State(web): axum::extract::State<Web>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        web.config,
    )
        .into_response()
}

/// A path under `/app` that names a file: letters, digits, `-`, `_`, `.` and `/`, no `..`.
fn safe(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 200
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !path
            .split('/')
            .any(|part| part == ".." || part == "." || part.is_empty())
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript",
        "css" => "text/css",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn file(
    axum::extract::State(web): axum::extract::State<Web>,
    path: Option<axum::extract::Path<String>>,
) -> Response {
    let path = path.map(|axum::extract::Path(path)| path).unwrap_or_default();
    let asset = (!path.is_empty() && path.contains('.')).then_some(path);
    match asset {
        Some(asset) if safe(&asset) => {
            let file = web.dir.join(&asset);
            match tokio::fs::read(&file).await {
                Ok(bytes) => {
                    // Vite names built assets by their content: they never change.
                    let cache = if asset.starts_with("assets/") {
                        "public, max-age=31536000, immutable"
                    } else {
                        "no-cache"
                    };
                    (
                        [
                            (header::CONTENT_TYPE, content_type(&file)),
                            (header::CACHE_CONTROL, cache),
                            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                        ],
                        bytes,
                    )
                        .into_response()
                }
                Err(_) => not_found(),
            }
        }
        Some(_) => not_found(),
        // A client-side route: the application's page.
        None => match tokio::fs::read(web.dir.join("index.html")).await {
            Ok(page) => (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    ),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                    (header::CONTENT_SECURITY_POLICY, web.policy.clone()),
                    (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                ],
                page,
            )
                .into_response(),
            Err(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!(
                    "The web client is not built in {}: run `npm ci && npm run build` in query-api/web \
                     (deploy/start.sh does when Node.js is installed).\n",
                    web.dir.display()
                ),
            )
                .into_response(),
        },
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": {"code": "NOT_FOUND", "message": "no such file"}})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::safe;

    #[test]
    fn only_plain_relative_paths_name_files() {
        assert!(safe("assets/index-3f2a.js"));
        assert!(safe("favicon.svg"));
        for hostile in [
            "../etc/passwd",
            "assets/../../x.js",
            "/etc/passwd",
            "a//b.js",
            "a/./b.js",
            "a\\b.js",
            "%2e%2e/x.js",
        ] {
            assert!(!safe(hostile), "{hostile}");
        }
    }
}
