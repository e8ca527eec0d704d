//! What the settings screens and the renewal pipeline read and change, through the real APIs:
//! the rules in force and a what-if of workload hours, the CSM directory, the order of custom
//! fields, the connectors a service runs and "sync now", the deck template in use, and the
//! renewal pipeline by month and health colour.

use chrono::{Duration, Utc};
use events::metadata::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::{token, TestSystem};

const RULES: &str =
    "{ rules { version changedBy standards { tier maxDaysBetweenContact hoursPerMonth } weights { email recency } } }";

#[tokio::test]
async fn the_settings_read_what_they_change() {
    let system = TestSystem::spawn().await.unwrap();
    let manager = token(Role::Manager, "morgan", None);
    let csm_token = token(Role::Csm, "dana", None);

    // The rules in force: the defaults, then an admin's change, with who made it.
    let rules = system.graphql(RULES, json!({})).await;
    assert_eq!(rules["rules"]["version"], "0");
    assert_eq!(rules["rules"]["changedBy"], Value::Null);
    assert_eq!(
        rules["rules"]["standards"],
        json!([
            {"tier": "ENTERPRISE", "maxDaysBetweenContact": 14, "hoursPerMonth": 10.0},
            {"tier": "MID_MARKET", "maxDaysBetweenContact": 21, "hoursPerMonth": 5.0},
            {"tier": "SMB", "maxDaysBetweenContact": 30, "hoursPerMonth": 2.0},
        ])
    );
    let (status, _) = system
        .send(
            Method::PUT,
            "/api/v1/rules/workload-hours",
            Some(&json!({"tier": "SMB", "hours_per_month": 3.5})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let rules = system.graphql(RULES, json!({})).await;
    assert_ne!(rules["rules"]["version"], "0");
    assert_eq!(rules["rules"]["changedBy"], "test-admin");
    assert_eq!(rules["rules"]["standards"][2]["hoursPerMonth"], 3.5);

    // A what-if of workload hours changes the hours a book needs, and nothing is stored.
    let dana = system.register_csm("Dana").await;
    let since = Utc::now() - Duration::days(30);
    system.onboard("Acme", "Enterprise", "300000", dana, since).await;
    system.onboard("Beta", "SMB", "9000", dana, since).await;
    system.caught_up().await;
    let workload =
        "query($rules: RulesInput) { csmWorkload(rules: $rules) { rulesVersion csms { name hoursNeeded } } }";
    let now = system.graphql(workload, json!({"rules": null})).await;
    assert_eq!(now["csmWorkload"]["csms"][0]["hoursNeeded"], 13.5, "{now}");
    let what_if = system
        .graphql(
            workload,
            json!({"rules": {"hours": [{"tier": "ENTERPRISE", "hoursPerMonth": 20}]}}),
        )
        .await;
    assert_eq!(what_if["csmWorkload"]["csms"][0]["hoursNeeded"], 23.5);
    assert!(what_if["csmWorkload"]["rulesVersion"]
        .as_str()
        .unwrap()
        .starts_with("what-if:"));
    let refused = system
        .graphql_raw(
            workload,
            json!({"rules": {"hours": [{"tier": "SMB", "hoursPerMonth": 0}]}}),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["field"], "rules.hours[0]",
        "{refused}"
    );
    assert_eq!(
        system.graphql(RULES, json!({})).await,
        rules,
        "a what-if stores nothing"
    );

    // The CSM directory, for managers; not for partners.
    let csms = system
        .graphql_as(&manager, "{ csms { name email team monthlyCapacityHours } }", json!({}))
        .await;
    assert_eq!(
        csms["data"]["csms"],
        json!([{"name": "Dana", "email": "dana@example.com", "team": "", "monthlyCapacityHours": 120}])
    );
    let partner = token(Role::Partner, "pat", Some(uuid::Uuid::now_v7()));
    let hidden = system.graphql_as(&partner, "{ csms { name } }", json!({})).await;
    assert_eq!(hidden["errors"][0]["extensions"]["code"], "FORBIDDEN");

    // Custom fields in the order an admin sets; every key once, or refused.
    for key in ["segment", "region", "budget"] {
        system
            .post_ok(
                "/api/v1/custom-fields",
                &json!({"key": key, "label": key, "field_type": "text"}),
            )
            .await;
    }
    let admin = &system;
    let order = |keys: Value| async move {
        admin
            .send(
                Method::PUT,
                "/api/v1/custom-field-order",
                Some(&json!({ "keys": keys })),
            )
            .await
    };
    let (status, refusal) = order(json!(["budget", "segment"])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refusal["error"], "invalid_order", "{refusal}");
    let (status, refusal) = order(json!(["budget", "segment", "segment", "region"])).await;
    assert_eq!(
        (status, refusal["error"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_order"))
    );
    let (status, _) = order(json!(["budget", "segment", "region"])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = system
        .send_as(
            &manager,
            Method::PUT,
            "/api/v1/custom-field-order",
            Some(&json!({"keys": ["region", "segment", "budget"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only admins order fields");
    let keys = system.graphql("{ customFieldDefinitions { key } }", json!({})).await;
    assert_eq!(
        keys["customFieldDefinitions"],
        json!([{"key": "budget"}, {"key": "segment"}, {"key": "region"}])
    );

    // Connectors: none configured in a test system; each listed with the setting that turns it
    // on, and a sync of one that does not run here is refused.
    let (status, listed) = system.send_as(&manager, Method::GET, "/api/v1/connectors", None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<_> = listed["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["configured"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("salesforce", false),
            ("gainsight", false),
            ("microsoft365", false),
            ("google", false),
            ("targetprocess", false)
        ]
    );
    let (status, _) = system
        .send_as(&csm_token, Method::GET, "/api/v1/connectors", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, refusal) = system
        .send(Method::POST, "/api/v1/connectors/gainsight/sync", Some(&json!({})))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refusal["error"], "connector_not_configured", "{refusal}");
    let (status, _) = system
        .send(Method::POST, "/api/v1/connectors/nosuch/sync", Some(&json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The deck template in use: the built-in one until an admin uploads one.
    let (status, template) = system.send(Method::GET, "/api/v1/deck-template", None).await;
    assert_eq!((status, template), (StatusCode::OK, json!({"template": null})));
    let (status, _) = system
        .send_as(&manager, Method::GET, "/api/v1/deck-template", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    system.stop().await;
}

#[tokio::test]
async fn the_renewal_pipeline_counts_each_month_by_health() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    let since = Utc::now() - Duration::days(60);
    let onboard = |name: &'static str, arr: &'static str, renewal: &'static str| {
        let system = &system;
        async move {
            let answer = system
                .post_ok(
                    "/api/v1/customers",
                    &json!({"name": name, "salesforce_id": "0015g00000AbCdEAAV", "tier": "SMB", "arr": arr,
                            "csm_id": dana, "contract_start": since.date_naive(), "renewal_date": renewal,
                            "occurred_at": since}),
                )
                .await;
            tests::uuid(&answer["customer_id"])
        }
    };
    let acme = onboard("Acme", "100000", "2027-02-03").await;
    let beta = onboard("Beta", "20000.50", "2027-02-28").await;
    let gamma = onboard("Gamma", "5000", "2027-04-01").await;
    onboard("Delta", "7000", "2027-04-30").await;
    onboard("Later", "1", "2027-06-01").await;
    let day = Utc::now().date_naive() - Duration::days(1);
    system.record_health(acme, 82.0, day).await;
    system.record_health(beta, 40.0, day).await;
    system.record_health(gamma, 60.0, day).await;
    system.caught_up().await;
    let pipeline = system
        .graphql(
            "{ renewalPipeline(from: \"2027-02-01\", to: \"2027-04-30\") { month accounts arr colours { colour accounts arr } } }",
            json!({}),
        )
        .await;
    let slices = |green: (u64, &str), yellow: (u64, &str), red: (u64, &str), none: (u64, &str)| {
        json!([
            {"colour": "GREEN", "accounts": green.0, "arr": green.1},
            {"colour": "YELLOW", "accounts": yellow.0, "arr": yellow.1},
            {"colour": "RED", "accounts": red.0, "arr": red.1},
            {"colour": null, "accounts": none.0, "arr": none.1},
        ])
    };
    assert_eq!(
        pipeline["renewalPipeline"],
        json!([
            {"month": "2027-02", "accounts": 2, "arr": "120000.50",
             "colours": slices((1, "100000.00"), (0, "0.00"), (1, "20000.50"), (0, "0.00"))},
            {"month": "2027-03", "accounts": 0, "arr": "0.00",
             "colours": slices((0, "0.00"), (0, "0.00"), (0, "0.00"), (0, "0.00"))},
            {"month": "2027-04", "accounts": 2, "arr": "12000.00",
             "colours": slices((0, "0.00"), (1, "5000.00"), (0, "0.00"), (1, "7000.00"))},
        ])
    );
    // One CSM's book: the pipeline, the renewals, the summary and the at-risk report narrow to it.
    let omar = system.register_csm("Omar").await;
    let omega = system
        .post_ok(
            "/api/v1/customers",
            &json!({"name": "Omega", "salesforce_id": "0015g00000AbCdEAAV", "tier": "SMB", "arr": "500",
                    "csm_id": omar, "contract_start": since.date_naive(), "renewal_date": "2027-02-10",
                    "occurred_at": since}),
        )
        .await;
    system.caught_up().await;
    let books = system
        .graphql(
            "query($dana: UUID, $omar: UUID) {
               all: renewalPipeline(from: \"2027-02-01\", to: \"2027-02-28\") { accounts }
               dana: renewalPipeline(from: \"2027-02-01\", to: \"2027-02-28\", csmId: $dana) { accounts }
               omars: renewals(from: \"2027-01-01\", to: \"2027-12-31\", csmId: $omar) { nodes { name } }
               summary: executiveSummary(csmId: $omar) { current { customers totalArr } }
               danaAtRisk: atRiskReport(csmId: $dana) { total red yellow }
               omarAtRisk: atRiskReport(csmId: $omar) { total }
             }",
            json!({"dana": dana, "omar": omar}),
        )
        .await;
    assert_eq!(
        books,
        json!({
            "all": [{"accounts": 3}],
            "dana": [{"accounts": 2}],
            "omars": {"nodes": [{"name": "Omega"}]},
            "summary": {"current": {"customers": 1, "totalArr": "500.00"}},
            "danaAtRisk": {"total": 2, "red": 1, "yellow": 1},
            "omarAtRisk": {"total": 0},
        }),
        "{}",
        omega["customer_id"]
    );

    // A renewal row names its CSM and the last contact.
    system
        .log_activity(acme, "email", Utc::now().date_naive() - Duration::days(3), &[])
        .await;
    system.caught_up().await;
    let rows = system
        .graphql(
            "query($dana: UUID) { renewals(from: \"2027-02-01\", to: \"2027-02-28\", csmId: $dana) { nodes { name csmName lastContactDate healthColour } } }",
            json!({"dana": dana}),
        )
        .await;
    assert_eq!(
        rows["renewals"]["nodes"],
        json!([
            {"name": "Acme", "csmName": "Dana", "healthColour": "GREEN",
             "lastContactDate": (Utc::now().date_naive() - Duration::days(3)).to_string()},
            {"name": "Beta", "csmName": "Dana", "healthColour": "RED", "lastContactDate": null},
        ])
    );
    let refused = system
        .graphql_raw(
            "{ renewalPipeline(from: \"2027-05-01\", to: \"2027-04-01\") { month } }",
            json!({}),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["field"], "from", "{refused}");
    system.stop().await;
}
