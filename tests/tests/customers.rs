//! The customer views for front-end clients: the 360 view, the portfolio list with filters and
//! cursors, tasks, partner reports, renewals, the executive summary; and who may see what.

use chrono::{Days, Utc};
use events::metadata::Role;
use reqwest::Method;
use serde_json::{json, Value};
use tests::{token, uuid, TestSystem};
use uuid::Uuid;

async fn onboard(system: &TestSystem, name: &str, tier: &str, arr: &str, csm: Uuid, renewal_in_days: u64) -> Uuid {
    let today = Utc::now().date_naive();
    uuid(
        &system
            .post_ok(
                "/api/v1/customers",
                &json!({"name": name, "salesforce_id": "0015g00000AbCdEAAV", "tier": tier, "arr": arr,
                "csm_id": csm, "industry": "Retail", "account_manager": "Jordan", "products_owned": ["Platform"],
                "contract_start": today - Days::new(200), "renewal_date": today + Days::new(renewal_in_days),
                "occurred_at": Utc::now() - chrono::Duration::days(200)}),
            )
            .await["customer_id"],
    )
}

#[tokio::test]
async fn the_customer_360_view_and_the_portfolio_list() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let acme = onboard(&system, "Acme", "Enterprise", "300000", csm, 20).await;
    let person = system.add_stakeholder(acme, "Priya", "executive").await;
    let path = |suffix: &str| format!("/api/v1/customers/{acme}{suffix}");
    system
        .post_ok(&path("/health-scores"), &json!({"score": 45, "source": "gainsight"}))
        .await;
    for (use_case, status) in [("Forecasting", "implemented"), ("Alerts", "in_progress")] {
        let (code, _) = system
            .send(
                Method::PUT,
                &path("/use-cases"),
                Some(&json!({"use_case": use_case, "status": status})),
            )
            .await;
        assert_eq!(code, 200);
    }
    let (code, _) = system
        .send(
            Method::PUT,
            &path("/adoption-stage"),
            Some(&json!({"stage": "implementing"})),
        )
        .await;
    assert_eq!(code, 200);
    system
        .post_ok(&path("/nps"), &json!({"score": 9, "stakeholder_id": person}))
        .await;
    system.post_ok(&path("/nps"), &json!({"score": 6})).await;
    for (name, tier, arr, renewal) in [
        ("Beta", "SMB", "9000", 200),
        ("Gamma", "MidMarket", "50000", 60),
        ("Delta", "SMB", "12000", 400),
    ] {
        onboard(&system, name, tier, arr, csm, renewal).await;
    }
    system.caught_up().await;

    let view = system
        .graphql(
            "query($id: UUID!) { customer(id: $id) { name tier arr csm { name } stakeholders { name level } health { score }
                healthColour adoptionStage adoptionHistory { summary } useCases { total done progressPct }
                nps { latest average } daysUntilRenewal compliance { complete missing } timeline(first: 2) { edges { node { kind } } } } }",
            json!({"id": acme}),
        )
        .await["customer"]
        .clone();
    assert_eq!(view["tier"], "ENTERPRISE");
    assert_eq!(view["arr"], "300000.00");
    assert_eq!(view["csm"]["name"], "Dana Whitfield");
    assert_eq!(view["stakeholders"], json!([{"name": "Priya", "level": "executive"}]));
    assert_eq!(
        (view["health"]["score"].clone(), view["healthColour"].clone()),
        (json!(45.0), json!("RED"))
    );
    assert_eq!(view["adoptionStage"], "implementing");
    assert_eq!(view["adoptionHistory"].as_array().unwrap().len(), 1);
    assert_eq!(view["useCases"], json!({"total": 2, "done": 1, "progressPct": 50.0}));
    assert_eq!(view["nps"], json!({"latest": 6, "average": 7.5}));
    assert_eq!(view["daysUntilRenewal"], 20);
    assert_eq!(view["compliance"], json!({"complete": true, "missing": []}));
    assert_eq!(view["timeline"]["edges"].as_array().unwrap().len(), 2);

    // The list: by ARR, two per page, cursors without gaps.
    let query = "query($after: String, $filter: CustomerFilter) { customers(sort: ARR_DESC, first: 2, after: $after, filter: $filter) {
        edges { node { name } } pageInfo { hasNextPage endCursor } } }";
    let first = system.graphql(query, json!({})).await["customers"].clone();
    let second = system
        .graphql(query, json!({"after": first["pageInfo"]["endCursor"]}))
        .await["customers"]
        .clone();
    let names: Vec<Value> = [&first, &second]
        .iter()
        .flat_map(|page| {
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["name"].clone())
        })
        .collect();
    assert_eq!(
        names,
        vec![json!("Acme"), json!("Gamma"), json!("Delta"), json!("Beta")]
    );
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    let renewing = system
        .graphql(query, json!({"filter": {"renewalWithinDays": 90}}))
        .await["customers"]["edges"]
        .clone();
    assert_eq!(renewing.as_array().unwrap().len(), 2, "Acme in 20 days and Gamma in 60");
    let search = system
        .graphql(query, json!({"filter": {"search": "ELT", "tier": "SMB"}}))
        .await["customers"]["edges"]
        .clone();
    assert_eq!(search, json!([{"node": {"name": "Delta"}}]));
    let red = system.graphql(query, json!({"filter": {"healthColour": "RED"}})).await["customers"]["edges"].clone();
    assert_eq!(red, json!([{"node": {"name": "Acme"}}]));

    let pipeline = system
        .graphql("{ renewals { edges { node { name daysUntilRenewal healthColour } } } executiveSummary { current { customers totalArr arrAtRisk nps npsResponses renewals { days customers } } } }", json!({}))
        .await;
    assert_eq!(
        pipeline["renewals"]["edges"],
        json!([{"node": {"name": "Acme", "daysUntilRenewal": 20, "healthColour": "RED"}},
               {"node": {"name": "Gamma", "daysUntilRenewal": 60, "healthColour": null}}])
    );
    let current = &pipeline["executiveSummary"]["current"];
    assert_eq!(
        (
            current["customers"].clone(),
            current["totalArr"].clone(),
            current["arrAtRisk"].clone()
        ),
        (json!(4), json!("371000.00"), json!("300000.00"))
    );
    // One promoter (9) and one detractor (6): 50% - 50% = 0.
    assert_eq!(
        (current["nps"].clone(), current["npsResponses"].clone()),
        (json!(0.0), json!(2))
    );
    assert_eq!(
        current["renewals"],
        json!([{"days": 30, "customers": 1}, {"days": 60, "customers": 2}, {"days": 90, "customers": 2}])
    );
    system.stop().await;
}

