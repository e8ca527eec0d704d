//! Hostile GraphQL documents, sent over HTTP as any authenticated role could: none may end the
//! process, each is refused with a clear code, and the API keeps answering afterwards.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::TestSystem;

async fn post_raw(system: &TestSystem, token: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
    let mut request = system
        .http
        .post(&system.graphql_url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the query API answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post_query(system: &TestSystem, query: &str) -> (StatusCode, Value) {
    let body = serde_json::to_vec(&json!({"query": query})).unwrap();
    post_raw(system, Some(&system.admin), body).await
}

fn code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

/// The API still answers an ordinary query.
async fn still_answers(system: &TestSystem) {
    let data = system.graphql("{ projectionStatus { projector } }", json!({})).await;
    assert_eq!(data["projectionStatus"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn deeply_nested_values_are_refused_before_parsing_wherever_they_stand() {
    let system = TestSystem::spawn().await.unwrap();
    let (open, close) = ("[".repeat(1500), "]".repeat(1500));
    let objects = "{a: ".repeat(1500) + "1" + &"}".repeat(1500);
    let documents = [
        // A list argument, an object argument, a directive argument, a variable's default.
        format!("{{ customers(first: {open}1{close}) {{ totalCount }} }}"),
        format!("{{ customers(first: {objects}) {{ totalCount }} }}"),
        format!("{{ projectionStatus @include(if: {open}true{close}) {{ projector }} }}"),
        format!("query($x: Int = {open}1{close}) {{ projectionStatus {{ projector }} }}"),
        // Unclosed: the scan does not need the brackets to balance.
        format!("{{ customers(first: {open}"),
    ];
    for document in &documents {
        assert!(document.len() < 8 * 1024, "a small document");
        let (status, answer) = post_query(&system, document).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(code(&answer), "QUERY_TOO_DEEP", "{answer}");
        still_answers(&system).await;
    }
    system.stop().await;
}

#[tokio::test]
async fn oversized_bodies_and_documents_are_refused_and_nothing_is_read_before_authentication() {
    let system = TestSystem::spawn().await.unwrap();
    // 40 MiB: refused as too large with a token, as unauthenticated without one.
    let huge = serde_json::to_vec(
        &json!({"query": format!("{{ projectionStatus {{ projector }} }} #{}", "x".repeat(40 << 20))}),
    )
    .unwrap();
    let (status, answer) = post_raw(&system, Some(&system.admin), huge.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(code(&answer), "PAYLOAD_TOO_LARGE");
    let (status, answer) = post_raw(&system, None, huge).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(code(&answer), "UNAUTHENTICATED");

    // Within the body limit but past the document limit: a long comment is still length.
    let long = format!("{{ projectionStatus {{ projector }} }} #{}", "x".repeat(100 * 1024));
    let (status, answer) = post_query(&system, &long).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&answer), "QUERY_TOO_LARGE");
    still_answers(&system).await;
    system.stop().await;
}

#[tokio::test]
async fn batches_bad_json_deep_variables_and_other_media_types_get_json_errors() {
    let system = TestSystem::spawn().await.unwrap();
    let one = json!({"query": "{ projectionStatus { projector } }"});
    let (status, answer) = post_raw(
        &system,
        Some(&system.admin),
        serde_json::to_vec(&json!([one, one])).unwrap(),
    )
    .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::BAD_REQUEST, "BATCH_NOT_SUPPORTED")
    );

    let (status, answer) = post_raw(&system, Some(&system.admin), b"{\"query\": ".to_vec()).await;
    assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, "INVALID_JSON"));

    let (status, answer) = post_raw(&system, Some(&system.admin), b"\"{ projectionStatus }\"".to_vec()).await;
    assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, "INVALID_REQUEST"));

    // Variables nested 5,000 deep: JSON past its recursion limit is refused as JSON.
    let deep = format!(
        "{{\"query\": \"query($x: Int) {{ projectionStatus {{ projector }} }}\", \"variables\": {{\"x\": {}1{}}}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let (status, answer) = post_raw(&system, Some(&system.admin), deep.into_bytes()).await;
    assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, "INVALID_JSON"));

    let response = system
        .http
        .post(&system.graphql_url)
        .bearer_auth(&system.admin)
        .header("content-type", "text/plain")
        .body("{ projectionStatus { projector } }")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(code(&answer), "UNSUPPORTED_MEDIA_TYPE");
    still_answers(&system).await;
    system.stop().await;
}

