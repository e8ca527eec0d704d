//! The reminder scheduler (docs/DOMAIN.md section 13). Each tick, under an advisory lock so one
//! scheduler acts at a time, it fires what came due: one-time and recurring occurrences (from
//! the read model's next due instant, catching up every missed one in order), relative ones
//! (from the customer's date as it is now), and the reminder rules' conditions (every
//! `rules_every`); and it wakes snoozed occurrences whose time came or whose condition happened.
//!
//! Every firing is a command on the reminder's stream, whose state knows each occurrence: an
//! occurrence that fired already is refused, so a tick repeated after a crash, a second
//! scheduler, or a read model that has not caught up yet fires nothing twice; one that did not
//! fire before a crash is still due at the next tick, so nothing is lost.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use events::metadata::{CommandMetadata, Source};
use events::reminder::*;
use futures_util::StreamExt;
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::domain::reminder::{FireReminder, ReminderCommand, WakeReminder};
use crate::domain::CommandError;
use crate::http::Handlers;
use crate::store::ExecuteError;

/// Advisory lock of the active scheduler ("cstrack" + 3).
const SCHEDULER_LOCK: i64 = 0x6373_7472_6163_6b03;
/// Most occurrences one recurring reminder catches up in a tick.
const CATCH_UP: u16 = 100;
/// Commands in flight at once.
const PARALLEL: usize = 8;

#[derive(clap::Args, Debug, Clone, Copy)]
pub struct SchedulerSettings {
    /// Run the reminder scheduler in this process.
    #[arg(long = "reminders", env = "CSTRACK_REMINDERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub enabled: bool,
    /// Seconds between two looks for due reminders and ended snoozes.
    #[arg(long, env = "CSTRACK_REMINDER_POLL_SECONDS", default_value_t = 1.0)]
    pub reminder_poll_seconds: f64,
    /// Seconds between two evaluations of the reminder rules over the book.
    #[arg(long, env = "CSTRACK_REMINDER_RULES_SECONDS", default_value_t = 60.0)]
    pub reminder_rules_seconds: f64,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            enabled: true,
            reminder_poll_seconds: 1.0,
            reminder_rules_seconds: 60.0,
        }
    }
}

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Occurrences fired (or recorded as held back by a snooze).
    pub fired: usize,
    /// Occurrences found due that had fired already (a repeated tick).
    pub already: usize,
    pub woke: usize,
    /// Tasks of recurring tasks' periods made (docs/DOMAIN.md section 15).
    pub tasks: usize,
    /// Playbook runs started by their rules, and ended (docs/DOMAIN.md section 17).
    pub runs_started: usize,
    pub runs_ended: usize,
}

/// One firing to issue.
struct Due {
    stream: Uuid,
    fired: ReminderFired,
}

