//! The churn-risk score of an account on a day, explained factor by factor with the events
//! behind each (docs/DOMAIN.md section 12), and its backtest against the churns and renewals in
//! the store. Everything is computed from the customer's stream folded up to the day
//! (`crate::as_of`), so `asOf`, `knownAt` and what-if rules answer like every other report.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Days, NaiveDate, Utc};
use events::coverage::round1;
use events::customer::{Severity, UseCaseStatus};
use events::risk::{Factor, Inputs};
use events::rules::Rules;
use events::service::report_cache::{PortfolioCache, PortfolioRow};
use sqlx::PgPool;
use uuid::Uuid;

use crate::as_of::KnownCustomer;
use crate::scalars::{Date, Priority};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskBand {
    High,
    Watch,
    Low,
}

impl From<events::risk::Band> for RiskBand {
    fn from(band: events::risk::Band) -> Self {
        match band {
            events::risk::Band::High => RiskBand::High,
            events::risk::Band::Watch => RiskBand::Watch,
            events::risk::Band::Low => RiskBand::Low,
        }
    }
}

impl RiskBand {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskBand::High => "HIGH",
            RiskBand::Watch => "WATCH",
            RiskBand::Low => "LOW",
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskFactorKind {
    Health,
    HealthTrend,
    Engagement,
    EngagementTrend,
    Coverage,
    Contact,
    Nps,
    Issues,
    Escalations,
    Renewal,
    Adoption,
    CustomField,
}

impl From<Factor> for RiskFactorKind {
    fn from(factor: Factor) -> Self {
        match factor {
            Factor::Health => RiskFactorKind::Health,
            Factor::HealthTrend => RiskFactorKind::HealthTrend,
            Factor::Engagement => RiskFactorKind::Engagement,
            Factor::EngagementTrend => RiskFactorKind::EngagementTrend,
            Factor::Coverage => RiskFactorKind::Coverage,
            Factor::Contact => RiskFactorKind::Contact,
            Factor::Nps => RiskFactorKind::Nps,
            Factor::Issues => RiskFactorKind::Issues,
            Factor::Escalations => RiskFactorKind::Escalations,
            Factor::Renewal => RiskFactorKind::Renewal,
            Factor::Adoption => RiskFactorKind::Adoption,
        }
    }
}

fn label(factor: Factor) -> &'static str {
    match factor {
        Factor::Health => "Health score",
        Factor::HealthTrend => "Health trend (30 days)",
        Factor::Engagement => "Engagement (30 days)",
        Factor::EngagementTrend => "Engagement trend",
        Factor::Coverage => "Coverage",
        Factor::Contact => "Days since contact",
        Factor::Nps => "NPS",
        Factor::Issues => "Open issues",
        Factor::Escalations => "Open escalations",
        Factor::Renewal => "Renewal proximity",
        Factor::Adoption => "Adoption",
    }
}

/// A fact behind a factor: the event that recorded it.
#[derive(SimpleObject, Debug, Clone)]
pub struct RiskEvidence {
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// What the event recorded, in words.
    pub description: String,
}

/// One factor's part of the score.
#[derive(SimpleObject, Debug, Clone)]
pub struct RiskFactorPart {
    pub factor: RiskFactorKind,
    /// The custom field's key, for a custom factor.
    pub custom_field_key: Option<String>,
    pub label: String,
    /// What the account's facts were on the day, in a sentence ("No data" when there were none).
    pub finding: String,
    /// The points the factor adds at full severity.
    pub weight: f64,
    /// 0 to 1, three decimals; null when the facts it reads are missing.
    pub severity: Option<f64>,
    /// weight × severity, one decimal.
    pub points: f64,
    pub evidence: Vec<RiskEvidence>,
}

/// An account's churn risk on a day.
#[derive(SimpleObject, Debug, Clone)]
pub struct ChurnRisk {
    pub customer_id: Uuid,
    pub name: String,
    pub as_of: Date,
    pub known_at: DateTime<Utc>,
    /// The Rules stream's version, or `what-if:<digest>`.
    pub rules_version: String,
    /// 0 to 100, one decimal: the sum of the factors' points.
    pub score: f64,
    pub band: RiskBand,
    pub high_from: f64,
    pub watch_from: f64,
    /// Every factor, the largest contribution first.
    pub factors: Vec<RiskFactorPart>,
}

