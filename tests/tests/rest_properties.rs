//! Property-based tests of every REST body and of event decoding. For each endpoint of the OpenAPI
//! document, proptest generates bodies from the endpoint's own field names with values of every
//! kind (wrong types, extreme numbers, long and odd text, nesting, unknown fields) and sends them
//! over HTTP. The properties: no answer is a 5xx, none is 400 (every body is valid JSON: it is
//! refused for what it says, 422 naming the field), and a refused body appends nothing. Every body
//! tried is recorded, with its answer, in `$CARGO_TARGET_DIR/abuse/rest-bodies.jsonl`.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{Duration, Utc};
use command_service::http::openapi::endpoints;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};
use tests::TestSystem;
use uuid::Uuid;

/// Bodies tried per endpoint (every CI run).
const CASES: u32 = 48;

/// Any JSON value, biased towards what breaks parsers and validators.
fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just(-1.0e308),
            Just(1.0e308),
            Just(-0.5),
            Just(0.0),
            Just(3.25),
            Just(1.0e-300)
        ]
        .prop_map(|n: f64| json!(n)),
        "[ -~]{0,40}".prop_map(Value::String),
        "\\PC{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("0484-03-01".to_owned()),
            Just("4257-12-31".to_owned()),
            Just("2026-02-30".to_owned()),
            Just("2026-06-01T10:00:00Z".to_owned()),
            Just("2999-01-01T00:00:00Z".to_owned()),
            Just("a\u{0}b".to_owned()),
            Just("x".repeat(5_000)),
            Just("Enterprise".to_owned()),
            Just("meeting".to_owned()),
            Just("executive".to_owned()),
            Just(Uuid::nil().to_string()),
            Just("0015g00000AbCdEAAV".to_owned()),
            Just("-1".to_owned()),
            Just("1e400".to_owned()),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object over `fields` (some present, each with a hostile value), perhaps with a field the
/// endpoint does not know.
fn hostile_body(fields: Vec<String>) -> impl Strategy<Value = Value> {
    let count = fields.len();
    (
        prop::collection::vec(prop::option::weighted(0.7, hostile_value()), count),
        prop::option::weighted(0.2, ("[a-z]{1,8}", hostile_value())),
    )
        .prop_map(move |(values, extra)| {
            let mut body = Map::new();
            for (field, value) in fields.iter().zip(values) {
                if let Some(value) = value {
                    body.insert(field.clone(), value);
                }
            }
            if let Some((name, value)) = extra {
                body.insert(name, value);
            }
            Value::Object(body)
        })
}

/// The field names of each request body, from the OpenAPI document: (method, path) -> fields.
fn body_fields() -> BTreeMap<(String, String), Vec<String>> {
    let document: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/openapi.json")).unwrap(),
    )
    .unwrap();
    let schemas = &document["components"]["schemas"];
    let mut fields = BTreeMap::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap_or_default();
            let name = reference.rsplit('/').next().unwrap_or_default();
            let properties: Vec<String> = schemas[name]["properties"]
                .as_object()
                .map(|properties| properties.keys().cloned().collect())
                .unwrap_or_default();
            fields.insert((method.to_uppercase(), path.clone()), properties);
        }
    }
    fields
}

