//! Alerts (docs/DOMAIN.md section 8): a coverage gap turning urgent, engagement falling below 40,
//! health turning red, a task becoming overdue, a renewal entering 90/60/30 days, a partner
//! submitting a status report, an account's churn risk turning high.
//!
//! The checker evaluates every customer's conditions from the committed read models with the
//! shared formulas, as of today, at a fixed interval; conditions that depend only on time (overdue,
//! renewal windows) are thereby checked at least daily. Each condition raises one alert when it
//! becomes true and re-arms only once seen false again. One checker runs at a time (advisory
//! lock); its alerts are then published to the alerts exchange from the table (an outbox), with
//! publisher confirms, so none is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use events::coverage::{assess, Priority, AT_RISK_BELOW};
use events::engagement::{self, Period};
use events::service::amqp;
use events::service::read_models::{account_facts, churned_by, engagement_summaries, prune_memos, Window};
use events::topology::Topology;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::BasicProperties;
use query_api::risk::{RiskBand, RiskCache};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

/// Advisory lock of the active checker ("cstrack" + 2).
const CHECKER_LOCK: i64 = 0x6373_7472_6163_6b02;
const ENGAGEMENT_AT_RISK_BELOW: f64 = 40.0;
const RENEWAL_WINDOWS: [i64; 3] = [30, 60, 90];
/// Days a submitted partner report stays a condition (so a report submitted before the
/// checker first ran is raised once, and old ones are not).
const PARTNER_REPORT_DAYS: i32 = 7;

/// A submitted partner report: id, customer, partner, period start and end, status, when.
type SubmittedReport = (Uuid, Uuid, Uuid, NaiveDate, NaiveDate, String, chrono::DateTime<Utc>);

/// One true condition of one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub customer_id: Uuid,
    pub csm_id: Uuid,
    pub kind: &'static str,
    /// Distinguishes conditions of the same kind: a task id, a renewal window, a period.
    pub key: String,
    pub message: String,
    pub detail: Value,
}

