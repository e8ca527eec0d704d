//! Custom fields end to end: definitions as events, values validated against them, role rules
//! on seeing and setting, the all-or-nothing bulk edit, filters and sorts of the customers list,
//! and values as known at an earlier instant.

use chrono::{Duration, Utc};
use events::metadata::Role;
use reqwest::Method;
use serde_json::{json, Value};
use tests::{token, TestSystem};
use uuid::Uuid;

async fn define(system: &TestSystem, definition: Value) {
    let (status, answer) = system.post("/api/v1/custom-fields", &definition).await;
    assert_eq!(status, 201, "{answer}");
}

async fn set(system: &TestSystem, as_token: &str, customer: Uuid, values: Value) -> (u16, Value) {
    let (status, answer) = system
        .send_as(
            as_token,
            Method::PUT,
            &format!("/api/v1/customers/{customer}/custom-fields"),
            Some(&json!({ "values": values })),
        )
        .await;
    (status.as_u16(), answer)
}

async fn event_count(system: &TestSystem) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn custom_fields_are_typed_role_aware_filterable_and_known_as_of_any_instant() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana").await;
    let since = Utc::now() - Duration::days(30);
    let acme = system.onboard("Acme", "Enterprise", "300000", csm, since).await;
    let beta = system.onboard("Beta", "SMB", "9000", csm, since).await;
    let gamma = system.onboard("Gamma", "SMB", "12000", csm, since).await;

    define(
        &system,
        json!({"key": "plan", "label": "Plan", "section": "Contract", "field_type": "single_select",
        "options": ["self_serve", "managed"], "default": "self_serve"}),
    )
    .await;
    define(
        &system,
        json!({"key": "account_team", "label": "Account team", "section": "Contract",
        "field_type": "text", "required": true, "condition": {"field": "plan", "equals": "managed"}}),
    )
    .await;
    define(
        &system,
        json!({"key": "budget", "label": "Budget", "field_type": "currency"}),
    )
    .await;
    define(
        &system,
        json!({"key": "regions", "label": "Regions", "field_type": "multi_select",
        "options": ["EMEA", "APAC", "AMER"]}),
    )
    .await;
    // Only management sees or sets the discount.
    define(
        &system,
        json!({"key": "discount", "label": "Discount", "field_type": "percent",
        "visible_to": ["admin", "manager"], "editable_by": ["manager"]}),
    )
    .await;
    let (status, answer) = system
        .post(
            "/api/v1/custom-fields",
            &json!({"key": "plan", "label": "Again", "field_type": "text"}),
        )
        .await;
    assert_eq!((status.as_u16(), answer["error"].as_str()), (422, Some("field_exists")));

    let admin = system.admin.clone();
    let csm_token = token(Role::Csm, "casey", None);
    let before = event_count(&system).await;
    // Bad values are refused naming the field key, and append nothing.
    for (values, code, field) in [
        (json!({"budget": "12.345"}), "invalid_value", "budget"),
        (json!({"plan": "enterprise"}), "invalid_option", "plan"),
        (json!({"plan": "managed"}), "required", "account_team"),
        (json!({"account_team": "Ops"}), "condition_not_met", "account_team"),
        (json!({"nope": 1}), "unknown_field", "nope"),
    ] {
        let (status, answer) = set(&system, &admin, acme, values.clone()).await;
        assert_eq!(status, 422, "{values}: {answer}");
        assert_eq!(answer["error"], code, "{values}: {answer}");
        assert!(answer["fields"].get(field).is_some(), "{values}: {answer}");
    }
    // A CSM may not set the discount: 403, nothing appended.
    let (status, answer) = set(&system, &csm_token, acme, json!({"discount": 10})).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(event_count(&system).await, before);

    let before_values = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, answer) = set(
        &system,
        &csm_token,
        acme,
        json!({"plan": "managed", "account_team": " Strategic ", "budget": "1200.5", "regions": ["EMEA", "APAC"]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let manager = token(Role::Manager, "morgan", None);
    assert_eq!(set(&system, &manager, acme, json!({"discount": 12.5})).await.0, 200);
    assert_eq!(
        set(&system, &admin, beta, json!({"budget": 300, "regions": ["AMER"]}))
            .await
            .0,
        200
    );

    // Bulk: all or nothing. One customer that cannot take the value refuses the whole edit.
    let before = event_count(&system).await;
    let (status, answer) = system
        .post(
            "/api/v1/custom-fields/account_team/bulk",
            &json!({"customer_ids": [acme, beta], "value": "Pod 7"}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"], "condition_not_met");
    assert!(
        answer["fields"].get("customer_ids[1].account_team").is_some(),
        "{answer}"
    );
    assert_eq!(event_count(&system).await, before);
    let (status, answer) = system
        .post(
            "/api/v1/custom-fields/budget/bulk",
            &json!({"customer_ids": [beta, gamma], "value": "450.00"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["changed"], 2);
    assert_eq!(event_count(&system).await, before + 2);
    system.caught_up().await;

    let fields = "customFields { key section value display isDefault }";
    let view = system
        .graphql(
            &format!("query($id: UUID!) {{ customer(id: $id) {{ {fields} }} }}"),
            json!({"id": acme}),
        )
        .await;
    assert_eq!(
        view["customer"]["customFields"],
        json!([
            {"key": "plan", "section": "Contract", "value": "managed", "display": "managed", "isDefault": false},
            {"key": "account_team", "section": "Contract", "value": "Strategic", "display": "Strategic", "isDefault": false},
            {"key": "budget", "section": "General", "value": "1200.5", "display": "1200.5", "isDefault": false},
            {"key": "regions", "section": "General", "value": ["EMEA", "APAC"], "display": "EMEA, APAC", "isDefault": false},
            {"key": "discount", "section": "General", "value": 12.5, "display": "12.5", "isDefault": false},
        ])
    );
    // The CSM sees neither the discount's value nor its definition.
    let as_csm = system
        .graphql_as(
            &csm_token,
            &format!(
                "query($id: UUID!) {{ customer(id: $id) {{ {fields} }} customFieldDefinitions {{ key editable }} }}"
            ),
            json!({"id": acme}),
        )
        .await;
    let keys: Vec<&str> = as_csm["data"]["customer"]["customFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["plan", "account_team", "budget", "regions"]);
    assert!(!as_csm.to_string().contains("discount"), "{as_csm}");
    let refused = system
        .graphql_as(
            &csm_token,
            "{ customers(customField: {key: \"discount\", min: 1}) { edges { node { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );

    // Filters and sorts.
    let names = |answer: &Value| -> Vec<String> {
        answer["customers"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| edge["node"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = |arguments: &str| format!("{{ customers({arguments}) {{ edges {{ node {{ name }} }} }} }}");
    for (arguments, expected) in [
        (
            r#"customField: {key: "plan", equals: "self_serve"}"#,
            vec!["Beta", "Gamma"],
        ),
        (
            r#"customField: {key: "regions", oneOf: ["APAC", "AMER"]}"#,
            vec!["Acme", "Beta"],
        ),
        (r#"customField: {key: "regions", equals: "EMEA"}"#, vec!["Acme"]),
        (
            r#"customField: {key: "budget", min: "400", max: "1200.50"}"#,
            vec!["Acme", "Beta", "Gamma"],
        ),
        (r#"customField: {key: "budget", min: 500}"#, vec!["Acme"]),
        (r#"customField: {key: "account_team", contains: "strat"}"#, vec!["Acme"]),
        (
            r#"sortByCustomField: {key: "budget", descending: true}"#,
            vec!["Acme", "Gamma", "Beta"],
        ),
        (
            r#"sortByCustomField: {key: "account_team"}"#,
            vec!["Beta", "Gamma", "Acme"],
        ),
    ] {
        let answer = system.graphql(&list(arguments), json!({})).await;
        assert_eq!(names(&answer), expected, "{arguments}");
    }
    // Pages of a custom-field sort are stable.
    let first = system
        .graphql(
            "{ customers(first: 2, sortByCustomField: {key: \"budget\"}) { edges { node { name } } pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(names(&first), ["Beta", "Gamma"]);
    let cursor = first["customers"]["pageInfo"]["endCursor"].clone();
    let rest = system
        .graphql(
            "query($after: String) { customers(first: 2, after: $after, sortByCustomField: {key: \"budget\"}) { edges { node { name } } } }",
            json!({"after": cursor}),
        )
        .await;
    assert_eq!(names(&rest), ["Acme"]);

    // What was known before the values were set: only the default.
    let known = system
        .graphql(
            "query($id: UUID!, $at: DateTime!) { customerAsOf(customerId: $id, knownAt: $at) { customFields { key value isDefault } } }",
            json!({"id": acme, "at": before_values}),
        )
        .await;
    assert_eq!(
        known["customerAsOf"]["customFields"],
        json!([
            {"key": "plan", "value": "self_serve", "isDefault": true},
            {"key": "budget", "value": null, "isDefault": false},
            {"key": "regions", "value": null, "isDefault": false},
            {"key": "discount", "value": null, "isDefault": false},
        ])
    );

    // Retiring hides the field and refuses new values; its history stays.
    let (status, answer) = system
        .send(Method::POST, "/api/v1/custom-fields/budget/retire", Some(&json!({})))
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = set(&system, &admin, acme, json!({"budget": 1})).await;
    assert_eq!((status, answer["error"].as_str()), (422, Some("field_retired")));
    system.stop().await;
}

#[tokio::test]
async fn a_snapshot_holds_each_definition_once_as_the_stream_replayed_would() {
    let system = TestSystem::spawn().await.unwrap();
    // The 50th event of the stream is the one a snapshot is taken at.
    for n in 1..=50 {
        define(
            &system,
            json!({"key": format!("f{n}"), "label": format!("Field {n}"), "field_type": "text"}),
        )
        .await;
    }
    let (sequence, fields): (i64, Vec<String>) = sqlx::query_as(
        "SELECT last_sequence, ARRAY(SELECT f ->> 'key' FROM jsonb_array_elements(payload -> 'definitions' -> 'fields') f)
           FROM snapshots WHERE aggregate_type = 'CustomFields'",
    )
    .fetch_one(&system.pool)
    .await
    .unwrap();
    assert_eq!(sequence, 50);
    assert_eq!(fields, (1..=50).map(|n| format!("f{n}")).collect::<Vec<_>>());

    // Decided on that snapshot: once retired, the field can be neither changed nor retired again.
    let empty = json!({});
    let retire = || system.send(Method::POST, "/api/v1/custom-fields/f50/retire", Some(&empty));
    let (status, answer) = retire().await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = system
        .send(
            Method::PUT,
            "/api/v1/custom-fields/f50",
            Some(&json!({"key": "f50", "label": "Back", "field_type": "text"})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (404, Some("custom_field_not_found")),
        "{answer}"
    );
    let (status, answer) = retire().await;
    assert_eq!(
        (status.as_u16(), answer["error"].as_str()),
        (404, Some("custom_field_not_found")),
        "{answer}"
    );
    system.stop().await;
}
