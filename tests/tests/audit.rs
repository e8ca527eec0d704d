//! Auditors and analysts: history replay with upcasting and access logging, the hash chain and
//! the store digests, state as of an instant, what-if rules and projection status.

use chrono::{Duration, Utc};
use events::metadata::Role;
use serde_json::{json, Value};
use tests::{token, TestSystem};
use uuid::Uuid;

const HISTORY: &str = "query($id: UUID!, $after: String, $types: [String!]) {
    customerHistory(customerId: $id, first: 2, after: $after, eventTypes: $types) {
        edges { node { sequence eventType version storedVersion payload storedPayload hash
                       metadata { actorId actorRole source occurredAt recordedAt correlationId causationId } } }
        pageInfo { hasNextPage endCursor } } }";

const VERIFY: &str = "query($id: UUID!) { verifyCustomerHistory(customerId: $id) {
    events headSequence intact brokenAtSequence reason } }";

async fn customer_with_history(system: &TestSystem) -> Uuid {
    let csm = system.register_csm("Ada Auditor").await;
    let customer = system
        .onboard(
            "Umbrella",
            "Enterprise",
            "120000.00",
            csm,
            Utc::now() - Duration::days(40),
        )
        .await;
    let ada = system.add_stakeholder(customer, "Ada", "executive").await;
    system
        .log_activity(
            customer,
            "meeting",
            Utc::now().date_naive() - chrono::Days::new(3),
            &[ada],
        )
        .await;
    customer
}

/// Appends a health score as version 1 stored it (risk factors as plain strings).
async fn append_version_1(system: &TestSystem, customer: Uuid) -> i64 {
    let payload = json!({"HealthScoreRecorded": {"score": 42.0, "source": "gainsight", "reason": null,
        "risk_factors": ["low usage"], "measured_at": Utc::now() - Duration::hours(2)}});
    system
        .append_stored(customer, "HealthScoreRecorded", "1", payload)
        .await
}

fn history_nodes(answer: &Value) -> Vec<Value> {
    answer["data"]["customerHistory"]["edges"]
        .as_array()
        .map(|edges| edges.iter().map(|edge| edge["node"].clone()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn auditors_replay_a_whole_history_upcast_and_every_access_is_logged() {
    let system = TestSystem::spawn().await.unwrap();
    let customer = customer_with_history(&system).await;
    let v1 = append_version_1(&system, customer).await;
    let auditor = token(Role::Auditor, "auditor-1", None);

    // Page through everything, two at a time.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let answer = system
            .graphql_as(&auditor, HISTORY, json!({"id": customer, "after": after}))
            .await;
        assert!(answer.get("errors").is_none(), "{answer}");
        seen.extend(history_nodes(&answer));
        let info = &answer["data"]["customerHistory"]["pageInfo"];
        if info["hasNextPage"] != true {
            break;
        }
        after = info["endCursor"].clone();
    }
    let sequences: Vec<i64> = seen.iter().map(|node| node["sequence"].as_i64().unwrap()).collect();
    assert_eq!(sequences, (1..=v1).collect::<Vec<_>>(), "every event, in order, once");
    assert_eq!(seen[0]["eventType"], "CustomerOnboarded");
    assert_eq!(seen[0]["metadata"]["actorRole"], "admin");
    assert!(seen[0]["metadata"]["occurredAt"].is_string());
    assert_eq!(seen[0]["hash"].as_str().unwrap().len(), 64);

    let upcast = &seen[(v1 - 1) as usize];
    assert_eq!(upcast["eventType"], "HealthScoreRecorded");
    assert_eq!(
        (upcast["storedVersion"].clone(), upcast["version"].clone()),
        (json!("1"), json!("2"))
    );
    assert_eq!(
        upcast["payload"]["HealthScoreRecorded"]["risk_factors"],
        json!([{"name": "low usage", "weight": null}])
    );
    assert_eq!(
        upcast["storedPayload"]["HealthScoreRecorded"]["risk_factors"],
        json!(["low usage"])
    );
    assert_eq!(upcast["metadata"]["actorId"], "import");

    // Filters: one event type.
    let only = system
        .graphql_as(&auditor, HISTORY, json!({"id": customer, "types": ["ActivityLogged"]}))
        .await;
    let types: Vec<Value> = history_nodes(&only)
        .iter()
        .map(|node| node["eventType"].clone())
        .collect();
    assert_eq!(types, vec![json!("ActivityLogged")]);

    // The export streams the same events as JSON Lines.
    let export = system
        .http
        .get(format!(
            "{}/customers/{customer}/history?original=true",
            system.graphql_url.trim_end_matches("/graphql")
        ))
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    assert_eq!(export.headers()["content-type"], "application/jsonl");
    let body = export.text().await.unwrap();
    let lines: Vec<Value> = body.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len() as i64, v1);
    assert_eq!(
        lines[(v1 - 1) as usize]["stored_payload"]["HealthScoreRecorded"]["risk_factors"],
        json!(["low usage"])
    );
    assert_eq!(lines[(v1 - 1) as usize]["version"], "2");

    let logged: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT user_id, operation, allowed FROM audit_access_log WHERE customer_id = $1 ORDER BY access_id",
    )
    .bind(customer)
    .fetch_all(&system.pool)
    .await
    .unwrap();
    let pages = logged.iter().filter(|(_, operation, _)| operation == "history").count();
    assert!(pages >= 3, "each history page is logged: {logged:?}");
    assert!(logged.contains(&("auditor-1".into(), "export".into(), true)));
    system.stop().await;
}

