//! The playbooks' part of the scheduler's rules pass (docs/DOMAIN.md section 17): start the runs
//! whose rule holds (once per playbook, customer and occasion, never while one is open), keep a
//! step anchored on the previous step's completion due that many days after it, and end the runs
//! whose steps are all closed, whose account is no longer at risk, or whose customer churned.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use events::metadata::{CommandMetadata, Source};
use events::playbook::*;
use uuid::Uuid;

use crate::domain::CommandError;
use crate::http::playbooks::{end_run, move_steps, playbooks, runs_where, start_run, steps_now, Start};
use crate::http::Handlers;
use crate::store::ExecuteError;

/// A score of this or more is not at risk (green, docs/DOMAIN.md section 6).
const NOT_AT_RISK: f64 = 70.0;

/// One rule's occasion on a customer.
struct Occasion {
    customer_id: Uuid,
    key: String,
    why: String,
}

/// Runs one pass at `now`; answers the runs started and ended.
pub async fn pass(handlers: &Handlers, now: DateTime<Utc>) -> anyhow::Result<(usize, usize)> {
    let pool = &handlers.pool;
    let metadata = CommandMetadata::system(Source::System).to_map();
    let existing: HashSet<String> =
        sqlx::query_scalar("SELECT aggregate_id FROM events WHERE aggregate_type = $1 AND sequence = 1")
            .bind(PlaybookRunEvent::STREAM_TYPE)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    let today = now.date_naive();
    let mut started = 0;
    for playbook in playbooks(pool).await? {
        if !playbook.auto_start || playbook.retired {
            continue;
        }
        let since = playbook.auto_start_since.unwrap_or(now);
        for occasion in occasions(pool, &playbook, since, today).await? {
            let run_id = rule_run_id(playbook.playbook_id, occasion.customer_id, &occasion.key);
            if existing.contains(&run_id.to_string()) {
                continue;
            }
            let start = Start {
                playbook_id: playbook.playbook_id,
                customer_id: occasion.customer_id,
                occasion: Some(occasion.key),
                trigger: playbook.trigger.name().to_owned(),
                why: occasion.why,
                started_by: "system".into(),
                start: today,
            };
            match start_run(handlers, None, &metadata, start).await {
                Ok(_) => started += 1,
                Err(ExecuteError::Rejected(
                    CommandError::Conflict {
                        code: "run_open" | "already_started" | "churned",
                        ..
                    }
                    | CommandError::NotFound { .. },
                )) => {}
                Err(ExecuteError::Rejected(rejection)) => {
                    tracing::warn!(%rejection, playbook = %playbook.playbook_id, customer = %occasion.customer_id, "a playbook run was refused");
                }
                Err(error) => return Err(anyhow::anyhow!("starting a playbook run failed: {error}")),
            }
        }
    }
    let mut ended = 0;
    for run in runs_where(pool, "true", "").await? {
        if run.ended.is_some() {
            continue;
        }
        match keep(handlers, &metadata, &run).await {
            Ok(true) => ended += 1,
            Ok(false) => {}
            Err(ExecuteError::Rejected(rejection)) => {
                tracing::warn!(%rejection, run = %run.started.run_id, "a playbook run's step could not be kept");
            }
            Err(error) => return Err(anyhow::anyhow!("keeping a playbook run failed: {error}")),
        }
    }
    Ok((started, ended))
}

/// The customers on which the playbook's rule holds, each with its occasion.
async fn occasions(
    pool: &sqlx::PgPool,
    playbook: &PlaybookState,
    since: DateTime<Utc>,
    today: NaiveDate,
) -> Result<Vec<Occasion>, sqlx::Error> {
    Ok(match playbook.trigger {
        PlaybookTrigger::Manual => Vec::new(),
        PlaybookTrigger::HealthRed | PlaybookTrigger::ChurnRiskHigh => {
            let kind = playbook.trigger.name();
            let rows: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
                "SELECT a.alert_id, a.customer_id, a.message FROM alerts a
                   JOIN customer_profiles p ON p.customer_id = a.customer_id AND p.churned_on IS NULL
                  WHERE a.kind = $1 AND a.raised_at >= $2
                  ORDER BY a.raised_at, a.alert_id",
            )
            .bind(kind)
            .bind(since)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(alert_id, customer_id, message)| Occasion {
                    customer_id,
                    key: alert_id.to_string(),
                    why: format!("The alert \u{201c}{message}\u{201d} started it."),
                })
                .collect()
        }
        PlaybookTrigger::RenewalWithin { days } => {
            let rows: Vec<(Uuid, NaiveDate)> = sqlx::query_as(
                "SELECT customer_id, renewal_date FROM customer_profiles
                  WHERE churned_on IS NULL AND renewal_date BETWEEN $1 AND $2
                  ORDER BY renewal_date, customer_id",
            )
            .bind(today)
            .bind(today + Duration::days(i64::from(days)))
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(customer_id, renewal)| Occasion {
                    customer_id,
                    key: format!("renewal:{renewal}"),
                    why: format!(
                        "The renewal on {renewal} is {} days away (the playbook starts {days} days before).",
                        (renewal - today).num_days()
                    ),
                })
                .collect()
        }
        PlaybookTrigger::Onboarding => {
            let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
                "SELECT customer_id, onboarded_at FROM customer_profiles
                  WHERE churned_on IS NULL AND onboarded_at >= $1 ORDER BY onboarded_at, customer_id",
            )
            .bind(since)
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(customer_id, at)| Occasion {
                    customer_id,
                    key: "onboarding".into(),
                    why: format!("Onboarded on {}.", at.date_naive()),
                })
                .collect()
        }
    })
}

