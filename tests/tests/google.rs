//! The Google Workspace connector against a local server answering as Google documents: the
//! token endpoint taking a service account's signed JWT (RFC 7523, verified here with the
//! account's public key), Gmail's `profile`, `messages` (with `pageToken`), `messages/{id}` in
//! `format=metadata` and `history` from a `startHistoryId` (404 once it is too old), and
//! Calendar's `events` with `pageToken`, `nextSyncToken` and `syncToken` (410 once expired).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use command_service::connectors::google::{Google, GoogleSettings};
use command_service::connectors::vendor::Secret;
use command_service::connectors::{self, ConnectorMetrics};
use serde_json::{json, Value};
use tests::{uuid, TestSystem};

const MAILBOX: &str = "dana@vendor.example";
const CLIENT_EMAIL: &str = "cstrack-sync@project.iam.gserviceaccount.com";

#[derive(Default)]
struct Workspace {
    base: String,
    /// Messages by id, in `format=metadata`, with the history id that added each.
    messages: Vec<(u64, Value)>,
    history_id: u64,
    /// History ids below this are gone (404).
    oldest_history: u64,
    events: Vec<Value>,
    /// Events changed since the last sync token was issued.
    changed_events: Vec<Value>,
    sync_tokens: usize,
    expire_sync_token: bool,
    tokens: usize,
    subjects: Vec<String>,
    /// The next request is refused as if the token had expired, or throttled with 429.
    expire_next: bool,
    throttle_next: bool,
}

type Shared = Arc<Mutex<Workspace>>;

async fn token(State(workspace): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let public = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/service-account-test-key.pub.pem"
    ))
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    let mut workspace = workspace.lock().unwrap();
    validation.set_audience(&[format!("{}/token", workspace.base)]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    let claims = jsonwebtoken::decode::<Value>(
        form.get("assertion").map(String::as_str).unwrap_or_default(),
        &jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap(),
        &validation,
    );
    let Ok(claims) = claims else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."})),
        )
            .into_response();
    };
    assert!(claims.claims["scope"].as_str().unwrap().contains("gmail.metadata"));
    workspace
        .subjects
        .push(claims.claims["sub"].as_str().unwrap().to_owned());
    workspace.tokens += 1;
    Json(
        json!({"access_token": format!("ya29.token-{}", workspace.tokens), "expires_in": 3599, "token_type": "Bearer"}),
    )
    .into_response()
}

fn authorized(workspace: &mut Workspace, headers: &HeaderMap) -> Option<Response> {
    if std::mem::take(&mut workspace.throttle_next) {
        return Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                Json(json!({"error": {"code": 429, "message": "Rate Limit Exceeded", "status": "RESOURCE_EXHAUSTED"}})),
            )
                .into_response(),
        );
    }
    let expected = format!("Bearer ya29.token-{}", workspace.tokens);
    let expired = std::mem::take(&mut workspace.expire_next);
    (expired || headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str())).then(|| {
        (StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}})))
            .into_response()
    })
}

async fn profile(State(workspace): State<Shared>, headers: HeaderMap, Path(user): Path<String>) -> Response {
    let mut workspace = workspace.lock().unwrap();
    if let Some(refusal) = authorized(&mut workspace, &headers) {
        return refusal;
    }
    Json(
        json!({"emailAddress": user, "messagesTotal": workspace.messages.len(), "threadsTotal": 3,
                "historyId": workspace.history_id.to_string()}),
    )
    .into_response()
}

async fn list(
    State(workspace): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let mut workspace = workspace.lock().unwrap();
    if let Some(refusal) = authorized(&mut workspace, &headers) {
        return refusal;
    }
    assert!(params["q"].starts_with("newer_than:"), "{params:?}");
    let all: Vec<Value> = workspace
        .messages
        .iter()
        .map(|(_, m)| json!({"id": m["id"], "threadId": m["threadId"]}))
        .collect();
    // Two per page, newest first as Gmail lists them.
    let all: Vec<Value> = all.into_iter().rev().collect();
    let start: usize = params.get("pageToken").map_or(0, |token| token.parse().unwrap());
    let page: Vec<Value> = all.iter().skip(start).take(2).cloned().collect();
    let mut answer = json!({"messages": page, "resultSizeEstimate": all.len()});
    if start + 2 < all.len() {
        answer["nextPageToken"] = json!((start + 2).to_string());
    }
    Json(answer).into_response()
}

async fn message(
    State(workspace): State<Shared>,
    headers: HeaderMap,
    Path((_user, id)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let mut workspace = workspace.lock().unwrap();
    if let Some(refusal) = authorized(&mut workspace, &headers) {
        return refusal;
    }
    assert!(params.contains(&("format".into(), "metadata".into())), "{params:?}");
    match workspace.messages.iter().find(|(_, m)| m["id"] == id.as_str()) {
        Some((_, m)) => Json(m.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404, "message": "Requested entity was not found."}})),
        )
            .into_response(),
    }
}