#[tokio::test]
async fn partners_and_csms_are_refused_history_and_the_refusal_is_logged() {
    let system = TestSystem::spawn().await.unwrap();
    let customer = customer_with_history(&system).await;
    let partner = Uuid::now_v7();
    for (role, user, partner_id) in [
        (Role::Csm, "csm-1", None),
        (Role::Partner, "partner-1", Some(partner)),
        (Role::Manager, "manager-1", None),
    ] {
        let bearer = token(role, user, partner_id);
        let answer = system.graphql_as(&bearer, HISTORY, json!({"id": customer})).await;
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{role:?}: {answer}"
        );
        let verify = system.graphql_as(&bearer, VERIFY, json!({"id": customer})).await;
        assert_eq!(verify["errors"][0]["extensions"]["code"], "FORBIDDEN");
        let export = system
            .http
            .get(format!(
                "{}/customers/{customer}/history",
                system.graphql_url.trim_end_matches("/graphql")
            ))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(export.status(), 403);
    }
    let anonymous = system
        .http
        .get(format!(
            "{}/customers/{customer}/history",
            system.graphql_url.trim_end_matches("/graphql")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let refused: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_access_log WHERE NOT allowed AND customer_id = $1")
            .bind(customer)
            .fetch_one(&system.pool)
            .await
            .unwrap();
    assert_eq!(refused, 9, "three roles, three refused accesses each");
    system.stop().await;
}

#[tokio::test]
async fn an_altered_row_breaks_verification_at_its_sequence_and_a_deleted_row_is_detected() {
    let system = TestSystem::spawn().await.unwrap();
    let customer = customer_with_history(&system).await;
    let v1 = append_version_1(&system, customer).await;
    let auditor = token(Role::Auditor, "auditor-1", None);
    let verify = |id: Uuid| {
        let (system, auditor) = (&system, auditor.clone());
        async move { system.graphql_as(&auditor, VERIFY, json!({"id": id})).await["data"]["verifyCustomerHistory"].clone() }
    };
    let intact = verify(customer).await;
    assert_eq!(intact["intact"], true, "{intact}");
    assert_eq!(
        (intact["events"].clone(), intact["headSequence"].clone()),
        (json!(v1), json!(v1))
    );

    // Alter the payload of sequence 2 by SQL.
    sqlx::query(
        "UPDATE events SET payload = jsonb_set(payload, '{StakeholderAdded,name}', '\"Mallory\"')
          WHERE aggregate_id = $1 AND sequence = 2",
    )
    .bind(customer.to_string())
    .execute(&system.pool)
    .await
    .unwrap();
    let altered = verify(customer).await;
    assert_eq!(
        (
            altered["intact"].clone(),
            altered["brokenAtSequence"].clone(),
            altered["reason"].clone()
        ),
        (json!(false), json!(2), json!("altered"))
    );

    // Another customer: delete a row in the middle, then the last one.
    let other = customer_with_history(&system).await;
    let last = append_version_1(&system, other).await;
    let delete = |sequence: i64| {
        let system = &system;
        async move {
            sqlx::query("DELETE FROM events WHERE aggregate_id = $1 AND sequence = $2")
                .bind(other.to_string())
                .bind(sequence)
                .execute(&system.pool)
                .await
                .unwrap();
        }
    };
    delete(last).await;
    let truncated = verify(other).await;
    assert_eq!(
        (truncated["brokenAtSequence"].clone(), truncated["reason"].clone()),
        (json!(last), json!("truncated"))
    );
    delete(2).await;
    let missing = verify(other).await;
    assert_eq!(
        (missing["brokenAtSequence"].clone(), missing["reason"].clone()),
        (json!(2), json!("missing"))
    );

    // The whole-store verification names both streams, first broken links only.
    let (streams, _, broken) = events::service::chain::verify_all(&system.pool).await.unwrap();
    assert!(streams >= 4, "two customers and their CSMs");
    let found: Vec<(String, i64)> = broken
        .iter()
        .map(|b| (b.stream_id.clone(), b.broken.unwrap().sequence))
        .collect();
    let mut expected = vec![(customer.to_string(), 2), (other.to_string(), 2)];
    expected.sort();
    assert_eq!(found, expected);
    system.stop().await;
}

/// The chain is one definition however events arrive: a command's events and a 1,000-event batch
/// request (the appending statement chains them over the set), a bulk edit over two streams in
/// one statement, and a row inserted without a hash (the row trigger chains it), interleaved on
/// the same streams. Verification recomputes every hash from the stored text.
#[tokio::test]
async fn every_way_of_appending_chains_to_the_one_definition_verification_recomputes() {
    let system = TestSystem::spawn().await.unwrap();
    let first = customer_with_history(&system).await;
    let second = customer_with_history(&system).await;
    let day = |days: u64| Utc::now().date_naive() - chrono::Days::new(days);
    let activities: Vec<Value> = (0..1000)
        .map(|k| {
            json!({"kind": "email", "direction": "outbound", "occurred_at": tests::at_or_now(day(1 + k % 30), 9),
                   "participants": [], "subject": format!("touch {k}")})
        })
        .collect();
    system.log_activities(first, activities).await;
    append_version_1(&system, first).await;
    system.log_activity(first, "call", day(2), &[]).await;
    let (status, answer) = system
        .post(
            "/api/v1/custom-fields",
            &json!({"key": "pod", "label": "Pod", "field_type": "text"}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    system
        .post_ok(
            "/api/v1/custom-fields/pod/bulk",
            &json!({"customer_ids": [first, second], "value": "Pod 7"}),
        )
        .await;
    system.log_activity(second, "email", day(1), &[]).await;

    // 3 + 1,000 + 1 + 1 + 1 events on the first stream, 3 + 1 + 1 on the second.
    let heads: Vec<(String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, sequence FROM stream_heads WHERE aggregate_id = ANY($1) ORDER BY sequence DESC",
    )
    .bind(vec![first.to_string(), second.to_string()])
    .fetch_all(&system.pool)
    .await
    .unwrap();
    assert_eq!(heads, vec![(first.to_string(), 1006), (second.to_string(), 5)]);
    let (streams, events, broken) = events::service::chain::verify_all(&system.pool).await.unwrap();
    assert!(broken.is_empty(), "{broken:?}");
    assert_eq!(streams, 5, "two customers, their CSMs and the field definitions");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(events, stored);
    // The batch's activities are known to the activity index, which refuses them a second time.
    let indexed: i64 = sqlx::query_scalar("SELECT count(*) FROM activity_index WHERE customer_id = $1")
        .bind(first.to_string())
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(indexed, 1 + 1000 + 1);
    system.stop().await;
}

#[tokio::test]
async fn sealed_digests_prove_a_range_unchanged_until_a_row_in_it_is_altered() {
    let system = TestSystem::spawn().await.unwrap();
    let customer = customer_with_history(&system).await;
    for k in 0..4 {
        system
            .log_activity(customer, "email", Utc::now().date_naive() - chrono::Days::new(k), &[])
            .await;
    }
    let sealed = events::service::chain::seal(&system.pool, 3, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let head: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(sealed.len() as i64, head / 3, "every complete range of three positions");
    assert_eq!(sealed[0].range_start, 1);
    let exported = events::service::chain::digests(&system.pool).await.unwrap();
    assert!(events::service::chain::verify_digests(&system.pool, &exported)
        .await
        .unwrap()
        .is_empty());
    let auditor = token(Role::Auditor, "auditor-1", None);
    let listed = system
        .graphql_as(
            &auditor,
            "{ storeDigests { rangeStart rangeEnd events root } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["data"]["storeDigests"][0]["root"], json!(exported[0].root.0));

    sqlx::query(
        "UPDATE events SET metadata = metadata || '{\"actor_id\": \"someone-else\"}' WHERE global_position = 2",
    )
    .execute(&system.pool)
    .await
    .unwrap();
    let changed = events::service::chain::verify_digests(&system.pool, &exported)
        .await
        .unwrap();
    assert_eq!(
        changed.iter().map(|d| (d.range_start, d.range_end)).collect::<Vec<_>>(),
        vec![(1, 3)]
    );
    system.stop().await;
}

#[tokio::test]
async fn the_state_as_of_an_instant_is_what_the_live_model_showed_then() {
    let system = TestSystem::spawn().await.unwrap();
    let customer = customer_with_history(&system).await;
    system.record_health(customer, 72.0, Utc::now().date_naive()).await;
    system.caught_up().await;
    let coverage = "query($id: UUID!, $at: DateTime) { accountCoverage(customerId: $id, knownAt: $at) {
        touches30d meetings90d stakeholdersEngaged daysSinceContact healthScore score status } }";
    let engagement = "query($id: UUID!, $at: DateTime) { customerEngagement(customerId: $id, knownAt: $at) {
        meetingsHeld stakeholdersEngaged executiveTouchpoints score previousScore } }";
    let health = "query($id: UUID!, $at: DateTime) { healthTrend(customerId: $id, knownAt: $at) {
        points { score } windows { days delta } } }";
    let mut live_then = Vec::new();
    for query in [coverage, engagement, health] {
        live_then.push(system.graphql(query, json!({"id": customer})).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let known_at = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    // Later events change the live model but not what was known then.
    system.record_health(customer, 31.0, Utc::now().date_naive()).await;
    system.log_activity(customer, "qbr", Utc::now().date_naive(), &[]).await;
    let task = json!({"title": "Renewal prep", "description": "", "kind": "renewal", "priority": "high",
        "assignee_id": "csm-1", "due_date": Utc::now().date_naive() + chrono::Days::new(10), "depends_on": []});
    system
        .post_ok(&format!("/api/v1/customers/{customer}/tasks"), &task)
        .await;
    system.caught_up().await;
    for (query, then) in [coverage, engagement, health].iter().zip(&live_then) {
        let at = system.graphql(query, json!({"id": customer, "at": known_at})).await;
        assert_eq!(&at, then, "{query}");
        let now = system.graphql(query, json!({"id": customer})).await;
        assert_ne!(&now, then, "the live model moved on: {query}");
    }
    let as_of = system
        .graphql(
            "query($id: UUID!, $at: DateTime!) { customerAsOf(customerId: $id, knownAt: $at) {
                name tier events health { score } openTasks { title } stakeholders { name level }
                coverage { touches30d healthScore } } }",
            json!({"id": customer, "at": known_at}),
        )
        .await;
    let then = &as_of["customerAsOf"];
    assert_eq!(then["name"], "Umbrella");
    assert_eq!(then["health"]["score"], 72.0);
    assert_eq!(then["openTasks"], json!([]));
    assert_eq!(then["events"], 4);
    assert_eq!(then["stakeholders"], json!([{"name": "Ada", "level": "executive"}]));
    assert_eq!(then["coverage"], json!({"touches30d": 1, "healthScore": 72.0}));
    let now = system
        .graphql(
            "query($id: UUID!, $at: DateTime!) { customerAsOf(customerId: $id, knownAt: $at) { openTasks { title } health { score } } }",
            json!({"id": customer, "at": Utc::now()}),
        )
        .await;
    assert_eq!(now["customerAsOf"]["openTasks"], json!([{"title": "Renewal prep"}]));
    assert_eq!(now["customerAsOf"]["health"]["score"], 31.0);
    let before = system
        .graphql_raw(
            "query($id: UUID!, $at: DateTime!) { customerAsOf(customerId: $id, knownAt: $at) { name } }",
            json!({"id": customer, "at": Utc::now() - Duration::days(400)}),
        )
        .await;
    assert_eq!(before["errors"][0]["extensions"]["code"], "NOT_FOUND");
    system.stop().await;
}

