//! The Gainsight connector against a local server answering as Gainsight's Company API
//! documents: the `Accesskey` header, `POST /v1/data/objects/query/Company` with `select`,
//! `where` (conditions and expression), `limit` and `offset`, answers of the form
//! `{"result", "errorCode", "errorDesc", "data": {"records"}}`, and
//! `PUT /v1/data/objects/Company?keys=Gsid` for updates.

use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use chrono::{Days, Utc};
use command_service::connectors::gainsight::{Gainsight, GainsightSettings};
use command_service::connectors::vendor::Secret;
use command_service::connectors::{self, ConnectorMetrics};
use serde_json::{json, Value};
use tests::{uuid, TestSystem};

const ACCESS_KEY: &str = "gs-access-key-5521";

#[derive(Default)]
struct Tenant {
    companies: Vec<Value>,
    /// Bodies of the queries received.
    queries: Vec<Value>,
    /// Updates received: (keys, body).
    updates: Vec<(String, Value)>,
    /// The next query is throttled (429 with `Retry-After: 1`).
    throttle_next: bool,
    throttled_at: Option<std::time::Instant>,
    waited: Option<std::time::Duration>,
}

type Shared = Arc<Mutex<Tenant>>;

fn unauthorized(headers: &HeaderMap) -> Option<Response> {
    (headers.get("accesskey").and_then(|v| v.to_str().ok()) != Some(ACCESS_KEY)).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"result": false, "errorCode": "GS_1101", "errorDesc": "Invalid access key", "data": null})),
        )
            .into_response()
    })
}

async fn query(State(tenant): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let mut tenant = tenant.lock().unwrap();
    if std::mem::take(&mut tenant.throttle_next) {
        tenant.throttled_at = Some(std::time::Instant::now());
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(json!({"result": false, "errorCode": "GS_429", "errorDesc": "Rate limit exceeded"})),
        )
            .into_response();
    }
    if let Some(at) = tenant.throttled_at.take() {
        tenant.waited = Some(at.elapsed());
    }
    tenant.queries.push(body.clone());
    let condition = &body["where"]["conditions"][0];
    assert_eq!(
        (condition["name"].as_str(), condition["operator"].as_str()),
        (Some("ModifiedDate"), Some("GTE"))
    );
    let since = chrono::DateTime::parse_from_rfc3339(condition["value"][0].as_str().unwrap()).unwrap();
    let mut matching: Vec<Value> = tenant
        .companies
        .iter()
        .filter(|company| {
            company["ModifiedDate"]
                .as_str()
                .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                .is_none_or(|at| at >= since)
        })
        .cloned()
        .collect();
    matching.sort_by_key(|company| company["ModifiedDate"].as_str().unwrap_or_default().to_owned());
    let (offset, limit) = (
        body["offset"].as_u64().unwrap() as usize,
        body["limit"].as_u64().unwrap() as usize,
    );
    let selected: Vec<String> = body["select"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    let records: Vec<Value> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|company| {
            Value::Object(
                company
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(field, _)| selected.contains(field))
                    .map(|(field, value)| (field.clone(), value.clone()))
                    .collect(),
            )
        })
        .collect();
    Json(
        json!({"result": true, "errorCode": null, "errorDesc": null, "requestId": "req-1",
                "data": {"records": records}, "message": null}),
    )
    .into_response()
}

async fn update(
    State(tenant): State<Shared>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refusal) = unauthorized(&headers) {
        return refusal;
    }
    let keys = params
        .iter()
        .find(|(key, _)| key == "keys")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    tenant.lock().unwrap().updates.push((keys, body));
    Json(json!({"result": true, "errorCode": null, "errorDesc": null,
                "data": {"count": 1, "updatedCount": 1, "failedCount": 0, "failures": []}}))
    .into_response()
}