#[tokio::test]
async fn the_standard_introspection_query_works_for_every_role_and_deep_data_queries_do_not() {
    use events::metadata::Role;
    let system = TestSystem::spawn().await.unwrap();
    let introspection = include_str!("../fixtures/introspection.graphql");
    let partner = uuid::Uuid::now_v7();
    for role in Role::ALL {
        let token = tests::token(role, "tool", (role == Role::Partner).then_some(partner));
        let answer = system.graphql_as(&token, introspection, json!({})).await;
        assert!(answer.get("errors").is_none(), "{role:?}: {answer}");
        let types = answer["data"]["__schema"]["types"].as_array().unwrap();
        assert!(types.iter().any(|t| t["name"] == "CoverageReport"), "{role:?}");
    }
    // Mixed with data, a query runs under the ordinary limits.
    let mixed = system
        .graphql_raw(
            "{ __schema { queryType { name } } projectionStatus { projector } }",
            json!({}),
        )
        .await;
    assert_eq!(mixed["data"]["projectionStatus"][0]["projector"], "coverage", "{mixed}");
    // The introspection schema still has a depth limit of its own.
    let over = format!(
        "{{ a: __type(name: \"Query\") {{ fields {{ type {{ {} name {} }} }} }} }}",
        "ofType { ".repeat(18),
        "} ".repeat(18)
    );
    let answer = system.graphql_raw(&over, json!({})).await;
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nested too deep"),
        "{answer}"
    );
    system.stop().await;
}

#[tokio::test]
async fn costly_requests_are_refused_by_their_size_not_run() {
    let system = TestSystem::spawn().await.unwrap();
    let aliases: String = (0..30)
        .map(|i| format!("r{i}: coverageReport {{ summary {{ accounts }} }} "))
        .collect();
    let answer = system.graphql_raw(&format!("{{ {aliases} }}"), json!({})).await;
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too complex"),
        "{answer}"
    );
    let answer = system
        .graphql_raw(
            "{ a: coverageReport { summary { accounts } } b: coverageReport { summary { accounts } } }",
            json!({}),
        )
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");

    let trend = "query($from: Date, $to: Date, $g: Granularity!) { portfolioHealthTrend(from: $from, to: $to, granularity: $g) { bucket } }";
    let answer = system
        .graphql_raw(trend, json!({"from": "0001-01-01", "to": "9999-12-31", "g": "DAY"}))
        .await;
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("between 1970-01-01 and 2099-12-31"),
        "{answer}"
    );
    let answer = system
        .graphql_raw(trend, json!({"from": "1970-01-01", "to": "2099-12-31", "g": "DAY"}))
        .await;
    assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["field"], "from");
    let answer = system
        .graphql_raw(trend, json!({"from": "2020-01-01", "to": "2026-01-01", "g": "WEEK"}))
        .await;
    assert_eq!(
        answer["data"]["portfolioHealthTrend"].as_array().unwrap().len(),
        314,
        "{answer}"
    );

    let renewals = "query($from: Date, $to: Date) { renewals(from: $from, to: $to) { pageInfo { hasNextPage } } }";
    let answer = system
        .graphql_raw(renewals, json!({"from": "1970-01-01", "to": "2099-01-01"}))
        .await;
    assert_eq!(answer["errors"][0]["extensions"]["field"], "to", "{answer}");
    system.stop().await;
}

