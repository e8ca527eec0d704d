//! The authorization matrix of the query side: every root query against every role, partners
//! against their own and another organisation's customers, and every kind of bad token on both
//! APIs. The write side's matrix is `guarded::every_endpoint_allows_and_refuses_each_role_as_the_permission_table_says`.

use chrono::{Duration, Utc};
use events::metadata::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{token, uuid, TestSystem};
use uuid::Uuid;

/// What a role may do with a root query.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scope {
    /// Portfolio-wide: every role but partners.
    Portfolio,
    /// One customer: every role, partners only for their organisation's customers.
    Customer,
    /// A list every role may ask for; partners see their customers' rows only.
    Filtered,
    /// The event history: auditors only.
    Auditor,
    /// Settings of the organisation: admins and managers only.
    Management,
}

/// Every root query of the schema, with a minimal selection and its scope. `$c` is a customer.
const QUERIES: &[(&str, &str, Scope)] = &[
    ("coverageReport", "coverageReport { __typename }", Scope::Portfolio),
    (
        "engagementMetrics",
        "engagementMetrics { __typename }",
        Scope::Portfolio,
    ),
    (
        "engagementCorrelation",
        "engagementCorrelation(outcome: HEALTH) { __typename }",
        Scope::Portfolio,
    ),
    ("csmWorkload", "csmWorkload { __typename }", Scope::Portfolio),
    ("executiveSummary", "executiveSummary { __typename }", Scope::Portfolio),
    (
        "portfolioHealthTrend",
        "portfolioHealthTrend { __typename }",
        Scope::Portfolio,
    ),
    // A partner gets its own customers' alerts.
    ("alerts", "alerts { edges { node { customerId } } }", Scope::Filtered),
    ("projectionStatus", "projectionStatus { __typename }", Scope::Portfolio),
    ("connectors", "connectors { __typename }", Scope::Portfolio),
    ("rules", "rules { version }", Scope::Portfolio),
    ("csms", "csms { name }", Scope::Portfolio),
    ("partners", "partners { name }", Scope::Management),
    // Everyone reads who they are.
    ("me", "me { userId role }", Scope::Filtered),
    ("atRiskReport", "atRiskReport { total }", Scope::Portfolio),
    ("churnRiskBacktest", "churnRiskBacktest { churned }", Scope::Portfolio),
    // The team's own work: every role but partners (each reads whose it may: reminders.rs).
    ("reminders", "reminders { totalCount }", Scope::Portfolio),
    (
        "upcomingReminders",
        "upcomingReminders { totalCount }",
        Scope::Portfolio,
    ),
    ("reminderCounts", "reminderCounts { open }", Scope::Portfolio),
    ("today", "today { totalCount }", Scope::Portfolio),
    ("taskTemplates", "taskTemplates { name }", Scope::Portfolio),
    (
        "recurringTasks",
        "recurringTasks(customerId: $c) { title }",
        Scope::Portfolio,
    ),
    ("playbooks", "playbooks { name }", Scope::Portfolio),
    (
        "playbookRuns",
        "playbookRuns(customerId: $c) { totalCount }",
        Scope::Portfolio,
    ),
    (
        "playbooksReport",
        "playbooksReport { total { runs } }",
        Scope::Portfolio,
    ),
    (
        "projectionSnapshots",
        "projectionSnapshots { __typename }",
        Scope::Portfolio,
    ),
    (
        "customerEngagement",
        "customerEngagement(customerId: $c) { __typename }",
        Scope::Customer,
    ),
    (
        "engagementTrend",
        "engagementTrend(customerId: $c, periods: 2) { __typename }",
        Scope::Customer,
    ),
    (
        "customerTimeline",
        "customerTimeline(customerId: $c) { __typename }",
        Scope::Customer,
    ),
    (
        "healthTrend",
        "healthTrend(customerId: $c) { __typename }",
        Scope::Customer,
    ),
    (
        "accountCoverage",
        "accountCoverage(customerId: $c) { __typename }",
        Scope::Customer,
    ),
    (
        "customerAsOf",
        "customerAsOf(customerId: $c, knownAt: \"2099-01-01T00:00:00Z\") { __typename }",
        Scope::Customer,
    ),
    ("customer", "customer(id: $c) { __typename }", Scope::Customer),
    (
        "customers",
        "customers { edges { node { customerId } } }",
        Scope::Filtered,
    ),
    ("tasks", "tasks { edges { node { customerId } } }", Scope::Filtered),
    // Each role gets the definitions it may see (tests/tests/custom_fields.rs checks which).
    (
        "customFieldDefinitions",
        "customFieldDefinitions { key }",
        Scope::Filtered,
    ),
    (
        "partnerReports",
        "partnerReports { edges { node { customerId } } }",
        Scope::Filtered,
    ),
    (
        "renewals",
        "renewals { edges { node { customerId } } }",
        Scope::Filtered,
    ),
    // Counts, not rows: a partner's count is of its own customers (checked below).
    (
        "renewalPipeline",
        "renewalPipeline(from: \"2027-12-01\", to: \"2027-12-31\") { accounts }",
        Scope::Filtered,
    ),
    (
        "customerHistory",
        "customerHistory(customerId: $c) { __typename }",
        Scope::Auditor,
    ),
    (
        "verifyCustomerHistory",
        "verifyCustomerHistory(customerId: $c) { __typename }",
        Scope::Auditor,
    ),
    ("storeDigests", "storeDigests { __typename }", Scope::Auditor),
];

