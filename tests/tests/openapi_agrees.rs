//! The OpenAPI document is no looser than the server: at each documented bound of the numbers
//! probed here, the bound itself is accepted and one past it refused with 422 naming the field;
//! and a text one character past its documented `maxLength` is refused.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::TestSystem;

fn schema(name: &str) -> Value {
    let document: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/openapi.json")).unwrap(),
    )
    .unwrap();
    document["components"]["schemas"][name].clone()
}

#[tokio::test]
async fn documented_bounds_are_the_bounds_the_server_enforces() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Olga OpenAPI").await;
    let customer = system
        .onboard("Bounds Co", "SMB", "1000", csm, Utc::now() - Duration::days(10))
        .await;

    let capacity = &schema("ChangeCapacity")["properties"]["monthly_capacity_hours"];
    let (min, max) = (
        capacity["minimum"].as_i64().unwrap(),
        capacity["maximum"].as_i64().unwrap(),
    );
    assert_eq!((min, max), (1, 744));
    for (hours, ok) in [(min - 1, false), (min, true), (max, true), (max + 1, false)] {
        let (status, body) = system
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/csms/{csm}/capacity"),
                Some(&json!({"monthly_capacity_hours": hours})),
            )
            .await;
        if ok {
            assert!(status.is_success(), "{hours}: {status} {body}");
        } else {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{hours}: {body}");
            assert!(body["fields"]["monthly_capacity_hours"].is_string(), "{body}");
        }
    }

    let nps = &schema("RecordNps")["properties"]["score"];
    let (min, max) = (nps["minimum"].as_i64().unwrap(), nps["maximum"].as_i64().unwrap());
    assert_eq!((min, max), (0, 10));
    for (score, ok) in [(min, true), (max, true), (max + 1, false)] {
        let (status, body) = system
            .post(&format!("/api/v1/customers/{customer}/nps"), &json!({"score": score}))
            .await;
        if ok {
            assert!(status.is_success(), "{score}: {status} {body}");
        } else {
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{score}: {body}");
            assert!(body["fields"]["score"].is_string(), "{body}");
        }
    }

    let health = &schema("RecordHealthScore")["properties"]["score"];
    assert_eq!(
        (health["minimum"].as_f64(), health["maximum"].as_f64()),
        (Some(0.0), Some(100.0))
    );

    // Texts: one past the documented length is refused, naming the field.
    let subject_max = schema("LogActivity")["properties"]["subject"]["maxLength"]
        .as_u64()
        .unwrap() as usize;
    let activity = |subject: String| json!({"kind": "email", "direction": "outbound", "occurred_at": Utc::now(), "subject": subject});
    let (status, _) = system
        .post(
            &format!("/api/v1/customers/{customer}/activities"),
            &activity("s".repeat(subject_max)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = system
        .post(
            &format!("/api/v1/customers/{customer}/activities"),
            &activity("s".repeat(subject_max + 1)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["fields"]["subject"].is_string(), "{body}");
    let name_max = schema("RegisterCsm")["properties"]["name"]["maxLength"]
        .as_u64()
        .unwrap() as usize;
    let (status, body) = system
        .post(
            "/api/v1/csms",
            &json!({"name": "n".repeat(name_max + 1), "email": "long@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["fields"]["name"].is_string(), "{body}");
    system.stop().await;
}

/// Schemathesis, a client that generates requests from the OpenAPI document alone, sends every
/// operation bodies the document calls valid: the boundaries of each stated rule (the coverage
/// phase) and random ones (fuzzing), under a fixed seed. Its check `stated_rules_suffice`
/// (tests/schemathesis/hooks.py) fails on any refusal but the allowed ones: a rule no JSON Schema
/// can state (named there by its code, said in docs/RELIABILITY.md), what the caller may not do,
/// what is absent, and the state a command meets. A server error fails too.
#[tokio::test]
async fn schemathesis_finds_every_valid_request_accepted() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Sam Schema").await;
    let partner = tests::uuid(
        &system
            .post_ok("/api/v1/partners", &json!({"name": "Schema Partners"}))
            .await["partner_id"],
    );
    let customer = system
        .onboard("Schema Co", "SMB", "1000", csm, Utc::now() - Duration::days(30))
        .await;
    let field = "segment";
    system
        .post_ok(
            "/api/v1/custom-fields",
            &json!({"key": field, "label": "Segment", "field_type": "text"}),
        )
        .await;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("cstrack-schemathesis-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    // Ids in paths and bodies name what exists, so that commands reach their rules rather than a
    // 404; webhooks go to a public address (which addresses are public is DNS's, not a schema's).
    let config = format!(
        r#"[parameters]
"path.id" = "{customer}"
"body.csm_id" = "{csm}"
"body.partner_id" = "{partner}"
"body.url" = "https://hooks.example.com/cstrack"

[[operations]]
include-path-regex = "^/api/v1/csms/"
parameters = {{ "path.id" = "{csm}" }}

[[operations]]
include-path-regex = "^/api/v1/partners/"
parameters = {{ "path.id" = "{partner}" }}

[[operations]]
include-path-regex = "^/api/v1/custom-fields/"
parameters = {{ "path.id" = "{field}", "body.key" = "{field}" }}
"#
    );
    std::fs::write(dir.join("schemathesis.toml"), config).unwrap();
    let mut command = std::process::Command::new("st");
    command
        .current_dir(&dir)
        .env("PYTHONPATH", root.join("tests/schemathesis"))
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .args(["--config-file", "schemathesis.toml", "--no-color", "run"])
        .arg(root.join("schemas/openapi.json"))
        .args(["--url", &system.command_url])
        .args(["-H", &format!("Authorization: Bearer {}", system.admin)])
        .args(["--checks", "not_a_server_error,stated_rules_suffice"])
        .args(["--mode", "positive", "--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "10", "--seed", "7", "--generation-database", "none"])
        .args(["--workers", "1", "--warnings", "off"])
        // A .pptx body is not something Schemathesis can make.
        .args(["--exclude-path", "/api/v1/deck-template"])
        .args(["--request-timeout", "30"]);
    // The services answer on this test's runtime: wait for Schemathesis off it.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("Schemathesis (`st`) runs: deploy/test.sh installs it");
    let report = String::from_utf8_lossy(&output.stdout);
    std::fs::remove_dir_all(&dir).ok();
    let summary = report.lines().skip_while(|line| !line.contains("SUMMARY"));
    eprintln!("{}", summary.collect::<Vec<_>>().join("\n"));
    assert!(
        output.status.success(),
        "Schemathesis found requests the document calls valid refused, or a server error:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tested = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("Tested: "))
        .and_then(|count| count.trim().parse::<usize>().ok())
        .unwrap_or_default();
    assert!(tested >= 60, "every operation was tested: {tested}\n{report}");
    system.stop().await;
}

/// Every operation the document describes is served: without a token each answers as a route
/// that exists (401, or the operational routes' 200), never 404 or 405.
#[tokio::test]
async fn every_documented_operation_is_served() {
    let system = TestSystem::spawn().await.unwrap();
    let document: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/openapi.json")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let url = format!(
                "{}{}",
                system.command_url,
                path.replace("{id}", &uuid::Uuid::now_v7().to_string())
                    .replace("{item}", &uuid::Uuid::now_v7().to_string())
                    .replace("{user}", "someone")
            );
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let status = system.http.request(method.clone(), &url).send().await.unwrap().status();
            assert!(
                ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&status),
                "{method} {path} answered {status}: documented but not served"
            );
            checked += 1;
        }
    }
    assert!(checked >= 70, "{checked} operations");
    system.stop().await;
}
