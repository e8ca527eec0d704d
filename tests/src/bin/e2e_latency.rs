//! Measures the end-to-end delay from a REST command to GraphQL: logs activities one at a time
//! against a running system and, for each, polls `accountCoverage` until the activity counts.
//!
//!     cargo run --release -p tests --bin e2e-latency -- --count 100
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use clap::Parser;
use serde_json::{json, Value};

static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    command_url: String,
    #[arg(long, default_value = "http://127.0.0.1:8082/graphql")]
    graphql_url: String,
    /// Activities to measure.
    #[arg(long, default_value_t = 100)]
    count: usize,
    #[command(flatten)]
    auth: command_service::auth::AuthSettings,
}

async fn post(http: &reqwest::Client, url: String, body: Value) -> anyhow::Result<Value> {
    let token = TOKEN.get().map(String::as_str).unwrap_or_default();
    let response = http
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        bail!("POST {url}: {status} {body}");
    }
    Ok(body)
}

async fn touches(http: &reqwest::Client, args: &Args, customer: &str) -> anyhow::Result<i64> {
    let answer = post(
        http,
        args.graphql_url.clone(),
        json!({"query": "query($id: UUID!) { accountCoverage(customerId: $id) { touches30d } }", "variables": {"id": customer}}),
    )
    .await?;
    answer["data"]["accountCoverage"]["touches30d"]
        .as_i64()
        .context("touches30d in the answer")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let token = command_service::auth::mint(
        &args.auth,
        "latency-probe",
        events::metadata::Role::Admin,
        None,
        chrono::Duration::hours(1),
    )
    .context("set CSTRACK_JWT_SECRET to the command service's secret")?;
    TOKEN.set(token).ok();
    let http = reqwest::Client::new();
    let run = uuid::Uuid::now_v7().simple().to_string();
    let csm = post(
        &http,
        format!("{}/api/v1/csms", args.command_url),
        json!({"name": format!("Latency probe {run}"), "email": format!("probe-{run}@example.com")}),
    )
    .await?;
    let customer = post(
        &http,
        format!("{}/api/v1/customers", args.command_url),
        json!({
            "name": format!("Latency probe {run}"), "salesforce_id": "0015g00000LaTeNCYQ", "tier": "SMB",
            "arr": "1000", "csm_id": csm["csm_id"], "contract_start": "2025-01-01", "renewal_date": "2027-01-01",
            "occurred_at": Utc::now() - chrono::Duration::days(100),
        }),
    )
    .await?;
    let customer = customer["customer_id"].as_str().context("customer id")?.to_owned();
    let deadline = Duration::from_secs(30);
    // Wait until the customer itself is visible.
    let start = Instant::now();
    while touches(&http, &args, &customer).await.is_err() {
        if start.elapsed() > deadline {
            bail!("the customer never appeared in GraphQL");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let mut delays = Vec::with_capacity(args.count);
    for n in 1..=args.count {
        let started = Instant::now();
        post(
            &http,
            format!("{}/api/v1/customers/{customer}/activities", args.command_url),
            json!({"kind": "email", "direction": "outbound", "occurred_at": Utc::now() - chrono::Duration::seconds(30)}),
        )
        .await?;
        loop {
            if touches(&http, &args, &customer).await? >= n as i64 {
                break;
            }
            if started.elapsed() > deadline {
                bail!("activity {n} never showed in GraphQL");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        delays.push(started.elapsed());
    }
    delays.sort();
    let mean = delays.iter().sum::<Duration>() / delays.len() as u32;
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    println!("command -> GraphQL delay over {} activities", delays.len());
    println!("  median {}", ms(percentile(&delays, 50.0)));
    println!("  p95    {}", ms(percentile(&delays, 95.0)));
    println!("  worst  {}", ms(*delays.last().expect("at least one")));
    println!("  mean   {}", ms(mean));
    Ok(())
}