#[tokio::test]
async fn what_if_rules_recompute_reports_without_storing_and_reports_name_their_rules() {
    let system = TestSystem::spawn().await.unwrap();
    let customer = customer_with_history(&system).await;
    system.caught_up().await;
    // The meeting's own month, whatever today's date: early in a month the meeting, three days
    // back, falls in the month before.
    let period = (Utc::now().date_naive() - chrono::Days::new(3))
        .format("%Y-%m")
        .to_string();
    let report = "query($rules: RulesInput, $period: String) {
        coverageReport(rules: $rules) { rulesVersion accounts { score standards { stakeholderBreadth } } }
        engagementMetrics(rules: $rules, period: $period) { rulesVersion items { score } } }";
    let live = system.graphql(report, json!({"period": period})).await;
    assert_eq!(live["coverageReport"]["rulesVersion"], "0");
    assert_eq!(live["engagementMetrics"]["rulesVersion"], "0");
    assert_eq!(
        live["coverageReport"]["accounts"][0]["standards"]["stakeholderBreadth"],
        4
    );

    let what_if = json!({"weights": {"email": 0.0, "response": 0.0, "meeting": 1.0, "quality": 0.0, "breadth": 0.0, "recency": 0.0},
        "standards": [{"tier": "ENTERPRISE", "maxDaysBetweenContact": 14, "expectedTouchesPerMonth": 1,
                       "minMeetingsPerQuarter": 1, "stakeholderBreadth": 1}]});
    let answer = system
        .graphql(report, json!({"rules": what_if, "period": period}))
        .await;
    let version = answer["coverageReport"]["rulesVersion"].as_str().unwrap().to_owned();
    assert!(version.starts_with("what-if:"), "{version}");
    assert_eq!(answer["engagementMetrics"]["rulesVersion"], json!(version));
    // One meeting: 20 points of the meeting component, weighted 1.
    assert_eq!(answer["engagementMetrics"]["items"][0]["score"], 20.0);
    // One contact 3 days ago, one touch, one meeting, one stakeholder: every standard met.
    assert_eq!(answer["coverageReport"]["accounts"][0]["score"], 100.0);
    assert_eq!(
        answer["coverageReport"]["accounts"][0]["standards"]["stakeholderBreadth"],
        1
    );
    let again = system.graphql(report, json!({"period": period})).await;
    assert_eq!(again, live, "nothing was stored");

    let bad = system
        .graphql_raw(
            report,
            json!({"period": period, "rules": {"weights": {"email": 0.5, "response": 0.5, "meeting": 0.5, "quality": 0.0, "breadth": 0.0, "recency": 0.0}}}),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "rules.weights");

    // A change of the rules in force is recorded in the Rules stream and named by its sequence.
    let (status, _) = system
        .send(
            reqwest::Method::PUT,
            "/api/v1/rules/coverage-standards",
            Some(
                &json!({"tier": "Enterprise", "max_days_between_contact": 10, "expected_touches_per_month": 4,
                    "min_meetings_per_quarter": 3, "stakeholder_breadth": 2}),
            ),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let changed = system.graphql(report, json!({"period": period})).await;
    assert_eq!(changed["coverageReport"]["rulesVersion"], "1");
    assert_eq!(
        changed["coverageReport"]["accounts"][0]["standards"]["stakeholderBreadth"],
        2
    );
    let _ = customer;
    system.stop().await;
}

