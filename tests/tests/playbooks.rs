//! Playbooks (docs/DOMAIN.md section 17): a run started by hand makes each step a task of the
//! account, owned and due as its playbook says, and refuses a second run while it is open; moving
//! a step moves the later open ones with it in one event; a step counted from the previous
//! step's completion follows it; the run ends when every step is closed. A rule starts one run
//! per occasion (on a pinned clock, ticked twice), keeps the version it started with, and ends
//! the run when the account is no longer at risk, cancelling the steps left. The report counts
//! runs, completion and accounts that left risk.

use chrono::{DateTime, Duration, Utc};
use command_service::reminders::tick;
use events::metadata::Role;
use reqwest::Method;
use serde_json::{json, Value};
use tests::{token, uuid, TestSystem};

const RECOVERY: &str = "01900000-0000-7000-8000-000000000b01";
const RENEWAL: &str = "01900000-0000-7000-8000-000000000b02";

const RUNS: &str = "query($c: UUID) { playbookRuns(customerId: $c) { totalCount items { runId playbookName
  playbookVersion trigger why startedBy startedByName status endedWhy stepsDone stepCount
  steps { title assigneeId assigneeName dueDate status } moves { fromStep days reason movedBy } } } }";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

async fn runs(system: &TestSystem, customer: uuid::Uuid) -> Vec<Value> {
    system.graphql(RUNS, json!({"c": customer})).await["playbookRuns"]["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn column(run: &Value, field: &str) -> Vec<Value> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[field].clone())
        .collect()
}

async fn complete(system: &TestSystem, customer: uuid::Uuid, task: &str) {
    let (status, answer) = system
        .send(
            Method::POST,
            &format!("/api/v1/customers/{customer}/tasks/{task}/complete"),
            Some(&json!({"outcome": "done"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

/// Runs the alert checker once (the test's own is off: its scheduler is ticked by hand), and
/// waits until there are `count` alerts of `kind`.
async fn alerts_checked(system: &TestSystem, kind: &str, count: i64) {
    let risk = query_api::risk::RiskCache::default();
    tests::eventually(std::time::Duration::from_secs(20), || async {
        projection_service::alerts::check(&system.pool, Utc::now().date_naive(), &risk)
            .await
            .unwrap();
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM alerts WHERE kind = $1")
            .bind(kind)
            .fetch_one(&system.pool)
            .await
            .unwrap()
            == count
    })
    .await
    .expect("the alert is raised");
}

fn step_tasks(run_id: uuid::Uuid, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| events::playbook::step_task_id(run_id, i).to_string())
        .collect()
}

#[tokio::test]
async fn a_run_by_hand_makes_its_steps_tasks_moves_them_together_and_completes() {
    let system = TestSystem::spawn_with(8, 3600.0).await.unwrap();
    let handlers = command_service::handlers(&system.pool);
    let dana = system.register_csm("Dana").await;
    system.caught_up().await;
    let csm = token(Role::Csm, "dana", None);
    let manager = token(Role::Manager, "amira", None);
    let team: String = sqlx::query_scalar("SELECT team FROM csm_directory WHERE csm_id = $1")
        .bind(dana)
        .fetch_one(&system.pool)
        .await
        .unwrap();
    for (who, body) in [
        (&csm, json!({"csm_id": dana, "channels": []})),
        (&manager, json!({"team": team, "channels": []})),
    ] {
        let (status, answer) = system
            .send_as(who, Method::PUT, "/api/v1/notification-preferences", Some(&body))
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let acme = system
        .onboard("Acme", "Enterprise", "300000", dana, Utc::now() - Duration::days(90))
        .await;
    system.record_health(acme, 35.0, Utc::now().date_naive()).await;
    system.caught_up().await;

    let start = json!({"playbook_id": RECOVERY, "reason": "Health fell to 35", "start": "2027-01-04"});
    let path = format!("/api/v1/customers/{acme}/playbook-runs");
    let (status, answer) = system.send_as(&csm, Method::POST, &path, Some(&start)).await;
    assert_eq!(status, 201, "{answer}");
    let run_id = uuid(&answer["run_id"]);
    // Never a second run of the playbook while one is open.
    let (status, answer) = system.send_as(&csm, Method::POST, &path, Some(&start)).await;
    assert_eq!((status.as_u16(), answer["error"].clone()), (422, json!("run_open")));
    // Partners run no playbooks; an unknown playbook is named as such.
    let partner = token(Role::Partner, "pat", Some(uuid::Uuid::now_v7()));
    let (status, _) = system.send_as(&partner, Method::POST, &path, Some(&start)).await;
    assert_eq!(status, 403);
    let (status, answer) = system
        .send_as(
            &csm,
            Method::POST,
            &path,
            Some(&json!({"playbook_id": uuid::Uuid::now_v7(), "reason": "x"})),
        )
        .await;
    assert_eq!(
        (
            status.as_u16(),
            answer["error"].clone(),
            answer["fields"]["playbook_id"].is_string()
        ),
        (422, json!("unknown_playbook"), true)
    );
    system.caught_up().await;

    let listed = runs(&system, acme).await;
    assert_eq!(listed.len(), 1);
    let run = &listed[0];
    assert_eq!(
        (
            run["playbookName"].clone(),
            run["playbookVersion"].clone(),
            run["trigger"].clone(),
            run["why"].clone(),
            run["startedBy"].clone(),
            run["startedByName"].clone(),
            run["status"].clone(),
            run["stepsDone"].clone(),
            run["stepCount"].clone()
        ),
        (
            json!("At-risk recovery"),
            json!(0),
            json!("manual"),
            json!("Health fell to 35"),
            json!("dana"),
            json!("Dana"),
            json!("OPEN"),
            json!(0),
            json!(5)
        )
    );
    // Each step's task: the CSM's user, the manager of the CSM's team; due from its anchor.
    assert_eq!(
        column(run, "dueDate"),
        ["2027-01-04", "2027-01-06", "2027-01-11", "2027-01-14", "2027-02-03"].map(|d| json!(d))
    );
    assert_eq!(
        column(run, "assigneeId"),
        ["dana", "dana", "dana", "amira", "dana"].map(|d| json!(d))
    );
    let tasks = step_tasks(run_id, 5);

    // Today lists the CSM's step with where it comes from.
    let today = system
        .graphql_as(
            &csm,
            "query($at: DateTime) { today(at: $at) { items { kind title reason } } }",
            json!({"at": "2027-01-05T09:00:00Z"}),
        )
        .await;
    let steps: Vec<&Value> = today["data"]["today"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "PLAYBOOK_STEP")
        .collect();
    assert_eq!(
        steps,
        [
            &json!({"kind": "PLAYBOOK_STEP", "title": "Review the health lineage and risk factors",
                 "reason": "Step 1 of 5 of the playbook \u{201c}At-risk recovery\u{201d}, overdue by 1 day (due 2027-01-04)"})
        ]
    );

    // Moving step 2 two days later moves every later open step with it, in one event.
    let (status, answer) = system
        .send_as(
            &csm,
            Method::POST,
            &format!("/api/v1/playbook-runs/{run_id}/move"),
            Some(&json!({"step": 1, "due_date": "2027-01-08", "reason": "The champion is away"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let moved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'PlaybookRun' AND event_type = 'PlaybookStepsMoved'",
    )
    .fetch_one(&system.pool)
    .await
    .unwrap();
    assert_eq!(moved, 1);
    system.caught_up().await;
    let run = &runs(&system, acme).await[0];
    assert_eq!(
        column(run, "dueDate"),
        ["2027-01-04", "2027-01-08", "2027-01-13", "2027-01-16", "2027-02-05"].map(|d| json!(d))
    );
    assert_eq!(
        run["moves"],
        json!([{"fromStep": 1, "days": 2, "reason": "The champion is away", "movedBy": "dana"}])
    );
    let (status, answer) = system
        .send_as(
            &csm,
            Method::POST,
            &format!("/api/v1/playbook-runs/{run_id}/move"),
            Some(&json!({"step": 1, "due_date": "2027-01-08", "reason": "again"})),
        )
        .await;
    assert_eq!((status.as_u16(), answer["error"].clone()), (422, json!("unchanged")));

    // Step 1 done: step 2, counted from its completion, is due two days after it, once.
    complete(&system, acme, &tasks[0]).await;
    system.caught_up().await;
    let now = at("2027-01-05T09:00:00Z");
    tick(&handlers, now, true, usize::MAX).await.unwrap().unwrap();
    tick(&handlers, now, true, usize::MAX).await.unwrap().unwrap();
    system.caught_up().await;
    let completed: DateTime<Utc> = sqlx::query_scalar("SELECT closed_at FROM tasks WHERE task_id = $1::uuid")
        .bind(&tasks[0])
        .fetch_one(&system.pool)
        .await
        .unwrap();
    let run = &runs(&system, acme).await[0];
    assert_eq!(
        run["steps"][1]["dueDate"],
        json!((completed.date_naive() + Duration::days(2)).to_string())
    );
    assert_eq!(run["moves"].as_array().unwrap().len(), 2, "{run}");
    assert_eq!(run["moves"][1]["movedBy"], json!("system"));
    assert_eq!(run["stepsDone"], json!(1));

    // Every step closed: the run completes, with why.
    for task in &tasks[1..] {
        complete(&system, acme, task).await;
    }
    system.caught_up().await;
    let ticked = tick(&handlers, now, true, usize::MAX).await.unwrap().unwrap();
    assert_eq!(ticked.runs_ended, 1);
    let run = &runs(&system, acme).await[0];
    assert_eq!(run["status"], json!("COMPLETED"));
    assert!(
        run["endedWhy"]
            .as_str()
            .unwrap()
            .starts_with("All 5 steps are closed, the last on "),
        "{run}"
    );
    let (status, answer) = system
        .send_as(
            &csm,
            Method::POST,
            &format!("/api/v1/playbook-runs/{run_id}/cancel"),
            Some(&json!({"reason": "late"})),
        )
        .await;
    assert_eq!((status.as_u16(), answer["error"].clone()), (422, json!("ended")));

    let report = system
        .graphql(
            "query($from: Date, $to: Date) { playbooksReport(from: $from, to: $to) { rows { playbookName runs open completed
               exited cancelled completionRate atRiskAtStart leftRiskWithin60Days } total { runs completed } } }",
            json!({"from": Utc::now().date_naive() - Duration::days(30), "to": Utc::now().date_naive() + Duration::days(1)}),
        )
        .await;
    assert_eq!(
        report["playbooksReport"],
        json!({"rows": [{"playbookName": "At-risk recovery", "runs": 1, "open": 0, "completed": 1, "exited": 0,
                         "cancelled": 0, "completionRate": 1.0, "atRiskAtStart": 1, "leftRiskWithin60Days": 0}],
               "total": {"runs": 1, "completed": 1}})
    );
}

#[tokio::test]
async fn a_rule_starts_one_run_per_occasion_and_ends_it_once_the_account_is_no_longer_at_risk() {
    let system = TestSystem::spawn_with(8, 3600.0).await.unwrap();
    let handlers = command_service::handlers(&system.pool);
    let dana = system.register_csm("Dana").await;
    let today = Utc::now().date_naive();
    let acme = system
        .onboard("Acme", "Enterprise", "300000", dana, Utc::now() - Duration::days(90))
        .await;
    let beta = system
        .onboard("Beta", "SMB", "9000", dana, Utc::now() - Duration::days(90))
        .await;
    // Neither renews within 120 days until Beta's date is moved below.
    for customer in [acme, beta] {
        let (status, _) = system
            .send(
                Method::PATCH,
                &format!("/api/v1/customers/{customer}"),
                Some(&json!({"renewal_date": today + Duration::days(400)})),
            )
            .await;
        assert_eq!(status, 200);
    }

    // The shipped playbooks start nothing until an admin turns their start on: a new version.
    let playbooks = system
        .graphql(
            "{ playbooks { playbookId name version autoStart trigger triggerDays } }",
            json!({}),
        )
        .await;
    assert_eq!(
        playbooks["playbooks"],
        json!([
            {"playbookId": RECOVERY, "name": "At-risk recovery", "version": 0, "autoStart": false, "trigger": "health_red", "triggerDays": null},
            {"playbookId": "01900000-0000-7000-8000-000000000b03", "name": "Onboarding", "version": 0, "autoStart": false, "trigger": "onboarding", "triggerDays": null},
            {"playbookId": RENEWAL, "name": "Renewal preparation", "version": 0, "autoStart": false, "trigger": "renewal_within", "triggerDays": 120},
        ])
    );
    let steps = json!([
        {"title": "Call the sponsor", "owner": "csm", "anchor": "start", "offset_days": 1, "kind": "follow_up", "priority": "high"},
        {"title": "Agree a plan", "owner": "csm", "anchor": "previous_step", "offset_days": 5, "kind": "escalation", "priority": "high",
         "template": "Plan for {customer}, renewing {renewal_date}"}
    ]);
    let body = json!({"name": "At-risk recovery", "trigger": {"kind": "health_red"}, "auto_start": true,
                      "exit_when_not_at_risk": true, "steps": steps});
    let csm = token(Role::Csm, "dana", None);
    let (status, _) = system
        .send_as(&csm, Method::PUT, &format!("/api/v1/playbooks/{RECOVERY}"), Some(&body))
        .await;
    assert_eq!(status, 403);
    let (status, answer) = system
        .send(Method::PUT, &format!("/api/v1/playbooks/{RECOVERY}"), Some(&body))
        .await;
    assert_eq!(status, 200, "{answer}");
    let mut manual = body.clone();
    manual["trigger"] = json!({"kind": "manual"});
    let (status, answer) = system.send(Method::POST, "/api/v1/playbooks", Some(&manual)).await;
    assert_eq!(
        (
            status.as_u16(),
            answer["error"].clone(),
            answer["fields"]["auto_start"].is_string()
        ),
        (422, json!("manual_trigger"), true)
    );
    let mut empty = body.clone();
    empty["steps"] = json!([]);
    let (status, answer) = system.send(Method::POST, "/api/v1/playbooks", Some(&empty)).await;
    assert_eq!(status, 422, "{answer}");

    // Acme turns red: its alert starts one run, however often the scheduler looks.
    system.record_health(acme, 35.0, today).await;
    system.record_health(beta, 80.0, today).await;
    system.caught_up().await;
    alerts_checked(&system, "health_red", 1).await;
    let now = Utc::now();
    assert_eq!(
        tick(&handlers, now, true, usize::MAX)
            .await
            .unwrap()
            .unwrap()
            .runs_started,
        1
    );
    assert_eq!(
        tick(&handlers, now, true, usize::MAX)
            .await
            .unwrap()
            .unwrap()
            .runs_started,
        0
    );
    system.caught_up().await;
    let listed = runs(&system, acme).await;
    assert_eq!(listed.len(), 1);
    let run = &listed[0];
    assert_eq!(
        (
            run["trigger"].clone(),
            run["playbookVersion"].clone(),
            run["startedByName"].clone(),
            run["stepCount"].clone()
        ),
        (json!("health_red"), json!(1), json!("cstrack (a rule)"), json!(2))
    );
    assert!(run["why"].as_str().unwrap().starts_with("The alert \u{201c}"), "{run}");
    assert_eq!(
        column(run, "dueDate"),
        [today + Duration::days(1), today + Duration::days(6)].map(|d| json!(d.to_string()))
    );
    // The CSM has no user yet: the step is the CSM's, shown by name.
    assert_eq!(
        column(run, "assigneeId"),
        [json!(dana.to_string()), json!(dana.to_string())]
    );
    assert_eq!(column(run, "assigneeName"), [json!("Dana"), json!("Dana")]);
    let description: String =
        sqlx::query_scalar("SELECT description FROM tasks WHERE customer_id = $1 AND title = 'Agree a plan'")
            .bind(acme)
            .fetch_one(&system.pool)
            .await
            .unwrap();
    assert_eq!(
        description,
        format!(
            "Plan for Acme, renewing {}\n\nStep 2 of 2 of the playbook \u{201c}At-risk recovery\u{201d}.",
            today + Duration::days(400)
        )
    );
    assert!(runs(&system, beta).await.is_empty());

    // Green again: the run ends by its exit condition and its open steps are cancelled.
    system.record_health(acme, 75.0, today).await;
    system.caught_up().await;
    // The checker sees the account green, so red again is a new alert.
    alerts_checked(&system, "health_red", 1).await;
    assert_eq!(
        tick(&handlers, Utc::now(), true, usize::MAX)
            .await
            .unwrap()
            .unwrap()
            .runs_ended,
        1
    );
    system.caught_up().await;
    let run = &runs(&system, acme).await[0];
    assert_eq!(run["status"], json!("EXITED"));
    assert_eq!(
        run["endedWhy"],
        json!(format!(
            "No longer at risk: health 75 recorded on {} (70 or more is green).",
            Utc::now().date_naive()
        ))
    );
    assert_eq!(column(run, "status"), [json!("cancelled"), json!("cancelled")]);

    // Red again is a new occasion: a second run.
    system.record_health(acme, 30.0, today).await;
    system.caught_up().await;
    alerts_checked(&system, "health_red", 2).await;
    assert_eq!(
        tick(&handlers, Utc::now(), true, usize::MAX)
            .await
            .unwrap()
            .unwrap()
            .runs_started,
        1
    );
    system.caught_up().await;
    let listed = runs(&system, acme).await;
    assert_eq!(
        listed.iter().map(|r| r["status"].clone()).collect::<Vec<_>>(),
        [json!("OPEN"), json!("EXITED")]
    );

    // Renewal preparation, turned on, starts for Beta renewing in 100 days, on a pinned clock.
    let renewal = today + Duration::days(100);
    let (status, _) = system
        .send(
            Method::PATCH,
            &format!("/api/v1/customers/{beta}"),
            Some(&json!({"renewal_date": renewal})),
        )
        .await;
    assert_eq!(status, 200);
    let shipped = system
        .graphql("{ playbooks { playbookId name description trigger triggerDays exitWhenNotAtRisk steps { title owner anchor offsetDays kind priority template } } }", json!({}))
        .await;
    let renewal_playbook = shipped["playbooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["playbookId"] == RENEWAL)
        .unwrap()
        .clone();
    let steps: Vec<Value> = renewal_playbook["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            json!({"title": s["title"], "owner": s["owner"], "anchor": s["anchor"], "offset_days": s["offsetDays"],
                   "kind": s["kind"], "priority": s["priority"], "template": s["template"]})
        })
        .collect();
    let (status, answer) = system
        .send(
            Method::PUT,
            &format!("/api/v1/playbooks/{RENEWAL}"),
            Some(
                &json!({"name": "Renewal preparation", "description": renewal_playbook["description"],
                         "trigger": {"kind": "renewal_within", "days": 120}, "auto_start": true, "steps": steps}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    system.caught_up().await;
    let ticked = tick(&handlers, Utc::now(), true, usize::MAX).await.unwrap().unwrap();
    assert_eq!(ticked.runs_started, 1);
    system.caught_up().await;
    let run = &runs(&system, beta).await[0];
    assert_eq!(
        run["why"],
        json!(format!(
            "The renewal on {renewal} is 100 days away (the playbook starts 120 days before)."
        ))
    );
    // 120 days before is past: due at the start; then 90, 60, 45 and 14 days before.
    assert_eq!(
        column(run, "dueDate"),
        [0, 10, 40, 55, 86].map(|d| json!((today + Duration::days(d)).to_string()))
    );
    let ticked = tick(&handlers, Utc::now(), true, usize::MAX).await.unwrap().unwrap();
    assert_eq!(ticked.runs_started, 0);

    // Ended by hand, with why: its open steps are cancelled with it.
    let run_id = run["runId"].as_str().unwrap().to_owned();
    let (status, answer) = system
        .send_as(
            &csm,
            Method::POST,
            &format!("/api/v1/playbook-runs/{run_id}/cancel"),
            Some(&json!({"reason": "Renewed early"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    system.caught_up().await;
    let run = &runs(&system, beta).await[0];
    assert_eq!(
        (run["status"].clone(), run["endedWhy"].clone()),
        (json!("CANCELLED"), json!("Renewed early"))
    );
    let cancelled: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasks WHERE customer_id = $1 AND status = 'cancelled'")
            .bind(beta)
            .fetch_one(&system.pool)
            .await
            .unwrap();
    assert_eq!(cancelled, 5);
}

#[tokio::test]
async fn a_playbook_starts_on_selected_customers_together_leaving_out_those_with_a_run_open() {
    let system = TestSystem::spawn_with(8, 3600.0).await.unwrap();
    let dana = system.register_csm("Dana").await;
    let onboarded = Utc::now() - Duration::days(90);
    let acme = system.onboard("Acme", "Enterprise", "300000", dana, onboarded).await;
    let beta = system.onboard("Beta", "SMB", "9000", dana, onboarded).await;
    let gamma = system.onboard("Gamma", "SMB", "9000", dana, onboarded).await;
    system.caught_up().await;
    let csm = token(Role::Csm, "dana", None);
    let (status, answer) = system
        .send_as(
            &csm,
            Method::POST,
            &format!("/api/v1/customers/{acme}/playbook-runs"),
            Some(&json!({"playbook_id": RECOVERY, "reason": "Red"})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    system.caught_up().await;
    let body = json!({"customer_ids": [acme, beta, gamma],
                      "action": {"start_playbook": {"playbook_id": RECOVERY, "reason": "Quarterly risk review"}}});
    let (status, preview) = system
        .send_as(&csm, Method::POST, "/api/v1/customers/bulk/preview", Some(&body))
        .await;
    assert_eq!(status, 200, "{preview}");
    let rows: Vec<(Value, Value, Value, Value)> = preview["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].clone(),
                r["before"].clone(),
                r["after"].clone(),
                r["changes"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                json!("Acme"),
                json!("a run open"),
                json!("a run of At-risk recovery"),
                json!(false)
            ),
            (
                json!("Beta"),
                json!("no run open"),
                json!("a run of At-risk recovery"),
                json!(true)
            ),
            (
                json!("Gamma"),
                json!("no run open"),
                json!("a run of At-risk recovery"),
                json!(true)
            ),
        ]
    );
    let runs_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'PlaybookRun'")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(runs_before, 1, "a preview appends nothing");
    // A churned customer among them refuses the whole batch, naming it.
    let (status, _) = system
        .send(
            Method::POST,
            &format!("/api/v1/customers/{gamma}/churn"),
            Some(&json!({"churned_on": Utc::now().date_naive(), "reason": "Budget"})),
        )
        .await;
    assert_eq!(status, 200);
    system.caught_up().await;
    let (status, answer) = system
        .send_as(&csm, Method::POST, "/api/v1/customers/bulk", Some(&body))
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].clone()),
        (422, json!("churned")),
        "{answer}"
    );
    let mut without = body.clone();
    without["customer_ids"] = json!([acme, beta]);
    let (status, answer) = system
        .send_as(&csm, Method::POST, "/api/v1/customers/bulk", Some(&without))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["changed"], json!(1));
    system.caught_up().await;
    assert_eq!(runs(&system, beta).await.len(), 1);
    assert_eq!(runs(&system, acme).await.len(), 1);
    let (status, answer) = system
        .send_as(
            &csm,
            Method::POST,
            "/api/v1/customers/bulk",
            Some(&json!({"customer_ids": [beta], "action": {"start_playbook": {"playbook_id": uuid::Uuid::now_v7(), "reason": "x"}}})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].clone()),
        (422, json!("unknown_playbook")),
        "{answer}"
    );
}
