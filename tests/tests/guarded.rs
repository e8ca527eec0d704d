//! The write side's guards, end to end: authentication, the permission table at every endpoint,
//! partner scoping by every route, idempotency, batches, bad bodies at every endpoint, and stored
//! version-1 events.

use chrono::{Duration, Utc};
use command_service::http::openapi::endpoints;
use events::metadata::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::{token, uuid, TestSystem, ACCOUNT_COVERAGE};
use uuid::Uuid;

async fn event_count(system: &TestSystem) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap()
}

/// A CSM, a partner organisation, one customer assigned to it and one that is not.
struct World {
    system: TestSystem,
    csm: Uuid,
    partner: Uuid,
    assigned: Uuid,
    unassigned: Uuid,
}

async fn world() -> World {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let partner = uuid(
        &system
            .post_ok("/api/v1/partners", &json!({"name": "Northwind Consulting"}))
            .await["partner_id"],
    );
    let onboarded = Utc::now() - Duration::days(30);
    let assigned = system
        .onboard("Assigned Co", "MidMarket", "50000", csm, onboarded)
        .await;
    let unassigned = system.onboard("Elsewhere Co", "SMB", "9000", csm, onboarded).await;
    system
        .post_ok(
            &format!("/api/v1/customers/{assigned}/partners"),
            &json!({"partner_id": partner}),
        )
        .await;
    World {
        system,
        csm,
        partner,
        assigned,
        unassigned,
    }
}

impl World {
    /// An endpoint's path with real ids: the customer, CSM or partner for `{id}`, a fresh id for
    /// `{item}`.
    fn path(&self, template: &str, customer: Uuid) -> String {
        let id = if template.starts_with("/api/v1/csms") {
            self.csm
        } else if template.starts_with("/api/v1/partners") {
            self.partner
        } else {
            customer
        };
        template
            .replace("{id}", &id.to_string())
            .replace("{item}", &Uuid::now_v7().to_string())
    }

    fn token(&self, role: Role) -> String {
        let partner = (role == Role::Partner).then_some(self.partner);
        token(role, &format!("user-{}", role.as_str()), partner)
    }
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap()
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let system = TestSystem::spawn().await.unwrap();
    let url = format!("{}/api/v1/csms", system.command_url);
    let body = json!({"name": "Dana", "email": "dana@example.com"});
    let none = system.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(none.json::<Value>().await.unwrap()["error"], "unauthenticated");
    let expired =
        command_service::auth::mint(&tests::auth_settings(), "u", Role::Admin, None, Duration::hours(-2)).unwrap();
    let answer = system
        .http
        .post(&url)
        .bearer_auth(expired)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let forged = system
        .http
        .post(&url)
        .bearer_auth("eyJhbGciOiJIUzI1NiJ9.e30.x")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(event_count(&system).await, 0);
    system.stop().await;
}