#[tokio::test]
async fn partners_see_their_customers_only_and_readonly_sees_no_drafts() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let partner = uuid(&system.post_ok("/api/v1/partners", &json!({"name": "Northwind"})).await["partner_id"]);
    let theirs = onboard(&system, "Assigned", "SMB", "9000", csm, 100).await;
    let other = onboard(&system, "Not theirs", "SMB", "9000", csm, 100).await;
    system
        .post_ok(
            &format!("/api/v1/customers/{theirs}/partners"),
            &json!({"partner_id": partner}),
        )
        .await;
    let partner_token = token(Role::Partner, "pat", Some(partner));
    let report = json!({"period_start": "2026-10-01", "period_end": "2026-10-31", "overall_status": "on_track", "summary": "draft"});
    let (status, _) = system
        .send_as(
            &partner_token,
            Method::POST,
            &format!("/api/v1/customers/{theirs}/partner-reports"),
            Some(&report),
        )
        .await;
    assert_eq!(status, 201);
    system.caught_up().await;

    let as_partner = |query: &'static str, variables: Value| system.graphql_as(&partner_token, query, variables);
    let list = as_partner("{ customers { edges { node { name } } } }", json!({})).await;
    assert_eq!(
        list["data"]["customers"]["edges"],
        json!([{"node": {"name": "Assigned"}}])
    );
    let hidden = as_partner("query($id: UUID!) { customer(id: $id) { name } }", json!({"id": other})).await;
    assert_eq!(hidden["data"]["customer"], Value::Null);
    let timeline = as_partner(
        "query($id: UUID!) { customerTimeline(customerId: $id) { edges { cursor } } }",
        json!({"id": other}),
    )
    .await;
    assert_eq!(timeline["errors"][0]["extensions"]["code"], "NOT_FOUND");
    let report = as_partner("{ coverageReport { summary { accounts } } }", json!({})).await;
    assert_eq!(report["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let drafts = as_partner("{ partnerReports { edges { node { status summary } } } }", json!({})).await;
    assert_eq!(
        drafts["data"]["partnerReports"]["edges"],
        json!([{"node": {"status": "draft", "summary": "draft"}}])
    );

    let readonly = token(Role::Readonly, "reader", None);
    let seen = system
        .graphql_as(&readonly, "{ partnerReports { edges { node { status } } } }", json!({}))
        .await;
    assert_eq!(
        seen["data"]["partnerReports"]["edges"],
        json!([]),
        "readonly sees no drafts"
    );
    let admin = system
        .graphql("{ partnerReports { edges { node { status } } } }", json!({}))
        .await;
    assert_eq!(admin["partnerReports"]["edges"].as_array().unwrap().len(), 1);

    let anonymous = system
        .http
        .post(&system.graphql_url)
        .json(&json!({"query": "{ customers { edges { cursor } } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    system.stop().await;
}

/// The one rule for partner-report drafts (docs/PERMISSIONS.md): a draft is read by the internal
/// team, auditors and its own partner organisation, never by readonly users or another partner,
/// on every path that shows a report: the report list, both timelines (with and without a kinds
/// filter, and a page of one), and the auditors' history.
#[tokio::test]
async fn a_partner_report_draft_is_read_only_by_those_who_may_read_drafts_on_every_path() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let shared = onboard(&system, "Shared", "SMB", "9000", csm, 100).await;
    let mut partners = Vec::new();
    for name in ["Northwind", "Contoso"] {
        let partner = uuid(&system.post_ok("/api/v1/partners", &json!({"name": name})).await["partner_id"]);
        system
            .post_ok(
                &format!("/api/v1/customers/{shared}/partners"),
                &json!({"partner_id": partner}),
            )
            .await;
        partners.push((partner, token(Role::Partner, name, Some(partner))));
    }
    // Northwind drafts one report and submits another; Contoso drafts one.
    let mut report_ids = Vec::new();
    for ((_, partner_token), summary) in [
        (&partners[0], "northwind draft"),
        (&partners[0], "northwind submitted"),
        (&partners[1], "contoso draft"),
    ] {
        let (status, created) = system
            .send_as(
                partner_token,
                Method::POST,
                &format!("/api/v1/customers/{shared}/partner-reports"),
                Some(&json!({"period_start": "2026-10-01", "period_end": "2026-10-31", "overall_status": "at_risk", "summary": summary})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        report_ids.push(uuid(&created["report_id"]));
    }
    let (status, _) = system
        .send_as(
            &partners[0].1,
            Method::POST,
            &format!("/api/v1/customers/{shared}/partner-reports/{}/submit", report_ids[1]),
            Some(&json!({})),
        )
        .await;
    assert_eq!(status, 200);
    system.caught_up().await;

    let summaries = |answer: &Value, pointer: &str| -> Vec<String> {
        let mut seen: Vec<String> = answer
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{pointer} in {answer}"))
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| edge["node"]["summary"].as_str().unwrap().to_owned())
            .filter(|summary| summary.starts_with("partner status report"))
            .collect();
        seen.sort();
        seen
    };
    let drafted = |summary: &str| format!("partner status report drafted: {summary}");
    let submitted = "partner status report submitted".to_owned();
    let everything = vec![
        drafted("contoso draft"),
        drafted("northwind draft"),
        drafted("northwind submitted"),
        submitted.clone(),
    ];
    let readers = [
        (token(Role::Admin, "admin", None), everything.clone()),
        (token(Role::Manager, "manager", None), everything.clone()),
        (token(Role::Csm, "csm", None), everything.clone()),
        (token(Role::Auditor, "auditor", None), everything.clone()),
        (token(Role::Readonly, "reader", None), vec![submitted.clone()]),
        (
            partners[0].1.clone(),
            vec![
                drafted("northwind draft"),
                drafted("northwind submitted"),
                submitted.clone(),
            ],
        ),
        (partners[1].1.clone(), vec![drafted("contoso draft"), submitted.clone()]),
    ];
    for (reader, expected) in &readers {
        let both = system
            .graphql_as(
                reader,
                "query($id: UUID!) {
                   customerTimeline(customerId: $id) { edges { node { summary } } }
                   filtered: customerTimeline(customerId: $id, kinds: [\"partner_report\"]) { edges { node { summary } } }
                   customer(id: $id) { timeline(first: 50) { edges { node { summary } } } } }",
                json!({"id": shared}),
            )
            .await;
        assert_eq!(&summaries(&both, "/data/customerTimeline/edges"), expected, "{both}");
        assert_eq!(&summaries(&both, "/data/filtered/edges"), expected);
        assert_eq!(&summaries(&both, "/data/customer/timeline/edges"), expected);
        // A page of one filtered entry is a visible one: the rule is applied in the statement,
        // not to a page already cut.
        let one = system
            .graphql_as(
                reader,
                "query($id: UUID!) { customerTimeline(customerId: $id, kinds: [\"partner_report\"], first: 1) {
                   edges { node { summary } } } }",
                json!({"id": shared}),
            )
            .await;
        let first = summaries(&one, "/data/customerTimeline/edges");
        assert_eq!(first.len(), 1);
        assert!(expected.contains(&first[0]), "{first:?} not in {expected:?}");
        // The report list agrees: the drafts it lists are the drafted entries of reports not
        // yet submitted, and the submitted report is listed for everyone.
        let listed = system
            .graphql_as(
                reader,
                "{ partnerReports { edges { node { summary status } } } }",
                json!({}),
            )
            .await;
        let mut reports: Vec<String> = listed["data"]["partnerReports"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| match edge["node"]["status"].as_str().unwrap() {
                "draft" => drafted(edge["node"]["summary"].as_str().unwrap()),
                _ => submitted.clone(),
            })
            .collect();
        reports.sort();
        let still_drafts: Vec<String> = expected
            .iter()
            .filter(|entry| **entry != drafted("northwind submitted"))
            .cloned()
            .collect();
        assert_eq!(reports, still_drafts, "{listed}");
    }

    // History is the auditors' alone, and they read drafts; every other role is refused.
    let history = "query($id: UUID!) { customerHistory(customerId: $id, eventTypes: [\"PartnerReportDrafted\"]) {
                     edges { node { eventType } } } }";
    let audited = system.graphql_as(&readers[3].0, history, json!({"id": shared})).await;
    assert_eq!(
        audited["data"]["customerHistory"]["edges"].as_array().unwrap().len(),
        3,
        "{audited}"
    );
    for reader in [&readers[4].0, &partners[0].1] {
        let refused = system.graphql_as(reader, history, json!({"id": shared})).await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN", "{refused}");
    }
    system.stop().await;
}

/// Every report counts the same accounts for a day (docs/DOMAIN.md section 1): those onboarded
/// on or before it and not churned on or before it. Coverage, engagement, workload, the
/// executive summary, the customer list and the alerts agree, before the churn and after it.
#[tokio::test]
async fn every_report_counts_the_accounts_onboarded_and_not_churned_by_its_day() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let today = Utc::now().date_naive();
    let mut ids = Vec::new();
    for name in ["Stays", "Also Stays", "Leaves"] {
        ids.push(onboard(&system, name, "SMB", "9000", csm, 120).await);
    }
    let churned_on = today - Days::new(10);
    system
        .post_ok(
            &format!("/api/v1/customers/{}/churn", ids[2]),
            &json!({"reason": "budget cut", "churned_on": churned_on}),
        )
        .await;
    system.caught_up().await;

    let counts = |as_of: chrono::NaiveDate| {
        let system = &system;
        async move {
            let answer = system
                .graphql(
                    "query($d: Date) {
                       coverageReport(asOf: $d) { summary { accounts } accounts { name } }
                       engagementMetrics(asOf: $d) { customers items { name } }
                       csmWorkload(asOf: $d) { csms { accounts } }
                       executiveSummary(asOf: $d) { current { customers } } }",
                    json!({"d": as_of}),
                )
                .await;
            let workload: i64 = answer["csmWorkload"]["csms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|csm| csm["accounts"].as_i64().unwrap())
                .sum();
            [
                answer["coverageReport"]["summary"]["accounts"].as_i64().unwrap(),
                answer["coverageReport"]["accounts"].as_array().unwrap().len() as i64,
                answer["engagementMetrics"]["customers"].as_i64().unwrap(),
                answer["engagementMetrics"]["items"].as_array().unwrap().len() as i64,
                workload,
                answer["executiveSummary"]["current"]["customers"].as_i64().unwrap(),
            ]
        }
    };
    assert_eq!(counts(today).await, [2; 6], "after the churn");
    assert_eq!(
        counts(churned_on - Days::new(1)).await,
        [3; 6],
        "the day before the churn"
    );
    let list = system
        .graphql("{ customers(first: 200) { edges { node { name } } } }", json!({}))
        .await;
    assert_eq!(list["customers"]["edges"].as_array().unwrap().len(), 2);
    // The alert checker leaves the churned account alone: it has no coverage alert.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let alerted: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT customer_id FROM alerts WHERE kind = 'coverage_urgent' OR kind = 'engagement_at_risk'",
    )
    .fetch_all(&system.pool)
    .await
    .unwrap();
    assert!(!alerted.contains(&ids[2]), "{alerted:?}");
    system.stop().await;
}

