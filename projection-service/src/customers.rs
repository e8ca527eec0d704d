//! The customers projector: profile, partners, stakeholders, every activity with its engagement
//! attributes, health points with their lineage, tasks, partner reports, use cases, NPS and the
//! adoption history. CSMs and their capacity come from the Csm stream, partner organisations and
//! their users from the Partner streams. The timeline is not kept
//! here: it is read from the store (see `events::timeline`), up to this projector's checkpoint of
//! the customer's stream.

use chrono::{DateTime, NaiveDate, Utc};
use events::csm::CsmEvent;
use events::customer::*;
use events::partner::PartnerEvent;
use events::EventEnvelope;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::bulk::{coalesce, Decoded, Fold, Keyed, TableWriter};
use crate::projector::{ProjectionError, Projector};

pub struct CustomersProjector;

#[async_trait::async_trait]
impl Projector for CustomersProjector {
    fn name(&self) -> &'static str {
        "customers"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "customer_profiles",
            "customer_partners",
            "customer_stakeholders",
            "customer_activities",
            "health_points",
            "tasks",
            "partner_reports",
            "customer_use_cases",
            "nps_responses",
            "adoption_changes",
            "csm_directory",
            "partner_directory",
            "partner_users",
            "engagement_metrics_memo",
            "reminders",
            "reminder_occurrences",
        ]
    }

    fn fold(&self) -> Box<dyn Fold> {
        Box::<CustomersFold>::default()
    }

    async fn apply(&self, db: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError> {
        match event.stream_type.as_str() {
            CustomerEvent::STREAM_TYPE => {
                let decoded: CustomerEvent = event.decode()?;
                apply_customer(db, stream_uuid(event)?, event, decoded).await
            }
            events::alert::AlertEvent::STREAM_TYPE => {
                let events::alert::AlertEvent::AlertAcknowledged(acknowledged) = event.decode()?;
                sqlx::query("UPDATE alerts SET acknowledged_at = $2, acknowledged_by = $3 WHERE alert_id = $1")
                    .bind(acknowledged.alert_id)
                    .bind(acknowledged.occurred_at)
                    .bind(&event.metadata.actor.id)
                    .execute(&mut *db)
                    .await?;
                Ok(())
            }
            CsmEvent::STREAM_TYPE => apply_csm(db, stream_uuid(event)?, event.decode()?).await,
            PartnerEvent::STREAM_TYPE => apply_partner(db, stream_uuid(event)?, event.decode()?).await,
            events::reminder::ReminderEvent::STREAM_TYPE => crate::reminders::apply(db, event).await,
            _ => Ok(()),
        }
    }

    /// Runs of logged activities (what a backlog mostly is) are inserted with one statement each;
    /// everything else is applied event by event, in order.
    async fn apply_all(&self, db: &mut PgConnection, events: &[&EventEnvelope]) -> Result<(), ProjectionError> {
        let mut run = Vec::new();
        for event in events {
            if event.stream_type == CustomerEvent::STREAM_TYPE && event.event_type == "ActivityLogged" {
                if let CustomerEvent::ActivityLogged(logged) = event.decode()? {
                    run.push((stream_uuid(event)?, logged));
                    continue;
                }
            }
            insert_activities(db, &mut run).await?;
            self.apply(db, event).await?;
        }
        insert_activities(db, &mut run).await
    }
}

fn stream_uuid(event: &EventEnvelope) -> Result<Uuid, ProjectionError> {
    Uuid::parse_str(&event.stream_id).map_err(|_| ProjectionError::Poison(format!("bad stream id {}", event.stream_id)))
}

/// Inserts (and empties) a run of logged activities with one statement: the same rows, in the
/// same order, as the `ActivityLogged` arm of [`apply_customer`] one by one (the first of two
/// with the same id wins).
async fn insert_activities(
    db: &mut PgConnection,
    run: &mut Vec<(Uuid, ActivityLogged)>,
) -> Result<(), ProjectionError> {
    match run.len() {
        0 => return Ok(()),
        1 => {
            let (customer_id, logged) = run.pop().expect("one activity");
            return insert_activity(db, customer_id, &logged).await;
        }
        _ => {}
    }
    let participants = |a: &ActivityLogged| {
        let ids: Vec<String> = a.participants.iter().map(Uuid::to_string).collect();
        format!("{{{}}}", ids.join(","))
    };
    sqlx::query(
        "INSERT INTO customer_activities (customer_id, activity_id, kind, direction, occurred_at, occurred_on,
             duration_minutes, participants, response_received, response_time_hours, subject, logged_by)
         SELECT a.customer_id, a.activity_id, a.kind, a.direction, a.occurred_at, a.occurred_at_day,
             a.duration_minutes, a.participants::uuid[], a.response_received, a.response_time_hours, a.subject, a.logged_by
           FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[], $6::date[], $7::int[],
                       $8::text[], $9::bool[], $10::float8[], $11::text[], $12::text[]) WITH ORDINALITY
                AS a(customer_id, activity_id, kind, direction, occurred_at, occurred_at_day, duration_minutes,
                     participants, response_received, response_time_hours, subject, logged_by, n)
          ORDER BY a.n
         ON CONFLICT DO NOTHING",
    )
    .bind(run.iter().map(|(customer_id, _)| *customer_id).collect::<Vec<_>>())
    .bind(run.iter().map(|(_, a)| a.activity_id).collect::<Vec<_>>())
    .bind(run.iter().map(|(_, a)| a.kind.as_str()).collect::<Vec<_>>())
    .bind(run.iter().map(|(_, a)| direction(a.direction)).collect::<Vec<_>>())
    .bind(run.iter().map(|(_, a)| a.occurred_at).collect::<Vec<_>>())
    .bind(run.iter().map(|(_, a)| a.occurred_at.date_naive()).collect::<Vec<_>>())
    .bind(run.iter().map(|(_, a)| a.duration_minutes.map(|minutes| minutes as i32)).collect::<Vec<_>>())
    .bind(run.iter().map(|(_, a)| participants(a)).collect::<Vec<_>>())
    .bind(run.iter().map(|(_, a)| a.response_received).collect::<Vec<_>>())
    .bind(run.iter().map(|(_, a)| a.response_time_hours).collect::<Vec<_>>())
    .bind(run.iter().map(|(_, a)| a.subject.as_str()).collect::<Vec<_>>())
    .bind(run.iter().map(|(_, a)| a.logged_by.as_str()).collect::<Vec<_>>())
    .execute(&mut *db)
    .await?;
    run.clear();
    Ok(())
}

