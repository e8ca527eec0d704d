//! Decks end to end: the portfolio deck and the customer summary, from the shipped template
//! and from one an admin uploads, converted by LibreOffice with the expected page count.

use chrono::{Duration, Utc};
use events::metadata::Role;
use serde_json::json;
use tests::{token, TestSystem};

async fn get(system: &TestSystem, as_token: &str, path: &str) -> (u16, Vec<u8>) {
    let response = system
        .http
        .get(format!("{}{path}", system.graphql_url.trim_end_matches("/graphql")))
        .bearer_auth(as_token)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
}

fn part(deck: &[u8], name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(deck)).unwrap();
    let mut file = archive.by_name(name).ok()?;
    let mut data = Vec::new();
    file.read_to_end(&mut data).unwrap();
    Some(data)
}

async fn put_template(system: &TestSystem, as_token: &str, bytes: Vec<u8>) -> (u16, serde_json::Value) {
    let response = system
        .http
        .put(format!("{}/api/v1/deck-template", system.command_url))
        .bearer_auth(as_token)
        .header(
            "content-type",
            "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml",
        )
        .header("x-file-name", "brand.potx")
        .body(bytes)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn decks_convert_in_libreoffice_from_the_default_and_an_uploaded_template() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Dana").await;
    let since = Utc::now() - Duration::days(120);
    let today = Utc::now().date_naive();
    let acme = system.onboard("Acme", "Enterprise", "300000", csm, since).await;
    let beta = system.onboard("Beta", "SMB", "9000", csm, since).await;
    for (customer, score) in [(acme, 82.0), (beta, 35.0)] {
        for weeks in [10, 6, 2] {
            system
                .record_health(customer, score - weeks as f64, today - Duration::weeks(weeks))
                .await;
        }
    }
    let person = system.add_stakeholder(acme, "Priya", "executive").await;
    system
        .log_activity(acme, "meeting", today - Duration::days(4), &[person])
        .await;
    system
        .post_ok(
            &format!("/api/v1/customers/{acme}/tasks"),
            &json!({"title": "Plan the QBR", "kind": "qbr_prep", "priority": "high", "assignee_id": "dana",
                    "due_date": today + Duration::days(7)}),
        )
        .await;
    system.caught_up().await;
    let admin = system.admin.clone();
    let as_of = today.to_string();

    let started = std::time::Instant::now();
    let (status, deck) = get(&system, &admin, &format!("/export/portfolio.pptx?asOf={as_of}")).await;
    let built_in = started.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&deck));
    assert!(part(&deck, "ppt/charts/chart1.xml").is_some(), "native chart parts");
    assert!(
        part(&deck, "ppt/embeddings/chart-data1.xlsx").is_some(),
        "chart data embedded"
    );
    let slide2 = String::from_utf8(part(&deck, "ppt/slides/slide2.xml").unwrap()).unwrap();
    assert!(
        slide2.contains("Executive summary") && slide2.contains("$309,000"),
        "{slide2}"
    );
    assert_eq!(tests::pdf_pages(&tests::libreoffice_pdf(&deck, "pptx")), 6);
    eprintln!("portfolio deck built in {built_in:?}");

    let (status, deck) = get(
        &system,
        &admin,
        &format!("/export/customer.pptx?customerId={acme}&asOf={as_of}"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&deck));
    let slide = String::from_utf8(part(&deck, "ppt/slides/slide1.xml").unwrap()).unwrap();
    assert!(
        slide.contains("Acme") && slide.contains("Plan the QBR") && slide.contains("c:chart"),
        "{slide}"
    );
    let chart = String::from_utf8(part(&deck, "ppt/charts/chart1.xml").unwrap()).unwrap();
    assert!(chart.contains("<c:lineChart>"), "{chart}");
    assert_eq!(tests::pdf_pages(&tests::libreoffice_pdf(&deck, "pptx")), 1);

    // An uploaded .potx (LibreOffice's, with its own background and fonts): its master and
    // theme are the deck's.
    let template = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/brand.potx")).unwrap();
    let (status, answer) = put_template(&system, &token(Role::Manager, "morgan", None), template.clone()).await;
    assert_eq!((status, answer["error"].as_str()), (403, Some("forbidden")), "{answer}");
    let (status, answer) = put_template(&system, &admin, b"not a deck".to_vec()).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (422, Some("invalid_template")),
        "{answer}"
    );
    let (status, answer) = put_template(&system, &admin, template.clone()).await;
    assert_eq!(status, 201, "{answer}");
    let (status, deck) = get(&system, &admin, &format!("/export/portfolio.pptx?asOf={as_of}")).await;
    assert_eq!(status, 200);
    let master = |package: &[u8]| part(package, "ppt/slideMasters/slideMaster1.xml").unwrap();
    assert_eq!(master(&deck), master(&template));
    assert_ne!(master(&deck), master(query_api::decks::DEFAULT_TEMPLATE));
    let theme = |package: &[u8]| part(package, "ppt/theme/theme1.xml").unwrap();
    assert_eq!(theme(&deck), theme(&template));
    assert_eq!(tests::pdf_pages(&tests::libreoffice_pdf(&deck, "pptx")), 6);

    // Partners get no portfolio deck; unknown decks and customers are clear errors.
    let partner = token(Role::Partner, "pat", Some(uuid::Uuid::now_v7()));
    let (status, _) = get(&system, &partner, "/export/portfolio.pptx").await;
    assert_eq!(status, 403);
    let (status, _) = get(&system, &admin, "/export/board.pptx").await;
    assert_eq!(status, 404);
    let (status, _) = get(
        &system,
        &admin,
        &format!("/export/customer.pptx?customerId={}", uuid::Uuid::now_v7()),
    )
    .await;
    assert_eq!(status, 404);
    system.stop().await;
}
