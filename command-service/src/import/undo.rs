//! Undoing an import at any age (docs/IMPORTS.md): for each event the import appended, the
//! compensating command, unless a later event on the same stream changed the same thing, in
//! which case the later work is kept and listed.

use std::collections::{BTreeMap, HashMap};

use events::customer::CustomerEvent;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::plan::Profile;
use crate::auth::Principal;
use crate::domain::customer::*;
use crate::http::error::ApiError;
use crate::store::{Batch, ExecuteError};

struct Stored {
    sequence: i64,
    event: CustomerEvent,
    /// Appended by the import being undone.
    ours: bool,
}

const UNDO: &str = "undo of an import";

/// The profile fields an event sets.
fn profile_fields(event: &CustomerEvent) -> Vec<&'static str> {
    match event {
        CustomerEvent::CustomerProfileUpdated(u) => [
            ("name", u.name.is_some()),
            ("salesforce_id", u.salesforce_id.is_some()),
            ("tier", u.tier.is_some()),
            ("arr", u.arr.is_some()),
            ("industry", u.industry.is_some()),
            ("account_manager", u.account_manager.is_some()),
            ("products_owned", u.products_owned.is_some()),
            ("contract_start", u.contract_start.is_some()),
            ("renewal_date", u.renewal_date.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(field, _)| field)
        .collect(),
        CustomerEvent::CustomerRenewed(r) => {
            let mut fields = vec!["renewal_date"];
            if r.arr.is_some() {
                fields.push("arr");
            }
            fields
        }
        CustomerEvent::CsmAssigned(_) => vec!["csm"],
        _ => Vec::new(),
    }
}

fn restore(update: &mut UpdateProfile, field: &str, before: &Profile) -> Value {
    match field {
        "name" => {
            update.name = Some(before.name.clone());
            json!(before.name)
        }
        "salesforce_id" => {
            update.salesforce_id = Some(before.salesforce_id.clone());
            json!(before.salesforce_id)
        }
        "tier" => {
            update.tier = before.tier;
            json!(before.tier)
        }
        "arr" => {
            update.arr = Some(before.arr);
            json!(before.arr.to_string())
        }
        "industry" => {
            update.industry = Some(before.industry.clone());
            json!(before.industry)
        }
        "account_manager" => {
            update.account_manager = Some(before.account_manager.clone());
            json!(before.account_manager)
        }
        "products_owned" => {
            update.products_owned = Some(before.products_owned.clone());
            json!(before.products_owned)
        }
        "contract_start" => {
            update.contract_start = before.contract_start;
            json!(before.contract_start)
        }
        _ => {
            update.renewal_date = before.renewal_date;
            json!(before.renewal_date)
        }
    }
}

