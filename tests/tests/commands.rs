//! The REST command API as a client sees it: answers of accepted commands, and refusals with a
//! status, an error code and the offending field, that append nothing.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::TestSystem;
use uuid::Uuid;

/// The sequences stored for stream `id`, in order.
async fn stream_sequences(system: &TestSystem, id: &str) -> Vec<i64> {
    sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_id = $1 ORDER BY sequence")
        .bind(id)
        .fetch_all(&system.pool)
        .await
        .unwrap()
}

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
    let sequences = stream_sequences(&system, &customer).await;
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

#[tokio::test]
async fn a_command_crossing_snapshots_takes_one_at_its_last_event() {
    let (system, _, customer) = system_with_customer().await;
    let snapshot = || async {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT last_sequence, current_snapshot FROM snapshots
              WHERE aggregate_type = 'Customer' AND aggregate_id = $1",
        )
        .bind(&customer)
        .fetch_optional(&system.pool)
        .await
        .unwrap()
    };
    let activity = json!({"kind": "email", "direction": "outbound", "occurred_at": Utc::now() - Duration::minutes(5)});
    // Events 2 to 121: past the 50th and the 100th, so one snapshot, of the stream as the whole
    // batch leaves it, at its last event.
    let answer = system.log_activities(&customer, vec![activity.clone(); 120]).await;
    assert_eq!(answer["sequence"], 121);
    assert_eq!(snapshot().await, Some((121, 1)));
    // The next commands are decided on it; the one appending the 150th event takes the next.
    let path = format!("/api/v1/customers/{customer}/activities");
    for sequence in 122..=149 {
        let (status, answer) = system.post(&path, &activity).await;
        assert_eq!(
            (status, answer["sequence"].clone()),
            (StatusCode::CREATED, json!(sequence))
        );
    }
    assert_eq!(snapshot().await, Some((121, 1)));
    let (status, answer) = system.post(&path, &activity).await;
    assert_eq!((status, answer["sequence"].clone()), (StatusCode::CREATED, json!(150)));
    assert_eq!(snapshot().await, Some((150, 2)));
    assert_eq!(
        stream_sequences(&system, &customer).await,
        (1..=150).collect::<Vec<i64>>()
    );
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

/// The value of the command service's metric `series` (name and labels as exposed), 0 when absent.
async fn metric(system: &TestSystem, series: &str) -> u64 {
    let metrics = system
        .http
        .get(format!("{}/metrics", system.command_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// The command service's count of commands waiting for a statement to append them.
async fn appends_waiting(system: &TestSystem) -> i64 {
    metric(system, "cstrack_appends_waiting").await as i64
}

/// Appending statements waiting for the events table's lock.
async fn appends_blocked(system: &TestSystem) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
          WHERE NOT l.granted AND c.relname = 'events'",
    )
    .fetch_one(&system.pool)
    .await
    .unwrap()
}

/// Logs an activity titled `subject` on each customer, all at once; answers in order.
fn log_each(system: &TestSystem, customers: &[Uuid], subject: &str) -> tokio::task::JoinHandle<Vec<StatusCode>> {
    let (http, url, token) = (system.http.clone(), system.command_url.clone(), system.admin.clone());
    let requests: Vec<_> = customers
        .iter()
        .map(|customer| {
            http.post(format!("{url}/api/v1/customers/{customer}/activities"))
                .bearer_auth(&token)
                .json(&json!({"kind": "email", "direction": "outbound",
                              "occurred_at": Utc::now() - Duration::minutes(10),
                              "subject": format!("{subject} {customer}")}))
                .send()
        })
        .collect();
    tokio::spawn(async move {
        futures_util::future::join_all(requests)
            .await
            .into_iter()
            .map(|response| response.expect("the command service answers").status())
            .collect()
    })
}

/// Holds every append back (a share lock on the events table, in a transaction the caller ends),
/// lets the four lanes of the customer type take a command each (on the first four customers)
/// and wait for the lock, and queues one command on each other customer behind them. Returns
/// the transaction and the answers to come.
async fn queue_behind_a_lock(
    system: &TestSystem,
    customers: &[Uuid],
    subject: &str,
) -> (
    sqlx::Transaction<'static, sqlx::Postgres>,
    Vec<tokio::task::JoinHandle<Vec<StatusCode>>>,
) {
    let mut holder = system.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN SHARE MODE")
        .execute(&mut *holder)
        .await
        .unwrap();
    // One at a time: a lane takes every command already waiting.
    let mut pending = Vec::new();
    for (lanes, customer) in customers[..4].iter().enumerate() {
        pending.push(log_each(
            system,
            std::slice::from_ref(customer),
            &format!("{subject}-lane"),
        ));
        tests::eventually(std::time::Duration::from_secs(30), || async {
            appends_blocked(system).await == lanes as i64 + 1
        })
        .await
        .expect("each lane takes a command and waits for the lock");
    }
    pending.push(log_each(system, &customers[4..], subject));
    let waiting = customers.len() as i64 - 4;
    tests::eventually(std::time::Duration::from_secs(30), || async {
        appends_waiting(system).await == waiting
    })
    .await
    .expect("the other commands wait for a lane");
    (holder, pending)
}

async fn answers(pending: Vec<tokio::task::JoinHandle<Vec<StatusCode>>>) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for handle in pending {
        statuses.extend(handle.await.unwrap());
    }
    statuses
}

