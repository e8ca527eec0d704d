//! The Salesforce connector against a local server that speaks the parts of Salesforce's REST
//! API it uses, in Salesforce's published shapes: the OAuth2 token endpoint (refresh-token
//! grant, `instance_url` in the answer), the SOQL `query` resource with `nextRecordsUrl` pages,
//! parent-to-child subqueries, `INVALID_SESSION_ID` on an expired token and 429 with
//! `Retry-After`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use command_service::connectors::salesforce::{Salesforce, SalesforceSettings};
use command_service::connectors::vendor::Secret;
use command_service::connectors::{self, ConnectorMetrics};
use serde_json::{json, Value};
use tests::TestSystem;

const PAGE: usize = 2;
const REFRESH_TOKEN: &str = "5Aep861-refresh-secret";
const CLIENT_SECRET: &str = "client-secret-8841";
const TOKEN_KEY: &str = "8f1d0c2b7a6e5d4c3b2a19f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4";

#[derive(Default)]
struct Org {
    base: String,
    accounts: Vec<Value>,
    contacts: Vec<Value>,
    opportunities: Vec<Value>,
    /// Tokens issued; only the latest is valid.
    tokens: usize,
    /// With refresh-token rotation on (as a connected app may require), the one refresh token
    /// honoured: each exchange issues a new one and revokes the one presented.
    rotating: Option<String>,
    /// The next query is refused as if the token had expired.
    expire_next: bool,
    /// The next query is answered 429 with `Retry-After: 1`.
    throttle_next: bool,
    throttled_at: Option<Instant>,
    retried_after: Option<Duration>,
    /// Pages waiting behind a `nextRecordsUrl`.
    cursors: Vec<Vec<Value>>,
    queries: Vec<String>,
    /// Account updates written back: (Id, body).
    patches: Vec<(String, Value)>,
}

type Shared = Arc<Mutex<Org>>;

async fn token(State(org): State<Shared>, Form(form): Form<Vec<(String, String)>>) -> Response {
    let field = |name: &str| {
        form.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let honoured = org.lock().unwrap().rotating.clone();
    if field("grant_type") != Some("refresh_token")
        || field("refresh_token") != Some(honoured.as_deref().unwrap_or(REFRESH_TOKEN))
        || field("client_secret") != Some(CLIENT_SECRET)
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})),
        )
            .into_response();
    }
    let mut org = org.lock().unwrap();
    org.tokens += 1;
    if org.rotating.is_some() {
        let rotated = format!("5Aep861-rotated-{}", org.tokens);
        org.rotating = Some(rotated.clone());
        return Json(json!({
            "access_token": format!("00D-token-{}", org.tokens),
            "refresh_token": rotated,
            "instance_url": org.base,
            "token_type": "Bearer",
            "issued_at": "1764590400000"
        }))
        .into_response();
    }
    Json(json!({
        "access_token": format!("00D-token-{}", org.tokens),
        "instance_url": org.base,
        "id": "https://login.salesforce.com/id/00D/005",
        "token_type": "Bearer",
        "issued_at": "1764590400000",
        "signature": "c2lnbmF0dXJl"
    }))
    .into_response()
}

fn refused(org: &mut Org, headers: &HeaderMap) -> Option<Response> {
    let valid = format!("Bearer 00D-token-{}", org.tokens);
    let presented = headers.get("authorization").and_then(|value| value.to_str().ok());
    if org.expire_next || presented != Some(valid.as_str()) {
        org.expire_next = false;
        return Some(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])),
            )
                .into_response(),
        );
    }
    if org.throttle_next {
        org.throttle_next = false;
        org.throttled_at = Some(Instant::now());
        return Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                Json(json!([{"message": "Too many requests", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])),
            )
                .into_response(),
        );
    }
    if let Some(at) = org.throttled_at.take() {
        org.retried_after = Some(at.elapsed());
    }
    None
}