/// Decides the undo of `import_id` into `batch`; answers what it retracts, restores and keeps.
pub async fn decide(
    pool: &PgPool,
    import_id: Uuid,
    batch: &mut Batch<'_, Customer>,
    principal: &Principal,
    metadata: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events
          WHERE aggregate_type = 'Customer' AND metadata ->> 'import_id' = $1 AND NOT metadata ? 'import_undo'
          ORDER BY aggregate_id",
    )
    .bind(import_id.to_string())
    .fetch_all(pool)
    .await
    .map_err(|error| ApiError::from(ExecuteError::from_database(&error)))?;
    let mut retracted = BTreeMap::from([
        ("customers", 0),
        ("stakeholders", 0),
        ("activities", 0),
        ("health_scores", 0),
    ]);
    let mut restored = Vec::new();
    let mut kept = Vec::new();
    for stream in streams {
        let rows: Vec<(i64, Value, Option<String>)> = sqlx::query_as(
            "SELECT sequence, payload, metadata ->> 'import_id' FROM events
              WHERE aggregate_type = 'Customer' AND aggregate_id = $1 ORDER BY sequence",
        )
        .bind(&stream)
        .fetch_all(pool)
        .await
        .map_err(|error| ApiError::from(ExecuteError::from_database(&error)))?;
        let id = import_id.to_string();
        let history: Vec<Stored> = rows
            .into_iter()
            .filter_map(|(sequence, payload, import)| {
                let event = serde_json::from_value::<CustomerEvent>(payload).ok()?;
                Some(Stored {
                    sequence,
                    event,
                    ours: import.as_deref() == Some(id.as_str()),
                })
            })
            .collect();
        let customer_id = Uuid::parse_str(&stream).unwrap_or_default();
        let later = |sequence: i64| {
            history
                .iter()
                .filter(move |stored| stored.sequence > sequence && !stored.ours)
        };
        let mut commands: Vec<CustomerCommand> = Vec::new();
        let onboarded_here = history
            .iter()
            .find(|stored| stored.ours && matches!(stored.event, CustomerEvent::CustomerOnboarded(_)));
        if let Some(onboarded) = onboarded_here {
            if later(onboarded.sequence).next().is_some() {
                kept.push(json!({"customer_id": customer_id, "field": "customer",
                    "reason": "the customer was changed after the import; it stays"}));
            } else {
                retracted.entry("customers").and_modify(|count| *count += 1);
                commands.push(CustomerCommand::RetractCustomer(RetractCustomer {
                    reason: UNDO.into(),
                }));
                decide_all(batch, &stream, commands, principal, metadata).await?;
                continue;
            }
        }
        let mut update = UpdateProfile::default();
        let mut custom: BTreeMap<String, Value> = BTreeMap::new();
        for (index, stored) in history.iter().enumerate().filter(|(_, stored)| stored.ours) {
            let before = || {
                let mut profile = Profile::default();
                for earlier in &history[..index] {
                    profile.apply(&earlier.event);
                }
                profile
            };
            match &stored.event {
                CustomerEvent::CustomerProfileUpdated(_) | CustomerEvent::CsmAssigned(_) => {
                    for field in profile_fields(&stored.event) {
                        if later(stored.sequence).any(|next| profile_fields(&next.event).contains(&field)) {
                            kept.push(json!({"customer_id": customer_id, "field": field,
                                "reason": "changed again after the import; the later value stays"}));
                        } else if field == "csm" {
                            if let Some(previous) = before().csm_id {
                                commands.push(CustomerCommand::AssignCsm(AssignCsm {
                                    csm_id: previous,
                                    reason: UNDO.into(),
                                    occurred_at: None,
                                }));
                                restored.push(json!({"customer_id": customer_id, "field": "csm", "value": previous}));
                            }
                        } else {
                            let value = restore(&mut update, field, &before());
                            restored.push(json!({"customer_id": customer_id, "field": field, "value": value}));
                        }
                    }
                }
                CustomerEvent::CustomFieldsSet(set) => {
                    for key in set.values.keys() {
                        let changed_later = later(stored.sequence).any(|next| {
                            matches!(&next.event, CustomerEvent::CustomFieldsSet(next) if next.values.contains_key(key))
                        });
                        if changed_later {
                            kept.push(json!({"customer_id": customer_id, "field": format!("cf.{key}"),
                                "reason": "changed again after the import; the later value stays"}));
                            continue;
                        }
                        let prior = history[..index]
                            .iter()
                            .rev()
                            .find_map(|earlier| match &earlier.event {
                                CustomerEvent::CustomFieldsSet(earlier) => earlier.values.get(key).cloned(),
                                _ => None,
                            })
                            .unwrap_or(Value::Null);
                        restored
                            .push(json!({"customer_id": customer_id, "field": format!("cf.{key}"), "value": prior}));
                        custom.insert(key.clone(), prior);
                    }
                }
                CustomerEvent::StakeholderAdded(added) => {
                    let touched = later(stored.sequence).any(|next| match &next.event {
                        CustomerEvent::StakeholderUpdated(u) => u.stakeholder_id == added.stakeholder_id,
                        CustomerEvent::StakeholderRemoved(r) => r.stakeholder_id == added.stakeholder_id,
                        _ => false,
                    });
                    if touched {
                        kept.push(
                            json!({"customer_id": customer_id, "field": "stakeholder", "id": added.stakeholder_id,
                            "reason": "changed after the import; it stays"}),
                        );
                    } else {
                        retracted.entry("stakeholders").and_modify(|count| *count += 1);
                        commands.push(CustomerCommand::RemoveStakeholder(RemoveStakeholder {
                            stakeholder_id: added.stakeholder_id,
                            reason: UNDO.into(),
                        }));
                    }
                }
                CustomerEvent::ActivityLogged(logged) => {
                    let touched = later(stored.sequence).any(|next| match &next.event {
                        CustomerEvent::ActivityCorrected(c) => c.activity_id == logged.activity_id,
                        CustomerEvent::ActivityRetracted(r) => r.activity_id == logged.activity_id,
                        _ => false,
                    });
                    if touched {
                        kept.push(
                            json!({"customer_id": customer_id, "field": "activity", "id": logged.activity_id,
                            "reason": "corrected or retracted after the import; that stays"}),
                        );
                    } else {
                        retracted.entry("activities").and_modify(|count| *count += 1);
                        commands.push(CustomerCommand::RetractActivity(RetractActivity {
                            activity_id: logged.activity_id,
                            reason: UNDO.into(),
                        }));
                    }
                }
                CustomerEvent::HealthScoreRecorded(_) => {
                    retracted.entry("health_scores").and_modify(|count| *count += 1);
                    commands.push(CustomerCommand::RetractHealthScore(RetractHealthScore {
                        sequence: stored.sequence,
                        reason: UNDO.into(),
                    }));
                }
                _ => {}
            }
        }
        if update != UpdateProfile::default() {
            commands.insert(0, CustomerCommand::UpdateProfile(update));
        }
        if !custom.is_empty() {
            commands.push(CustomerCommand::SetCustomFields(SetCustomFields {
                values: custom,
                definitions: std::sync::Arc::new(
                    events::service::read_models::custom_field_definitions(pool, None)
                        .await
                        .map_err(|error| ApiError::from(ExecuteError::from_database(&error)))?,
                ),
                role: Some(principal.role),
            }));
        }
        decide_all(batch, &stream, commands, principal, metadata).await?;
    }
    Ok(json!({"retracted": retracted, "restored": restored, "kept": kept}))
}

async fn decide_all(
    batch: &mut Batch<'_, Customer>,
    stream: &str,
    commands: Vec<CustomerCommand>,
    principal: &Principal,
    metadata: &HashMap<String, String>,
) -> Result<(), ApiError> {
    for command in commands {
        match batch.decide(stream, false, command, Some(principal), metadata).await {
            Ok(_) => {}
            // A restore that changes nothing (the value is already back) needs no event.
            Err(ExecuteError::Rejected(crate::domain::CommandError::Invalid { code: "no_change", .. })) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}