async fn history(
    State(workspace): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let mut workspace = workspace.lock().unwrap();
    if let Some(refusal) = authorized(&mut workspace, &headers) {
        return refusal;
    }
    let start: u64 = params["startHistoryId"].parse().unwrap();
    if start < workspace.oldest_history {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404, "message": "Requested entity was not found."}})),
        )
            .into_response();
    }
    let added: Vec<Value> = workspace
        .messages
        .iter()
        .filter(|(added_at, _)| *added_at > start)
        .map(|(added_at, m)| json!({"id": added_at.to_string(), "messages": [{"id": m["id"], "threadId": m["threadId"]}],
                                   "messagesAdded": [{"message": {"id": m["id"], "threadId": m["threadId"], "labelIds": m["labelIds"]}}]}))
        .collect();
    Json(json!({"history": added, "historyId": workspace.history_id.to_string()})).into_response()
}

async fn events(
    State(workspace): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let mut workspace = workspace.lock().unwrap();
    if let Some(refusal) = authorized(&mut workspace, &headers) {
        return refusal;
    }
    if params.contains_key("syncToken") {
        assert!(!params.contains_key("timeMin"), "timeMin cannot go with syncToken");
        if workspace.expire_sync_token {
            workspace.expire_sync_token = false;
            return (StatusCode::GONE, Json(json!({"error": {"code": 410, "message": "Sync token is no longer valid, a full sync is required."}})))
                .into_response();
        }
        let items = std::mem::take(&mut workspace.changed_events);
        workspace.sync_tokens += 1;
        return Json(json!({"kind": "calendar#events", "items": items, "nextSyncToken": format!("sync-{}", workspace.sync_tokens)}))
            .into_response();
    }
    assert!(params.contains_key("timeMin"));
    workspace.changed_events.clear();
    let all = workspace.events.clone();
    if !params.contains_key("pageToken") {
        return Json(json!({"kind": "calendar#events", "items": all[..1].to_vec(), "nextPageToken": "events-2"}))
            .into_response();
    }
    workspace.sync_tokens += 1;
    Json(json!({"kind": "calendar#events", "items": all[1..].to_vec(), "nextSyncToken": format!("sync-{}", workspace.sync_tokens)}))
        .into_response()
}

