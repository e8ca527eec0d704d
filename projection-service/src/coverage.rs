//! The coverage projector (PRD-162): per customer its tier, ARR, CSM and onboarding day; every
//! health point; CSM names and handoffs. Contact is read from the activities the customers
//! projector keeps (the view `coverage_contacts`: every activity not retracted, with its kind, day
//! and participants; queries count only contact), so the coverage facts of a customer are
//! versioned by both projectors' checkpoints of its stream.

use chrono::{DateTime, NaiveDate, Utc};
use events::csm::CsmEvent;
use events::customer::CustomerEvent;
use events::EventEnvelope;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::bulk::{coalesce, Decoded, Fold, Keyed, TableWriter};
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
            "coverage_health_points",
            "coverage_profile_changes",
            "coverage_facts_memo",
        ]
    }

    fn fold(&self) -> Box<dyn Fold> {
        Box::<CoverageFold>::default()
    }

    fn reads(&self) -> &'static [&'static str] {
        &["customers"]
    }

    fn views(&self, schema: &str) -> Vec<String> {
        vec![contacts_view(schema)]
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

/// Contact as coverage counts it: every activity of the customers read model that is not
/// retracted (notes included, as a correction can turn one into contact; the queries leave them
/// out). Migration 20261203100003 creates the same view in `public`.
pub fn contacts_view(schema: &str) -> String {
    format!(
        "CREATE OR REPLACE VIEW {schema}.coverage_contacts AS
         SELECT customer_id, activity_id, kind, occurred_at, occurred_on, participants
           FROM {schema}.customer_activities
          WHERE NOT retracted"
    )
}

async fn apply_customer(
    db: &mut PgConnection,
    customer_id: Uuid,
    sequence: i64,
    event: CustomerEvent,
) -> Result<(), ProjectionError> {
    record_change(db, customer_id, sequence, &ProfileChange::of(&event)).await?;
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
        CustomerEvent::CustomerRenewed(renewed) => {
            if let Some(arr) = renewed.arr {
                sqlx::query("UPDATE coverage_accounts SET arr = $2 WHERE customer_id = $1")
                    .bind(customer_id)
                    .bind(arr)
                    .execute(&mut *db)
                    .await?;
            }
        }
        CustomerEvent::HealthScoreRetracted(retracted) => {
            sqlx::query("DELETE FROM coverage_health_points WHERE customer_id = $1 AND sequence = $2")
                .bind(customer_id)
                .bind(retracted.sequence)
                .execute(&mut *db)
                .await?;
        }
        CustomerEvent::CustomerRetracted(_) => {
            for table in RETRACTED_TABLES {
                sqlx::query(&format!("DELETE FROM {table} WHERE customer_id = $1"))
                    .bind(customer_id)
                    .execute(&mut *db)
                    .await?;
            }
        }
        // Facts the coverage model does not use.
        _ => {}
    }
    Ok(())
}

/// The tables a retracted customer's rows leave.
const RETRACTED_TABLES: [&str; 4] = [
    "coverage_accounts",
    "coverage_handoffs",
    "coverage_health_points",
    "coverage_profile_changes",
];

/// What an event sets of an account's tier, ARR and renewal date (a row of
/// `coverage_profile_changes`); `None` for an event that sets none of them.
struct ProfileChange {
    occurred_at: DateTime<Utc>,
    tier: Option<&'static str>,
    arr: Option<Decimal>,
    renewal_date: Option<NaiveDate>,
}

impl ProfileChange {
    fn of(event: &CustomerEvent) -> Option<ProfileChange> {
        let change = match event {
            CustomerEvent::CustomerOnboarded(o) => ProfileChange {
                occurred_at: o.occurred_at,
                tier: Some(o.tier.as_str()),
                arr: Some(o.arr),
                renewal_date: Some(o.renewal_date),
            },
            CustomerEvent::CustomerProfileUpdated(u) => ProfileChange {
                occurred_at: u.occurred_at,
                tier: u.tier.map(|tier| tier.as_str()),
                arr: u.arr,
                renewal_date: u.renewal_date,
            },
            CustomerEvent::CustomerRenewed(r) => ProfileChange {
                occurred_at: r.occurred_at,
                tier: None,
                arr: r.arr,
                renewal_date: Some(r.renewal_date),
            },
            _ => return None,
        };
        (change.tier.is_some() || change.arr.is_some() || change.renewal_date.is_some()).then_some(change)
    }
}

