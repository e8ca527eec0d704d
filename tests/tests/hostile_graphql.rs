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