async fn insert_activity(db: &mut PgConnection, customer_id: Uuid, a: &ActivityLogged) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO customer_activities (customer_id, activity_id, kind, direction, occurred_at, occurred_on,
             duration_minutes, participants, response_received, response_time_hours, subject, logged_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
    )
    .bind(customer_id)
    .bind(a.activity_id)
    .bind(a.kind.as_str())
    .bind(direction(a.direction))
    .bind(a.occurred_at)
    .bind(a.occurred_at.date_naive())
    .bind(a.duration_minutes.map(|minutes| minutes as i32))
    .bind(&a.participants)
    .bind(a.response_received)
    .bind(a.response_time_hours)
    .bind(&a.subject)
    .bind(&a.logged_by)
    .execute(&mut *db)
    .await?;
    Ok(())
}

async fn apply_customer(
    db: &mut PgConnection,
    customer_id: Uuid,
    envelope: &EventEnvelope,
    event: CustomerEvent,
) -> Result<(), ProjectionError> {
    use CustomerEvent as E;
    let sequence = envelope.sequence;
    match event {
        E::CustomerOnboarded(o) => {
            sqlx::query(
                "INSERT INTO customer_profiles (customer_id, name, salesforce_id, tier, arr, industry, account_manager,
                     csm_id, products_owned, contract_start, renewal_date, onboarded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
            )
            .bind(customer_id)
            .bind(&o.name)
            .bind(&o.salesforce_id)
            .bind(o.tier.as_str())
            .bind(o.arr)
            .bind(&o.industry)
            .bind(&o.account_manager)
            .bind(o.csm_id)
            .bind(&o.products_owned)
            .bind(o.contract_start)
            .bind(o.renewal_date)
            .bind(o.occurred_at)
            .execute(&mut *db)
            .await?;
        }
        E::CustomerProfileUpdated(u) => {
            sqlx::query(
                "UPDATE customer_profiles SET name = COALESCE($2, name), salesforce_id = COALESCE($3, salesforce_id),
                     tier = COALESCE($4, tier), arr = COALESCE($5, arr), industry = COALESCE($6, industry),
                     account_manager = COALESCE($7, account_manager), products_owned = COALESCE($8, products_owned),
                     contract_start = COALESCE($9, contract_start), renewal_date = COALESCE($10, renewal_date)
                 WHERE customer_id = $1",
            )
            .bind(customer_id)
            .bind(&u.name)
            .bind(&u.salesforce_id)
            .bind(u.tier.map(Tier::as_str))
            .bind(u.arr)
            .bind(&u.industry)
            .bind(&u.account_manager)
            .bind(&u.products_owned)
            .bind(u.contract_start)
            .bind(u.renewal_date)
            .execute(&mut *db)
            .await?;
        }
        E::CsmAssigned(c) => {
            sqlx::query("UPDATE customer_profiles SET csm_id = $2 WHERE customer_id = $1")
                .bind(customer_id)
                .bind(c.csm_id)
                .execute(&mut *db)
                .await?;
        }
        E::PartnerAssigned(p) => {
            sqlx::query(
                "INSERT INTO customer_partners (customer_id, partner_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(customer_id)
            .bind(p.partner_id)
            .execute(&mut *db)
            .await?;
        }
        E::PartnerUnassigned(p) => {
            sqlx::query("DELETE FROM customer_partners WHERE customer_id = $1 AND partner_id = $2")
                .bind(customer_id)
                .bind(p.partner_id)
                .execute(&mut *db)
                .await?;
        }
        E::StakeholderAdded(s) => {
            sqlx::query(
                "INSERT INTO customer_stakeholders (customer_id, stakeholder_id, name, role, level, email)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(customer_id)
            .bind(s.stakeholder_id)
            .bind(&s.name)
            .bind(&s.role)
            .bind(level(s.level))
            .bind(&s.email)
            .execute(&mut *db)
            .await?;
        }
        E::StakeholderUpdated(s) => {
            sqlx::query(
                "UPDATE customer_stakeholders SET name = COALESCE($3, name), role = COALESCE($4, role),
                     level = COALESCE($5, level), email = COALESCE($6, email)
                 WHERE customer_id = $1 AND stakeholder_id = $2",
            )
            .bind(customer_id)
            .bind(s.stakeholder_id)
            .bind(&s.name)
            .bind(&s.role)
            .bind(s.level.map(level))
            .bind(&s.email)
            .execute(&mut *db)
            .await?;
        }
        E::StakeholderRemoved(s) => {
            sqlx::query(
                "UPDATE customer_stakeholders SET removed = true WHERE customer_id = $1 AND stakeholder_id = $2",
            )
            .bind(customer_id)
            .bind(s.stakeholder_id)
            .execute(&mut *db)
            .await?;
        }
        E::ActivityLogged(a) => insert_activity(db, customer_id, &a).await?,
        E::ActivityCorrected(c) => {
            sqlx::query(
                "UPDATE customer_activities SET kind = COALESCE($3, kind), direction = COALESCE($4, direction),
                     occurred_at = COALESCE($5, occurred_at), occurred_on = COALESCE($6, occurred_on),
                     duration_minutes = COALESCE($7, duration_minutes), participants = COALESCE($8, participants),
                     response_received = COALESCE($9, response_received),
                     response_time_hours = COALESCE($10, response_time_hours), subject = COALESCE($11, subject)
                 WHERE customer_id = $1 AND activity_id = $2",
            )
            .bind(customer_id)
            .bind(c.activity_id)
            .bind(c.kind.map(ActivityKind::as_str))
            .bind(c.direction.map(direction))
            .bind(c.activity_occurred_at)
            .bind(c.activity_occurred_at.map(|at| at.date_naive()))
            .bind(c.duration_minutes.map(|minutes| minutes as i32))
            .bind(&c.participants)
            .bind(c.response_received)
            .bind(c.response_time_hours)
            .bind(&c.subject)
            .execute(&mut *db)
            .await?;
        }
        E::ActivityRetracted(r) => {
            sqlx::query("UPDATE customer_activities SET retracted = true WHERE customer_id = $1 AND activity_id = $2")
                .bind(customer_id)
                .bind(r.activity_id)
                .execute(&mut *db)
                .await?;
        }
        E::HealthScoreRecorded(h) => {
            sqlx::query(
                "INSERT INTO health_points (customer_id, sequence, event_id, measured_at, measured_on, score, source,
                     actor_id, actor_role, reason, risk_factors, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
            )
            .bind(customer_id)
            .bind(sequence)
            .bind(envelope.metadata.event_id)
            .bind(h.measured_at)
            .bind(h.measured_at.date_naive())
            .bind(h.score)
            .bind(match h.source {
                HealthSource::Gainsight => "gainsight",
                HealthSource::Manual => "manual",
            })
            .bind(&envelope.metadata.actor.id)
            .bind(&envelope.metadata.actor.role)
            .bind(&h.reason)
            .bind(serde_json::to_value(&h.risk_factors)?)
            .bind(envelope.metadata.recorded_at)
            .execute(&mut *db)
            .await?;
        }
        E::TaskCreated(t) => {
            sqlx::query(
                "INSERT INTO tasks (task_id, customer_id, title, description, kind, priority, assignee_id, due_date,
                     status, parent_task_id, depends_on, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11) ON CONFLICT DO NOTHING",
            )
            .bind(t.task_id)
            .bind(customer_id)
            .bind(&t.title)
            .bind(&t.description)
            .bind(snake(&t.kind))
            .bind(snake(&t.priority))
            .bind(&t.assignee_id)
            .bind(t.due_date)
            .bind(t.parent_task_id)
            .bind(&t.depends_on)
            .bind(t.occurred_at)
            .execute(&mut *db)
            .await?;
        }
        E::TaskUpdated(t) => {
            sqlx::query(
                "UPDATE tasks SET title = COALESCE($2, title), description = COALESCE($3, description),
                     kind = COALESCE($4, kind), priority = COALESCE($5, priority), due_date = COALESCE($6, due_date),
                     depends_on = COALESCE($7, depends_on)
                 WHERE task_id = $1",
            )
            .bind(t.task_id)
            .bind(&t.title)
            .bind(&t.description)
            .bind(t.kind.map(|kind| snake(&kind)))
            .bind(t.priority.map(|priority| snake(&priority)))
            .bind(t.due_date)
            .bind(&t.depends_on)
            .execute(&mut *db)
            .await?;
        }
        E::TaskReassigned(t) => set_task(db, t.task_id, "assignee_id", &t.assignee_id).await?,
        E::TaskStatusChanged(t) => set_task(db, t.task_id, "status", &snake(&t.status)).await?,
        E::TaskCompleted(t) => close_task(db, t.task_id, "completed", Some(&t.outcome), t.occurred_at).await?,
        E::TaskCancelled(t) => close_task(db, t.task_id, "cancelled", None, t.occurred_at).await?,
        E::PartnerReportDrafted(r) => {
            sqlx::query(
                "INSERT INTO partner_reports (report_id, customer_id, partner_id, period_start, period_end, overall_status,
                     summary, accomplishments, planned_activities, risks_and_issues, attachments, status, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'draft', $12) ON CONFLICT DO NOTHING",
            )
            .bind(r.report_id)
            .bind(customer_id)
            .bind(r.partner_id)
            .bind(r.period_start)
            .bind(r.period_end)
            .bind(snake(&r.overall_status))
            .bind(&r.summary)
            .bind(&r.accomplishments)
            .bind(&r.planned_activities)
            .bind(&r.risks_and_issues)
            .bind(serde_json::to_value(&r.attachments)?)
            .bind(r.occurred_at)
            .execute(&mut *db)
            .await?;
        }
        E::PartnerReportUpdated(r) => {
            sqlx::query(
                "UPDATE partner_reports SET period_start = COALESCE($2, period_start), period_end = COALESCE($3, period_end),
                     overall_status = COALESCE($4, overall_status), summary = COALESCE($5, summary),
                     accomplishments = COALESCE($6, accomplishments), planned_activities = COALESCE($7, planned_activities),
                     risks_and_issues = COALESCE($8, risks_and_issues), attachments = COALESCE($9, attachments),
                     updated_at = $10
                 WHERE report_id = $1",
            )
            .bind(r.report_id)
            .bind(r.period_start)
            .bind(r.period_end)
            .bind(r.overall_status.map(|status| snake(&status)))
            .bind(&r.summary)
            .bind(&r.accomplishments)
            .bind(&r.planned_activities)
            .bind(&r.risks_and_issues)
            .bind(r.attachments.as_ref().map(serde_json::to_value).transpose()?)
            .bind(r.occurred_at)
            .execute(&mut *db)
            .await?;
        }
        E::PartnerReportSubmitted(r) => {
            sqlx::query("UPDATE partner_reports SET status = 'submitted', submitted_at = $2, updated_at = $2 WHERE report_id = $1")
                .bind(r.report_id)
                .bind(r.occurred_at)
                .execute(&mut *db)
                .await?;
        }
        E::AdoptionStageChanged(a) => {
            sqlx::query("UPDATE customer_profiles SET adoption_stage = $2 WHERE customer_id = $1")
                .bind(customer_id)
                .bind(snake(&a.stage))
                .execute(&mut *db)
                .await?;
            sqlx::query(
                "INSERT INTO adoption_changes (customer_id, sequence, summary, occurred_at, actor_id)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(customer_id)
            .bind(sequence)
            .bind(events::timeline::adoption_summary(&a))
            .bind(a.occurred_at)
            .bind(&envelope.metadata.actor.id)
            .execute(&mut *db)
            .await?;
        }
        E::UseCaseStatusChanged(u) => {
            sqlx::query(
                "INSERT INTO customer_use_cases (customer_id, use_case, status, notes, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (customer_id, use_case) DO UPDATE SET status = EXCLUDED.status, notes = EXCLUDED.notes,
                     updated_at = EXCLUDED.updated_at",
            )
            .bind(customer_id)
            .bind(&u.use_case)
            .bind(snake(&u.status))
            .bind(&u.notes)
            .bind(u.occurred_at)
            .execute(&mut *db)
            .await?;
        }
        E::NpsRecorded(n) => {
            sqlx::query(
                "INSERT INTO nps_responses (customer_id, sequence, score, stakeholder_id, comment, occurred_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(customer_id)
            .bind(sequence)
            .bind(i16::from(n.score))
            .bind(n.stakeholder_id)
            .bind(&n.comment)
            .bind(n.occurred_at)
            .execute(&mut *db)
            .await?;
        }
        E::CustomerRenewed(r) => {
            sqlx::query(
                "UPDATE customer_profiles SET renewal_date = $2, arr = COALESCE($3, arr), churned_on = NULL, churn_reason = NULL,
                     last_renewed_at = $4
                 WHERE customer_id = $1",
            )
            .bind(customer_id)
            .bind(r.renewal_date)
            .bind(r.arr)
            .bind(r.occurred_at)
            .execute(&mut *db)
            .await?;
        }
        E::CustomerChurned(c) => {
            sqlx::query("UPDATE customer_profiles SET churned_on = $2, churn_reason = $3 WHERE customer_id = $1")
                .bind(customer_id)
                .bind(c.churned_on)
                .bind(&c.reason)
                .execute(&mut *db)
                .await?;
        }
        E::MilestoneRecorded(_)
        | E::IssueLogged(_)
        | E::IssueResolved(_)
        | E::EscalationRaised(_)
        | E::EscalationResolved(_) => {}
        E::CustomFieldsSet(set) => {
            sqlx::query(
                "UPDATE customer_profiles SET custom_fields = jsonb_strip_nulls(custom_fields || $2) WHERE customer_id = $1",
            )
            .bind(customer_id)
            .bind(sqlx::types::Json(&set.values))
            .execute(&mut *db)
            .await?;
        }
        E::CustomerTagged(t) => {
            sqlx::query(
                "UPDATE customer_profiles SET tags = array_append(array_remove(tags, $2), $2) WHERE customer_id = $1",
            )
            .bind(customer_id)
            .bind(&t.tag)
            .execute(&mut *db)
            .await?;
        }
        E::CustomerUntagged(t) => {
            sqlx::query("UPDATE customer_profiles SET tags = array_remove(tags, $2) WHERE customer_id = $1")
                .bind(customer_id)
                .bind(&t.tag)
                .execute(&mut *db)
                .await?;
        }
        E::HealthScoreRetracted(h) => {
            sqlx::query("DELETE FROM health_points WHERE customer_id = $1 AND sequence = $2")
                .bind(customer_id)
                .bind(h.sequence)
                .execute(&mut *db)
                .await?;
        }
        E::CustomerRetracted(_) => {
            // The customer leaves every read model of this projector; its adoption history stays
            // (unreachable without a profile), as the rebuild leaves it.
            for table in RETRACTED_TABLES {
                sqlx::query(&format!("DELETE FROM {table} WHERE customer_id = $1"))
                    .bind(customer_id)
                    .execute(&mut *db)
                    .await?;
            }
        }
    }
    Ok(())
}

/// The tables a retracted customer's rows leave.
const RETRACTED_TABLES: [&str; 9] = [
    "customer_profiles",
    "customer_partners",
    "customer_stakeholders",
    "customer_activities",
    "health_points",
    "tasks",
    "partner_reports",
    "customer_use_cases",
    "nps_responses",
];

/// The snake_case name serde gives an enum value.
fn snake<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => text,
        _ => String::new(),
    }
}

