//! The read side through HTTP and GraphQL: engagement (PRD-157), the timeline, health trends and
//! correlation, with the exact numbers of docs/DOMAIN.md; and projectors that apply each event once
//! however often it is delivered.

use std::time::Duration;

use chrono::{Days, DurationRound, NaiveDate, Utc};
use events::engagement::Period;
use events::service::store::{StoredEvent, COLUMNS};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::BasicProperties;
use serde_json::{json, Value};
use tests::{eventually, TestSystem, AMQP_URL};
use uuid::Uuid;

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn noon(day: NaiveDate) -> String {
    tests::at_or_now(day, 12).to_rfc3339()
}

async fn customer(system: &TestSystem, name: &str) -> Uuid {
    let csm = system.register_csm(&format!("CSM of {name}")).await;
    system
        .onboard(
            name,
            "MidMarket",
            "60000",
            csm,
            Utc::now() - chrono::Duration::days(400),
        )
        .await
}

async fn email(system: &TestSystem, customer: Uuid, day: NaiveDate, answered: Option<bool>, subject: &str) -> Value {
    system
        .post_ok(
            &format!("/api/v1/customers/{customer}/activities"),
            &json!({"kind": "email", "direction": "outbound", "occurred_at": noon(day), "subject": subject,
                    "response_received": answered, "response_time_hours": answered.filter(|a| *a).map(|_| 4.0)}),
        )
        .await
}

const ENGAGEMENT: &str = "query($id: UUID!, $period: String) { customerEngagement(customerId: $id, period: $period) {
    period emailsSent responseRate avgResponseTimeHours meetingsHeld meetingMinutes stakeholdersEngaged
    executiveTouchpoints daysSinceContact components { email response meeting quality breadth recency }
    score category previousScore change trend } }";

#[tokio::test]
async fn tc_157_1_ten_emails_three_meetings_and_sixty_percent_answered_score_56_5() {
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system, "Acme").await;
    let ada = system.add_stakeholder(id, "Ada", "executive").await;
    let ben = system.add_stakeholder(id, "Ben", "user").await;
    let period = Period::containing(today(), false).previous();
    for k in 0..10 {
        email(&system, id, period.start + Days::new(4), Some(k < 6), "follow-up").await;
    }
    for day in [period.start + Days::new(9), period.start + Days::new(19), period.end] {
        system
            .post_ok(
                &format!("/api/v1/customers/{id}/activities"),
                &json!({"kind": "meeting", "direction": "outbound", "occurred_at": noon(day), "duration_minutes": 60,
                        "participants": [ada, ben]}),
            )
            .await;
    }
    system.caught_up().await;
    let data = system
        .graphql(ENGAGEMENT, json!({"id": id, "period": period.label()}))
        .await;
    let engagement = &data["customerEngagement"];
    assert_eq!(engagement["emailsSent"], 10);
    assert_eq!(engagement["responseRate"], 0.6);
    assert_eq!(engagement["avgResponseTimeHours"], 4.0);
    assert_eq!(
        (engagement["meetingsHeld"].clone(), engagement["meetingMinutes"].clone()),
        (json!(3), json!(180))
    );
    assert_eq!(
        (
            engagement["stakeholdersEngaged"].clone(),
            engagement["executiveTouchpoints"].clone()
        ),
        (json!(2), json!(3))
    );
    assert_eq!(engagement["daysSinceContact"], 0);
    assert_eq!(
        engagement["components"],
        json!({"email": 50.0, "response": 60.0, "meeting": 60.0, "quality": 30.0, "breadth": 50.0, "recency": 100.0})
    );
    // 0.15*50 + 0.20*60 + 0.25*60 + 0.15*30 + 0.15*50 + 0.10*100
    assert_eq!(engagement["score"], 56.5);
    assert_eq!(engagement["category"], "LOW");
    assert_eq!(
        (engagement["previousScore"].clone(), engagement["trend"].clone()),
        (json!(0.0), json!("IMPROVING"))
    );
    system.stop().await;
}

