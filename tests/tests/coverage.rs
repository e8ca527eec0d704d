//! PRD-162 coverage through HTTP and GraphQL only, with the exact numbers of docs/DOMAIN.md section 4.

use chrono::{Days, NaiveDate, Utc};
use events::service::store::{StoredEvent, COLUMNS};
use projection_service::projector::Applied;
use serde_json::{json, Value};
use tests::{TestSystem, ACCOUNT_COVERAGE};
use uuid::Uuid;

/// Reports are asked for as of yesterday so every activity is safely in the past.
fn as_of() -> NaiveDate {
    Utc::now().date_naive() - Days::new(1)
}

fn days_before(days: u64) -> NaiveDate {
    as_of() - Days::new(days)
}

fn onboarded_long_ago() -> chrono::DateTime<Utc> {
    days_before(400).and_hms_opt(9, 0, 0).unwrap().and_utc()
}

async fn coverage(system: &TestSystem, customer: Uuid) -> Value {
    system
        .graphql(ACCOUNT_COVERAGE, json!({"id": customer, "asOf": as_of()}))
        .await["accountCoverage"]
        .clone()
}

#[tokio::test]
async fn tc_162_1_enterprise_silent_for_twenty_days_loses_twelve_points_and_is_under_covered() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let customer = system
        .onboard("Acme Corp", "Enterprise", "250000", csm, onboarded_long_ago())
        .await;
    let mut people = Vec::new();
    for (name, level) in [
        ("Ada", "executive"),
        ("Ben", "champion"),
        ("Cy", "user"),
        ("Di", "user"),
    ] {
        people.push(system.add_stakeholder(customer, name, level).await);
    }
    // Four touches in the 30-day window, three of them meetings, four people: only contact is short.
    system
        .log_activity(customer, "meeting", days_before(20), &people[0..2])
        .await;
    system
        .log_activity(customer, "meeting", days_before(22), &people[2..3])
        .await;
    system
        .log_activity(customer, "qbr", days_before(25), &people[3..4])
        .await;
    system
        .log_activity(customer, "email", days_before(28), &people[0..1])
        .await;
    system.caught_up().await;

    let account = coverage(&system, customer).await;
    assert_eq!(account["daysSinceContact"], 20);
    assert_eq!(account["lastContactDate"], json!(days_before(20)));
    assert_eq!(account["standards"]["maxDaysBetweenContact"], 14);
    assert_eq!(
        account["deductions"],
        json!({"contact": 12.0, "touches": 0.0, "meetings": 0.0, "stakeholders": 0.0})
    );
    assert_eq!(account["score"], 88.0);
    assert_eq!(account["gapAreas"], json!(["CONTACT"]));
    assert_eq!(account["status"], "UNDER_COVERED");
    assert_eq!(account["priority"], "ATTENTION");
    system.stop().await;
}