#[tokio::test]
async fn every_endpoint_allows_and_refuses_each_role_as_the_permission_table_says() {
    let world = world().await;
    let system = &world.system;
    let before = event_count(system).await;
    let mut checked = 0;
    for endpoint in endpoints() {
        for role in Role::ALL {
            let path = world.path(endpoint.path, world.assigned);
            let (status, answer) = system
                .send_as(&world.token(role), method(endpoint.method), &path, Some(&json!({})))
                .await;
            let allowed = endpoint.roles().contains(&role);
            if allowed {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{} {} as {role:?} must pass the guard, got {status} {answer}",
                    endpoint.method,
                    endpoint.path
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {} as {role:?}: {answer}",
                    endpoint.method,
                    endpoint.path
                );
                assert_eq!(answer["error"], "forbidden");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, endpoints().len() * Role::ALL.len());
    assert_eq!(
        event_count(system).await,
        before,
        "empty bodies and refusals append nothing"
    );
    world.system.stop().await;
}

#[tokio::test]
async fn a_partner_reaches_no_unassigned_customer_by_any_route_and_only_partner_commands_on_its_own() {
    let world = world().await;
    let system = &world.system;
    let partner = world.token(Role::Partner);
    let before = event_count(system).await;
    for endpoint in endpoints()
        .into_iter()
        .filter(|endpoint| endpoint.path.starts_with("/api/v1/customers/{id}"))
    {
        let path = world.path(endpoint.path, world.unassigned);
        let (status, answer) = system
            .send_as(&partner, method(endpoint.method), &path, Some(&json!({})))
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{} {}: {answer}",
            endpoint.method,
            endpoint.path
        );
    }
    // A valid note on the unassigned customer is refused too.
    let note = json!({"kind": "note", "direction": "outbound", "occurred_at": Utc::now() - Duration::minutes(1), "subject": "hi"});
    let (status, _) = system
        .send_as(
            &partner,
            Method::POST,
            &format!("/api/v1/customers/{}/activities", world.unassigned),
            Some(&note),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(event_count(system).await, before);

    // On its own customer: notes and tasks yes, meetings and health no.
    let own = |suffix: &str| format!("/api/v1/customers/{}{suffix}", world.assigned);
    let (status, answer) = system
        .send_as(&partner, Method::POST, &own("/activities"), Some(&note))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let metadata: Value = sqlx::query_scalar("SELECT metadata FROM events WHERE event_id = $1")
        .bind(uuid(&answer["event_ids"][0]))
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(
        (metadata["actor_id"].clone(), metadata["actor_role"].clone()),
        (json!("user-partner"), json!("partner"))
    );
    let meeting = json!({"kind": "meeting", "direction": "outbound", "occurred_at": Utc::now() - Duration::minutes(1)});
    let (status, _) = system
        .send_as(&partner, Method::POST, &own("/activities"), Some(&meeting))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = system
        .send_as(
            &partner,
            Method::POST,
            &own("/health-scores"),
            Some(&json!({"score": 90, "source": "gainsight"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let task = json!({"title": "Kick-off", "kind": "onboarding", "priority": "high", "assignee_id": "user-partner", "due_date": "2030-01-10"});
    let (status, answer) = system
        .send_as(&partner, Method::POST, &own("/tasks"), Some(&task))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");

    // Status reports: drafted for its own organisation, submitted once, then immutable.
    let report = json!({"period_start": "2026-10-01", "period_end": "2026-10-31", "overall_status": "on_track", "summary": "All green"});
    let (status, answer) = system
        .send_as(&partner, Method::POST, &own("/partner-reports"), Some(&report))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let report_id = uuid(&answer["report_id"]);
    let submit = own(&format!("/partner-reports/{report_id}/submit"));
    let (status, answer) = system.send_as(&partner, Method::POST, &submit, None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = system.send_as(&partner, Method::POST, &submit, None).await;
    assert_eq!(
        (status, answer["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("report_already_submitted"))
    );
    let (status, _) = system
        .send_as(
            &partner,
            Method::PATCH,
            &own(&format!("/partner-reports/{report_id}")),
            Some(&json!({"summary": "changed"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Once unassigned, the partner is out.
    let (status, _) = system
        .send(
            Method::DELETE,
            &own(&format!("/partners/{}", world.partner)),
            Some(&json!({"reason": "contract ended"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = system
        .send_as(&partner, Method::POST, &own("/activities"), Some(&note))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    world.system.stop().await;
}

#[tokio::test]
async fn a_replayed_idempotency_key_returns_the_first_answer_and_appends_nothing() {
    let world = world().await;
    let system = &world.system;
    let url = format!("{}/api/v1/customers/{}/activities", system.command_url, world.assigned);
    let body = json!({"kind": "call", "direction": "inbound", "occurred_at": Utc::now() - Duration::minutes(3)});
    let send = |body: &Value| {
        system
            .http
            .post(&url)
            .bearer_auth(&system.admin)
            .header("Idempotency-Key", "sync-42")
            .json(body)
            .send()
    };
    let first = send(&body).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let count = event_count(system).await;

    let again = send(&body).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(event_count(system).await, count, "the replay appended nothing");

    let other = send(&json!({"kind": "email", "direction": "inbound", "occurred_at": Utc::now()}))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.json::<Value>().await.unwrap()["error"], "idempotency_key_reused");
    assert_eq!(event_count(system).await, count);

    let key: Value = sqlx::query_scalar("SELECT metadata FROM events WHERE event_id = $1")
        .bind(uuid(&first["event_ids"][0]))
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(key["idempotency_key"], "sync-42");
    world.system.stop().await;
}

#[tokio::test]
async fn a_malformed_oversized_or_wrongly_typed_body_at_every_endpoint_is_refused_and_appends_nothing() {
    let world = world().await;
    let system = &world.system;
    let before = event_count(system).await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    for endpoint in endpoints() {
        let path = format!("{}{}", system.command_url, world.path(endpoint.path, world.assigned));
        for (body, expected) in [
            ("{not json".to_owned(), vec![StatusCode::BAD_REQUEST]),
            ("[1, 2]".to_owned(), vec![StatusCode::UNPROCESSABLE_ENTITY]),
            (huge.clone(), vec![StatusCode::PAYLOAD_TOO_LARGE]),
        ] {
            let response = system
                .http
                .request(method(endpoint.method), &path)
                .bearer_auth(&system.admin)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            assert!(
                expected.contains(&status),
                "{} {}: {status} {answer}",
                endpoint.method,
                endpoint.path
            );
            assert!(
                answer["error"].is_string() && answer["message"].is_string(),
                "{} {}: {answer}",
                endpoint.method,
                endpoint.path
            );
        }
    }
    assert_eq!(event_count(system).await, before);
    world.system.stop().await;
}

#[tokio::test]
async fn a_batch_of_a_thousand_activities_lands_whole_or_not_at_all() {
    let world = world().await;
    let system = &world.system;
    let path = format!("/api/v1/customers/{}/activities/batch", world.assigned);
    let activity = |minutes: i64| json!({"kind": "email", "direction": "outbound", "occurred_at": Utc::now() - Duration::minutes(minutes)});
    let mut activities: Vec<Value> = (1..=1000).map(activity).collect();
    activities[700]["occurred_at"] = json!(Utc::now() + Duration::days(1));
    let before = event_count(system).await;
    let (status, answer) = system.post(&path, &json!({"activities": activities})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer["fields"]["activities[700].occurred_at"].is_string(), "{answer}");
    assert_eq!(
        event_count(system).await,
        before,
        "nothing of a refused batch is appended"
    );

    activities[700] = activity(700);
    let (status, answer) = system.post(&path, &json!({"activities": activities})).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["event_ids"].as_array().unwrap().len(), 1000);
    assert_eq!(answer["activity_ids"].as_array().unwrap().len(), 1000);
    assert_eq!(event_count(system).await, before + 1000);
    let (status, _) = system
        .post(
            &path,
            &json!({"activities": (0..1001).map(|_| activity(5)).collect::<Vec<_>>()}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    system.caught_up().await;
    let coverage = system.graphql(ACCOUNT_COVERAGE, json!({"id": world.assigned})).await;
    assert_eq!(coverage["accountCoverage"]["touches30d"], 1000);
    world.system.stop().await;
}

#[tokio::test]
async fn a_stored_version_1_event_is_read_upcast_by_commands_and_projections() {
    let world = world().await;
    let system = &world.system;
    let customer = world.assigned.to_string();
    let sequence: i64 = sqlx::query_scalar("SELECT max(sequence) FROM events WHERE aggregate_id = $1")
        .bind(&customer)
        .fetch_one(&system.pool)
        .await
        .unwrap();
    // A health score as version 1 wrote it: risk factors as plain strings.
    let payload = json!({"HealthScoreRecorded": {"score": 42.0, "source": "gainsight", "reason": null,
        "risk_factors": ["low usage"], "measured_at": Utc::now() - Duration::hours(2)}});
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Customer', $1, $2, 'HealthScoreRecorded', '1', $3, '{\"actor_id\": \"import\", \"actor_role\": \"admin\", \"source\": \"import\"}')",
    )
    .bind(&customer)
    .bind(sequence + 1)
    .bind(payload)
    .execute(&system.pool)
    .await
    .unwrap();

    // The aggregate loads through the upcaster, so the next command appends after it.
    let answer = system
        .post_ok(
            &format!("/api/v1/customers/{customer}/health-scores"),
            &json!({"score": 44, "source": "gainsight",
            "risk_factors": [{"name": "low usage", "weight": 0.7}], "measured_at": Utc::now() - Duration::hours(1)}),
        )
        .await;
    assert_eq!(answer["sequence"], sequence + 2);
    let version: String = sqlx::query_scalar("SELECT event_version FROM events WHERE event_id = $1")
        .bind(uuid(&answer["event_ids"][0]))
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(version, "2");
    system.caught_up().await;
    let stored_v1: String =
        sqlx::query_scalar("SELECT event_version FROM events WHERE aggregate_id = $1 AND sequence = $2")
            .bind(&customer)
            .bind(sequence + 1)
            .fetch_one(&system.pool)
            .await
            .unwrap();
    assert_eq!(stored_v1, "1", "stored rows are never rewritten");
    let coverage = system.graphql(ACCOUNT_COVERAGE, json!({"id": world.assigned})).await;
    assert_eq!(coverage["accountCoverage"]["healthScore"], 44.0);
    world.system.stop().await;
}
