//! The REST command API as a client sees it: answers of accepted commands, and refusals with a
//! status, an error code and the offending field, that append nothing.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::TestSystem;
use uuid::Uuid;

async fn event_count(system: &TestSystem) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap()
}

fn onboarding(csm: Uuid) -> Value {
    json!({
        "name": "Acme Corp",
        "salesforce_id": "0015g00000AbCdEAAV",
        "tier": "Enterprise",
        "arr": "250000.00",
        "csm_id": csm,
        "contract_start": "2025-01-01",
        "renewal_date": "2026-12-31",
    })
}

/// A running system with one CSM and one onboarded customer.
async fn system_with_customer() -> (TestSystem, Uuid, String) {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let answer = system.post_ok("/api/v1/customers", &onboarding(csm)).await;
    let customer = answer["customer_id"].as_str().unwrap().to_owned();
    (system, csm, customer)
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

#[tokio::test]
async fn accepted_commands_answer_with_stream_sequence_and_event_ids() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let customer_id = Uuid::now_v7();
    let answer = system
        .post_ok(
            "/api/v1/customers",
            &with(onboarding(csm), "customer_id", json!(customer_id)),
        )
        .await;
    assert_eq!(answer["stream_type"], "Customer");
    assert_eq!(answer["stream_id"], json!(customer_id.to_string()));
    assert_eq!(answer["customer_id"], json!(customer_id));
    assert_eq!(answer["sequence"], 1);
    let event_id: Uuid = answer["event_ids"][0].as_str().unwrap().parse().unwrap();
    assert_eq!(event_id.get_version_num(), 7);

    let other = system.register_csm("Marco Bianchi").await;
    let (status, answer) = system
        .send(
            Method::PUT,
            &format!("/api/v1/customers/{customer_id}/csm"),
            Some(&json!({"csm_id": other, "reason": "territory"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["sequence"], 2);

    let metadata: Value = sqlx::query_scalar("SELECT metadata FROM events WHERE event_id = $1")
        .bind(event_id)
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(metadata["source"], "api");
    assert!(metadata["correlation_id"].as_str().is_some());
    system.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_with_code_and_field_and_appends_nothing() {
    let (system, csm, customer) = system_with_customer().await;
    let before = event_count(&system).await;
    let future = (Utc::now() + Duration::days(2)).to_rfc3339();

    let health = format!("/api/v1/customers/{customer}/health-scores");
    let activities = format!("/api/v1/customers/{customer}/activities");
    let unknown_customer = format!("/api/v1/customers/{}/activities", Uuid::now_v7());
    let cases: Vec<(&str, Value, StatusCode, &str, Option<&str>)> = vec![
        (
            "/api/v1/customers",
            with(onboarding(csm), "salesforce_id", json!("123")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_salesforce_id",
            Some("salesforce_id"),
        ),
        (
            "/api/v1/customers",
            with(onboarding(csm), "arr", json!("-1")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "negative_arr",
            Some("arr"),
        ),
        (
            "/api/v1/customers",
            with(onboarding(csm), "renewal_date", json!("2024-01-01")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "renewal_before_contract_start",
            Some("renewal_date"),
        ),
        (
            "/api/v1/customers",
            with(onboarding(csm), "tier", json!("Gold")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            Some("tier"),
        ),
        (
            "/api/v1/customers",
            with(onboarding(csm), "arr", json!(true)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_type",
            Some("arr"),
        ),
        (
            "/api/v1/customers",
            with(onboarding(csm), "nickname", json!("x")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
            Some("nickname"),
        ),
        (
            "/api/v1/customers",
            with(onboarding(Uuid::now_v7()), "name", json!("Ghost")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_csm",
            Some("csm_id"),
        ),
        (
            "/api/v1/customers",
            json!({"name": "no fields"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            Some("salesforce_id"),
        ),
        (
            &health,
            json!({"score": 101, "source": "gainsight"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_range",
            Some("score"),
        ),
        (
            &health,
            json!({"score": 40, "source": "manual"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason_required",
            Some("reason"),
        ),
        (
            &activities,
            json!({"kind": "email", "direction": "outbound", "occurred_at": future}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "in_future",
            Some("occurred_at"),
        ),
        (
            &activities,
            json!({"kind": "email", "direction": "outbound", "occurred_at": Utc::now(), "participants": [Uuid::now_v7()]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_stakeholder",
            Some("participants"),
        ),
        (
            &unknown_customer,
            json!({"kind": "email", "direction": "outbound", "occurred_at": Utc::now()}),
            StatusCode::NOT_FOUND,
            "customer_not_found",
            None,
        ),
        (
            "/api/v1/customers",
            with(onboarding(csm), "customer_id", json!(customer)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "already_exists",
            None,
        ),
    ];
    for (path, body, status, code, field) in cases {
        let (actual, answer) = system.post(path, &body).await;
        assert_eq!(actual, status, "{path} {body} -> {answer}");
        assert_eq!(answer["error"], code, "{path} {body} -> {answer}");
        assert!(answer["message"].as_str().is_some_and(|message| !message.is_empty()));
        if let Some(field) = field {
            assert!(answer["fields"][field].is_string(), "{field} named in {answer}");
        }
    }

    // Not JSON, not declared as JSON, too large, unknown activity.
    let raw = |body: &'static str, content_type: &'static str| {
        system
            .http
            .post(format!("{}/api/v1/customers", system.command_url))
            .bearer_auth(&system.admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let malformed = raw("{not json", "application/json").await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json::<Value>().await.unwrap()["error"], "malformed_json");
    let text = raw("{}", "text/plain").await.unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = system
        .http
        .post(format!("{}/api/v1/customers", system.command_url))
        .bearer_auth(&system.admin)
        .json(&json!({"name": "x".repeat(3_000_000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(huge.json::<Value>().await.unwrap()["error"], "payload_too_large");
    let (status, answer) = system
        .send(
            Method::DELETE,
            &format!("/api/v1/customers/{customer}/activities/{}", Uuid::now_v7()),
            Some(&json!({"reason": "x"})),
        )
        .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (StatusCode::NOT_FOUND, json!("activity_not_found"))
    );

    assert_eq!(
        event_count(&system).await,
        before,
        "no refused command appended anything"
    );
    system.stop().await;
}

#[tokio::test]
async fn concurrent_commands_on_one_customer_all_land_with_consecutive_sequences() {
    let (system, _, customer) = system_with_customer().await;
    let path = format!("/api/v1/customers/{customer}/activities");
    let body = json!({"kind": "call", "direction": "inbound", "occurred_at": Utc::now() - Duration::minutes(5)});
    let answers = futures_util::future::join_all((0..50).map(|_| system.post(&path, &body))).await;
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{answer}");
    }
    let sequences: Vec<i64> =
        sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_id = $1 ORDER BY sequence")
            .bind(&customer)
            .fetch_all(&system.pool)
            .await
            .unwrap();
    assert_eq!(sequences, (1..=51).collect::<Vec<i64>>());

    // The command that appended the 50th event wrote the stream's first snapshot in the same
    // statement; the next command is decided from it and the event after it.
    let (last_sequence, current_snapshot, id): (i64, i64, Option<String>) = sqlx::query_as(
        "SELECT last_sequence, current_snapshot, payload ->> 'id' FROM snapshots
          WHERE aggregate_type = 'Customer' AND aggregate_id = $1",
    )
    .bind(&customer)
    .fetch_one(&system.pool)
    .await
    .unwrap();
    assert_eq!((last_sequence, current_snapshot), (50, 1));
    assert_eq!(id.as_deref(), Some(customer.as_str()));
    let (status, answer) = system.post(&path, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["sequence"], 52);
    system.stop().await;
}

/// Completing the task at `complete` again is refused and appends nothing: `customer`'s stream
/// stays at `head`.
async fn completing_again_is_refused(system: &TestSystem, complete: &str, customer: &str, head: i64) {
    let (status, answer) = system.post(complete, &json!({"outcome": "twice"})).await;
    assert_eq!(
        (status, answer["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("task_completed")),
        "{answer}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT max(sequence) FROM events WHERE aggregate_id = $1")
        .bind(customer)
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(stored, head);
}

#[tokio::test]
async fn a_command_is_decided_on_the_snapshot_and_upcast_tail_or_on_the_whole_stream_when_the_snapshot_is_unreadable() {
    let (system, csm, customer) = system_with_customer().await;
    let task = system
        .post_ok(
            &format!("/api/v1/customers/{customer}/tasks"),
            &json!({"title": "renewal prep", "kind": "renewal", "priority": "high",
                    "assignee_id": csm.to_string(), "due_date": Utc::now().date_naive() + Duration::days(5)}),
        )
        .await;
    let complete = format!(
        "/api/v1/customers/{customer}/tasks/{}/complete",
        task["task_id"].as_str().unwrap()
    );
    let activities = format!("/api/v1/customers/{customer}/activities");
    let activity = json!({"kind": "call", "direction": "inbound", "occurred_at": Utc::now() - Duration::minutes(5)});
    for _ in 3..=50 {
        system.post_ok(&activities, &activity).await;
    }
    let snapshot: i64 = sqlx::query_scalar(
        "SELECT last_sequence FROM snapshots WHERE aggregate_type = 'Customer' AND aggregate_id = $1",
    )
    .bind(&customer)
    .fetch_one(&system.pool)
    .await
    .unwrap();
    assert_eq!(snapshot, 50);

    // After the snapshot, an event as version 1 stored it: the load upcasts it.
    let payload = json!({"HealthScoreRecorded": {"score": 42.0, "source": "gainsight", "reason": null,
        "risk_factors": ["low usage"], "measured_at": Utc::now() - Duration::hours(2)}});
    let customer_id: Uuid = customer.parse().unwrap();
    assert_eq!(
        system
            .append_stored(customer_id, "HealthScoreRecorded", "1", payload)
            .await,
        51
    );
    let completed = system.post_ok(&complete, &json!({"outcome": "done"})).await;
    assert_eq!(completed["sequence"], 52);
    completing_again_is_refused(&system, &complete, &customer, 52).await;

    // A snapshot this version cannot read: the whole stream is replayed, the task still done.
    sqlx::query("UPDATE snapshots SET payload = '{\"shape\": \"older\"}' WHERE aggregate_id = $1")
        .bind(&customer)
        .execute(&system.pool)
        .await
        .unwrap();
    assert_eq!(system.post_ok(&activities, &activity).await["sequence"], 53);
    completing_again_is_refused(&system, &complete, &customer, 53).await;
    system.stop().await;
}

#[tokio::test]
async fn an_activity_id_a_caller_gives_again_is_refused_alone_and_in_a_batch() {
    let (system, _, customer) = system_with_customer().await;
    let single = format!("/api/v1/customers/{customer}/activities");
    let batch = format!("/api/v1/customers/{customer}/activities/batch");
    let given = Uuid::now_v7();
    let activity = json!({"kind": "call", "direction": "inbound", "occurred_at": Utc::now() - Duration::minutes(5)});
    let logged = system
        .post_ok(&single, &with(activity.clone(), "activity_id", json!(given)))
        .await;
    assert_eq!(logged["activity_id"], json!(given));
    let before = event_count(&system).await;

    let (status, answer) = system
        .post(&single, &with(activity.clone(), "activity_id", json!(given)))
        .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("activity_exists")),
        "{answer}"
    );
    let (status, answer) = system
        .post(
            &batch,
            &json!({"activities": [activity.clone(), with(activity.clone(), "activity_id", json!(given))]}),
        )
        .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("activity_exists")),
        "{answer}"
    );
    assert!(answer["fields"]["activities[1].activity_id"].is_string(), "{answer}");
    assert_eq!(event_count(&system).await, before, "the refusals appended nothing");

    // Ids the service makes are new: a batch without ids is logged whole.
    let logged = system
        .post_ok(&batch, &json!({"activities": [activity.clone(), activity]}))
        .await;
    assert_eq!(logged["activity_ids"].as_array().map(Vec::len), Some(2));
    assert_eq!(event_count(&system).await, before + 2);
    system.stop().await;
}
