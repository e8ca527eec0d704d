//! Rebuilding projections from the store: a live rebuild while commands keep arriving equals
//! the read models built live, row for row, and switches without a gap; a rebuild as known at
//! an instant equals what the live model showed then and is queried by name; a switch that meets
//! a reader's locks gives way and tries again rather than deadlock with it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{Days, Utc};
use projection_service::rebuild::{build, finish, RebuildRequest};
use serde_json::json;
use tests::TestSystem;
use uuid::Uuid;

/// Sends activities to `customers` in a loop until `stop`, counting them.
fn start_load(
    system: &TestSystem,
    customers: Vec<Uuid>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    let (http, url, token) = (system.http.clone(), system.command_url.clone(), system.admin.clone());
    tokio::spawn(async move {
        let mut k = 0_usize;
        while !stop.load(Ordering::Relaxed) {
            let customer = customers[k % customers.len()];
            let day = Utc::now().date_naive() - Days::new((k % 20) as u64);
            let response = http
                .post(format!("{url}/api/v1/customers/{customer}/activities"))
                .bearer_auth(&token)
                .json(
                    &json!({"kind": if k.is_multiple_of(3) { "meeting" } else { "email" }, "direction": "outbound",
                    "occurred_at": tests::at_or_now(day, 12),
                    "duration_minutes": if k.is_multiple_of(3) { json!(45) } else { json!(null) },
                    "participants": [], "subject": format!("load {k}")}),
                )
                .send()
                .await
                .expect("the command service answers");
            assert!(response.status().is_success());
            sent.fetch_add(1, Ordering::Relaxed);
            k += 1;
        }
    })
}

async fn portfolio(system: &TestSystem) -> Vec<Uuid> {
    let csm = system.register_csm("Rita Rebuild").await;
    let mut customers = Vec::new();
    for (n, tier) in ["Enterprise", "MidMarket", "SMB"].iter().enumerate() {
        let customer = system
            .onboard(
                &format!("Rebuilt {n}"),
                tier,
                "50000.00",
                csm,
                Utc::now() - chrono::Duration::days(60),
            )
            .await;
        let person = system.add_stakeholder(customer, "Pat", "executive").await;
        system
            .log_activity(customer, "meeting", Utc::now().date_naive() - Days::new(5), &[person])
            .await;
        system
            .record_health(customer, 40.0 + 10.0 * n as f64, Utc::now().date_naive())
            .await;
        customers.push(customer);
    }
    customers
}

