//! The OpenAPI document is no looser than the server: at each documented bound of the numbers
//! probed here, the bound itself is accepted and one past it refused with 422 naming the field;
//! and a text one character past its documented `maxLength` is refused.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::TestSystem;

fn schema(name: &str) -> Value {
    let document: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/openapi.json")).unwrap(),
    )
    .unwrap();
    document["components"]["schemas"][name].clone()
}

#[tokio::test]
async fn documented_bounds_are_the_bounds_the_server_enforces() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Olga OpenAPI").await;
    let customer = system
        .onboard("Bounds Co", "SMB", "1000", csm, Utc::now() - Duration::days(10))
        .await;

    let capacity = &schema("ChangeCapacity")["properties"]["monthly_capacity_hours"];
    let (min, max) = (
        capacity["minimum"].as_i64().unwrap(),
        capacity["maximum"].as_i64().unwrap(),
    );
    assert_eq!((min, max), (1, 744));
    for (hours, ok) in [(min - 1, false), (min, true), (max, true), (max + 1, false)] {
        let (status, body) = system
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/csms/{csm}/capacity"),
                Some(&json!({"monthly_capacity_hours": hours})),
            )
            .await;
        if ok {
            assert!(status.is_success(), "{hours}: {status} {body}");
        } else {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{hours}: {body}");
            assert!(body["fields"]["monthly_capacity_hours"].is_string(), "{body}");
        }
    }

    let nps = &schema("RecordNps")["properties"]["score"];
    let (min, max) = (nps["minimum"].as_i64().unwrap(), nps["maximum"].as_i64().unwrap());
    assert_eq!((min, max), (0, 10));
    for (score, ok) in [(min, true), (max, true), (max + 1, false)] {
        let (status, body) = system
            .post(&format!("/api/v1/customers/{customer}/nps"), &json!({"score": score}))
            .await;
        if ok {
            assert!(status.is_success(), "{score}: {status} {body}");
        } else {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{score}: {body}");
            assert!(body["fields"]["score"].is_string(), "{body}");
        }
    }

    let health = &schema("RecordHealthScore")["properties"]["score"];
    assert_eq!(
        (health["minimum"].as_f64(), health["maximum"].as_f64()),
        (Some(0.0), Some(100.0))
    );

    // Texts: one past the documented length is refused, naming the field.
    let subject_max = schema("LogActivity")["properties"]["subject"]["maxLength"]
        .as_u64()
        .unwrap() as usize;
    let activity = |subject: String| json!({"kind": "email", "direction": "outbound", "occurred_at": Utc::now(), "subject": subject});
    let (status, _) = system
        .post(
            &format!("/api/v1/customers/{customer}/activities"),
            &activity("s".repeat(subject_max)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = system
        .post(
            &format!("/api/v1/customers/{customer}/activities"),
            &activity("s".repeat(subject_max + 1)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["fields"]["subject"].is_string(), "{body}");
    let name_max = schema("RegisterCsm")["properties"]["name"]["maxLength"]
        .as_u64()
        .unwrap() as usize;
    let (status, body) = system
        .post(
            "/api/v1/csms",
            &json!({"name": "n".repeat(name_max + 1), "email": "long@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["fields"]["name"].is_string(), "{body}");
    system.stop().await;
}