#[tokio::test]
async fn tc_162_2_a_csm_with_eighteen_accounts_and_1_5m_against_the_team_averages() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana Whitfield").await;
    let marco = system.register_csm("Marco Bianchi").await;
    // Dana: 17 x 80,000 + 140,000 = 1,500,000 over 18 accounts; Marco: 6 x 50,000.
    for n in 0..18 {
        let arr = if n == 17 { "140000" } else { "80000" };
        let tier = ["Enterprise", "MidMarket", "SMB"][n % 3];
        system
            .onboard(&format!("Dana account {n:02}"), tier, arr, dana, onboarded_long_ago())
            .await;
    }
    for n in 0..6 {
        system
            .onboard(
                &format!("Marco account {n}"),
                "SMB",
                "50000",
                marco,
                onboarded_long_ago(),
            )
            .await;
    }
    system.caught_up().await;

    let query = "query($asOf: Date, $csm: UUID) { coverageReport(asOf: $asOf, csmId: $csm) {
        summary { accounts arr }
        team { csms averageAccounts averageArr }
        byCsm { csmId csmName accountsVsTeamAverage arrVsTeamAverage
                coverage { accounts arr underCovered }
                byTier { tier accounts arr } } } }";
    let report = system.graphql(query, json!({"asOf": as_of()})).await["coverageReport"].clone();
    assert_eq!(report["summary"], json!({"accounts": 24, "arr": "1800000.00"}));
    assert_eq!(
        report["team"],
        json!({"csms": 2, "averageAccounts": 12.0, "averageArr": "900000.00"})
    );
    let dana_book = report["byCsm"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["csmId"] == json!(dana))
        .unwrap()
        .clone();
    assert_eq!(dana_book["csmName"], "Dana Whitfield");
    assert_eq!(dana_book["coverage"]["accounts"], 18);
    assert_eq!(dana_book["coverage"]["arr"], "1500000.00");
    assert_eq!(dana_book["accountsVsTeamAverage"], 6.0);
    assert_eq!(dana_book["arrVsTeamAverage"], "600000.00");
    assert_eq!(
        dana_book["byTier"],
        json!([
            {"tier": "ENTERPRISE", "accounts": 6, "arr": "480000.00"},
            {"tier": "MID_MARKET", "accounts": 6, "arr": "480000.00"},
            {"tier": "SMB", "accounts": 6, "arr": "540000.00"},
        ])
    );
    let marco_book = report["byCsm"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["csmId"] == json!(marco))
        .unwrap()
        .clone();
    assert_eq!(marco_book["accountsVsTeamAverage"], -6.0);
    assert_eq!(marco_book["arrVsTeamAverage"], "-600000.00");

    // Filtered to Dana, the comparison still uses the whole team.
    let filtered = system.graphql(query, json!({"asOf": as_of(), "csm": dana})).await["coverageReport"].clone();
    assert_eq!(filtered["byCsm"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["summary"], json!({"accounts": 18, "arr": "1500000.00"}));
    assert_eq!(filtered["team"]["averageArr"], "900000.00");
    system.stop().await;
}

#[tokio::test]
async fn tc_162_3_low_health_and_three_weeks_of_silence_is_urgent_and_first_in_the_gap_list() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Aiko Tanaka").await;
    let at_risk = system
        .onboard("Globex", "MidMarket", "60000", csm, onboarded_long_ago())
        .await;
    let big = system
        .onboard("Initech", "Enterprise", "900000", csm, onboarded_long_ago())
        .await;
    let person = system.add_stakeholder(at_risk, "Hank", "champion").await;
    system
        .log_activity(at_risk, "meeting", days_before(21), &[person])
        .await;
    system.record_health(at_risk, 45.0, days_before(3)).await;
    // A larger account that is under-covered but healthy: attention, not urgent.
    system.log_activity(big, "email", days_before(40), &[]).await;
    system.record_health(big, 82.0, days_before(3)).await;
    system.caught_up().await;

    let account = coverage(&system, at_risk).await;
    assert_eq!(account["daysSinceContact"], 21);
    assert_eq!(account["healthScore"], 45.0);
    assert_eq!(account["healthColour"], "RED");
    assert_eq!(account["atRisk"], true);
    assert_eq!(account["priority"], "URGENT");

    let report = system
        .graphql(
            "query($asOf: Date) { coverageReport(asOf: $asOf) { gaps { customerId priority arr } } }",
            json!({"asOf": as_of()}),
        )
        .await;
    let gaps = report["coverageReport"]["gaps"].as_array().unwrap().clone();
    assert_eq!(gaps.len(), 2);
    assert_eq!(gaps[0]["customerId"], json!(at_risk));
    assert_eq!(gaps[0]["priority"], "URGENT");
    assert_eq!(gaps[1]["customerId"], json!(big));
    assert_eq!(gaps[1]["priority"], "ATTENTION");
    system.stop().await;
}

/// Logs the contacts of an every-deduction case and returns the account's coverage.
async fn every_deduction_case(tier: &str, contacts: &[(&str, u64)]) -> (Value, TestSystem) {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Samuel Osei").await;
    let customer = system
        .onboard("Umbrella", tier, "100000", csm, onboarded_long_ago())
        .await;
    let person = system.add_stakeholder(customer, "Alice", "executive").await;
    for (kind, days) in contacts {
        system.log_activity(customer, kind, days_before(*days), &[person]).await;
    }
    system.caught_up().await;
    (coverage(&system, customer).await, system)
}