/// The instant after `SystemModstamp >= ` in a query, as Salesforce compares it.
fn since(q: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let from = q.find("SystemModstamp >= ")? + "SystemModstamp >= ".len();
    let text = q[from..].split_whitespace().next()?;
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|at| at.to_utc())
}

fn stamp(record: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_str(
        record["SystemModstamp"]
            .as_str()
            .unwrap_or("1970-01-01T00:00:00.000+0000"),
        "%Y-%m-%dT%H:%M:%S%.f%z",
    )
    .unwrap()
    .to_utc()
}

/// One page of `records`, the rest kept behind a `nextRecordsUrl`.
fn page(org: &mut Org, mut records: Vec<Value>) -> Value {
    let total = records.len();
    let rest = records.split_off(total.min(PAGE));
    let mut answer = json!({"totalSize": total, "done": rest.is_empty(), "records": records});
    if !rest.is_empty() {
        org.cursors.push(rest);
        answer["nextRecordsUrl"] = json!(format!(
            "/services/data/v60.0/query/01gD0000000{}-{PAGE}",
            org.cursors.len() - 1
        ));
    }
    answer
}

async fn query(State(org): State<Shared>, headers: HeaderMap, Query(params): Query<Vec<(String, String)>>) -> Response {
    let mut org = org.lock().unwrap();
    if let Some(refusal) = refused(&mut org, &headers) {
        return refusal;
    }
    let q = params
        .iter()
        .find(|(key, _)| key == "q")
        .map(|(_, q)| q.clone())
        .unwrap_or_default();
    org.queries.push(q.clone());
    let after = since(&q);
    let ids: Option<Vec<String>> = q.find("Id IN (").map(|from| {
        let list = &q[from + 7..];
        list[..list.find(')').unwrap()]
            .split(", ")
            .map(|id| id.trim_matches('\'').to_owned())
            .collect()
    });
    let selected = |records: &[Value]| -> Vec<Value> {
        let mut chosen: Vec<Value> = records
            .iter()
            .filter(|record| after.is_none_or(|after| stamp(record) >= after))
            .filter(|record| {
                ids.as_ref()
                    .is_none_or(|ids| ids.iter().any(|id| record["Id"].as_str() == Some(id.as_str())))
            })
            .cloned()
            .collect();
        chosen.sort_by_key(stamp);
        chosen
    };
    let records = if q.contains("FROM Account WHERE") {
        let opportunities = org.opportunities.clone();
        selected(&org.accounts)
            .into_iter()
            .map(|mut account| {
                let mut open: Vec<&Value> = opportunities
                    .iter()
                    .filter(|opportunity| opportunity["AccountId"] == account["Id"] && opportunity["IsClosed"] == false)
                    .collect();
                open.sort_by_key(|opportunity| opportunity["CloseDate"].as_str().unwrap_or_default().to_owned());
                account["Opportunities"] = match open.first() {
                    None => Value::Null,
                    Some(renewal) => json!({"totalSize": 1, "done": true, "records": [{
                        "attributes": {"type": "Opportunity", "url": format!("/services/data/v60.0/sobjects/Opportunity/{}", renewal["Id"].as_str().unwrap())},
                        "Id": renewal["Id"], "CloseDate": renewal["CloseDate"], "Amount": renewal["Amount"],
                        "SystemModstamp": renewal["SystemModstamp"]}]}),
                };
                account
            })
            .collect()
    } else if q.contains("FROM Contact WHERE") {
        selected(&org.contacts)
    } else if q.contains("FROM Opportunity WHERE") {
        selected(&org.opportunities)
    } else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!([{"message": format!("unexpected query {q}"), "errorCode": "MALFORMED_QUERY"}])),
        )
            .into_response();
    };
    let answer = page(&mut org, records);
    Json(answer).into_response()
}

async fn next_page(State(org): State<Shared>, headers: HeaderMap, Path(locator): Path<String>) -> Response {
    let mut org = org.lock().unwrap();
    if let Some(refusal) = refused(&mut org, &headers) {
        return refusal;
    }
    let index: usize = locator
        .trim_start_matches("01gD0000000")
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let records = std::mem::take(&mut org.cursors[index]);
    let answer = page(&mut org, records);
    Json(answer).into_response()
}