/// The score and band alone, as the customer list shows them.
#[derive(SimpleObject, Debug, Clone, Copy, PartialEq)]
pub struct RiskSummary {
    pub score: f64,
    pub band: RiskBand,
}

fn day_text(day: NaiveDate) -> String {
    day.format("%-d %b %Y").to_string()
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

fn risk_severity(severity: Severity) -> events::risk::Severity {
    match severity {
        Severity::Low => events::risk::Severity::Low,
        Severity::Medium => events::risk::Severity::Medium,
        Severity::High => events::risk::Severity::High,
        Severity::Critical => events::risk::Severity::Critical,
    }
}

/// What a factor found and the events behind it.
#[derive(Default)]
struct Finding {
    text: String,
    evidence: Vec<RiskEvidence>,
}

fn evidence(event_id: Uuid, occurred_at: DateTime<Utc>, description: String) -> RiskEvidence {
    RiskEvidence {
        event_id,
        occurred_at,
        description,
    }
}

/// The end of `day` (UTC): a fold up to the day keeps what happened by then.
pub fn end_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(23, 59, 59).expect("a valid time").and_utc()
}

/// The inputs of the score on `day` from `known` (folded up to the day), with what each factor
/// found.
fn facts(known: &KnownCustomer, day: NaiveDate, rules: &Rules) -> (Inputs, HashMap<Factor, Finding>) {
    let mut inputs = Inputs {
        max_days_between_contact: rules.standard(known.tier).max_days_between_contact,
        custom_fields: known.custom_fields.clone(),
        ..Inputs::default()
    };
    let mut found: HashMap<Factor, Finding> = HashMap::new();

    // Health and its 30-day trend (the health report's window).
    if let Some(point) = crate::health::as_of(&known.health, day) {
        inputs.health = Some(point.score);
        let trend = crate::health::window(&known.health, day, 30);
        inputs.health_change = trend.delta;
        let described = |p: &crate::health::Point| {
            evidence(
                p.lineage.event_id,
                p.lineage.measured_at,
                format!("Health score {} recorded from {}", p.score, p.lineage.source),
            )
        };
        found.insert(
            Factor::Health,
            Finding {
                text: format!(
                    "Latest score {} (measured {})",
                    point.score,
                    day_text(point.measured_on)
                ),
                evidence: vec![described(point)],
            },
        );
        let start = day - Days::new(30);
        let begin = crate::health::as_of(&known.health, start).or_else(|| {
            known
                .health
                .iter()
                .find(|p| p.measured_on > start && p.measured_on <= day)
        });
        if let (Some(delta), Some(begin)) = (trend.delta, begin) {
            let movement = if delta < 0.0 {
                format!("down {} points", -delta)
            } else if delta > 0.0 {
                format!("up {delta} points")
            } else {
                "unchanged".to_owned()
            };
            let mut evidence = vec![described(begin)];
            if begin.lineage.event_id != point.lineage.event_id {
                evidence.push(described(point));
            }
            found.insert(
                Factor::HealthTrend,
                Finding {
                    text: format!(
                        "{} on {}, {} now: {movement}",
                        begin.score,
                        day_text(begin.measured_on),
                        point.score
                    ),
                    evidence,
                },
            );
        }
    }

    // Engagement over the 30 days to the day against the 30 before.
    let engagement = crate::engagement::customer_engagement(
        &known.engagement_facts(),
        &events::engagement::Period::rolling(events::engagement::DEFAULT_WINDOW_DAYS, day),
        day,
        None,
        None,
        &rules.weights,
    );
    inputs.engagement = Some(engagement.score);
    inputs.engagement_change = Some(engagement.change);
    found.insert(
        Factor::Engagement,
        Finding {
            text: format!(
                "Score {:.1} over the 30 days to {}: {} meetings, {} calls, {} emails sent",
                engagement.score,
                day_text(day),
                engagement.meetings_held,
                engagement.calls_made,
                engagement.emails_sent
            ),
            evidence: Vec::new(),
        },
    );
    found.insert(
        Factor::EngagementTrend,
        Finding {
            text: format!(
                "{:.1} against {:.1} in the 30 days before: {}",
                engagement.score,
                engagement.previous_score,
                if engagement.change < 0.0 {
                    format!("down {:.1}", -engagement.change)
                } else if engagement.change > 0.0 {
                    format!("up {:.1}", engagement.change)
                } else {
                    "unchanged".to_owned()
                }
            ),
            evidence: Vec::new(),
        },
    );

    // Coverage and contact.
    let account = known.account_facts(day, None);
    let coverage = crate::coverage::account_coverage(&account, rules);
    inputs.coverage_severity = Some(match coverage.priority {
        Priority::Urgent => 1.0,
        Priority::Attention => 0.5,
        Priority::Ok => 0.0,
    });
    let days = account.inputs.scoring_days_since_contact();
    inputs.days_since_contact = Some(days);
    let last_contact = known
        .activities
        .values()
        .filter(|a| a.kind.is_contact() && a.occurred_at.date_naive() <= day)
        .max_by_key(|a| a.occurred_at);
    let contact_evidence: Vec<RiskEvidence> = last_contact
        .and_then(|a| {
            let event_id = *known.activity_events.get(&a.activity_id)?;
            Some(evidence(
                event_id,
                a.occurred_at,
                format!("Last contact: {} ({})", a.subject, kind_word(a.kind)),
            ))
        })
        .into_iter()
        .collect();
    found.insert(
        Factor::Coverage,
        Finding {
            text: format!(
                "Coverage {:.1}, {}",
                coverage.score,
                match coverage.priority {
                    Priority::Urgent => "urgent",
                    Priority::Attention => "needs attention",
                    Priority::Ok => "well covered",
                }
            ),
            evidence: contact_evidence.clone(),
        },
    );
    let standard = inputs.max_days_between_contact;
    found.insert(
        Factor::Contact,
        Finding {
            text: match last_contact {
                Some(a) => format!(
                    "{days} days since the last contact on {} (the standard: at most {standard})",
                    day_text(a.occurred_at.date_naive())
                ),
                None => format!("Never contacted: {days} days since onboarding (the standard: at most {standard})"),
            },
            evidence: contact_evidence,
        },
    );

    // NPS: the latest answer of the year to the day.
    let year_before = day - Days::new(365);
    if let Some(answer) = known
        .nps
        .iter()
        .filter(|n| n.occurred_at.date_naive() <= day && n.occurred_at.date_naive() > year_before)
        .max_by_key(|n| n.occurred_at)
    {
        inputs.nps = Some(answer.value);
        let category = match answer.value {
            0..=6 => "detractor",
            7..=8 => "passive",
            _ => "promoter",
        };
        found.insert(
            Factor::Nps,
            Finding {
                text: format!(
                    "Latest answer {} ({category}) on {}",
                    answer.value,
                    day_text(answer.occurred_at.date_naive())
                ),
                evidence: vec![evidence(
                    answer.event_id,
                    answer.occurred_at,
                    format!("NPS answer {}", answer.value),
                )],
            },
        );
    }

    // Open issues and escalations.
    let open = |items: &BTreeMap<Uuid, crate::as_of::KnownFact<(String, Severity)>>, noun: &str, title: &str| {
        let items: Vec<&crate::as_of::KnownFact<(String, Severity)>> = items
            .values()
            .filter(|item| item.occurred_at.date_naive() <= day)
            .collect();
        let text = if items.is_empty() {
            format!("No open {noun}s")
        } else {
            let names: Vec<String> = items
                .iter()
                .map(|item| format!("{} ({})", item.value.0, severity_word(item.value.1)))
                .collect();
            format!("{} open: {}", items.len(), names.join(", "))
        };
        let proof = items
            .iter()
            .map(|item| {
                evidence(
                    item.event_id,
                    item.occurred_at,
                    format!("{title} “{}” ({}) opened", item.value.0, severity_word(item.value.1)),
                )
            })
            .collect();
        (
            items.iter().map(|item| item.value.1).collect::<Vec<Severity>>(),
            text,
            proof,
        )
    };
    let (issues, text, proof) = open(&known.open_issues, "issue", "Issue");
    inputs.open_issues = issues.into_iter().map(risk_severity).collect();
    found.insert(Factor::Issues, Finding { text, evidence: proof });
    let (escalations, text, proof) = open(&known.open_escalations, "escalation", "Escalation");
    inputs.open_escalations = escalations.len();
    found.insert(Factor::Escalations, Finding { text, evidence: proof });

    // Renewal.
    let to_renewal = (known.renewal_date - day).num_days();
    inputs.days_to_renewal = Some(to_renewal);
    found.insert(
        Factor::Renewal,
        Finding {
            text: if to_renewal >= 0 {
                format!("Renews on {}, in {to_renewal} days", day_text(known.renewal_date))
            } else {
                format!(
                    "The renewal date {} passed {} days ago",
                    day_text(known.renewal_date),
                    -to_renewal
                )
            },
            evidence: Vec::new(),
        },
    );

    // Adoption: the stage and the use cases' progress.
    inputs.stage_severity = known.adoption_stage.as_deref().map(|stage| match stage {
        "onboarding" => 1.0,
        "implementing" => 0.75,
        "adopted" => 0.5,
        _ => 0.0,
    });
    if !known.use_cases.is_empty() {
        let progress: f64 = known
            .use_cases
            .values()
            .map(|status| match status {
                UseCaseStatus::NotStarted => 0.0,
                UseCaseStatus::InProgress => 0.5,
                UseCaseStatus::Implemented | UseCaseStatus::Optimized => 1.0,
            })
            .sum();
        inputs.use_case_progress = Some(progress / known.use_cases.len() as f64);
    }
    if inputs.stage_severity.is_some() || inputs.use_case_progress.is_some() {
        let live = known
            .use_cases
            .values()
            .filter(|s| matches!(s, UseCaseStatus::Implemented | UseCaseStatus::Optimized))
            .count();
        let started = known
            .use_cases
            .values()
            .filter(|s| matches!(s, UseCaseStatus::InProgress))
            .count();
        let stage = known.adoption_stage.as_deref().unwrap_or("not set");
        found.insert(
            Factor::Adoption,
            Finding {
                text: format!(
                    "Stage {stage}; {live} of {} use cases live, {started} in progress",
                    known.use_cases.len()
                ),
                evidence: known
                    .adoption_event
                    .iter()
                    .map(|fact| {
                        evidence(
                            fact.event_id,
                            fact.occurred_at,
                            format!("Adoption stage set to {stage}"),
                        )
                    })
                    .collect(),
            },
        );
    }
    (inputs, found)
}