#[tokio::test]
async fn enterprise_with_every_deduction() {
    // 20 days silent (12), 2 of 4 touches (15), 1 of 3 meetings (13.3), 1 of 4 people (7.5).
    let (account, system) = every_deduction_case("Enterprise", &[("meeting", 20), ("email", 25)]).await;
    assert_eq!(
        account["deductions"],
        json!({"contact": 12.0, "touches": 15.0, "meetings": 13.3, "stakeholders": 7.5})
    );
    assert_eq!(account["score"], 52.2);
    assert_eq!(
        account["gapAreas"],
        json!(["CONTACT", "TOUCHES", "MEETINGS", "STAKEHOLDERS"])
    );
    assert_eq!(account["status"], "UNDER_COVERED");
    system.stop().await;
}

#[tokio::test]
async fn midmarket_with_every_deduction() {
    // 25 days silent (8), 1 of 2 touches (15), 1 of 2 meetings (10), 1 of 3 people (6.7): 60.3.
    let (account, system) = every_deduction_case("MidMarket", &[("meeting", 25)]).await;
    assert_eq!(
        account["deductions"],
        json!({"contact": 8.0, "touches": 15.0, "meetings": 10.0, "stakeholders": 6.7})
    );
    assert_eq!(account["score"], 60.3);
    assert_eq!(
        account["gapAreas"],
        json!(["CONTACT", "TOUCHES", "MEETINGS", "STAKEHOLDERS"])
    );
    system.stop().await;
}

#[tokio::test]
async fn smb_with_every_deduction() {
    // 40 days silent (20), 0 of 1 touches (30), 0 of 1 meetings (20), 1 of 2 people (5): 25.
    let (account, system) = every_deduction_case("SMB", &[("email", 40)]).await;
    assert_eq!(
        account["deductions"],
        json!({"contact": 20.0, "touches": 30.0, "meetings": 20.0, "stakeholders": 5.0})
    );
    assert_eq!(account["score"], 25.0);
    assert_eq!(account["touches30d"], 0);
    assert_eq!(account["stakeholdersEngaged"], 1);
    system.stop().await;
}

