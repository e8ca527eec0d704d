//! The load generator's engine: a portfolio made up from a seed (the same seed always makes the
//! same CSMs, customers, ids and history), played against a running system through its real
//! command API at a target rate with a number of concurrent clients, and a steady mix of
//! commands and GraphQL reads. `loadgen` (a binary of this crate) drives it from the command
//! line; `pipeline-bench` uses it for its freshness and catch-up stages.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc, Weekday};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// Where the load goes and who sends it.
#[derive(Clone)]
pub struct Target {
    pub http: reqwest::Client,
    /// The command API's base URL (`http://127.0.0.1:8081`).
    pub command_url: String,
    /// The query API's GraphQL endpoint (`http://127.0.0.1:8082/graphql`).
    pub graphql_url: String,
    /// A bearer token allowed to onboard customers and register CSMs (an admin's).
    pub token: String,
}

/// One command: its kind (for the report), path and body.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: &'static str,
    pub path: String,
    pub body: Value,
}

/// A customer and everything that happens to it, in the order it happened.
#[derive(Debug, Clone)]
pub struct CustomerPlan {
    pub id: Uuid,
    pub csm: Uuid,
    pub tier: &'static str,
    /// Onboarding, stakeholders and the partner's assignment.
    pub setup: Vec<Request>,
    /// A year of activities, weekly health scores, tasks and monthly partner reports, by date.
    pub history: Vec<Request>,
}

/// A made-up book of business.
#[derive(Debug, Clone)]
pub struct Portfolio {
    pub seed: u64,
    pub as_of: NaiveDate,
    /// CSM and partner registrations, sent before any customer.
    pub directory: Vec<Request>,
    pub csms: Vec<Uuid>,
    pub customers: Vec<CustomerPlan>,
}

fn id(rng: &mut fastrand::Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.u128(..).to_le_bytes()).into_uuid()
}

fn pick<'a>(rng: &mut fastrand::Rng, choices: &[&'a str]) -> &'a str {
    choices[rng.usize(0..choices.len())]
}

fn at(day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    day.and_hms_opt(hour, minute, 0).expect("a valid time").and_utc()
}

/// Activities a customer of `tier` sees in a typical week.
fn weekly_touches(tier: &str) -> f64 {
    match tier {
        "Enterprise" => 4.0,
        "MidMarket" => 2.0,
        _ => 1.0,
    }
}

/// How much of a week's work falls on each weekday (Monday first); weekends are rare.
const WEEKDAY_SHARE: [f64; 7] = [0.21, 0.23, 0.22, 0.2, 0.12, 0.01, 0.01];

impl Portfolio {
    /// `customers` customers over CSMs holding 20 to 60 each, with the year before `as_of`.
    pub fn generate(seed: u64, customers: usize, as_of: NaiveDate) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut directory = Vec::new();
        let mut csms = Vec::new();
        let mut book = Vec::new();
        let partners: Vec<Uuid> = (0..(customers / 50).max(1)).map(|_| id(&mut rng)).collect();
        for (index, partner) in partners.iter().enumerate() {
            directory.push(Request {
                kind: "register_partner",
                path: "/api/v1/partners".into(),
                body: json!({"partner_id": partner, "name": format!("Partner {:03}", index + 1)}),
            });
        }
        while book.len() < customers {
            let csm = id(&mut rng);
            let number = csms.len() + 1;
            csms.push(csm);
            directory.push(Request {
                kind: "register_csm",
                path: "/api/v1/csms".into(),
                body: json!({"csm_id": csm, "name": format!("CSM {number:03}"),
                             "email": format!("csm{number:03}@example.com"),
                             "occurred_at": at(as_of - Days::new(1200), 9, 0)}),
            });
            let size = rng.usize(20..=60).min(customers - book.len());
            for _ in 0..size {
                let number = book.len() + 1;
                book.push(customer(&mut rng, number, csm, &partners, as_of));
            }
        }
        Portfolio {
            seed,
            as_of,
            directory,
            csms,
            customers: book,
        }
    }

    pub fn commands(&self) -> usize {
        self.directory.len()
            + self
                .customers
                .iter()
                .map(|customer| customer.setup.len() + customer.history.len())
                .sum::<usize>()
    }
}

