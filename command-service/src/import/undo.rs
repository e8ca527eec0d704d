//! Undoing an import at any age (docs/IMPORTS.md): for each event the import appended, the
//! compensating command, unless a later event on the same stream changed the same thing, in
//! which case the later work is kept and listed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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
    /// The import that appended it (its rows, or its undo).
    import: Option<String>,
    /// Appended by an import's undo.
    undo: bool,
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

/// The stakeholder fields an update sets.
fn person_fields(update: &events::customer::StakeholderUpdated) -> Vec<&'static str> {
    [
        ("name", update.name.is_some()),
        ("role", update.role.is_some()),
        ("level", update.level.is_some()),
        ("email", update.email.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(field, _)| field)
    .collect()
}

/// A stakeholder as the events `counted` make it (`None` before it is added).
fn person(
    history: &[Stored],
    id: Uuid,
    counted: impl Fn(&Stored) -> bool,
) -> Option<events::customer::StakeholderAdded> {
    let mut person: Option<events::customer::StakeholderAdded> = None;
    for stored in history.iter().filter(|stored| counted(stored)) {
        match &stored.event {
            CustomerEvent::StakeholderAdded(added) if added.stakeholder_id == id => person = Some(added.clone()),
            CustomerEvent::StakeholderUpdated(updated) if updated.stakeholder_id == id => {
                if let Some(person) = person.as_mut() {
                    if let Some(name) = &updated.name {
                        person.name.clone_from(name);
                    }
                    if let Some(role) = &updated.role {
                        person.role.clone_from(role);
                    }
                    person.level = updated.level.unwrap_or(person.level);
                    if updated.email.is_some() {
                        person.email.clone_from(&updated.email);
                    }
                }
            }
            _ => {}
        }
    }
    person
}

/// A profile field's value, as the undo's answer shows it.
fn value_of(profile: &Profile, field: &str) -> Value {
    match field {
        "name" => json!(profile.name),
        "salesforce_id" => json!(profile.salesforce_id),
        "tier" => json!(profile.tier),
        "arr" => json!(profile.arr.to_string()),
        "industry" => json!(profile.industry),
        "account_manager" => json!(profile.account_manager),
        "products_owned" => json!(profile.products_owned),
        "contract_start" => json!(profile.contract_start),
        "renewal_date" => json!(profile.renewal_date),
        _ => json!(profile.csm_id),
    }
}

