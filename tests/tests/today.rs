//! A CSM's "today" (docs/DOMAIN.md section 14): their reminders due, their tasks overdue or due
//! today, their accounts due a contact, new alerts and renewals within 30 days, each with why,
//! riskiest account first; nothing of another CSM's, and nothing for partners.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tests::{eventually, token, TestSystem};

const TODAY: &str = "query($at: DateTime) { today(at: $at, first: 100) { csmName totalCount
  counts { kind count } items { kind title reason due customerName riskBand } } }";

#[tokio::test]
async fn a_csm_sees_what_needs_them_today_ranked_with_the_reason_for_each() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    let omar = system.register_csm("Omar").await;
    let dana_user = token(events::metadata::Role::Csm, "dana", None);
    let (status, answer) = system
        .send_as(
            &dana_user,
            Method::PUT,
            "/api/v1/notification-preferences",
            Some(&json!({"csm_id": dana, "channels": []})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let now = Utc::now();
    let today = now.date_naive();
    let onboarded = now - Duration::days(60);
    let acme = system.onboard("Acme", "Enterprise", "300000", dana, onboarded).await;
    let beta = system.onboard("Beta", "SMB", "9000", dana, onboarded).await;
    let gamma = system.onboard("Gamma", "SMB", "9000", omar, onboarded).await;
    // Acme is red and was never contacted; Beta was contacted two days ago and renews in 20 days.
    system.record_health(acme, 30.0, today - Duration::days(1)).await;
    system.record_health(beta, 80.0, today - Duration::days(1)).await;
    system.log_activity(beta, "email", today - Duration::days(2), &[]).await;
    system
        .log_activity(gamma, "email", today - Duration::days(2), &[])
        .await;
    let renewal = today + Duration::days(20);
    let (status, answer) = system
        .send(
            Method::PATCH,
            &format!("/api/v1/customers/{beta}"),
            Some(&json!({"renewal_date": renewal})),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    let task = |title: &str, due, assignee: &str| json!({"title": title, "kind": "follow_up", "priority": "high", "assignee_id": assignee, "due_date": due});
    system
        .post_ok(
            &format!("/api/v1/customers/{beta}/tasks"),
            &task("Send the quote", today - Duration::days(2), "dana"),
        )
        .await;
    system
        .post_ok(
            &format!("/api/v1/customers/{acme}/tasks"),
            &task("Call the sponsor", today, "dana"),
        )
        .await;
    system
        .post_ok(
            &format!("/api/v1/customers/{gamma}/tasks"),
            &task("Not Dana's", today, "omar"),
        )
        .await;
    let (status, answer) = system
        .send_as(
            &dana_user,
            Method::POST,
            "/api/v1/reminders",
            Some(&json!({"title": "Plan the week", "schedule": {"kind": "once", "at": now}})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    system.caught_up().await;
    // The scheduler fires the reminder and the checker raises Acme's red-health alert.
    eventually(std::time::Duration::from_secs(30), || async {
        let found = system.graphql_as(&dana_user, TODAY, json!({})).await;
        let kinds: Vec<Value> = found["data"]["today"]["items"]
            .as_array()
            .map(|items| items.iter().map(|i| i["kind"].clone()).collect())
            .unwrap_or_default();
        kinds.contains(&json!("REMINDER")) && kinds.contains(&json!("ALERT"))
    })
    .await
    .expect("the reminder fired and the alert was raised");

    let found = system.graphql_as(&dana_user, TODAY, json!({})).await["data"]["today"].clone();
    assert_eq!(found["csmName"], "Dana");
    let items = found["items"].as_array().unwrap();
    let row = |kind: &str, customer: Value| {
        items
            .iter()
            .find(|i| i["kind"] == kind && i["customerName"] == customer)
            .unwrap_or_else(|| panic!("{kind} for {customer}: {items:?}"))
            .clone()
    };
    assert_eq!(
        row("OVERDUE_TASK", json!("Beta"))["reason"],
        format!(
            "high priority task, overdue by 2 days (due {})",
            today - Duration::days(2)
        )
    );
    assert_eq!(
        row("TASK_DUE_TODAY", json!("Acme"))["reason"],
        "high priority task, due today"
    );
    assert_eq!(
        row("RENEWAL", json!("Beta"))["reason"],
        format!("Renews on {renewal}, in 20 days")
    );
    let touch = row("NEXT_TOUCH", json!("Acme"))["reason"].as_str().unwrap().to_owned();
    assert!(
        touch.starts_with("Contact overdue by ")
            && touch.contains("no contact since onboarding; the tier asks for one at least every "),
        "{touch}"
    );
    // Each new alert of the account is an item of its own.
    assert!(
        items.iter().any(|i| i["kind"] == "ALERT"
            && i["reason"].as_str().unwrap().starts_with(&format!(
                "Acme: health turned red (30) (raised {today}, not yet acknowledged)"
            ))),
        "{items:?}"
    );
    assert_eq!(
        row("REMINDER", Value::Null)["reason"]
            .as_str()
            .unwrap()
            .split(" on ")
            .next(),
        Some("You asked to be reminded")
    );
    // Beta's contact is not due; nothing of Omar's is here.
    assert!(!items
        .iter()
        .any(|i| i["kind"] == "NEXT_TOUCH" && i["customerName"] == "Beta"));
    assert!(!items.iter().any(|i| i["customerName"] == "Gamma"));
    assert_eq!(found["totalCount"], items.len());
    // Ranked: the red account's items first, then Beta's, then what is about no account.
    let order: Vec<Value> = items.iter().map(|i| i["customerName"].clone()).collect();
    let first_beta = order.iter().position(|n| n == "Beta").unwrap();
    assert!(order[..first_beta].iter().all(|n| n == "Acme"), "{order:?}");
    assert_eq!(order.last(), Some(&Value::Null), "{order:?}");
    assert_eq!(items[0]["riskBand"], "WATCH", "{items:?}");
    assert!(
        !items
            .iter()
            .any(|i| i["reason"].as_str().unwrap().contains("is within 30 days")),
        "{items:?}"
    );

    // A user who has not said which CSM they are gets only their own; partners get nothing.
    let sam = token(events::metadata::Role::Csm, "sam", None);
    let theirs = system.graphql_as(&sam, TODAY, json!({})).await;
    assert_eq!(theirs["data"]["today"]["totalCount"], 0, "{theirs}");
    assert_eq!(theirs["data"]["today"]["csmName"], Value::Null);
    let partner = token(events::metadata::Role::Partner, "p", Some(uuid::Uuid::now_v7()));
    let refused = system.graphql_as(&partner, TODAY, json!({})).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
}