#[tokio::test]
async fn a_name_search_is_bounded_and_matches_percent_and_underscore_as_themselves() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let onboarded = chrono::Utc::now() - chrono::Duration::days(10);
    for name in ["100% Juice", "Juice Bar", "Snake_Case Inc", "SnakeXCase Ltd"] {
        system.onboard(name, "SMB", "1000", csm, onboarded).await;
    }
    system.caught_up().await;
    let search = "query($s: String) { customers(filter: {search: $s}) { edges { node { name } } } }";
    let names = |answer: &Value| -> Vec<String> {
        answer["data"]["customers"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| edge["node"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&system.graphql_raw(search, json!({"s": "0%"})).await),
        vec!["100% Juice"]
    );
    assert_eq!(
        names(&system.graphql_raw(search, json!({"s": "e_C"})).await),
        vec!["Snake_Case Inc"]
    );
    assert_eq!(
        names(&system.graphql_raw(search, json!({"s": "%"})).await),
        vec!["100% Juice"]
    );
    let answer = system.graphql_raw(search, json!({"s": "x".repeat(201)})).await;
    assert_eq!(answer["errors"][0]["extensions"]["field"], "filter.search", "{answer}");
    system.stop().await;
}

#[tokio::test]
async fn graphiql_is_served_whole_from_the_service_under_a_strict_policy() {
    let system = TestSystem::spawn().await.unwrap();
    let base = system.graphql_url.trim_end_matches("/graphql").to_owned();
    let page = system.http.get(format!("{base}/graphiql")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(!html.contains("://"), "nothing from another origin: {html}");
    assert!(!html.contains("<script>"), "no inline script");
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|part| part.starts_with("/graphiql/"))
        .collect();
    assert_eq!(assets.len(), 6, "{assets:?}");
    for asset in assets {
        let response = system.http.get(format!("{base}{asset}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind == "text/javascript" || kind == "text/css", "{asset}: {kind}");
        assert!(response.bytes().await.unwrap().len() > 30, "{asset}");
    }
    // And in a real browser, with no network but this service: GraphiQL renders its editor.
    let chromium = std::env::var("CSTRACK_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium is needed for this test (deploy/test.sh installs it: apt-get install chromium)"
    );
    let profile = std::env::temp_dir().join(format!("{}-chromium", system.name));
    let dom = tokio::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=8000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("{base}/graphiql"))
        .output()
        .await
        .expect("Chromium runs");
    std::fs::remove_dir_all(&profile).ok();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("graphiql-container") && dom.contains("graphiql-execute-button"),
        "GraphiQL did not render:\n{dom}"
    );
    assert!(!dom.contains("Loading GraphiQL"), "GraphiQL stayed on its loading text");

    let missing = system
        .http
        .get(format!("{base}/graphiql/../../etc/passwd"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    system.stop().await;
}

/// Replays are priced by their work: a request of many `customerAsOf` aliases (or of reports
/// with `knownAt`) is refused by the complexity limit before anything runs, while a few pass.
#[tokio::test]
async fn replays_are_priced_by_their_work() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Rhea Replay").await;
    let customer = system
        .onboard(
            "Replayed",
            "SMB",
            "1000",
            csm,
            chrono::Utc::now() - chrono::Duration::days(10),
        )
        .await;
    system.caught_up().await;
    let known_at = chrono::Utc::now().to_rfc3339();
    let aliases =
        |count: usize, field: &str| -> String { (0..count).map(|i| format!("a{i}:{field} ")).collect::<String>() };
    let as_of = "customerAsOf(customerId: $c, knownAt: $k) { name }".to_owned();
    let coverage = "accountCoverage(customerId: $c, knownAt: $k) { score }".to_owned();
    let variables = json!({"c": customer, "k": known_at});
    for (count, field, refused) in [
        (1100, &as_of, true),
        (11, &as_of, true),
        (11, &coverage, true),
        (9, &as_of, false),
        (9, &coverage, false),
    ] {
        let answer = system
            .graphql_raw(
                &format!("query($c: UUID!, $k: DateTime!) {{ {} }}", aliases(count, field)),
                variables.clone(),
            )
            .await;
        let too_complex = answer["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too complex");
        assert_eq!(too_complex, refused, "{count} x {field}: {answer}");
        if !refused {
            assert!(answer.get("errors").is_none(), "{answer}");
        }
    }
    // Without knownAt, coverage reads the read model and costs what a field costs.
    let live = "accountCoverage(customerId: $c) { score }";
    let answer = system
        .graphql_raw(
            &format!("query($c: UUID!) {{ {} }}", aliases(100, live)),
            json!({"c": customer}),
        )
        .await;
    assert!(answer.get("errors").is_none(), "{answer}");
    system.stop().await;
}
