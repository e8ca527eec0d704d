//! Playbooks and their runs (docs/DOMAIN.md section 17), read from their streams in the store
//! (a handful of events each), with each step's task as the task list has it: the playbooks in
//! force, a customer's runs with their progress and why they ended, and the playbooks report.

use std::collections::HashMap;

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use events::playbook::*;
use sqlx::PgPool;
use uuid::Uuid;

use crate::scalars::Date;

fn snake<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[derive(SimpleObject, Debug, Clone)]
pub struct PlaybookStepView {
    pub title: String,
    pub description: String,
    /// csm, manager or starter.
    pub owner: String,
    /// start, renewal_date, contract_start or previous_step.
    pub anchor: String,
    pub offset_days: i32,
    /// When it is due, in words: "2 days after the previous step".
    pub due_text: String,
    pub kind: String,
    pub priority: String,
    /// The note or e-mail template, with `{customer}`, `{csm}` and `{renewal_date}`.
    pub template: String,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct PlaybookView {
    pub playbook_id: Uuid,
    /// 0: as shipped; else the stream's sequence of its latest save.
    pub version: i64,
    pub name: String,
    pub description: String,
    /// manual, health_red, churn_risk_high, renewal_within, onboarding.
    pub trigger: String,
    /// The renewal window of a `renewal_within` trigger.
    pub trigger_days: Option<i32>,
    /// The trigger in words.
    pub trigger_text: String,
    pub auto_start: bool,
    pub exit_when_not_at_risk: bool,
    pub steps: Vec<PlaybookStepView>,
    pub shipped: bool,
    pub saved_at: Option<DateTime<Utc>>,
}

pub fn trigger_text(trigger: &PlaybookTrigger) -> String {
    match trigger {
        PlaybookTrigger::Manual => "Started by hand".into(),
        PlaybookTrigger::HealthRed => "Health turns red".into(),
        PlaybookTrigger::ChurnRiskHigh => "Churn risk turns high".into(),
        PlaybookTrigger::RenewalWithin { days } => format!("Renewal within {days} days"),
        PlaybookTrigger::Onboarding => "A customer is onboarded".into(),
    }
}

fn due_text(anchor: StepAnchor, offset: i32) -> String {
    let from = match anchor {
        StepAnchor::Start => "the start",
        StepAnchor::RenewalDate => "the renewal date",
        StepAnchor::ContractStart => "the contract start",
        StepAnchor::PreviousStep => "the previous step",
    };
    let days = |n: i32| {
        if n.abs() == 1 {
            "1 day".to_owned()
        } else {
            format!("{} days", n.abs())
        }
    };
    match offset {
        0 if anchor == StepAnchor::PreviousStep => "when the previous step is done".into(),
        0 => format!("on {from}"),
        n if n > 0 => format!("{} after {from}", days(n)),
        n => format!("{} before {from}", days(n)),
    }
}

fn step_view(step: &PlaybookStep) -> PlaybookStepView {
    PlaybookStepView {
        title: step.title.clone(),
        description: step.description.clone(),
        owner: snake(&step.owner),
        anchor: snake(&step.anchor),
        offset_days: step.offset_days,
        due_text: due_text(step.anchor, step.offset_days),
        kind: snake(&step.kind),
        priority: snake(&step.priority),
        template: step.template.clone(),
    }
}

/// The playbooks in force (shipped ones included), by name.
pub async fn playbooks(pool: &PgPool) -> Result<Vec<PlaybookView>, sqlx::Error> {
    let states = events::service::read_models::playbooks(pool).await?;
    let mut list: Vec<PlaybookView> = states
        .into_iter()
        .filter(|p| !p.retired)
        .map(|p| PlaybookView {
            playbook_id: p.playbook_id,
            version: p.version,
            name: p.name,
            description: p.description,
            trigger: p.trigger.name().to_owned(),
            trigger_days: match p.trigger {
                PlaybookTrigger::RenewalWithin { days } => Some(days as i32),
                _ => None,
            },
            trigger_text: trigger_text(&p.trigger),
            auto_start: p.auto_start,
            exit_when_not_at_risk: p.exit_when_not_at_risk,
            steps: p.steps.iter().map(step_view).collect(),
            shipped: p.shipped,
            saved_at: p.saved_at,
        })
        .collect();
    list.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then(a.playbook_id.cmp(&b.playbook_id))
    });
    Ok(list)
}

use events::service::read_models::playbook_runs as runs_where;