fn key_of(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Fires and wakes everything due at `now`; rule conditions too when `rules` is set. At most
/// `limit` commands (a test stops a tick part-way with it, as a crash would). `None` when
/// another scheduler holds the lock.
pub async fn tick(handlers: &Handlers, now: DateTime<Utc>, rules: bool, limit: usize) -> anyhow::Result<Option<Tick>> {
    let pool = &handlers.pool;
    let mut lock = pool.begin().await?;
    if !sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_xact_lock($1)")
        .bind(SCHEDULER_LOCK)
        .fetch_one(&mut *lock)
        .await?
    {
        return Ok(None);
    }
    let mut due = scheduled(pool, now).await?;
    due.extend(relative(pool, now).await?);
    if rules {
        due.extend(rule_firings(pool, now).await?);
    }
    due.truncate(limit);
    let mut tick = Tick::default();
    let outcomes: Vec<Result<(), ExecuteError>> = futures_util::stream::iter(due)
        .map(|due| async move {
            handlers
                .reminders
                .execute(
                    &due.stream.to_string(),
                    ReminderCommand::Fire(FireReminder(due.fired)),
                    &CommandMetadata::system(Source::System),
                    None,
                )
                .await
                .map(drop)
        })
        .buffered(PARALLEL)
        .collect()
        .await;
    for outcome in outcomes {
        match outcome {
            Ok(()) => tick.fired += 1,
            Err(ExecuteError::Rejected(CommandError::Conflict {
                code: "already_fired", ..
            })) => tick.already += 1,
            Err(ExecuteError::Rejected(CommandError::Conflict { code: "cancelled", .. })) => {}
            Err(error) => return Err(anyhow::anyhow!("firing a reminder failed: {error}")),
        }
    }
    for (stream, woke) in wakes(pool, now).await? {
        match handlers
            .reminders
            .execute(
                &stream.to_string(),
                ReminderCommand::Wake(WakeReminder(woke)),
                &CommandMetadata::system(Source::System),
                None,
            )
            .await
        {
            Ok(_) => tick.woke += 1,
            Err(ExecuteError::Rejected(CommandError::Conflict {
                code: "not_snoozed", ..
            })) => {}
            Err(error) => return Err(anyhow::anyhow!("waking a reminder failed: {error}")),
        }
    }
    if rules {
        tick.tasks = recurring_tasks(handlers, now).await?;
        let (started, ended) = crate::playbooks::pass(handlers, now).await?;
        tick.runs_started = started;
        tick.runs_ended = ended;
    }
    lock.commit().await?;
    Ok(Some(tick))
}

/// Makes each active recurring task's task of the period that has started, and of the next
/// period once that one is closed; a period's task has one id (`period_task_id`), so it is made
/// once however often this runs. Returns the tasks made.
async fn recurring_tasks(handlers: &Handlers, now: DateTime<Utc>) -> anyhow::Result<usize> {
    use events::task_template::{period_task_id, periods, TaskRecurrenceEvent, TaskRecurrenceStarted};
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "SELECT aggregate_id, payload FROM events WHERE aggregate_type = $1 ORDER BY aggregate_id, sequence",
    )
    .bind(TaskRecurrenceEvent::STREAM_TYPE)
    .fetch_all(&handlers.pool)
    .await?;
    let mut active: std::collections::BTreeMap<String, Option<TaskRecurrenceStarted>> = Default::default();
    for (id, payload) in rows {
        match serde_json::from_value::<TaskRecurrenceEvent>(payload) {
            Ok(TaskRecurrenceEvent::TaskRecurrenceStarted(started)) => {
                active.insert(id, Some(started));
            }
            Ok(TaskRecurrenceEvent::TaskRecurrenceStopped(_)) => {
                active.insert(id, None);
            }
            Err(error) => tracing::warn!(%error, recurrence = id, "an unreadable recurrence event was skipped"),
        }
    }
    let today = now.date_naive();
    let mut made = 0;
    for recurrence in active.into_values().flatten() {
        let Ok((Some(current), next)) = periods(&recurrence.rrule, recurrence.starts, today) else {
            continue;
        };
        let mut wanted = vec![current];
        let status: Option<String> = sqlx::query_scalar("SELECT status FROM tasks WHERE task_id = $1")
            .bind(period_task_id(recurrence.recurrence_id, current))
            .fetch_optional(&handlers.pool)
            .await?;
        if let (Some("completed" | "cancelled"), Some(next)) = (status.as_deref(), next) {
            wanted.push(next);
        }
        for period in wanted {
            let task_id = period_task_id(recurrence.recurrence_id, period);
            let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tasks WHERE task_id = $1)")
                .bind(task_id)
                .fetch_one(&handlers.pool)
                .await?;
            if exists {
                continue;
            }
            let command = crate::domain::customer::CustomerCommand::CreateTask(crate::domain::customer::CreateTask {
                task_id: Some(task_id),
                title: recurrence.title.clone(),
                description: recurrence.description.clone(),
                kind: recurrence.kind,
                priority: recurrence.priority,
                assignee_id: recurrence.assignee_id.clone(),
                due_date: period + chrono::Duration::days(i64::from(recurrence.due_offset_days)),
                parent_task_id: None,
                depends_on: Vec::new(),
            });
            match handlers
                .customers
                .execute(
                    &recurrence.customer_id.to_string(),
                    command,
                    &CommandMetadata::system(Source::System),
                    None,
                )
                .await
            {
                Ok(_) => made += 1,
                Err(ExecuteError::Rejected(CommandError::Conflict {
                    code: "task_exists", ..
                })) => {}
                Err(ExecuteError::Rejected(rejection)) => {
                    tracing::warn!(%rejection, recurrence = %recurrence.recurrence_id, "a recurring task's task was refused");
                }
                Err(error) => return Err(anyhow::anyhow!("making a recurring task's task failed: {error}")),
            }
        }
    }
    Ok(made)
}

