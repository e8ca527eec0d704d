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

    // The sections asked for, in the deck's order, after the title slide.
    let (status, chosen) = get(
        &system,
        &admin,
        &format!("/export/portfolio.pptx?asOf={as_of}&sections=at-risk,summary"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&chosen));
    let slides = |deck: &[u8]| {
        let archive = zip::ZipArchive::new(std::io::Cursor::new(deck.to_vec())).unwrap();
        let mut names: Vec<String> = archive
            .file_names()
            .filter_map(Result::ok)
            .map(|name| name.into_owned())
            .filter(|name| name.starts_with("ppt/slides/slide") && name.ends_with(".xml"))
            .collect();
        names.sort_by_key(|name| {
            name.trim_start_matches("ppt/slides/slide")
                .trim_end_matches(".xml")
                .parse::<u32>()
                .unwrap()
        });
        names
            .iter()
            .map(|name| {
                let xml = String::from_utf8(part(deck, name).unwrap()).unwrap();
                let start = xml.find("<a:t>").unwrap() + 5;
                xml[start..start + xml[start..].find("</a:t>").unwrap()].to_owned()
            })
            .collect::<Vec<_>>()
    };
    let titles = slides(&chosen);
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert_eq!(titles[..2], ["Portfolio review", "Executive summary"]);
    assert!(titles[2].starts_with("At-risk accounts"), "{titles:?}");
    let (status, refused) = get(&system, &admin, "/export/portfolio.pptx?sections=summary,forecast").await;
    assert_eq!(status, 400);
    let refused: serde_json::Value = serde_json::from_slice(&refused).unwrap();
    assert!(
        refused.to_string().contains("no deck section") && refused.to_string().contains("forecast"),
        "{refused}"
    );

    // A batch: one customer deck each, in one zip, named after the customers.
    let (status, zipped) = get(
        &system,
        &admin,
        &format!("/export/customers.zip?customerIds={acme},{beta}&asOf={as_of}"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&zipped));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zipped)).unwrap();
    let mut names: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .map(|name| name.into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["Acme.pptx", "Beta.pptx"]);
    let mut acme_deck = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("Acme.pptx").unwrap(), &mut acme_deck).unwrap();
    assert_eq!(slides(&acme_deck), ["Acme"]);
    let (status, _) = get(
        &system,
        &admin,
        &format!("/export/customers.zip?customerIds={acme},{}", uuid::Uuid::now_v7()),
    )
    .await;
    assert_eq!(status, 404);
    let many = vec![acme.to_string(); 51].join(",");
    let (status, _) = get(&system, &admin, &format!("/export/customers.zip?customerIds={many}")).await;
    assert_eq!(status, 400);

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

/// A book the size that broke the deck: 14 CSMs, 40 customers with long names, 24 renewing
/// within 90 days, a third red and a third yellow. Rendered by LibreOffice, every word of every
/// slide lands on its slide, long tables continue on further slides, and the slides speak words.
#[tokio::test]
async fn the_portfolio_deck_fits_its_slides_and_reads_as_words() {
    let system = TestSystem::spawn().await.unwrap();
    let since = Utc::now() - Duration::days(120);
    let today = Utc::now().date_naive();
    let mut csms = Vec::new();
    for n in 0..14 {
        csms.push(system.register_csm(&format!("Csm Number {n}")).await);
    }
    let mut customers = Vec::new();
    for i in 0..40u32 {
        let name = format!("Customer {i:02} Worldwide Holdings and Trading Company Limited");
        let arr = format!("{}", 10_000 * (i + 1));
        let customer = system
            .onboard(
                &name,
                ["Enterprise", "MidMarket", "SMB"][i as usize % 3],
                &arr,
                csms[i as usize % 14],
                since,
            )
            .await;
        if i < 24 {
            let (status, answer) = system
                .send(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/customers/{customer}"),
                    Some(&json!({"renewal_date": today + Duration::days(5 + i64::from(i) * 3)})),
                )
                .await;
            assert!(status.is_success(), "{answer}");
        }
        let score = [30.0, 60.0, 85.0][i as usize % 3];
        system.record_health(customer, score, today - Duration::days(1)).await;
        customers.push((name, 10_000 * (i + 1), score));
    }
    system.caught_up().await;
    let (status, deck) = get(&system, &system.admin, &format!("/export/portfolio.pptx?asOf={today}")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&deck));
    let pdf = tokio::task::spawn_blocking(move || tests::libreoffice_pdf(&deck, "pptx"))
        .await
        .unwrap();
    // CSTRACK_DECK_PDF=<path> keeps the rendered deck to look at.
    if let Ok(path) = std::env::var("CSTRACK_DECK_PDF") {
        std::fs::write(path, &pdf).unwrap();
    }
    let pages = tokio::task::spawn_blocking(move || tests::pdf_words(&pdf))
        .await
        .unwrap();

    // Nothing outside its slide.
    for (number, page) in pages.iter().enumerate() {
        for word in &page.words {
            assert!(
                word.x_min >= -0.5
                    && word.y_min >= -0.5
                    && word.x_max <= page.width + 0.5
                    && word.y_max <= page.height + 0.5,
                "slide {}: {word:?} lies outside the {}x{} slide",
                number + 1,
                page.width,
                page.height
            );
        }
    }
    let titles: Vec<String> = pages
        .iter()
        .map(|page| {
            page.words
                .iter()
                .take(14)
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    // The 24 renewals take two slides of the table, then the chart has its own; the 27 red and
    // yellow accounts take three.
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("Renewals in the next 90 days (1 of 2)")),
        "{titles:#?}"
    );
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("Renewals in the next 90 days (2 of 2)")),
        "{titles:#?}"
    );
    assert!(
        titles
            .iter()
            .any(|t| t.starts_with("At-risk accounts: 14 red, 13 yellow, $5,470,000 ARR (3 of 3)")),
        "{titles:#?}"
    );
    let all: String = pages.iter().map(|page| page.text()).collect::<Vec<_>>().join("\n");
    // Words, not enum values; amounts with their separators, never 30000000.
    for raw in ["GREEN", "YELLOW", "MID_MARKET", "AT_RISK", "URGENT", "30d"] {
        assert!(!all.split_whitespace().any(|word| word == raw), "the deck says {raw}");
    }
    assert!(
        !all.split_whitespace()
            .any(|word| word.len() >= 6 && word.chars().all(|c| c.is_ascii_digit())),
        "an unformatted amount on a slide"
    );
    assert!(all.contains("the last 30 days"), "the engagement period in words");
    assert!(all.contains("the 12 with most") && all.contains("of 14"), "top-N CSMs");
    // At risk: the largest ARR first.
    let at_risk = pages
        .iter()
        .find(|page| page.text().starts_with("At-risk accounts"))
        .unwrap()
        .text();
    let largest = customers
        .iter()
        .filter(|(_, _, score)| *score < 70.0)
        .max_by_key(|(_, arr, _)| *arr)
        .unwrap();
    let second = customers
        .iter()
        .filter(|(_, arr, score)| *score < 70.0 && *arr < largest.1)
        .max_by_key(|(_, arr, _)| *arr)
        .unwrap();
    let at = |name: &str| at_risk.find(&name[..12]).unwrap_or(usize::MAX);
    assert!(at(&largest.0) < at(&second.0), "{at_risk}");
    system.stop().await;
}
