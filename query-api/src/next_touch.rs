//! Next touches (docs/DOMAIN.md, "Next touch"): when each account is next due a contact. It is
//! the earlier of the next meeting on a CSM's calendar (the calendar connectors' upcoming
//! meetings) and the last contact plus the tier's maximum days between contacts (the coverage
//! standard in force); an account never contacted counts from its onboarding.

use std::collections::HashMap;

use async_graphql::{Enum, SimpleObject};
use chrono::NaiveDate;
use events::customer::Tier;
use events::rules::Rules;
use sqlx::PgPool;
use uuid::Uuid;

use crate::scalars::Date;

/// The last contact of the customer aliased `p` up to the day in `$today`: its latest activity
/// other than a note, not retracted.
pub fn last_contact_sql(today: usize) -> String {
    format!(
        "(SELECT max(a.occurred_on) FROM customer_activities a
           WHERE a.customer_id = p.customer_id AND NOT a.retracted AND a.kind <> 'note' AND a.occurred_on <= ${today})"
    )
}

/// The first day of the next meeting on a calendar with the customer aliased `p` (a meeting
/// counts until it has ended).
const MEETING_SQL: &str = "(SELECT min((s.starts_at AT TIME ZONE 'UTC')::date) FROM scheduled_touches s
           WHERE s.customer_id = p.customer_id AND s.ends_at > now())";

/// The next touch's day of the customer aliased `p`, with the day in `$today` and the three
/// tiers' maximum days between contacts in `$cadence`, `$cadence + 1`, `$cadence + 2`.
pub fn due_sql(today: usize, cadence: usize) -> String {
    let [enterprise, mid_market, _] = Tier::ALL.map(Tier::as_str);
    format!(
        "least(coalesce({last}, p.onboarded_at::date)
                 + (CASE p.tier WHEN '{enterprise}' THEN ${cadence}::int WHEN '{mid_market}' THEN ${}::int ELSE ${}::int END),
               {MEETING_SQL})",
        cadence + 1,
        cadence + 2,
        last = last_contact_sql(today),
    )
}

/// The maximum days between contacts of each tier (enterprise, mid-market, SMB) under `rules`.
pub fn cadence(rules: &Rules) -> [i32; 3] {
    Tier::ALL.map(|tier| i32::try_from(rules.standard(tier).max_days_between_contact).unwrap_or(i32::MAX))
}

/// Which next touches a list keeps.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextTouchWindow {
    /// Due before today.
    Overdue,
    /// Due from today to 7 days ahead.
    Next7Days,
    /// Due from today to 30 days ahead.
    Next30Days,
}

impl NextTouchWindow {
    pub fn as_str(self) -> &'static str {
        match self {
            NextTouchWindow::Overdue => "OVERDUE",
            NextTouchWindow::Next7Days => "NEXT_7_DAYS",
            NextTouchWindow::Next30Days => "NEXT_30_DAYS",
        }
    }

    /// The condition keeping a due day `due` in the window named by text parameter `$window`,
    /// with today in `$today`; true when `$window` is null.
    pub fn condition(due: &str, window: usize, today: usize) -> String {
        format!(
            "(${window}::text IS NULL OR CASE ${window}::text WHEN 'OVERDUE' THEN {due} < ${today}
                 WHEN 'NEXT_7_DAYS' THEN {due} BETWEEN ${today} AND ${today} + 7
                 ELSE {due} BETWEEN ${today} AND ${today} + 30 END)"
        )
    }
}

/// What the next touch is based on.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchBasis {
    /// A meeting on a CSM's calendar comes first.
    Meeting,
    /// The last contact plus the tier's maximum days between contacts.
    Cadence,
}

/// When an account is next due a contact, and why then.
#[derive(SimpleObject, Debug, Clone)]
pub struct NextTouch {
    pub due: Date,
    pub basis: TouchBasis,
    /// Days from today to `due`; negative when overdue.
    pub days_until: i64,
    pub overdue: bool,
    /// The latest contact up to today (an activity other than a note); none yet: the cadence
    /// counts from onboarding.
    pub last_contact_date: Option<Date>,
    /// The tier's maximum days between contacts under the rules in force.
    pub max_days_between_contact: i32,
    /// The day the cadence alone makes it due.
    pub cadence_due: Date,
    /// The next meeting on a calendar, when there is one.
    pub meeting: Option<crate::customers::ScheduledTouch>,
}

/// The next touches of these customers (churned ones have none) as of `today` under `rules`.
pub async fn of(
    pool: &PgPool,
    customer_ids: &[Uuid],
    today: NaiveDate,
    rules: &Rules,
) -> Result<HashMap<Uuid, NextTouch>, sqlx::Error> {
    let cadence = cadence(rules);
    let rows: Vec<(Uuid, String, NaiveDate, Option<NaiveDate>)> = sqlx::query_as(&format!(
        "SELECT p.customer_id, p.tier, p.onboarded_at::date, {} FROM customer_profiles p
          WHERE p.customer_id = ANY ($2) AND p.churned_on IS NULL",
        last_contact_sql(1)
    ))
    .bind(today)
    .bind(customer_ids)
    .fetch_all(pool)
    .await?;
    let meetings: Vec<(Uuid, crate::customers::ScheduledTouch)> = sqlx::query_as::<_, MeetingRow>(
        "SELECT DISTINCT ON (customer_id) customer_id, subject, starts_at, ends_at, direction, connector AS source
           FROM scheduled_touches WHERE customer_id = ANY ($1) AND ends_at > now()
          ORDER BY customer_id, starts_at",
    )
    .bind(customer_ids)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| (row.customer_id, row.touch))
    .collect();
    let mut meetings: HashMap<Uuid, crate::customers::ScheduledTouch> = meetings.into_iter().collect();
    Ok(rows
        .into_iter()
        .map(|(customer_id, tier, onboarded, last_contact)| {
            let max_days = Tier::ALL
                .iter()
                .position(|t| t.as_str() == tier)
                .map_or(cadence[2], |index| cadence[index]);
            let cadence_due = last_contact.unwrap_or(onboarded) + chrono::Duration::days(i64::from(max_days));
            let meeting = meetings.remove(&customer_id);
            let (due, basis) = match meeting.as_ref().map(|m| m.starts_at.date_naive()) {
                Some(day) if day < cadence_due => (day, TouchBasis::Meeting),
                _ => (cadence_due, TouchBasis::Cadence),
            };
            let touch = NextTouch {
                due: Date(due),
                basis,
                days_until: (due - today).num_days(),
                overdue: due < today,
                last_contact_date: last_contact.map(Date),
                max_days_between_contact: max_days,
                cadence_due: Date(cadence_due),
                meeting,
            };
            (customer_id, touch)
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct MeetingRow {
    customer_id: Uuid,
    #[sqlx(flatten)]
    touch: crate::customers::ScheduledTouch,
}