fn customer(rng: &mut fastrand::Rng, number: usize, csm: Uuid, partners: &[Uuid], as_of: NaiveDate) -> CustomerPlan {
    let customer_id = id(rng);
    let tier = match rng.u8(0..100) {
        0..15 => "Enterprise",
        15..50 => "MidMarket",
        _ => "SMB",
    };
    let arr = match tier {
        "Enterprise" => rng.u32(150_000..900_000),
        "MidMarket" => rng.u32(40_000..150_000),
        _ => rng.u32(5_000..40_000),
    };
    let onboarded = as_of - Days::new(rng.u64(380..1100));
    let start = as_of - Days::new(365);
    let renewal = as_of + Days::new(rng.u64(1..365));
    let base = format!("/api/v1/customers/{customer_id}");
    let mut setup = vec![Request {
        kind: "onboard_customer",
        path: "/api/v1/customers".into(),
        body: json!({
            "customer_id": customer_id, "name": format!("Customer {number:05}"),
            "salesforce_id": "0015g00000AbCdEAAV", "tier": tier, "arr": arr.to_string(),
            "industry": pick(rng, &["Retail", "Software", "Healthcare", "Finance", "Manufacturing"]),
            "csm_id": csm, "contract_start": onboarded, "renewal_date": renewal,
            "occurred_at": at(onboarded, 9, 0),
        }),
    }];
    let mut stakeholders = Vec::new();
    for (index, level) in ["executive", "champion", "user", "user"]
        .iter()
        .take(rng.usize(1..=4))
        .enumerate()
    {
        let stakeholder = id(rng);
        stakeholders.push(stakeholder);
        setup.push(Request {
            kind: "add_stakeholder",
            path: format!("{base}/stakeholders"),
            body: json!({"stakeholder_id": stakeholder, "name": format!("Contact {number}-{}", index + 1),
                         "role": "Director", "level": level, "occurred_at": at(onboarded, 10, index as u32)}),
        });
    }
    let partner = (rng.u8(0..100) < 20).then(|| partners[rng.usize(0..partners.len())]);
    if let Some(partner) = partner {
        setup.push(Request {
            kind: "assign_partner",
            path: format!("{base}/partners"),
            body: json!({"partner_id": partner}),
        });
    }

    let mut dated: Vec<(DateTime<Utc>, Request)> = Vec::new();
    let touches = weekly_touches(tier);
    let mut day = start;
    while day < as_of {
        let share = WEEKDAY_SHARE[day.weekday().num_days_from_monday() as usize];
        let mut expected = touches * share;
        while expected > 0.0 {
            if rng.f64() < expected.min(1.0) {
                let kind = pick(
                    rng,
                    &[
                        "email", "email", "email", "meeting", "call", "call", "message", "qbr", "note",
                    ],
                );
                let when = at(day, rng.u32(8..18), rng.u32(0..60));
                let inbound = rng.u8(0..3) == 0;
                let participants: Vec<Uuid> = stakeholders.iter().copied().filter(|_| rng.bool()).collect();
                let answered = kind == "email" && !inbound;
                dated.push((
                    when,
                    Request {
                        kind: "log_activity",
                        path: format!("{base}/activities"),
                        body: json!({
                            "activity_id": id(rng), "kind": kind,
                            "direction": if inbound { "inbound" } else { "outbound" },
                            "occurred_at": when,
                            "duration_minutes": if matches!(kind, "meeting" | "qbr" | "call") { json!(rng.u32(15..90)) } else { Value::Null },
                            "participants": participants,
                            "response_received": if answered { json!(rng.bool()) } else { Value::Null },
                            "subject": format!("{kind} with customer {number}"),
                        }),
                    },
                ));
            }
            expected -= 1.0;
        }
        if day.weekday() == Weekday::Mon {
            let score = (50.0 + 30.0 * ((day.ordinal() as f64 / 58.0) + number as f64).sin() + rng.f64() * 10.0)
                .clamp(0.0, 100.0);
            let when = at(day, 6, 0);
            dated.push((
                when,
                Request {
                    kind: "record_health",
                    path: format!("{base}/health-scores"),
                    body: json!({"score": (score * 10.0).round() / 10.0, "source": "gainsight", "measured_at": when}),
                },
            ));
        }
        if day.day() == 1 {
            if let Some(partner) = partner {
                let report = id(rng);
                let period_end = day - Days::new(1);
                let period_start = period_end.with_day(1).expect("the first of a month");
                dated.push((
                    at(day, 11, 0),
                    Request {
                        kind: "draft_partner_report",
                        path: format!("{base}/partner-reports"),
                        body: json!({"report_id": report, "partner_id": partner, "period_start": period_start,
                                     "period_end": period_end,
                                     "overall_status": pick(rng, &["on_track", "on_track", "at_risk", "off_track"]),
                                     "summary": format!("Month to {period_end}")}),
                    },
                ));
                dated.push((
                    at(day, 12, 0),
                    Request {
                        kind: "submit_partner_report",
                        path: format!("{base}/partner-reports/{report}/submit"),
                        body: json!({}),
                    },
                ));
            }
        }
        day = day + Days::new(1);
    }
    // Tasks are planned and worked now, so they do not open alerts for a past no one lived.
    for _ in 0..rng.usize(1..=5) {
        let task = id(rng);
        dated.push((
            at(as_of, 0, 0),
            Request {
                kind: "create_task",
                path: format!("{base}/tasks"),
                body: json!({"task_id": task,
                             "title": pick(rng, &["Renewal prep", "QBR deck", "Follow up on ticket", "Onboard new team"]),
                             "kind": pick(rng, &["renewal", "qbr_prep", "follow_up", "onboarding"]),
                             "priority": pick(rng, &["low", "medium", "high"]),
                             "assignee_id": csm.to_string(), "due_date": as_of + Days::new(rng.u64(3..60))}),
            },
        ));
        if rng.bool() {
            dated.push((
                at(as_of, 0, 1),
                Request {
                    kind: "complete_task",
                    path: format!("{base}/tasks/{task}/complete"),
                    body: json!({"outcome": "done"}),
                },
            ));
        }
    }
    dated.sort_by_key(|(when, _)| *when);
    CustomerPlan {
        id: customer_id,
        csm,
        tier,
        setup,
        history: dated.into_iter().map(|(_, request)| request).collect(),
    }
}

