//! The churn-risk score (docs/DOMAIN.md section 12): each factor's points from the account's
//! facts, the events behind them, `asOf`, `knownAt` and what-if rules, the rules saved in the
//! Rules stream, the customer list ordered and filtered by it, and the backtest against the
//! churns and renewals in the store. Days are counted from today, so nothing here depends on
//! the date it runs.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tests::{at_or_now, uuid, TestSystem};
use uuid::Uuid;

const RISK: &str = "query($id: UUID!, $asOf: Date, $knownAt: DateTime, $rules: RulesInput) {
    customer(id: $id) { risk { score band }
      churnRisk(asOf: $asOf, knownAt: $knownAt, rules: $rules) { score band rulesVersion highFrom watchFrom
        factors { factor label finding weight severity points evidence { eventId description } } } } }";

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn day(n: i64) -> NaiveDate {
    today() + Duration::days(n)
}

/// Onboards a customer `onboarded` days ago renewing `renewal` days from today.
async fn onboard(system: &TestSystem, name: &str, csm: Uuid, onboarded: i64, renewal: i64) -> Uuid {
    let at: DateTime<Utc> = Utc::now() - Duration::days(onboarded);
    let answer = system
        .post_ok(
            "/api/v1/customers",
            &json!({"name": name, "salesforce_id": "0015g00000AbCdEAAV", "tier": "Enterprise", "arr": "250000",
                    "csm_id": csm, "contract_start": at.date_naive(), "renewal_date": day(renewal), "occurred_at": at}),
        )
        .await;
    uuid(&answer["customer_id"])
}

async fn nps(system: &TestSystem, customer: Uuid, score: u8, on: NaiveDate) {
    system
        .post_ok(
            &format!("/api/v1/customers/{customer}/nps"),
            &json!({"score": score, "occurred_at": at_or_now(on, 10)}),
        )
        .await;
}

/// The factor of that kind in an explanation.
fn factor<'a>(risk: &'a Value, kind: &str) -> &'a Value {
    risk["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["factor"] == kind)
        .unwrap_or_else(|| panic!("no factor {kind} in {risk}"))
}

