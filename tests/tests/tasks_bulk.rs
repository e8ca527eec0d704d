//! Bulk task actions (docs/DOMAIN.md, "Bulk task actions"): reassign, reschedule to a day, shift
//! and complete many tasks at once, all or nothing, under one correlation id, each task with its
//! own events.

use chrono::{Duration, Utc};
use events::metadata::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::{token, uuid, TestSystem};

#[tokio::test]
async fn many_tasks_change_at_once_or_not_at_all() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    let since = Utc::now() - Duration::days(30);
    let acme = system.onboard("Acme", "Enterprise", "300000", dana, since).await;
    let beta = system.onboard("Beta", "SMB", "9000", dana, since).await;
    let today = Utc::now().date_naive();
    let mut tasks = Vec::new();
    for (customer, title, due) in [
        (acme, "QBR deck", 3),
        (acme, "Renewal quote", 10),
        (beta, "Check-in", 5),
    ] {
        let answer = system
            .post_ok(
                &format!("/api/v1/customers/{customer}/tasks"),
                &json!({"title": title, "kind": "follow_up", "priority": "medium", "assignee_id": "dana",
                        "due_date": today + Duration::days(due)}),
            )
            .await;
        tasks.push(uuid(&answer["task_id"]));
    }
    system.caught_up().await;
    let bulk = |body: Value| {
        let system = &system;
        async move { system.send(Method::POST, "/api/v1/tasks/bulk", Some(&body)).await }
    };
    let read = || {
        let system = &system;
        async move {
            let data = system
                .graphql(
                    "{ tasks(first: 10, filter: {state: ALL}) { nodes { title assigneeId dueDate status outcome } } }",
                    json!({}),
                )
                .await;
            data["tasks"]["nodes"].as_array().unwrap().clone()
        }
    };

    // Reassigned together: one command, one correlation id, each task its own event.
    let (status, answer) =
        bulk(json!({"task_ids": tasks, "action": {"reassign": {"assignee_id": "eli", "reason": "Dana is away"}}}))
            .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"tasks": 3, "changed": 3}));
    let correlations: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT metadata ->> 'correlation_id' FROM events WHERE event_type = 'TaskReassigned'",
    )
    .fetch_all(&system.pool)
    .await
    .unwrap();
    assert_eq!(correlations.len(), 1, "one correlation id: {correlations:?}");
    system.caught_up().await;
    assert!(read().await.iter().all(|task| task["assigneeId"] == "eli"));
    // Those already with the assignee need nothing.
    let (_, answer) = bulk(json!({"task_ids": tasks, "action": {"reassign": {"assignee_id": "eli"}}})).await;
    assert_eq!(answer["changed"], 0);

    // Shifted by a week, each from its own due date; then two set to one day.
    let (status, _) = bulk(json!({"task_ids": tasks, "action": {"shift": {"days": 7}}})).await;
    assert_eq!(status, StatusCode::OK);
    system.caught_up().await;
    let due: Vec<Value> = read().await.iter().map(|task| task["dueDate"].clone()).collect();
    assert_eq!(
        due,
        [10, 12, 17].map(|days| json!(today + Duration::days(days))),
        "ordered by due date"
    );
    let day = today + Duration::days(20);
    let (status, _) = bulk(json!({"task_ids": &tasks[..2], "action": {"reschedule_to": {"due_date": day}}})).await;
    assert_eq!(status, StatusCode::OK);

    // All or nothing: a task that cannot be completed refuses the batch, and no task changes.
    let (status, _) = bulk(json!({"task_ids": [tasks[0]], "action": {"complete": {"outcome": "Deck sent"}}})).await;
    assert_eq!(status, StatusCode::OK);
    system.caught_up().await;
    let before = read().await;
    let (status, answer) = bulk(json!({"task_ids": tasks, "action": {"complete": {"outcome": "Done"}}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    system.caught_up().await;
    assert_eq!(read().await, before, "a refused batch changes nothing");
    let (status, answer) = bulk(json!({"task_ids": &tasks[1..], "action": {"complete": {"outcome": "Done"}}})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    system.caught_up().await;
    let statuses: Vec<(Value, Value)> = read()
        .await
        .iter()
        .map(|t| (t["status"].clone(), t["outcome"].clone()))
        .collect();
    assert_eq!(
        statuses.iter().filter(|(status, _)| status == "completed").count(),
        3,
        "{statuses:?}"
    );

    // Bad requests name the field; an unknown task is 404; readonly users may not.
    for (body, field) in [
        (
            json!({"task_ids": [], "action": {"complete": {"outcome": "x"}}}),
            "task_ids",
        ),
        (
            json!({"task_ids": [tasks[0], tasks[0]], "action": {"complete": {"outcome": "x"}}}),
            "task_ids[1]",
        ),
        (
            json!({"task_ids": [tasks[0]], "action": {"shift": {"days": 0}}}),
            "action.shift.days",
        ),
    ] {
        let (status, answer) = bulk(body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(answer["fields"][field].is_string(), "{field}: {answer}");
    }
    let (status, _) = bulk(json!({"task_ids": [uuid::Uuid::now_v7()], "action": {"shift": {"days": 1}}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let readonly = token(Role::Readonly, "rita", None);
    let (status, _) = system
        .send_as(
            &readonly,
            Method::POST,
            "/api/v1/tasks/bulk",
            Some(&json!({"task_ids": [tasks[0]], "action": {"shift": {"days": 1}}})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