/// A customer's history with its activities sent as batch requests of at most `size` (first,
/// in their order), then everything else in its order: activities do not depend on the other
/// facts of a history, so an import sends them together.
pub fn batched(history: &[Request], size: usize) -> Vec<Request> {
    if size <= 1 {
        return history.to_vec();
    }
    let (activities, others): (Vec<&Request>, Vec<&Request>) =
        history.iter().partition(|request| request.kind == "log_activity");
    let mut out: Vec<Request> = activities
        .chunks(size)
        .map(|chunk| Request {
            kind: "log_activities",
            path: format!("{}/batch", chunk[0].path),
            body: json!({"activities": chunk.iter().map(|request| request.body.clone()).collect::<Vec<_>>()}),
        })
        .collect();
    out.extend(others.into_iter().cloned());
    out
}

/// Latencies of one kind of request.
#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    statuses: BTreeMap<u16, u64>,
}

/// What was sent and how it went, shared by the clients while they run.
#[derive(Default)]
pub struct Recorder {
    kinds: Mutex<BTreeMap<&'static str, Samples>>,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub events: AtomicU64,
    /// Requests the API turned away with 429 (sent again after its `Retry-After`).
    pub throttled: AtomicU64,
    first_errors: Mutex<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    pub requests: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 100_000.0).round() / 100.0
}