#[tokio::test]
async fn a_live_rebuild_under_load_equals_the_live_read_models_and_switches_atomically() {
    let system = TestSystem::spawn().await.unwrap();
    let customers = portfolio(&system).await;
    let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let load = start_load(&system, customers.clone(), stop.clone(), sent.clone());
    tests::eventually(std::time::Duration::from_secs(20), || async {
        sent.load(Ordering::Relaxed) >= 20
    })
    .await
    .unwrap();

    let request = RebuildRequest {
        projectors: projection_service::projectors(),
        known_at: None,
        snapshot_name: None,
        batch: 7,
        pass_events: 1_000_000,
        // Three threads fold, each over its share of the streams.
        fold_workers: Some(3),
    };
    let built = build(&system.pool, &system.database_url, &request).await.unwrap();
    // Live queries keep answering from the live tables during the rebuild.
    let during = system
        .graphql("{ coverageReport { summary { accounts } } }", json!({}))
        .await;
    assert_eq!(during["coverageReport"]["summary"]["accounts"], 3);
    tests::eventually(std::time::Duration::from_secs(20), || async {
        sent.load(Ordering::Relaxed) >= 40
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    system.caught_up().await;
    let live = tests::read_models(&system.pool, "public").await;

    // The rebuilt tables missed the load's last events: the switch applies them from the store.
    let summary = finish(&system.pool, &request, built).await.unwrap();
    assert_eq!(summary.schema, "public");
    let rebuilt = tests::read_models(&system.pool, "public").await;
    for ((table, live_rows), (_, rebuilt_rows)) in live.iter().zip(&rebuilt) {
        assert_eq!(live_rows.len(), rebuilt_rows.len(), "{table}");
        assert_eq!(live_rows, rebuilt_rows, "{table}: row for row");
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(summary.events as i64, events);
    let leftovers: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild_%'")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(leftovers, 0, "the shadow and retired schemas are dropped");
    // Coverage's contact reads the switched-in activities (its view followed the old table out
    // and was pointed at the new one).
    let (contacts, activities): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM coverage_contacts), (SELECT count(*) FROM customer_activities WHERE NOT retracted)",
    )
    .fetch_one(&system.pool)
    .await
    .unwrap();
    assert!(contacts > 0);
    assert_eq!(contacts, activities);

    // The live projectors go on applying new events on the switched tables.
    system
        .log_activity(customers[0], "call", Utc::now().date_naive(), &[])
        .await;
    system.caught_up().await;
    let status = system
        .graphql(
            "{ projectionStatus { projector lagEvents rebuild { state eventsDone eventsTotal } } }",
            json!({}),
        )
        .await;
    for row in status["projectionStatus"].as_array().unwrap() {
        assert_eq!(row["lagEvents"], 0);
        assert_eq!(row["rebuild"]["state"], "switched");
        assert_eq!(row["rebuild"]["eventsDone"], events);
        // Events appended during the rebuild count in its total: progress never passes 100%.
        assert_eq!(row["rebuild"]["eventsTotal"], events, "{row}");
    }
    system.stop().await;
}

#[tokio::test]
async fn a_switch_meeting_a_reader_that_holds_one_table_and_waits_for_another_lets_go_and_both_succeed() {
    let system = TestSystem::spawn().await.unwrap();
    portfolio(&system).await;
    system.caught_up().await;
    let request = RebuildRequest {
        projectors: projection_service::projectors(),
        known_at: None,
        snapshot_name: None,
        batch: 100,
        pass_events: 1_000_000,
        fold_workers: Some(1),
    };
    let built = build(&system.pool, &system.database_url, &request).await.unwrap();
    let live = tests::read_models(&system.pool, "public").await;

    // A reader holds coverage_accounts, as a report's statement does while it locks its tables
    // one by one...
    let mut reader = system.pool.begin().await.unwrap();
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM coverage_accounts")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    let switching = {
        let pool = system.pool.clone();
        tokio::spawn(async move { finish(&pool, &request, built).await })
    };
    // ...the switch has moved coverage_csms (it comes first) and waits for coverage_accounts...
    tests::eventually(std::time::Duration::from_secs(30), || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                             WHERE NOT l.granted AND c.relname = 'coverage_accounts')",
        )
        .fetch_one(&system.pool)
        .await
        .unwrap()
    })
    .await
    .unwrap();
    // ...and the reader asks for coverage_csms. Had the switch kept waiting, PostgreSQL would
    // find a deadlock and cancel one of them.
    let csms: i64 = sqlx::query_scalar("SELECT count(*) FROM coverage_csms")
        .fetch_one(&mut *reader)
        .await
        .expect("the reader is not cancelled");
    reader.commit().await.unwrap();
    assert_eq!(accounts, 3);
    assert!(csms > 0);

    let summary = switching.await.unwrap().expect("the switch tries again and succeeds");
    assert_eq!(summary.schema, "public");
    let rebuilt = tests::read_models(&system.pool, "public").await;
    assert_eq!(live.len(), rebuilt.len());
    for ((table, live_rows), (_, rebuilt_rows)) in live.iter().zip(&rebuilt) {
        assert_eq!(live_rows, rebuilt_rows, "{table}: row for row");
    }
    let retired: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild_%'")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(retired, 0);
    system.stop().await;
}