/// A reminder row's fields a firing names.
#[derive(sqlx::FromRow)]
struct Scheduled {
    reminder_id: Uuid,
    owner_id: Option<String>,
    customer_id: Option<Uuid>,
    title: String,
    schedule: Value,
    time_zone: String,
    next_due_at: Option<DateTime<Utc>>,
    anchor: Option<NaiveDate>,
    customer: Option<String>,
}

fn fired(row: &Scheduled, trigger: Trigger, key: String, due_at: DateTime<Utc>, why: String) -> Due {
    Due {
        stream: row.reminder_id,
        fired: ReminderFired {
            reminder_id: row.reminder_id,
            occurrence_key: key,
            trigger,
            rule: None,
            customer_id: row.customer_id,
            owner_id: row.owner_id.clone(),
            csm_id: None,
            title: row.title.clone(),
            due_at,
            why,
            facts: Vec::new(),
            occurred_at: due_at,
        },
    }
}

fn local(at: DateTime<Utc>, zone: &str) -> String {
    match time_zone(zone) {
        Ok(tz) => format!("{} ({zone})", at.with_timezone(&tz).format("%a %-d %b %Y %H:%M")),
        Err(_) => at.format("%a %-d %b %Y %H:%M UTC").to_string(),
    }
}

/// One-time and recurring occurrences due by `now`, each recurring reminder's missed ones too.
async fn scheduled(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<Vec<Due>> {
    let rows: Vec<Scheduled> = sqlx::query_as(
        "SELECT r.reminder_id, r.owner_id, r.customer_id, r.title, r.schedule, r.time_zone, r.next_due_at,
                NULL::date AS anchor, p.name AS customer
           FROM reminders r LEFT JOIN customer_profiles p ON p.customer_id = r.customer_id
          WHERE r.status = 'active' AND r.next_due_at <= $1
          ORDER BY r.next_due_at LIMIT 5000",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut due = Vec::new();
    for row in rows {
        let Some(first) = row.next_due_at else { continue };
        let Ok(schedule) = serde_json::from_value::<Schedule>(row.schedule.clone()) else {
            continue;
        };
        match schedule {
            Schedule::Once { .. } => {
                let why = format!("You asked to be reminded on {}.", local(first, &row.time_zone));
                due.push(fired(&row, Trigger::Once, "once".into(), first, why));
            }
            Schedule::Recurring { rrule, starts } => {
                let mut instants = vec![first];
                instants
                    .extend(recurrences(&rrule, starts, &row.time_zone, first, now, CATCH_UP - 1).unwrap_or_default());
                for at in instants {
                    let why = format!("Recurring reminder ({rrule}) due {}.", local(at, &row.time_zone));
                    due.push(fired(&row, Trigger::Recurring, key_of(at), at, why));
                }
            }
            Schedule::Relative { .. } => {}
        }
    }
    Ok(due)
}

/// Relative reminders whose instant, counted from the customer's date as it is now, has come.
async fn relative(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<Vec<Due>> {
    let rows: Vec<Scheduled> = sqlx::query_as(
        "SELECT r.reminder_id, r.owner_id, r.customer_id, r.title, r.schedule, r.time_zone, r.next_due_at,
                d.anchor, p.name AS customer
           FROM reminders r
           JOIN customer_profiles p ON p.customer_id = r.customer_id
           CROSS JOIN LATERAL (SELECT CASE r.schedule->'anchor'->>'date'
                    WHEN 'renewal_date' THEN p.renewal_date
                    WHEN 'contract_start' THEN p.contract_start
                    ELSE CASE WHEN p.custom_fields->>(r.schedule->'anchor'->>'key') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
                              THEN (p.custom_fields->>(r.schedule->'anchor'->>'key'))::date END
                  END AS anchor) d
          WHERE r.kind = 'relative' AND r.status = 'active' AND d.anchor IS NOT NULL
            AND d.anchor + (r.schedule->>'offset_days')::int <= ($1::timestamptz AT TIME ZONE 'UTC')::date + 1
            AND NOT EXISTS (SELECT 1 FROM reminder_occurrences o
                             WHERE o.reminder_id = r.reminder_id AND o.occurrence_key = 'relative:' || d.anchor)",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut due = Vec::new();
    for row in rows {
        let (
            Some(anchor),
            Ok(Schedule::Relative {
                anchor: which,
                offset_days,
                at,
            }),
        ) = (row.anchor, serde_json::from_value::<Schedule>(row.schedule.clone()))
        else {
            continue;
        };
        let zone = time_zone(&row.time_zone).unwrap_or(chrono_tz::UTC);
        let instant = relative_instant(anchor, offset_days, at, zone);
        if instant > now {
            continue;
        }
        let days = match offset_days {
            0 => "on".to_owned(),
            n if n < 0 => format!("{} days before", -n),
            n => format!("{n} days after"),
        };
        let why = format!(
            "{days} {} of {} ({anchor}).",
            which.describe(),
            row.customer.as_deref().unwrap_or("the customer")
        );
        let mut why = why;
        why[..1].make_ascii_uppercase();
        due.push(fired(
            &row,
            Trigger::Relative,
            format!("relative:{anchor}"),
            instant,
            why,
        ));
    }
    Ok(due)
}

/// A customer a rule looks at: id, name, CSM.
type Account = (Uuid, String, Uuid);

/// Every enabled rule's conditions that hold at `now` and have not fired for their episode.
async fn rule_firings(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<Vec<Due>> {
    let rules = events::service::read_models::current_rules(pool).await?;
    let enabled: Vec<&ReminderRule> = rules.reminders.iter().filter(|rule| rule.enabled).collect();
    if enabled.is_empty() {
        return Ok(Vec::new());
    }
    let today = now.date_naive();
    let fired: HashSet<(Uuid, String)> = sqlx::query_as::<_, (Uuid, String)>(
        "SELECT reminder_id, occurrence_key FROM reminder_occurrences WHERE trigger = 'rule'",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();
    let mut due = Vec::new();
    for rule in enabled {
        let found = match &rule.condition {
            RuleCondition::NoContact { days } => no_contact(pool, today, *days).await?,
            RuleCondition::HealthBelow { score } => health_below(pool, today, *score).await?,
            RuleCondition::EngagementAtRisk => engagement_at_risk(pool, today, &rules).await?,
            RuleCondition::TaskOverdue { days } => task_overdue(pool, today, *days).await?,
        };
        for ((customer_id, _, csm_id), episode, due_at, why, facts) in found {
            let stream = rule_stream_id(&rule.id, customer_id);
            let key = format!("{}:{episode}", rule.id);
            if fired.contains(&(stream, key.clone())) {
                continue;
            }
            due.push(Due {
                stream,
                fired: ReminderFired {
                    reminder_id: stream,
                    occurrence_key: key,
                    trigger: Trigger::Rule,
                    rule: Some(RuleRef {
                        rule_id: rule.id.clone(),
                        rules_version: rules.version.clone(),
                        condition: rule.condition.clone(),
                    }),
                    customer_id: Some(customer_id),
                    owner_id: None,
                    csm_id: Some(csm_id),
                    title: rule.title.clone(),
                    due_at,
                    why,
                    facts,
                    occurred_at: now,
                },
            });
        }
    }
    Ok(due)
}

/// A condition that holds: the account, the episode it belongs to, since when, why, the facts.
type Found = (Account, String, DateTime<Utc>, String, Vec<Fact>);

async fn no_contact(pool: &PgPool, today: NaiveDate, days: u32) -> anyhow::Result<Vec<Found>> {
    type Row = (
        Uuid,
        String,
        Uuid,
        DateTime<Utc>,
        Option<Uuid>,
        Option<String>,
        Option<String>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.customer_id, p.name, p.csm_id, p.onboarded_at, a.activity_id, a.kind, a.subject, a.occurred_at
           FROM customer_profiles p
           LEFT JOIN LATERAL (SELECT activity_id, kind, subject, occurred_at FROM customer_activities a
                               WHERE a.customer_id = p.customer_id AND NOT a.retracted AND a.kind <> 'note'
                                 AND a.occurred_on <= $1
                               ORDER BY occurred_at DESC, activity_id DESC LIMIT 1) a ON true
          WHERE (p.churned_on IS NULL OR p.churned_on > $1)
            AND coalesce(a.occurred_at, p.onboarded_at)::date <= $1 - $2::int",
    )
    .bind(today)
    .bind(days as i32)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(customer_id, name, csm_id, onboarded_at, activity, kind, subject, at)| {
            let since = at.unwrap_or(onboarded_at);
            let silent = (today - since.date_naive()).num_days();
            let (episode, why, facts) = match (activity, kind, subject, at) {
                (Some(activity_id), Some(kind), Some(subject), Some(at)) => (
                    format!("{activity_id}"),
                    format!(
                        "No contact with {name} for {silent} days (the rule says {days}): the last was \"{subject}\" ({}) on {}.",
                        kind.replace('_', " "),
                        at.date_naive()
                    ),
                    vec![Fact {
                        label: format!("last contact: \"{subject}\" ({}) on {}", kind.replace('_', " "), at.date_naive()),
                        kind: "activity".into(),
                        id: Some(activity_id),
                        stream_id: Some(customer_id.to_string()),
                        sequence: None,
                        at: Some(at),
                    }],
                ),
                _ => (
                    "never".into(),
                    format!("No contact with {name} since onboarding {silent} days ago (the rule says {days})."),
                    vec![Fact {
                        label: format!("onboarded on {}, no contact since", onboarded_at.date_naive()),
                        kind: "customer".into(),
                        id: Some(customer_id),
                        stream_id: Some(customer_id.to_string()),
                        sequence: None,
                        at: Some(onboarded_at),
                    }],
                ),
            };
            (
                (customer_id, name, csm_id),
                episode,
                since + chrono::Duration::days(i64::from(days)),
                why,
                facts,
            )
        })
        .collect())
}

async fn health_below(pool: &PgPool, today: NaiveDate, below: f64) -> anyhow::Result<Vec<Found>> {
    // The episode: the first point below the threshold after the last one at or above it.
    type Row = (Uuid, String, Uuid, f64, DateTime<Utc>, Uuid, i64, f64, DateTime<Utc>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.customer_id, p.name, p.csm_id, latest.score, latest.measured_at, start.event_id, start.sequence,
                start.score, start.measured_at
           FROM customer_profiles p
           JOIN LATERAL (SELECT score, measured_at FROM health_points h WHERE h.customer_id = p.customer_id
                          ORDER BY measured_at DESC, sequence DESC LIMIT 1) latest ON latest.score < $2
           JOIN LATERAL (SELECT h.event_id, h.sequence, h.score, h.measured_at FROM health_points h
                          WHERE h.customer_id = p.customer_id AND h.score < $2
                            AND h.measured_at > coalesce((SELECT max(o.measured_at) FROM health_points o
                                                           WHERE o.customer_id = p.customer_id AND o.score >= $2),
                                                         '-infinity')
                          ORDER BY h.measured_at, h.sequence LIMIT 1) start ON true
          WHERE (p.churned_on IS NULL OR p.churned_on > $1)",
    )
    .bind(today)
    .bind(below)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(customer_id, name, csm_id, score, at, event_id, sequence, first, since)| {
                let why = format!(
                    "{name}'s health is {score} (below {below}), since it fell to {first} on {}.",
                    since.date_naive()
                );
                let mut facts = vec![Fact {
                    label: format!("health fell to {first} on {}", since.date_naive()),
                    kind: "health".into(),
                    id: Some(event_id),
                    stream_id: Some(customer_id.to_string()),
                    sequence: Some(sequence),
                    at: Some(since),
                }];
                if at != since {
                    facts.push(Fact {
                        label: format!("latest health {score} on {}", at.date_naive()),
                        kind: "health".into(),
                        id: None,
                        stream_id: Some(customer_id.to_string()),
                        sequence: None,
                        at: Some(at),
                    });
                }
                ((customer_id, name, csm_id), event_id.to_string(), since, why, facts)
            },
        )
        .collect())
}

async fn engagement_at_risk(
    pool: &PgPool,
    today: NaiveDate,
    rules: &events::rules::Rules,
) -> anyhow::Result<Vec<Found>> {
    use events::engagement::{self, Period};
    use events::service::read_models::{engagement_summaries, Window};
    let period = Period::rolling(engagement::DEFAULT_WINDOW_DAYS, today);
    let window = Window {
        start: period.start,
        cut: period.cut(today),
    };
    let accounts: Vec<(Uuid, Uuid, bool)> = sqlx::query_as(
        "SELECT p.customer_id, p.csm_id, p.onboarded_at::date > $2 FROM customer_profiles p
          WHERE p.churned_on IS NULL OR p.churned_on > $1",
    )
    .bind(today)
    .bind(period.start)
    .fetch_all(pool)
    .await?;
    let accounts: std::collections::HashMap<Uuid, (Uuid, bool)> =
        accounts.into_iter().map(|(id, csm, new)| (id, (csm, new))).collect();
    let month = today.format("%Y-%m").to_string();
    let mut found = Vec::new();
    for facts in engagement_summaries(pool, None, &[window]).await? {
        let Some((csm_id, false)) = accounts.get(&facts.customer_id).copied() else {
            continue;
        };
        let Some(metrics) = facts.metrics.first() else { continue };
        let score = engagement::score(&engagement::components(metrics), &rules.weights);
        if score >= 40.0 {
            continue;
        }
        let why = format!(
            "{}'s engagement is {score:.1} over the last {} days ({} to {}), below 40.",
            facts.name,
            engagement::DEFAULT_WINDOW_DAYS,
            period.start,
            period.end
        );
        found.push((
            (facts.customer_id, facts.name.clone(), csm_id),
            month.clone(),
            today.and_time(NaiveTime::MIN).and_utc(),
            why,
            vec![Fact {
                label: format!("engagement {score:.1} from {} to {}", period.start, period.end),
                kind: "engagement".into(),
                id: None,
                stream_id: Some(facts.customer_id.to_string()),
                sequence: None,
                at: None,
            }],
        ));
    }
    Ok(found)
}

async fn task_overdue(pool: &PgPool, today: NaiveDate, days: u32) -> anyhow::Result<Vec<Found>> {
    type Row = (Uuid, String, Uuid, Uuid, String, NaiveDate, String);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.customer_id, p.name, p.csm_id, t.task_id, t.title, t.due_date,
                coalesce((SELECT d.name FROM csm_directory d WHERE d.csm_id::text = t.assignee_id),
                         (SELECT d.name FROM notification_preferences np JOIN csm_directory d ON d.csm_id = np.csm_id
                           WHERE np.user_id = t.assignee_id),
                         (SELECT u.name FROM partner_users u WHERE u.user_id = t.assignee_id LIMIT 1),
                         t.assignee_id)
           FROM tasks t JOIN customer_profiles p ON p.customer_id = t.customer_id
          WHERE t.status IN ('pending', 'in_progress') AND t.due_date <= $1 - $2::int
            AND (p.churned_on IS NULL OR p.churned_on > $1)",
    )
    .bind(today)
    .bind(days as i32)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(customer_id, name, csm_id, task_id, title, due, assignee)| {
            let late = (today - due).num_days();
            // The assignee by name: a CSM's id, or a user who said which CSM they are.
            let why = format!("{name}: task \"{title}\" (assigned to {assignee}) was due on {due}, {late} days ago.");
            (
                (customer_id, name, csm_id),
                format!("{task_id}:{due}"),
                (due + chrono::Duration::days(i64::from(days)))
                    .and_time(NaiveTime::MIN)
                    .and_utc(),
                why,
                vec![Fact {
                    label: format!("task \"{title}\" due {due}"),
                    kind: "task".into(),
                    id: Some(task_id),
                    stream_id: Some(customer_id.to_string()),
                    sequence: None,
                    at: None,
                }],
            )
        })
        .collect())
}