#[tokio::test]
async fn tc_157_3_a_logged_email_appears_in_the_timeline_and_updates_the_metrics() {
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system, "Globex").await;
    system.caught_up().await;
    let before = system.graphql(ENGAGEMENT, json!({"id": id})).await;
    assert_eq!(before["customerEngagement"]["emailsSent"], 0);

    let logged = email(&system, id, today(), Some(true), "Renewal terms").await;
    system.caught_up().await;
    let timeline = system
        .graphql(
            "query($id: UUID!) { customerTimeline(customerId: $id, first: 1) {
                edges { cursor node { eventId kind eventType summary } } pageInfo { hasNextPage } } }",
            json!({"id": id}),
        )
        .await;
    let newest = &timeline["customerTimeline"]["edges"][0]["node"];
    assert_eq!(newest["eventId"], logged["event_ids"][0]);
    // The id the command made is the stored one; the key that handed it over is not stored.
    let handed_over: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE metadata ? 'cstrack_event_ids'")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(handed_over, 0);
    assert_eq!(
        (newest["kind"].clone(), newest["eventType"].clone()),
        (json!("activity"), json!("ActivityLogged"))
    );
    assert_eq!(newest["summary"], "email: Renewal terms");
    assert_eq!(
        timeline["customerTimeline"]["pageInfo"]["hasNextPage"], true,
        "the onboarding is on the next page"
    );

    let after = system.graphql(ENGAGEMENT, json!({"id": id})).await;
    assert_eq!(after["customerEngagement"]["emailsSent"], 1);
    assert_eq!(after["customerEngagement"]["responseRate"], 1.0);
    assert_eq!(after["customerEngagement"]["daysSinceContact"], 0);
    system.stop().await;
}

#[tokio::test]
async fn the_timeline_pages_by_cursor_without_gaps_or_repeats() {
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system, "Initech").await;
    for k in 0..7 {
        email(&system, id, today() - Days::new(k), None, &format!("mail {k}")).await;
    }
    system.caught_up().await;
    let query = "query($id: UUID!, $after: String) { customerTimeline(customerId: $id, first: 3, after: $after, kinds: [\"activity\"]) {
        edges { cursor node { summary } } pageInfo { hasNextPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = system.graphql(query, json!({"id": id, "after": after})).await["customerTimeline"].clone();
        for edge in page["edges"].as_array().unwrap() {
            seen.push(edge["node"]["summary"].as_str().unwrap().to_owned());
        }
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let expected: Vec<String> = (0..7).map(|k| format!("email: mail {k}")).collect();
    assert_eq!(seen, expected, "newest first, each once");
    system.stop().await;
}

/// The rows a statement's scans of `events` examined: those they returned and those their filters
/// removed, summed over the plan of an `EXPLAIN (ANALYZE, FORMAT JSON)`.
fn events_rows_examined(plan: &Value) -> i64 {
    let own = if plan["Relation Name"] == "events" {
        ["Actual Rows", "Rows Removed by Filter", "Rows Removed by Index Recheck"]
            .iter()
            .map(|key| plan[key].as_i64().unwrap_or(0))
            .sum()
    } else {
        0
    };
    own + plan["Plans"]
        .as_array()
        .map_or(0, |plans| plans.iter().map(events_rows_examined).sum())
}

