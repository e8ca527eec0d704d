//! Benchmarks of a team's book coming in and going out, against the real system started
//! in-process (release build when run with `--release`):
//!
//! 1. one import of 10,000 customers (CSV), preview and commit timed apart;
//! 2. one import of 100,000 activities (a workbook of ten 10,000-row sheets);
//! 3. beside them, in the same run, the command API's own batch rate: the same activities
//!    posted as 1,000-activity batches;
//! 4. export of the 10,000-customer list as .xlsx and as CSV, and the portfolio deck;
//! 5. a CSM's "today" (docs/DOMAIN.md section 14) over a book of `--csm-book` of the customers,
//!    p50 and p95 of `--today-samples` queries after the first (which fills the churn-risk
//!    cache of all 10,000 and is timed apart), beside the raw read of the same book's rows.
//!
//!     cargo run --release -p tests --bin book-bench
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use clap::Parser;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use tests::TestSystem;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    /// Activities imported (in sheets of 10,000 rows) and, again, posted in batches.
    #[arg(long, default_value_t = 100_000)]
    activities: usize,
    /// Customers the activities are spread over.
    #[arg(long, default_value_t = 500)]
    active_customers: usize,
    /// Activities posted through the command API in batches of 1,000, for its rate.
    #[arg(long, default_value_t = 20_000)]
    api_activities: usize,
    /// Timed exports of each kind.
    #[arg(long, default_value_t = 5)]
    exports: usize,
    /// Customers of each CSM.
    #[arg(long, default_value_t = 40)]
    csm_book: usize,
    /// Timed "today" queries of the first CSM.
    #[arg(long, default_value_t = 50)]
    today_samples: usize,
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn upload(system: &TestSystem, kind: &str, name: &str, bytes: Vec<u8>) -> anyhow::Result<Value> {
    let form = Form::new()
        .text("kind", kind.to_owned())
        .part("file", Part::bytes(bytes).file_name(name.to_owned()));
    let response = system
        .http
        .post(format!("{}/api/v1/imports", system.command_url))
        .bearer_auth(&system.admin)
        .multipart(form)
        .timeout(Duration::from_secs(3600))
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    if status.as_u16() != 201 || answer["counts"]["error"] != 0 {
        bail!(
            "upload {name}: {status} {}",
            answer.to_string().chars().take(2000).collect::<String>()
        );
    }
    Ok(answer)
}

async fn commit(system: &TestSystem, import_id: &str) -> anyhow::Result<Value> {
    let response = system
        .http
        .post(format!("{}/api/v1/imports/{import_id}/commit", system.command_url))
        .bearer_auth(&system.admin)
        .timeout(Duration::from_secs(3600))
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    if !status.is_success() {
        bail!("commit: {status} {answer}");
    }
    Ok(answer)
}

fn sfid(n: usize) -> String {
    format!("0015g{n:013}")
}