#[test]
fn no_body_at_any_endpoint_gets_a_5xx_and_a_refused_one_appends_nothing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Hundreds of requests on one token: the rate limit is not what is under test here.
    let system = runtime
        .block_on(TestSystem::spawn_limited(
            tests::TEST_POOL,
            0.2,
            tests::bench::UNLIMITED,
        ))
        .unwrap();
    let (csm, partner, customer) = runtime.block_on(async {
        let csm = system.register_csm("Pia Property").await;
        let partner =
            tests::uuid(&system.post_ok("/api/v1/partners", &json!({"name": "Fabrikam"})).await["partner_id"]);
        let customer = system
            .onboard(
                "Property Co",
                "Enterprise",
                "90000",
                csm,
                Utc::now() - Duration::days(30),
            )
            .await;
        (csm, partner, customer)
    });
    let fields = body_fields();
    let record_dir =
        std::path::PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into())).join("abuse");
    std::fs::create_dir_all(&record_dir).unwrap();
    let record = std::cell::RefCell::new(std::fs::File::create(record_dir.join("rest-bodies.jsonl")).unwrap());
    let statuses: std::cell::RefCell<BTreeMap<u16, usize>> = Default::default();
    let tried = std::cell::Cell::new(0usize);
    for endpoint in endpoints() {
        let Some(names) = fields
            .get(&(endpoint.method.to_owned(), endpoint.path.to_owned()))
            .cloned()
        else {
            continue;
        };
        let id = if endpoint.path.starts_with("/api/v1/csms") {
            csm
        } else if endpoint.path.starts_with("/api/v1/partners") {
            partner
        } else {
            customer
        };
        let path = endpoint
            .path
            .replace("{id}", &id.to_string())
            .replace("{item}", &Uuid::now_v7().to_string());
        let method = reqwest::Method::from_bytes(endpoint.method.as_bytes()).unwrap();
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        });
        let outcome = runner.run(&hostile_body(names), |body| {
            let (status, answer, before, after) = runtime.block_on(async {
                let count = || async {
                    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events")
                        .fetch_one(&system.pool)
                        .await
                        .unwrap()
                };
                let before = count().await;
                let (status, answer) = system.send(method.clone(), &path, Some(&body)).await;
                (status, answer, before, count().await)
            });
            writeln!(
                record.borrow_mut(),
                "{}",
                json!({"method": endpoint.method, "path": endpoint.path, "body": body, "status": status.as_u16(), "answer": answer})
            )
            .ok();
            *statuses.borrow_mut().entry(status.as_u16()).or_default() += 1;
            tried.set(tried.get() + 1);
            prop_assert!(!status.is_server_error(), "{} {} answered {status}: {answer}\nbody: {body}", endpoint.method, endpoint.path);
            // Every body generated is a JSON object: refused for what it says, never as malformed.
            prop_assert_ne!(status.as_u16(), 400, "valid JSON answered 400: {} {}", body, answer);
            if !status.is_success() {
                prop_assert_eq!(before, after, "a refused body appended events: {}", body);
                prop_assert!(answer["error"].is_string(), "a refusal names its code: {}", answer);
            }
            Ok(())
        });
        if let Err(error) = outcome {
            panic!("{error}");
        }
    }
    let (tried, statuses) = (tried.get(), statuses.into_inner());
    println!("{tried} bodies tried across the endpoints; answers by status: {statuses:?}");
    assert!(
        tried >= 30 * CASES as usize,
        "every endpoint with a body was tried: {tried}"
    );
    runtime.block_on(system.stop());
}

proptest! {
    #![proptest_config(Config { cases: 2_000, failure_persistence: None, ..Config::default() })]

    /// Decoding any stored payload, of any event type and version, fails cleanly or succeeds:
    /// it never panics.
    #[test]
    fn decoding_any_stored_payload_never_panics(
        payload in hostile_value(),
        event_type in prop_oneof![
            Just("ActivityLogged".to_owned()), Just("HealthScoreRecorded".to_owned()), Just("CustomerOnboarded".to_owned()),
            Just("TaskCreated".to_owned()), Just("PartnerReportSubmitted".to_owned()), "[A-Za-z]{1,20}"],
        version in prop_oneof![Just("1".to_owned()), Just("2".to_owned()), Just("99".to_owned()), Just(String::new())],
    ) {
        let wrapped = json!({ event_type.clone(): payload.clone() });
        let upcast = events::upcast::to_current(&event_type, &version, wrapped.clone());
        let _ = serde_json::from_value::<events::customer::CustomerEvent>(upcast);
        let _ = serde_json::from_value::<events::customer::CustomerEvent>(payload);
        let _ = serde_json::from_value::<events::csm::CsmEvent>(wrapped.clone());
        let _ = serde_json::from_value::<events::partner::PartnerEvent>(wrapped);
    }
}
