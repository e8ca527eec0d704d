//! Greedy and slow clients: each token has its own request rate (429 with `Retry-After` past it),
//! a client that does not finish its request head in time loses its connection, and one that does
//! not finish its request in time gets 408. None of them holds up anyone else.

use std::time::{Duration, Instant};

use events::metadata::Role;
use events::service::http::HttpLimits;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::TestSystem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn limits() -> HttpLimits {
    HttpLimits {
        rate_limit_per_second: 2.0,
        rate_limit_burst: 5.0,
        header_read_seconds: 1,
        request_seconds: 2,
    }
}

async fn projection_status(system: &TestSystem, token: &str) -> reqwest::Response {
    system
        .http
        .post(&system.graphql_url)
        .bearer_auth(token)
        .json(&json!({"query": "{ projectionStatus { projector } }"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn each_token_gets_its_own_rate_and_is_told_when_to_come_back() {
    let system = TestSystem::spawn_limited(tests::TEST_POOL, 3600.0, limits())
        .await
        .unwrap();
    let greedy = tests::token(Role::Readonly, "greedy", None);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(projection_status(&system, &greedy).await.status());
    }
    assert_eq!(&statuses[..5], [StatusCode::OK; 5], "the burst");
    let refused = projection_status(&system, &greedy).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");

    // Another token is untouched, on both APIs.
    let other = tests::token(Role::Readonly, "patient", None);
    assert_eq!(projection_status(&system, &other).await.status(), StatusCode::OK);
    let (status, _) = system
        .send(
            reqwest::Method::POST,
            "/api/v1/csms",
            Some(&json!({"name": "A", "email": "a@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // The command API counts per token too.
    let mut last = StatusCode::OK;
    for _ in 0..8 {
        let (status, body) = system
            .send_as(
                &greedy,
                reqwest::Method::POST,
                "/api/v1/csms",
                Some(&json!({"name": "B", "email": "b@example.com"})),
            )
            .await;
        last = status;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["error"], "rate_limited");
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);

    // After waiting as told, the token is served again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(projection_status(&system, &greedy).await.status(), StatusCode::OK);
    system.stop().await;
}

#[tokio::test]
async fn slow_clients_are_cut_off_without_holding_up_others() {
    let system = TestSystem::spawn_limited(tests::TEST_POOL, 3600.0, limits())
        .await
        .unwrap();
    let address = system
        .graphql_url
        .trim_start_matches("http://")
        .trim_end_matches("/graphql")
        .to_owned();

    // Half a request head, then nothing: the connection is closed.
    let mut slow_head = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow_head
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    // A whole head, then half the body it announced: 408.
    let mut slow_body = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"query\":",
        system.admin
    );
    slow_body.write_all(head.as_bytes()).await.unwrap();

    // Meanwhile others are served at once.
    let started = Instant::now();
    assert_eq!(projection_status(&system, &system.admin).await.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(1));

    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow_head.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closed the connection of the slow head");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(6), slow_body.read_to_end(&mut answer))
        .await
        .expect("the server answered the slow body")
        .ok();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    system.stop().await;
}