/// `PATCH .../sobjects/Account/{id}`: 204 No Content, as Salesforce answers an update.
async fn update_account(
    State(org): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let mut org = org.lock().unwrap();
    if let Some(refusal) = refused(&mut org, &headers) {
        return refusal;
    }
    if body
        .as_object()
        .is_some_and(|fields| fields.keys().any(|field| !field.ends_with("__c")))
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!([{"message": "No such column", "errorCode": "INVALID_FIELD", "fields": []}])),
        )
            .into_response();
    }
    org.patches.push((id, body));
    StatusCode::NO_CONTENT.into_response()
}

async fn fake_salesforce() -> (String, Shared) {
    let org: Shared = Arc::default();
    let app = Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/data/v60.0/query", get(query))
        .route("/services/data/v60.0/query/{locator}", get(next_page))
        .route(
            "/services/data/v60.0/sobjects/Account/{id}",
            axum::routing::patch(update_account),
        )
        .with_state(org.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    org.lock().unwrap().base = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (base, org)
}

fn account(id: &str, name: &str, tier: &str, arr: Value, owner: &str, stamp: &str) -> Value {
    json!({
        "attributes": {"type": "Account", "url": format!("/services/data/v60.0/sobjects/Account/{id}")},
        "Id": id, "Name": name, "Tier__c": tier, "AnnualRevenue": arr, "Industry": "Manufacturing",
        "Owner": {"attributes": {"type": "User", "url": "/services/data/v60.0/sobjects/User/005"}, "Email": owner},
        "CreatedDate": "2024-01-15T09:00:00.000+0000", "SystemModstamp": stamp
    })
}

fn contact(id: &str, account: &str, name: &str, title: &str, email: &str, stamp: &str) -> Value {
    json!({
        "attributes": {"type": "Contact", "url": format!("/services/data/v60.0/sobjects/Contact/{id}")},
        "Id": id, "AccountId": account, "Name": name, "Title": title, "Email": email, "SystemModstamp": stamp
    })
}

fn renewal(id: &str, account: &str, close: &str, amount: f64, stamp: &str) -> Value {
    json!({
        "attributes": {"type": "Opportunity", "url": format!("/services/data/v60.0/sobjects/Opportunity/{id}")},
        "Id": id, "AccountId": account, "Type": "Renewal", "IsClosed": false, "CloseDate": close,
        "Amount": amount, "SystemModstamp": stamp
    })
}

const ACME: &str = "001D000000AcmeAAAQ";
const BETA: &str = "001D000000BetaAAAQ";
const BAD: &str = "001D000000BadTAAAQ";

fn settings(base: &str) -> SalesforceSettings {
    SalesforceSettings {
        token_url: Some(format!("{base}/services/oauth2/token")),
        client_id: "3MVG9-client".into(),
        client_secret: Secret::new(CLIENT_SECRET),
        refresh_token: Some(Secret::new(REFRESH_TOKEN)),
        token_key: Some(TOKEN_KEY.parse().unwrap()),
        instance_url: None,
        api_version: "v60.0".into(),
        account_fields:
            "name=Name,arr=AnnualRevenue,tier=Tier__c,csm=Owner.Email,industry=Industry,contract_start=CreatedDate"
                .into(),
        contact_fields: "name=Name,role=Title,email=Email".into(),
        renewal_type: "Renewal".into(),
        renewal_amount_field: Some("renewal_amount".into()),
        write_back: "health_colour=Health_Colour__c,coverage_status=Coverage_Status__c".into(),
        interval_seconds: 0.2,
    }
}

async fn event_count(system: &TestSystem) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn salesforce_syncs_accounts_contacts_and_renewals_once_each_skipping_bad_records() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    let (status, answer) = system
        .post(
            "/api/v1/custom-fields",
            &json!({"key": "renewal_amount", "label": "Renewal amount", "field_type": "currency"}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let (base, org) = fake_salesforce().await;
    {
        let mut org = org.lock().unwrap();
        org.accounts = vec![
            account(
                ACME,
                "Acme",
                "Enterprise",
                json!(250000),
                "dana@example.com",
                "2026-11-20T10:00:00.000+0000",
            ),
            account(
                BETA,
                "Beta",
                "SMB",
                json!(12000.5),
                "DANA@example.com",
                "2026-11-21T10:00:00.000+0000",
            ),
            account(
                BAD,
                "Bad Tier",
                "Platinum",
                json!(5000),
                "dana@example.com",
                "2026-11-22T10:00:00.000+0000",
            ),
            // Malformed: no Id.
            json!({"attributes": {"type": "Account"}, "Name": "No id", "SystemModstamp": "2026-11-22T11:00:00.000+0000"}),
        ];
        org.opportunities = vec![
            renewal(
                "006D00000AcmeRen",
                ACME,
                "2027-03-31",
                260000.0,
                "2026-11-20T10:00:00.000+0000",
            ),
            renewal(
                "006D00000BetaRen",
                BETA,
                "2027-01-15",
                12500.0,
                "2026-11-21T10:00:00.000+0000",
            ),
            renewal(
                "006D00000BadTRen",
                BAD,
                "2027-02-01",
                5000.0,
                "2026-11-21T09:00:00.000+0000",
            ),
        ];
        org.contacts = vec![
            contact(
                "003D0000Priya",
                ACME,
                "Priya Shah",
                "VP Operations",
                "priya@acme.example",
                "2026-11-20T12:00:00.000+0000",
            ),
            contact(
                "003D0000Sam",
                BETA,
                "Sam Lee",
                "Data Analyst",
                "sam@beta.example",
                "2026-11-21T12:00:00.000+0000",
            ),
            contact(
                "003D0000Orphan",
                BAD,
                "Olga",
                "CFO",
                "olga@bad.example",
                "2026-11-22T12:00:00.000+0000",
            ),
        ];
        org.throttle_next = true;
    }
    let handlers = command_service::handlers(&system.pool);
    let connector = Salesforce::new(settings(&base)).unwrap();
    let metrics = ConnectorMetrics::unregistered();

    let first = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status, "succeeded", "{first:?}");
    assert_eq!(first.counts.records_read, 7, "{first:?}");
    assert_eq!(first.counts.applied, 4, "{first:?}");
    assert_eq!(first.counts.skipped, 3, "{first:?}");
    let skipped: Vec<(&str, &str, &str)> = first
        .counts
        .skips
        .iter()
        .map(|skip| (skip.object.as_str(), skip.record_id.as_str(), skip.code.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("Account", BAD, "invalid_value"),
            ("Account", "", "malformed_record"),
            ("Contact", "003D0000Orphan", "unknown_customer"),
        ]
    );
    assert_eq!(first.counts.skips[0].field.as_deref(), Some("tier"));
    // 429 with Retry-After: 1 was waited out before the query was sent again.
    let waited = org
        .lock()
        .unwrap()
        .retried_after
        .expect("the throttled query was retried");
    assert!(waited >= Duration::from_millis(950), "{waited:?}");

    system.caught_up().await;
    let customers = system
        .graphql(
            "{ customers(first: 10) { edges { node { name salesforceId tier arr industry contractStart renewalDate
               csm { csmId } customFields { key value } stakeholders { name level email } } } } }",
            json!({}),
        )
        .await;
    let edges = customers["customers"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2, "{customers}");
    let acme = &edges[0]["node"];
    assert_eq!(acme["name"], "Acme");
    assert_eq!(acme["salesforceId"], ACME);
    assert_eq!(acme["tier"], "ENTERPRISE");
    assert_eq!(acme["arr"].as_str().unwrap().parse::<f64>().unwrap(), 250000.0);
    assert_eq!(acme["contractStart"], "2024-01-15");
    assert_eq!(acme["renewalDate"], "2027-03-31");
    assert_eq!(acme["csm"]["csmId"], dana.to_string());
    let amount = |value: &Value| value.as_str().and_then(|text| text.parse::<f64>().ok());
    assert_eq!(amount(&acme["customFields"][0]["value"]), Some(260000.0));
    assert_eq!(acme["stakeholders"][0]["name"], "Priya Shah");
    assert_eq!(acme["stakeholders"][0]["level"], "executive");
    assert_eq!(edges[1]["node"]["stakeholders"][0]["level"], "user");

    // Every event says where it came from and which run appended it.
    let sources: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT metadata ->> 'source', metadata ->> 'sync_run_id', metadata ->> 'correlation_id' FROM events
          WHERE aggregate_type = 'Customer'",
    )
    .fetch_all(&system.pool)
    .await
    .unwrap();
    assert!(!sources.is_empty());
    for (source, run, correlation) in &sources {
        assert_eq!(source, "salesforce");
        assert_eq!(run, &first.run_id.to_string());
        assert_eq!(correlation, &first.run_id.to_string());
    }

    // The expired token was renewed with the refresh token, and no secret is on record.
    assert_eq!(org.lock().unwrap().tokens, 1);
    org.lock().unwrap().expire_next = true;
    let before = event_count(&system).await;
    let again = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.status, "succeeded", "{again:?}");
    assert_eq!(org.lock().unwrap().tokens, 2);
    assert_eq!(again.counts.applied, 0, "{again:?}");
    assert_eq!(event_count(&system).await, before, "a second sync appends nothing");
    // Each customer's coverage status was written back to its Account once, whichever run
    // first saw it in the read models.
    let patches = org.lock().unwrap().patches.clone();
    assert_eq!(first.counts.pushed + again.counts.pushed, 2, "{patches:?}");
    let mut patched: Vec<&str> = patches.iter().map(|(id, _)| id.as_str()).collect();
    patched.sort();
    assert_eq!(patched, [ACME, BETA]);
    for (_, body) in &patches {
        assert_eq!(body["Coverage_Status__c"], "under_covered", "{body}");
        assert!(body.get("Health_Colour__c").is_none(), "no health yet: {body}");
    }
    let record: String = sqlx::query_scalar("SELECT string_agg(row_to_json(r)::text, '') FROM connector_runs r")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert!(!record.contains(REFRESH_TOKEN) && !record.contains(CLIENT_SECRET));
    // The second run read only what changed at or after the cursors.
    let queries = org.lock().unwrap().queries.clone();
    assert!(
        queries
            .last()
            .unwrap()
            .contains("SystemModstamp >= 2026-11-22T12:00:00Z"),
        "{queries:?}"
    );

    // GraphQL shows each run, its skipped records with their reasons, and the cursors.
    let status = system
        .graphql(
            "{ connectors { name lastRun { runId status recordsRead applied unchanged skipped events }
               runs { runId skippedRecords { object recordId code field message } } cursors { stream cursor } } }",
            json!({}),
        )
        .await;
    let salesforce = &status["connectors"][0];
    assert_eq!(salesforce["name"], "salesforce");
    assert_eq!(salesforce["lastRun"]["runId"], again.run_id.to_string());
    assert_eq!(salesforce["lastRun"]["applied"], 0);
    assert_eq!(salesforce["lastRun"]["recordsRead"], json!(again.counts.records_read));
    let first_run = &salesforce["runs"][1];
    assert_eq!(first_run["runId"], first.run_id.to_string());
    assert_eq!(first_run["skippedRecords"][0]["recordId"], BAD);
    assert_eq!(first_run["skippedRecords"][0]["field"], "tier");
    assert_eq!(first_run["skippedRecords"][2]["code"], "unknown_customer");
    let cursors: Vec<(String, String)> = salesforce["cursors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["stream"].as_str().unwrap().to_owned(),
                c["cursor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        cursors,
        [
            ("Account".to_owned(), "2026-11-22T11:00:00+00:00".to_owned()),
            ("Contact".to_owned(), "2026-11-22T12:00:00+00:00".to_owned()),
            ("Opportunity".to_owned(), "2026-11-21T10:00:00+00:00".to_owned()),
        ]
    );
    let partner = tests::token(events::metadata::Role::Partner, "pat", Some(uuid::Uuid::now_v7()));
    let refused = system.graphql_as(&partner, "{ connectors { name } }", json!({})).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");

    // A renewal moved in Salesforce, the account untouched: the renewal date follows.
    {
        let mut org = org.lock().unwrap();
        org.opportunities[1]["CloseDate"] = json!("2027-06-30");
        org.opportunities[1]["SystemModstamp"] = json!("2026-11-25T08:00:00.000+0000");
    }
    // And Acme's health turned red in cstrack: the colour is written back, Beta untouched.
    let acme_id: uuid::Uuid = sqlx::query_scalar("SELECT customer_id FROM customer_profiles WHERE salesforce_id = $1")
        .bind(ACME)
        .fetch_one(&system.pool)
        .await
        .unwrap();
    system
        .record_health(acme_id, 35.0, chrono::Utc::now().date_naive())
        .await;
    system.caught_up().await;
    let moved = connectors::run_once(&connector, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.counts.applied, 1, "{moved:?}");
    assert_eq!(moved.counts.pushed, 1, "{moved:?}");
    let last = org.lock().unwrap().patches.last().cloned().unwrap();
    assert_eq!(last.0, ACME);
    assert_eq!(last.1["Health_Colour__c"], "Red", "{last:?}");
    system.caught_up().await;
    let beta = system
        .graphql(
            "query($s: String) { customers(filter: {search: $s}) { edges { node { renewalDate customFields { value } } } } }",
            json!({"s": "Beta"}),
        )
        .await;
    assert_eq!(beta["customers"]["edges"][0]["node"]["renewalDate"], "2027-06-30");
    assert_eq!(
        amount(&beta["customers"]["edges"][0]["node"]["customFields"][0]["value"]),
        Some(12500.0)
    );

    // The supervised loop syncs on its own, one replica at a time.
    let settled = event_count(&system).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runs_before: i64 = sqlx::query_scalar("SELECT count(*) FROM connector_runs")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    let looping = tokio::spawn(connectors::run_supervised(
        Salesforce::new(settings(&base)).unwrap(),
        Arc::new(command_service::handlers(&system.pool)),
        metrics.clone(),
        stopped,
        Arc::new(tokio::sync::Notify::new()),
    ));
    tests::eventually(Duration::from_secs(10), || async {
        let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM connector_runs WHERE status = 'succeeded'")
            .fetch_one(&system.pool)
            .await
            .unwrap();
        runs >= runs_before + 2
    })
    .await
    .expect("the loop runs again and again");
    stop.send_replace(true);
    looping.await.unwrap();
    assert_eq!(event_count(&system).await, settled, "the loop's runs append nothing");
    system.stop().await;
}