/// Decides the undo of `import_id` into `batch`; answers what it retracts, restores and keeps.
///
/// What an undone import did, and what its undo appended, is treated as never having happened
/// (docs/DOMAIN.md, section 10): a later change counts against this undo only if it *stands*,
/// that is, it was neither appended by an undone import (this one included) nor by an undo. So
/// undoing a move-in made of several imports returns every stream to its state before them,
/// whatever the order of the undos: on each stream this import touched, what an earlier undo
/// had to keep only because of this import's rows is compensated now too.
pub async fn decide(
    pool: &PgPool,
    import_id: Uuid,
    batch: &mut Batch<'_, Customer>,
    principal: &Principal,
    metadata: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let database = |error: sqlx::Error| ApiError::from(ExecuteError::from_database(&error));
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events
          WHERE aggregate_type = 'Customer' AND metadata ->> 'import_id' = $1 AND NOT metadata ? 'import_undo'
          ORDER BY aggregate_id",
    )
    .bind(import_id.to_string())
    .fetch_all(pool)
    .await
    .map_err(database)?;
    let mut undone: HashSet<String> = sqlx::query_scalar("SELECT import_id::text FROM imports WHERE status = 'undone'")
        .fetch_all(pool)
        .await
        .map_err(database)?
        .into_iter()
        .collect();
    let this = import_id.to_string();
    undone.insert(this.clone());
    let mut retracted = BTreeMap::from([
        ("customers", 0),
        ("stakeholders", 0),
        ("activities", 0),
        ("health_scores", 0),
    ]);
    let mut restored = Vec::new();
    let mut kept = Vec::new();
    for stream in streams {
        let rows: Vec<(i64, Value, Option<String>, bool)> = sqlx::query_as(
            "SELECT sequence, payload, metadata ->> 'import_id', metadata ? 'import_undo' FROM events
              WHERE aggregate_type = 'Customer' AND aggregate_id = $1 ORDER BY sequence",
        )
        .bind(&stream)
        .fetch_all(pool)
        .await
        .map_err(database)?;
        let history: Vec<Stored> = rows
            .into_iter()
            .filter_map(|(sequence, payload, import, undo)| {
                let event = serde_json::from_value::<CustomerEvent>(payload).ok()?;
                Some(Stored {
                    sequence,
                    event,
                    import,
                    undo,
                })
            })
            .collect();
        if history
            .iter()
            .any(|stored| matches!(stored.event, CustomerEvent::CustomerRetracted(_)))
        {
            continue;
        }
        let customer_id = Uuid::parse_str(&stream).unwrap_or_default();
        let of_undone = |stored: &Stored| stored.import.as_ref().is_some_and(|import| undone.contains(import));
        let stands = |stored: &Stored| !stored.undo && !of_undone(stored);
        let ours = |stored: &Stored| stored.import.as_deref() == Some(this.as_str()) && !stored.undo;
        // What an undone import appended that no undo has compensated yet.
        let pending = |stored: &&Stored| of_undone(stored) && !stored.undo;
        let later_standing = |sequence: i64| {
            history
                .iter()
                .filter(move |stored| stored.sequence > sequence && stands(stored))
        };

        if let Some(onboarded) = history
            .iter()
            .find(|stored| matches!(stored.event, CustomerEvent::CustomerOnboarded(_)))
            .filter(pending)
        {
            if later_standing(onboarded.sequence).next().is_some() {
                if ours(onboarded) {
                    kept.push(json!({"customer_id": customer_id, "field": "customer",
                        "reason": "the customer was changed after the import; it stays"}));
                }
            } else {
                let retract = CustomerCommand::RetractCustomer(RetractCustomer { reason: UNDO.into() });
                match batch.decide(&stream, false, retract, Some(principal), metadata).await {
                    Ok(_) => {
                        retracted.entry("customers").and_modify(|count| *count += 1);
                        continue;
                    }
                    // An earlier undo's customer, which this user may not retract: it stays.
                    Err(ExecuteError::Rejected(crate::domain::CommandError::Forbidden { message }))
                        if !ours(onboarded) =>
                    {
                        kept.push(json!({"customer_id": customer_id, "field": "customer", "reason": message}));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }

        let mut commands: Vec<CustomerCommand> = Vec::new();
        // Profile fields and CSM: each field an undone import set is set to what the standing
        // events make it, where that differs from what it is now.
        let (mut now, mut wanted) = (Profile::default(), Profile::default());
        let mut fields: Vec<&'static str> = Vec::new();
        for stored in &history {
            now.apply(&stored.event);
            let onboarding = matches!(stored.event, CustomerEvent::CustomerOnboarded(_));
            if stands(stored) || onboarding {
                wanted.apply(&stored.event);
            } else if pending(&stored) {
                for field in profile_fields(&stored.event) {
                    if !fields.contains(&field) {
                        fields.push(field);
                    }
                    let overtaken =
                        later_standing(stored.sequence).any(|next| profile_fields(&next.event).contains(&field));
                    if ours(stored) && overtaken {
                        kept.push(json!({"customer_id": customer_id, "field": field,
                            "reason": "changed again after the import; the later value stays"}));
                    }
                }
            }
        }
        let mut update = UpdateProfile::default();
        for field in fields {
            if value_of(&now, field) == value_of(&wanted, field) {
                continue;
            }
            if field == "csm" {
                if let Some(previous) = wanted.csm_id {
                    commands.push(CustomerCommand::AssignCsm(AssignCsm {
                        csm_id: previous,
                        reason: UNDO.into(),
                        occurred_at: None,
                    }));
                    restored.push(json!({"customer_id": customer_id, "field": "csm", "value": previous}));
                }
            } else {
                let value = restore(&mut update, field, &wanted);
                restored.push(json!({"customer_id": customer_id, "field": field, "value": value}));
            }
        }
        if update != UpdateProfile::default() {
            commands.insert(0, CustomerCommand::UpdateProfile(update));
        }

        // Custom fields, the same way, key by key.
        let (mut values_now, mut values_wanted) = (BTreeMap::<String, Value>::new(), BTreeMap::<String, Value>::new());
        let mut keys: Vec<String> = Vec::new();
        for stored in &history {
            let CustomerEvent::CustomFieldsSet(set) = &stored.event else {
                continue;
            };
            values_now.extend(set.values.clone());
            if stands(stored) {
                values_wanted.extend(set.values.clone());
            } else if pending(&stored) {
                for key in set.values.keys() {
                    if !keys.contains(key) {
                        keys.push(key.clone());
                    }
                    let overtaken = later_standing(stored.sequence).any(|next| {
                        matches!(&next.event, CustomerEvent::CustomFieldsSet(next) if next.values.contains_key(key))
                    });
                    if ours(stored) && overtaken {
                        kept.push(json!({"customer_id": customer_id, "field": format!("cf.{key}"),
                            "reason": "changed again after the import; the later value stays"}));
                    }
                }
            }
        }
        let mut custom: BTreeMap<String, Value> = BTreeMap::new();
        for key in keys {
            let wanted = values_wanted.get(&key).cloned().unwrap_or(Value::Null);
            if values_now.get(&key).cloned().unwrap_or(Value::Null) != wanted {
                restored.push(json!({"customer_id": customer_id, "field": format!("cf.{key}"), "value": wanted}));
                custom.insert(key, wanted);
            }
        }

        // Stakeholders an undone import updated: each field it set goes back to what the
        // standing events make it (a connector's or a person's later change stays).
        let mut touched: BTreeMap<Uuid, BTreeSet<&'static str>> = BTreeMap::new();
        for stored in history.iter().filter(pending) {
            if let CustomerEvent::StakeholderUpdated(updated) = &stored.event {
                let fields = touched.entry(updated.stakeholder_id).or_default();
                fields.extend(person_fields(updated));
                if ours(stored) {
                    for field in person_fields(updated) {
                        let overtaken = later_standing(stored.sequence).any(|next| {
                            matches!(&next.event, CustomerEvent::StakeholderUpdated(next)
                                if next.stakeholder_id == updated.stakeholder_id && person_fields(next).contains(&field))
                        });
                        if overtaken {
                            kept.push(json!({"customer_id": customer_id, "field": format!("stakeholder.{field}"),
                                "id": updated.stakeholder_id, "reason": "changed again after the import; the later value stays"}));
                        }
                    }
                }
            }
        }
        for (id, fields) in touched {
            let (Some(now), Some(wanted)) = (person(&history, id, |_| true), person(&history, id, stands)) else {
                continue;
            };
            let mut update = UpdateStakeholder {
                stakeholder_id: id,
                name: None,
                role: None,
                level: None,
                email: None,
            };
            for field in fields {
                match field {
                    "name" if now.name != wanted.name => update.name = Some(wanted.name.clone()),
                    "role" if now.role != wanted.role => update.role = Some(wanted.role.clone()),
                    "level" if now.level != wanted.level => update.level = Some(wanted.level),
                    "email" if now.email != wanted.email => update.email.clone_from(&wanted.email),
                    _ => continue,
                }
                restored.push(
                    json!({"customer_id": customer_id, "field": format!("stakeholder.{field}"), "id": id,
                    "value": match field { "name" => json!(wanted.name), "role" => json!(wanted.role),
                        "level" => json!(wanted.level), _ => json!(wanted.email) }}),
                );
            }
            if update.name.is_some() || update.role.is_some() || update.level.is_some() || update.email.is_some() {
                commands.push(CustomerCommand::UpdateStakeholder(update));
            }
        }

        // What undone imports added: stakeholders, activities and health scores, each retracted
        // unless someone retracted it already or a standing change was made to it since.
        for stored in history.iter().filter(pending) {
            match &stored.event {
                CustomerEvent::StakeholderAdded(added) => {
                    let id = added.stakeholder_id;
                    let removed = history.iter().any(
                        |next| matches!(&next.event, CustomerEvent::StakeholderRemoved(r) if r.stakeholder_id == id),
                    );
                    let changed = later_standing(stored.sequence).any(
                        |next| matches!(&next.event, CustomerEvent::StakeholderUpdated(u) if u.stakeholder_id == id),
                    );
                    if removed || changed {
                        if ours(stored) {
                            kept.push(json!({"customer_id": customer_id, "field": "stakeholder", "id": id,
                                "reason": "changed after the import; it stays"}));
                        }
                    } else {
                        retracted.entry("stakeholders").and_modify(|count| *count += 1);
                        commands.push(CustomerCommand::RemoveStakeholder(RemoveStakeholder {
                            stakeholder_id: id,
                            reason: UNDO.into(),
                        }));
                    }
                }
                CustomerEvent::ActivityLogged(logged) => {
                    let id = logged.activity_id;
                    let retracted_already = history
                        .iter()
                        .any(|next| matches!(&next.event, CustomerEvent::ActivityRetracted(r) if r.activity_id == id));
                    let corrected = later_standing(stored.sequence)
                        .any(|next| matches!(&next.event, CustomerEvent::ActivityCorrected(c) if c.activity_id == id));
                    if retracted_already || corrected {
                        if ours(stored) {
                            kept.push(json!({"customer_id": customer_id, "field": "activity", "id": id,
                                "reason": "corrected or retracted after the import; that stays"}));
                        }
                    } else {
                        retracted.entry("activities").and_modify(|count| *count += 1);
                        commands.push(CustomerCommand::RetractActivity(RetractActivity {
                            activity_id: id,
                            reason: UNDO.into(),
                        }));
                    }
                }
                CustomerEvent::HealthScoreRecorded(_) => {
                    let retracted_already = history.iter().any(|next| {
                        matches!(&next.event, CustomerEvent::HealthScoreRetracted(r) if r.sequence == stored.sequence)
                    });
                    if !retracted_already {
                        retracted.entry("health_scores").and_modify(|count| *count += 1);
                        commands.push(CustomerCommand::RetractHealthScore(RetractHealthScore {
                            sequence: stored.sequence,
                            reason: UNDO.into(),
                        }));
                    }
                }
                _ => {}
            }
        }
        if !custom.is_empty() {
            commands.push(CustomerCommand::SetCustomFields(SetCustomFields {
                values: custom,
                definitions: std::sync::Arc::new(
                    events::service::read_models::custom_field_definitions(pool, None)
                        .await
                        .map_err(database)?,
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