async fn fake_google() -> (String, Shared) {
    let workspace: Shared = Arc::default();
    let app = Router::new()
        .route("/token", post(token))
        .route("/gmail/v1/users/{user}/profile", get(profile))
        .route("/gmail/v1/users/{user}/messages", get(list))
        .route("/gmail/v1/users/{user}/messages/{id}", get(message))
        .route("/gmail/v1/users/{user}/history", get(history))
        .route("/calendar/v3/calendars/{calendar}/events", get(events))
        .with_state(workspace.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    workspace.lock().unwrap().base = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (base, workspace)
}

fn gmail(id: &str, thread: &str, from: &str, to: &str, hours_ago: i64, label: &str) -> Value {
    let at = Utc::now() - Duration::hours(hours_ago);
    json!({"id": id, "threadId": thread, "labelIds": [label], "snippet": "", "historyId": "1",
           "internalDate": at.timestamp_millis().to_string(), "sizeEstimate": 2048,
           "payload": {"mimeType": "multipart/alternative", "headers": [
               {"name": "From", "value": from}, {"name": "To", "value": to},
               {"name": "Subject", "value": format!("Subject {id}")},
               {"name": "Date", "value": at.to_rfc2822()}]}})
}

fn event(id: &str, attendee: &str, start: DateTime<Utc>, minutes: i64, status: &str) -> Value {
    json!({"kind": "calendar#event", "id": id, "status": status, "summary": format!("Call {id}"),
           "organizer": {"email": MAILBOX, "self": true},
           "start": {"dateTime": start.to_rfc3339()}, "end": {"dateTime": (start + Duration::minutes(minutes)).to_rfc3339()},
           "attendees": [{"email": MAILBOX, "organizer": true, "responseStatus": "accepted"},
                         {"email": attendee, "responseStatus": "needsAction"}]})
}

async fn gmail_events(system: &TestSystem) -> Vec<(String, Value)> {
    sqlx::query_as(
        "SELECT event_type, payload FROM events WHERE metadata ->> 'source' = 'google' ORDER BY global_position",
    )
    .fetch_all(&system.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn gmail_and_calendar_arrive_once_through_history_and_sync_tokens() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana").await;
    let acme = system
        .onboard("Acme", "Enterprise", "300000", csm, Utc::now() - Duration::days(90))
        .await;
    let priya = uuid(
        &system
            .post_ok(
                &format!("/api/v1/customers/{acme}/stakeholders"),
                &json!({"name": "Priya", "role": "COO", "level": "executive", "email": "priya@acme.example"}),
            )
            .await["stakeholder_id"],
    );
    system.caught_up().await;
    let (base, workspace) = fake_google().await;
    {
        let mut workspace = workspace.lock().unwrap();
        workspace.messages = vec![
            (
                10,
                gmail(
                    "g1",
                    "t1",
                    "Dana <dana@vendor.example>",
                    "\"Priya\" <priya@acme.example>",
                    9,
                    "SENT",
                ),
            ),
            (11, gmail("g2", "t2", "news@letters.example", MAILBOX, 8, "INBOX")),
            (12, gmail("g3", "t1", "Priya <priya@acme.example>", MAILBOX, 5, "INBOX")),
            // Malformed: no From header.
            (
                12,
                json!({"id": "g9", "threadId": "t9", "labelIds": ["INBOX"], "internalDate": "1764590400000",
                        "payload": {"headers": [{"name": "Subject", "value": "?"}]}}),
            ),
        ];
        workspace.expire_next = true;
        workspace.throttle_next = true;
        workspace.history_id = 12;
        let now = Utc::now();
        workspace.events = vec![
            event("c1", "priya@acme.example", now - Duration::hours(48), 30, "confirmed"),
            event("c2", "priya@acme.example", now + Duration::hours(24), 60, "confirmed"),
        ];
    }
    let key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/service-account-test-key.pem"
    ))
    .unwrap();
    let settings = GoogleSettings {
        client_email: Some(CLIENT_EMAIL.into()),
        private_key: Secret::new(key),
        token_url: format!("{base}/token"),
        gmail_url: format!("{base}/gmail/v1"),
        calendar_url: format!("{base}/calendar/v3"),
        mailboxes: MAILBOX.into(),
        days: 30,
        interval_seconds: 60.0,
    };
    let handlers = command_service::handlers(&system.pool);
    let connector = Google::new(settings).unwrap();
    let metrics = ConnectorMetrics::unregistered();

    let first = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status, "succeeded", "{first:?}");
    // g1, g3, the correction g3 makes to g1, and meeting c1; the newsletter concerns no customer.
    assert_eq!((first.counts.applied, first.counts.ignored), (4, 1), "{first:?}");
    assert_eq!(first.counts.skips.len(), 1, "{first:?}");
    assert_eq!(
        (
            first.counts.skips[0].record_id.as_str(),
            first.counts.skips[0].code.as_str()
        ),
        ("g9", "malformed_record")
    );
    // The throttled request waited its second; the refused token was renewed with a new assertion.
    assert_eq!(
        workspace.lock().unwrap().subjects,
        [MAILBOX, MAILBOX],
        "the service account acts for the mailbox"
    );
    let events = gmail_events(&system).await;
    let logged: Vec<&Value> = events
        .iter()
        .filter(|(k, _)| k == "ActivityLogged")
        .map(|(_, p)| &p["ActivityLogged"])
        .collect();
    let g1 = logged.iter().find(|a| a["subject"] == "Subject g1").unwrap();
    assert_eq!(
        (g1["direction"].as_str(), g1["participants"].clone()),
        (Some("outbound"), json!([priya]))
    );
    let corrected = events
        .iter()
        .find(|(k, _)| k == "ActivityCorrected")
        .map(|(_, p)| &p["ActivityCorrected"])
        .unwrap();
    assert_eq!(corrected["activity_id"], g1["activity_id"]);
    assert_eq!(corrected["response_time_hours"], 4.0);
    let c1 = logged.iter().find(|a| a["subject"] == "Call c1").unwrap();
    assert_eq!(
        (c1["kind"].as_str(), c1["duration_minutes"].as_u64()),
        (Some("meeting"), Some(30))
    );
    system.caught_up().await;
    let touch = system
        .graphql(
            "query($a: UUID!) { customer(id: $a) { nextScheduledTouch { subject source } } }",
            json!({"a": acme}),
        )
        .await;
    assert_eq!(
        touch["customer"]["nextScheduledTouch"],
        json!({"subject": "Call c2", "source": "google"})
    );

    // Again: the history and the sync token say nothing changed.
    let before = gmail_events(&system).await.len();
    let again = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.counts.applied, again.counts.records_read), (0, 0), "{again:?}");

    // A new message arrives through the history; the meeting is cancelled through the sync token.
    {
        let mut workspace = workspace.lock().unwrap();
        workspace
            .messages
            .push((13, gmail("g4", "t4", "Priya <priya@acme.example>", MAILBOX, 1, "INBOX")));
        workspace.history_id = 13;
        let cancelled = json!({"kind": "calendar#event", "id": "c2", "status": "cancelled"});
        workspace.events[1] = cancelled.clone();
        workspace.changed_events = vec![cancelled];
    }
    let later = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.counts.applied, 1, "{later:?}");
    assert_eq!(gmail_events(&system).await.len(), before + 1);
    system.caught_up().await;
    let touch = system
        .graphql(
            "query($a: UUID!) { customer(id: $a) { nextScheduledTouch { subject } } }",
            json!({"a": acme}),
        )
        .await;
    assert_eq!(touch["customer"]["nextScheduledTouch"], Value::Null);

    // History too old and a sync token expired: both read in full again, appending nothing new.
    {
        let mut workspace = workspace.lock().unwrap();
        workspace.oldest_history = 100;
        workspace.expire_sync_token = true;
    }
    let resynced = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resynced.status, "succeeded", "{resynced:?}");
    assert_eq!(resynced.counts.applied, 0, "{resynced:?}");
    assert_eq!(gmail_events(&system).await.len(), before + 1);
    system.stop().await;
}