/// An activity's kind in words ("meeting", "qbr").
fn kind_word(kind: events::customer::ActivityKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|value| value.as_str().map(|text| text.replace('_', " ")))
        .unwrap_or_default()
}

/// The custom fields as a caller may see them: names of the visible ones, keys of the hidden.
#[derive(Debug, Clone, Default)]
pub struct FieldNames {
    pub labels: BTreeMap<String, String>,
    pub hidden: std::collections::BTreeSet<String>,
}

impl FieldNames {
    pub fn for_role(definitions: &events::fields::Definitions, role: events::metadata::Role) -> Self {
        let mut names = FieldNames::default();
        for field in &definitions.fields {
            if role == events::metadata::Role::Admin || field.visible_to.contains(&role) {
                names.labels.insert(field.key.clone(), field.label.clone());
            } else {
                names.hidden.insert(field.key.clone());
            }
        }
        names
    }
}

/// The churn risk of `known` (folded up to the end of `day`) under `rules`. A custom factor on a
/// field hidden from the caller counts, but neither its name nor its value is shown.
pub fn assess(known: &KnownCustomer, day: NaiveDate, rules: &Rules, names: &FieldNames) -> ChurnRisk {
    let (inputs, mut found) = facts(known, day, rules);
    let scored = events::risk::score(&inputs, &rules.risk);
    let mut factors: Vec<RiskFactorPart> = scored
        .parts
        .iter()
        .map(|part| {
            let severity = part.severity.map(|s| (s * 1000.0).round() / 1000.0);
            match (part.factor, &part.custom) {
                (Some(factor), _) => {
                    let finding = found.remove(&factor).unwrap_or_default();
                    RiskFactorPart {
                        factor: factor.into(),
                        custom_field_key: None,
                        label: label(factor).to_owned(),
                        finding: if finding.text.is_empty() {
                            "No data".to_owned()
                        } else {
                            finding.text
                        },
                        weight: part.weight,
                        severity,
                        points: round1(part.points),
                        evidence: finding.evidence,
                    }
                }
                (None, key) if names.hidden.contains(key.as_deref().unwrap_or_default()) => RiskFactorPart {
                    factor: RiskFactorKind::CustomField,
                    custom_field_key: None,
                    label: "A custom field you cannot see".to_owned(),
                    finding: "Hidden from your role".to_owned(),
                    weight: part.weight,
                    severity,
                    points: round1(part.points),
                    evidence: Vec::new(),
                },
                (None, key) => {
                    let key = key.clone().unwrap_or_default();
                    let value = known.custom_fields.get(&key);
                    let name = names.labels.get(&key).cloned().unwrap_or_else(|| key.clone());
                    RiskFactorPart {
                        factor: RiskFactorKind::CustomField,
                        custom_field_key: Some(key.clone()),
                        label: name.clone(),
                        finding: match (value, part.severity) {
                            (Some(value), Some(s)) if s > 0.0 => format!("{name} is {}: a risk signal", words(value)),
                            (Some(value), _) => format!("{name} is {}: no risk signal", words(value)),
                            (None, _) => "No data".to_owned(),
                        },
                        weight: part.weight,
                        severity,
                        points: round1(part.points),
                        evidence: known
                            .custom_field_events
                            .get(&key)
                            .filter(|_| value.is_some())
                            .map(|event_id| RiskEvidence {
                                event_id: *event_id,
                                occurred_at: known.known_at,
                                description: format!("{name} set"),
                            })
                            .into_iter()
                            .collect(),
                    }
                }
            }
        })
        .collect();
    factors.sort_by(|a, b| b.points.total_cmp(&a.points));
    ChurnRisk {
        customer_id: known.customer_id,
        name: known.name.clone(),
        as_of: Date(day),
        known_at: known.known_at,
        rules_version: rules.version.clone(),
        score: scored.score,
        band: scored.band.into(),
        high_from: rules.risk.high_from,
        watch_from: rules.risk.watch_from,
        factors,
    }
}