#[tokio::test]
async fn a_rebuild_known_at_an_instant_equals_what_the_live_model_showed_then() {
    let system = TestSystem::spawn().await.unwrap();
    let customers = portfolio(&system).await;
    system.caught_up().await;
    let report = "{ coverageReport { summary { accounts averageScore } accounts { name touches30d healthScore score } }
                   engagementMetrics { averageScore items { name score } } }";
    // Capture the live model at an instant.
    let live_then = tests::read_models(&system.pool, "public").await;
    let report_then = system.graphql(report, json!({})).await;
    let timeline = |root: &str| {
        format!(
            "query($id: UUID!) {{ {root} customerTimeline(customerId: $id, first: 200) {{ edges {{ node {{ eventId summary }} }} }} {} }}",
            if root.is_empty() { "" } else { "}" }
        )
    };
    let timeline_then = system.graphql(&timeline(""), json!({"id": customers[0]})).await;
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    let known_at = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;

    // Later history.
    for customer in &customers {
        system
            .log_activity(*customer, "qbr", Utc::now().date_naive(), &[])
            .await;
        system.record_health(*customer, 90.0, Utc::now().date_naive()).await;
    }
    system.caught_up().await;
    assert_ne!(system.graphql(report, json!({})).await, report_then);

    let request = RebuildRequest {
        projectors: projection_service::projectors(),
        known_at: Some(known_at),
        snapshot_name: Some("2026-03-31".into()),
        batch: 1000,
        // Several passes, each over a share of the streams, each folded on two threads.
        pass_events: 5,
        fold_workers: Some(2),
    };
    let summary = projection_service::rebuild::rebuild(&system.pool, &system.database_url, &request)
        .await
        .unwrap();
    assert_eq!(summary.schema, "snapshot_2026_03_31");
    let snapshot = tests::read_models(&system.pool, &summary.schema).await;
    for ((table, then), (_, rebuilt)) in live_then.iter().zip(&snapshot) {
        assert_eq!(then, rebuilt, "{table}: row for row as the live model held it then");
    }

    // GraphQL reads the snapshot by name.
    let by_name = system
        .graphql(
            &format!("{{ snapshot(name: \"2026-03-31\") {report} projectionSnapshots {{ name events }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(by_name["snapshot"], report_then);
    // The timeline, read from the store, stops where the snapshot's checkpoints do.
    let timeline_by_name = system
        .graphql(
            &timeline("snapshot(name: \"2026-03-31\") {"),
            json!({"id": customers[0]}),
        )
        .await;
    assert_eq!(timeline_by_name["snapshot"], timeline_then);
    assert_ne!(
        system.graphql(&timeline(""), json!({"id": customers[0]})).await,
        timeline_then,
        "the live timeline has moved on"
    );
    assert_eq!(by_name["projectionSnapshots"][0]["name"], "2026-03-31");
    let refused = system
        .graphql_raw(
            "{ snapshot(name: \"2026-03-31\") { customers { edges { cursor } } } }",
            json!({}),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // A snapshot of the same name is refused until it is dropped.
    assert!(
        projection_service::rebuild::rebuild(&system.pool, &system.database_url, &request)
            .await
            .is_err()
    );
    projection_service::rebuild::drop_snapshot(&system.pool, "2026-03-31")
        .await
        .unwrap();
    let missing = system
        .graphql_raw(
            "{ snapshot(name: \"2026-03-31\") { coverageReport { asOf } } }",
            json!({}),
        )
        .await;
    assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert!(projection_service::rebuild::snapshots(&system.pool)
        .await
        .unwrap()
        .is_empty());
    system.stop().await;
}

/// Every event type the projectors read, each changing rows the way later events revisit them
/// (corrections, retractions, removals and re-adds, updates with some fields left out).
async fn every_kind_of_history(system: &TestSystem) {
    use reqwest::Method;
    let send = |method: Method, path: String, body: serde_json::Value| async move {
        let (status, answer) = system.send(method.clone(), &path, Some(&body)).await;
        assert!(status.is_success(), "{method} {path} answered {status}: {answer}");
        answer
    };
    let first = system.register_csm("Fran First").await;
    let second = system.register_csm("Sam Second").await;
    send(
        Method::PUT,
        format!("/api/v1/csms/{second}/capacity"),
        json!({"monthly_capacity_hours": 90}),
    )
    .await;
    let partner = tests::uuid(
        &send(
            Method::POST,
            "/api/v1/partners".into(),
            json!({"name": "Northwind \"NW\""}),
        )
        .await["partner_id"],
    );
    for user in ["ana", "bo", "cy"] {
        send(
            Method::POST,
            format!("/api/v1/partners/{partner}/users"),
            json!({"user_id": user, "name": format!("{user} \"the\" user"), "email": format!("{user}@northwind.example")}),
        )
        .await;
    }
    send(
        Method::POST,
        format!("/api/v1/partners/{partner}/users/ana/activate"),
        json!({}),
    )
    .await;
    send(
        Method::POST,
        format!("/api/v1/partners/{partner}/users/bo/activate"),
        json!({}),
    )
    .await;
    send(
        Method::POST,
        format!("/api/v1/partners/{partner}/users/bo/deactivate"),
        json!({"reason": "left, with a \\ and a tab\t"}),
    )
    .await;
    let customer = system
        .onboard(
            // Names are one line (no tab); the task's description below carries the tab.
            "Back\\slash and \"quotes\"",
            "MidMarket",
            "12000.50",
            first,
            Utc::now() - chrono::Duration::days(90),
        )
        .await;
    let c = |path: &str| format!("/api/v1/customers/{customer}{path}");
    send(
        Method::PATCH,
        c(""),
        json!({"tier": "Enterprise", "arr": "99000", "products_owned": ["Core", "Add \"on\""], "industry": "Retail"}),
    )
    .await;
    send(
        Method::PUT,
        c("/csm"),
        json!({"csm_id": second, "reason": "rebalancing"}),
    )
    .await;
    send(Method::POST, c("/partners"), json!({"partner_id": partner})).await;
    let pat = system.add_stakeholder(customer, "Pat", "executive").await;
    let lee = system.add_stakeholder(customer, "Lee", "user").await;
    send(
        Method::PATCH,
        c(&format!("/stakeholders/{pat}")),
        json!({"email": "pat@example.com", "level": "champion"}),
    )
    .await;
    send(
        Method::DELETE,
        c(&format!("/stakeholders/{lee}")),
        json!({"reason": "left"}),
    )
    .await;
    let day = |days: u64| Utc::now().date_naive() - Days::new(days);
    let kept = tests::uuid(&system.log_activity(customer, "email", day(3), &[pat]).await["activity_id"]);
    let corrected = tests::uuid(&system.log_activity(customer, "note", day(4), &[]).await["activity_id"]);
    let retracted = tests::uuid(&system.log_activity(customer, "call", day(5), &[pat]).await["activity_id"]);
    send(
        Method::PATCH,
        c(&format!("/activities/{corrected}")),
        json!({"reason": "was a meeting", "kind": "meeting", "duration_minutes": 30, "participants": [pat],
               "occurred_at": day(6).and_hms_opt(9, 30, 0).unwrap().and_utc()}),
    )
    .await;
    send(
        Method::DELETE,
        c(&format!("/activities/{retracted}")),
        json!({"reason": "logged twice"}),
    )
    .await;
    assert_ne!(kept, corrected);
    system.record_health(customer, 71.5, day(2)).await;
    send(
        Method::POST,
        c("/health-scores"),
        json!({"score": 42, "source": "manual", "reason": "usage fell", "risk_factors": [{"name": "low usage", "weight": 0.7}],
               "measured_at": Utc::now() - chrono::Duration::hours(1)}),
    )
    .await;
    let task = Uuid::now_v7();
    let other = Uuid::now_v7();
    let task_body = |id: Uuid, title: &str| {
        json!({"task_id": id, "title": title, "description": "line one\nline\ttwo", "kind": "follow_up",
               "priority": "medium", "assignee_id": "user-1", "due_date": day(0) + Days::new(10)})
    };
    send(Method::POST, c("/tasks"), task_body(task, "Send the deck")).await;
    send(Method::POST, c("/tasks"), task_body(other, "Plan the QBR")).await;
    send(
        Method::PATCH,
        c(&format!("/tasks/{task}")),
        json!({"priority": "urgent", "depends_on": [other]}),
    )
    .await;
    send(
        Method::PUT,
        c(&format!("/tasks/{task}/assignee")),
        json!({"assignee_id": "user-2"}),
    )
    .await;
    send(
        Method::PUT,
        c(&format!("/tasks/{task}/status")),
        json!({"status": "in_progress"}),
    )
    .await;
    send(
        Method::POST,
        c(&format!("/tasks/{other}/cancel")),
        json!({"reason": "not needed"}),
    )
    .await;
    send(
        Method::POST,
        c(&format!("/tasks/{task}/complete")),
        json!({"outcome": "sent"}),
    )
    .await;
    let report = Uuid::now_v7();
    send(
        Method::POST,
        c("/partner-reports"),
        json!({"report_id": report, "partner_id": partner, "period_start": "2026-10-01", "period_end": "2026-10-31",
               "overall_status": "on_track", "summary": "All green"}),
    )
    .await;
    send(
        Method::PATCH,
        c(&format!("/partner-reports/{report}")),
        json!({"overall_status": "at_risk", "attachments": [{"name": "plan", "url": "https://example.com/p", "type": "pdf"}]}),
    )
    .await;
    send(Method::POST, c(&format!("/partner-reports/{report}/submit")), json!({})).await;
    send(
        Method::DELETE,
        c(&format!("/partners/{partner}")),
        json!({"reason": "engagement over"}),
    )
    .await;
    send(Method::POST, c("/partners"), json!({"partner_id": partner})).await;
    send(
        Method::POST,
        c("/milestones"),
        json!({"title": "Go-live", "description": "", "achieved_on": day(1)}),
    )
    .await;
    let issue = Uuid::now_v7();
    send(
        Method::POST,
        c("/issues"),
        json!({"issue_id": issue, "title": "SSO", "description": "", "severity": "high"}),
    )
    .await;
    send(
        Method::POST,
        c(&format!("/issues/{issue}/resolve")),
        json!({"resolution": "fixed"}),
    )
    .await;
    let escalation = Uuid::now_v7();
    send(
        Method::POST,
        c("/escalations"),
        json!({"escalation_id": escalation, "title": "Outage", "description": "", "severity": "critical"}),
    )
    .await;
    send(
        Method::POST,
        c(&format!("/escalations/{escalation}/resolve")),
        json!({"resolution": "restored"}),
    )
    .await;
    send(
        Method::PUT,
        c("/adoption-stage"),
        json!({"stage": "adopted", "notes": ""}),
    )
    .await;
    send(
        Method::PUT,
        c("/use-cases"),
        json!({"use_case": "Reporting", "status": "in_progress", "notes": "a"}),
    )
    .await;
    send(
        Method::PUT,
        c("/use-cases"),
        json!({"use_case": "Reporting", "status": "implemented", "notes": "b"}),
    )
    .await;
    send(
        Method::POST,
        c("/nps"),
        json!({"score": 9, "stakeholder_id": pat, "comment": "great"}),
    )
    .await;
    // Tags: two on, one off; the rebuilt list keeps the one left.
    send(Method::POST, c("/tags"), json!({"tag": "Beta program"})).await;
    send(Method::POST, c("/tags"), json!({"tag": "Exec sponsor changed"})).await;
    send(
        Method::POST,
        c("/tags/remove"),
        json!({"tag": "beta program", "reason": "done"}),
    )
    .await;
    send(
        Method::POST,
        c("/churn"),
        json!({"reason": "budget", "churned_on": day(0)}),
    )
    .await;
    send(
        Method::POST,
        c("/renewal"),
        json!({"renewal_date": "2028-12-31", "arr": "101000"}),
    )
    .await;
    // Reminders: one to come, one fired and snoozed with its reason, one fired and completed.
    send(
        Method::POST,
        "/api/v1/reminders".into(),
        json!({"title": "Quarterly review", "schedule": {"kind": "recurring", "rrule": "FREQ=MONTHLY;INTERVAL=3", "starts": "2030-01-15T09:00:00"}}),
    )
    .await;
    let due = chrono::Utc::now() + chrono::Duration::minutes(1);
    let mut fired = Vec::new();
    for title in ["Call back", "Send the deck"] {
        let made = send(
            Method::POST,
            "/api/v1/reminders".into(),
            json!({"title": title, "customer_id": customer, "schedule": {"kind": "once", "at": due}}),
        )
        .await;
        fired.push(tests::uuid(&made["reminder_id"]));
    }
    system.caught_up().await;
    // The test's own scheduler may hold the lock at that moment: tick until this one ran.
    let handlers = command_service::handlers(&system.pool);
    while command_service::reminders::tick(&handlers, due, false, usize::MAX)
        .await
        .unwrap()
        .is_none()
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    system.caught_up().await;
    send(
        Method::POST,
        format!("/api/v1/reminders/{}/snooze", fired[0]),
        json!({"occurrence_key": "once", "for": {"preset": "one_week"}, "reason": "on holiday"}),
    )
    .await;
    send(
        Method::POST,
        format!("/api/v1/reminders/{}/complete", fired[1]),
        json!({"occurrence_key": "once", "note": "sent"}),
    )
    .await;
}

#[tokio::test]
async fn a_rebuild_of_every_event_type_equals_the_live_read_models_row_for_row() {
    let system = TestSystem::spawn().await.unwrap();
    portfolio(&system).await;
    every_kind_of_history(&system).await;
    system.caught_up().await;
    let live = tests::read_models(&system.pool, "public").await;
    for (table, rows) in &live {
        assert!(!rows.is_empty(), "{table} has rows to compare");
    }
    for pass_events in [1_000_000, 3] {
        let request = RebuildRequest {
            projectors: projection_service::projectors(),
            known_at: None,
            snapshot_name: None,
            batch: 10,
            pass_events,
            // One pass folded on two threads, then many passes on one.
            fold_workers: Some(if pass_events == 3 { 1 } else { 2 }),
        };
        projection_service::rebuild::rebuild(&system.pool, &system.database_url, &request)
            .await
            .unwrap();
        let rebuilt = tests::read_models(&system.pool, "public").await;
        for ((table, live_rows), (_, rebuilt_rows)) in live.iter().zip(&rebuilt) {
            assert_eq!(
                live_rows, rebuilt_rows,
                "{table}: row for row ({pass_events} events a pass)"
            );
        }
    }
    // The switched tables keep the live tables' indexes, under their names.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'customer_activities' ORDER BY 1",
    )
    .fetch_all(&system.pool)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "customer_activities_by_day",
            "customer_activities_day",
            "customer_activities_pkey"
        ]
    );
    system.stop().await;
}