fn level(level: StakeholderLevel) -> String {
    snake(&level)
}

fn direction(direction: Direction) -> String {
    snake(&direction)
}

async fn set_task(
    db: &mut PgConnection,
    task_id: Uuid,
    column: &'static str,
    value: &str,
) -> Result<(), ProjectionError> {
    sqlx::query(&format!("UPDATE tasks SET {column} = $2 WHERE task_id = $1"))
        .bind(task_id)
        .bind(value)
        .execute(&mut *db)
        .await?;
    Ok(())
}

async fn close_task(
    db: &mut PgConnection,
    task_id: Uuid,
    status: &str,
    outcome: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ProjectionError> {
    sqlx::query("UPDATE tasks SET status = $2, outcome = COALESCE($3, outcome), closed_at = $4 WHERE task_id = $1")
        .bind(task_id)
        .bind(status)
        .bind(outcome)
        .bind(at)
        .execute(&mut *db)
        .await?;
    Ok(())
}

async fn apply_csm(db: &mut PgConnection, csm_id: Uuid, event: CsmEvent) -> Result<(), ProjectionError> {
    match event {
        CsmEvent::CsmRegistered(r) => {
            sqlx::query(
                "INSERT INTO csm_directory (csm_id, name, email, team, monthly_capacity_hours) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT DO NOTHING",
            )
            .bind(r.csm_id)
            .bind(&r.name)
            .bind(&r.email)
            .bind(&r.team)
            .bind(r.monthly_capacity_hours as i32)
            .execute(&mut *db)
            .await?;
        }
        CsmEvent::CsmCapacityChanged(c) => {
            sqlx::query("UPDATE csm_directory SET monthly_capacity_hours = $2 WHERE csm_id = $1")
                .bind(csm_id)
                .bind(c.monthly_capacity_hours as i32)
                .execute(&mut *db)
                .await?;
        }
    }
    Ok(())
}

async fn apply_partner(db: &mut PgConnection, partner_id: Uuid, event: PartnerEvent) -> Result<(), ProjectionError> {
    match event {
        PartnerEvent::PartnerRegistered(r) => {
            sqlx::query(
                "INSERT INTO partner_directory (partner_id, name, registered_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(partner_id)
            .bind(&r.name)
            .bind(r.occurred_at)
            .execute(&mut *db)
            .await?;
        }
        PartnerEvent::PartnerUserInvited(i) => {
            sqlx::query(
                "INSERT INTO partner_users (partner_id, user_id, name, email, status, invited_at, changed_at)
                 VALUES ($1, $2, $3, $4, 'invited', $5, $5) ON CONFLICT DO NOTHING",
            )
            .bind(partner_id)
            .bind(&i.user_id)
            .bind(&i.name)
            .bind(&i.email)
            .bind(i.occurred_at)
            .execute(&mut *db)
            .await?;
        }
        PartnerEvent::PartnerUserActivated(a) => {
            sqlx::query(
                "UPDATE partner_users SET status = 'active', reason = NULL, changed_at = $3
                  WHERE partner_id = $1 AND user_id = $2",
            )
            .bind(partner_id)
            .bind(&a.user_id)
            .bind(a.occurred_at)
            .execute(&mut *db)
            .await?;
        }
        PartnerEvent::PartnerUserDeactivated(d) => {
            sqlx::query(
                "UPDATE partner_users SET status = 'deactivated', reason = $3, changed_at = $4
                  WHERE partner_id = $1 AND user_id = $2",
            )
            .bind(partner_id)
            .bind(&d.user_id)
            .bind(&d.reason)
            .bind(d.occurred_at)
            .execute(&mut *db)
            .await?;
        }
    }
    Ok(())
}

/// A partner user as `partner_users` keeps it.
struct PartnerUser {
    name: String,
    email: String,
    status: &'static str,
    reason: Option<String>,
    invited_at: DateTime<Utc>,
    changed_at: DateTime<Utc>,
}

/// The customers read model folded in memory (see [`crate::bulk`]): each change mirrors a
/// statement of [`apply_customer`] or [`apply_csm`].
#[derive(Default)]
pub struct CustomersFold {
    profiles: Keyed<Uuid, Profile>,
    partners: Keyed<(Uuid, Uuid), (Uuid, Uuid)>,
    stakeholders: Keyed<(Uuid, Uuid), Stakeholder>,
    activities: Keyed<(Uuid, Uuid), Activity>,
    health: Vec<HealthPoint>,
    tasks: Keyed<Uuid, Task>,
    reports: Keyed<Uuid, Report>,
    use_cases: Keyed<(Uuid, String), UseCaseRow>,
    nps: Vec<NpsRow>,
    adoption: Vec<AdoptionRow>,
    csms: Keyed<Uuid, (Uuid, String, String, String, i32)>,
    partner_directory: Keyed<Uuid, (String, DateTime<Utc>)>,
    partner_users: Keyed<(Uuid, String), PartnerUser>,
    reminders: crate::reminders::ReminderFold,
    /// Retracted customers take no more events; their rows are left out when written.
    retracted: std::collections::HashSet<Uuid, foldhash::fast::RandomState>,
    /// (customer, sequence) of retracted health scores.
    retracted_health: std::collections::HashSet<(Uuid, i64), foldhash::fast::RandomState>,
}

/// (customer_id, use_case, status, notes, updated_at) of `customer_use_cases`.
type UseCaseRow = (Uuid, String, String, String, DateTime<Utc>);

/// (customer_id, sequence, score, stakeholder_id, comment, occurred_at) of `nps_responses`.
type NpsRow = (Uuid, i64, i16, Option<Uuid>, Option<String>, DateTime<Utc>);

/// (customer_id, sequence, summary, occurred_at, actor_id) of `adoption_changes`.
type AdoptionRow = (Uuid, i64, String, DateTime<Utc>, String);

struct Profile {
    customer_id: Uuid,
    name: String,
    salesforce_id: String,
    tier: &'static str,
    arr: Decimal,
    industry: String,
    account_manager: String,
    csm_id: Uuid,
    products_owned: Vec<String>,
    contract_start: NaiveDate,
    renewal_date: NaiveDate,
    onboarded_at: DateTime<Utc>,
    adoption_stage: Option<String>,
    churned_on: Option<NaiveDate>,
    churn_reason: Option<String>,
    last_renewed_at: Option<DateTime<Utc>>,
    custom_fields: serde_json::Map<String, Value>,
    tags: Vec<String>,
}

struct Stakeholder {
    customer_id: Uuid,
    stakeholder_id: Uuid,
    name: String,
    role: String,
    level: String,
    email: Option<String>,
    removed: bool,
}

struct Activity {
    customer_id: Uuid,
    activity_id: Uuid,
    kind: &'static str,
    direction: String,
    occurred_at: DateTime<Utc>,
    duration_minutes: Option<i32>,
    participants: Vec<Uuid>,
    response_received: Option<bool>,
    response_time_hours: Option<f64>,
    subject: String,
    logged_by: String,
    retracted: bool,
}

struct HealthPoint {
    customer_id: Uuid,
    sequence: i64,
    event_id: Uuid,
    measured_at: DateTime<Utc>,
    score: f64,
    source: &'static str,
    actor_id: String,
    actor_role: String,
    reason: Option<String>,
    risk_factors: Value,
    recorded_at: DateTime<Utc>,
}

struct Task {
    task_id: Uuid,
    customer_id: Uuid,
    title: String,
    description: String,
    kind: String,
    priority: String,
    assignee_id: String,
    due_date: NaiveDate,
    status: String,
    parent_task_id: Option<Uuid>,
    depends_on: Vec<Uuid>,
    outcome: Option<String>,
    created_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
}

struct Report {
    report_id: Uuid,
    customer_id: Uuid,
    partner_id: Uuid,
    period_start: NaiveDate,
    period_end: NaiveDate,
    overall_status: String,
    summary: String,
    accomplishments: String,
    planned_activities: String,
    risks_and_issues: String,
    attachments: Value,
    status: &'static str,
    updated_at: DateTime<Utc>,
    submitted_at: Option<DateTime<Utc>>,
}

impl Fold for CustomersFold {
    fn apply(&mut self, envelope: &EventEnvelope, event: &Decoded) -> Result<(), ProjectionError> {
        match event {
            Decoded::Customer(customer_id, event) => {
                if let CustomerEvent::AdoptionStageChanged(a) = event {
                    self.adoption.push((
                        *customer_id,
                        envelope.sequence,
                        events::timeline::adoption_summary(a),
                        a.occurred_at,
                        envelope.metadata.actor.id.clone(),
                    ));
                }
                self.customer(*customer_id, envelope, event)?;
            }
            Decoded::Csm(_, CsmEvent::CsmRegistered(r)) => self.csms.insert(
                r.csm_id,
                (
                    r.csm_id,
                    r.name.clone(),
                    r.email.clone(),
                    r.team.clone(),
                    r.monthly_capacity_hours as i32,
                ),
            ),
            Decoded::Csm(csm_id, CsmEvent::CsmCapacityChanged(c)) => {
                if let Some(csm) = self.csms.get_mut(csm_id) {
                    csm.4 = c.monthly_capacity_hours as i32;
                }
            }
            Decoded::Partner(partner_id, event) => self.partner(*partner_id, event),
            Decoded::Reminder(reminder_id, event) => self.reminders.apply(*reminder_id, envelope.sequence, event),
            Decoded::Other => {}
        }
        Ok(())
    }

    fn into_tables(self: Box<Self>) -> Vec<TableWriter> {
        let CustomersFold {
            profiles,
            partners,
            stakeholders,
            activities,
            health,
            tasks,
            reports,
            use_cases,
            nps,
            adoption,
            csms,
            partner_directory,
            partner_users,
            reminders,
            retracted,
            retracted_health,
        } = *self;
        let retracted = std::sync::Arc::new(retracted);
        let kept = move |customer_id: &Uuid| !retracted.contains(customer_id);
        let (k1, k2, k3, k4, k5, k6, k7, k8, k9) = (
            kept.clone(),
            kept.clone(),
            kept.clone(),
            kept.clone(),
            kept.clone(),
            kept.clone(),
            kept.clone(),
            kept.clone(),
            kept,
        );
        let profiles = TableWriter::new(
            "customer_profiles",
            "customer_id, name, salesforce_id, tier, arr, industry, account_manager, csm_id, products_owned, \
             contract_start, renewal_date, onboarded_at, adoption_stage, churned_on, churn_reason, last_renewed_at, \
             custom_fields, tags",
            move |out| {
                for p in profiles.into_rows().filter(|p| k1(&p.customer_id)) {
                    let custom_fields = Value::Object(p.custom_fields);
                    out.row(&[
                        &p.customer_id,
                        &p.name,
                        &p.salesforce_id,
                        &p.tier,
                        &p.arr,
                        &p.industry,
                        &p.account_manager,
                        &p.csm_id,
                        &p.products_owned,
                        &p.contract_start,
                        &p.renewal_date,
                        &p.onboarded_at,
                        &p.adoption_stage,
                        &p.churned_on,
                        &p.churn_reason,
                        &p.last_renewed_at,
                        &custom_fields,
                        &p.tags,
                    ]);
                }
            },
        );
        let partners = TableWriter::new("customer_partners", "customer_id, partner_id", move |out| {
            for (customer_id, partner_id) in partners.into_rows().filter(|(customer_id, _)| k2(customer_id)) {
                out.row(&[&customer_id, &partner_id]);
            }
        });
        let stakeholders = TableWriter::new(
            "customer_stakeholders",
            "customer_id, stakeholder_id, name, role, level, email, removed",
            move |out| {
                for s in stakeholders.into_rows().filter(|s| k3(&s.customer_id)) {
                    out.row(&[
                        &s.customer_id,
                        &s.stakeholder_id,
                        &s.name,
                        &s.role,
                        &s.level,
                        &s.email,
                        &s.removed,
                    ]);
                }
            },
        );
        let activities = TableWriter::new(
            "customer_activities",
            "customer_id, activity_id, kind, direction, occurred_at, occurred_on, duration_minutes, participants, \
             response_received, response_time_hours, subject, logged_by, retracted",
            move |out| {
                for a in activities.into_rows().filter(|a| k4(&a.customer_id)) {
                    out.row(&[
                        &a.customer_id,
                        &a.activity_id,
                        &a.kind,
                        &a.direction,
                        &a.occurred_at,
                        &a.occurred_at.date_naive(),
                        &a.duration_minutes,
                        &a.participants,
                        &a.response_received,
                        &a.response_time_hours,
                        &a.subject,
                        &a.logged_by,
                        &a.retracted,
                    ]);
                }
            },
        );
        let health = TableWriter::new(
            "health_points",
            "customer_id, sequence, event_id, measured_at, measured_on, score, source, actor_id, actor_role, reason, \
             risk_factors, recorded_at",
            move |out| {
                let kept =
                    |h: &HealthPoint| k5(&h.customer_id) && !retracted_health.contains(&(h.customer_id, h.sequence));
                for h in health.into_iter().filter(kept) {
                    out.row(&[
                        &h.customer_id,
                        &h.sequence,
                        &h.event_id,
                        &h.measured_at,
                        &h.measured_at.date_naive(),
                        &h.score,
                        &h.source,
                        &h.actor_id,
                        &h.actor_role,
                        &h.reason,
                        &h.risk_factors,
                        &h.recorded_at,
                    ]);
                }
            },
        );
        let tasks = TableWriter::new(
            "tasks",
            "task_id, customer_id, title, description, kind, priority, assignee_id, due_date, status, \
             parent_task_id, depends_on, outcome, created_at, closed_at",
            move |out| {
                for t in tasks.into_rows().filter(|t| k6(&t.customer_id)) {
                    out.row(&[
                        &t.task_id,
                        &t.customer_id,
                        &t.title,
                        &t.description,
                        &t.kind,
                        &t.priority,
                        &t.assignee_id,
                        &t.due_date,
                        &t.status,
                        &t.parent_task_id,
                        &t.depends_on,
                        &t.outcome,
                        &t.created_at,
                        &t.closed_at,
                    ]);
                }
            },
        );
        let reports = TableWriter::new(
            "partner_reports",
            "report_id, customer_id, partner_id, period_start, period_end, overall_status, summary, accomplishments, \
             planned_activities, risks_and_issues, attachments, status, updated_at, submitted_at",
            move |out| {
                for r in reports.into_rows().filter(|r| k7(&r.customer_id)) {
                    out.row(&[
                        &r.report_id,
                        &r.customer_id,
                        &r.partner_id,
                        &r.period_start,
                        &r.period_end,
                        &r.overall_status,
                        &r.summary,
                        &r.accomplishments,
                        &r.planned_activities,
                        &r.risks_and_issues,
                        &r.attachments,
                        &r.status,
                        &r.updated_at,
                        &r.submitted_at,
                    ]);
                }
            },
        );
        let use_cases = TableWriter::new(
            "customer_use_cases",
            "customer_id, use_case, status, notes, updated_at",
            move |out| {
                for (customer_id, use_case, status, notes, at) in use_cases.into_rows().filter(|row| k8(&row.0)) {
                    out.row(&[&customer_id, &use_case, &status, &notes, &at]);
                }
            },
        );
        let nps = TableWriter::new(
            "nps_responses",
            "customer_id, sequence, score, stakeholder_id, comment, occurred_at",
            move |out| {
                for (customer_id, sequence, score, stakeholder, comment, at) in nps.into_iter().filter(|row| k9(&row.0))
                {
                    out.row(&[&customer_id, &sequence, &score, &stakeholder, &comment, &at]);
                }
            },
        );
        let adoption = TableWriter::new(
            "adoption_changes",
            "customer_id, sequence, summary, occurred_at, actor_id",
            move |out| {
                for (customer_id, sequence, summary, at, actor) in adoption {
                    out.row(&[&customer_id, &sequence, &summary, &at, &actor]);
                }
            },
        );
        let csms = TableWriter::new(
            "csm_directory",
            "csm_id, name, email, team, monthly_capacity_hours",
            move |out| {
                for (csm_id, name, email, team, hours) in csms.into_rows() {
                    out.row(&[&csm_id, &name, &email, &team, &hours]);
                }
            },
        );
        let directory = TableWriter::new("partner_directory", "partner_id, name, registered_at", move |out| {
            for (partner_id, (name, at)) in partner_directory.into_keyed_rows() {
                out.row(&[&partner_id, &name, &at]);
            }
        });
        let users = TableWriter::new(
            "partner_users",
            "partner_id, user_id, name, email, status, reason, invited_at, changed_at",
            move |out| {
                for ((partner_id, user_id), user) in partner_users.into_keyed_rows() {
                    out.row(&[
                        &partner_id,
                        &user_id,
                        &user.name,
                        &user.email,
                        &user.status,
                        &user.reason,
                        &user.invited_at,
                        &user.changed_at,
                    ]);
                }
            },
        );
        let mut tables = vec![
            profiles,
            partners,
            stakeholders,
            activities,
            health,
            tasks,
            reports,
            use_cases,
            nps,
            adoption,
            csms,
            directory,
            users,
        ];
        tables.extend(reminders.into_tables());
        tables
    }
}

impl CustomersFold {
    /// Mirrors [`apply_partner`].
    fn partner(&mut self, partner_id: Uuid, event: &PartnerEvent) {
        match event {
            PartnerEvent::PartnerRegistered(r) => self
                .partner_directory
                .insert(partner_id, (r.name.clone(), r.occurred_at)),
            PartnerEvent::PartnerUserInvited(i) => self.partner_users.insert(
                (partner_id, i.user_id.clone()),
                PartnerUser {
                    name: i.name.clone(),
                    email: i.email.clone(),
                    status: "invited",
                    reason: None,
                    invited_at: i.occurred_at,
                    changed_at: i.occurred_at,
                },
            ),
            PartnerEvent::PartnerUserActivated(a) => {
                if let Some(user) = self.partner_users.get_mut(&(partner_id, a.user_id.clone())) {
                    user.status = "active";
                    user.reason = None;
                    user.changed_at = a.occurred_at;
                }
            }
            PartnerEvent::PartnerUserDeactivated(d) => {
                if let Some(user) = self.partner_users.get_mut(&(partner_id, d.user_id.clone())) {
                    user.status = "deactivated";
                    user.reason = Some(d.reason.clone());
                    user.changed_at = d.occurred_at;
                }
            }
        }
    }

    fn customer(
        &mut self,
        customer_id: Uuid,
        envelope: &EventEnvelope,
        event: &CustomerEvent,
    ) -> Result<(), ProjectionError> {
        use CustomerEvent as E;
        match event {
            E::CustomerOnboarded(o) => self.profiles.insert(
                customer_id,
                Profile {
                    customer_id,
                    name: o.name.clone(),
                    salesforce_id: o.salesforce_id.clone(),
                    tier: o.tier.as_str(),
                    arr: o.arr,
                    industry: o.industry.clone(),
                    account_manager: o.account_manager.clone(),
                    csm_id: o.csm_id,
                    products_owned: o.products_owned.clone(),
                    contract_start: o.contract_start,
                    renewal_date: o.renewal_date,
                    onboarded_at: o.occurred_at,
                    adoption_stage: None,
                    churned_on: None,
                    churn_reason: None,
                    last_renewed_at: None,
                    custom_fields: serde_json::Map::new(),
                    tags: Vec::new(),
                },
            ),
            E::CustomerProfileUpdated(u) => {
                if let Some(p) = self.profiles.get_mut(&customer_id) {
                    coalesce(&mut p.name, &u.name);
                    coalesce(&mut p.salesforce_id, &u.salesforce_id);
                    coalesce(&mut p.tier, &u.tier.map(Tier::as_str));
                    coalesce(&mut p.arr, &u.arr);
                    coalesce(&mut p.industry, &u.industry);
                    coalesce(&mut p.account_manager, &u.account_manager);
                    coalesce(&mut p.products_owned, &u.products_owned);
                    coalesce(&mut p.contract_start, &u.contract_start);
                    coalesce(&mut p.renewal_date, &u.renewal_date);
                }
            }
            E::CsmAssigned(c) => {
                if let Some(p) = self.profiles.get_mut(&customer_id) {
                    p.csm_id = c.csm_id;
                }
            }
            E::PartnerAssigned(p) => self
                .partners
                .insert((customer_id, p.partner_id), (customer_id, p.partner_id)),
            E::PartnerUnassigned(p) => self.partners.remove(&(customer_id, p.partner_id)),
            E::StakeholderAdded(s) => self.stakeholders.insert(
                (customer_id, s.stakeholder_id),
                Stakeholder {
                    customer_id,
                    stakeholder_id: s.stakeholder_id,
                    name: s.name.clone(),
                    role: s.role.clone(),
                    level: level(s.level),
                    email: s.email.clone(),
                    removed: false,
                },
            ),
            E::StakeholderUpdated(u) => {
                if let Some(s) = self.stakeholders.get_mut(&(customer_id, u.stakeholder_id)) {
                    coalesce(&mut s.name, &u.name);
                    coalesce(&mut s.role, &u.role);
                    coalesce(&mut s.level, &u.level.map(level));
                    if u.email.is_some() {
                        s.email = u.email.clone();
                    }
                }
            }
            E::StakeholderRemoved(r) => {
                if let Some(s) = self.stakeholders.get_mut(&(customer_id, r.stakeholder_id)) {
                    s.removed = true;
                }
            }
            E::ActivityLogged(a) => self.activities.insert(
                (customer_id, a.activity_id),
                Activity {
                    customer_id,
                    activity_id: a.activity_id,
                    kind: a.kind.as_str(),
                    direction: direction(a.direction),
                    occurred_at: a.occurred_at,
                    duration_minutes: a.duration_minutes.map(|minutes| minutes as i32),
                    participants: a.participants.clone(),
                    response_received: a.response_received,
                    response_time_hours: a.response_time_hours,
                    subject: a.subject.clone(),
                    logged_by: a.logged_by.clone(),
                    retracted: false,
                },
            ),
            E::ActivityCorrected(c) => {
                if let Some(a) = self.activities.get_mut(&(customer_id, c.activity_id)) {
                    coalesce(&mut a.kind, &c.kind.map(ActivityKind::as_str));
                    coalesce(&mut a.direction, &c.direction.map(direction));
                    coalesce(&mut a.occurred_at, &c.activity_occurred_at);
                    if c.duration_minutes.is_some() {
                        a.duration_minutes = c.duration_minutes.map(|minutes| minutes as i32);
                    }
                    coalesce(&mut a.participants, &c.participants);
                    if c.response_received.is_some() {
                        a.response_received = c.response_received;
                    }
                    if c.response_time_hours.is_some() {
                        a.response_time_hours = c.response_time_hours;
                    }
                    coalesce(&mut a.subject, &c.subject);
                }
            }
            E::ActivityRetracted(r) => {
                if let Some(a) = self.activities.get_mut(&(customer_id, r.activity_id)) {
                    a.retracted = true;
                }
            }
            E::HealthScoreRecorded(h) => self.health.push(HealthPoint {
                customer_id,
                sequence: envelope.sequence,
                event_id: envelope.metadata.event_id,
                measured_at: h.measured_at,
                score: h.score,
                source: match h.source {
                    HealthSource::Gainsight => "gainsight",
                    HealthSource::Manual => "manual",
                },
                actor_id: envelope.metadata.actor.id.clone(),
                actor_role: envelope.metadata.actor.role.clone(),
                reason: h.reason.clone(),
                risk_factors: serde_json::to_value(&h.risk_factors)?,
                recorded_at: envelope.metadata.recorded_at,
            }),
            E::TaskCreated(t) => self.tasks.insert(
                t.task_id,
                Task {
                    task_id: t.task_id,
                    customer_id,
                    title: t.title.clone(),
                    description: t.description.clone(),
                    kind: snake(&t.kind),
                    priority: snake(&t.priority),
                    assignee_id: t.assignee_id.clone(),
                    due_date: t.due_date,
                    status: "pending".into(),
                    parent_task_id: t.parent_task_id,
                    depends_on: t.depends_on.clone(),
                    outcome: None,
                    created_at: t.occurred_at,
                    closed_at: None,
                },
            ),
            E::TaskUpdated(u) => {
                if let Some(t) = self.tasks.get_mut(&u.task_id) {
                    coalesce(&mut t.title, &u.title);
                    coalesce(&mut t.description, &u.description);
                    coalesce(&mut t.kind, &u.kind.map(|kind| snake(&kind)));
                    coalesce(&mut t.priority, &u.priority.map(|priority| snake(&priority)));
                    coalesce(&mut t.due_date, &u.due_date);
                    coalesce(&mut t.depends_on, &u.depends_on);
                }
            }
            E::TaskReassigned(r) => {
                if let Some(t) = self.tasks.get_mut(&r.task_id) {
                    t.assignee_id = r.assignee_id.clone();
                }
            }
            E::TaskStatusChanged(s) => {
                if let Some(t) = self.tasks.get_mut(&s.task_id) {
                    t.status = snake(&s.status);
                }
            }
            E::TaskCompleted(c) => {
                if let Some(t) = self.tasks.get_mut(&c.task_id) {
                    t.status = "completed".into();
                    t.outcome = Some(c.outcome.clone());
                    t.closed_at = Some(c.occurred_at);
                }
            }
            E::TaskCancelled(c) => {
                if let Some(t) = self.tasks.get_mut(&c.task_id) {
                    t.status = "cancelled".into();
                    t.closed_at = Some(c.occurred_at);
                }
            }
            E::PartnerReportDrafted(r) => self.reports.insert(
                r.report_id,
                Report {
                    report_id: r.report_id,
                    customer_id,
                    partner_id: r.partner_id,
                    period_start: r.period_start,
                    period_end: r.period_end,
                    overall_status: snake(&r.overall_status),
                    summary: r.summary.clone(),
                    accomplishments: r.accomplishments.clone(),
                    planned_activities: r.planned_activities.clone(),
                    risks_and_issues: r.risks_and_issues.clone(),
                    attachments: serde_json::to_value(&r.attachments)?,
                    status: "draft",
                    updated_at: r.occurred_at,
                    submitted_at: None,
                },
            ),
            E::PartnerReportUpdated(u) => {
                if let Some(r) = self.reports.get_mut(&u.report_id) {
                    coalesce(&mut r.period_start, &u.period_start);
                    coalesce(&mut r.period_end, &u.period_end);
                    coalesce(&mut r.overall_status, &u.overall_status.map(|status| snake(&status)));
                    coalesce(&mut r.summary, &u.summary);
                    coalesce(&mut r.accomplishments, &u.accomplishments);
                    coalesce(&mut r.planned_activities, &u.planned_activities);
                    coalesce(&mut r.risks_and_issues, &u.risks_and_issues);
                    coalesce(
                        &mut r.attachments,
                        &u.attachments.as_ref().map(serde_json::to_value).transpose()?,
                    );
                    r.updated_at = u.occurred_at;
                }
            }
            E::PartnerReportSubmitted(s) => {
                if let Some(r) = self.reports.get_mut(&s.report_id) {
                    r.status = "submitted";
                    r.submitted_at = Some(s.occurred_at);
                    r.updated_at = s.occurred_at;
                }
            }
            E::AdoptionStageChanged(a) => {
                if let Some(p) = self.profiles.get_mut(&customer_id) {
                    p.adoption_stage = Some(snake(&a.stage));
                }
            }
            E::UseCaseStatusChanged(u) => self.use_cases.upsert(
                (customer_id, u.use_case.clone()),
                (
                    customer_id,
                    u.use_case.clone(),
                    snake(&u.status),
                    u.notes.clone(),
                    u.occurred_at,
                ),
            ),
            E::NpsRecorded(n) => self.nps.push((
                customer_id,
                envelope.sequence,
                i16::from(n.score),
                n.stakeholder_id,
                n.comment.clone(),
                n.occurred_at,
            )),
            E::CustomerRenewed(r) => {
                if let Some(p) = self.profiles.get_mut(&customer_id) {
                    p.renewal_date = r.renewal_date;
                    coalesce(&mut p.arr, &r.arr);
                    p.churned_on = None;
                    p.churn_reason = None;
                    p.last_renewed_at = Some(r.occurred_at);
                }
            }
            E::CustomerChurned(c) => {
                if let Some(p) = self.profiles.get_mut(&customer_id) {
                    p.churned_on = Some(c.churned_on);
                    p.churn_reason = Some(c.reason.clone());
                }
            }
            E::MilestoneRecorded(_)
            | E::IssueLogged(_)
            | E::IssueResolved(_)
            | E::EscalationRaised(_)
            | E::EscalationResolved(_) => {}
            E::CustomFieldsSet(set) => {
                if let Some(p) = self.profiles.get_mut(&customer_id) {
                    for (key, value) in &set.values {
                        if value.is_null() {
                            p.custom_fields.remove(key);
                        } else {
                            p.custom_fields.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
            E::CustomerTagged(t) => {
                if let Some(p) = self.profiles.get_mut(&customer_id) {
                    p.tags.retain(|tag| tag != &t.tag);
                    p.tags.push(t.tag.clone());
                }
            }
            E::CustomerUntagged(t) => {
                if let Some(p) = self.profiles.get_mut(&customer_id) {
                    p.tags.retain(|tag| tag != &t.tag);
                }
            }
            E::HealthScoreRetracted(h) => {
                self.retracted_health.insert((customer_id, h.sequence));
            }
            E::CustomerRetracted(_) => {
                self.retracted.insert(customer_id);
            }
        }
        Ok(())
    }
}
