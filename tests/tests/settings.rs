//! What the settings screens and the renewal pipeline read and change, through the real APIs:
//! the rules in force and a what-if of workload hours, the CSM directory, the order of custom
//! fields, the connectors a service runs and "sync now", the deck template in use, and the
//! renewal pipeline by month and health colour.

use chrono::{Duration, Utc};
use events::metadata::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::{token, uuid, TestSystem};

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

const PARTNERS: &str = "{ partners { name customerCount users { userId name email status reason } } }";

/// Partner organisations as Settings shows them: their users and statuses, customers assigned in
/// one all-or-nothing command, the customers list filtered by partner, and a deactivated
/// partner user refused on both APIs while the others go on.
#[tokio::test]
async fn partner_organisations_their_users_and_customers_assigned_in_bulk() {
    let system = TestSystem::spawn().await.unwrap();
    let manager = token(Role::Manager, "morgan", None);
    let northwind = uuid(&system.post_ok("/api/v1/partners", &json!({"name": "Northwind"})).await["partner_id"]);
    system.post_ok("/api/v1/partners", &json!({"name": "Contoso"})).await;
    for (user, name) in [("ana", "Ana Lopes"), ("bo", "Bo Chen"), ("cy", "Cy Dunn")] {
        let (status, answer) = system
            .send_as(
                &manager,
                Method::POST,
                &format!("/api/v1/partners/{northwind}/users"),
                Some(&json!({"user_id": user, "name": name, "email": format!("{user}@northwind.example")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    system
        .post_ok(&format!("/api/v1/partners/{northwind}/users/ana/activate"), &json!({}))
        .await;
    system
        .post_ok(
            &format!("/api/v1/partners/{northwind}/users/bo/deactivate"),
            &json!({"reason": "left Northwind"}),
        )
        .await;

    let dana = system.register_csm("Dana").await;
    let since = Utc::now() - Duration::days(30);
    let acme = system.onboard("Acme", "Enterprise", "300000", dana, since).await;
    let beta = system.onboard("Beta", "SMB", "9000", dana, since).await;
    let gamma = system.onboard("Gamma", "SMB", "12000", dana, since).await;
    system
        .post_ok(
            &format!("/api/v1/customers/{acme}/partners"),
            &json!({"partner_id": northwind}),
        )
        .await;
    // All or nothing: an unknown customer refuses the whole batch, naming it; duplicates too.
    let path = format!("/api/v1/partners/{northwind}/customers");
    let stranger = uuid::Uuid::now_v7();
    let (status, answer) = system
        .send_as(
            &manager,
            Method::POST,
            &path,
            Some(&json!({"customer_ids": [beta, stranger]})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = system
        .send_as(
            &manager,
            Method::POST,
            &path,
            Some(&json!({"customer_ids": [beta, beta]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert!(answer["fields"]["customer_ids[1]"].is_string(), "{answer}");
    let csm = token(Role::Csm, "dana", None);
    let (status, _) = system
        .send_as(&csm, Method::POST, &path, Some(&json!({"customer_ids": [beta]})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    system.caught_up().await;
    let listed = system.graphql(PARTNERS, json!({})).await;
    assert_eq!(
        listed["partners"][1]["customerCount"], 1,
        "nothing of a refused batch: {listed}"
    );
    // Acme is already assigned and stays as it is; Beta and Gamma are assigned.
    let (status, answer) = system
        .send_as(
            &manager,
            Method::POST,
            &path,
            Some(&json!({"customer_ids": [acme, beta, gamma]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["assigned"], 2);
    system.caught_up().await;

    let listed = system.graphql(PARTNERS, json!({})).await;
    assert_eq!(
        listed["partners"],
        json!([
            {"name": "Contoso", "customerCount": 0, "users": []},
            {"name": "Northwind", "customerCount": 3, "users": [
                {"userId": "ana", "name": "Ana Lopes", "email": "ana@northwind.example", "status": "ACTIVE", "reason": null},
                {"userId": "bo", "name": "Bo Chen", "email": "bo@northwind.example", "status": "DEACTIVATED", "reason": "left Northwind"},
                {"userId": "cy", "name": "Cy Dunn", "email": "cy@northwind.example", "status": "INVITED", "reason": null},
            ]},
        ])
    );
    let by_partner = system
        .graphql(
            "query($p: UUID) { customers(filter: {partnerId: $p}) { totalCount nodes { name partners { name } } } }",
            json!({"p": northwind}),
        )
        .await;
    assert_eq!(by_partner["customers"]["totalCount"], 3);
    assert_eq!(
        by_partner["customers"]["nodes"][0]["partners"],
        json!([{"name": "Northwind"}])
    );
    let refused = system.graphql_as(&csm, PARTNERS, json!({})).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");

    // Ana works; Bo, deactivated, is refused on both APIs with the reason.
    let ana = token(Role::Partner, "ana", Some(northwind));
    let bo = token(Role::Partner, "bo", Some(northwind));
    let mine = system.graphql_as(&ana, "{ customers { totalCount } }", json!({})).await;
    assert_eq!(mine["data"]["customers"]["totalCount"], 3, "{mine}");
    let refused = system.graphql_as(&bo, "{ customers { totalCount } }", json!({})).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused}"
    );
    assert!(refused["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("left Northwind"));
    let (status, answer) = system
        .send_as(
            &bo,
            Method::POST,
            &format!("/api/v1/customers/{acme}/partner-reports"),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (status, _) = system.send_as(&bo, Method::GET, "/api/v1/saved-views", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Cy is invited, not yet activated: refused until an admin or manager activates them.
    let cy = token(Role::Partner, "cy", Some(northwind));
    let refused = system.graphql_as(&cy, "{ me { name } }", json!({})).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused}"
    );
    system
        .post_ok(&format!("/api/v1/partners/{northwind}/users/cy/activate"), &json!({}))
        .await;
    system.caught_up().await;
    let me = system.graphql_as(&cy, "{ me { name partnerName } }", json!({})).await;
    assert_eq!(
        me["data"]["me"],
        json!({"name": "Cy Dunn", "partnerName": "Northwind"}),
        "{me}"
    );
}

/// The customer list's filters by NPS answer and risk, and its order by health, lowest first;
/// the export takes the same filters.
#[tokio::test]
async fn customers_filter_by_nps_and_risk_and_sort_by_health() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    let since = Utc::now() - Duration::days(30);
    let today = Utc::now().date_naive();
    let mut ids = Vec::new();
    for (name, score, nps) in [
        ("Acme", Some(82.0), Some(10)),
        ("Beta", Some(45.0), Some(3)),
        ("Gamma", Some(61.0), Some(8)),
        ("Delta", None, None),
    ] {
        let id = system.onboard(name, "SMB", "10000", dana, since).await;
        if let Some(score) = score {
            system.record_health(id, score, today).await;
        }
        if let Some(nps) = nps {
            system
                .post_ok(&format!("/api/v1/customers/{id}/nps"), &json!({"score": nps}))
                .await;
        }
        ids.push(id);
    }
    system.caught_up().await;
    let names = |filter: Value, sort: &str| {
        let system = &system;
        let sort = sort.to_owned();
        async move {
            let data = system
                .graphql(
                    "query($f: CustomerFilter, $s: CustomerSort!) { customers(filter: $f, sort: $s) { totalCount nodes { name } } }",
                    json!({"f": filter, "s": sort}),
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
    assert_eq!(names(json!({"atRisk": true}), "NAME").await, ["Beta", "Gamma"]);
    assert_eq!(names(json!({"atRisk": false}), "NAME").await, ["Acme", "Delta"]);
    assert_eq!(names(json!({"npsCategory": "PROMOTER"}), "NAME").await, ["Acme"]);
    assert_eq!(names(json!({"npsCategory": "PASSIVE"}), "NAME").await, ["Gamma"]);
    assert_eq!(names(json!({"npsCategory": "DETRACTOR"}), "NAME").await, ["Beta"]);
    assert_eq!(names(json!({"npsCategory": "NO_ANSWER"}), "NAME").await, ["Delta"]);
    assert_eq!(names(json!({}), "HEALTH_ASC").await, ["Beta", "Gamma", "Acme", "Delta"]);
    // Paged by health, the cursor keeps the order.
    let first = system
        .graphql(
            "{ customers(sort: HEALTH_ASC, first: 2) { nodes { name } pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let next = system
        .graphql(
            "query($a: String) { customers(sort: HEALTH_ASC, first: 2, after: $a) { nodes { name } } }",
            json!({"a": first["customers"]["pageInfo"]["endCursor"]}),
        )
        .await;
    assert_eq!(next["customers"]["nodes"], json!([{"name": "Acme"}, {"name": "Delta"}]));
    // The export applies the same filters.
    let response = system
        .http
        .get(format!(
            "{}/export/customers.csv?atRisk=1&npsCategory=DETRACTOR",
            system.graphql_url.trim_end_matches("/graphql")
        ))
        .bearer_auth(&system.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csv = response.text().await.unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("Beta,"), "{csv}");
    let response = system
        .http
        .get(format!(
            "{}/export/customers.csv?atRisk=maybe",
            system.graphql_url.trim_end_matches("/graphql")
        ))
        .bearer_auth(&system.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// Saved views: private to their owner, or shared with the owner's team (staff with staff, a
/// partner's users with their organisation's); names unique per user and screen; removed by
/// their owner, or a shared one by an admin.
#[tokio::test]
async fn saved_views_are_private_or_shared_with_the_team() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = token(Role::Csm, "dana", None);
    let eli = token(Role::Csm, "eli", None);
    let northwind = uuid(&system.post_ok("/api/v1/partners", &json!({"name": "Northwind"})).await["partner_id"]);
    let contoso = uuid(&system.post_ok("/api/v1/partners", &json!({"name": "Contoso"})).await["partner_id"]);
    let ana = token(Role::Partner, "ana", Some(northwind));
    let cy = token(Role::Partner, "cy", Some(northwind));
    let zed = token(Role::Partner, "zed", Some(contoso));
    let save = |who: &str, name: &str, params: &str, shared: bool| {
        let body = json!({"name": name, "screen": "customers", "params": params, "shared": shared});
        let who = who.to_owned();
        let system = &system;
        async move {
            system
                .send_as(&who, Method::POST, "/api/v1/saved-views", Some(&body))
                .await
        }
    };
    let (status, private) = save(&dana, "My reds", "health=RED", false).await;
    assert_eq!(status, StatusCode::CREATED, "{private}");
    let (status, shared) = save(&dana, "Renewing soon", "renewal=90&sort=ARR_DESC", true).await;
    assert_eq!(status, StatusCode::CREATED, "{shared}");
    assert_eq!(
        save(&dana, "my reds", "health=RED", false).await.0,
        StatusCode::CONFLICT
    );
    let (status, answer) = save(&dana, "Bad", "?health=RED", false).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer["fields"]["params"].is_string(), "{answer}");
    assert_eq!(save(&dana, "Elsewhere", "x=1", false).await.0, StatusCode::CREATED);
    save(&ana, "Northwind's reds", "health=RED", true).await;
    save(&ana, "Ana's own", "tier=SMB", false).await;

    let names = |who: String| {
        let system = &system;
        async move {
            let (status, answer) = system.send_as(&who, Method::GET, "/api/v1/saved-views", None).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            answer["views"]
                .as_array()
                .unwrap()
                .iter()
                .map(|view| {
                    format!(
                        "{}{}",
                        view["name"].as_str().unwrap(),
                        if view["mine"] == true { "" } else { " (shared)" }
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names(dana.clone()).await, ["Elsewhere", "My reds", "Renewing soon"]);
    assert_eq!(names(eli.clone()).await, ["Renewing soon (shared)"]);
    assert_eq!(names(system.admin.clone()).await, ["Renewing soon (shared)"]);
    assert_eq!(names(cy.clone()).await, ["Northwind's reds (shared)"]);
    assert_eq!(names(ana.clone()).await, ["Ana's own", "Northwind's reds"]);
    assert_eq!(names(zed.clone()).await, Vec::<String>::new());

    // Only the owner changes or removes a view; an admin may remove one shared with the staff.
    let shared_id = shared["view_id"].as_str().unwrap();
    let path = format!("/api/v1/saved-views/{shared_id}");
    let change = json!({"name": "Renewing in 90 days", "screen": "customers", "params": "renewal=90", "shared": true});
    assert_eq!(
        system.send_as(&eli, Method::PUT, &path, Some(&change)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        system.send_as(&dana, Method::PUT, &path, Some(&change)).await.0,
        StatusCode::OK
    );
    assert_eq!(names(eli.clone()).await, ["Renewing in 90 days (shared)"]);
    assert_eq!(
        system.send_as(&eli, Method::DELETE, &path, None).await.0,
        StatusCode::NOT_FOUND
    );
    let private_path = format!("/api/v1/saved-views/{}", private["view_id"].as_str().unwrap());
    assert_eq!(
        system.send(Method::DELETE, &private_path, None).await.0,
        StatusCode::NOT_FOUND,
        "an admin does not remove a private view"
    );
    assert_eq!(system.send(Method::DELETE, &path, None).await.0, StatusCode::OK);
    assert_eq!(names(eli).await, Vec::<String>::new());
}
