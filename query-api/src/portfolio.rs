//! Portfolio views: tasks, partner reports, the renewal pipeline, the executive summary and the
//! portfolio's health over time.

use std::collections::HashMap;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Enum, InputObject, SimpleObject};
use base64::Engine;
use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use events::coverage::{round1, HealthColour as Colour};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::coverage::{health_slices, money, HealthSlice};
use crate::health::Granularity;
use crate::scalars::{Date, HealthColour};
use crate::schema::coded_error;

fn unavailable(error: sqlx::Error) -> async_graphql::Error {
    tracing::error!(%error, "read model query failed");
    coded_error("UNAVAILABLE", "the read models are unavailable; retry later")
}

fn encode(key: &str, id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{key}|{id}"))
}

fn decode(cursor: Option<String>) -> async_graphql::Result<Option<(String, Uuid)>> {
    cursor
        .map(|cursor| {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
            let (key, id) = String::from_utf8(bytes)
                .ok()?
                .rsplit_once('|')
                .map(|(k, i)| (k.to_owned(), i.to_owned()))?;
            Some((key, Uuid::parse_str(&id).ok()?))
        })
        .map(|cursor| cursor.ok_or_else(|| coded_error("BAD_USER_INPUT", "unknown cursor")))
        .transpose()
}

/// Binds the keyset tail every page query ends with: the cursor's key and id, then the limit
/// (one more than the page, to know whether another page follows).
fn page_of<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    after: &Option<(String, Uuid)>,
    first: usize,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(after.as_ref().map(|(key, _)| key.clone()))
        .bind(after.as_ref().map(|(_, id)| *id))
        .bind(first as i64 + 1)
}

fn connection<T>(
    rows: Vec<(String, Uuid, T)>,
    first: usize,
    after: bool,
) -> Connection<String, T, EmptyFields, EmptyFields>
where
    T: async_graphql::OutputType,
{
    counted_connection(rows, first, after, EmptyFields)
}

/// What a list says of itself besides its page: how many rows it holds in all.
#[derive(SimpleObject, Debug, Clone, Copy)]
pub struct PageTotal {
    /// How many the list holds in all, on every page, of those the caller may see (0 when the
    /// query did not ask for it).
    pub total_count: i64,
}

fn counted_connection<T, F>(
    rows: Vec<(String, Uuid, T)>,
    first: usize,
    after: bool,
    fields: F,
) -> Connection<String, T, F, EmptyFields>
where
    T: async_graphql::OutputType,
    F: async_graphql::ObjectType,
{
    let mut connection = Connection::with_additional_fields(after, rows.len() > first, fields);
    connection.edges.extend(
        rows.into_iter()
            .take(first)
            .map(|(key, id, node)| Edge::new(encode(&key, id), node)),
    );
    connection
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct Task {
    pub task_id: Uuid,
    pub customer_id: Uuid,
    pub customer_name: String,
    pub title: String,
    pub description: String,
    pub kind: String,
    pub priority: String,
    pub assignee_id: String,
    /// The assignee's name, where the directory knows it.
    pub assignee_name: Option<String>,
    pub due_date: NaiveDate,
    /// pending, in_progress, completed or cancelled.
    pub status: String,
    pub parent_task_id: Option<Uuid>,
    pub depends_on: Vec<Uuid>,
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Pending or in progress.
    Open,
    Closed,
    All,
}

#[derive(InputObject, Debug, Clone, Default)]
pub struct TaskFilter {
    /// A CSM id or partner user id ("mine" is the caller's own id).
    pub assignee_id: Option<String>,
    pub customer_id: Option<Uuid>,
    /// follow_up, qbr_prep, escalation, onboarding, renewal or general.
    pub kind: Option<String>,
    pub state: Option<TaskState>,
    /// Open and due before today.
    pub overdue: Option<bool>,
    /// Open and due from today to this many days ahead.
    pub due_within_days: Option<i32>,
}

/// Tasks by due date, then id.
/// The conditions of a task list, over parameters $1 to $8 (see [`tasks`]).
const TASK_CONDITIONS: &str = "($1::text IS NULL OR assignee_id = $1) AND ($2::uuid IS NULL OR customer_id = $2)
            AND ($3::text IS NULL OR kind = $3)
            AND ($4 = 'all' OR ($4 = 'open') = (status IN ('pending', 'in_progress')))
            AND (NOT $5 OR (status IN ('pending', 'in_progress') AND due_date < $6))
            AND ($7::int IS NULL OR (status IN ('pending', 'in_progress') AND due_date BETWEEN $6 AND $6 + $7))
            AND ($8::uuid[] IS NULL OR customer_id = ANY ($8))";

/// Binds a task list's filter as $1 to $8.
fn bind_task_filter<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    filter: &TaskFilter,
    today: NaiveDate,
    visible: Option<&[Uuid]>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(filter.assignee_id.clone())
        .bind(filter.customer_id)
        .bind(filter.kind.clone())
        .bind(match filter.state.unwrap_or(TaskState::Open) {
            TaskState::Open => "open",
            TaskState::Closed => "closed",
            TaskState::All => "all",
        })
        .bind(filter.overdue.unwrap_or(false))
        .bind(today)
        .bind(filter.due_within_days)
        .bind(visible.map(<[Uuid]>::to_vec))
}