#[tokio::test]
async fn a_timeline_page_reads_only_the_events_within_its_bounds_however_postgres_plans_it() {
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system, "Initech").await;
    let start = (Utc::now() - chrono::Duration::days(10))
        .duration_trunc(chrono::TimeDelta::minutes(1))
        .unwrap();
    let minute = |k: i64| start + chrono::Duration::minutes(k);
    let activities: Vec<Value> = (0..1000)
        .map(|k| json!({"kind": "email", "direction": "outbound", "occurred_at": minute(k), "subject": format!("mail {k}")}))
        .collect();
    system.log_activities(id, activities).await;
    system.caught_up().await;

    // Through GraphQL: the last three minutes are the three newest emails.
    let page = system
        .graphql(
            "query($id: UUID!, $from: DateTime) { customerTimeline(customerId: $id, from: $from, kinds: [\"activity\"]) {
                edges { node { summary } } } }",
            json!({"id": id, "from": minute(997)}),
        )
        .await;
    let summaries: Vec<&str> = page["customerTimeline"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["summary"].as_str().unwrap())
        .collect();
    assert_eq!(summaries, ["email: mail 999", "email: mail 998", "email: mail 997"]);

    // The plan PostgreSQL settles on for a prepared statement after a few runs, whatever its
    // parameters: the period and the cursor still bound the scan, so the page reads its three
    // events, not the stream down to its first.
    sqlx::query("ANALYZE events").execute(&system.pool).await.unwrap();
    let mut connection = system
        .generically_planned(
            "page",
            "text, text[], boolean, boolean, timestamptz, timestamptz, timestamptz, bigint, bigint, boolean, text",
            query_api::timeline::PAGE,
        )
        .await;
    for (from, after, expected) in [
        (Some(minute(997)), None, 3),
        // The three emails before the cursor, and the onboarding before them that the kinds
        // leave out: the stream's oldest events.
        (None, Some((minute(3), 0)), 4),
        (Some(minute(990)), Some((minute(993), 0)), 3),
    ] {
        let explained: Value = sqlx::query_scalar(&format!(
            "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page ('{id}', '{{ActivityLogged}}', true, true, {}, NULL, {}, {}, 101, false, NULL)",
            from.map_or("NULL".to_owned(), |at: chrono::DateTime<Utc>| format!("'{}'", at.to_rfc3339())),
            after.map_or("NULL".to_owned(), |(at, _): (chrono::DateTime<Utc>, i64)| format!("'{}'", at.to_rfc3339())),
            after.map_or(0, |(_, sequence)| sequence),
        ))
        .fetch_one(&mut *connection)
        .await
        .unwrap();
        let plan = &explained[0]["Plan"];
        assert_eq!(
            events_rows_examined(plan),
            expected,
            "from {from:?}, after {after:?}: {plan:#}"
        );
    }
    drop(connection);
    system.stop().await;
}

/// The kinds of a timeline page, newest first.
fn kinds(page: &Value) -> Vec<String> {
    page["customerTimeline"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| edge["node"]["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_timeline_is_the_stream_read_by_time_as_far_as_the_customer_is_projected() {
    let mut system = TestSystem::spawn().await.unwrap();
    let id = customer(&system, "Vandelay").await;
    // Recorded out of order: the timeline orders by when each happened.
    system.record_health(id, 64.0, today() - Days::new(1)).await;
    email(&system, id, today() - Days::new(3), Some(true), "pricing").await;
    system.log_activity(id, "note", today() - Days::new(2), &[]).await;
    system.caught_up().await;
    let query = "query($id: UUID!, $kinds: [String!]) { customerTimeline(customerId: $id, kinds: $kinds) {
        edges { node { kind eventType summary detail } } } }";
    let all = system.graphql(query, json!({"id": id})).await;
    assert_eq!(kinds(&all), ["health", "note", "activity", "profile"]);
    let email_entry = &all["customerTimeline"]["edges"][2]["node"];
    assert_eq!(email_entry["summary"], "email: pricing");
    assert_eq!(
        email_entry["detail"]["subject"], "pricing",
        "the event's body, untagged"
    );
    let notes = system.graphql(query, json!({"id": id, "kinds": ["note"]})).await;
    assert_eq!(kinds(&notes), ["note"]);
    let activities = system
        .graphql(query, json!({"id": id, "kinds": ["activity", "profile"]}))
        .await;
    assert_eq!(kinds(&activities), ["activity", "profile"]);

    // An event stored but not yet projected is not shown: the timeline agrees with the rest of
    // the customer's read models.
    system.kill_projection().await;
    email(&system, id, today(), None, "follow-up").await;
    let before = system.graphql(query, json!({"id": id})).await;
    assert_eq!(kinds(&before), ["health", "note", "activity", "profile"]);
    system.start_projection().await.unwrap();
    system.caught_up().await;
    let after = system.graphql(query, json!({"id": id})).await;
    assert_eq!(kinds(&after), ["activity", "health", "note", "activity", "profile"]);
    assert_eq!(
        after["customerTimeline"]["edges"][0]["node"]["summary"],
        "email: follow-up"
    );
    system.stop().await;
}

