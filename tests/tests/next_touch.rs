//! Next touches (docs/DOMAIN.md, "Next touch"): each account's next contact due, the earlier of
//! a meeting on a calendar and the last contact plus its tier's maximum days between contacts,
//! as the 360 reads it and as the customer list filters and orders by it, under the rules in
//! force. Days are counted from today, so nothing here depends on the date it runs.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tests::TestSystem;

const TOUCH: &str = "query($id: UUID!) { customer(id: $id) { nextTouch { due basis daysUntil overdue lastContactDate
    maxDaysBetweenContact cadenceDue meeting { subject } } } }";

#[tokio::test]
async fn the_next_touch_is_the_earlier_of_a_meeting_and_the_cadence_and_lists_filter_by_it() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    let today = Utc::now().date_naive();
    let days = |n: i64| today + Duration::days(n);
    let onboarded = Utc::now() - Duration::days(90);
    let acme = system.onboard("Acme", "Enterprise", "300000", dana, onboarded).await;
    let beta = system.onboard("Beta", "SMB", "9000", dana, onboarded).await;
    let gamma = system.onboard("Gamma", "MidMarket", "40000", dana, onboarded).await;
    let delta = system.onboard("Delta", "SMB", "5000", dana, onboarded).await;
    let echo = system.onboard("Echo", "Enterprise", "120000", dana, onboarded).await;
    system.log_activity(acme, "email", days(-20), &[]).await;
    // A note is not a contact.
    system.log_activity(acme, "note", days(-1), &[]).await;
    system.log_activity(beta, "call", days(-25), &[]).await;
    system.log_activity(gamma, "email", days(-2), &[]).await;
    system.log_activity(echo, "email", days(-10), &[]).await;
    // A meeting on Dana's calendar with Echo in two days (as the calendar connectors keep it).
    let starts = Utc::now() + Duration::days(2);
    sqlx::query(
        "INSERT INTO scheduled_touches (connector, source_id, customer_id, subject, starts_at, ends_at, direction, mailbox)
         VALUES ('microsoft365', 'evt-1', $1, 'Quarterly review', $2, $3, 'outbound', 'dana@example.com')",
    )
    .bind(echo)
    .bind(starts)
    .bind(starts + Duration::hours(1))
    .execute(&system.pool)
    .await
    .unwrap();
    system.caught_up().await;

    let touch = |id| {
        let system = &system;
        async move { system.graphql(TOUCH, json!({"id": id})).await["customer"]["nextTouch"].clone() }
    };
    assert_eq!(
        touch(acme).await,
        json!({"due": days(-6), "basis": "CADENCE", "daysUntil": -6, "overdue": true, "lastContactDate": days(-20),
               "maxDaysBetweenContact": 14, "cadenceDue": days(-6), "meeting": null})
    );
    assert_eq!(touch(beta).await["due"], json!(days(5)));
    assert_eq!(touch(gamma).await["due"], json!(days(19)));
    // Never contacted: the cadence counts from onboarding.
    let never = touch(delta).await;
    assert_eq!(never["due"], json!((onboarded + Duration::days(30)).date_naive()));
    assert_eq!(never["lastContactDate"], Value::Null);
    assert_eq!(
        touch(echo).await,
        json!({"due": starts.date_naive(), "basis": "MEETING", "daysUntil": (starts.date_naive() - today).num_days(),
               "overdue": false, "lastContactDate": days(-10), "maxDaysBetweenContact": 14, "cadenceDue": days(4),
               "meeting": {"subject": "Quarterly review"}})
    );

    let listed = |window: &'static str| {
        let system = &system;
        async move {
            let data = system
                .graphql(
                    "query($w: NextTouchWindow) { customers(filter: {nextTouch: $w}, sort: NEXT_TOUCH) { totalCount nodes { name } } }",
                    json!({"w": window}),
                )
                .await;
            let names: Vec<String> = data["customers"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|node| node["name"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(data["customers"]["totalCount"], names.len());
            names
        }
    };
    assert_eq!(listed("OVERDUE").await, ["Delta", "Acme"]);
    assert_eq!(listed("NEXT_7_DAYS").await, ["Echo", "Beta"]);
    assert_eq!(listed("NEXT_30_DAYS").await, ["Echo", "Beta", "Gamma"]);

    // Under a looser enterprise standard (25 days), Acme is due in 5 days instead.
    let standards = system
        .graphql(
            "{ rules { standards { tier expectedTouchesPerMonth minMeetingsPerQuarter stakeholderBreadth } } }",
            json!({}),
        )
        .await;
    let enterprise = &standards["rules"]["standards"][0];
    let (status, answer) = system
        .send(
            Method::PUT,
            "/api/v1/rules/coverage-standards",
            Some(&json!({"tier": "Enterprise", "max_days_between_contact": 25,
                "expected_touches_per_month": enterprise["expectedTouchesPerMonth"],
                "min_meetings_per_quarter": enterprise["minMeetingsPerQuarter"],
                "stakeholder_breadth": enterprise["stakeholderBreadth"]})),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    system.caught_up().await;
    assert_eq!(touch(acme).await["due"], json!(days(5)));
    assert_eq!(listed("OVERDUE").await, ["Delta"]);
    assert_eq!(listed("NEXT_7_DAYS").await, ["Echo", "Acme", "Beta"]);
}
