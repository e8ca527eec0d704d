//! The reference web client, end to end in a real browser: a whole system with a small book of
//! business, the built client served by the query API, and the Playwright suite of
//! `query-api/web/e2e` driving Debian's Chromium against it (sign-in, the dashboard against the
//! API's own answers, live updates after a form's command, alerts, the partner portal, the
//! auditor's verified history, field errors, and axe-core on every view).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{Duration as Days, Utc};
use events::metadata::Role;
use serde_json::json;
use tests::{eventually, token, uuid, TestSystem};

/// A local OpenID Connect issuer that speaks the protocol the web client uses: discovery, an
/// authorization endpoint with a sign-in page, and a token endpoint that checks PKCE (S256)
/// before it issues an RS256 access token naming the user's cstrack role.
mod issuer {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::extract::{Form, Query, State};
    use axum::http::{header, StatusCode};
    use axum::response::{Html, IntoResponse, Redirect, Response};
    use axum::routing::get;
    use axum::{Json, Router};
    use base64::Engine;
    use serde::Deserialize;
    use serde_json::json;
    use sha2::Digest;

    pub const CLIENT_ID: &str = "cstrack-web";
    /// The people the issuer signs in: user id, display name, cstrack role.
    const PEOPLE: [(&str, &str, &str); 2] = [("dana", "Dana Whitfield", "csm"), ("mo", "Mo Reyes", "manager")];

    struct Grant {
        redirect_uri: String,
        challenge: String,
        user: &'static str,
        role: &'static str,
    }

    #[derive(Clone)]
    struct Issuer {
        url: String,
        grants: Arc<Mutex<HashMap<String, Grant>>>,
    }

    #[derive(Deserialize)]
    struct Authorize {
        response_type: String,
        client_id: String,
        redirect_uri: String,
        state: String,
        code_challenge: String,
        code_challenge_method: String,
        #[serde(default)]
        user: Option<String>,
    }

    #[derive(Deserialize)]
    struct TokenRequest {
        grant_type: String,
        code: String,
        redirect_uri: String,
        client_id: String,
        code_verifier: String,
    }

    fn cors(response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::HeaderValue::from_static("*"),
        );
        response
    }

    fn escape(text: &str) -> String {
        text.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;")
    }

    async fn discovery(State(issuer): State<Issuer>) -> Response {
        cors(Json(json!({
            "issuer": issuer.url,
            "authorization_endpoint": format!("{}/authorize", issuer.url),
            "token_endpoint": format!("{}/token", issuer.url),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        })))
    }

    /// The sign-in page: one button per person, each posting the request back with its choice.
    async fn sign_in_page(Query(request): Query<Authorize>) -> Response {
        if request.response_type != "code" || request.client_id != CLIENT_ID || request.code_challenge_method != "S256"
        {
            return (StatusCode::BAD_REQUEST, "unsupported authorization request").into_response();
        }
        let hidden = [
            ("response_type", &request.response_type),
            ("client_id", &request.client_id),
            ("redirect_uri", &request.redirect_uri),
            ("state", &request.state),
            ("code_challenge", &request.code_challenge),
            ("code_challenge_method", &request.code_challenge_method),
        ]
        .iter()
        .map(|(name, value)| format!(r#"<input type="hidden" name="{name}" value="{}">"#, escape(value)))
        .collect::<String>();
        let buttons = PEOPLE
            .iter()
            .map(|(id, name, role)| format!(r#"<button name="user" value="{id}">Continue as {name} ({role})</button>"#))
            .collect::<String>();
        Html(format!(
            r#"<!doctype html><html lang="en"><title>Example identity provider</title><h1>Sign in</h1><form method="post" action="/authorize">{hidden}{buttons}</form></html>"#
        ))
        .into_response()
    }

    async fn approve(State(issuer): State<Issuer>, Form(request): Form<Authorize>) -> Response {
        let Some((user, _, role)) = PEOPLE.iter().find(|(id, _, _)| Some(*id) == request.user.as_deref()) else {
            return (StatusCode::BAD_REQUEST, "no such person").into_response();
        };
        let code = uuid::Uuid::new_v4().to_string();
        issuer.grants.lock().unwrap().insert(
            code.clone(),
            Grant {
                redirect_uri: request.redirect_uri.clone(),
                challenge: request.code_challenge,
                user,
                role,
            },
        );
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", &request.state)
            .finish();
        Redirect::to(&format!("{}?{query}", request.redirect_uri)).into_response()
    }

    async fn token(State(issuer): State<Issuer>, Form(request): Form<TokenRequest>) -> Response {
        let refused = |error: &str| cors((StatusCode::BAD_REQUEST, Json(json!({"error": error}))));
        let Some(grant) = issuer.grants.lock().unwrap().remove(&request.code) else {
            return refused("invalid_grant");
        };
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(request.code_verifier.as_bytes()));
        if request.grant_type != "authorization_code"
            || request.client_id != CLIENT_ID
            || request.redirect_uri != grant.redirect_uri
            || challenge != grant.challenge
        {
            return refused("invalid_grant");
        }
        let now = chrono::Utc::now().timestamp();
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("../fixtures/service-account-test-key.pem"))
            .expect("the fixture is an RSA key");
        let access_token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &json!({"iss": issuer.url, "aud": "cstrack-api", "sub": grant.user, "role": grant.role, "iat": now, "exp": now + 3600}),
            &key,
        )
        .expect("a token is signed");
        cors(Json(
            json!({"access_token": access_token, "token_type": "Bearer", "expires_in": 3600}),
        ))
    }

    /// Starts the issuer on a free port; returns its URL.
    pub async fn start() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let issuer = Issuer {
            url: url.clone(),
            grants: Default::default(),
        };
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(sign_in_page).post(approve))
            .route("/token", axum::routing::post(token))
            .with_state(issuer);
        tokio::spawn(async move { axum::serve(listener, router).await.ok() });
        url
    }
}

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../query-api/web")
}

