//! Bulk account actions with a preview (docs/DOMAIN.md, "Bulk account actions"): the preview
//! shows each account's value now and after and whether it changes, and appends nothing; the
//! action changes every account or none, leaves out those that already have it, and is refused
//! for a role that may not issue the command.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tests::{token, uuid, TestSystem};

async fn events(system: &TestSystem) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap()
}

fn rows(answer: &Value) -> Vec<(String, String, String, bool)> {
    answer["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["before"].as_str().unwrap().to_owned(),
                a["after"].as_str().unwrap().to_owned(),
                a["changes"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn row(name: &str, before: &str, after: &str, changes: bool) -> (String, String, String, bool) {
    (name.into(), before.into(), after.into(), changes)
}

#[tokio::test]
async fn a_bulk_action_is_previewed_then_applied_to_every_account_or_none() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    let omar = system.register_csm("Omar").await;
    let onboarded = Utc::now() - Duration::days(30);
    let acme = system.onboard("Acme", "Enterprise", "300000", dana, onboarded).await;
    let beta = system.onboard("Beta", "SMB", "9000", omar, onboarded).await;
    let gamma = system.onboard("Gamma", "SMB", "9000", dana, onboarded).await;
    system
        .record_health(beta, 80.0, Utc::now().date_naive() - Duration::days(1))
        .await;
    let partner = uuid(&system.post_ok("/api/v1/partners", &json!({"name": "Northwind"})).await["partner_id"]);
    system.caught_up().await;
    let ids = json!([acme, beta, gamma]);

    let health = json!({"customer_ids": ids, "action": {"record_health": {"score": 45, "reason": "QBR read-out"}}});
    let stored = events(&system).await;
    let preview = system.post_ok("/api/v1/customers/bulk/preview", &health).await;
    assert_eq!(
        rows(&preview),
        vec![
            row("Acme", "no score", "45", true),
            row("Beta", "80", "45", true),
            row("Gamma", "no score", "45", true)
        ]
    );
    assert_eq!(
        (preview["changing"].clone(), preview["unchanged"].clone()),
        (json!(3), json!(0))
    );
    assert_eq!(events(&system).await, stored, "a preview appends nothing");
    let applied = system.post_ok("/api/v1/customers/bulk", &health).await;
    assert_eq!(applied, json!({"customers": 3, "changed": 3}));
    system.caught_up().await;
    let scores = system
        .graphql(
            "{ customers(first: 10) { nodes { name health { score } } } }",
            json!({}),
        )
        .await;
    for node in scores["customers"]["nodes"].as_array().unwrap() {
        assert_eq!(node["health"], json!({"score": 45.0}), "{node}");
    }

    // Handing all three to Omar: Beta is his already and is left out.
    let reassign =
        json!({"customer_ids": ids, "action": {"assign_csm": {"csm_id": omar, "reason": "territory change"}}});
    let preview = system.post_ok("/api/v1/customers/bulk/preview", &reassign).await;
    assert_eq!(
        rows(&preview),
        vec![
            row("Acme", "Dana", "Omar", true),
            row("Beta", "Omar", "Omar", false),
            row("Gamma", "Dana", "Omar", true)
        ]
    );
    // A CSM may record health scores but not hand accounts over.
    let csm = token(events::metadata::Role::Csm, "dana", None);
    let (status, _) = system
        .send_as(&csm, Method::POST, "/api/v1/customers/bulk", Some(&reassign))
        .await;
    assert_eq!(status, 403);
    // One account that does not exist: nothing changes for the others either.
    let stored = events(&system).await;
    let (status, answer) = system
        .post(
            "/api/v1/customers/bulk",
            &json!({"customer_ids": [acme, uuid::Uuid::now_v7()], "action": {"assign_partner": {"partner_id": partner}}}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].clone()),
        (404, json!("customer_not_found"))
    );
    assert_eq!(events(&system).await, stored);
    let applied = system.post_ok("/api/v1/customers/bulk", &reassign).await;
    assert_eq!(applied, json!({"customers": 3, "changed": 2}));
    let partnered = json!({"customer_ids": ids, "action": {"assign_partner": {"partner_id": partner}}});
    system.post_ok("/api/v1/customers/bulk", &partnered).await;
    system.caught_up().await;
    let again = system.post_ok("/api/v1/customers/bulk/preview", &partnered).await;
    assert_eq!(
        rows(&again),
        vec![
            row("Acme", "Northwind", "with Northwind", false),
            row("Beta", "Northwind", "with Northwind", false),
            row("Gamma", "Northwind", "with Northwind", false)
        ]
    );
    let (status, answer) = system
        .post(
            "/api/v1/customers/bulk",
            &json!({"customer_ids": [], "action": {"assign_partner": {"partner_id": partner}}}),
        )
        .await;
    assert_eq!((status.as_u16(), answer["error"].clone()), (422, json!("out_of_range")));

    // A custom field from the same dialog: checked against its definition, unchanged ones left out.
    let (status, answer) = system
        .post(
            "/api/v1/custom-fields",
            &json!({"key": "segment", "label": "Segment", "field_type": "single_select", "options": ["Grow", "Maintain"]}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let segment =
        json!({"customer_ids": [acme, beta], "action": {"set_custom_field": {"key": "segment", "value": "Grow"}}});
    system
        .post_ok(
            "/api/v1/customers/bulk",
            &json!({"customer_ids": [beta], "action": {"set_custom_field": {"key": "segment", "value": "Grow"}}}),
        )
        .await;
    system.caught_up().await;
    let preview = system.post_ok("/api/v1/customers/bulk/preview", &segment).await;
    assert_eq!(
        rows(&preview),
        vec![row("Acme", "empty", "Grow", true), row("Beta", "Grow", "Grow", false)]
    );
    let (status, answer) = system
        .post(
            "/api/v1/customers/bulk",
            &json!({"customer_ids": [acme, beta], "action": {"set_custom_field": {"key": "segment", "value": "Shrink"}}}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].clone()),
        (422, json!("invalid_option")),
        "{answer}"
    );
    assert_eq!(
        system.post_ok("/api/v1/customers/bulk", &segment).await,
        json!({"customers": 2, "changed": 1})
    );
}

#[tokio::test]
async fn tags_go_on_and_off_one_account_or_many_and_the_list_filters_by_them() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    let onboarded = Utc::now() - Duration::days(30);
    let acme = system.onboard("Acme", "Enterprise", "300000", dana, onboarded).await;
    let beta = system.onboard("Beta", "SMB", "9000", dana, onboarded).await;
    let gamma = system.onboard("Gamma", "SMB", "9000", dana, onboarded).await;
    system.caught_up().await;
    let csm = tests::token(events::metadata::Role::Csm, "dana", None);
    let (status, answer) = system
        .send_as(
            &csm,
            reqwest::Method::POST,
            &format!("/api/v1/customers/{acme}/tags"),
            Some(&json!({"tag": "Beta program"})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    // The same tag in other letters is the same tag.
    let (status, answer) = system
        .post(
            &format!("/api/v1/customers/{acme}/tags"),
            &json!({"tag": "beta PROGRAM"}),
        )
        .await;
    assert_eq!((status.as_u16(), answer["error"].clone()), (422, json!("tag_present")));
    system.caught_up().await;

    let add = json!({"customer_ids": [acme, beta], "action": {"add_tag": {"tag": "beta program"}}});
    let preview = system.post_ok("/api/v1/customers/bulk/preview", &add).await;
    assert_eq!(
        rows(&preview),
        vec![
            row("Acme", "Beta program", "with beta program", false),
            row("Beta", "no tags", "with beta program", true)
        ]
    );
    assert_eq!(
        system.post_ok("/api/v1/customers/bulk", &add).await,
        json!({"customers": 2, "changed": 1})
    );
    system.caught_up().await;
    let tagged = |tag: &str| {
        let tag = tag.to_owned();
        let system = &system;
        async move {
            let data = system
                .graphql(
                    "query($t: String) { customers(filter: {tag: $t}, first: 50) { totalCount nodes { name tags } } }",
                    json!({"t": tag}),
                )
                .await;
            data["customers"].clone()
        }
    };
    assert_eq!(
        tagged("BETA program").await,
        json!({"totalCount": 2, "nodes": [{"name": "Acme", "tags": ["Beta program"]}, {"name": "Beta", "tags": ["beta program"]}]})
    );
    let remove = json!({"customer_ids": [acme, gamma], "action": {"remove_tag": {"tag": "Beta Program", "reason": "left the program"}}});
    assert_eq!(
        system.post_ok("/api/v1/customers/bulk", &remove).await,
        json!({"customers": 2, "changed": 1})
    );
    system.caught_up().await;
    assert_eq!(
        tagged("beta program").await,
        json!({"totalCount": 1, "nodes": [{"name": "Beta", "tags": ["beta program"]}]})
    );
    // Partners do not see the team's tags, nor filter by them.
    let partner = uuid(&system.post_ok("/api/v1/partners", &json!({"name": "Northwind"})).await["partner_id"]);
    system
        .post_ok(
            &format!("/api/v1/customers/{beta}/partners"),
            &json!({"partner_id": partner}),
        )
        .await;
    system.caught_up().await;
    let partner_token = tests::token(events::metadata::Role::Partner, "pat", Some(partner));
    let theirs = system
        .graphql_as(
            &partner_token,
            "{ customers(first: 50) { nodes { name tags } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        theirs["data"]["customers"]["nodes"],
        json!([{"name": "Beta", "tags": []}])
    );
    let refused = system
        .graphql_as(
            &partner_token,
            "{ customers(filter: {tag: \"beta program\"}, first: 50) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        json!("FORBIDDEN"),
        "{refused}"
    );
}
