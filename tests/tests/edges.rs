//! The smaller defects outside testing found (issue 30, item 12), each as a client meets it:
//! U+0000 where PostgreSQL cannot store it, CORS for PATCH, JSON answers for every refusal, one
//! GraphQL error per fault, implausible numbers and names, a profile update that changes
//! nothing, the alert kinds described, and the exports a round trip and a workbook reader rely on.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tests::TestSystem;

async fn upload(system: &TestSystem, csv: &[u8], mapping: Option<&str>) -> (u16, Value) {
    system
        .upload_import(&system.admin, "health_scores", "health.csv", csv.to_vec(), mapping)
        .await
}

async fn events(system: &TestSystem) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn nul_characters_are_refused_by_field_and_never_stripped() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Nola Null").await;
    system
        .onboard("Acme", "SMB", "1000", csm, Utc::now() - Duration::days(30))
        .await;
    let before = events(&system).await;

    // An import's mapping given with the upload.
    let csv = b"customer,score,measured at\n0015g00000AbCdEAAV,50,2026-11-01\n";
    let (status, answer) = upload(&system, csv, Some(r#"{"score": "sc\u0000ore"}"#)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (422, Some("invalid_character")),
        "{answer}"
    );
    assert!(answer["fields"]["mapping.score"].is_string(), "{answer}");

    // A cell: its row is refused for that column, not read with the character dropped.
    let (status, preview) = upload(
        &system,
        b"customer,score,measured at\n0015g00000AbCdEAAV,5\x000,2026-11-01\n",
        None,
    )
    .await;
    assert_eq!(status, 201, "{preview}");
    assert_eq!(preview["counts"]["error"], 1, "{preview}");
    let error = &preview["rows"][0]["errors"][0];
    assert_eq!(
        (error["code"].as_str(), error["column"].as_str()),
        (Some("invalid_character"), Some("score"))
    );
    // A header: the file is refused.
    let (status, answer) = upload(
        &system,
        b"customer,sc\x00ore,measured at\n0015g00000AbCdEAAV,50,2026-11-01\n",
        None,
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (422, Some("unreadable_file")),
        "{answer}"
    );

    // Another user's notification preferences, in the body and in the path.
    for (path, body) in [
        (
            "/api/v1/notification-preferences/dana",
            json!({"role": "manager", "team": "a\u{0}b"}),
        ),
        (
            "/api/v1/notification-preferences/da%00na",
            json!({"role": "manager", "team": "East"}),
        ),
    ] {
        let (status, answer) = system.send(Method::PUT, path, Some(&body)).await;
        assert_eq!(status, 422, "{path}: {answer}");
        assert_eq!(answer["error"], "invalid_character", "{answer}");
    }
    assert_eq!(events(&system).await, before, "nothing was appended");
    system.stop().await;
}

#[tokio::test]
async fn every_refusal_is_json_and_browsers_may_send_patch() {
    let system = TestSystem::spawn().await.unwrap();
    let preflight = system
        .http
        .request(Method::OPTIONS, format!("{}/api/v1/customers/x", system.command_url))
        .header("origin", "https://cs.example.com")
        .header("access-control-request-method", "PATCH")
        .send()
        .await
        .unwrap();
    let allowed = preflight
        .headers()
        .get("access-control-allow-methods")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(allowed.contains("PATCH"), "{allowed}");

    for (method, path, body, status, code) in [
        (
            Method::POST,
            "/api/v1/imports",
            Some(json!({})),
            415,
            "unsupported_media_type",
        ),
        (Method::DELETE, "/api/v1/imports", None, 405, "method_not_allowed"),
        (Method::PATCH, "/api/v1/webhooks", None, 405, "method_not_allowed"),
        (
            Method::GET,
            "/api/v1/notification-preferences/dana",
            None,
            405,
            "method_not_allowed",
        ),
        (
            Method::PUT,
            "/api/v1/deck-template",
            Some(json!({})),
            415,
            "unsupported_media_type",
        ),
    ] {
        let (got, answer) = system.send(method.clone(), path, body.as_ref()).await;
        assert_eq!(
            (got.as_u16(), answer["error"].as_str()),
            (status, Some(code)),
            "{method} {path}: {answer}"
        );
        assert!(answer["message"].is_string(), "{answer}");
    }

    let answer = system.graphql_raw("mutation { anything }", json!({})).await;
    assert_eq!(
        answer["errors"].as_array().unwrap().len(),
        1,
        "one fault, one error: {answer}"
    );
    system.stop().await;
}