#[tokio::test]
async fn projection_status_reports_positions_lag_and_dead_letters() {
    let mut system = TestSystem::spawn().await.unwrap();
    let customer = customer_with_history(&system).await;
    system.caught_up().await;
    let query = "{ projectionStatus { projector lastGlobalPosition eventsApplied storeEvents storeHeadPosition lagEvents deadLettered } }";
    let status = system.graphql(query, json!({})).await;
    let rows = status["projectionStatus"].as_array().unwrap().clone();
    assert_eq!(
        rows.iter().map(|row| row["projector"].clone()).collect::<Vec<_>>(),
        vec![json!("coverage"), json!("customers")]
    );
    let head: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    for row in &rows {
        assert_eq!(row["lagEvents"], 0, "{row}");
        assert_eq!(row["storeHeadPosition"], head);
        assert_eq!(row["lastGlobalPosition"], head);
        assert_eq!(row["eventsApplied"], row["storeEvents"]);
    }

    // With the relay stopped, new events are behind.
    system.kill_relay().await;
    system
        .log_activity(customer, "call", Utc::now().date_naive(), &[])
        .await;
    let behind = system.graphql(query, json!({})).await;
    assert_eq!(behind["projectionStatus"][0]["lagEvents"], 1);
    system.start_relay();
    system.caught_up().await;

    // A message that is not an event is dead-lettered, dead to every projector.
    let connection = events::service::amqp::connect("amqp://guest:guest@127.0.0.1:5672/%2f", "test-dead-letter")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let topology = events::topology::Topology::new(system.name.clone(), 2);
    channel
        .basic_publish(
            "".into(),
            topology.projection_queue(0).as_str().into(),
            lapin::options::BasicPublishOptions::default(),
            b"not an event",
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap();
    tests::eventually(std::time::Duration::from_secs(10), || async {
        let status = system.graphql(query, json!({})).await;
        status["projectionStatus"][0]["deadLettered"] == 1 && status["projectionStatus"][1]["deadLettered"] == 1
    })
    .await
    .unwrap();
    system.stop().await;
}