fn words(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Bool(true) => "yes".to_owned(),
        serde_json::Value::Bool(false) => "no".to_owned(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// One customer's churn risk on `day` as known at `known_at`; `None` when it was not onboarded
/// by then.
pub async fn of(
    pool: &PgPool,
    customer_id: Uuid,
    day: NaiveDate,
    known_at: DateTime<Utc>,
    rules: &Rules,
    names: &FieldNames,
) -> Result<Option<ChurnRisk>, sqlx::Error> {
    let rows = crate::as_of::rows(pool, Some(&[customer_id]), known_at).await?;
    Ok(crate::as_of::fold(
        customer_id,
        &rows,
        known_at,
        Some(end_of(day.min(known_at.date_naive()))),
    )
    .map(|known| assess(&known, day, rules, names)))
}

/// A customer's score in the portfolio cache.
#[derive(Debug, Clone)]
pub struct RiskRow {
    pub customer_id: Uuid,
    pub name: String,
    pub summary: RiskSummary,
}

impl PortfolioRow for RiskRow {
    fn customer_id(&self) -> Uuid {
        self.customer_id
    }
    fn order_key(&self) -> &str {
        &self.name
    }
}

/// Every customer's score on a day under a version of the rules, kept current by the customers
/// projector's change marks.
pub struct RiskCache(PortfolioCache<(NaiveDate, String), RiskRow>);

impl Default for RiskCache {
    fn default() -> Self {
        RiskCache(PortfolioCache::new(&["customers"]))
    }
}

/// Customers folded per read, so a cold load holds a bounded part of the store in memory.
const FOLD_BATCH: usize = 500;

/// Every customer's score on `day` under `rules` (today's knowledge), through `cache` when given.
pub async fn portfolio(
    pool: &PgPool,
    cache: Option<&RiskCache>,
    day: NaiveDate,
    rules: &Rules,
) -> Result<Arc<Vec<RiskRow>>, sqlx::Error> {
    let load = |customers: Option<Vec<Uuid>>| async move {
        let ids = match customers {
            Some(ids) => ids,
            None => {
                sqlx::query_scalar("SELECT customer_id FROM customer_profiles ORDER BY name, customer_id")
                    .fetch_all(pool)
                    .await?
            }
        };
        let now = Utc::now();
        let mut rows = Vec::with_capacity(ids.len());
        for batch in ids.chunks(FOLD_BATCH) {
            let events = crate::as_of::rows(pool, Some(batch), now).await?;
            for known in crate::as_of::fold_all(&events, now, Some(end_of(day))) {
                let risk = assess(&known, day, rules, &FieldNames::default());
                rows.push(RiskRow {
                    customer_id: known.customer_id,
                    name: known.name.clone(),
                    summary: RiskSummary {
                        score: risk.score,
                        band: risk.band,
                    },
                });
            }
        }
        Ok(rows)
    };
    match cache {
        Some(cache) => cache.0.rows(pool, &(day, rules.version.clone()), load).await,
        None => Ok(Arc::new(load(None).await?)),
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "CaseOutcome")]
pub enum Outcome {
    Churned,
    Renewed,
}

/// A case's score some days before its outcome.
#[derive(SimpleObject, Debug, Clone)]
pub struct ScoreBefore {
    pub days_before: i32,
    pub on: Date,
    /// Null when the customer had not been onboarded yet.
    pub score: Option<f64>,
    pub band: Option<RiskBand>,
}

/// A churn or a renewal in the store, with the scores before it.
#[derive(SimpleObject, Debug, Clone)]
pub struct BacktestCase {
    pub customer_id: Uuid,
    pub name: String,
    pub outcome: Outcome,
    /// The day the customer churned, or the day the renewal was recorded as happening.
    pub outcome_on: Date,
    pub scores: Vec<ScoreBefore>,
}

/// How well the high band foresaw churn a number of days ahead.
#[derive(SimpleObject, Debug, Clone)]
pub struct BacktestHorizon {
    pub days_before: i32,
    /// Cases scored (the customer existed by then), churns among them, and cases in the high band.
    pub cases: usize,
    pub churned: usize,
    pub flagged: usize,
    /// Churns in the high band.
    pub true_positives: usize,
    /// true positives / flagged; null when nothing was flagged.
    pub precision: Option<f64>,
    /// true positives / churned; null when nothing churned.
    pub recall: Option<f64>,
    /// precision / (churned / cases): how much likelier a flagged account churned than any.
    pub lift: Option<f64>,
    /// The same for the high and watch bands together.
    pub watch_or_high_precision: Option<f64>,
    pub watch_or_high_recall: Option<f64>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct RiskBacktest {
    pub rules_version: String,
    pub churned: usize,
    pub renewed: usize,
    pub horizons: Vec<BacktestHorizon>,
    /// Every case, the latest outcome first.
    pub cases: Vec<BacktestCase>,
}

fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 1000.0).round() / 1000.0)
}