/// For each of these tasks that is a step of an open run: (step index, steps, playbook name).
pub async fn steps_of(pool: &PgPool, task_ids: &[Uuid]) -> Result<HashMap<Uuid, (usize, usize, String)>, sqlx::Error> {
    let mut found = HashMap::new();
    if task_ids.is_empty() {
        return Ok(found);
    }
    let wanted: std::collections::HashSet<&Uuid> = task_ids.iter().collect();
    // Only the runs with one of these tasks among their steps, and not ended.
    let listed = task_ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(",");
    let condition = "EXISTS (SELECT 1 FROM jsonb_array_elements(x.started->'steps') st
                              WHERE st->>'task_id' = ANY (string_to_array($2, ',')))
                     AND NOT EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = s.aggregate_type
                                       AND e.aggregate_id = s.aggregate_id AND e.event_type = 'PlaybookRunEnded')";
    for run in runs_where(pool, condition, &listed).await? {
        if run.ended.is_some() {
            continue;
        }
        let count = run.started.steps.len();
        for (index, step) in run.started.steps.iter().enumerate() {
            if wanted.contains(&step.task_id) {
                found.insert(step.task_id, (index, count, run.started.playbook_name.clone()));
            }
        }
    }
    Ok(found)
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Open,
    Completed,
    /// Ended by its exit condition: the account is no longer at risk.
    Exited,
    Cancelled,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct RunStepView {
    /// Counted from 0.
    pub index: i32,
    pub title: String,
    pub description: String,
    pub task_id: Uuid,
    pub assignee_id: String,
    pub assignee_name: Option<String>,
    pub due_date: Date,
    /// When it is due, in words, as the playbook said.
    pub due_text: String,
    /// pending, in_progress, completed, cancelled.
    pub status: String,
    pub outcome: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct RunMoveView {
    pub from_step: i32,
    pub days: i64,
    pub reason: String,
    pub moved_by: String,
    pub at: DateTime<Utc>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct PlaybookRunView {
    pub run_id: Uuid,
    pub playbook_id: Uuid,
    pub playbook_name: String,
    /// The playbook's version the run keeps (0: as shipped).
    pub playbook_version: i64,
    pub customer_id: Uuid,
    pub customer_name: String,
    /// manual, or the rule that started it.
    pub trigger: String,
    pub why: String,
    pub started_by: String,
    pub started_by_name: Option<String>,
    pub started_at: DateTime<Utc>,
    pub status: RunStatus,
    /// Why it ended, in a sentence.
    pub ended_why: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
    pub steps: Vec<RunStepView>,
    pub steps_done: i32,
    pub step_count: i32,
    pub moves: Vec<RunMoveView>,
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    task_id: Uuid,
    due_date: NaiveDate,
    status: String,
    outcome: Option<String>,
    closed_at: Option<DateTime<Utc>>,
    assignee_name: Option<String>,
}

async fn views(pool: &PgPool, runs: Vec<RunState>) -> Result<Vec<PlaybookRunView>, sqlx::Error> {
    let task_ids: Vec<Uuid> = runs
        .iter()
        .flat_map(|r| r.started.steps.iter().map(|s| s.task_id))
        .collect();
    let tasks: HashMap<Uuid, TaskRow> = sqlx::query_as::<_, TaskRow>(&format!(
        "SELECT task_id, due_date, status, outcome, closed_at, {} AS assignee_name FROM tasks WHERE task_id = ANY($1)",
        crate::settings::name_of("tasks.assignee_id")
    ))
    .bind(&task_ids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|t| (t.task_id, t))
    .collect();
    let customer_ids: Vec<Uuid> = runs.iter().map(|r| r.started.customer_id).collect();
    let names: HashMap<Uuid, String> = sqlx::query_as::<_, (Uuid, String)>(
        "SELECT customer_id, name FROM customer_profiles WHERE customer_id = ANY($1)",
    )
    .bind(&customer_ids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let starters: Vec<String> = runs.iter().map(|r| r.started.started_by.clone()).collect();
    let people: HashMap<String, String> = sqlx::query_as::<_, (String, Option<String>)>(&format!(
        "SELECT u, {} FROM unnest($1::text[]) AS u",
        crate::settings::name_of("u")
    ))
    .bind(&starters)
    .fetch_all(pool)
    .await?
    .into_iter()
    .filter_map(|(u, name)| Some((u, name?)))
    .collect();
    Ok(runs
        .into_iter()
        .map(|run| {
            let steps: Vec<RunStepView> = run
                .started
                .steps
                .iter()
                .enumerate()
                .map(|(index, step)| {
                    let task = tasks.get(&step.task_id);
                    RunStepView {
                        index: index as i32,
                        title: step.title.clone(),
                        description: step.description.clone(),
                        task_id: step.task_id,
                        assignee_id: step.assignee_id.clone(),
                        assignee_name: task.and_then(|t| t.assignee_name.clone()),
                        due_date: Date(task.map(|t| t.due_date).unwrap_or(run.due_dates[index])),
                        due_text: due_text(step.anchor, step.offset_days),
                        status: task.map(|t| t.status.clone()).unwrap_or_else(|| "pending".into()),
                        outcome: task.and_then(|t| t.outcome.clone()),
                        closed_at: task.and_then(|t| t.closed_at),
                    }
                })
                .collect();
            let done = steps
                .iter()
                .filter(|s| matches!(s.status.as_str(), "completed" | "cancelled"))
                .count();
            PlaybookRunView {
                run_id: run.started.run_id,
                playbook_id: run.started.playbook_id,
                playbook_name: run.started.playbook_name.clone(),
                playbook_version: run.started.playbook_version,
                customer_id: run.started.customer_id,
                customer_name: names.get(&run.started.customer_id).cloned().unwrap_or_default(),
                trigger: run.started.trigger.clone(),
                why: run.started.why.clone(),
                started_by_name: if run.started.started_by == "system" {
                    Some("cstrack (a rule)".into())
                } else {
                    people.get(&run.started.started_by).cloned()
                },
                started_by: run.started.started_by.clone(),
                started_at: run.started.occurred_at,
                status: match run.ended.as_ref().map(|e| e.outcome) {
                    None => RunStatus::Open,
                    Some(RunOutcome::Completed) => RunStatus::Completed,
                    Some(RunOutcome::Exited) => RunStatus::Exited,
                    Some(RunOutcome::Cancelled) => RunStatus::Cancelled,
                },
                ended_why: run.ended.as_ref().map(|e| e.why.clone()),
                ended_at: run.ended.as_ref().map(|e| e.occurred_at),
                ended_by: run.ended.as_ref().map(|e| e.ended_by.clone()),
                step_count: steps.len() as i32,
                steps_done: done as i32,
                steps,
                moves: run
                    .moves
                    .iter()
                    .map(|m| RunMoveView {
                        from_step: m.from_step as i32,
                        days: m.days,
                        reason: m.reason.clone(),
                        moved_by: m.moved_by.clone(),
                        at: m.occurred_at,
                    })
                    .collect(),
            }
        })
        .collect())
}

/// Runs, open first, then the latest started first; of a customer, or of every customer.
pub async fn runs(
    pool: &PgPool,
    customer_id: Option<Uuid>,
    status: Option<RunStatus>,
) -> Result<Vec<PlaybookRunView>, sqlx::Error> {
    let runs = match customer_id {
        Some(id) => runs_where(pool, "x.started->>'customer_id' = $2", &id.to_string()).await?,
        None => runs_where(pool, "true", "").await?,
    };
    let mut list: Vec<PlaybookRunView> = views(pool, runs)
        .await?
        .into_iter()
        .filter(|r| status.is_none_or(|s| s == r.status))
        .collect();
    list.sort_by(|a, b| {
        (b.status == RunStatus::Open)
            .cmp(&(a.status == RunStatus::Open))
            .then(b.started_at.cmp(&a.started_at))
            .then(a.run_id.cmp(&b.run_id))
    });
    Ok(list)
}

/// A page of runs and how many there are.
#[derive(SimpleObject, Debug, Clone)]
pub struct PlaybookRunPage {
    pub items: Vec<PlaybookRunView>,
    pub total_count: i64,
}

/// One playbook's runs, as the report counts them.
#[derive(SimpleObject, Debug, Clone)]
pub struct PlaybookReportRow {
    pub playbook_id: Uuid,
    pub playbook_name: String,
    pub runs: i64,
    pub open: i64,
    pub completed: i64,
    pub exited: i64,
    pub cancelled: i64,
    /// completed / ended runs, three decimals; none while no run ended.
    pub completion_rate: Option<f64>,
    /// The median of the completed runs' days from start to end.
    pub median_days_to_complete: Option<f64>,
    /// Runs whose account was at risk when it started (its latest health score below 70).
    pub at_risk_at_start: i64,
    /// Of those, the runs whose account had a score of 70 or more within 60 days of the start.
    pub left_risk_within_60_days: i64,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct PlaybooksReport {
    pub from: Date,
    pub to: Date,
    pub rows: Vec<PlaybookReportRow>,
    pub total: PlaybookReportRow,
}

/// Days a run has to take its account out of risk.
pub const LEFT_RISK_DAYS: i64 = 60;

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    let value = if values.len() % 2 == 0 {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    };
    Some((value * 10.0).round() / 10.0)
}

/// The runs started from `from` to `to` (UTC days), by playbook, with the total.
pub async fn report(pool: &PgPool, from: NaiveDate, to: NaiveDate) -> Result<PlaybooksReport, sqlx::Error> {
    let runs: Vec<PlaybookRunView> = runs(pool, None, None)
        .await?
        .into_iter()
        .filter(|r| (from..=to).contains(&r.started_at.date_naive()))
        .collect();
    let customer_ids: Vec<Uuid> = runs.iter().map(|r| r.customer_id).collect();
    let points: Vec<(Uuid, DateTime<Utc>, f64)> = sqlx::query_as(
        "SELECT customer_id, measured_at, score FROM health_points WHERE customer_id = ANY($1) ORDER BY measured_at, sequence",
    )
    .bind(&customer_ids)
    .fetch_all(pool)
    .await?;
    let mut by_customer: HashMap<Uuid, Vec<(DateTime<Utc>, f64)>> = HashMap::new();
    for (customer, at, score) in points {
        by_customer.entry(customer).or_default().push((at, score));
    }
    let mut rows: Vec<PlaybookReportRow> = Vec::new();
    let mut durations: HashMap<Uuid, Vec<f64>> = HashMap::new();
    let mut all_durations = Vec::new();
    let blank = |id: Uuid, name: &str| PlaybookReportRow {
        playbook_id: id,
        playbook_name: name.to_owned(),
        runs: 0,
        open: 0,
        completed: 0,
        exited: 0,
        cancelled: 0,
        completion_rate: None,
        median_days_to_complete: None,
        at_risk_at_start: 0,
        left_risk_within_60_days: 0,
    };
    let mut total = blank(Uuid::nil(), "All playbooks");
    for run in &runs {
        let index = match rows.iter().position(|r| r.playbook_id == run.playbook_id) {
            Some(index) => index,
            None => {
                rows.push(blank(run.playbook_id, &run.playbook_name));
                rows.len() - 1
            }
        };
        let scores = by_customer.get(&run.customer_id).map(Vec::as_slice).unwrap_or(&[]);
        let at_start = scores
            .iter()
            .rev()
            .find(|(at, _)| *at <= run.started_at)
            .map(|(_, s)| *s);
        let at_risk = at_start.is_some_and(|s| s < 70.0);
        let left = at_risk
            && scores.iter().any(|(at, score)| {
                *at > run.started_at && *at <= run.started_at + Duration::days(LEFT_RISK_DAYS) && *score >= 70.0
            });
        for row in [&mut rows[index], &mut total] {
            row.runs += 1;
            match run.status {
                RunStatus::Open => row.open += 1,
                RunStatus::Completed => row.completed += 1,
                RunStatus::Exited => row.exited += 1,
                RunStatus::Cancelled => row.cancelled += 1,
            }
            row.at_risk_at_start += i64::from(at_risk);
            row.left_risk_within_60_days += i64::from(left);
        }
        if let (RunStatus::Completed, Some(ended)) = (run.status, run.ended_at) {
            let days = (ended - run.started_at).num_seconds() as f64 / 86_400.0;
            durations.entry(run.playbook_id).or_default().push(days);
            all_durations.push(days);
        }
    }
    let finish = |row: &mut PlaybookReportRow, durations: Vec<f64>| {
        let ended = row.completed + row.exited + row.cancelled;
        row.completion_rate = (ended > 0).then(|| ((row.completed as f64 / ended as f64) * 1000.0).round() / 1000.0);
        row.median_days_to_complete = median(durations);
    };
    for row in &mut rows {
        let days = durations.remove(&row.playbook_id).unwrap_or_default();
        finish(row, days);
    }
    finish(&mut total, all_durations);
    rows.sort_by(|a, b| b.runs.cmp(&a.runs).then(a.playbook_name.cmp(&b.playbook_name)));
    Ok(PlaybooksReport {
        from: Date(from),
        to: Date(to),
        rows,
        total,
    })
}