#[tokio::test]
async fn a_retracted_activity_stops_counting_and_notes_are_not_contact() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let customer = system.onboard("Hooli", "SMB", "12000", csm, onboarded_long_ago()).await;
    let kept = system.log_activity(customer, "call", days_before(10), &[]).await;
    let wrong = system.log_activity(customer, "email", days_before(2), &[]).await;
    system.log_activity(customer, "note", days_before(1), &[]).await;
    let (status, answer) = system
        .send(
            reqwest::Method::DELETE,
            &format!(
                "/api/v1/customers/{customer}/activities/{}",
                wrong["activity_id"].as_str().unwrap()
            ),
            Some(&json!({"reason": "logged on the wrong account"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["sequence"], 5);
    system.caught_up().await;

    let account = coverage(&system, customer).await;
    assert_eq!(account["touches30d"], 1);
    assert_eq!(account["lastContactDate"], json!(days_before(10)));
    assert_eq!(account["daysSinceContact"], 10);
    assert!(kept["event_ids"].as_array().unwrap().len() == 1);
    system.stop().await;
}

#[tokio::test]
async fn an_account_never_contacted_is_scored_from_its_onboarding_day() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let onboarded = days_before(10).and_hms_opt(9, 0, 0).unwrap().and_utc();
    let customer = system.onboard("Wonka", "SMB", "9000", csm, onboarded).await;
    system.caught_up().await;
    let account = coverage(&system, customer).await;
    assert_eq!(account["daysSinceContact"], Value::Null);
    assert_eq!(account["lastContactDate"], Value::Null);
    // No contact deduction within 30 days of onboarding: 100 - 30 - 20 - 10.
    assert_eq!(account["score"], 40.0);
    let before = system
        .graphql_raw(ACCOUNT_COVERAGE, json!({"id": customer, "asOf": days_before(11)}))
        .await;
    assert_eq!(before["errors"][0]["extensions"]["code"], "NOT_FOUND");
    system.stop().await;
}

/// Contact is the customers projector's activities: a customer's coverage follows that
/// projector's progress too, even while the coverage projector has nothing new for it (its
/// report memo and the query API's cache are versioned by both projectors' checkpoints).
#[tokio::test]
async fn contact_applied_by_the_customers_projector_alone_counts_at_once_and_once() {
    let mut system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Gil Grissom").await;
    let customer = system
        .onboard("Monsters Inc", "SMB", "12000", csm, onboarded_long_ago())
        .await;
    system.caught_up().await;
    let report = "query($asOf: Date) { coverageReport(asOf: $asOf) { accounts { name touches30d } } }";
    let touches = |answer: &Value| answer["coverageReport"]["accounts"][0]["touches30d"].clone();
    // Both remembered: the memo row of the account and the report's cached rows.
    assert_eq!(coverage(&system, customer).await["touches30d"], 0);
    assert_eq!(touches(&system.graphql(report, json!({"asOf": as_of()})).await), 0);

    system.kill_projection().await;
    system.log_activity(customer, "call", days_before(3), &[]).await;
    let stored: StoredEvent = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events ORDER BY global_position DESC LIMIT 1"
    ))
    .fetch_one(&system.pool)
    .await
    .unwrap();
    let applied = projection_service::projector::apply_once(
        &system.pool,
        &projection_service::customers::CustomersProjector,
        &stored.into_envelope(),
    )
    .await
    .unwrap();
    assert_eq!(applied, Applied::Applied { gap_filled: 0 });
    assert_eq!(coverage(&system, customer).await["touches30d"], 1);
    assert_eq!(touches(&system.graphql(report, json!({"asOf": as_of()})).await), 1);

    // The coverage projector then applies the same event: nothing counts twice.
    system.start_projection().await.unwrap();
    system.caught_up().await;
    assert_eq!(coverage(&system, customer).await["touches30d"], 1);
    assert_eq!(touches(&system.graphql(report, json!({"asOf": as_of()})).await), 1);
    system.stop().await;
}

