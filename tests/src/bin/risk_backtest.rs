//! The churn-risk backtest on a generated portfolio whose churns are known (docs/DOMAIN.md
//! section 12, docs/BENCHMARKS.md): each customer gets a hidden "trouble" level from 0 to 1
//! that shapes its last 150 days (health drifting down, fewer contacts, a lower NPS answer, open
//! issues) and its odds of churning; the rest renew. The backtest then scores every outcome 30,
//! 60 and 90 days before it, through GraphQL, and prints precision, recall and lift and the time
//! the backtest took. Seeded, so the same arguments give the same portfolio.
//!
//!     cargo run --release -p tests --bin risk-backtest -- --customers 300 --seed 7
#![allow(clippy::print_stdout)]

use std::time::Instant;

use chrono::{Duration, Utc};
use clap::Parser;
use serde_json::json;
use tests::{at_or_now, uuid, TestSystem};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 300)]
    customers: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rng = fastrand::Rng::with_seed(args.seed);
    // The generator sends one request after another with one token: no rate limit.
    let limits = events::service::http::HttpLimits {
        rate_limit_per_second: 1e9,
        rate_limit_burst: 1e9,
        ..Default::default()
    };
    let system = TestSystem::spawn_limited(8, 60.0, limits).await?;
    let csm = system.register_csm("Dana Whitfield").await;
    let today = Utc::now().date_naive();
    let day = |n: i64| today + Duration::days(n);
    let started = Instant::now();
    let mut churned = 0;
    for n in 0..args.customers {
        let trouble = rng.f64();
        let onboarded = Utc::now() - Duration::days(400);
        let tier = ["Enterprise", "MidMarket", "SMB"][n % 3];
        let answer = system
            .post_ok(
                "/api/v1/customers",
                &json!({"name": format!("Account {n:04}"), "salesforce_id": "0015g00000AbCdEAAV",
                        "tier": tier, "arr": "50000", "csm_id": csm,
                        "contract_start": onboarded.date_naive(), "renewal_date": day(5 + (n % 60) as i64),
                        "occurred_at": onboarded}),
            )
            .await;
        let id = uuid(&answer["customer_id"]);
        // Health every 30 days from 150 days ago, drifting down with trouble (and some noise).
        for k in 0..5_i64 {
            let drift = trouble * 12.0 * k as f64;
            let score = (85.0 - 30.0 * trouble - drift + rng.f64() * 16.0 - 8.0)
                .clamp(5.0, 100.0)
                .round();
            system
                .post_ok(
                    &format!("/api/v1/customers/{id}/health-scores"),
                    &json!({"score": score, "source": "gainsight", "measured_at": at_or_now(day(-150 + 30 * k), 8)}),
                )
                .await;
        }
        // Contacts: every 7 days for a healthy account, every 35 for the most troubled.
        let every = 7 + (trouble * 28.0) as i64 + rng.i64(0..4);
        let mut at = -150 + rng.i64(0..every);
        while at < 0 {
            system
                .log_activity(id, if at % 2 == 0 { "meeting" } else { "email" }, day(at), &[])
                .await;
            at += every;
        }
        let nps = (10.0 - trouble * 8.0 + rng.f64() * 3.0 - 1.5).clamp(0.0, 10.0).round() as u8;
        system
            .post_ok(
                &format!("/api/v1/customers/{id}/nps"),
                &json!({"score": nps, "occurred_at": at_or_now(day(-100 - rng.i64(0..20)), 10)}),
            )
            .await;
        // Churn with odds rising with trouble; the rest renew.
        if rng.f64() < trouble * trouble {
            churned += 1;
            let (status, answer) = system
                .send(
                    reqwest::Method::POST,
                    &format!("/api/v1/customers/{id}/churn"),
                    Some(&json!({"reason": "Generated", "churned_on": day(-((n % 20) as i64))})),
                )
                .await;
            anyhow::ensure!(status.is_success(), "{answer}");
        } else {
            let (status, answer) = system
                .send(
                    reqwest::Method::POST,
                    &format!("/api/v1/customers/{id}/renewal"),
                    Some(&json!({"renewal_date": day(400)})),
                )
                .await;
            anyhow::ensure!(status.is_success(), "{answer}");
        }
    }
    system.caught_up().await;
    println!(
        "generated {} customers ({churned} churned) in {:.1} s",
        args.customers,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let data = system
        .graphql(
            "{ churnRiskBacktest { churned renewed horizons { daysBefore cases churned flagged truePositives precision
                 recall lift watchOrHighPrecision watchOrHighRecall } } }",
            json!({}),
        )
        .await;
    let took = started.elapsed();
    let backtest = &data["churnRiskBacktest"];
    println!(
        "backtest of {} churns and {} renewals in {:.0} ms",
        backtest["churned"],
        backtest["renewed"],
        took.as_secs_f64() * 1000.0
    );
    // The raw limit of the same step: reading those customers' events, nothing folded or scored.
    let started = Instant::now();
    let rows: Vec<(String, i64, serde_json::Value)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, payload FROM events WHERE aggregate_type = 'Customer'
          AND aggregate_id IN (SELECT aggregate_id FROM events
                                WHERE event_type IN ('CustomerChurned', 'CustomerRenewed'))
          ORDER BY aggregate_id, sequence",
    )
    .fetch_all(&system.pool)
    .await?;
    println!(
        "reading the cases' {} events alone: {:.0} ms",
        rows.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    println!(
        "| days before | cases | churned | high band | churned in it | precision | recall | lift | high or watch: precision, recall |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for h in backtest["horizons"].as_array().into_iter().flatten() {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {}, {} |",
            h["daysBefore"],
            h["cases"],
            h["churned"],
            h["flagged"],
            h["truePositives"],
            h["precision"],
            h["recall"],
            h["lift"],
            h["watchOrHighPrecision"],
            h["watchOrHighRecall"]
        );
    }
    system.stop().await;
    Ok(())
}