async fn record_change(
    db: &mut PgConnection,
    customer_id: Uuid,
    sequence: i64,
    change: &Option<ProfileChange>,
) -> Result<(), ProjectionError> {
    let Some(change) = change else { return Ok(()) };
    sqlx::query(
        "INSERT INTO coverage_profile_changes (customer_id, sequence, occurred_at, tier, arr, renewal_date)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(customer_id)
    .bind(sequence)
    .bind(change.occurred_at)
    .bind(change.tier)
    .bind(change.arr)
    .bind(change.renewal_date)
    .execute(&mut *db)
    .await?;
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

/// The coverage read model folded in memory (see [`crate::bulk`]): each change mirrors a
/// statement of [`apply_customer`] or [`apply_csm`].
#[derive(Default)]
pub struct CoverageFold {
    csms: Keyed<Uuid, (Uuid, String, String, String)>,
    accounts: Keyed<Uuid, Account>,
    handoffs: Vec<HandoffRow>,
    health: Vec<(Uuid, i64, DateTime<Utc>, f64)>,
    changes: Vec<(Uuid, i64, ProfileChange)>,
    /// Retracted customers and (customer, sequence) of retracted health scores, left out when
    /// the rows are written.
    retracted: std::collections::HashSet<Uuid, foldhash::fast::RandomState>,
    retracted_health: std::collections::HashSet<(Uuid, i64), foldhash::fast::RandomState>,
}

/// (customer_id, sequence, csm_id, previous_csm_id, occurred_at) of `coverage_handoffs`.
type HandoffRow = (Uuid, i64, Uuid, Option<Uuid>, DateTime<Utc>);

struct Account {
    customer_id: Uuid,
    name: String,
    tier: &'static str,
    arr: Decimal,
    csm_id: Uuid,
    onboarded_on: NaiveDate,
}

impl Fold for CoverageFold {
    fn apply(&mut self, envelope: &EventEnvelope, event: &Decoded) -> Result<(), ProjectionError> {
        match event {
            Decoded::Customer(customer_id, event) => self.customer(*customer_id, envelope.sequence, event),
            Decoded::Csm(_, CsmEvent::CsmRegistered(registered)) => self.csms.upsert(
                registered.csm_id,
                (
                    registered.csm_id,
                    registered.name.clone(),
                    registered.email.clone(),
                    registered.team.clone(),
                ),
            ),
            Decoded::Csm(_, CsmEvent::CsmCapacityChanged(_))
            | Decoded::Partner(..)
            | Decoded::Reminder(..)
            | Decoded::Other => {}
        }
        Ok(())
    }

    fn into_tables(self: Box<Self>) -> Vec<TableWriter> {
        let CoverageFold {
            csms,
            accounts,
            handoffs,
            health,
            changes,
            retracted,
            retracted_health,
        } = *self;
        let retracted = std::sync::Arc::new(retracted);
        let kept = move |customer_id: &Uuid| !retracted.contains(customer_id);
        let (k1, k2, k3, k4) = (kept.clone(), kept.clone(), kept.clone(), kept);
        let csms = TableWriter::new("coverage_csms", "csm_id, name, email, team", move |out| {
            for (csm_id, name, email, team) in csms.into_rows() {
                out.row(&[&csm_id, &name, &email, &team]);
            }
        });
        let accounts = TableWriter::new(
            "coverage_accounts",
            "customer_id, name, tier, arr, csm_id, onboarded_on",
            move |out| {
                for a in accounts.into_rows().filter(|a| k1(&a.customer_id)) {
                    out.row(&[&a.customer_id, &a.name, &a.tier, &a.arr, &a.csm_id, &a.onboarded_on]);
                }
            },
        );
        let handoffs = TableWriter::new(
            "coverage_handoffs",
            "customer_id, sequence, csm_id, previous_csm_id, occurred_at",
            move |out| {
                for (customer_id, sequence, csm_id, previous, at) in handoffs.into_iter().filter(|row| k2(&row.0)) {
                    out.row(&[&customer_id, &sequence, &csm_id, &previous, &at]);
                }
            },
        );
        let health = TableWriter::new(
            "coverage_health_points",
            "customer_id, sequence, measured_at, measured_on, score",
            move |out| {
                let kept =
                    |row: &(Uuid, i64, DateTime<Utc>, f64)| k3(&row.0) && !retracted_health.contains(&(row.0, row.1));
                for (customer_id, sequence, at, score) in health.into_iter().filter(kept) {
                    out.row(&[&customer_id, &sequence, &at, &at.date_naive(), &score]);
                }
            },
        );
        let changes = TableWriter::new(
            "coverage_profile_changes",
            "customer_id, sequence, occurred_at, tier, arr, renewal_date",
            move |out| {
                for (customer_id, sequence, c) in changes.into_iter().filter(|row| k4(&row.0)) {
                    out.row(&[
                        &customer_id,
                        &sequence,
                        &c.occurred_at,
                        &c.tier,
                        &c.arr,
                        &c.renewal_date,
                    ]);
                }
            },
        );
        vec![csms, accounts, handoffs, health, changes]
    }
}

impl CoverageFold {
    fn customer(&mut self, customer_id: Uuid, sequence: i64, event: &CustomerEvent) {
        if let Some(change) = ProfileChange::of(event) {
            self.changes.push((customer_id, sequence, change));
        }
        match event {
            CustomerEvent::CustomerOnboarded(o) => self.accounts.upsert(
                customer_id,
                Account {
                    customer_id,
                    name: o.name.clone(),
                    tier: o.tier.as_str(),
                    arr: o.arr,
                    csm_id: o.csm_id,
                    onboarded_on: o.occurred_at.date_naive(),
                },
            ),
            CustomerEvent::CsmAssigned(assigned) => {
                if let Some(account) = self.accounts.get_mut(&customer_id) {
                    account.csm_id = assigned.csm_id;
                }
                self.handoffs.push((
                    customer_id,
                    sequence,
                    assigned.csm_id,
                    assigned.previous_csm_id,
                    assigned.occurred_at,
                ));
            }
            CustomerEvent::HealthScoreRecorded(health) => {
                self.health
                    .push((customer_id, sequence, health.measured_at, health.score))
            }
            CustomerEvent::CustomerProfileUpdated(updated) => {
                if let Some(account) = self.accounts.get_mut(&customer_id) {
                    coalesce(&mut account.name, &updated.name);
                    coalesce(&mut account.tier, &updated.tier.map(|tier| tier.as_str()));
                    coalesce(&mut account.arr, &updated.arr);
                }
            }
            CustomerEvent::CustomerRenewed(renewed) => {
                if let Some(account) = self.accounts.get_mut(&customer_id) {
                    coalesce(&mut account.arr, &renewed.arr);
                }
            }
            CustomerEvent::HealthScoreRetracted(retracted) => {
                self.retracted_health.insert((customer_id, retracted.sequence));
            }
            CustomerEvent::CustomerRetracted(_) => {
                self.retracted.insert(customer_id);
            }
            _ => {}
        }
    }
}