async fn fake_gainsight() -> (String, Shared) {
    let tenant: Shared = Arc::default();
    let app = Router::new()
        .route("/v1/data/objects/query/Company", post(query))
        .route("/v1/data/objects/Company", put(update))
        .with_state(tenant.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (base, tenant)
}

fn company(gsid: &str, sfid: Value, score: Value, nps: Value, modified: &str) -> Value {
    json!({"Gsid": gsid, "Name": gsid, "SfdcAccountId": sfid, "OverallScore": score, "NPS__gc": nps,
           "ModifiedDate": modified, "Industry": "Retail"})
}

async fn customer(system: &TestSystem, name: &str, salesforce_id: &str, csm: uuid::Uuid) -> uuid::Uuid {
    let today = Utc::now().date_naive();
    uuid(
        &system
            .post_ok(
                "/api/v1/customers",
                &json!({"name": name, "salesforce_id": salesforce_id, "tier": "SMB", "arr": "12000", "csm_id": csm,
                        "contract_start": today - Days::new(200), "renewal_date": today + Days::new(200)}),
            )
            .await["customer_id"],
    )
}

async fn event_count(system: &TestSystem) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn gainsight_scores_and_nps_arrive_once_and_manual_overrides_go_back() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana").await;
    let acme = customer(&system, "Acme", "001D000000AcmeAAAQ", csm).await;
    let beta = customer(&system, "Beta", "001D000000BetaAAAQ", csm).await;
    let (base, tenant) = fake_gainsight().await;
    tenant.lock().unwrap().companies = vec![
        company(
            "1P02ACME",
            json!("001D000000AcmeAAAQ"),
            json!(72),
            json!(9),
            "2026-11-20T10:00:00.000Z",
        ),
        company(
            "1P02BETA",
            json!("001D000000BetaAAAQ"),
            json!(45),
            Value::Null,
            "2026-11-21T10:00:00.000Z",
        ),
        company(
            "1P02NOSF",
            Value::Null,
            json!(80),
            Value::Null,
            "2026-11-22T10:00:00.000Z",
        ),
        company(
            "1P02GONE",
            json!("001D000000GoneAAAQ"),
            json!(50),
            Value::Null,
            "2026-11-22T11:00:00.000Z",
        ),
        company(
            "1P02BADS",
            json!("001D000000BetaAAAQ"),
            json!("high"),
            Value::Null,
            "2026-11-22T12:00:00.000Z",
        ),
    ];
    tenant.lock().unwrap().throttle_next = true;
    let settings = GainsightSettings {
        url: Some(base.clone()),
        access_key: Secret::new(ACCESS_KEY),
        fields: "salesforce_id=SfdcAccountId,score=OverallScore,nps=NPS__gc,override=ManualScore__gc".into(),
        page_size: 2,
        interval_seconds: 60.0,
    };
    let handlers = command_service::handlers(&system.pool);
    let connector = Gainsight::new(settings.clone()).unwrap();
    let metrics = ConnectorMetrics::unregistered();

    let first = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status, "succeeded", "{first:?}");
    assert_eq!(first.counts.applied, 3, "{first:?}");
    let skipped: Vec<(&str, &str, Option<&str>)> = first
        .counts
        .skips
        .iter()
        .map(|skip| (skip.record_id.as_str(), skip.code.as_str(), skip.field.as_deref()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("1P02NOSF", "unknown_customer", Some("salesforce_id")),
            ("1P02GONE", "unknown_customer", Some("customer")),
            ("1P02BADS", "invalid_value", Some("score")),
        ]
    );
    let waited = tenant
        .lock()
        .unwrap()
        .waited
        .expect("the throttled query was sent again");
    assert!(waited >= std::time::Duration::from_millis(950), "{waited:?}");
    // Read in pages of two, all five.
    let offsets: Vec<u64> = tenant
        .lock()
        .unwrap()
        .queries
        .iter()
        .map(|q| q["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [0, 2, 4]);

    system.caught_up().await;
    let answer = system
        .graphql(
            "query($a: UUID!, $b: UUID!) { a: customer(id: $a) { health { score source } nps { latest } }
               b: customer(id: $b) { health { score source } } }",
            json!({"a": acme, "b": beta}),
        )
        .await;
    assert_eq!(answer["a"]["health"]["score"], 72.0);
    assert_eq!(answer["a"]["health"]["source"], "gainsight");
    assert_eq!(answer["a"]["nps"]["latest"], 9);
    assert_eq!(answer["b"]["health"]["score"], 45.0);
    let sources: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT metadata ->> 'source' FROM events WHERE metadata ? 'sync_run_id'")
            .fetch_all(&system.pool)
            .await
            .unwrap();
    assert_eq!(sources, ["gainsight"]);

    // Again: nothing new. A Company modified for another reason records no score again.
    let before = event_count(&system).await;
    let again = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.counts.applied, 0, "{again:?}");
    tenant.lock().unwrap().companies[0]["ModifiedDate"] = json!("2026-11-25T09:00:00.000Z");
    tenant.lock().unwrap().companies[0]["Industry"] = json!("Wholesale");
    let touched = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(touched.counts.applied, 0, "{touched:?}");
    assert_eq!(event_count(&system).await, before, "unchanged scores append nothing");
    // A new score is a new measurement.
    tenant.lock().unwrap().companies[1]["OverallScore"] = json!(38);
    tenant.lock().unwrap().companies[1]["ModifiedDate"] = json!("2026-11-26T09:00:00.000Z");
    let dropped = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dropped.counts.applied, 1, "{dropped:?}");

    // A manual override in cstrack goes back to the Company's override field, once.
    system
        .post_ok(
            &format!("/api/v1/customers/{acme}/health-scores"),
            &json!({"score": 55, "source": "manual", "reason": "Champion left"}),
        )
        .await;
    system.caught_up().await;
    let pushed = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pushed.counts.pushed, 1, "{pushed:?}");
    let updates = tenant.lock().unwrap().updates.clone();
    assert_eq!(
        updates,
        [(
            "Gsid".to_owned(),
            json!({"records": [{"Gsid": "1P02ACME", "ManualScore__gc": 55.0}]})
        )]
    );
    let quiet = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quiet.counts.pushed, 0, "{quiet:?}");

    // A wrong access key fails the run, with the vendor's reason and no secret on record.
    let wrong = Gainsight::new(GainsightSettings {
        access_key: Secret::new("wrong-key"),
        ..settings.clone()
    })
    .unwrap();
    let failed = connectors::run_once(&wrong, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, "failed");
    assert!(
        failed.error.as_deref().unwrap().contains("Invalid access key"),
        "{failed:?}"
    );
    assert!(!failed.error.unwrap().contains(ACCESS_KEY));

    // "Sync now": a supervised connector runs at once when woken, not a minute later.
    let runs = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM connector_runs WHERE connector = 'gainsight'")
            .fetch_one(&system.pool)
            .await
            .unwrap()
    };
    let before = runs().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut supervisor = connectors::Supervisor::new(Arc::new(handlers), metrics.clone(), stopped);
    supervisor.add(Gainsight::new(settings).unwrap());
    let directory = supervisor.directory();
    assert_eq!(
        directory.interval("gainsight"),
        Some(std::time::Duration::from_secs(60))
    );
    assert_eq!(directory.interval("salesforce"), None);
    assert!(!directory.wake("salesforce"), "only a configured connector wakes");
    let looping: Vec<_> = supervisor.loops.into_iter().map(tokio::spawn).collect();
    tests::eventually(std::time::Duration::from_secs(10), || async {
        runs().await == before + 1
    })
    .await
    .expect("the loop's first run");
    assert!(directory.wake("gainsight"));
    tests::eventually(std::time::Duration::from_secs(10), || async {
        runs().await == before + 2
    })
    .await
    .expect("woken, it runs again before its interval");
    stop.send_replace(true);
    for one in looping {
        one.await.unwrap();
    }
    system.stop().await;
}
