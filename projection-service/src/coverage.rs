//! The coverage projector (PRD-162): per customer its tier, ARR, CSM and onboarding day; every
//! activity with its kind, day and participants (notes included, as they can be corrected into
//! contact; queries count only contact); every health point; CSM names and handoffs.

use events::csm::CsmEvent;
use events::customer::CustomerEvent;
use events::EventEnvelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projector::{ProjectionError, Projector};

pub struct CoverageProjector;

fn customer_id(event: &EventEnvelope) -> Result<Uuid, ProjectionError> {
    Uuid::parse_str(&event.stream_id).map_err(|_| ProjectionError::Poison(format!("bad stream id {}", event.stream_id)))
}

#[async_trait::async_trait]
impl Projector for CoverageProjector {
    fn name(&self) -> &'static str {
        "coverage"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "coverage_csms",
            "coverage_accounts",
            "coverage_handoffs",
            "coverage_contacts",
            "coverage_health_points",
            "coverage_facts_memo",
        ]
    }

    async fn apply(&self, db: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError> {
        match event.stream_type.as_str() {
            CustomerEvent::STREAM_TYPE => {
                apply_customer(db, customer_id(event)?, event.sequence, event.decode()?).await
            }
            CsmEvent::STREAM_TYPE => apply_csm(db, event.decode()?).await,
            // Streams this read model does not need.
            _ => Ok(()),
        }
    }
}

async fn apply_customer(
    db: &mut PgConnection,
    customer_id: Uuid,
    sequence: i64,
    event: CustomerEvent,
) -> Result<(), ProjectionError> {
    match event {
        CustomerEvent::CustomerOnboarded(onboarded) => {
            sqlx::query(
                "INSERT INTO coverage_accounts (customer_id, name, tier, arr, csm_id, onboarded_on)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (customer_id) DO UPDATE SET
                     name = EXCLUDED.name, tier = EXCLUDED.tier, arr = EXCLUDED.arr,
                     csm_id = EXCLUDED.csm_id, onboarded_on = EXCLUDED.onboarded_on",
            )
            .bind(customer_id)
            .bind(&onboarded.name)
            .bind(onboarded.tier.as_str())
            .bind(onboarded.arr)
            .bind(onboarded.csm_id)
            .bind(onboarded.occurred_at.date_naive())
            .execute(&mut *db)
            .await?;
        }
        CustomerEvent::CsmAssigned(assigned) => {
            sqlx::query("UPDATE coverage_accounts SET csm_id = $2 WHERE customer_id = $1")
                .bind(customer_id)
                .bind(assigned.csm_id)
                .execute(&mut *db)
                .await?;
            sqlx::query(
                "INSERT INTO coverage_handoffs (customer_id, sequence, csm_id, previous_csm_id, occurred_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(customer_id)
            .bind(sequence)
            .bind(assigned.csm_id)
            .bind(assigned.previous_csm_id)
            .bind(assigned.occurred_at)
            .execute(&mut *db)
            .await?;
        }
        // Notes are kept too (queries leave them out) so a correction can turn one into contact.
        CustomerEvent::ActivityLogged(logged) => {
            sqlx::query(
                "INSERT INTO coverage_contacts (customer_id, activity_id, kind, occurred_at, occurred_on, participants)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(customer_id)
            .bind(logged.activity_id)
            .bind(logged.kind.as_str())
            .bind(logged.occurred_at)
            .bind(logged.occurred_at.date_naive())
            .bind(&logged.participants)
            .execute(&mut *db)
            .await?;
        }
        CustomerEvent::ActivityRetracted(retracted) => {
            sqlx::query("DELETE FROM coverage_contacts WHERE customer_id = $1 AND activity_id = $2")
                .bind(customer_id)
                .bind(retracted.activity_id)
                .execute(&mut *db)
                .await?;
        }
        CustomerEvent::HealthScoreRecorded(health) => {
            sqlx::query(
                "INSERT INTO coverage_health_points (customer_id, sequence, measured_at, measured_on, score)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(customer_id)
            .bind(sequence)
            .bind(health.measured_at)
            .bind(health.measured_at.date_naive())
            .bind(health.score)
            .execute(&mut *db)
            .await?;
        }
        CustomerEvent::CustomerProfileUpdated(updated) => {
            sqlx::query(
                "UPDATE coverage_accounts SET name = COALESCE($2, name), tier = COALESCE($3, tier), arr = COALESCE($4, arr)
                  WHERE customer_id = $1",
            )
            .bind(customer_id)
            .bind(&updated.name)
            .bind(updated.tier.map(|tier| tier.as_str()))
            .bind(updated.arr)
            .execute(&mut *db)
            .await?;
        }
        CustomerEvent::ActivityCorrected(corrected) => {
            sqlx::query(
                "UPDATE coverage_contacts SET kind = COALESCE($3, kind), occurred_at = COALESCE($4, occurred_at),
                        occurred_on = COALESCE($5, occurred_on), participants = COALESCE($6, participants)
                  WHERE customer_id = $1 AND activity_id = $2",
            )
            .bind(customer_id)
            .bind(corrected.activity_id)
            .bind(corrected.kind.map(|kind| kind.as_str()))
            .bind(corrected.activity_occurred_at)
            .bind(corrected.activity_occurred_at.map(|at| at.date_naive()))
            .bind(&corrected.participants)
            .execute(&mut *db)
            .await?;
        }
        CustomerEvent::CustomerRenewed(renewed) => {
            if let Some(arr) = renewed.arr {
                sqlx::query("UPDATE coverage_accounts SET arr = $2 WHERE customer_id = $1")
                    .bind(customer_id)
                    .bind(arr)
                    .execute(&mut *db)
                    .await?;
            }
        }
        // Facts the coverage model does not use.
        _ => {}
    }
    Ok(())
}

async fn apply_csm(db: &mut PgConnection, event: CsmEvent) -> Result<(), ProjectionError> {
    match event {
        CsmEvent::CsmCapacityChanged(_) => {}
        CsmEvent::CsmRegistered(registered) => {
            sqlx::query(
                "INSERT INTO coverage_csms (csm_id, name, email, team) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (csm_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, team = EXCLUDED.team",
            )
            .bind(registered.csm_id)
            .bind(&registered.name)
            .bind(&registered.email)
            .bind(&registered.team)
            .execute(&mut *db)
            .await?;
        }
    }
    Ok(())
}