impl Recorder {
    fn record(&self, kind: &'static str, status: u16, latency: Duration, error: Option<String>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if !(200..300).contains(&status) {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let mut errors = self
                .first_errors
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if errors.len() < 10 {
                errors.push(format!("{kind}: {status} {}", error.unwrap_or_default()));
            }
        }
        let mut kinds = self.kinds.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let samples = kinds.entry(kind).or_default();
        samples.latencies.push(latency);
        *samples.statuses.entry(status).or_default() += 1;
    }

    /// Per kind of request: count, answers by status, latency percentiles.
    pub fn report(&self) -> BTreeMap<&'static str, KindReport> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        kinds
            .iter_mut()
            .map(|(kind, samples)| {
                samples.latencies.sort();
                let sorted = &samples.latencies;
                (
                    *kind,
                    KindReport {
                        requests: sorted.len() as u64,
                        statuses: samples.statuses.clone(),
                        p50_ms: ms(percentile(sorted, 50.0)),
                        p95_ms: ms(percentile(sorted, 95.0)),
                        p99_ms: ms(percentile(sorted, 99.0)),
                        max_ms: ms(sorted.last().copied().unwrap_or_default()),
                    },
                )
            })
            .collect()
    }

    pub fn errors(&self) -> Vec<String> {
        self.first_errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// Paces requests: the n-th may leave at `start + n / rate` (an open-loop schedule, so a slow
/// answer does not lower the offered rate); no pacing when the rate is 0.
pub struct Pace {
    start: Instant,
    rate: f64,
    ticket: AtomicU64,
}

impl Pace {
    pub fn new(rate: f64) -> Self {
        Pace {
            start: Instant::now(),
            rate,
            ticket: AtomicU64::new(0),
        }
    }

    pub async fn wait(&self) {
        if self.rate > 0.0 {
            let ticket = self.ticket.fetch_add(1, Ordering::Relaxed);
            let due = self.start + Duration::from_secs_f64(ticket as f64 / self.rate);
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

impl Target {
    /// Sends one command and records how it went; the answer's body when it succeeded. A 429
    /// (the per-token rate limit) is waited out as its `Retry-After` says and sent again: the
    /// API refused it before doing anything.
    pub async fn send(&self, request: &Request, recorder: &Recorder) -> Option<Value> {
        let started = Instant::now();
        let answer = loop {
            let answer = self
                .http
                .post(format!("{}{}", self.command_url, request.path))
                .bearer_auth(&self.token)
                .json(&request.body)
                .send()
                .await;
            match answer {
                Ok(response) if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                    recorder.throttled.fetch_add(1, Ordering::Relaxed);
                    let wait = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse::<f64>().ok())
                        .unwrap_or(1.0);
                    tokio::time::sleep(Duration::from_secs_f64(wait.clamp(0.05, 30.0))).await;
                }
                answer => break answer,
            }
        };
        match answer {
            Ok(response) => {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let latency = started.elapsed();
                if (200..300).contains(&status) {
                    let events = body["event_ids"].as_array().map_or(0, Vec::len);
                    recorder.events.fetch_add(events as u64, Ordering::Relaxed);
                    recorder.record(request.kind, status, latency, None);
                    Some(body)
                } else {
                    recorder.record(request.kind, status, latency, Some(body.to_string()));
                    None
                }
            }
            Err(error) => {
                recorder.record(request.kind, 0, started.elapsed(), Some(error.to_string()));
                None
            }
        }
    }

    /// Runs one GraphQL query and records how it went (an answer with errors counts as failed).
    pub async fn query(&self, kind: &'static str, query: &str, variables: Value, recorder: &Recorder) -> Option<Value> {
        let started = Instant::now();
        let answer = self
            .http
            .post(&self.graphql_url)
            .bearer_auth(&self.token)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await;
        let (status, body) = match answer {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(error) => {
                recorder.record(kind, 0, started.elapsed(), Some(error.to_string()));
                return None;
            }
        };
        let latency = started.elapsed();
        if status == 200 && body.get("errors").is_none() {
            recorder.record(kind, status, latency, None);
            Some(body)
        } else {
            let status = if status == 200 { 422 } else { status };
            recorder.record(kind, status, latency, Some(body.to_string()));
            None
        }
    }
}

/// Prints a progress bar on standard error while `done` approaches `total`, when standard error
/// is a terminal; stops when the returned guard is dropped.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(label: &'static str, total: u64, recorder: Arc<Recorder>) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(if terminal { 250 } else { 10_000 })).await;
                let done = recorder.sent.load(Ordering::Relaxed);
                let failed = recorder.failed.load(Ordering::Relaxed);
                let seconds = started.elapsed().as_secs_f64();
                let rate = done as f64 / seconds.max(0.001);
                let fraction = if total == 0 {
                    1.0
                } else {
                    (done as f64 / total as f64).min(1.0)
                };
                let filled = (fraction * 30.0) as usize;
                let eta = if rate > 0.0 {
                    (total.saturating_sub(done)) as f64 / rate
                } else {
                    0.0
                };
                let line = format!(
                    "{label} [{}{}] {:>3.0}% {done}/{total} {rate:.0}/s failed {failed} eta {eta:.0}s",
                    "#".repeat(filled),
                    ".".repeat(30 - filled),
                    fraction * 100.0
                );
                let mut err = std::io::stderr();
                if terminal {
                    write!(err, "\r{line}\x1b[K").ok();
                } else {
                    writeln!(err, "{line}").ok();
                }
                err.flush().ok();
            }
        });
        Progress { task }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
    }
}

