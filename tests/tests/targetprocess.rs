//! The TargetProcess connector against a local server answering as TargetProcess's REST API v1
//! documents: `access_token` in the query, `/api/v1/Assignables?where=(Id in (...))` with
//! `include`, `format=json` and `take`, answers `{"Items": [...], "Next": "..."}` with
//! `/Date(ms+zone)/` dates, and 401 for a bad token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use command_service::connectors::targetprocess::{TargetProcess, TargetProcessSettings};
use command_service::connectors::vendor::Secret;
use command_service::connectors::{self, ConnectorMetrics};
use events::metadata::Role;
use reqwest::Method;
use serde_json::{json, Value};
use tests::{token, TestSystem};

const TOKEN: &str = "MTp0cC10b2tlbg==";

#[derive(Default)]
struct Account {
    base: String,
    items: Vec<Value>,
    requests: usize,
    /// The next request is throttled (429 with `Retry-After: 1`).
    throttle_next: bool,
}

type Shared = Arc<Mutex<Account>>;

async fn assignables(State(account): State<Shared>, Query(params): Query<HashMap<String, String>>) -> Response {
    let mut account = account.lock().unwrap();
    if params.get("access_token").map(String::as_str) != Some(TOKEN) {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    }
    if std::mem::take(&mut account.throttle_next) {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "Too many requests",
        )
            .into_response();
    }
    account.requests += 1;
    // A page's own query, or the `Next` of the first page.
    let skip: usize = params.get("skip").map_or(0, |skip| skip.parse().unwrap());
    let filter = params.get("where").cloned().unwrap_or_default();
    let ids: Vec<i64> = filter
        .trim_start_matches("(Id in (")
        .trim_end_matches("))")
        .split(',')
        .filter_map(|id| id.trim().parse().ok())
        .collect();
    let matching: Vec<Value> = account
        .items
        .iter()
        .filter(|item| item["Id"].as_i64().is_none_or(|id| ids.contains(&id)))
        .cloned()
        .collect();
    let page: Vec<Value> = matching.iter().skip(skip).take(2).cloned().collect();
    let mut answer = json!({"Items": page});
    if skip + 2 < matching.len() {
        answer["Next"] = json!(format!(
            "{}/api/v1/Assignables?where={}&include=[Id,Name,EntityType,EntityState,ModifyDate]&format=json&take=2&skip={}",
            account.base,
            urlencode(&filter),
            skip + 2
        ));
    }
    Json(answer).into_response()
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn fake_targetprocess() -> (String, Shared) {
    let account: Shared = Arc::default();
    let app = Router::new()
        .route("/api/v1/Assignables", get(assignables))
        .with_state(account.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    account.lock().unwrap().base = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (base, account)
}

fn item(id: i64, name: &str, kind: &str, state: &str) -> Value {
    json!({"ResourceType": kind, "Id": id, "Name": name, "ModifyDate": "/Date(1764590400000+0300)/",
           "EntityType": {"ResourceType": "EntityType", "Id": 4, "Name": kind},
           "EntityState": {"ResourceType": "EntityState", "Id": 46, "Name": state}})
}

#[tokio::test]
async fn linked_work_items_show_their_state_on_the_customer() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana").await;
    let acme = system
        .onboard(
            "Acme",
            "Enterprise",
            "300000",
            csm,
            Utc::now() - chrono::Duration::days(30),
        )
        .await;
    let (base, account) = fake_targetprocess().await;
    account.lock().unwrap().items = vec![
        item(101, "SSO for Acme", "UserStory", "In Progress"),
        item(102, "Export times out", "Bug", "Open"),
        item(103, "Audit log", "Feature", "Done"),
        json!({"ResourceType": "UserStory", "Id": 104, "Name": "No state"}),
    ];
    let link = |ids: Value| json!({"targetprocess_ids": ids});
    let dana = token(Role::Csm, "dana", None);
    let path = format!("/api/v1/customers/{acme}/work-items");
    let (status, answer) = system
        .send_as(
            &dana,
            Method::PUT,
            &path,
            Some(&link(json!([101, 102, 103, 104, 999, 101]))),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["work_items"].as_array().unwrap().len(),
        5,
        "duplicates dropped: {answer}"
    );
    for (body, field) in [(link(json!([0])), "targetprocess_ids"), (json!({"ids": [1]}), "ids")] {
        let (status, answer) = system.send_as(&dana, Method::PUT, &path, Some(&body)).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(
            answer["fields"].get(field).is_some() || answer["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    let partner = token(Role::Partner, "pat", Some(uuid::Uuid::now_v7()));
    let (status, _) = system
        .send_as(&partner, Method::PUT, &path, Some(&link(json!([1]))))
        .await;
    assert_eq!(status, 403);
    let (status, _) = system
        .send_as(
            &dana,
            Method::PUT,
            &format!("/api/v1/customers/{}/work-items", uuid::Uuid::now_v7()),
            Some(&link(json!([1]))),
        )
        .await;
    assert_eq!(status, 404);

    let settings = TargetProcessSettings {
        url: Some(base.clone()),
        access_token: Secret::new(TOKEN),
        interval_seconds: 60.0,
    };
    account.lock().unwrap().throttle_next = true;
    let handlers = command_service::handlers(&system.pool);
    let metrics = ConnectorMetrics::unregistered();
    let connector = TargetProcess::new(settings.clone()).unwrap();
    let first = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status, "succeeded", "{first:?}");
    assert_eq!((first.counts.applied, first.counts.events), (3, 0), "{first:?}");
    let skipped: Vec<(&str, &str)> = first
        .counts
        .skips
        .iter()
        .map(|s| (s.record_id.as_str(), s.code.as_str()))
        .collect();
    assert_eq!(skipped, [("104", "malformed_record"), ("999", "unknown_work_item")]);
    assert_eq!(
        account.lock().unwrap().requests,
        2,
        "two pages along Next, after one throttled request"
    );
    let waited: i64 = sqlx::query_scalar("SELECT waited_ms FROM connector_runs WHERE run_id = $1")
        .bind(first.run_id)
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert!(waited >= 1000, "the run waited out Retry-After: {waited} ms");
    system.caught_up().await;

    let answer = system
        .graphql(
            "query($a: UUID!) { customer(id: $a) { workItems { entityId name kind state modifiedAt } } }",
            json!({"a": acme}),
        )
        .await;
    let items = answer["customer"]["workItems"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(
        items[0],
        json!({"entityId": 101, "name": "SSO for Acme", "kind": "UserStory", "state": "In Progress",
                                "modifiedAt": "2025-12-01T12:00:00+00:00"})
    );
    assert_eq!(
        items[4]["name"],
        Value::Null,
        "999 is linked but unknown to TargetProcess"
    );

    // The story moves on: the next sync shows it; the others are unchanged.
    account.lock().unwrap().items[0]["EntityState"]["Name"] = json!("Done");
    let next = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((next.counts.applied, next.counts.unchanged), (1, 2), "{next:?}");
    let answer = system
        .graphql(
            "query($a: UUID!) { customer(id: $a) { workItems { state } } }",
            json!({"a": acme}),
        )
        .await;
    assert_eq!(answer["customer"]["workItems"][0]["state"], "Done");

    // A bad token fails the run and prints no token.
    let wrong = TargetProcess::new(TargetProcessSettings {
        access_token: Secret::new("wrong"),
        ..settings
    })
    .unwrap();
    let failed = connectors::run_once(&wrong, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, "failed");
    assert!(!failed.error.unwrap_or_default().contains("wrong"));
    system.stop().await;
}