/// Snoozed occurrences whose snooze ended at `now`: the time came, the customer replied, the
/// health score fell below the one at the snooze, or the renewal came within the days asked.
async fn wakes(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<Vec<(Uuid, ReminderWoke)>> {
    type Row = (
        Uuid,
        String,
        String,
        Option<String>,
        Option<Uuid>,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT o.reminder_id, o.occurrence_key, 'time', NULL::text, NULL::uuid, NULL::text, o.snoozed_until, NULL::bigint
           FROM reminder_occurrences o WHERE o.state = 'snoozed' AND o.snoozed_until <= $1
         UNION ALL
         SELECT o.reminder_id, o.occurrence_key, 'customer_replies', a.subject || ' (' || replace(a.kind, '_', ' ') || ')',
                a.activity_id, o.customer_id::text, a.occurred_at, NULL
           FROM reminder_occurrences o
           JOIN LATERAL (SELECT activity_id, subject, kind, occurred_at FROM customer_activities a
                          WHERE a.customer_id = o.customer_id AND a.direction = 'inbound' AND NOT a.retracted
                            AND a.occurred_at > o.snoozed_at
                          ORDER BY a.occurred_at LIMIT 1) a ON true
          WHERE o.state = 'snoozed' AND o.snooze_condition->>'kind' = 'customer_replies'
         UNION ALL
         SELECT o.reminder_id, o.occurrence_key, 'score_drops', h.score::text || ' below ' || (o.snooze_condition->>'below'),
                h.event_id, o.customer_id::text, h.measured_at, h.sequence
           FROM reminder_occurrences o
           JOIN LATERAL (SELECT event_id, score, measured_at, sequence FROM health_points h
                          WHERE h.customer_id = o.customer_id AND h.recorded_at > o.snoozed_at
                          ORDER BY h.measured_at DESC, h.sequence DESC LIMIT 1) h
             ON h.score < (o.snooze_condition->>'below')::float8
          WHERE o.state = 'snoozed' AND o.snooze_condition->>'kind' = 'score_drops'
         UNION ALL
         SELECT o.reminder_id, o.occurrence_key, 'renewal_within', p.renewal_date::text, p.customer_id, p.customer_id::text,
                NULL, NULL
           FROM reminder_occurrences o JOIN customer_profiles p ON p.customer_id = o.customer_id
          WHERE o.state = 'snoozed' AND o.snooze_condition->>'kind' = 'renewal_within'
            AND p.renewal_date - ($1::timestamptz AT TIME ZONE 'UTC')::date <= (o.snooze_condition->>'days')::int",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut seen = HashSet::new();
    let mut woke = Vec::new();
    for (reminder_id, key, why, detail, id, stream, at, sequence) in rows {
        if !seen.insert((reminder_id, key.clone())) {
            continue;
        }
        let detail = detail.unwrap_or_default();
        let (because, fact) = match why.as_str() {
            "time" => ("The snooze ended.".to_owned(), None),
            "customer_replies" => (
                format!("The customer replied: {detail}."),
                Some(("activity", format!("reply: {detail}"))),
            ),
            "score_drops" => (
                format!("The health score dropped further: {detail}."),
                Some(("health", format!("health {detail}"))),
            ),
            _ => (
                format!("The renewal on {detail} is within the days asked."),
                Some(("renewal", format!("renewal on {detail}"))),
            ),
        };
        woke.push((
            reminder_id,
            ReminderWoke {
                occurrence_key: key,
                because,
                fact: fact.map(|(kind, label)| Fact {
                    label,
                    kind: kind.into(),
                    id,
                    stream_id: stream,
                    sequence,
                    at,
                }),
                occurred_at: now,
            },
        ));
    }
    Ok(woke)
}

/// Ticks every poll, with the rules every `rules_every`, until `stopped`.
pub async fn run(handlers: std::sync::Arc<Handlers>, settings: SchedulerSettings, mut stopped: watch::Receiver<bool>) {
    let poll = Duration::from_secs_f64(settings.reminder_poll_seconds.max(0.05));
    let rules_every = Duration::from_secs_f64(settings.reminder_rules_seconds.max(1.0));
    let mut rules_checked: Option<Instant> = None;
    while !*stopped.borrow() {
        let rules = rules_checked.is_none_or(|at| at.elapsed() >= rules_every);
        match tick(&handlers, Utc::now(), rules, usize::MAX).await {
            Ok(Some(tick)) => {
                if rules {
                    rules_checked = Some(Instant::now());
                }
                if tick.fired + tick.woke + tick.tasks > 0 {
                    tracing::info!(
                        fired = tick.fired,
                        woke = tick.woke,
                        tasks = tick.tasks,
                        "reminders and recurring tasks"
                    );
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(error = format!("{error:#}"), "the reminder scheduler failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stopped.changed() => {}
        }
    }
}