struct World {
    system: TestSystem,
    partner: Uuid,
    assigned: Uuid,
    unassigned: Uuid,
}

async fn world() -> World {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Mia Matrix").await;
    let partner = uuid(
        &system
            .post_ok("/api/v1/partners", &json!({"name": "Contoso Services"}))
            .await["partner_id"],
    );
    let onboarded = Utc::now() - Duration::days(30);
    let assigned = system.onboard("Assigned", "SMB", "1000", csm, onboarded).await;
    let unassigned = system.onboard("Unassigned", "SMB", "1000", csm, onboarded).await;
    system
        .post_ok(
            &format!("/api/v1/customers/{assigned}/partners"),
            &json!({"partner_id": partner}),
        )
        .await;
    system.caught_up().await;
    World {
        system,
        partner,
        assigned,
        unassigned,
    }
}

/// The customer ids of a filtered list's rows.
fn listed(answer: &Value, field: &str) -> Vec<String> {
    answer["data"][field]["edges"]
        .as_array()
        .map(|edges| {
            edges
                .iter()
                .map(|edge| edge["node"]["customerId"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_root_query_allows_and_refuses_each_role_as_the_access_rules_say() {
    let world = world().await;
    let system = &world.system;
    // Every root query of the served schema is in the table.
    let served = system
        .graphql("{ __schema { queryType { fields { name } } } }", json!({}))
        .await;
    let mut names: Vec<String> = served["__schema"]["queryType"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field["name"].as_str().unwrap().to_owned())
        .filter(|name| name != "snapshot")
        .collect();
    names.sort();
    let mut listed_names: Vec<String> = QUERIES.iter().map(|(name, _, _)| (*name).to_owned()).collect();
    listed_names.sort();
    assert_eq!(names, listed_names, "a root query without an entry in the matrix");

    let mut checked = 0;
    for role in Role::ALL {
        let bearer = token(
            role,
            &format!("matrix-{}", role.as_str()),
            (role == Role::Partner).then_some(world.partner),
        );
        for (name, selection, scope) in QUERIES {
            for (customer, own) in [(world.assigned, true), (world.unassigned, false)] {
                let (query, variables) = if selection.contains("$c") {
                    (format!("query($c: UUID!) {{ {selection} }}"), json!({"c": customer}))
                } else {
                    (format!("{{ {selection} }}"), json!({}))
                };
                let answer = system.graphql_as(&bearer, &query, variables).await;
                let code = answer["errors"][0]["extensions"]["code"].as_str().map(str::to_owned);
                let partner = role == Role::Partner;
                let expected: Option<&str> = match scope {
                    Scope::Portfolio if partner => Some("FORBIDDEN"),
                    Scope::Customer if partner && !own => Some("NOT_FOUND"),
                    Scope::Auditor if role != Role::Auditor => Some("FORBIDDEN"),
                    Scope::Management if !matches!(role, Role::Admin | Role::Manager) => Some("FORBIDDEN"),
                    _ => None,
                };
                let context = format!(
                    "{name} as {role:?} on the {} customer: {answer}",
                    if own { "assigned" } else { "other" }
                );
                if *name == "customer" && expected == Some("NOT_FOUND") {
                    // Existence does not leak: the customer is simply not there.
                    assert_eq!(
                        (code.as_deref(), &answer["data"]["customer"]),
                        (None, &Value::Null),
                        "{context}"
                    );
                } else if expected.is_none() {
                    assert!(
                        answer.get("errors").is_none() && !answer["data"][name].is_null(),
                        "{context}"
                    );
                } else {
                    assert_eq!(code.as_deref(), expected, "{context}");
                }
                if *scope == Scope::Filtered && *name != "partnerReports" {
                    let rows = listed(&answer, name);
                    if partner {
                        assert!(rows.iter().all(|id| *id == world.assigned.to_string()), "{context}");
                    }
                    if *name == "customers" {
                        assert_eq!(rows.len(), if partner { 1 } else { 2 }, "{context}");
                    }
                    if *name == "renewalPipeline" {
                        assert_eq!(
                            answer["data"][name][0]["accounts"],
                            json!(if partner { 1 } else { 2 }),
                            "{context}"
                        );
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, Role::ALL.len() * QUERIES.len() * 2);
    world.system.stop().await;
}

#[tokio::test]
async fn every_kind_of_bad_token_is_refused_by_both_apis() {
    use jsonwebtoken::{encode, EncodingKey, Header};
    let system = TestSystem::spawn().await.unwrap();
    let now = Utc::now().timestamp();
    let claims = |extra: Value| {
        let mut claims =
            json!({"sub": "u", "role": "admin", "iss": "cstrack", "aud": "cstrack-api", "iat": now, "exp": now + 600});
        for (key, value) in extra.as_object().unwrap() {
            claims[key] = value.clone();
        }
        claims
    };
    let sign = |claims: Value, secret: &str| {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let genuine = sign(claims(json!({})), tests::TEST_JWT_SECRET);
    let payload = genuine.split('.').nth(1).unwrap().to_owned();
    let bad = [
        (
            "expired",
            sign(claims(json!({"exp": now - 3600})), tests::TEST_JWT_SECRET),
        ),
        (
            "not yet valid",
            sign(claims(json!({"nbf": now + 3600})), tests::TEST_JWT_SECRET),
        ),
        (
            "wrong key",
            sign(claims(json!({})), "another-secret-that-is-at-least-32-bytes"),
        ),
        (
            "wrong audience",
            sign(claims(json!({"aud": "billing"})), tests::TEST_JWT_SECRET),
        ),
        (
            "wrong issuer",
            sign(claims(json!({"iss": "someone"})), tests::TEST_JWT_SECRET),
        ),
        ("no subject", sign(claims(json!({"sub": ""})), tests::TEST_JWT_SECRET)),
        (
            "unknown role",
            sign(claims(json!({"role": "root"})), tests::TEST_JWT_SECRET),
        ),
        ("alg none", format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (what, bearer) in &bad {
        let rest = system
            .http
            .post(format!("{}/api/v1/csms", system.command_url))
            .bearer_auth(bearer)
            .json(&json!({"name": "A", "email": "a@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(rest.status(), StatusCode::UNAUTHORIZED, "REST, {what}");
        let graphql = system
            .http
            .post(&system.graphql_url)
            .bearer_auth(bearer)
            .json(&json!({"query": "{ projectionStatus { projector } }"}))
            .send()
            .await
            .unwrap();
        assert_eq!(graphql.status(), StatusCode::UNAUTHORIZED, "GraphQL, {what}");
        let body: Value = graphql.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{what}");
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(events, 0, "nothing appended");
    // The genuine token works on both.
    assert_eq!(
        system
            .graphql_as(&genuine, "{ projectionStatus { projector } }", json!({}))
            .await["errors"],
        Value::Null
    );
    system.stop().await;
}