#[tokio::test]
async fn health_trend_carries_scores_forward_and_measures_its_windows() {
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system, "Umbrella").await;
    let to = today();
    system.record_health(id, 40.0, to - Days::new(100)).await;
    system.record_health(id, 50.0, to - Days::new(45)).await;
    let last = system
        .post_ok(
            &format!("/api/v1/customers/{id}/health-scores"),
            &json!({"score": 70, "source": "manual", "reason": "exec sponsor re-engaged",
                    "risk_factors": [{"name": "seat decline", "weight": 0.4}], "measured_at": noon(to - Days::new(20))}),
        )
        .await;
    system.caught_up().await;
    let query = "query($id: UUID!, $from: Date, $to: Date, $g: Granularity!) { healthTrend(customerId: $id, from: $from, to: $to, granularity: $g) {
        points { bucket score colour measuredInBucket lineage { eventId source actorId reason riskFactors } }
        windows { days delta trend } } }";
    let daily = system
        .graphql(
            query,
            json!({"id": id, "from": to - Days::new(60), "to": to, "g": "DAY"}),
        )
        .await["healthTrend"]
        .clone();
    let points = daily["points"].as_array().unwrap();
    assert_eq!(points.len(), 61, "one point a day, carried forward");
    assert_eq!(points[0]["score"], 40.0);
    assert_eq!(points[0]["measuredInBucket"], false);
    assert_eq!(points[15]["score"], 50.0, "day to-45");
    assert_eq!(points[15]["measuredInBucket"], true);
    assert_eq!(points[60]["score"], 70.0);
    assert_eq!(points[60]["colour"], "GREEN");
    assert_eq!(points[60]["lineage"]["eventId"], last["event_ids"][0]);
    assert_eq!(points[60]["lineage"]["source"], "manual");
    assert_eq!(points[60]["lineage"]["actorId"], "test-admin");
    assert_eq!(points[60]["lineage"]["reason"], "exec sponsor re-engaged");
    assert_eq!(
        points[60]["lineage"]["riskFactors"],
        json!([{"name": "seat decline", "weight": 0.4}])
    );
    // 30 days: 70 against 50 (carried from day -45); 60 and 90 days: 70 against 40 (from day -100).
    assert_eq!(
        daily["windows"],
        json!([{"days": 30, "delta": 20.0, "trend": "IMPROVING"}, {"days": 60, "delta": 30.0, "trend": "IMPROVING"},
               {"days": 90, "delta": 30.0, "trend": "IMPROVING"}])
    );
    let monthly = system
        .graphql(
            query,
            json!({"id": id, "from": to - Days::new(60), "to": to, "g": "MONTH"}),
        )
        .await["healthTrend"]["points"]
        .as_array()
        .unwrap()
        .len();
    assert!((3..=4).contains(&monthly), "{monthly} monthly buckets over 61 days");
    system.stop().await;
}

#[tokio::test]
async fn engagement_correlates_with_health_as_hand_computed() {
    let system = TestSystem::spawn().await.unwrap();
    let period = Period::containing(today(), false).previous();
    // k outbound emails on the period's last day: score = 0.15 * 5k + 0.10 * 100, linear in k,
    // so r equals r(k, health): k = 1..4, health 40, 60, 50, 80 -> 55 / sqrt(5 * 875) = 0.832.
    for (k, health) in [(1, 40.0), (2, 60.0), (3, 50.0), (4, 80.0)] {
        let id = customer(&system, &format!("Customer {k}")).await;
        for _ in 0..k {
            email(&system, id, period.end, None, "news").await;
        }
        system.record_health(id, health, period.end).await;
    }
    system.caught_up().await;
    let data = system
        .graphql(
            "query($p: String) { engagementCorrelation(outcome: HEALTH, period: $p) { r n } engagementMetrics(period: $p) {
                customers averageScore distribution { category customers } } }",
            json!({"p": period.label()}),
        )
        .await;
    assert_eq!(data["engagementCorrelation"], json!({"r": 0.832, "n": 4}));
    // Scores 10.75, 11.5, 12.25, 13.0: all at risk, averaging 11.875 -> 11.9.
    assert_eq!(data["engagementMetrics"]["customers"], 4);
    assert_eq!(data["engagementMetrics"]["averageScore"], 11.9);
    assert_eq!(
        data["engagementMetrics"]["distribution"][3],
        json!({"category": "AT_RISK", "customers": 4})
    );
    system.stop().await;
}

