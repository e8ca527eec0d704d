//! A command with an `Idempotency-Key` appends once and answers the same, however its attempts
//! fail, race or die; and failures get the status codes clients act on.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::TestSystem;
use uuid::Uuid;

async fn customer(system: &TestSystem) -> Uuid {
    let csm = system.register_csm("Dana Whitfield").await;
    system
        .onboard("Initech", "MidMarket", "50000", csm, Utc::now() - Duration::days(30))
        .await
}

async fn post_keyed(system: &TestSystem, path: &str, key: &str, body: &Value) -> (StatusCode, Value) {
    let response = system
        .http
        .post(format!("{}{path}", system.command_url))
        .bearer_auth(&system.admin)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn events_with_key(system: &TestSystem, key: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE metadata ->> 'idempotency_key' = $1")
        .bind(key)
        .fetch_one(&system.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_retry_after_the_first_attempt_died_before_storing_its_answer_gets_that_answer_at_once() {
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system).await;
    let path = format!("/api/v1/customers/{id}/activities");
    let body = json!({"kind": "call", "direction": "outbound", "occurred_at": Utc::now() - Duration::minutes(2)});
    let (status, first) = post_keyed(&system, &path, "crm-sync-1", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(first["activity_id"].is_string(), "{first}");

    // As if the process died between the append and storing the answer, a moment ago.
    sqlx::query("UPDATE idempotency_keys SET state = 'pending', status = NULL, response = NULL WHERE key = $1")
        .bind("crm-sync-1")
        .execute(&system.pool)
        .await
        .unwrap();
    let (status, again) = post_keyed(&system, &path, "crm-sync-1", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, first, "the first answer, activity id included");
    assert_eq!(events_with_key(&system, "crm-sync-1").await, 1);
    // And from then on, the stored answer.
    let (status, third) = post_keyed(&system, &path, "crm-sync-1", &body).await;
    assert_eq!((status, third), (StatusCode::CREATED, first));
    system.stop().await;
}

#[tokio::test]
async fn a_retry_whose_claim_was_lost_is_refused_by_the_store_and_answered_from_the_first_events() {
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system).await;
    let path = format!("/api/v1/customers/{id}/activities/batch");
    let at = Utc::now() - Duration::minutes(2);
    let body = json!({"activities": [
        {"kind": "email", "direction": "outbound", "occurred_at": at},
        {"kind": "meeting", "direction": "outbound", "occurred_at": at, "duration_minutes": 30}]});
    let (status, first) = post_keyed(&system, &path, "import-7", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(events_with_key(&system, "import-7").await, 2);

    // The claim is gone, as when a failed read-back used to release it: the retry runs the
    // command again, and only the store stands between it and a second append.
    sqlx::query("DELETE FROM idempotency_keys WHERE key = $1")
        .bind("import-7")
        .execute(&system.pool)
        .await
        .unwrap();
    let (status, again) = post_keyed(&system, &path, "import-7", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, first);
    assert_eq!(events_with_key(&system, "import-7").await, 2, "appended once");
    system.caught_up().await;
    let touches: i64 = sqlx::query_scalar("SELECT count(*) FROM coverage_contacts WHERE customer_id = $1")
        .bind(id)
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(touches, 2, "and counted once");
    system.stop().await;
}

#[tokio::test]
async fn concurrent_attempts_with_one_key_append_once_and_failed_ones_never_look_like_an_outage() {
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system).await;
    let path = format!("/api/v1/customers/{id}/activities");
    let valid = json!({"kind": "call", "direction": "inbound", "occurred_at": Utc::now() - Duration::minutes(1)});
    let attempts = (0..12).map(|_| post_keyed(&system, &path, "burst", &valid));
    let answers = futures_util::future::join_all(attempts).await;
    let created: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .map(|(_, body)| body)
        .collect();
    assert!(!created.is_empty());
    assert!(
        created.iter().all(|body| *body == created[0]),
        "one answer: {answers:?}"
    );
    for (status, body) in &answers {
        assert!(
            *status == StatusCode::CREATED
                || (*status == StatusCode::CONFLICT && body["error"] == "idempotency_key_in_flight"),
            "{status} {body}"
        );
    }
    assert_eq!(events_with_key(&system, "burst").await, 1);

    // Every attempt of a refused request is refused for what it is, never as an outage.
    let invalid = json!({"kind": "call", "direction": "sideways", "occurred_at": Utc::now()});
    let attempts = (0..12).map(|_| post_keyed(&system, &path, "refused", &invalid));
    for (status, body) in futures_util::future::join_all(attempts).await {
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY
                || (status == StatusCode::CONFLICT && body["error"] == "idempotency_key_in_flight"),
            "{status} {body}"
        );
    }
    assert_eq!(events_with_key(&system, "refused").await, 0);
    system.stop().await;
}

#[tokio::test]
async fn nul_characters_and_wrong_methods_get_clear_errors() {
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    let (status, body) = system
        .post(
            &format!("/api/v1/customers/{id}/activities"),
            &json!({"kind": "email", "direction": "outbound", "occurred_at": Utc::now(), "subject": "hi\u{0}there"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "invalid_character");
    assert!(body["fields"]["subject"].is_string(), "{body}");
    let (status, body) = system
        .post(
            &format!("/api/v1/customers/{id}/activities/batch"),
            &json!({"activities": [{"kind": "email", "direction": "outbound", "occurred_at": Utc::now(), "participants": [], "subject": "ok"},
                                   {"kind": "email", "direction": "outbound", "occurred_at": Utc::now(), "subject": "\u{0}"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["fields"]["activities[1].subject"].is_string(), "{body}");
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(after, before, "nothing appended");

    let (status, body) = system.send(Method::GET, "/api/v1/customers", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"], "method_not_allowed");
    system.stop().await;
}

#[tokio::test]
async fn a_session_terminated_mid_append_answers_503_and_the_retry_appends_once() {
    use sqlx::Connection;
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system).await;
    let path = format!("/api/v1/customers/{id}/activities");
    let body = json!({"kind": "meeting", "direction": "outbound", "occurred_at": Utc::now() - Duration::minutes(1), "duration_minutes": 30});

    // Hold the append behind a lock, then terminate the session that waits for it.
    let mut locker = sqlx::PgConnection::connect(&system.database_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let attempt = tokio::spawn({
        let (http, url, token) = (
            system.http.clone(),
            format!("{}{path}", system.command_url),
            system.admin.clone(),
        );
        let body = body.clone();
        async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "cut-off")
                .json(&body)
                .send()
                .await
                .unwrap();
            let retry_after = response.headers().get("retry-after").cloned();
            (response.status(), retry_after, response.json::<Value>().await.unwrap())
        }
    });
    let waiting = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
    tests::eventually(std::time::Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, i32>(waiting)
            .fetch_optional(&system.pool)
            .await
            .unwrap()
            .is_some()
    })
    .await
    .unwrap();
    let terminated: bool = sqlx::query_scalar(&format!("SELECT pg_terminate_backend(({waiting} LIMIT 1))"))
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert!(terminated);
    let (status, retry_after, answer) = attempt.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"], "store_unavailable");
    assert_eq!(retry_after.unwrap(), "1");
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();

    // The retry settles at once: nothing was appended, so it appends, once.
    let (status, first) = post_keyed(&system, &path, "cut-off", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = post_keyed(&system, &path, "cut-off", &body).await;
    assert_eq!((status, again), (StatusCode::CREATED, first));
    assert_eq!(events_with_key(&system, "cut-off").await, 1);
    system.stop().await;
}