/// The customer list says how many customers its filter selects in all, the same on every
/// page, counting only those the caller may see.
#[tokio::test]
async fn the_customer_list_counts_every_match_on_every_page() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let partner = uuid(&system.post_ok("/api/v1/partners", &json!({"name": "Northwind"})).await["partner_id"]);
    let mut smb = Vec::new();
    for name in ["Alpha", "Bravo", "Charlie"] {
        smb.push(onboard(&system, name, "SMB", "9000", csm, 100).await);
    }
    onboard(&system, "Delta", "Enterprise", "90000", csm, 100).await;
    system
        .post_ok(
            &format!("/api/v1/customers/{}/partners", smb[0]),
            &json!({"partner_id": partner}),
        )
        .await;
    system.caught_up().await;
    let page = "query($after: String) { customers(filter: { tier: SMB }, first: 2, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } nodes { name } } }";
    let first = system.graphql(page, json!({})).await;
    assert_eq!(first["customers"]["totalCount"], 3, "{first}");
    assert_eq!(
        first["customers"]["nodes"],
        json!([{"name": "Alpha"}, {"name": "Bravo"}])
    );
    let after = first["customers"]["pageInfo"]["endCursor"].clone();
    let second = system.graphql(page, json!({"after": after})).await;
    assert_eq!(second["customers"]["totalCount"], 3, "{second}");
    assert_eq!(second["customers"]["nodes"], json!([{"name": "Charlie"}]));
    let everyone = system
        .graphql("{ customers(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!(everyone["customers"]["totalCount"], 4);
    let partner_token = token(Role::Partner, "pat", Some(partner));
    let theirs = system
        .graphql_as(&partner_token, "{ customers(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!(theirs["data"]["customers"]["totalCount"], 1, "{theirs}");
    system.stop().await;
}