/// A digest of every read-model table's rows.
async fn read_models(system: &TestSystem) -> Vec<(String, Option<String>)> {
    let tables = [
        "coverage_accounts",
        "coverage_contacts",
        "coverage_health_points",
        "coverage_csms",
        "coverage_handoffs",
        "customer_profiles",
        "customer_partners",
        "customer_stakeholders",
        "customer_activities",
        "health_points",
        "tasks",
        "partner_reports",
        "customer_use_cases",
        "nps_responses",
        "adoption_changes",
        "csm_directory",
        "projector_checkpoints",
    ];
    digests(&system.pool, &tables).await
}

/// An md5 of each table's rows.
async fn digests(pool: &sqlx::PgPool, tables: &[&str]) -> Vec<(String, Option<String>)> {
    let mut digests = Vec::new();
    for table in tables {
        let digest: Option<String> = sqlx::query_scalar(&format!(
            "SELECT md5(string_agg({row}, ',' ORDER BY {row})) FROM {table} t",
            row = tests::row_text(table)
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        digests.push((table.to_string(), digest));
    }
    digests
}

fn queues_drained(prefix: &str) -> bool {
    let output = std::process::Command::new("rabbitmqctl")
        .args(["list_queues", "-q", "--no-table-headers", "name", "messages"])
        .output()
        .expect("rabbitmqctl runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with(prefix) && !line.contains(".events.dead"))
        .all(|line| line.split_whitespace().nth(1) == Some("0"))
}

#[tokio::test]
async fn every_projector_applies_each_event_once_however_often_it_is_delivered() {
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system, "Hooli").await;
    let person = system.add_stakeholder(id, "Gavin", "executive").await;
    let logged = email(&system, id, today() - Days::new(3), Some(true), "pricing").await;
    system
        .post_ok(
            &format!("/api/v1/customers/{id}/activities"),
            &json!({"kind": "meeting", "direction": "outbound",
            "occurred_at": noon(today() - Days::new(2)), "duration_minutes": 30, "participants": [person]}),
        )
        .await;
    system.record_health(id, 64.0, today() - Days::new(1)).await;
    system
        .post_ok(
            &format!("/api/v1/customers/{id}/tasks"),
            &json!({"title": "QBR deck", "kind": "qbr_prep", "priority": "high",
            "assignee_id": "csm-1", "due_date": today() + Days::new(7)}),
        )
        .await;
    let (status, _) = system
        .send(
            reqwest::Method::DELETE,
            &format!(
                "/api/v1/customers/{id}/activities/{}",
                logged["activity_id"].as_str().unwrap()
            ),
            Some(&json!({"reason": "duplicate"})),
        )
        .await;
    assert_eq!(status, 200);
    system.caught_up().await;
    let before = read_models(&system).await;

    // Deliver every stored event a second time, exactly as the relay publishes it.
    let rows: Vec<StoredEvent> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM events ORDER BY global_position"))
        .fetch_all(&system.pool)
        .await
        .unwrap();
    let topology = events::topology::Topology::new(system.name.clone(), 2);
    let connection = events::service::amqp::connect(AMQP_URL, "test-redeliver")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    for row in rows {
        let envelope = row.into_envelope();
        channel
            .basic_publish(
                ShortString::from(topology.events_exchange()),
                ShortString::from(topology.routing_key(
                    &envelope.stream_type,
                    &envelope.stream_id,
                    &envelope.event_type,
                )),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &serde_json::to_vec(&envelope).unwrap(),
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    connection.close(0, ShortString::from("done")).await.ok();
    let prefix = system.name.clone();
    eventually(Duration::from_secs(20), || {
        let prefix = prefix.clone();
        async move {
            tokio::task::spawn_blocking(move || queues_drained(&prefix))
                .await
                .unwrap()
        }
    })
    .await
    .expect("the redeliveries are consumed");
    assert_eq!(
        read_models(&system).await,
        before,
        "every read model is unchanged by the second delivery"
    );
    system.stop().await;
}

#[tokio::test]
async fn a_projector_without_checkpoints_backfills_itself_from_the_store() {
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system, "Pied Piper").await;
    let person = system.add_stakeholder(id, "Richard", "champion").await;
    email(&system, id, today() - Days::new(2), Some(true), "compression").await;
    system
        .post_ok(
            &format!("/api/v1/customers/{id}/activities"),
            &json!({"kind": "meeting", "direction": "outbound",
            "occurred_at": noon(today() - Days::new(1)), "duration_minutes": 30, "participants": [person]}),
        )
        .await;
    system.record_health(id, 71.0, today()).await;
    system.caught_up().await;
    let tables = [
        "customer_profiles",
        "customer_stakeholders",
        "customer_activities",
        "health_points",
        "adoption_changes",
        "csm_directory",
    ];
    let digest = || digests(&system.pool, &tables);
    let before = digest().await;

    // As if the projector had just been added: no rows, no checkpoints.
    for table in tables {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&system.pool)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM projector_checkpoints WHERE projector = 'customers'")
        .execute(&system.pool)
        .await
        .unwrap();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    let projector = projection_service::customers::CustomersProjector;
    let read = projection_service::backfill::backfill_if_new(&system.pool, &projector)
        .await
        .unwrap();
    assert_eq!(read as i64, events);
    assert_eq!(digest().await, before, "the backfilled read model equals the live one");
    assert_eq!(
        projection_service::backfill::backfill_if_new(&system.pool, &projector)
            .await
            .unwrap(),
        0,
        "only once"
    );
    assert!(system.projected().await.unwrap());
    system.stop().await;
}

#[tokio::test]
async fn portfolio_reports_follow_each_new_event_through_their_memo() {
    let system = TestSystem::spawn().await.unwrap();
    let id = customer(&system, "Hooli").await;
    system.caught_up().await;
    let report = "{ engagementMetrics { items { customerId emailsSent } }
                    coverageReport { accounts { customerId touches30d } } }";
    let figures = |answer: &Value| {
        (
            answer["engagementMetrics"]["items"][0]["emailsSent"].clone(),
            answer["coverageReport"]["accounts"][0]["touches30d"].clone(),
        )
    };
    let first = system.graphql(report, json!({})).await;
    assert_eq!(first["engagementMetrics"]["items"][0]["customerId"], json!(id));
    assert_eq!(figures(&first), (json!(0), json!(0)));
    let memo_rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM coverage_facts_memo) + (SELECT count(*) FROM engagement_metrics_memo)",
    )
    .fetch_one(&system.pool)
    .await
    .unwrap();
    assert_eq!(
        memo_rows, 3,
        "one coverage row, two engagement windows (this period and the previous)"
    );
    assert_eq!(figures(&system.graphql(report, json!({})).await), (json!(0), json!(0)));

    email(&system, id, today(), Some(true), "Kick-off").await;
    system.caught_up().await;
    assert_eq!(
        figures(&system.graphql(report, json!({})).await),
        (json!(1), json!(1)),
        "the memo rows are stale once the customer's stream moves"
    );
    email(&system, id, today(), None, "Agenda").await;
    system.caught_up().await;
    assert_eq!(figures(&system.graphql(report, json!({})).await), (json!(2), json!(2)));
    system.stop().await;
}