/// Waits (up to half an hour) until the projectors have applied every event, so each timed
/// step has the machine to itself.
async fn settle(system: &TestSystem) -> anyhow::Result<()> {
    tests::eventually(Duration::from_secs(1800), || async {
        system.projected().await.unwrap_or(false)
    })
    .await
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let system = TestSystem::spawn_limited(16, 3600.0, tests::bench::UNLIMITED).await?;
    let csms: Vec<String> = {
        let mut emails = Vec::new();
        for n in 0..(args.customers / args.csm_book.max(1)).max(1) {
            let name = format!("Bench Csm{n}");
            system.register_csm(&name).await;
            emails.push(format!("bench.csm{n}@example.com"));
        }
        emails
    };
    let today = Utc::now().date_naive();
    let mut csv = String::from("Account Name,SFDC ID,Tier,ARR,CSM Email,Industry,Contract Start,Renewal Date\n");
    for n in 0..args.customers {
        let tier = ["Enterprise", "MidMarket", "SMB", "SMB"][n % 4];
        csv.push_str(&format!(
            "Customer {n:05},{},{tier},\"${},{:03}.00\",{},Retail,{},{}\n",
            sfid(n),
            5 + n % 300,
            n % 1000,
            csms[n % csms.len()],
            today - chrono::Duration::days(400),
            today + chrono::Duration::days((n % 365) as i64 + 1),
        ));
    }
    let started = Instant::now();
    settle(&system).await?;
    let preview = upload(&system, "customers", "customers.csv", csv.into_bytes()).await?;
    let customers_preview = started.elapsed();
    let started = Instant::now();
    let committed = commit(&system, preview["import_id"].as_str().context("import id")?).await?;
    let customers_commit = started.elapsed();
    println!(
        "customers: {} rows, {} events; preview {:.2} s ({:.0} rows/s), commit {:.2} s ({:.0} rows/s)",
        args.customers,
        committed["events"],
        customers_preview.as_secs_f64(),
        args.customers as f64 / customers_preview.as_secs_f64(),
        customers_commit.as_secs_f64(),
        args.customers as f64 / customers_commit.as_secs_f64(),
    );

    // Activities: a workbook of 10,000-row sheets.
    use events::service::workbook::{self, Cell, Kind};
    let columns = || {
        ["SFDC ID", "Type", "Direction", "Date", "Duration", "Subject"]
            .iter()
            .map(|title| workbook::column(title, if *title == "Date" { Kind::Date } else { Kind::Text }))
            .collect::<Vec<_>>()
    };
    let sheets: Vec<workbook::Table> = (0..args.activities.div_ceil(10_000))
        .map(|sheet| workbook::Table {
            name: format!("Activities {}", sheet + 1),
            columns: columns(),
            rows: (sheet * 10_000..((sheet + 1) * 10_000).min(args.activities))
                .map(|n| {
                    vec![
                        Cell::text(sfid(n % args.active_customers)),
                        Cell::text(["email", "meeting", "call", "email"][n % 4]),
                        Cell::text(if n % 3 == 0 { "inbound" } else { "outbound" }),
                        Cell::Date(today - chrono::Duration::days((n % 300) as i64 + 1)),
                        Cell::Number(if n % 4 == 1 { 30.0 } else { 0.0 }),
                        Cell::text(format!("touch {n}")),
                    ]
                })
                .collect(),
        })
        .collect();
    let book = workbook::xlsx("Activities", &[], &sheets)?;
    println!("activities workbook: {} sheets, {} bytes", sheets.len(), book.len());
    // Each timed step runs with the projectors idle, so it has the machine to itself.
    settle(&system).await?;
    let started = Instant::now();
    let preview = upload(&system, "activities", "activities.xlsx", book).await?;
    let activities_preview = started.elapsed();
    let started = Instant::now();
    let committed = commit(&system, preview["import_id"].as_str().context("import id")?).await?;
    let activities_commit = started.elapsed();
    println!(
        "activities: {} rows, {} events; preview {:.2} s ({:.0} rows/s), commit {:.2} s ({:.0} rows/s)",
        args.activities,
        committed["events"],
        activities_preview.as_secs_f64(),
        args.activities as f64 / activities_preview.as_secs_f64(),
        activities_commit.as_secs_f64(),
        args.activities as f64 / activities_commit.as_secs_f64(),
    );

    // The command API's own batches of the same activities, in the same run.
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events WHERE event_type = 'CustomerOnboarded' ORDER BY aggregate_id LIMIT $1",
    )
    .bind(args.active_customers as i64)
    .fetch_all(&system.pool)
    .await?;
    settle(&system).await?;
    let started = Instant::now();
    let mut posted = 0;
    while posted < args.api_activities {
        let customer = &ids[(posted / 1000) % ids.len()];
        let batch: Vec<Value> = (0..1000.min(args.api_activities - posted))
            .map(|n| {
                json!({"kind": "email", "direction": "outbound", "subject": format!("batch {n}"),
                       "occurred_at": Utc::now() - chrono::Duration::days((n % 300) as i64 + 1)})
            })
            .collect();
        let (status, answer) = system
            .post(
                &format!("/api/v1/customers/{customer}/activities/batch"),
                &json!({"activities": batch}),
            )
            .await;
        if !status.is_success() {
            bail!("batch: {status} {answer}");
        }
        posted += 1000;
    }
    let batches = started.elapsed();
    println!(
        "command API batches of 1,000: {} activities in {:.2} s ({:.0} activities/s)",
        args.api_activities,
        batches.as_secs_f64(),
        args.api_activities as f64 / batches.as_secs_f64()
    );

    settle(&system).await?;
    let base = system.graphql_url.trim_end_matches("/graphql").to_owned();
    let mut timings = Vec::new();
    for (name, path) in [
        ("customers.xlsx", "/export/customers.xlsx"),
        ("customers.csv", "/export/customers.csv"),
        ("portfolio.pptx", "/export/portfolio.pptx"),
    ] {
        let mut samples = Vec::new();
        let mut bytes = 0;
        for _ in 0..args.exports {
            let started = Instant::now();
            let response = system
                .http
                .get(format!("{base}{path}"))
                .bearer_auth(&system.admin)
                .timeout(Duration::from_secs(600))
                .send()
                .await?;
            if !response.status().is_success() {
                bail!("{path}: {}", response.status());
            }
            bytes = response.bytes().await?.len();
            samples.push(started.elapsed());
        }
        let median = median(samples);
        println!(
            "export {name}: median {:.0} ms over {} runs, {bytes} bytes",
            median.as_secs_f64() * 1000.0,
            args.exports
        );
        timings.push((name, median, bytes));
    }
    // The raw limit of a list export: PostgreSQL writing the same rows as CSV itself.
    let mut samples = Vec::new();
    let mut bytes = 0;
    for _ in 0..args.exports.max(1) {
        let started = Instant::now();
        let mut connection = system.pool.acquire().await?;
        let mut copy = connection
            .copy_out_raw(
                "COPY (SELECT name, salesforce_id, tier, arr, industry, account_manager,
                        (SELECT c.name FROM csm_directory c WHERE c.csm_id = p.csm_id), contract_start, renewal_date,
                        (SELECT h.score FROM health_points h WHERE h.customer_id = p.customer_id
                          ORDER BY h.measured_at DESC, h.sequence DESC LIMIT 1), adoption_stage, churned_on, custom_fields
                   FROM customer_profiles p WHERE churned_on IS NULL ORDER BY lower(name), customer_id) TO STDOUT WITH (FORMAT csv)",
            )
            .await?;
        bytes = 0;
        while let Some(chunk) = futures_util::StreamExt::next(&mut copy).await {
            bytes += chunk?.len();
        }
        samples.push(started.elapsed());
    }
    let copy = median(samples);
    println!(
        "raw limit: COPY of the same rows as CSV: median {:.0} ms, {bytes} bytes",
        copy.as_secs_f64() * 1000.0
    );

    // A CSM's "today": the first CSM's user says who they are, then asks.
    let csm0: uuid::Uuid = sqlx::query_scalar("SELECT csm_id FROM csm_directory WHERE email = $1")
        .bind(&csms[0])
        .fetch_one(&system.pool)
        .await?;
    let user = tests::token(events::metadata::Role::Csm, "bench-csm", None);
    let (status, answer) = system
        .send_as(
            &user,
            reqwest::Method::PUT,
            "/api/v1/notification-preferences",
            Some(&json!({"csm_id": csm0, "channels": []})),
        )
        .await;
    anyhow::ensure!(status.is_success(), "preferences: {answer}");
    let query = "{ today(first: 50) { totalCount items { kind reason customerName riskScore } } }";
    let started = Instant::now();
    let first = system.graphql_as(&user, query, json!({})).await;
    let today_cold = started.elapsed();
    let items = first["data"]["today"]["totalCount"]
        .as_i64()
        .context("today answered")?;
    let mut today_samples = Vec::new();
    for _ in 0..args.today_samples.max(1) {
        let started = Instant::now();
        let answer = system.graphql_as(&user, query, json!({})).await;
        anyhow::ensure!(answer["errors"].is_null(), "today: {answer}");
        today_samples.push(started.elapsed());
    }
    let mut raw_samples = Vec::new();
    for _ in 0..args.today_samples.max(1) {
        let started = Instant::now();
        let rows: Vec<(uuid::Uuid, chrono::NaiveDate)> = sqlx::query_as(
            "SELECT customer_id, renewal_date FROM customer_profiles WHERE csm_id = $1 AND churned_on IS NULL",
        )
        .bind(csm0)
        .fetch_all(&system.pool)
        .await?;
        anyhow::ensure!(!rows.is_empty());
        raw_samples.push(started.elapsed());
    }
    let (today_p50, today_p95) = (percentile(&today_samples, 50.0), percentile(&today_samples, 95.0));
    let (raw_p50, raw_p95) = (percentile(&raw_samples, 50.0), percentile(&raw_samples, 95.0));
    println!(
        "today of a {}-customer book among {}: {items} items; first (risk cache cold) {:.0} ms; then p50 {:.1} ms p95 {:.1} ms over {} queries; raw read of the book's rows p50 {:.2} ms p95 {:.2} ms",
        args.csm_book,
        args.customers,
        today_cold.as_secs_f64() * 1000.0,
        today_p50.as_secs_f64() * 1000.0,
        today_p95.as_secs_f64() * 1000.0,
        today_samples.len(),
        raw_p50.as_secs_f64() * 1000.0,
        raw_p95.as_secs_f64() * 1000.0,
    );
    println!(
        "{}",
        json!({
            "copy_csv_ms": copy.as_secs_f64() * 1000.0,
            "today_cold_ms": today_cold.as_secs_f64() * 1000.0,
            "today_p50_ms": today_p50.as_secs_f64() * 1000.0,
            "today_p95_ms": today_p95.as_secs_f64() * 1000.0,
            "today_raw_p95_ms": raw_p95.as_secs_f64() * 1000.0,
            "customers": args.customers,
            "customers_preview_s": customers_preview.as_secs_f64(),
            "customers_commit_s": customers_commit.as_secs_f64(),
            "activities": args.activities,
            "activities_preview_s": activities_preview.as_secs_f64(),
            "activities_commit_s": activities_commit.as_secs_f64(),
            "api_batches_s": batches.as_secs_f64(),
            "exports": timings.iter().map(|(name, median, bytes)| json!({"name": name, "median_ms": median.as_secs_f64() * 1000.0, "bytes": bytes})).collect::<Vec<_>>(),
        })
    );
    system.stop().await;
    Ok(())
}