/// A page of tasks by due date, each with its customer's name; the total when `counted`.
pub async fn tasks(
    pool: &PgPool,
    filter: TaskFilter,
    visible: Option<&[Uuid]>,
    first: usize,
    after: Option<String>,
    counted: bool,
) -> async_graphql::Result<Connection<String, Task, PageTotal, EmptyFields>> {
    let first = first.clamp(1, crate::timeline::MAX_PAGE);
    let after = decode(after)?;
    let today = Utc::now().date_naive();
    let sql = format!(
        "SELECT task_id, customer_id,
                coalesce((SELECT name FROM customer_profiles p WHERE p.customer_id = tasks.customer_id), '') AS customer_name,
                title, description, kind, priority, assignee_id, {} AS assignee_name, due_date, status,
                parent_task_id, depends_on, outcome, created_at, closed_at
           FROM tasks
          WHERE {TASK_CONDITIONS}
            AND ($9::text IS NULL OR (due_date::text, task_id) > ($9, $10))
          ORDER BY due_date, task_id LIMIT $11",
        crate::settings::name_of("tasks.assignee_id")
    );
    let rows: Vec<Task> = page_of(
        bind_task_filter(sqlx::query_as(&sql), &filter, today, visible),
        &after,
        first,
    )
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    let total_count = if counted {
        let count = format!("SELECT count(*) FROM tasks WHERE {TASK_CONDITIONS}");
        let (total,): (i64,) = bind_task_filter(sqlx::query_as(&count), &filter, today, visible)
            .fetch_one(pool)
            .await
            .map_err(unavailable)?;
        total
    } else {
        0
    };
    let rows = rows
        .into_iter()
        .map(|task| (task.due_date.to_string(), task.task_id, task))
        .collect();
    Ok(counted_connection(
        rows,
        first,
        after.is_some(),
        PageTotal { total_count },
    ))
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct PartnerReport {
    pub report_id: Uuid,
    pub customer_id: Uuid,
    pub customer_name: String,
    pub partner_id: Uuid,
    /// None until the partner directory has the organisation.
    pub partner_name: Option<String>,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub overall_status: String,
    pub summary: String,
    pub accomplishments: String,
    pub planned_activities: String,
    pub risks_and_issues: String,
    pub attachments: serde_json::Value,
    /// draft or submitted.
    pub status: String,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStatus {
    Draft,
    Submitted,
}

/// Which reports a listing selects: `$1` customer, `$2` status, `$3` visible customers, `$4`
/// whether drafts are limited, `$5` whose drafts.
const REPORT_CONDITIONS: &str = "($1::uuid IS NULL OR customer_id = $1) AND ($2::text IS NULL OR status = $2)
            AND ($3::uuid[] IS NULL OR customer_id = ANY ($3))
            AND (status = 'submitted' OR NOT $4 OR partner_id = $5)";

fn bind_report_filter<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    customer_id: Option<Uuid>,
    status: Option<ReportStatus>,
    visible: Option<&[Uuid]>,
    drafts_of: Option<Option<Uuid>>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(customer_id)
        .bind(status.map(|status| {
            if status == ReportStatus::Draft {
                "draft"
            } else {
                "submitted"
            }
        }))
        .bind(visible.map(<[Uuid]>::to_vec))
        .bind(drafts_of.is_some())
        .bind(drafts_of.flatten())
}

/// Reports, latest period first, each with its customer's and partner's names; the total when
/// `counted`. `drafts_of`: whose drafts the caller may see (`None`: all).
#[allow(clippy::too_many_arguments)]
pub async fn partner_reports(
    pool: &PgPool,
    customer_id: Option<Uuid>,
    status: Option<ReportStatus>,
    visible: Option<&[Uuid]>,
    drafts_of: Option<Option<Uuid>>,
    first: usize,
    after: Option<String>,
    counted: bool,
) -> async_graphql::Result<Connection<String, PartnerReport, PageTotal, EmptyFields>> {
    let first = first.clamp(1, crate::timeline::MAX_PAGE);
    let after = decode(after)?;
    let sql = format!(
        "SELECT report_id, customer_id,
                coalesce((SELECT name FROM customer_profiles p WHERE p.customer_id = r.customer_id), '') AS customer_name,
                partner_id, (SELECT name FROM partner_directory d WHERE d.partner_id = r.partner_id) AS partner_name,
                period_start, period_end, overall_status, summary, accomplishments,
                planned_activities, risks_and_issues, attachments, status, updated_at, submitted_at
           FROM partner_reports r
          WHERE {REPORT_CONDITIONS}
            AND ($6::text IS NULL OR (period_end::text, report_id) < ($6, $7))
          ORDER BY period_end DESC, report_id DESC LIMIT $8"
    );
    let rows: Vec<PartnerReport> = page_of(
        bind_report_filter(sqlx::query_as(&sql), customer_id, status, visible, drafts_of),
        &after,
        first,
    )
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    let total_count = if counted {
        let count = format!("SELECT count(*) FROM partner_reports WHERE {REPORT_CONDITIONS}");
        let (total,): (i64,) = bind_report_filter(sqlx::query_as(&count), customer_id, status, visible, drafts_of)
            .fetch_one(pool)
            .await
            .map_err(unavailable)?;
        total
    } else {
        0
    };
    let rows = rows
        .into_iter()
        .map(|report| (report.period_end.to_string(), report.report_id, report))
        .collect();
    Ok(counted_connection(
        rows,
        first,
        after.is_some(),
        PageTotal { total_count },
    ))
}

#[derive(SimpleObject, Debug, Clone)]
pub struct Renewal {
    pub customer_id: Uuid,
    pub name: String,
    pub csm_id: Uuid,
    pub csm_name: Option<String>,
    pub arr: Decimal,
    pub renewal_date: Date,
    pub days_until_renewal: i64,
    pub health_score: Option<f64>,
    pub health_colour: Option<HealthColour>,
    /// The latest contact (an activity other than a note) up to today.
    pub last_contact_date: Option<Date>,
}

/// One month of the renewal pipeline: the customers renewing in it, by health colour.
#[derive(SimpleObject, Debug, Clone)]
pub struct RenewalMonth {
    /// `YYYY-MM`.
    pub month: String,
    pub accounts: usize,
    pub arr: Decimal,
    /// Green, yellow, red, then no score; each with its accounts and ARR.
    pub colours: Vec<HealthSlice>,
}

/// The customers renewing between `from` and `to` (both included) by month and health colour,
/// every month of the span listed, empty ones too.
pub async fn renewal_pipeline(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    visible: Option<&[Uuid]>,
    csm_id: Option<Uuid>,
) -> Result<Vec<RenewalMonth>, sqlx::Error> {
    let rows: Vec<(Decimal, NaiveDate, Option<f64>)> = sqlx::query_as(
        "SELECT p.arr, p.renewal_date,
                (SELECT score FROM health_points h WHERE h.customer_id = p.customer_id ORDER BY measured_at DESC, sequence DESC LIMIT 1)
           FROM customer_profiles p
          WHERE p.renewal_date BETWEEN $1 AND $2 AND p.churned_on IS NULL
            AND ($3::uuid[] IS NULL OR p.customer_id = ANY ($3))
            AND ($4::uuid IS NULL OR p.csm_id = $4)",
    )
    .bind(from)
    .bind(to)
    .bind(visible.map(<[Uuid]>::to_vec))
    .bind(csm_id)
    .fetch_all(pool)
    .await?;
    let mut months = Vec::new();
    let mut month = from.with_day(1).unwrap_or(from);
    while month <= to {
        let in_month: Vec<(Option<HealthColour>, Decimal)> = rows
            .iter()
            .filter(|(_, day, _)| day.year() == month.year() && day.month() == month.month())
            .map(|(arr, _, health)| (health.map(|score| Colour::of(score).into()), *arr))
            .collect();
        months.push(RenewalMonth {
            month: month.format("%Y-%m").to_string(),
            accounts: in_month.len(),
            arr: money(in_month.iter().map(|(_, arr)| *arr).sum()),
            colours: health_slices(&in_month),
        });
        month = month
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(NaiveDate::MAX);
    }
    Ok(months)
}

/// Customers renewing between `from` and `to` (both included), soonest first.
pub async fn renewals(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    visible: Option<&[Uuid]>,
    csm_id: Option<Uuid>,
    first: usize,
    after: Option<String>,
) -> async_graphql::Result<Connection<String, Renewal, EmptyFields, EmptyFields>> {
    let first = first.clamp(1, crate::timeline::MAX_PAGE);
    let after = decode(after)?;
    type Row = (
        Uuid,
        String,
        Uuid,
        Option<String>,
        Decimal,
        NaiveDate,
        Option<f64>,
        Option<NaiveDate>,
    );
    let rows: Vec<Row> = page_of(
        sqlx::query_as(
        "SELECT p.customer_id, p.name, p.csm_id, d.name, p.arr, p.renewal_date,
                (SELECT score FROM health_points h WHERE h.customer_id = p.customer_id ORDER BY measured_at DESC, sequence DESC LIMIT 1),
                (SELECT max(occurred_on) FROM customer_activities a
                  WHERE a.customer_id = p.customer_id AND NOT a.retracted AND a.kind <> 'note'
                    AND a.occurred_on <= (now() AT TIME ZONE 'UTC')::date)
           FROM customer_profiles p LEFT JOIN csm_directory d ON d.csm_id = p.csm_id
          WHERE p.renewal_date BETWEEN $1 AND $2 AND p.churned_on IS NULL
            AND ($3::uuid[] IS NULL OR p.customer_id = ANY ($3))
            AND ($7::uuid IS NULL OR p.csm_id = $7)
            AND ($4::text IS NULL OR (p.renewal_date::text, p.customer_id) > ($4, $5))
          ORDER BY p.renewal_date, p.customer_id LIMIT $6",
    )
    .bind(from)
    .bind(to)
    .bind(visible.map(<[Uuid]>::to_vec))
,
        &after,
        first,
    )
    .bind(csm_id)
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    let today = Utc::now().date_naive();
    let rows = rows
        .into_iter()
        .map(
            |(customer_id, name, csm_id, csm_name, arr, renewal, health, last_contact)| {
                let renewal_row = Renewal {
                    customer_id,
                    name,
                    csm_id,
                    csm_name,
                    last_contact_date: last_contact.map(Date),
                    arr: money(arr),
                    renewal_date: Date(renewal),
                    days_until_renewal: (renewal - today).num_days(),
                    health_score: health,
                    health_colour: health.map(|score| Colour::of(score).into()),
                };
                (renewal.to_string(), customer_id, renewal_row)
            },
        )
        .collect();
    Ok(connection(rows, first, after.is_some()))
}

#[derive(SimpleObject, Debug, Clone)]
pub struct RenewalWindow {
    pub days: i64,
    pub customers: usize,
    pub arr: Decimal,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct PortfolioSnapshot {
    pub as_of: Date,
    pub customers: usize,
    pub total_arr: Decimal,
    /// ARR of customers whose health is below 50.
    pub arr_at_risk: Decimal,
    pub colours: Vec<HealthSlice>,
    pub renewals: Vec<RenewalWindow>,
    /// Mean NPS response of the 90 days to the day.
    pub nps_average: Option<f64>,
    /// % promoters (9-10) - % detractors (0-6) over the same responses.
    pub nps: Option<f64>,
    pub nps_responses: usize,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct ExecutiveSummary {
    pub current: PortfolioSnapshot,
    /// The same figures as of the last day of the previous quarter.
    pub previous_quarter: PortfolioSnapshot,
    pub arr_change: Decimal,
    pub arr_at_risk_change: Decimal,
}

/// The portfolio as of `as_of`: customers onboarded by then and not churned by then, health as of
/// then (renewal dates are the current ones).
pub async fn snapshot(
    pool: &PgPool,
    as_of: NaiveDate,
    visible: Option<&[Uuid]>,
) -> Result<PortfolioSnapshot, sqlx::Error> {
    let rows: Vec<(Uuid, Decimal, NaiveDate, Option<f64>)> = sqlx::query_as(
        "SELECT p.customer_id, p.arr, p.renewal_date,
                (SELECT score FROM health_points h WHERE h.customer_id = p.customer_id AND h.measured_on <= $1
                  ORDER BY measured_at DESC, sequence DESC LIMIT 1)
           FROM customer_profiles p
          WHERE p.onboarded_at::date <= $1 AND (p.churned_on IS NULL OR p.churned_on > $1)
            AND ($2::uuid[] IS NULL OR p.customer_id = ANY ($2))",
    )
    .bind(as_of)
    .bind(visible.map(<[Uuid]>::to_vec))
    .fetch_all(pool)
    .await?;
    let nps: Vec<i16> = sqlx::query_scalar(
        "SELECT score FROM nps_responses WHERE occurred_at::date BETWEEN $1 AND $2 AND ($3::uuid[] IS NULL OR customer_id = ANY ($3))",
    )
    .bind(as_of - Days::new(89))
    .bind(as_of)
    .bind(visible.map(<[Uuid]>::to_vec))
    .fetch_all(pool)
    .await?;
    let total: Decimal = rows.iter().map(|row| row.1).sum();
    let at_risk: Decimal = rows
        .iter()
        .filter(|row| row.3.is_some_and(|score| score < 50.0))
        .map(|row| row.1)
        .sum();
    let colours = health_slices(
        &rows
            .iter()
            .map(|row| (row.3.map(|score| Colour::of(score).into()), row.1))
            .collect::<Vec<_>>(),
    );
    let renewals = [30, 60, 90]
        .into_iter()
        .map(|days| {
            let matching: Vec<_> = rows
                .iter()
                .filter(|row| row.2 >= as_of && row.2 <= as_of + Days::new(days as u64))
                .collect();
            RenewalWindow {
                days,
                customers: matching.len(),
                arr: money(matching.iter().map(|r| r.1).sum()),
            }
        })
        .collect();
    let responses = nps.len();
    let (average, score) = if responses == 0 {
        (None, None)
    } else {
        let promoters = nps.iter().filter(|s| **s >= 9).count() as f64;
        let detractors = nps.iter().filter(|s| **s <= 6).count() as f64;
        (
            Some(round1(
                nps.iter().map(|s| f64::from(*s)).sum::<f64>() / responses as f64,
            )),
            Some(round1((promoters - detractors) * 100.0 / responses as f64)),
        )
    };
    Ok(PortfolioSnapshot {
        as_of: Date(as_of),
        customers: rows.len(),
        total_arr: money(total),
        arr_at_risk: money(at_risk),
        colours,
        renewals,
        nps_average: average,
        nps: score,
        nps_responses: responses,
    })
}

pub fn previous_quarter_end(day: NaiveDate) -> NaiveDate {
    let quarter_start =
        NaiveDate::from_ymd_opt(day.year(), (day.month0() / 3) * 3 + 1, 1).expect("a quarter's first day");
    quarter_start - Days::new(1)
}

#[derive(SimpleObject, Debug, Clone)]
pub struct HealthBucket {
    pub bucket: Date,
    pub colours: Vec<HealthSlice>,
}

/// Count and ARR by colour per bucket: each customer's last score on or before the bucket's end.
pub async fn portfolio_health(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    granularity: Granularity,
    visible: Option<&[Uuid]>,
) -> Result<Vec<HealthBucket>, sqlx::Error> {
    let customers: Vec<(Uuid, Decimal, NaiveDate)> = sqlx::query_as(
        "SELECT customer_id, arr, onboarded_at::date FROM customer_profiles WHERE ($1::uuid[] IS NULL OR customer_id = ANY ($1))",
    )
    .bind(visible.map(<[Uuid]>::to_vec))
    .fetch_all(pool)
    .await?;
    let points: Vec<(Uuid, NaiveDate, f64)> =
        sqlx::query_as("SELECT customer_id, measured_on, score FROM health_points WHERE measured_on <= $1 ORDER BY measured_at, sequence")
            .bind(to)
            .fetch_all(pool)
            .await?;
    let mut by_customer: HashMap<Uuid, Vec<(NaiveDate, f64)>> = HashMap::new();
    for (customer, day, score) in points {
        by_customer.entry(customer).or_default().push((day, score));
    }
    let mut buckets = Vec::new();
    let mut bucket = crate::health::bucket_of(from, granularity);
    while bucket <= to {
        let end = (crate::health::next_bucket(bucket, granularity) - Days::new(1)).min(to);
        let states: Vec<(Decimal, Option<Colour>)> = customers
            .iter()
            .filter(|(_, _, onboarded)| *onboarded <= end)
            .map(|(id, arr, _)| {
                let score = by_customer
                    .get(id)
                    .and_then(|points| points.iter().rev().find(|(day, _)| *day <= end))
                    .map(|p| p.1);
                (*arr, score.map(Colour::of))
            })
            .collect();
        let colours = health_slices(
            &states
                .iter()
                .map(|(arr, colour)| (colour.map(Into::into), *arr))
                .collect::<Vec<_>>(),
        );
        buckets.push(HealthBucket {
            bucket: Date(bucket),
            colours,
        });
        bucket = crate::health::next_bucket(bucket, granularity);
    }
    Ok(buckets)
}