/// Plays the portfolio through the command API: the directory first, then each customer's
/// requests in order on one of `clients` clients (a customer's commands never overtake each
/// other), all paced to `rate` requests per second (0: as fast as answered). Activities go as
/// batch requests of `batch` when it is above 1.
pub async fn bulk(target: &Target, portfolio: &Portfolio, clients: usize, rate: f64, batch: usize) -> Arc<Recorder> {
    let recorder = Arc::new(Recorder::default());
    let queues: Vec<Vec<Request>> = portfolio
        .customers
        .iter()
        .map(|customer| {
            let mut requests = customer.setup.clone();
            requests.extend(batched(&customer.history, batch));
            requests
        })
        .collect();
    let total = portfolio.directory.len() + queues.iter().map(Vec::len).sum::<usize>();
    let _progress = Progress::start("bulk", total as u64, recorder.clone());
    let pace = Arc::new(Pace::new(rate));
    for request in &portfolio.directory {
        pace.wait().await;
        target.send(request, &recorder).await;
    }
    let queues = Arc::new(queues);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (target, recorder, queues, next, pace) = (
            target.clone(),
            recorder.clone(),
            queues.clone(),
            next.clone(),
            pace.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(requests) = queues.get(index) else { break };
                for request in requests {
                    pace.wait().await;
                    target.send(request, &recorder).await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.ok();
    }
    recorder
}

/// The reads of the steady mix, by weight: mostly customer pages, then the portfolio reports.
const READS: [(&str, &str, u32); 5] = [
    ("customer_360", crate::bench::CUSTOMER_360, 50),
    ("customer_timeline", "query($id: UUID!) { customerTimeline(customerId: $id, first: 20) { edges { node { kind summary occurredAt } } } }", 20),
    ("coverage_report", crate::bench::PORTFOLIO_REPORTS[0].1, 10),
    ("engagement_report", crate::bench::PORTFOLIO_REPORTS[1].1, 10),
    ("workload_report", crate::bench::PORTFOLIO_REPORTS[2].1, 10),
];

/// For `duration`, sends new activities and health scores on the portfolio's customers at
/// `write_rate` per second and GraphQL reads at `read_rate` per second, from `clients` clients
/// each; every request's time `at` is `now` (the system refuses facts from the future).
pub async fn steady(
    target: &Target,
    portfolio: &Portfolio,
    clients: usize,
    write_rate: f64,
    read_rate: f64,
    duration: Duration,
) -> Arc<Recorder> {
    let recorder = Arc::new(Recorder::default());
    let expected = ((write_rate + read_rate) * duration.as_secs_f64()) as u64;
    let _progress = Progress::start("steady", expected, recorder.clone());
    let deadline = Instant::now() + duration;
    let customers: Arc<Vec<Uuid>> = Arc::new(portfolio.customers.iter().map(|customer| customer.id).collect());
    let mut tasks = Vec::new();
    for (rate, writes) in [(write_rate, true), (read_rate, false)] {
        if rate <= 0.0 {
            continue;
        }
        let pace = Arc::new(Pace::new(rate));
        for client in 0..clients.max(1) {
            let (target, recorder, customers, pace) =
                (target.clone(), recorder.clone(), customers.clone(), pace.clone());
            let mut rng = fastrand::Rng::with_seed(portfolio.seed ^ ((client as u64) << 32) ^ u64::from(writes));
            tasks.push(tokio::spawn(async move {
                loop {
                    pace.wait().await;
                    if Instant::now() >= deadline {
                        break;
                    }
                    let customer = customers[rng.usize(0..customers.len())];
                    if writes {
                        target.send(&live_write(&mut rng, customer), &recorder).await;
                    } else {
                        let mut pick = rng.u32(0..READS.iter().map(|read| read.2).sum());
                        let (kind, query, _) = READS
                            .iter()
                            .find(|read| {
                                let hit = pick < read.2;
                                pick = pick.saturating_sub(read.2);
                                hit
                            })
                            .expect("the weights cover the pick");
                        target.query(kind, query, json!({"id": customer}), &recorder).await;
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.ok();
    }
    recorder
}

/// A command of the steady mix: mostly an activity logged just now, sometimes a health score.
pub fn live_write(rng: &mut fastrand::Rng, customer: Uuid) -> Request {
    let now = Utc::now() - chrono::Duration::seconds(1);
    let base = format!("/api/v1/customers/{customer}");
    if rng.u8(0..10) == 0 {
        Request {
            kind: "record_health",
            path: format!("{base}/health-scores"),
            body: json!({"score": rng.u8(20..95), "source": "gainsight", "measured_at": now}),
        }
    } else {
        let kind = pick(rng, &["email", "meeting", "call", "message"]);
        Request {
            kind: "log_activity",
            path: format!("{base}/activities"),
            body: json!({"activity_id": id(rng), "kind": kind, "direction": "outbound", "occurred_at": now,
                         "duration_minutes": if kind == "meeting" { json!(30) } else { Value::Null },
                         "subject": format!("{kind} today")}),
        }
    }
}

/// The machine a figure was measured on, the day and the commit, for every report.
#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    pub cores: usize,
    pub cpu: String,
    pub memory_gib: f64,
    pub date: String,
    pub commit: String,
}

impl Provenance {
    pub fn here() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory_kib: f64 = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        Provenance {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            cpu,
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            date: Utc::now().format("%Y-%m-%d").to_string(),
            commit,
        }
    }
}