#[tokio::test]
async fn the_score_adds_each_factor_s_points_and_names_the_events_behind_them() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    let acme = onboard(&system, "Acme", dana, 200, 60).await;
    system.record_health(acme, 70.0, day(-35)).await;
    system.record_health(acme, 40.0, day(-2)).await;
    system.log_activity(acme, "email", day(-28), &[]).await;
    nps(&system, acme, 4, day(-10)).await;
    system
        .post_ok(
            &format!("/api/v1/customers/{acme}/issues"),
            &json!({"title": "Sync delays", "severity": "high"}),
        )
        .await;
    system
        .post_ok(
            &format!("/api/v1/customers/{acme}/escalations"),
            &json!({"title": "Executive complaint", "severity": "critical"}),
        )
        .await;
    let (status, answer) = system
        .send(
            Method::PUT,
            &format!("/api/v1/customers/{acme}/adoption-stage"),
            Some(&json!({"stage": "implementing"})),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    for (use_case, state) in [("Forecasting", "implemented"), ("Reporting", "not_started")] {
        let (status, answer) = system
            .send(
                Method::PUT,
                &format!("/api/v1/customers/{acme}/use-cases"),
                Some(&json!({"use_case": use_case, "status": state})),
            )
            .await;
        assert!(status.is_success(), "{answer}");
    }
    system.caught_up().await;

    let data = system.graphql(RISK, json!({"id": acme})).await;
    let risk = &data["customer"]["churnRisk"];
    let points = |kind: &str| factor(risk, kind)["points"].as_f64().unwrap();
    // Health 40: 20 × 0.6. Down 30 points in 30 days: the full 10.
    assert_eq!(points("HEALTH"), 12.0);
    assert_eq!(points("HEALTH_TREND"), 10.0);
    assert_eq!(
        factor(risk, "HEALTH")["finding"],
        format!("Latest score 40 (measured {})", day(-2).format("%-d %b %Y"))
    );
    let health_events: Vec<&Value> = factor(risk, "HEALTH_TREND")["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["eventId"])
        .collect();
    assert_eq!(health_events.len(), 2, "both scores are behind the trend");
    // 28 days since the contact against Enterprise's 14: (28 − 14) / 14 = full.
    assert_eq!(points("CONTACT"), 10.0);
    assert_eq!(
        factor(risk, "CONTACT")["evidence"][0]["description"],
        format!("Last contact: email on {} (email)", day(-28))
    );
    // A detractor, a high issue (¾ of 5), an open escalation, the renewal in 60 days (half of 5),
    // implementing (0.75) with half the use cases live (0.5): 5 × 0.625.
    assert_eq!(points("NPS"), 10.0);
    assert_eq!(points("ISSUES"), 3.8);
    assert_eq!(points("ESCALATIONS"), 5.0);
    assert_eq!(points("RENEWAL"), 2.5);
    assert_eq!(points("ADOPTION"), 3.1);
    assert_eq!(factor(risk, "ISSUES")["finding"], "1 open: Sync delays (high)");
    // Engagement and coverage agree with their own reports on the same day.
    let reports = system
        .graphql(
            "query($id: UUID!) { customerEngagement(customerId: $id, period: \"30d\") { score change }
               accountCoverage(customerId: $id) { priority } }",
            json!({"id": acme}),
        )
        .await;
    let engagement = reports["customerEngagement"]["score"].as_f64().unwrap();
    let change = reports["customerEngagement"]["change"].as_f64().unwrap();
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    assert_eq!(points("ENGAGEMENT"), round1(15.0 * (100.0 - engagement) / 100.0));
    assert_eq!(
        points("ENGAGEMENT_TREND"),
        round1(5.0 * ((-change).max(0.0) / 20.0).min(1.0))
    );
    let coverage = match reports["accountCoverage"]["priority"].as_str().unwrap() {
        "URGENT" => 10.0,
        "ATTENTION" => 5.0,
        _ => 0.0,
    };
    assert_eq!(points("COVERAGE"), coverage);
    let exact = 12.0
        + 10.0
        + 15.0 * (100.0 - engagement) / 100.0
        + 5.0 * ((-change).max(0.0) / 20.0).min(1.0)
        + coverage
        + 10.0
        + 10.0
        + 3.75
        + 5.0
        + 2.5
        + 3.125;
    assert_eq!(risk["score"].as_f64().unwrap(), round1(exact));
    assert_eq!(risk["band"], "HIGH");
    assert_eq!(
        (risk["highFrom"].as_f64(), risk["watchFrom"].as_f64()),
        (Some(50.0), Some(30.0))
    );
    assert_eq!(risk["rulesVersion"], "0");
    // The list's figure is the same score.
    assert_eq!(
        data["customer"]["risk"],
        json!({"score": risk["score"], "band": "HIGH"})
    );
    // In the high band: one alert, saying the score.
    tests::eventually(std::time::Duration::from_secs(20), || async {
        let raised: Vec<String> =
            sqlx::query_scalar("SELECT message FROM alerts WHERE kind = 'churn_risk_high' AND customer_id = $1")
                .bind(acme)
                .fetch_all(&system.pool)
                .await
                .unwrap();
        raised
            == [format!(
                "Acme: churn risk is high ({:.1} of 100)",
                risk["score"].as_f64().unwrap()
            )]
    })
    .await
    .expect("a high churn risk raises one alert");
    // Factors come largest first.
    let listed: Vec<f64> = risk["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["points"].as_f64().unwrap())
        .collect();
    assert!(listed.windows(2).all(|w| w[0] >= w[1]), "{listed:?}");

    // As of 20 days ago: health was 70 (20 × 0.3), the detractor had not answered yet.
    let then = system.graphql(RISK, json!({"id": acme, "asOf": day(-20)})).await;
    let then = &then["customer"]["churnRisk"];
    assert_eq!(factor(then, "HEALTH")["points"], 6.0);
    assert_eq!(factor(then, "NPS")["severity"], Value::Null);
    assert_eq!(factor(then, "NPS")["finding"], "No data");
    // As known before the latest score was recorded: the 70 was the latest.
    let recorded: DateTime<Utc> = sqlx::query_scalar(
        "SELECT recorded_at FROM events WHERE aggregate_id = $1 AND event_type = 'HealthScoreRecorded'
          ORDER BY sequence DESC LIMIT 1",
    )
    .bind(acme.to_string())
    .fetch_one(&system.pool)
    .await
    .unwrap();
    let known = system
        .graphql(
            RISK,
            json!({"id": acme, "knownAt": (recorded - Duration::milliseconds(1)).to_rfc3339()}),
        )
        .await;
    assert_eq!(factor(&known["customer"]["churnRisk"], "HEALTH")["points"], 6.0);

    // What-if weights: NPS worth 20 and health 10 move the score by (20 − 10) × 1 − (10 × 0.6).
    let mut weights = json!({"health": 10, "healthTrend": 10, "engagement": 15, "engagementTrend": 5, "coverage": 10,
        "contact": 10, "nps": 20, "issues": 5, "escalations": 5, "renewal": 5, "adoption": 5});
    let what_if = system
        .graphql(
            RISK,
            json!({"id": acme, "rules": {"risk": {"weights": weights, "highFrom": 50, "watchFrom": 30}}}),
        )
        .await;
    let what_if = &what_if["customer"]["churnRisk"];
    assert!(what_if["rulesVersion"].as_str().unwrap().starts_with("what-if:"));
    assert_eq!(what_if["score"].as_f64().unwrap(), round1(exact + 10.0 - 6.0));
    weights["nps"] = json!(10);
    let refused = system
        .graphql_raw(
            RISK,
            json!({"id": acme, "rules": {"risk": {"weights": weights, "highFrom": 50, "watchFrom": 30}}}),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "rules.risk.weights");

    // Saving rules: refused unless they add up, then every score uses them.
    let snake = json!({"health": 10, "health_trend": 10, "engagement": 15, "engagement_trend": 5, "coverage": 10,
        "contact": 10, "nps": 10, "issues": 5, "escalations": 5, "renewal": 5, "adoption": 5});
    let (status, answer) = system
        .send(
            Method::PUT,
            "/api/v1/rules/churn-risk",
            Some(&json!({"weights": snake, "high_from": 50, "watch_from": 30})),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"], "weights_sum");
    assert!(answer["fields"]["weights"].is_string(), "{answer}");
    let (status, answer) = system
        .send(
            Method::PUT,
            "/api/v1/rules/churn-risk",
            Some(
                &json!({"weights": {"health": 20, "health_trend": 10, "engagement": 15, "engagement_trend": 5,
                "coverage": 10, "contact": 10, "nps": 10, "issues": 5, "escalations": 5, "renewal": 5, "adoption": 5},
                "custom": [], "high_from": 30, "watch_from": 40}),
            ),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"], "out_of_range");
    assert!(answer["fields"]["bands"].is_string(), "{answer}");
    let mut saved = snake.clone();
    saved["nps"] = json!(20);
    let (status, answer) = system
        .send(
            Method::PUT,
            "/api/v1/rules/churn-risk",
            Some(&json!({"weights": saved, "high_from": 60, "watch_from": 30})),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    system.caught_up().await;
    let now = system.graphql(RISK, json!({"id": acme})).await;
    let now = &now["customer"]["churnRisk"];
    assert_eq!(now["score"].as_f64().unwrap(), round1(exact + 10.0 - 6.0));
    assert_eq!(now["highFrom"], 60.0);
    assert_ne!(now["rulesVersion"], "0");
    let rules = system
        .graphql("{ rules { risk { weights { nps health } highFrom } } }", json!({}))
        .await;
    assert_eq!(
        rules["rules"]["risk"],
        json!({"weights": {"nps": 20.0, "health": 10.0}, "highFrom": 60.0})
    );
}

#[tokio::test]
async fn the_list_orders_and_filters_by_risk_and_partners_see_none_of_it() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    let calm = onboard(&system, "Calm", dana, 100, 300).await;
    let shaky = onboard(&system, "Shaky", dana, 100, 300).await;
    let burning = onboard(&system, "Burning", dana, 100, 20).await;
    system.record_health(calm, 95.0, day(-3)).await;
    system.record_health(shaky, 55.0, day(-3)).await;
    system.record_health(burning, 15.0, day(-3)).await;
    for customer in [calm, shaky] {
        for days in [-12, -5, -1] {
            system.log_activity(customer, "meeting", day(days), &[]).await;
        }
    }
    nps(&system, burning, 1, day(-4)).await;
    nps(&system, calm, 10, day(-4)).await;
    system.caught_up().await;

    let list = |filter: Value| {
        let system = &system;
        async move {
            let data = system
                .graphql(
                    "query($f: CustomerFilter) { customers(filter: $f, sort: RISK_DESC, first: 2) { totalCount
                       nodes { name risk { score band } } pageInfo { hasNextPage endCursor } } }",
                    json!({"f": filter}),
                )
                .await;
            data["customers"].clone()
        }
    };
    let all = list(json!({})).await;
    let names: Vec<&str> = all["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Burning", "Shaky"]);
    assert_eq!(all["totalCount"], 3);
    let scores: Vec<f64> = all["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["risk"]["score"].as_f64().unwrap())
        .collect();
    assert!(scores[0] > scores[1], "{scores:?}");
    assert_eq!(all["nodes"][0]["risk"]["band"], "HIGH");
    // The next page continues in order.
    let next = system
        .graphql(
            "query($after: String) { customers(sort: RISK_DESC, first: 2, after: $after) { nodes { name } } }",
            json!({"after": all["pageInfo"]["endCursor"]}),
        )
        .await;
    assert_eq!(next["customers"]["nodes"], json!([{"name": "Calm"}]));
    let high = list(json!({"riskBand": "HIGH"})).await;
    assert_eq!(high["totalCount"], 1);
    assert_eq!(high["nodes"][0]["name"], "Burning");
    let low = list(json!({"riskBand": "LOW"})).await;
    assert!(low["nodes"].as_array().unwrap().iter().any(|n| n["name"] == "Calm"));

    // Partners: no score, and no ordering or filtering by it.
    let partner = system.post_ok("/api/v1/partners", &json!({"name": "Northwind"})).await;
    let partner_id = uuid(&partner["partner_id"]);
    system
        .post_ok(
            &format!("/api/v1/customers/{burning}/partners"),
            &json!({"partner_id": partner_id}),
        )
        .await;
    system.caught_up().await;
    let token = tests::token(events::metadata::Role::Partner, "pat", Some(partner_id));
    let seen = system
        .graphql_as(&token, "{ customers { nodes { name risk { score } } } }", json!({}))
        .await;
    assert_eq!(
        seen["data"]["customers"]["nodes"],
        json!([{"name": "Burning", "risk": null}])
    );
    let refused = system
        .graphql_as(&token, "{ customers(sort: RISK_DESC) { nodes { name } } }", json!({}))
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let refused = system
        .graphql_as(
            &token,
            "query($id: UUID!) { customer(id: $id) { churnRisk { score } } }",
            json!({"id": burning}),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let refused = system
        .graphql_as(&token, "{ churnRiskBacktest { churned } }", json!({}))
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    // The alert states the score: staff read it, the partner's alert list leaves it out.
    let query = "query($id: UUID!) { alerts(customerId: $id) { totalCount nodes { kind } } }";
    tests::eventually(std::time::Duration::from_secs(20), || async {
        let staff = system.graphql(query, json!({"id": burning})).await;
        staff["alerts"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "churn_risk_high")
    })
    .await
    .expect("the riskiest account raises a churn-risk alert");
    let theirs = system.graphql_as(&token, query, json!({"id": burning})).await;
    let kinds: Vec<&Value> = theirs["data"]["alerts"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["kind"])
        .collect();
    assert!(!kinds.contains(&&json!("churn_risk_high")), "{theirs}");
    assert_eq!(theirs["data"]["alerts"]["totalCount"], kinds.len());
}

#[tokio::test]
async fn the_backtest_scores_every_churn_and_renewal_before_it_happened() {
    let system = TestSystem::spawn().await.unwrap();
    let dana = system.register_csm("Dana").await;
    // Two accounts that looked lost for months: one churned yesterday, one renewed anyway.
    let lost = onboard(&system, "Lost", dana, 200, 300).await;
    let saved = onboard(&system, "Saved", dana, 200, 300).await;
    system.record_health(lost, 30.0, day(-100)).await;
    system.record_health(saved, 20.0, day(-100)).await;
    nps(&system, lost, 2, day(-95)).await;
    nps(&system, saved, 3, day(-95)).await;
    // Two looked after all along, and renewed.
    let loyal = onboard(&system, "Loyal", dana, 200, 300).await;
    let steady = onboard(&system, "Steady", dana, 200, 300).await;
    for customer in [loyal, steady] {
        system.record_health(customer, 90.0, day(-100)).await;
        nps(&system, customer, 10, day(-95)).await;
        for days in (0..13).map(|k| -120 + 10 * k) {
            system.log_activity(customer, "meeting", day(days), &[]).await;
        }
    }
    let (status, answer) = system
        .send(
            Method::POST,
            &format!("/api/v1/customers/{lost}/churn"),
            Some(&json!({"reason": "Budget cut", "churned_on": day(-1)})),
        )
        .await;
    assert!(status.is_success(), "{answer}");
    for customer in [saved, loyal, steady] {
        let (status, answer) = system
            .send(
                Method::POST,
                &format!("/api/v1/customers/{customer}/renewal"),
                Some(&json!({"renewal_date": day(665)})),
            )
            .await;
        assert!(status.is_success(), "{answer}");
    }
    system.caught_up().await;

    let data = system
        .graphql(
            "{ churnRiskBacktest { rulesVersion churned renewed horizons { daysBefore cases churned flagged truePositives
                 precision recall lift watchOrHighPrecision watchOrHighRecall }
               cases { name outcome outcomeOn scores { daysBefore on score band } } } }",
            json!({}),
        )
        .await;
    let backtest = &data["churnRiskBacktest"];
    assert_eq!(
        (backtest["churned"].as_u64(), backtest["renewed"].as_u64()),
        (Some(1), Some(3))
    );
    for horizon in backtest["horizons"].as_array().unwrap() {
        // Two in the high band, one of which churned: precision ½, recall 1, lift ½ ÷ ¼ = 2.
        assert_eq!(
            horizon,
            &json!({"daysBefore": horizon["daysBefore"], "cases": 4, "churned": 1, "flagged": 2, "truePositives": 1,
                    "precision": 0.5, "recall": 1.0, "lift": 2.0, "watchOrHighPrecision": 0.5, "watchOrHighRecall": 1.0}),
        );
    }
    let days: Vec<u64> = backtest["horizons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["daysBefore"].as_u64().unwrap())
        .collect();
    assert_eq!(days, [30, 60, 90]);
    let lost_case = backtest["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Lost")
        .unwrap();
    assert_eq!(lost_case["outcome"], "CHURNED");
    assert_eq!(lost_case["outcomeOn"], json!(day(-1)));
    assert_eq!(lost_case["scores"][0]["on"], json!(day(-31)));
    // What-if: with the high band from 70, nothing is flagged and precision is unknown.
    let weights = json!({"health": 20, "healthTrend": 10, "engagement": 15, "engagementTrend": 5, "coverage": 10,
        "contact": 10, "nps": 10, "issues": 5, "escalations": 5, "renewal": 5, "adoption": 5});
    let strict = system
        .graphql(
            "query($rules: RulesInput) { churnRiskBacktest(rules: $rules, horizons: [30]) { rulesVersion
               horizons { flagged precision recall lift } } }",
            json!({"rules": {"risk": {"weights": weights, "highFrom": 70, "watchFrom": 30}}}),
        )
        .await;
    assert!(strict["churnRiskBacktest"]["rulesVersion"]
        .as_str()
        .unwrap()
        .starts_with("what-if:"));
    assert_eq!(
        strict["churnRiskBacktest"]["horizons"],
        json!([{"flagged": 0, "precision": null, "recall": 0.0, "lift": null}])
    );
    let refused = system
        .graphql_raw("{ churnRiskBacktest(horizons: [0]) { churned } }", json!({}))
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["field"], "horizons");
}