/// Every condition that holds as of `as_of`.
pub async fn conditions(pool: &PgPool, as_of: NaiveDate, risk: &RiskCache) -> anyhow::Result<Vec<Condition>> {
    let profiles: Vec<(Uuid, Uuid, String, NaiveDate, Option<NaiveDate>)> =
        sqlx::query_as("SELECT customer_id, csm_id, name, renewal_date, churned_on FROM customer_profiles")
            .fetch_all(pool)
            .await?;
    let active: BTreeMap<Uuid, (Uuid, String, NaiveDate)> = profiles
        .into_iter()
        .filter(|(_, _, _, _, churned)| churned.is_none_or(|day| day > as_of))
        .map(|(id, csm, name, renewal, _)| (id, (csm, name, renewal)))
        .collect();
    let rules = events::service::read_models::current_rules(pool).await?;
    let mut found = Vec::new();
    let condition = |customer_id: Uuid, kind: &'static str, key: String, message: String, detail: Value| {
        active.get(&customer_id).map(|(csm_id, _, _)| Condition {
            customer_id,
            csm_id: *csm_id,
            kind,
            key,
            message,
            detail,
        })
    };

    // A churned customer has left the book: no coverage or engagement alert.
    let churned = churned_by(pool, as_of).await?;
    for facts in account_facts(pool, as_of, None)
        .await?
        .into_iter()
        .filter(|facts| !churned.contains(&facts.customer_id))
    {
        let assessment = assess(&facts.inputs, &rules.standard(facts.tier));
        let name = &facts.name;
        if assessment.priority == Priority::Urgent {
            found.extend(condition(
                facts.customer_id,
                "coverage_urgent",
                String::new(),
                format!("{name}: coverage gap is urgent"),
                json!({"score": assessment.score, "health": facts.inputs.health_score}),
            ));
        }
        if let Some(health) = facts.inputs.health_score.filter(|health| *health < AT_RISK_BELOW) {
            found.extend(condition(
                facts.customer_id,
                "health_red",
                String::new(),
                format!("{name}: health turned red ({health})"),
                json!({"health": health}),
            ));
        }
    }

    // Engagement over the last 30 days, never a calendar month that has barely begun; and only
    // for customers with 30 days behind them, whose window has not barely begun either.
    let period = Period::rolling(events::engagement::DEFAULT_WINDOW_DAYS, as_of);
    let window = Window {
        start: period.start,
        cut: period.cut(as_of),
    };
    let too_new: std::collections::HashSet<Uuid> =
        sqlx::query_scalar("SELECT customer_id FROM customer_profiles WHERE onboarded_at::date > $1")
            .bind(period.start)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
    for facts in engagement_summaries(pool, None, &[window]).await? {
        if too_new.contains(&facts.customer_id) || churned.contains(&facts.customer_id) {
            continue;
        }
        let Some(metrics) = facts.metrics.first() else { continue };
        let score = engagement::score(&engagement::components(metrics), &rules.weights);
        if score < ENGAGEMENT_AT_RISK_BELOW {
            found.extend(condition(
                facts.customer_id,
                "engagement_at_risk",
                String::new(),
                format!(
                    "{}: engagement {:.1} is at risk over the last {} days",
                    facts.name,
                    score,
                    events::engagement::DEFAULT_WINDOW_DAYS
                ),
                json!({"score": score, "period": period.label(), "from": period.start, "to": period.end}),
            ));
        }
    }

    let overdue: Vec<(Uuid, Uuid, String, NaiveDate)> = sqlx::query_as(
        "SELECT task_id, customer_id, title, due_date FROM tasks WHERE status IN ('pending', 'in_progress') AND due_date < $1",
    )
    .bind(as_of)
    .fetch_all(pool)
    .await?;
    for (task_id, customer_id, title, due) in overdue {
        found.extend(condition(
            customer_id,
            "task_overdue",
            task_id.to_string(),
            format!("task overdue since {due}: {title}"),
            json!({"task_id": task_id, "due_date": due}),
        ));
    }

    // A partner's status report, submitted in the last week, for the CSM to read.
    let submitted: Vec<SubmittedReport> = sqlx::query_as(
        "SELECT report_id, customer_id, partner_id, period_start, period_end, overall_status, submitted_at
           FROM partner_reports
          WHERE status = 'submitted' AND submitted_at >= $1::date - $2::int AND submitted_at < $1::date + 1",
    )
    .bind(as_of)
    .bind(PARTNER_REPORT_DAYS)
    .fetch_all(pool)
    .await?;
    for (report_id, customer_id, partner_id, start, end, overall, submitted_at) in submitted {
        let name = active
            .get(&customer_id)
            .map(|(_, name, _)| name.clone())
            .unwrap_or_default();
        found.extend(condition(
            customer_id,
            "partner_report_submitted",
            report_id.to_string(),
            format!("{name}: partner status report for {start} to {end} submitted ({overall})"),
            json!({"report_id": report_id, "partner_id": partner_id, "period_start": start, "period_end": end,
                   "overall_status": overall, "submitted_at": submitted_at}),
        ));
    }

    // Churn risk in the high band, scored as the query API scores it (the same fold and rules),
    // kept current between checks for the customers that moved.
    for row in query_api::risk::portfolio(pool, Some(risk), as_of, &rules)
        .await?
        .iter()
    {
        if row.summary.band != RiskBand::High
            || too_new.contains(&row.customer_id)
            || churned.contains(&row.customer_id)
        {
            continue;
        }
        found.extend(condition(
            row.customer_id,
            "churn_risk_high",
            String::new(),
            format!("{}: churn risk is high ({:.1} of 100)", row.name, row.summary.score),
            json!({"score": row.summary.score, "rules_version": rules.version}),
        ));
    }

    for (customer_id, (_, name, renewal)) in &active {
        let days = (*renewal - as_of).num_days();
        if let Some(window) = RENEWAL_WINDOWS.into_iter().find(|window| (0..=*window).contains(&days)) {
            found.extend(condition(
                *customer_id,
                "renewal_window",
                format!("{renewal}:{window}"),
                format!("{name}: renewal on {renewal} is within {window} days"),
                json!({"renewal_date": renewal, "window_days": window, "days_left": days}),
            ));
        }
    }
    Ok(found)
}

/// Evaluates every condition and raises the alerts of those that just became true. Returns the
/// number raised, or `None` when another checker holds the lock.
pub async fn check(pool: &PgPool, as_of: NaiveDate, risk: &RiskCache) -> anyhow::Result<Option<usize>> {
    let mut tx = pool.begin().await?;
    if !sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_xact_lock($1)")
        .bind(CHECKER_LOCK)
        .fetch_one(&mut *tx)
        .await?
    {
        return Ok(None);
    }
    prune_memos(pool).await?;
    let now = conditions(pool, as_of, risk).await?;
    let was: BTreeSet<(Uuid, String, String)> =
        sqlx::query_as::<_, (Uuid, String, String)>("SELECT customer_id, kind, key FROM alert_conditions WHERE active")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
    let is: BTreeSet<(Uuid, String, String)> = now
        .iter()
        .map(|c| (c.customer_id, c.kind.to_owned(), c.key.clone()))
        .collect();
    let changed_at = Utc::now();
    for (customer_id, kind, key) in was.difference(&is) {
        sqlx::query("UPDATE alert_conditions SET active = false, changed_at = $4 WHERE customer_id = $1 AND kind = $2 AND key = $3")
            .bind(customer_id)
            .bind(kind)
            .bind(key)
            .bind(changed_at)
            .execute(&mut *tx)
            .await?;
    }
    let mut raised = 0;
    for condition in now
        .iter()
        .filter(|c| !was.contains(&(c.customer_id, c.kind.to_owned(), c.key.clone())))
    {
        let alert_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO alert_conditions (customer_id, kind, key, active, changed_at) VALUES ($1, $2, $3, true, $4)
             ON CONFLICT (customer_id, kind, key) DO UPDATE SET active = true, changed_at = EXCLUDED.changed_at",
        )
        .bind(condition.customer_id)
        .bind(condition.kind)
        .bind(&condition.key)
        .bind(changed_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO alerts (alert_id, customer_id, csm_id, kind, key, message, detail, raised_at, as_of)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(alert_id)
        .bind(condition.customer_id)
        .bind(condition.csm_id)
        .bind(condition.kind)
        .bind(&condition.key)
        .bind(&condition.message)
        .bind(&condition.detail)
        .bind(changed_at)
        .bind(as_of)
        .execute(&mut *tx)
        .await?;
        events::service::changes::Change::AlertRaised {
            alert_id,
            customer_id: condition.customer_id,
        }
        .notify(&mut tx)
        .await?;
        raised += 1;
    }
    tx.commit().await?;
    Ok(Some(raised))
}