#[tokio::test]
async fn portfolio_reports_place_onboarded_renamed_and_handed_over_customers() {
    let system = TestSystem::spawn().await.unwrap();
    let alpha = customer(&system, "Alpha").await;
    let gamma = customer(&system, "Gamma").await;
    system.caught_up().await;
    let report = "query($csm: UUID) { coverageReport { accounts { customerId name csmId touches30d } }
                    engagementMetrics(csmId: $csm) { items { customerId emailsSent } } }";
    let accounts = |answer: &Value| -> Vec<(Uuid, String, Uuid, i64)> {
        answer["coverageReport"]["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let name = a["name"].as_str().unwrap().to_owned();
                (
                    tests::uuid(&a["customerId"]),
                    name,
                    tests::uuid(&a["csmId"]),
                    a["touches30d"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let first = accounts(&system.graphql(report, json!({})).await);
    let (alpha_csm, gamma_csm) = (first[0].2, first[1].2);
    assert_eq!(
        first,
        vec![
            (alpha, "Alpha".into(), alpha_csm, 0),
            (gamma, "Gamma".into(), gamma_csm, 0)
        ]
    );

    // One customer's stream moves: only its row changes.
    email(&system, gamma, today(), None, "Hello").await;
    system.caught_up().await;
    assert_eq!(
        accounts(&system.graphql(report, json!({})).await),
        vec![
            (alpha, "Alpha".into(), alpha_csm, 0),
            (gamma, "Gamma".into(), gamma_csm, 1)
        ]
    );

    // A new customer of a known CSM takes its place by name.
    let beta = system
        .onboard(
            "Beta",
            "SMB",
            "1000",
            alpha_csm,
            Utc::now() - chrono::Duration::days(10),
        )
        .await;
    system.caught_up().await;
    assert_eq!(
        accounts(&system.graphql(report, json!({})).await),
        vec![
            (alpha, "Alpha".into(), alpha_csm, 0),
            (beta, "Beta".into(), alpha_csm, 0),
            (gamma, "Gamma".into(), gamma_csm, 1)
        ]
    );

    // A renamed customer moves; a handed-over one changes CSM, in both reports.
    let (status, _) = system
        .send(
            reqwest::Method::PATCH,
            &format!("/api/v1/customers/{gamma}"),
            Some(&json!({"name": "Aardvark"})),
        )
        .await;
    assert!(status.is_success());
    let (status, _) = system
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/customers/{alpha}/csm"),
            Some(&json!({"csm_id": gamma_csm, "reason": "rebalancing"})),
        )
        .await;
    assert!(status.is_success());
    system.caught_up().await;
    let answer = system.graphql(report, json!({"csm": gamma_csm})).await;
    assert_eq!(
        accounts(&answer),
        vec![
            (gamma, "Aardvark".into(), gamma_csm, 1),
            (alpha, "Alpha".into(), gamma_csm, 0),
            (beta, "Beta".into(), alpha_csm, 0)
        ]
    );
    assert_eq!(
        answer["engagementMetrics"]["items"],
        json!([{"customerId": gamma, "emailsSent": 1}, {"customerId": alpha, "emailsSent": 0}])
    );
    system.stop().await;
}

#[tokio::test]
async fn portfolio_engagement_finds_the_last_contact_before_both_periods() {
    let system = TestSystem::spawn().await.unwrap();
    let old = customer(&system, "Long Ago").await;
    let recent = customer(&system, "Lately").await;
    for id in [old, recent] {
        system.log_activity(id, "email", today() - Days::new(100), &[]).await;
    }
    system.log_activity(old, "note", today() - Days::new(1), &[]).await;
    system.log_activity(recent, "call", today() - Days::new(3), &[]).await;
    system.caught_up().await;
    let answer = system
        .graphql(
            "{ engagementMetrics { items { customerId daysSinceContact } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        answer["engagementMetrics"]["items"],
        json!([{"customerId": recent, "daysSinceContact": 3}, {"customerId": old, "daysSinceContact": 100}]),
        "a note is not a contact"
    );
    for (id, days) in [(old, 100), (recent, 3)] {
        let one = system.graphql(ENGAGEMENT, json!({"id": id})).await;
        assert_eq!(one["customerEngagement"]["daysSinceContact"], days);
    }
    system.stop().await;
}
