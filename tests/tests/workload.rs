//! CSM workload (docs/DOMAIN.md section 7) through HTTP and GraphQL, with hand-computed figures.

use chrono::{Days, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tests::{uuid, TestSystem};
use uuid::Uuid;

async fn onboard(system: &TestSystem, name: &str, tier: &str, csm: Uuid, renewal_in_days: u64) -> Uuid {
    let today = Utc::now().date_naive();
    let answer = system
        .post_ok(
            "/api/v1/customers",
            &json!({"name": name, "salesforce_id": "0015g00000AbCdEAAV", "tier": tier, "arr": "100000", "csm_id": csm,
                    "contract_start": today - Days::new(300), "renewal_date": today + Days::new(renewal_in_days),
                    "occurred_at": Utc::now() - chrono::Duration::days(300)}),
        )
        .await;
    uuid(&answer["customer_id"])
}

async fn task(system: &TestSystem, customer: Uuid, assignee: Uuid, due_in_days: i64) -> Uuid {
    let due = Utc::now().date_naive() + chrono::Duration::days(due_in_days);
    let answer = system
        .post_ok(
            &format!("/api/v1/customers/{customer}/tasks"),
            &json!({"title": "follow up", "kind": "follow_up", "priority": "medium", "assignee_id": assignee.to_string(), "due_date": due}),
        )
        .await;
    uuid(&answer["task_id"])
}

#[tokio::test]
async fn workload_counts_tasks_renewals_handoffs_and_suggests_a_rebalancing_move() {
    let system = TestSystem::spawn().await.unwrap();
    let a = uuid(
        &system
            .post_ok(
                "/api/v1/csms",
                &json!({"name": "Avery", "email": "avery@example.com", "monthly_capacity_hours": 20}),
            )
            .await["csm_id"],
    );
    let b = uuid(
        &system
            .post_ok("/api/v1/csms", &json!({"name": "Blake", "email": "blake@example.com"}))
            .await["csm_id"],
    );
    // Avery: 10 + 10 + 5 = 25 hours on 20 of capacity.
    let renewing_now = onboard(&system, "Enterprise renewing today", "Enterprise", a, 0).await;
    let renewing_later = onboard(&system, "Enterprise renewing in 90 days", "Enterprise", a, 90).await;
    let mid = onboard(&system, "MidMarket renewing in 91 days", "MidMarket", a, 91).await;
    // Blake: one SMB account, handed over from Avery five days ago and contacted since.
    let handed = onboard(&system, "SMB handed over", "SMB", a, 200).await;
    let (status, answer) = system
        .send(
            Method::PUT,
            &format!("/api/v1/customers/{handed}/csm"),
            Some(&json!({"csm_id": b, "reason": "rebalancing",
            "occurred_at": Utc::now() - chrono::Duration::days(5)})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    system
        .log_activity(handed, "call", Utc::now().date_naive() - Days::new(2), &[])
        .await;

    task(&system, renewing_now, a, -1).await;
    task(&system, renewing_now, a, 1).await;
    let done = task(&system, mid, a, -7).await;
    system
        .post_ok(
            &format!("/api/v1/customers/{mid}/tasks/{done}/complete"),
            &json!({"outcome": "done"}),
        )
        .await;
    system.caught_up().await;

    let data = workload(&system).await;
    let avery = data["csms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["csmId"] == json!(a))
        .unwrap()
        .clone();
    assert_eq!(avery["accounts"], 3);
    assert_eq!(
        (avery["openTasks"].clone(), avery["overdueTasks"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(
        avery["renewalsNext90Days"], 2,
        "renewals at 0 and at 90 days count, at 91 does not"
    );
    assert_eq!(
        (avery["hoursNeeded"].clone(), avery["capacityHours"].clone()),
        (json!(25.0), json!(20.0))
    );
    assert_eq!(avery["utilizationPct"], 125.0);
    let blake = data["csms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["csmId"] == json!(b))
        .unwrap()
        .clone();
    assert_eq!(
        (blake["accounts"].clone(), blake["utilizationPct"].clone()),
        (json!(1), json!(1.7))
    );

    assert_eq!(data["transitions"].as_array().unwrap().len(), 1);
    let transition = &data["transitions"][0];
    assert_eq!(transition["customerId"], json!(handed));
    assert_eq!(
        (transition["csmId"].clone(), transition["previousCsmId"].clone()),
        (json!(b), json!(a))
    );
    assert_eq!(transition["daysSinceHandoff"], 5);
    assert_eq!(transition["contactedSince"], true);

    // Mean utilization 63.3%: moving the Enterprise account renewing in 90 days brings both
    // CSMs closest to it; the one renewing today may not move.
    assert_eq!(
        data["rebalancing"],
        json!([{"customerId": renewing_later, "fromCsmId": a, "toCsmId": b, "fromUtilizationAfter": 75.0, "toUtilizationAfter": 10.0}])
    );
    assert_eq!(data["averageAccounts"], 2.0);
    system.stop().await;
}

async fn workload(system: &TestSystem) -> Value {
    system
        .graphql(
            "{ csmWorkload { averageAccounts portfolioBalancePct
                csms { csmId accounts openTasks overdueTasks renewalsNext90Days hoursNeeded capacityHours utilizationPct }
                transitions { customerId csmId previousCsmId daysSinceHandoff contactedSince }
                rebalancing { customerId fromCsmId toCsmId fromUtilizationAfter toUtilizationAfter } } }",
            json!({}),
        )
        .await["csmWorkload"]
        .clone()
}

/// Twenty accounts handed from one CSM to another in one command: each with its own handoff and
/// reason, all or none, and the workload follows.
#[tokio::test]
async fn twenty_accounts_reassigned_at_once_move_in_the_workload() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    let omar = system.register_csm("Omar").await;
    let mut accounts = Vec::new();
    for n in 0..20 {
        accounts.push(onboard(&system, &format!("Account {n:02}"), "SMB", dana, 200).await);
    }
    let kept = onboard(&system, "Kept", "SMB", omar, 200).await;
    system.caught_up().await;
    let books = || {
        let system = &system;
        async move {
            let data = system
                .graphql("{ csmWorkload { csms { name accounts } } }", json!({}))
                .await;
            data["csmWorkload"]["csms"].clone()
        }
    };
    // All or nothing: an unknown customer refuses the whole batch.
    let path = format!("/api/v1/csms/{omar}/customers");
    let mut with_stranger: Vec<Uuid> = accounts.clone();
    with_stranger.push(Uuid::now_v7());
    let (status, _) = system
        .send(
            Method::POST,
            &path,
            Some(&json!({"customer_ids": with_stranger, "reason": "rebalancing"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    system.caught_up().await;
    assert_eq!(books().await[0]["accounts"], 20, "nothing moved");

    let mut all = accounts.clone();
    all.push(kept);
    let (status, answer) = system
        .send(
            Method::POST,
            &path,
            Some(&json!({"customer_ids": all, "reason": "Dana moves to enterprise"})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    assert_eq!(answer["reassigned"], 20, "Kept was Omar's already: {answer}");
    let reasons: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT payload -> 'CsmAssigned' ->> 'reason' FROM events WHERE event_type = 'CsmAssigned'",
    )
    .fetch_all(&system.pool)
    .await
    .unwrap();
    assert_eq!(reasons, ["Dana moves to enterprise"]);
    system.caught_up().await;
    let after: Value = books().await;
    assert_eq!(after[0]["name"], "Dana");
    assert_eq!(after[0]["accounts"], 0);
    assert_eq!(after[1]["name"], "Omar");
    assert_eq!(after[1]["accounts"], 21);
}
