//! Alerts (docs/DOMAIN.md section 8): edge-triggered, deduplicated across repeated checks, published
//! to the alerts exchange, acknowledged by a command.

use std::time::Duration;

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::{eventually, token, uuid, TestSystem};
use uuid::Uuid;

const ALERTS: &str =
    "query($id: UUID!, $kind: String, $ack: Boolean) { alerts(customerId: $id, kind: $kind, acknowledged: $ack) {
    edges { node { alertId kind message acknowledgedBy } } } }";

async fn alerts(system: &TestSystem, customer: Uuid, kind: &str, acknowledged: Option<bool>) -> Vec<Value> {
    system
        .graphql(ALERTS, json!({"id": customer, "kind": kind, "ack": acknowledged}))
        .await["alerts"]["edges"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn tc_157_2_engagement_falling_below_40_is_at_risk_and_raises_one_alert_not_two() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let customer = system
        .onboard(
            "Soylent",
            "MidMarket",
            "80000",
            csm,
            Utc::now() - chrono::Duration::days(200),
        )
        .await;
    let ada = system.add_stakeholder(customer, "Ada", "executive").await;
    let ben = system.add_stakeholder(customer, "Ben", "user").await;
    // A few minutes ago, but today: just after midnight the engagement period is today's.
    let now = tests::at_or_now(Utc::now().date_naive(), 0).max(Utc::now() - chrono::Duration::minutes(5));
    let path = format!("/api/v1/customers/{customer}/activities");
    for _ in 0..10 {
        system
            .post_ok(
                &path,
                &json!({"kind": "email", "direction": "outbound", "occurred_at": now, "response_received": true}),
            )
            .await;
    }
    let mut meetings = Vec::new();
    for _ in 0..5 {
        let answer = system
            .post_ok(&path, &json!({"kind": "meeting", "direction": "outbound", "occurred_at": now, "duration_minutes": 60, "participants": [ada, ben]}))
            .await;
        meetings.push(answer["activity_id"].as_str().unwrap().to_owned());
    }
    system.caught_up().await;
    // Before the activities were projected the customer scored 0, and a check may already have
    // raised an alert; once engaged, the condition is seen false and re-armed.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = alerts(&system, customer, "engagement_at_risk", None).await.len();
    assert!(before <= 1, "at most the alert of the unengaged start: {before}");

    // Without the meetings: 0.15*50 + 0.20*100 + 0.10*100 = 37.5, below 40.
    for meeting in meetings {
        let (status, _) = system
            .send(
                Method::DELETE,
                &format!("{path}/{meeting}"),
                Some(&json!({"reason": "cancelled"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    system.caught_up().await;
    let engagement = system
        .graphql(
            "query($id: UUID!) { customerEngagement(customerId: $id) { score category } }",
            json!({"id": customer}),
        )
        .await;
    assert_eq!(
        engagement["customerEngagement"],
        json!({"score": 37.5, "category": "AT_RISK"})
    );
    eventually(Duration::from_secs(10), || async {
        alerts(&system, customer, "engagement_at_risk", None).await.len() == before + 1
    })
    .await
    .expect("falling below 40 raises one alert");
    // Several more checks run; the condition still holds, and no second alert is raised.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let raised = alerts(&system, customer, "engagement_at_risk", None).await;
    assert_eq!(raised.len(), before + 1, "{raised:?}");
    // Newest first.
    let alert_id = uuid(&raised[0]["node"]["alertId"]);

    // Published to the alerts exchange and taken from its queue by the notifications intake.
    eventually(Duration::from_secs(20), || async {
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM notification_inbox WHERE message_id = $1)")
            .bind(alert_id.to_string())
            .fetch_one(&system.pool)
            .await
            .unwrap()
    })
    .await
    .expect("the alert reached the alerts exchange and the notifications intake");

    // Acknowledged by a CSM, once.
    let csm_token = token(events::metadata::Role::Csm, "dana", None);
    let acknowledge = format!("/api/v1/alerts/{alert_id}/acknowledge");
    let (status, answer) = system
        .send_as(
            &csm_token,
            Method::POST,
            &acknowledge,
            Some(&json!({"note": "called the sponsor"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = system
        .send_as(&csm_token, Method::POST, &acknowledge, Some(&json!({})))
        .await;
    assert_eq!(
        (status, answer["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("already_acknowledged"))
    );
    let (status, _) = system
        .send_as(
            &csm_token,
            Method::POST,
            &format!("/api/v1/alerts/{}/acknowledge", Uuid::now_v7()),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    system.caught_up().await;
    let acknowledged = alerts(&system, customer, "engagement_at_risk", Some(true)).await;
    assert_eq!(acknowledged.len(), 1);
    assert_eq!(acknowledged[0]["node"]["acknowledgedBy"], "dana");
    // What stays unacknowledged is at most the alert of the unengaged start.
    let open = alerts(&system, customer, "engagement_at_risk", Some(false)).await;
    assert_eq!(open.len(), before, "{open:?}");
    assert!(open.iter().all(|edge| uuid(&edge["node"]["alertId"]) != alert_id));
    system.stop().await;
}

#[tokio::test]
async fn time_based_conditions_raise_overdue_and_renewal_alerts_once() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Aiko Tanaka").await;
    let today = Utc::now().date_naive();
    let customer = uuid(
        &system
            .post_ok("/api/v1/customers", &json!({"name": "Wayne", "salesforce_id": "0015g00000AbCdEAAV", "tier": "SMB",
                "arr": "9000", "csm_id": csm, "contract_start": today - chrono::Days::new(300), "renewal_date": today + chrono::Days::new(45)}))
            .await["customer_id"],
    );
    let task = system
        .post_ok(
            &format!("/api/v1/customers/{customer}/tasks"),
            &json!({"title": "renewal prep", "kind": "renewal",
            "priority": "high", "assignee_id": csm.to_string(), "due_date": today - chrono::Days::new(1)}),
        )
        .await;
    system.caught_up().await;
    eventually(Duration::from_secs(10), || async {
        alerts(&system, customer, "task_overdue", None).await.len() == 1
            && alerts(&system, customer, "renewal_window", None).await.len() == 1
    })
    .await
    .expect("the overdue task and the 60-day renewal window raise one alert each");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(alerts(&system, customer, "task_overdue", None).await.len(), 1);
    let renewal = alerts(&system, customer, "renewal_window", None).await;
    assert_eq!(renewal.len(), 1);
    assert!(
        renewal[0]["node"]["message"]
            .as_str()
            .unwrap()
            .contains("within 60 days"),
        "{renewal:?}"
    );
    // Completing the task clears the condition; nothing new is raised.
    system
        .post_ok(
            &format!(
                "/api/v1/customers/{customer}/tasks/{}/complete",
                task["task_id"].as_str().unwrap()
            ),
            &json!({"outcome": "done"}),
        )
        .await;
    system.caught_up().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(alerts(&system, customer, "task_overdue", None).await.len(), 1);
    system.stop().await;
}

/// Engagement is read over the last 30 days by default (docs/DOMAIN.md section 5): on the 2nd
/// of a month, a customer met last week is not at risk, where the month to date would say so.
/// The alert reads the same window, and never fires for a customer without 30 days behind it.
#[tokio::test]
async fn engagement_early_in_a_month_reads_the_last_30_days_and_new_customers_raise_no_alert() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
    let met = system
        .onboard(
            "Met Last Week",
            "SMB",
            "20000",
            csm,
            tests::at_or_now(day("2026-06-01"), 9),
        )
        .await;
    let sponsor = system.add_stakeholder(met, "Ada", "executive").await;
    let champion = system.add_stakeholder(met, "Ben", "champion").await;
    let path = format!("/api/v1/customers/{met}/activities");
    // Last week: two hour-long meetings with both, four answered e-mails. Over the last 30 days:
    // email 20, response 100, meeting 40, quality 20, breadth 50, recency 85 (5 days): 52.0.
    for at in ["2026-10-26T15:00:00Z", "2026-10-27T15:00:00Z"] {
        system
            .post_ok(
                &path,
                &json!({"kind": "meeting", "direction": "outbound", "occurred_at": at,
                "duration_minutes": 60, "participants": [sponsor, champion]}),
            )
            .await;
    }
    for hour in 10..14 {
        system
            .post_ok(
                &path,
                &json!({"kind": "email", "direction": "outbound",
                "occurred_at": format!("2026-10-28T{hour}:00:00Z"), "response_received": true}),
            )
            .await;
    }
    let quiet = system
        .onboard(
            "Long Quiet",
            "SMB",
            "20000",
            csm,
            Utc::now() - chrono::Duration::days(200),
        )
        .await;
    let new = system.onboard("Just Signed", "SMB", "20000", csm, Utc::now()).await;
    system.caught_up().await;

    let read = |period: Option<&str>| {
        let system = &system;
        let period = period.map(str::to_owned);
        async move {
            system
                .graphql(
                    "query($id: UUID!, $p: String) {
                       customerEngagement(customerId: $id, asOf: \"2026-11-02\", period: $p) { period score category meetingsHeld }
                       engagementMetrics(asOf: \"2026-11-02\", period: $p) { period needingAttention { name } } }",
                    json!({"id": met, "p": period}),
                )
                .await
        }
    };
    let rolling = read(None).await;
    assert_eq!(
        rolling["customerEngagement"],
        json!({"period": "30d", "score": 52.0, "category": "LOW", "meetingsHeld": 2})
    );
    assert_eq!(rolling["engagementMetrics"]["period"], "30d");
    let month = read(Some("2026-11")).await;
    assert_eq!(
        month["customerEngagement"],
        json!({"period": "2026-11", "score": 8.5, "category": "AT_RISK", "meetingsHeld": 0}),
        "the month to date reads a customer met last week as at risk"
    );
    let quarter = read(Some("90d")).await;
    assert_eq!(quarter["customerEngagement"]["meetingsHeld"], 2);
    let refused = system
        .graphql_raw("{ engagementMetrics(period: \"0d\") { period } }", json!({}))
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );

    // The alert: the customer with no contact in 200 days is at risk over the last 30 days; the
    // one signed today has no 30 days behind it and raises nothing, whatever the checks see.
    eventually(Duration::from_secs(10), || async {
        alerts(&system, quiet, "engagement_at_risk", None).await.len() == 1
    })
    .await
    .expect("the quiet customer's engagement alert");
    let raised = alerts(&system, quiet, "engagement_at_risk", None).await;
    assert_eq!(
        raised[0]["node"]["message"],
        "Long Quiet: engagement 0.0 is at risk over the last 30 days"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        alerts(&system, new, "engagement_at_risk", None).await,
        Vec::<Value>::new()
    );
    assert_eq!(alerts(&system, quiet, "engagement_at_risk", None).await.len(), 1);
    system.stop().await;
}