/// Scores every churn and renewal in the store `horizons` days before it under `rules`.
pub async fn backtest(pool: &PgPool, rules: &Rules, horizons: &[u32]) -> Result<RiskBacktest, sqlx::Error> {
    let outcomes: Vec<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT aggregate_id, event_type, payload FROM events
          WHERE aggregate_type = 'Customer' AND event_type IN ('CustomerChurned', 'CustomerRenewed')
          ORDER BY aggregate_id, sequence",
    )
    .fetch_all(pool)
    .await?;
    let now = Utc::now();
    let mut cases = Vec::new();
    // Each customer's outcomes, in stream order.
    let mut by_customer: BTreeMap<Uuid, Vec<(String, serde_json::Value)>> = BTreeMap::new();
    for (stream, event_type, payload) in outcomes {
        if let Ok(id) = Uuid::parse_str(&stream) {
            by_customer.entry(id).or_default().push((event_type, payload));
        }
    }
    let ids: Vec<Uuid> = by_customer.keys().copied().collect();
    for batch in ids.chunks(FOLD_BATCH) {
        let rows = crate::as_of::rows(pool, Some(batch), now).await?;
        let streams: HashMap<String, &[crate::as_of::Row]> = rows
            .chunk_by(|a, b| a.stream() == b.stream())
            .map(|stream| (stream[0].stream().to_owned(), stream))
            .collect();
        for customer_id in batch {
            let Some(rows) = streams.get(&customer_id.to_string()) else {
                continue;
            };
            // A retracted customer is no case.
            let Some(current) = crate::as_of::fold(*customer_id, rows, now, None) else {
                continue;
            };
            for (event_type, payload) in &by_customer[customer_id] {
                let customer_id = *customer_id;
                // The store keeps the event as its enum's JSON: `{"CustomerChurned": {...}}`.
                let payload = payload.get(event_type.as_str()).unwrap_or(payload);
                let (outcome, outcome_on) = if event_type == "CustomerChurned" {
                    let Some(day) = payload
                        .get("churned_on")
                        .and_then(|d| d.as_str())
                        .and_then(|d| d.parse().ok())
                    else {
                        continue;
                    };
                    (Outcome::Churned, day)
                } else {
                    let Some(at) = payload
                        .get("occurred_at")
                        .and_then(|d| d.as_str())
                        .and_then(|d| d.parse::<DateTime<Utc>>().ok())
                    else {
                        continue;
                    };
                    (Outcome::Renewed, at.date_naive())
                };
                let scores = horizons
                    .iter()
                    .map(|days| {
                        let on = outcome_on - Days::new(u64::from(*days));
                        let risk = crate::as_of::fold(customer_id, rows, now, Some(end_of(on)))
                            .map(|known| assess(&known, on, rules, &FieldNames::default()));
                        ScoreBefore {
                            days_before: *days as i32,
                            on: Date(on),
                            score: risk.as_ref().map(|r| r.score),
                            band: risk.map(|r| r.band),
                        }
                    })
                    .collect();
                cases.push(BacktestCase {
                    customer_id,
                    name: current.name.clone(),
                    outcome,
                    outcome_on: Date(outcome_on),
                    scores,
                });
            }
        }
    }
    cases.sort_by(|a, b| b.outcome_on.0.cmp(&a.outcome_on.0).then(a.name.cmp(&b.name)));
    let horizons = horizons
        .iter()
        .enumerate()
        .map(|(index, days)| {
            let scored: Vec<(Outcome, RiskBand)> = cases
                .iter()
                .filter_map(|case| Some((case.outcome, case.scores[index].band?)))
                .collect();
            let churned = scored.iter().filter(|(o, _)| *o == Outcome::Churned).count();
            let flagged = scored.iter().filter(|(_, b)| *b == RiskBand::High).count();
            let hits = scored
                .iter()
                .filter(|(o, b)| *o == Outcome::Churned && *b == RiskBand::High)
                .count();
            let wide = scored.iter().filter(|(_, b)| *b != RiskBand::Low).count();
            let wide_hits = scored
                .iter()
                .filter(|(o, b)| *o == Outcome::Churned && *b != RiskBand::Low)
                .count();
            BacktestHorizon {
                days_before: *days as i32,
                cases: scored.len(),
                churned,
                flagged,
                true_positives: hits,
                precision: ratio(hits, flagged),
                recall: ratio(hits, churned),
                lift: (flagged > 0 && churned > 0).then(|| {
                    let lift = (hits as f64 / flagged as f64) / (churned as f64 / scored.len() as f64);
                    (lift * 100.0).round() / 100.0
                }),
                watch_or_high_precision: ratio(wide_hits, wide),
                watch_or_high_recall: ratio(wide_hits, churned),
            }
        })
        .collect();
    Ok(RiskBacktest {
        rules_version: rules.version.clone(),
        churned: cases.iter().filter(|c| c.outcome == Outcome::Churned).count(),
        renewed: cases.iter().filter(|c| c.outcome == Outcome::Renewed).count(),
        horizons,
        cases,
    })
}

/// Every customer's score of one request, read once however many customers the answer lists.
#[derive(Default)]
pub struct Memo(tokio::sync::OnceCell<Arc<HashMap<Uuid, RiskSummary>>>);

/// Today's score of every customer under the rules in force, through the request's memo.
pub async fn today(ctx: &async_graphql::Context<'_>) -> async_graphql::Result<Arc<HashMap<Uuid, RiskSummary>>> {
    let compute = || async {
        let pool = ctx.data::<PgPool>()?;
        let rules = crate::rules::effective(ctx, None).await?;
        let caches = ctx.data_opt::<crate::portfolio_cache::PortfolioCaches>();
        let rows = portfolio(pool, caches.map(|c| &c.risk), Utc::now().date_naive(), &rules)
            .await
            .map_err(crate::schema::unavailable)?;
        Ok::<_, async_graphql::Error>(Arc::new(
            rows.iter().map(|row| (row.customer_id, row.summary)).collect(),
        ))
    };
    match ctx.data_opt::<Memo>() {
        Some(memo) => memo.0.get_or_try_init(compute).await.cloned(),
        None => compute().await,
    }
}