/// A Contact changed in Salesforce updates its stakeholder (as an event, matched by the Contact
/// it came from even when its address changed), and a refresh token the org rotates is kept in
/// the store, encrypted, so a restarted connector uses the newest one and not the revoked one
/// in its configuration.
#[tokio::test]
async fn contact_changes_update_stakeholders_and_rotated_tokens_survive_a_restart() {
    let system = TestSystem::spawn().await.unwrap();
    system.register_csm("Dana").await;
    system
        .post_ok(
            "/api/v1/custom-fields",
            &json!({"key": "renewal_amount", "label": "Renewal amount", "field_type": "currency"}),
        )
        .await;
    let (base, org) = fake_salesforce().await;
    {
        let mut org = org.lock().unwrap();
        org.rotating = Some(REFRESH_TOKEN.into());
        org.opportunities = vec![renewal(
            "006D00000AcmeRen",
            ACME,
            "2027-03-31",
            260000.0,
            "2026-11-20T10:00:00.000+0000",
        )];
        org.accounts = vec![account(
            ACME,
            "Acme",
            "Enterprise",
            json!(250000),
            "dana@example.com",
            "2026-11-20T10:00:00.000+0000",
        )];
        org.contacts = vec![contact(
            "003D0000Priya",
            ACME,
            "Priya Shah",
            "Data Analyst",
            "priya@acme.example",
            "2026-11-20T12:00:00.000+0000",
        )];
    }
    let handlers = command_service::handlers(&system.pool);
    let metrics = ConnectorMetrics::unregistered();
    let first = connectors::run_once(&Salesforce::new(settings(&base)).unwrap(), &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status, "succeeded", "{first:?}");

    // Priya is promoted and changes address.
    org.lock().unwrap().contacts = vec![contact(
        "003D0000Priya",
        ACME,
        "Priya Shah-Ortiz",
        "VP Operations",
        "priya.ortiz@acme.example",
        "2026-11-23T12:00:00.000+0000",
    )];
    // A restart: a new connector from the same configuration, whose refresh token the org
    // revoked when it rotated it.
    let restarted = Salesforce::new(settings(&base)).unwrap();
    let second = connectors::run_once(&restarted, &handlers, &metrics)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.status, "succeeded", "{second:?}");
    assert_eq!(second.counts.applied, 1, "{second:?}");
    let people: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, payload FROM events WHERE event_type LIKE 'Stakeholder%' ORDER BY global_position",
    )
    .fetch_all(&system.pool)
    .await
    .unwrap();
    assert_eq!(people.len(), 2, "{people:?}");
    assert_eq!(people[1].0, "StakeholderUpdated");
    let update = &people[1].1["StakeholderUpdated"];
    assert_eq!(
        update["stakeholder_id"],
        people[0].1["StakeholderAdded"]["stakeholder_id"]
    );
    assert_eq!(
        (
            update["name"].as_str(),
            update["role"].as_str(),
            update["level"].as_str(),
            update["email"].as_str()
        ),
        (
            Some("Priya Shah-Ortiz"),
            Some("VP Operations"),
            Some("executive"),
            Some("priya.ortiz@acme.example")
        )
    );
    system.caught_up().await;
    let seen = system
        .graphql(
            "{ customers { edges { node { stakeholders { name role level email } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        seen["customers"]["edges"][0]["node"]["stakeholders"],
        json!([{"name": "Priya Shah-Ortiz", "role": "VP Operations", "level": "executive", "email": "priya.ortiz@acme.example"}])
    );

    // The newest token is in the store, encrypted: not readable there, and only under the key.
    let honoured = org.lock().unwrap().rotating.clone().unwrap();
    let (nonce, ciphertext): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT nonce, ciphertext FROM connector_tokens WHERE connector = 'salesforce'")
            .fetch_one(&system.pool)
            .await
            .unwrap();
    assert_eq!(nonce.len(), 24);
    assert!(!String::from_utf8_lossy(&ciphertext).contains("rotated"));
    let kept = command_service::connectors::vault::TokenVault::new(
        system.pool.clone(),
        "salesforce",
        TOKEN_KEY.parse().unwrap(),
        &Secret::new(REFRESH_TOKEN),
    )
    .load()
    .await
    .unwrap()
    .unwrap();
    assert_eq!(kept.expose(), honoured);
    let wrong_key = command_service::connectors::vault::TokenVault::new(
        system.pool.clone(),
        "salesforce",
        "00".repeat(32).parse().unwrap(),
        &Secret::new(REFRESH_TOKEN),
    )
    .load()
    .await;
    assert!(wrong_key.is_err(), "another key reads nothing");

    // Without a key the connector refuses to start, saying which variable is missing.
    let mut keyless = settings(&base);
    keyless.token_key = None;
    let refusal = Salesforce::new(keyless).err().unwrap().to_string();
    assert!(refusal.contains("CSTRACK_TOKEN_KEY"), "{refusal}");
    system.stop().await;
}