fn score_text(score: f64) -> String {
    let text = format!("{score:.1}");
    text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
}

/// Ends the run when it is over (answering true), else keeps its previous-step anchors.
async fn keep(
    handlers: &Handlers,
    metadata: &std::collections::HashMap<String, String>,
    run: &RunState,
) -> Result<bool, ExecuteError> {
    let pool = &handlers.pool;
    let unavailable = |error: sqlx::Error| ExecuteError::from_database(&error);
    let customer = run.started.customer_id;
    let churned: Option<NaiveDate> =
        sqlx::query_scalar("SELECT churned_on FROM customer_profiles WHERE customer_id = $1")
            .bind(customer)
            .fetch_optional(pool)
            .await
            .map_err(unavailable)?
            .flatten();
    let end = |outcome, why: String| end_run(handlers, None, metadata, run, outcome, why, "system".into());
    if let Some(day) = churned {
        end(RunOutcome::Cancelled, format!("The customer churned on {day}.")).await?;
        return Ok(true);
    }
    if run.started.exit_when_not_at_risk {
        let latest: Option<(f64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT score, recorded_at FROM health_points WHERE customer_id = $1
              ORDER BY measured_at DESC, sequence DESC LIMIT 1",
        )
        .bind(customer)
        .fetch_optional(pool)
        .await
        .map_err(unavailable)?;
        // The latest score, recorded since the run started (a score recorded before it was
        // what the run set out to change).
        if let Some((score, recorded_at)) = latest {
            if score >= NOT_AT_RISK && recorded_at >= run.started.occurred_at {
                let why = format!(
                    "No longer at risk: health {} recorded on {} (70 or more is green).",
                    score_text(score),
                    recorded_at.date_naive()
                );
                end(RunOutcome::Exited, why).await?;
                return Ok(true);
            }
        }
    }
    let steps = steps_now(pool, run).await.map_err(unavailable)?;
    if steps.iter().all(|(_, open)| !open) {
        let last: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT max(closed_at) FROM tasks WHERE task_id = ANY($1)")
                .bind(run.started.steps.iter().map(|s| s.task_id).collect::<Vec<_>>())
                .fetch_one(pool)
                .await
                .map_err(unavailable)?;
        let count = steps.len();
        let why = match last {
            Some(at) => format!("All {count} steps are closed, the last on {}.", at.date_naive()),
            None => format!("All {count} steps are closed."),
        };
        end(RunOutcome::Completed, why).await?;
        return Ok(true);
    }
    // A step counted from the previous step's completion is due that many days after it, once.
    for index in 1..run.started.steps.len() {
        let step = &run.started.steps[index];
        if step.anchor != StepAnchor::PreviousStep || !steps[index].1 {
            continue;
        }
        let previous = &run.started.steps[index - 1];
        let done: Option<(DateTime<Utc>, String)> =
            sqlx::query_as("SELECT closed_at, title FROM tasks WHERE task_id = $1 AND status = 'completed'")
                .bind(previous.task_id)
                .fetch_optional(pool)
                .await
                .map_err(unavailable)?;
        let Some((completed_at, title)) = done else { continue };
        let moved_since = run
            .moves
            .iter()
            .any(|m| m.occurred_at >= completed_at && m.due_dates.iter().any(|(i, _)| *i == index));
        let due = completed_at.date_naive() + Duration::days(i64::from(step.offset_days));
        if moved_since || steps[index].0 == due {
            continue;
        }
        let why = format!(
            "Step {} (\u{201c}{title}\u{201d}) was completed on {}: this step is due {} days after it.",
            index,
            completed_at.date_naive(),
            step.offset_days
        );
        move_steps(handlers, None, metadata, run, index, due, why, "system".into()).await?;
        return Ok(false);
    }
    Ok(false)
}
