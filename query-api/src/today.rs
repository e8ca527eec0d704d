//! "Today" (docs/DOMAIN.md section 14): one ranked list per user of what needs them, each item
//! with the reason it is there: their reminders due, their tasks overdue or due today, their
//! accounts whose next touch is due, their accounts' new alerts (the last 7 days, not yet
//! acknowledged; overdue-task and renewal alerts are left out, the tasks and renewals being
//! items of their own), and their accounts renewing within 30 days. Ranked by the account's churn risk
//! (highest first), then its ARR (largest first), then the day it is due (earliest first).
//!
//! Whose: the user's own reminders and tasks; "their accounts" are those of the CSM their
//! notification preferences name (none until they say). Partners have no "today": FORBIDDEN.

use std::collections::HashMap;

use async_graphql::{Context, Enum, Result, SimpleObject};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use events::metadata::Role;
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::risk::RiskBand;
use crate::scalars::Date;
use crate::schema::{coded_error, unavailable};

/// Days ahead a renewal is in "today".
pub const RENEWAL_WINDOW_DAYS: i64 = 30;
/// Days an unacknowledged alert stays new.
pub const NEW_ALERT_DAYS: i64 = 7;

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TodayKind {
    /// A reminder of theirs that fired and is open.
    Reminder,
    /// A task assigned to them, past its due day.
    OverdueTask,
    /// A task assigned to them, due today.
    TaskDueToday,
    /// A step of a playbook run assigned to them, overdue or due today.
    PlaybookStep,
    /// One of their accounts is due a contact (overdue or today).
    NextTouch,
    /// A new alert on one of their accounts.
    Alert,
    /// One of their accounts renews within 30 days.
    Renewal,
}

/// One thing that needs the user today.
#[derive(SimpleObject, Debug, Clone)]
pub struct TodayItem {
    pub kind: TodayKind,
    pub title: String,
    /// Why it is on the list, in words.
    pub reason: String,
    /// The day it is (or was) due.
    pub due: Option<Date>,
    pub customer_id: Option<Uuid>,
    pub customer_name: Option<String>,
    pub arr: Option<Decimal>,
    /// The account's churn risk today, when it has one.
    pub risk_score: Option<f64>,
    pub risk_band: Option<RiskBand>,
    pub reminder_id: Option<Uuid>,
    pub occurrence_key: Option<String>,
    pub task_id: Option<Uuid>,
    pub alert_id: Option<Uuid>,
}

/// How many items of one kind.
#[derive(SimpleObject, Debug, Clone)]
pub struct TodayCount {
    pub kind: TodayKind,
    pub count: i64,
}

/// The user's "today": a page of the ranked items, their total and the count of each kind.
#[derive(SimpleObject, Debug, Clone)]
pub struct Today {
    pub day: Date,
    /// The CSM whose accounts are counted (the user's preferences), by name; none: only the
    /// user's own reminders and tasks.
    pub csm_name: Option<String>,
    pub items: Vec<TodayItem>,
    pub total_count: i64,
    pub counts: Vec<TodayCount>,
}

/// A customer's name, ARR and CSM, for ranking and naming.
struct Account {
    name: String,
    arr: Decimal,
}

fn item(
    kind: TodayKind,
    title: String,
    reason: String,
    due: Option<NaiveDate>,
    customer_id: Option<Uuid>,
) -> TodayItem {
    TodayItem {
        kind,
        title,
        reason,
        due: due.map(Date),
        customer_id,
        customer_name: None,
        arr: None,
        risk_score: None,
        risk_band: None,
        reminder_id: None,
        occurrence_key: None,
        task_id: None,
        alert_id: None,
    }
}

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

/// An open reminder occurrence: reminder, occurrence key, title, why, due, customer.
type OpenReminder = (Uuid, String, String, String, DateTime<Utc>, Option<Uuid>);