/// An alert waiting to be published: id, customer, CSM, kind, message, detail, raised at.
type PendingAlert = (Uuid, Uuid, Uuid, String, String, Value, chrono::DateTime<Utc>);

/// Publishes the alerts not yet published, each confirmed before it is marked.
pub async fn publish_pending(pool: &PgPool, channel: &lapin::Channel, topology: &Topology) -> anyhow::Result<usize> {
    let pending: Vec<PendingAlert> = sqlx::query_as(
        "SELECT alert_id, customer_id, csm_id, kind, message, detail, raised_at FROM alerts
          WHERE published_at IS NULL ORDER BY raised_at LIMIT 500",
    )
    .fetch_all(pool)
    .await?;
    for (alert_id, customer_id, csm_id, kind, message, detail, raised_at) in &pending {
        let body = json!({"alert_id": alert_id, "customer_id": customer_id, "csm_id": csm_id, "kind": kind,
                          "message": message, "detail": detail, "raised_at": raised_at});
        let confirmation = channel
            .basic_publish(
                ShortString::from(topology.alerts_exchange()),
                ShortString::from(format!("alert.{kind}")),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &serde_json::to_vec(&body)?,
                BasicProperties::default()
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2)
                    .with_message_id(alert_id.to_string().into()),
            )
            .await?
            .await?;
        if !matches!(confirmation, lapin::Confirmation::Ack(None)) {
            anyhow::bail!("alert {alert_id} was not accepted by the broker");
        }
        sqlx::query("UPDATE alerts SET published_at = now() WHERE alert_id = $1")
            .bind(alert_id)
            .execute(pool)
            .await?;
    }
    Ok(pending.len())
}

/// Checks and publishes every `interval` until `shutdown`.
pub async fn run(
    pool: PgPool,
    amqp_url: String,
    topology: Topology,
    interval: Duration,
    shutdown: watch::Receiver<bool>,
) {
    events::service::supervise::supervise(
        "alert checker",
        shutdown,
        || {
            let (pool, amqp_url, topology) = (pool.clone(), amqp_url.clone(), topology.clone());
            async move {
                let session = async {
                    let connection = amqp::connect(&amqp_url, &format!("{}-alerts", topology.prefix())).await?;
                    let channel = connection.create_channel().await?;
                    channel.confirm_select(ConfirmSelectOptions::default()).await?;
                    amqp::declare_topology(&channel, &topology).await?;
                    let risk = RiskCache::default();
                    loop {
                        let today = Utc::now().date_naive();
                        if let Some(raised) = check(&pool, today, &risk).await.context("checking alerts")? {
                            if raised > 0 {
                                tracing::info!(raised, "alerts raised");
                            }
                        }
                        publish_pending(&pool, &channel, &topology)
                            .await
                            .context("publishing alerts")?;
                        tokio::time::sleep(interval).await;
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), anyhow::Error>(())
                };
                session
                    .await
                    .err()
                    .unwrap_or_else(|| anyhow::anyhow!("alert session returned"))
            }
        },
        || {},
    )
    .await;
}

/// Days until a date, for messages and tests.
pub fn days_until(day: NaiveDate, as_of: NaiveDate) -> i64 {
    (day - as_of).num_days()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Days;

    #[test]
    fn renewal_windows_pick_the_tightest() {
        let as_of: NaiveDate = "2026-06-01".parse().unwrap();
        let window = |days: u64| {
            RENEWAL_WINDOWS
                .into_iter()
                .find(|w| (0..=*w).contains(&days_until(as_of + Days::new(days), as_of)))
        };
        assert_eq!(window(0), Some(30));
        assert_eq!(window(30), Some(30));
        assert_eq!(window(31), Some(60));
        assert_eq!(window(90), Some(90));
        assert_eq!(window(91), None);
    }
}