#[tokio::test]
async fn implausible_numbers_control_characters_and_unchanged_profiles_append_nothing() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Iris Implausible").await;
    let customer = system
        .onboard("Acme", "SMB", "1000", csm, Utc::now() - Duration::days(30))
        .await;
    system.caught_up().await;
    let before = events(&system).await;
    let activities = format!("/api/v1/customers/{customer}/activities");
    for (path, body, field) in [
        (
            activities.as_str(),
            json!({"kind": "email", "direction": "outbound", "occurred_at": Utc::now() - Duration::hours(1),
                   "response_received": true, "response_time_hours": 1e300}),
            "response_time_hours",
        ),
        (
            "/api/v1/rules/workload-hours",
            json!({"tier": "SMB", "hours_per_month": 1.56e-226}),
            "hours_per_month",
        ),
        (
            "/api/v1/csms",
            json!({"name": "Tab\tName", "email": "tab@example.com"}),
            "name",
        ),
        (
            &format!("/api/v1/customers/{customer}/stakeholders"),
            json!({"name": "Line\nBreak", "role": "VP", "level": "executive"}),
            "name",
        ),
    ] {
        let method = if path.contains("rules") {
            Method::PUT
        } else {
            Method::POST
        };
        let (status, answer) = system.send(method, path, Some(&body)).await;
        assert_eq!(status, 422, "{path}: {answer}");
        assert!(answer["fields"][field].is_string(), "{path}: {answer}");
    }

    // A profile update to the values it has changes nothing and appends nothing; one that
    // changes a field among unchanged ones appends only that field.
    let profile = format!("/api/v1/customers/{customer}");
    let (status, answer) = system
        .send(
            Method::PATCH,
            &profile,
            Some(&json!({"name": "Acme", "tier": "SMB", "arr": "1000"})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (422, Some("no_change")),
        "{answer}"
    );
    assert_eq!(events(&system).await, before, "nothing was appended");
    let (status, answer) = system
        .send(
            Method::PATCH,
            &profile,
            Some(&json!({"name": "Acme", "industry": "Retail"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let payload: Value = sqlx::query_scalar(
        "SELECT payload -> 'CustomerProfileUpdated' FROM events WHERE event_type = 'CustomerProfileUpdated'",
    )
    .fetch_one(&system.pool)
    .await
    .unwrap();
    assert_eq!(
        (&payload["name"], &payload["industry"]),
        (&Value::Null, &json!("Retail"))
    );
    system.stop().await;
}

#[tokio::test]
async fn the_alert_kinds_are_described_and_exports_keep_what_a_round_trip_and_a_reader_need() {
    let system = TestSystem::spawn().await.unwrap();
    let described = system
        .graphql("{ __type(name: \"Alert\") { fields { name description } } }", json!({}))
        .await;
    let kind = described["__type"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|field| field["name"] == "kind")
        .unwrap()["description"]
        .as_str()
        .unwrap()
        .to_owned();
    for alert in command_service::http::notifications::ALERT_KINDS {
        assert!(kind.contains(alert), "{alert} is described: {kind}");
    }

    // Products owned are exported as an import reads them back.
    let dana = system.register_csm("Dana Whitfield").await;
    let marco = system.register_csm("Marco Bianchi").await;
    let acme = system
        .onboard("Acme", "SMB", "1000", dana, Utc::now() - Duration::days(30))
        .await;
    let download = |path: String| {
        let system = &system;
        async move {
            let response = system
                .http
                .get(format!("{}{path}", system.graphql_url.trim_end_matches("/graphql")))
                .bearer_auth(&system.admin)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
        }
    };
    let (status, answer) = system
        .send(
            Method::PATCH,
            &format!("/api/v1/customers/{acme}"),
            Some(&json!({"products_owned": ["Platform", "Analytics"]})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    system.caught_up().await;
    let (status, bytes) = download("/export/customers.xlsx".into()).await;
    assert_eq!(status, 200);
    let book = tests::openpyxl(&bytes);
    let rows = book["Customers"]["rows"].as_array().unwrap().clone();
    let column = rows[0].as_array().unwrap().iter().position(|h| h == "Products owned");
    let column = column.expect("a Products owned column");
    assert_eq!(rows[1][column], "Platform; Analytics");

    // `overdue=1` is overdue; a word it does not know is refused.
    let (status, _) = download("/export/tasks.csv?overdue=1".into()).await;
    assert_eq!(status, 200);
    let (status, body) = download("/export/tasks.csv?overdue=maybe".into()).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));

    // The workload workbook names the CSMs of each handoff.
    let (status, answer) = system
        .send(
            Method::PUT,
            &format!("/api/v1/customers/{acme}/csm"),
            Some(&json!({"csm_id": marco, "reason": "territory"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    system.caught_up().await;
    let (status, bytes) = download("/export/workload.xlsx".into()).await;
    assert_eq!(status, 200);
    let book = tests::openpyxl(&bytes);
    let handoffs = &book["Handoffs"]["rows"];
    assert_eq!(handoffs[0][1], "From CSM", "{handoffs}");
    assert_eq!(
        (&handoffs[1][1], &handoffs[1][2]),
        (&json!("Dana Whitfield"), &json!("Marco Bianchi"))
    );
    system.stop().await;
}
