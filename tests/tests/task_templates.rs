//! Task templates and recurring tasks (docs/DOMAIN.md section 15): a template makes a task and
//! its subtasks in one append, each due its offset after the day it is used; saving again is a
//! new version; a retired template makes nothing. A recurring task makes each period's task once
//! (on a pinned clock, ticked twice), the next one early when the current one is closed, and
//! none after it is stopped.

use chrono::{DateTime, Utc};
use command_service::reminders::tick;
use reqwest::Method;
use serde_json::{json, Value};
use tests::{token, uuid, TestSystem};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

const TASKS: &str = "query($c: UUID) { tasks(filter: {customerId: $c}, first: 50) { totalCount nodes { title dueDate parentTaskId status assigneeId } } }";

async fn tasks(system: &TestSystem, customer: uuid::Uuid) -> Vec<Value> {
    let mut nodes = system.graphql(TASKS, json!({"c": customer})).await["tasks"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    nodes.sort_by(|a, b| {
        (a["dueDate"].to_string(), a["title"].to_string()).cmp(&(b["dueDate"].to_string(), b["title"].to_string()))
    });
    nodes
}

#[tokio::test]
async fn a_template_makes_a_task_and_its_subtasks_and_a_recurring_task_each_period_once() {
    let system = TestSystem::spawn_with(8, 3600.0).await.unwrap();
    let handlers = command_service::handlers(&system.pool);
    let dana = system.register_csm("Dana").await;
    let acme = system
        .onboard(
            "Acme",
            "Enterprise",
            "300000",
            dana,
            Utc::now() - chrono::Duration::days(30),
        )
        .await;
    let template = json!({"name": "Onboarding kick-off", "title": "Run the kick-off", "description": "Agenda and owners",
        "kind": "onboarding", "priority": "high", "due_offset_days": 7,
        "subtasks": [{"title": "Send the agenda", "due_offset_days": 2}, {"title": "Book the room", "due_offset_days": 1}]});
    let made = system.post_ok("/api/v1/task-templates", &template).await;
    let template_id = uuid(&made["template_id"]);
    // CSMs use templates; only admins and managers change them.
    let csm = token(events::metadata::Role::Csm, "dana", None);
    let (status, _) = system
        .send_as(&csm, Method::POST, "/api/v1/task-templates", Some(&template))
        .await;
    assert_eq!(status, 403);
    let (status, answer) = system
        .send_as(
            &csm,
            Method::POST,
            &format!("/api/v1/customers/{acme}/tasks/from-template"),
            Some(&json!({"template_id": template_id, "assignee_id": "dana", "start": "2027-02-01"})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    system.caught_up().await;
    let parent = answer["task_id"].clone();
    assert_eq!(
        tasks(&system, acme).await,
        vec![
            json!({"title": "Book the room", "dueDate": "2027-02-02", "parentTaskId": parent, "status": "pending", "assigneeId": "dana"}),
            json!({"title": "Send the agenda", "dueDate": "2027-02-03", "parentTaskId": parent, "status": "pending", "assigneeId": "dana"}),
            json!({"title": "Run the kick-off", "dueDate": "2027-02-08", "parentTaskId": null, "status": "pending", "assigneeId": "dana"}),
        ]
    );
    // A new version; then retired, it makes nothing and is no longer listed.
    let mut second = template.clone();
    second["due_offset_days"] = json!(10);
    let (status, _) = system
        .send(
            Method::PUT,
            &format!("/api/v1/task-templates/{template_id}"),
            Some(&second),
        )
        .await;
    assert_eq!(status, 200);
    let listed = system
        .graphql(
            "{ taskTemplates { name version dueOffsetDays subtasks { title } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["taskTemplates"],
        json!([{"name": "Onboarding kick-off", "version": 2, "dueOffsetDays": 10,
                "subtasks": [{"title": "Send the agenda"}, {"title": "Book the room"}]}])
    );
    let (status, _) = system
        .send(
            Method::POST,
            &format!("/api/v1/task-templates/{template_id}/retire"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = system
        .post(
            &format!("/api/v1/customers/{acme}/tasks/from-template"),
            &json!({"template_id": template_id, "assignee_id": "dana"}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].clone()),
        (422, json!("unknown_template"))
    );
    assert_eq!(
        system.graphql("{ taskTemplates { name } }", json!({})).await["taskTemplates"],
        json!([])
    );

    // A monthly check-in on the 1st, due 5 days into its month.
    let beta = system
        .onboard("Beta", "SMB", "9000", dana, Utc::now() - chrono::Duration::days(30))
        .await;
    let (status, answer) = system
        .send_as(
            &csm,
            Method::POST,
            &format!("/api/v1/customers/{beta}/recurring-tasks"),
            Some(
                &json!({"title": "Monthly check-in", "kind": "follow_up", "priority": "medium", "assignee_id": "dana",
                         "rrule": "FREQ=MONTHLY;BYMONTHDAY=1", "starts": "2027-01-01", "due_offset_days": 5}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let recurrence = uuid(&answer["recurrence_id"]);
    system.caught_up().await;
    let now = at("2027-03-10T08:00:00Z");
    assert_eq!(tick(&handlers, now, true, usize::MAX).await.unwrap().unwrap().tasks, 1);
    // Again at once (the read model may lag) and after: never twice.
    assert_eq!(tick(&handlers, now, true, usize::MAX).await.unwrap().unwrap().tasks, 0);
    system.caught_up().await;
    assert_eq!(tick(&handlers, now, true, usize::MAX).await.unwrap().unwrap().tasks, 0);
    let made = tasks(&system, beta).await;
    assert_eq!(made.len(), 1);
    assert_eq!(
        (made[0]["title"].clone(), made[0]["dueDate"].clone()),
        (json!("Monthly check-in"), json!("2027-03-06"))
    );
    // Closing it makes April's at once, not on the 1st of April.
    let task_id = events::task_template::period_task_id(recurrence, "2027-03-01".parse().unwrap());
    let (status, answer) = system
        .send(
            Method::POST,
            &format!("/api/v1/customers/{beta}/tasks/{task_id}/complete"),
            Some(&json!({"outcome": "all well"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    system.caught_up().await;
    assert_eq!(tick(&handlers, now, true, usize::MAX).await.unwrap().unwrap().tasks, 1);
    system.caught_up().await;
    let made: Vec<(chrono::NaiveDate, String)> =
        sqlx::query_as("SELECT due_date, status FROM tasks WHERE customer_id = $1 ORDER BY due_date")
            .bind(beta)
            .fetch_all(&system.pool)
            .await
            .unwrap();
    assert_eq!(
        made,
        vec![
            ("2027-03-06".parse().unwrap(), "completed".to_owned()),
            ("2027-04-06".parse().unwrap(), "pending".to_owned())
        ]
    );
    let listed = system
        .graphql(
            "query($c: UUID!) { recurringTasks(customerId: $c) { title active starts rrule } }",
            json!({"c": beta}),
        )
        .await;
    assert_eq!(
        listed["recurringTasks"],
        json!([{"title": "Monthly check-in", "active": true, "starts": "2027-01-01", "rrule": "FREQ=MONTHLY;BYMONTHDAY=1"}])
    );
    // Stopped, it makes no more.
    let (status, _) = system
        .send(
            Method::POST,
            &format!("/api/v1/recurring-tasks/{recurrence}/stop"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 200);
    system.caught_up().await;
    assert_eq!(
        tick(&handlers, at("2027-06-02T08:00:00Z"), true, usize::MAX)
            .await
            .unwrap()
            .unwrap()
            .tasks,
        0
    );
    let (status, answer) = system
        .post(
            &format!("/api/v1/customers/{beta}/recurring-tasks"),
            &json!({"title": "x", "kind": "general", "priority": "low", "assignee_id": "dana",
                    "rrule": "FREQ=HOURLY", "starts": "2027-01-01"}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].clone()),
        (422, json!("invalid_rrule"))
    );
}