#[tokio::test]
async fn a_backlog_of_every_event_type_applied_as_one_batch_equals_the_live_read_models_row_for_row() {
    use projection_service::projector::{apply_batch, Applied};
    let mut system = TestSystem::spawn().await.unwrap();
    portfolio(&system).await;
    every_kind_of_history(&system).await;
    system.caught_up().await;
    let live = tests::read_models(&system.pool, "public").await;
    system.kill_every_projection().await;

    // The read models emptied, the whole store comes back as one batch per projector, the way a
    // backlog is delivered: with events missing (filled in from the store by the next event of
    // their stream) and the first ones delivered again at the end.
    let projectors = projection_service::projectors();
    let tables: Vec<&str> = projectors.iter().flat_map(|p| p.tables().iter().copied()).collect();
    sqlx::query(&format!(
        "TRUNCATE {}, projector_checkpoints, projector_status",
        tables.join(", ")
    ))
    .execute(&system.pool)
    .await
    .unwrap();
    let stored: Vec<events::EventEnvelope> = sqlx::query_as::<_, events::service::store::StoredEvent>(&format!(
        "SELECT {} FROM events ORDER BY global_position",
        events::service::store::COLUMNS
    ))
    .fetch_all(&system.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|row| row.into_envelope())
    .collect();
    let mut delivered = Vec::new();
    let mut left_out = 0;
    for (n, event) in stored.iter().enumerate() {
        let more_of_its_stream = stored[n + 1..]
            .iter()
            .any(|later| later.stream_type == event.stream_type && later.stream_id == event.stream_id);
        if n % 5 == 2 && more_of_its_stream {
            left_out += 1;
        } else {
            delivered.push(event.clone());
        }
    }
    delivered.extend(stored[..4].iter().cloned());
    assert!(left_out >= 10, "{left_out} events left out");
    for projector in &projectors {
        let outcomes = apply_batch(&system.pool, projector.as_ref(), &delivered).await.unwrap();
        let duplicates = outcomes.iter().filter(|o| **o == Applied::Duplicate).count();
        let filled: usize = outcomes
            .iter()
            .map(|o| match o {
                Applied::Applied { gap_filled } => *gap_filled,
                Applied::Duplicate => 0,
            })
            .sum();
        assert_eq!((duplicates, filled), (4, left_out), "{}", projector.name());
        let applied: i64 = sqlx::query_scalar("SELECT events_applied FROM projector_status WHERE projector = $1")
            .bind(projector.name())
            .fetch_one(&system.pool)
            .await
            .unwrap();
        assert_eq!(applied, stored.len() as i64, "{}", projector.name());
    }
    let batched = tests::read_models(&system.pool, "public").await;
    for ((table, live_rows), (_, batched_rows)) in live.iter().zip(&batched) {
        assert_eq!(live_rows, batched_rows, "{table}: row for row");
    }
    system.stop().await;
}

#[test]
fn rebuilding_coverage_rebuilds_the_activities_it_counts_contact_from() {
    let coverage: Vec<_> = projection_service::projectors()
        .into_iter()
        .filter(|p| p.name() == "coverage")
        .collect();
    let request = RebuildRequest {
        projectors: coverage,
        known_at: None,
        snapshot_name: None,
        batch: 1000,
        pass_events: 1000,
        fold_workers: None,
    };
    let names: Vec<&str> = request
        .with_what_they_read()
        .projectors
        .iter()
        .map(|p| p.name())
        .collect();
    assert_eq!(names, ["coverage", "customers"]);
}