/// Everything on the user's list at instant `now` (the day is its UTC date), ranked.
pub async fn gather(
    pool: &PgPool,
    user_id: &str,
    csm_id: Option<Uuid>,
    now: DateTime<Utc>,
    risk: &HashMap<Uuid, crate::risk::RiskSummary>,
    rules: &events::rules::Rules,
) -> Result<Vec<TodayItem>, sqlx::Error> {
    let day = now.date_naive();
    let mut items = Vec::new();

    let reminders: Vec<OpenReminder> = sqlx::query_as(
        "SELECT reminder_id, occurrence_key, title, why, due_at, customer_id FROM reminder_occurrences
          WHERE state = 'open' AND due_at <= $3 AND (owner_id = $1 OR (owner_id IS NULL AND csm_id = $2))",
    )
    .bind(user_id)
    .bind(csm_id)
    .bind(now)
    .fetch_all(pool)
    .await?;
    for (reminder_id, key, title, why, due_at, customer_id) in reminders {
        let mut entry = item(TodayKind::Reminder, title, why, Some(due_at.date_naive()), customer_id);
        entry.reminder_id = Some(reminder_id);
        entry.occurrence_key = Some(key);
        items.push(entry);
    }

    // Their tasks: assigned to them, or to the CSM they said they are.
    let tasks: Vec<(Uuid, Uuid, String, NaiveDate, String)> = sqlx::query_as(
        "SELECT task_id, customer_id, title, due_date, priority FROM tasks
          WHERE (assignee_id = $1 OR assignee_id = $3) AND status IN ('pending', 'in_progress') AND due_date <= $2",
    )
    .bind(user_id)
    .bind(day)
    .bind(csm_id.map(|id| id.to_string()))
    .fetch_all(pool)
    .await?;
    let task_ids: Vec<Uuid> = tasks.iter().map(|t| t.0).collect();
    let steps = crate::playbooks::steps_of(pool, &task_ids).await?;
    for (task_id, customer_id, title, due, priority) in tasks {
        let late = (day - due).num_days();
        let when = if late > 0 {
            format!("overdue by {} (due {due})", days(late))
        } else {
            "due today".to_owned()
        };
        let (kind, reason) = match steps.get(&task_id) {
            Some((step, count, playbook)) => (
                TodayKind::PlaybookStep,
                format!(
                    "Step {} of {count} of the playbook \u{201c}{playbook}\u{201d}, {when}",
                    step + 1
                ),
            ),
            None if late > 0 => (TodayKind::OverdueTask, format!("{priority} priority task, {when}")),
            None => (TodayKind::TaskDueToday, format!("{priority} priority task, {when}")),
        };
        let mut entry = item(kind, title, reason, Some(due), Some(customer_id));
        entry.task_id = Some(task_id);
        items.push(entry);
    }

    if let Some(csm_id) = csm_id {
        let book: Vec<(Uuid, NaiveDate)> = sqlx::query_as(
            "SELECT customer_id, renewal_date FROM customer_profiles WHERE csm_id = $1 AND churned_on IS NULL",
        )
        .bind(csm_id)
        .fetch_all(pool)
        .await?;
        let ids: Vec<Uuid> = book.iter().map(|(id, _)| *id).collect();
        for (customer_id, touch) in crate::next_touch::of(pool, &ids, day, rules).await? {
            if touch.due.0 > day {
                continue;
            }
            let why = match (&touch.meeting, touch.basis) {
                (Some(meeting), crate::next_touch::TouchBasis::Meeting) => {
                    format!("meeting \"{}\" on the calendar", meeting.subject)
                }
                _ => match touch.last_contact_date {
                    Some(last) => format!(
                        "last contact {}; the tier asks for one at least every {}",
                        last.0,
                        days(i64::from(touch.max_days_between_contact))
                    ),
                    None => format!(
                        "no contact since onboarding; the tier asks for one at least every {}",
                        days(i64::from(touch.max_days_between_contact))
                    ),
                },
            };
            let reason = if touch.overdue {
                format!("Contact overdue by {}: {why}", days(-touch.days_until))
            } else {
                format!("Contact due today: {why}")
            };
            items.push(item(
                TodayKind::NextTouch,
                "Get in touch".into(),
                reason,
                Some(touch.due.0),
                Some(customer_id),
            ));
        }
        for (customer_id, renewal) in &book {
            let left = (*renewal - day).num_days();
            if (0..=RENEWAL_WINDOW_DAYS).contains(&left) {
                items.push(item(
                    TodayKind::Renewal,
                    "Renewal coming".into(),
                    format!("Renews on {renewal}, in {}", days(left)),
                    Some(*renewal),
                    Some(*customer_id),
                ));
            }
        }
        let alerts: Vec<(Uuid, Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT alert_id, customer_id, message, raised_at FROM alerts
              WHERE csm_id = $1 AND acknowledged_at IS NULL AND raised_at >= $2 AND raised_at <= $3
                AND kind NOT IN ('task_overdue', 'renewal_window')",
        )
        .bind(csm_id)
        .bind(now - Duration::days(NEW_ALERT_DAYS))
        .bind(now)
        .fetch_all(pool)
        .await?;
        for (alert_id, customer_id, message, raised_at) in alerts {
            let mut entry = item(
                TodayKind::Alert,
                "New alert".into(),
                format!("{message} (raised {}, not yet acknowledged)", raised_at.date_naive()),
                Some(raised_at.date_naive()),
                Some(customer_id),
            );
            entry.alert_id = Some(alert_id);
            items.push(entry);
        }
    }

    // Name, ARR and risk of each account named.
    let ids: Vec<Uuid> = items.iter().filter_map(|i| i.customer_id).collect();
    let accounts: HashMap<Uuid, Account> = sqlx::query_as::<_, (Uuid, String, Decimal)>(
        "SELECT customer_id, name, arr FROM customer_profiles WHERE customer_id = ANY ($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(id, name, arr)| (id, Account { name, arr }))
    .collect();
    for entry in &mut items {
        if let Some(id) = entry.customer_id {
            if let Some(account) = accounts.get(&id) {
                entry.customer_name = Some(account.name.clone());
                entry.arr = Some(account.arr);
            }
            if let Some(summary) = risk.get(&id) {
                entry.risk_score = Some(summary.score);
                entry.risk_band = Some(summary.band);
            }
        }
    }
    rank(&mut items);
    Ok(items)
}

/// Churn risk highest first (none last), then ARR largest first (none last), then due earliest,
/// then kind and title, so the order is total.
pub fn rank(items: &mut [TodayItem]) {
    items.sort_by(|a, b| {
        let risk = |i: &TodayItem| i.risk_score.unwrap_or(-1.0);
        risk(b)
            .total_cmp(&risk(a))
            .then_with(|| {
                b.arr
                    .unwrap_or(Decimal::NEGATIVE_ONE)
                    .cmp(&a.arr.unwrap_or(Decimal::NEGATIVE_ONE))
            })
            .then_with(|| a.due.map(|d| d.0).cmp(&b.due.map(|d| d.0)))
            .then_with(|| (a.kind as u8).cmp(&(b.kind as u8)))
            .then_with(|| a.customer_name.cmp(&b.customer_name))
            .then_with(|| a.title.cmp(&b.title))
    });
}

/// The caller's "today" at `at` (default now), `first` items from `offset`.
pub async fn today(ctx: &Context<'_>, at: Option<DateTime<Utc>>, offset: i32, first: i32) -> Result<Today> {
    let principal = &crate::access::access(ctx)?.principal;
    if principal.role == Role::Partner {
        return Err(coded_error(
            "FORBIDDEN",
            "partners have no \"today\": it is the CS team's list",
        ));
    }
    let pool = ctx.data::<PgPool>()?;
    let (csm_id, csm_name): (Option<Uuid>, Option<String>) = sqlx::query_as(
        "SELECT np.csm_id, d.name FROM notification_preferences np LEFT JOIN csm_directory d ON d.csm_id = np.csm_id
          WHERE np.user_id = $1",
    )
    .bind(&principal.user_id)
    .fetch_optional(pool)
    .await
    .map_err(unavailable)?
    .unwrap_or_default();
    let now = at.unwrap_or_else(Utc::now);
    let rules = crate::rules::effective(ctx, None).await?;
    let risk = crate::risk::today(ctx).await?;
    let items = gather(pool, &principal.user_id, csm_id, now, &risk, &rules)
        .await
        .map_err(unavailable)?;
    let mut counts: Vec<TodayCount> = Vec::new();
    for entry in &items {
        match counts.iter_mut().find(|c| c.kind == entry.kind) {
            Some(count) => count.count += 1,
            None => counts.push(TodayCount {
                kind: entry.kind,
                count: 1,
            }),
        }
    }
    counts.sort_by_key(|c| c.kind as u8);
    let total_count = items.len() as i64;
    let offset = offset.max(0) as usize;
    let first = first.clamp(1, 500) as usize;
    Ok(Today {
        day: Date(now.date_naive()),
        csm_name,
        items: items.into_iter().skip(offset).take(first).collect(),
        total_count,
        counts,
    })
}
