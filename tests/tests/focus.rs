//! "My focus" (docs/WEB.md): each user pins the accounts they keep in view, reads them back at
//! once as a filter of the customer list and on the customer, pins only what they see, and at
//! most 200.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::json;
use tests::{token, uuid, TestSystem};

const LIST: &str =
    "query($pinned: Boolean) { customers(filter: {pinned: $pinned}) { totalCount nodes { name pinned } } }";

#[tokio::test]
async fn each_user_pins_their_own_focus_and_lists_it() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    let onboarded = Utc::now() - Duration::days(30);
    let acme = system.onboard("Acme", "Enterprise", "300000", dana, onboarded).await;
    let beta = system.onboard("Beta", "SMB", "9000", dana, onboarded).await;
    system.onboard("Gamma", "SMB", "9000", dana, onboarded).await;
    system.caught_up().await;

    for _ in 0..2 {
        // Pinning twice changes nothing.
        let (status, answer) = system
            .send(Method::PUT, &format!("/api/v1/customers/{acme}/focus"), None)
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer, json!({"customer_id": acme, "pinned": true}));
    }
    let (status, _) = system
        .send(Method::PUT, &format!("/api/v1/customers/{beta}/focus"), None)
        .await;
    assert_eq!(status, 200);
    // Read back at once: pins are the user's own rows, not projected.
    let mine = system.graphql(LIST, json!({"pinned": true})).await;
    assert_eq!(
        mine["customers"],
        json!({"totalCount": 2, "nodes": [{"name": "Acme", "pinned": true}, {"name": "Beta", "pinned": true}]})
    );
    let rest = system.graphql(LIST, json!({"pinned": false})).await;
    assert_eq!(rest["customers"]["nodes"], json!([{"name": "Gamma", "pinned": false}]));

    // Another user's focus is their own.
    let other = token(events::metadata::Role::Csm, "sam", None);
    let theirs = system.graphql_as(&other, LIST, json!({"pinned": true})).await;
    assert_eq!(theirs["data"]["customers"]["totalCount"], 0);
    let listed = system.graphql_as(&other, LIST, json!({})).await;
    assert!(listed["data"]["customers"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["pinned"] == false));

    let (status, answer) = system
        .send(Method::DELETE, &format!("/api/v1/customers/{acme}/focus"), None)
        .await;
    assert_eq!((status.as_u16(), answer["pinned"].clone()), (200, json!(false)));
    let mine = system.graphql(LIST, json!({"pinned": true})).await;
    assert_eq!(mine["customers"]["nodes"], json!([{"name": "Beta", "pinned": true}]));

    // Only customers the caller sees: unknown ones and, for a partner, others' are not found.
    let (status, answer) = system
        .send(
            Method::PUT,
            &format!("/api/v1/customers/{}/focus", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].clone()),
        (404, json!("customer_not_found"))
    );
    let partner = uuid(&system.post_ok("/api/v1/partners", &json!({"name": "Northwind"})).await["partner_id"]);
    system
        .post_ok(
            &format!("/api/v1/customers/{acme}/partners"),
            &json!({"partner_id": partner}),
        )
        .await;
    system.caught_up().await;
    let pat = token(events::metadata::Role::Partner, "pat", Some(partner));
    let (status, _) = system
        .send_as(&pat, Method::PUT, &format!("/api/v1/customers/{beta}/focus"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = system
        .send_as(&pat, Method::PUT, &format!("/api/v1/customers/{acme}/focus"), None)
        .await;
    assert_eq!(status, 200);
    let theirs = system.graphql_as(&pat, LIST, json!({"pinned": true})).await;
    assert_eq!(
        theirs["data"]["customers"]["nodes"],
        json!([{"name": "Acme", "pinned": true}])
    );

    // At most 200 pins a user; a pin already made still answers.
    sqlx::query("INSERT INTO focus_pins (user_id, customer_id) SELECT 'test-admin', gen_random_uuid() FROM generate_series(1, 199)")
        .execute(&system.pool)
        .await
        .unwrap();
    let (status, answer) = system
        .send(Method::PUT, &format!("/api/v1/customers/{acme}/focus"), None)
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].clone()),
        (409, json!("too_many_pins")),
        "{answer}"
    );
    let (status, _) = system
        .send(Method::PUT, &format!("/api/v1/customers/{beta}/focus"), None)
        .await;
    assert_eq!(status, 200);
}