#[tokio::test]
async fn the_web_client_serves_a_cs_team_in_a_real_browser() {
    let web = web_dir();
    assert!(
        web.join("dist/index.html").exists() && web.join("node_modules/playwright-core").exists(),
        "the web client is not built: run `npm ci && npm run build` in query-api/web (deploy/test.sh does)"
    );
    let chromium = std::env::var("CSTRACK_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium is needed for this test (deploy/test.sh installs it: apt-get install chromium)"
    );

    let system = TestSystem::spawn().await.unwrap();
    let now = Utc::now();
    let today = now.date_naive();
    let dana = system.register_csm("Dana Whitfield").await;
    let omar = system.register_csm("Omar Haddad").await;
    let partner = uuid(
        &system
            .post_ok("/api/v1/partners", &json!({"name": "Contoso Services"}))
            .await["partner_id"],
    );
    let onboarded = now - Days::days(200);
    let acme = system
        .onboard("Acme Corp", "Enterprise", "250000.00", dana, onboarded)
        .await;
    let globex = system.onboard("Globex", "MidMarket", "80000.50", dana, onboarded).await;
    let initech = system.onboard("Initech", "SMB", "12000.00", omar, onboarded).await;
    // What the system knew before Umbrella was recorded: a named snapshot analysts rebuild.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before_umbrella = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let umbrella = system.onboard("Umbrella", "SMB", "9000.00", omar, onboarded).await;
    // Two renewals in the next 90 days, for the renewals view and the dashboard's pipeline.
    for (customer, days) in [(globex, 40), (initech, 75)] {
        let (status, answer) = system
            .send(
                reqwest::Method::PATCH,
                &format!("/api/v1/customers/{customer}"),
                Some(&json!({"renewal_date": today + Days::days(days)})),
            )
            .await;
        assert!(status.is_success(), "{answer}");
    }
    for customer in [initech] {
        system
            .post_ok(
                &format!("/api/v1/customers/{customer}/partners"),
                &json!({"partner_id": partner}),
            )
            .await;
    }
    let priya = system.add_stakeholder(acme, "Priya Natarajan", "executive").await;
    let lee = system.add_stakeholder(acme, "Lee Chen", "champion").await;
    for weeks_ago in (1..=12).rev() {
        let day = today - Days::weeks(weeks_ago);
        system.record_health(acme, 60.0 + weeks_ago as f64, day).await;
        if weeks_ago % 3 == 0 {
            system.log_activity(acme, "meeting", day, &[priya, lee]).await;
        }
        system.log_activity(acme, "email", day, &[lee]).await;
    }
    system.log_activity(umbrella, "email", today - Days::days(3), &[]).await;
    system.record_health(initech, 72.0, today - Days::days(10)).await;
    // A red health score raises an alert for Dana to acknowledge.
    system.record_health(globex, 30.0, today - Days::days(1)).await;
    let task = json!({"title": "Send the renewal quote", "kind": "renewal", "priority": "high",
        "assignee_id": "dana", "due_date": today - Days::days(2)});
    system.post_ok(&format!("/api/v1/customers/{acme}/tasks"), &task).await;
    system.caught_up().await;
    eventually(Duration::from_secs(30), || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM alerts WHERE customer_id = $1 AND kind = 'health_red'")
            .bind(globex)
            .fetch_one(&system.pool)
            .await
            .is_ok_and(|alerts| alerts > 0)
    })
    .await
    .expect("the red health score raised an alert");
    projection_service::rebuild::rebuild(
        &system.pool,
        &system.database_url,
        &projection_service::rebuild::RebuildRequest {
            projectors: projection_service::projectors(),
            known_at: Some(before_umbrella),
            snapshot_name: Some("before-umbrella".into()),
            batch: 10_000,
            pass_events: 100_000,
            fold_workers: None,
        },
    )
    .await
    .expect("the snapshot is rebuilt");

    // A second query API over the same read models that signs users in with the issuer: it
    // accepts the issuer's RS256 tokens (its key, its name as `iss`).
    let issuer_url = issuer::start().await;
    let sso = query_api::Application::build(&query_api::Settings {
        database: events::service::settings::DatabaseSettings {
            database_url: system.database_url.clone(),
            database_pool: 2,
            database_acquire_seconds: 30,
        },
        auth: events::service::auth::AuthSettings {
            jwt_secret: None,
            jwt_public_key_file: Some(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/service-account-test-key.pub.pem"),
            ),
            jwt_issuer: issuer_url.clone(),
            jwt_audience: "cstrack-api".into(),
        },
        listen: "127.0.0.1:0".parse().unwrap(),
        graphiql: false,
        http_limits: Default::default(),
        web: query_api::web::WebSettings {
            command_public_url: system.command_url.clone(),
            oidc_issuer: Some(issuer_url.clone()),
            oidc_client_id: issuer::CLIENT_ID.into(),
            ..Default::default()
        },
    })
    .await
    .unwrap();
    let sso_url = format!("http://127.0.0.1:{}", sso.port());
    let (stop_sso, sso_stopped) = tokio::sync::oneshot::channel::<()>();
    let sso = tokio::spawn(sso.run_until_stopped(async {
        sso_stopped.await.ok();
    }));

    let app_url = system.graphql_url.trim_end_matches("/graphql").to_owned();
    let artifacts = web.join("test-results");
    let environment = json!({
        "appUrl": app_url,
        "ssoAppUrl": sso_url,
        "graphqlUrl": system.graphql_url,
        "commandUrl": system.command_url,
        "asOf": today,
        "tokens": {
            "admin": system.admin,
            "csm": token(Role::Csm, "dana", None),
            "partner": token(Role::Partner, "partner-user", Some(partner)),
            "auditor": token(Role::Auditor, "auditor-1", None),
        },
        "customers": {"acme": acme, "globex": globex, "initech": initech, "umbrella": umbrella},
        "partnerCustomers": ["Initech"],
        "chromium": chromium,
        "artifacts": artifacts,
    });
    let run = tokio::process::Command::new("node")
        .args([
            "--test",
            "--test-concurrency=1",
            "--test-reporter=spec",
            "e2e/app.test.mjs",
        ])
        .current_dir(&web)
        .env("CSTRACK_E2E", environment.to_string())
        .output()
        .await
        .expect("node runs the browser suite");
    let output = format!(
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    stop_sso.send(()).ok();
    sso.await.ok();
    system.stop().await;
    assert!(run.status.success(), "the browser suite failed:\n{output}");
    let count = |label: &str| {
        output
            .lines()
            .find_map(|line| line.trim().strip_prefix(&format!("ℹ {label} ")))
            .and_then(|n| n.trim().parse::<usize>().ok())
    };
    assert_eq!(count("fail"), Some(0), "the browser suite reported failures:\n{output}");
    assert!(
        count("pass").unwrap_or(0) >= 8,
        "the browser suite ran too few tests:\n{output}"
    );
    eprintln!("{output}");
}