/// `(customer, transaction id)` of each activity logged with a subject starting with `subject`.
async fn logged(system: &TestSystem, subject: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT aggregate_id, tx_id::text FROM events
          WHERE event_type = 'ActivityLogged' AND payload -> 'ActivityLogged' ->> 'subject' LIKE $1 || ' %'
          ORDER BY aggregate_id",
    )
    .bind(subject)
    .fetch_all(&system.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn commands_waiting_together_are_appended_by_one_statement_and_a_refused_one_appends_each_alone() {
    // Eight connections: four lanes wait at the lock while the other commands load and decide.
    let system = TestSystem::spawn_with(8, 0.2).await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let mut customers = Vec::new();
    for n in 0..12 {
        customers.push(
            system
                .onboard(
                    &format!("Customer {n}"),
                    "SMB",
                    "10000",
                    csm,
                    Utc::now() - Duration::days(30),
                )
                .await,
        );
    }

    // The eight commands that wait together share one statement: one transaction.
    let (holder, pending) = queue_behind_a_lock(&system, &customers, "together").await;
    holder.commit().await.unwrap();
    assert_eq!(answers(pending).await, vec![StatusCode::CREATED; 12]);
    let together = logged(&system, "together").await;
    assert_eq!(together.len(), 8);
    let transactions: std::collections::BTreeSet<&String> = together.iter().map(|(_, tx)| tx).collect();
    assert_eq!(transactions.len(), 1, "{together:?}");

    // Another writer appends to one of the waiting commands' streams at the sequence it decided
    // on: the group's statement is refused, and each command is appended alone. That one is
    // decided again on the stream as the other writer left it.
    let (mut holder, pending) = queue_behind_a_lock(&system, &customers, "alone").await;
    let raced = customers[6].to_string();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT aggregate_type, aggregate_id, sequence + 1, event_type, event_version,
                jsonb_set(jsonb_set(payload, '{ActivityLogged,activity_id}', to_jsonb(gen_random_uuid()::text)),
                          '{ActivityLogged,subject}', '\"another writer\"'),
                metadata
           FROM events WHERE aggregate_id = $1 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(&raced)
    .execute(&mut *holder)
    .await
    .unwrap();
    holder.commit().await.unwrap();
    assert_eq!(answers(pending).await, vec![StatusCode::CREATED; 12]);
    let alone = logged(&system, "alone").await;
    assert_eq!(alone.len(), 8, "each appended once");
    let sequences: Vec<(i64, String)> = sqlx::query_as(
        "SELECT sequence, coalesce(payload -> 'ActivityLogged' ->> 'subject', event_type) FROM events
          WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&raced)
    .fetch_all(&system.pool)
    .await
    .unwrap();
    let count = sequences.len() as i64;
    assert_eq!(
        sequences.iter().map(|(sequence, _)| *sequence).collect::<Vec<_>>(),
        (1..=count).collect::<Vec<_>>()
    );
    assert_eq!(sequences[count as usize - 2].1, "another writer");
    assert_eq!(sequences[count as usize - 1].1, format!("alone {raced}"));

    let (_, _, broken) = events::service::chain::verify_all(&system.pool).await.unwrap();
    assert!(broken.is_empty(), "the chain holds: {broken:?}");
    system.caught_up().await;
    for customer in &customers {
        let expected = if *customer == customers[6] { 3 } else { 2 };
        assert_eq!(
            system.contacts(*customer).await,
            expected,
            "{customer}: counted once each"
        );
    }
    system.stop().await;
}

/// How many commands the command service has loaded their stream for.
async fn loads(system: &TestSystem) -> u64 {
    metric(system, "cstrack_command_stage_seconds_count{stage=\"load\"}").await
}

/// Appends a copy of the stream's last `event_type` event, under a new id at `id_path`, as
/// another writer would (an import, another replica).
async fn append_behind(system: &TestSystem, customer: &str, event_type: &str, id_path: &str) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT aggregate_type, aggregate_id,
                (SELECT max(sequence) + 1 FROM events WHERE aggregate_id = $1), event_type, event_version,
                jsonb_set(payload, $3::text[], to_jsonb($4::text)), metadata
           FROM events WHERE aggregate_id = $1 AND event_type = $2 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(customer)
    .bind(event_type)
    .bind(vec![event_type.to_owned(), id_path.to_owned()])
    .bind(id.to_string())
    .execute(&system.pool)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn a_command_on_a_kept_copy_of_its_stream_is_decided_again_when_another_writer_appended() {
    let (system, _, customer) = system_with_customer().await;
    let activities = format!("/api/v1/customers/{customer}/activities");
    let activity = |participants: Vec<Uuid>| {
        json!({"kind": "meeting", "direction": "outbound", "occurred_at": Utc::now() - Duration::hours(1),
               "duration_minutes": 30, "participants": participants})
    };
    let ada = system
        .add_stakeholder(customer.parse().unwrap(), "Ada Lovelace", "executive")
        .await;

    // The stream is kept as its last command left it: the next command loads nothing.
    let before = loads(&system).await;
    let answer = system.post_ok(&activities, &activity(vec![ada])).await;
    assert_eq!((answer["sequence"].clone(), loads(&system).await), (json!(3), before));

    // Another writer adds a stakeholder: the kept copy does not know them, and refuses. The
    // refusal is not answered: the command is decided again on the stream as stored.
    let grace = append_behind(&system, &customer, "StakeholderAdded", "stakeholder_id").await;
    let answer = system.post_ok(&activities, &activity(vec![grace])).await;
    assert_eq!(
        (answer["sequence"].clone(), loads(&system).await),
        (json!(5), before + 1)
    );

    // Another writer logs an activity: the kept copy accepts the command at a sequence that is
    // taken, the store refuses the append, and the command is decided again.
    append_behind(&system, &customer, "ActivityLogged", "activity_id").await;
    let answer = system.post_ok(&activities, &activity(vec![ada, grace])).await;
    assert_eq!(
        (answer["sequence"].clone(), loads(&system).await),
        (json!(7), before + 2)
    );

    // A refusal on a stream as stored is answered as before.
    let (status, answer) = system.post(&activities, &activity(vec![Uuid::now_v7()])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let sequences = stream_sequences(&system, &customer).await;
    assert_eq!(sequences, (1..=7).collect::<Vec<_>>());
    system.stop().await;
}

/// Rows of the store `connection` read by sequential scans while running `statement`. A
/// connection reports its counts to the server's statistics only between transactions, so the
/// difference within one transaction is the statement's alone.
async fn scanned_running(connection: &mut sqlx::PgConnection, statement: &str) -> (i64, usize) {
    const SEQ_READ: &str =
        "SELECT COALESCE(sum(seq_tup_read), 0)::int8 FROM pg_stat_xact_user_tables WHERE relname = 'events'";
    sqlx::query("BEGIN").execute(&mut *connection).await.unwrap();
    let before: i64 = sqlx::query_scalar(SEQ_READ).fetch_one(&mut *connection).await.unwrap();
    let rows = sqlx::query(statement).fetch_all(&mut *connection).await.unwrap().len();
    let after: i64 = sqlx::query_scalar(SEQ_READ).fetch_one(&mut *connection).await.unwrap();
    sqlx::query("ROLLBACK").execute(&mut *connection).await.unwrap();
    (after - before, rows)
}

#[tokio::test]
async fn the_write_paths_reads_planned_while_the_store_was_small_read_by_index_as_the_store_grows() {
    let (system, _, customer) = system_with_customer().await;
    // Statistics taken while the store held a few events, and none since, as on a new store
    // that grew faster than `ANALYZE` ran.
    sqlx::query("ANALYZE events").execute(&system.pool).await.unwrap();
    sqlx::query("ALTER TABLE events SET (autovacuum_enabled = false)")
        .execute(&system.pool)
        .await
        .unwrap();
    // A connection settles on one plan of a statement for any parameters after a few runs. Here
    // it does so while the store holds two events, for the append (rolled back), a command's
    // load of its stream, the directory's lookup of a stream that is not there (nothing stops a
    // scan early) and, on a connection set up as the relay sets up its own, the relay's next
    // batch.
    let mut relaying = system.pool.acquire().await.unwrap();
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *relaying)
        .await
        .unwrap();
    sqlx::query(command_service::relay::SESSION)
        .execute(&mut *relaying)
        .await
        .unwrap();
    sqlx::query(&format!(
        "PREPARE relay (text, int8, int8) AS {}",
        command_service::relay::read_batch()
    ))
    .execute(&mut *relaying)
    .await
    .unwrap();
    let mut connection = system
        .generically_planned(
            "append",
            "text, text[], int8[], text[], text[], jsonb[], jsonb[], uuid[]",
            command_service::repository::APPEND_ROWS,
        )
        .await;
    for (name, types, statement) in [
        ("load", "text, text", command_service::repository::LOAD.to_owned()),
        ("exists", "text, text", command_service::store::STREAM_EXISTS.to_owned()),
    ] {
        sqlx::query(&format!("PREPARE {name} ({types}) AS {statement}"))
            .execute(&mut *connection)
            .await
            .unwrap();
    }
    let appending = |sequence: i64| {
        format!(
            "EXECUTE append ('Customer', ARRAY['{customer}'], ARRAY[{sequence}::int8], ARRAY['ProbeAppended'],
                             ARRAY['1.0'], ARRAY['{{}}'::jsonb], ARRAY['{{}}'::jsonb], ARRAY['{}'::uuid])",
            Uuid::now_v7()
        )
    };
    let load = format!("EXECUTE load ('Customer', '{customer}')");
    let exists = format!("EXECUTE exists ('Csm', '{}')", Uuid::now_v7());
    let relay = "EXECUTE relay ('0', 0, 1000)";
    for statement in [appending(2), load.clone(), exists.clone()] {
        scanned_running(&mut connection, &statement).await;
    }
    scanned_running(&mut relaying, relay).await;

    // The store grows to 3,001 events under those plans.
    for _ in 0..3 {
        let activities: Vec<Value> = (0..1000)
            .map(|k| json!({"kind": "email", "direction": "outbound", "occurred_at": Utc::now() - Duration::minutes(k), "subject": "mail"}))
            .collect();
        system.log_activities(&customer, activities).await;
    }
    assert_eq!(scanned_running(&mut connection, &appending(3002)).await, (0, 0));
    // The stream's snapshot, at its last event, and no event after it.
    assert_eq!(scanned_running(&mut connection, &load).await, (0, 1));
    assert_eq!(scanned_running(&mut connection, &exists).await, (0, 1));
    // The relay ten events behind the head, as a relay that keeps up is.
    let (tx, position): (String, i64) = sqlx::query_as(
        "SELECT tx_id::text, global_position FROM events ORDER BY tx_id DESC, global_position DESC OFFSET 10 LIMIT 1",
    )
    .fetch_one(&system.pool)
    .await
    .unwrap();
    let behind = format!("EXECUTE relay ('{tx}', {position}, 1000)");
    assert_eq!(scanned_running(&mut relaying, &behind).await, (0, 10));
    drop((connection, relaying));
    system.stop().await;
}