/// A report about a past day uses that day's facts (docs/DOMAIN.md section 1): after a handoff,
/// a change of tier, ARR and renewal date, a new health score and a new custom-field value
/// today, the coverage report, the workload, the engagement report and the customer's 360 for
/// yesterday show the CSM, tier, ARR, renewal, health and field of yesterday; for today, today's.
#[tokio::test]
async fn a_report_about_yesterday_uses_yesterdays_csm_tier_arr_renewal_health_and_fields() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana Whitfield").await;
    let marco = system.register_csm("Marco Bianchi").await;
    let (status, answer) = system
        .post(
            "/api/v1/custom-fields",
            &json!({"key": "segment", "label": "Segment", "field_type": "single_select", "options": ["Growth", "Strategic"]}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let today = Utc::now().date_naive();
    let yesterday = today - Days::new(1);
    let customer = system.onboard("Acme", "SMB", "10000", dana, onboarded_long_ago()).await;
    let path = |suffix: &str| format!("/api/v1/customers/{customer}{suffix}");
    system.record_health(customer, 80.0, today - Days::new(5)).await;
    let (status, _) = system
        .send(
            reqwest::Method::PUT,
            &path("/custom-fields"),
            Some(&json!({"values": {"segment": "Growth"}})),
        )
        .await;
    assert_eq!(status, 200);
    // The day before, the profile as it was: the renewal date the onboarding set.
    system.caught_up().await;
    let before = system
        .graphql(
            "query($id: UUID!) { customer(id: $id) { renewalDate } }",
            json!({"id": customer}),
        )
        .await["customer"]["renewalDate"]
        .clone();

    // Today: handed to Marco, Enterprise at 50,000, renewal moved, health 45, Strategic.
    for (method, suffix, body) in [
        (
            reqwest::Method::PUT,
            "/csm",
            json!({"csm_id": marco, "reason": "territory"}),
        ),
        (
            reqwest::Method::PATCH,
            "",
            json!({"tier": "Enterprise", "arr": "50000", "renewal_date": (today + Days::new(400)).to_string()}),
        ),
        (
            reqwest::Method::PUT,
            "/custom-fields",
            json!({"values": {"segment": "Strategic"}}),
        ),
    ] {
        let (status, answer) = system.send(method, &path(suffix), Some(&body)).await;
        assert_eq!(status, 200, "{suffix}: {answer}");
    }
    system.record_health(customer, 45.0, today).await;
    system.caught_up().await;

    let on = |day: NaiveDate| {
        let system = &system;
        async move {
            system
                .graphql(
                    "query($id: UUID!, $d: Date) {
                       coverageReport(asOf: $d) { accounts { tier arr csmName } byCsm { csmName coverage { accounts } } }
                       csmWorkload(asOf: $d) { csms { name accounts } }
                       engagementMetrics(asOf: $d) { items { tier arr } }
                       customer(id: $id) { onDay(asOf: $d) { asOf tier arr csm { name } renewalDate daysUntilRenewal
                         health { score } healthColour customFields { key value } } } }",
                    json!({"id": customer, "d": day}),
                )
                .await
        }
    };
    let then = on(yesterday).await;
    assert_eq!(
        then["coverageReport"]["accounts"],
        json!([{"tier": "SMB", "arr": "10000.00", "csmName": "Dana Whitfield"}]),
        "{then}"
    );
    let by_csm: Vec<(String, i64)> = then["coverageReport"]["byCsm"]
        .as_array()
        .unwrap()
        .iter()
        .map(|csm| {
            (
                csm["csmName"].as_str().unwrap().to_owned(),
                csm["coverage"]["accounts"].as_i64().unwrap(),
            )
        })
        .filter(|(_, accounts)| *accounts > 0)
        .collect();
    assert_eq!(by_csm, [("Dana Whitfield".to_owned(), 1)]);
    let workload: Vec<(String, i64)> = then["csmWorkload"]["csms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|csm| {
            (
                csm["name"].as_str().unwrap().to_owned(),
                csm["accounts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(workload.contains(&("Dana Whitfield".to_owned(), 1)), "{workload:?}");
    assert!(workload.contains(&("Marco Bianchi".to_owned(), 0)), "{workload:?}");
    assert_eq!(
        then["engagementMetrics"]["items"],
        json!([{"tier": "SMB", "arr": "10000.00"}])
    );
    let day = &then["customer"]["onDay"];
    assert_eq!(day["asOf"], json!(yesterday));
    assert_eq!(
        (&day["tier"], &day["arr"], &day["csm"]["name"], &day["renewalDate"]),
        (&json!("SMB"), &json!("10000.00"), &json!("Dana Whitfield"), &before)
    );
    assert_eq!(
        (&day["health"]["score"], &day["healthColour"]),
        (&json!(80.0), &json!("GREEN"))
    );
    // Both values were set today: yesterday the field held nothing.
    assert_eq!(day["customFields"][0]["value"], Value::Null, "{day}");
    let renewal = NaiveDate::parse_from_str(before.as_str().unwrap(), "%Y-%m-%d").unwrap();
    assert_eq!(day["daysUntilRenewal"], (renewal - yesterday).num_days());

    let now = on(today).await;
    assert_eq!(
        now["coverageReport"]["accounts"],
        json!([{"tier": "ENTERPRISE", "arr": "50000.00", "csmName": "Marco Bianchi"}]),
        "{now}"
    );
    let day = &now["customer"]["onDay"];
    assert_eq!(
        (
            &day["tier"],
            &day["csm"]["name"],
            &day["health"]["score"],
            &day["customFields"][0]["value"]
        ),
        (
            &json!("ENTERPRISE"),
            &json!("Marco Bianchi"),
            &json!(45.0),
            &json!("Strategic")
        )
    );
    assert_eq!(day["daysUntilRenewal"], 400);
    system.stop().await;
}
