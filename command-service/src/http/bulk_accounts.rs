//! Bulk account actions from the customer list's selection (docs/DOMAIN.md, "Bulk account
//! actions"): record a health score with a reason, hand the accounts to a CSM with a reason,
//! assign or unassign a partner; up to 1,000 accounts, all or nothing, each account's events as
//! its own command would append them. The preview decides every command the same way and
//! appends nothing: what each account has now, what it would have, and whether it changes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use events::customer::HealthSource;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{CommandContext, JsonBody};
use super::{Answer, AppState};
use crate::domain::customer::{
    AssignCsm, AssignPartner, CustomerCommand, RecordHealthScore, SetCustomFields, TagCustomer, UnassignPartner,
    UntagCustomer,
};
use crate::domain::CommandError;
use crate::store::ExecuteError;
use events::fields::Definitions;
use events::metadata::Role;

/// Accounts and what to do to every one of them.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkAccounts {
    /// 1 to 1,000 distinct customers.
    #[schemars(length(min = 1, max = 1000), extend("uniqueItems" = true))]
    pub customer_ids: Vec<Uuid>,
    pub action: AccountAction,
}

/// One of: record a manual health score with its reason; hand every account to a CSM; assign a
/// partner organisation; unassign one; set a custom field; add or remove a tag; start a playbook.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AccountAction {
    RecordHealth {
        #[schemars(range(min = 0, max = 100))]
        score: f64,
        #[schemars(length(min = 1, max = 1000), pattern(crate::domain::VISIBLE))]
        reason: String,
    },
    AssignCsm {
        csm_id: Uuid,
        #[schemars(length(min = 1, max = 1000), pattern(crate::domain::VISIBLE))]
        reason: String,
    },
    AssignPartner {
        partner_id: Uuid,
    },
    UnassignPartner {
        partner_id: Uuid,
        #[schemars(length(min = 1, max = 1000), pattern(crate::domain::VISIBLE))]
        reason: String,
    },
    /// Set one custom field (`null` clears it), as its own bulk edit does (docs/DOMAIN.md section 9).
    SetCustomField {
        #[schemars(length(min = 1, max = 64))]
        key: String,
        #[schemars(with = "crate::domain::FieldValue")]
        value: Value,
    },
    /// Put a tag on every account (those with it already are left out).
    AddTag {
        #[schemars(length(min = 1, max = 40), pattern(crate::domain::ONE_LINE))]
        tag: String,
    },
    /// Take a tag off every account (those without it are left out).
    RemoveTag {
        #[schemars(length(min = 1, max = 40), pattern(crate::domain::ONE_LINE))]
        tag: String,
        #[serde(default)]
        #[schemars(length(max = 1000))]
        reason: String,
    },
    /// Start a playbook on every account without a run of it open (docs/DOMAIN.md section 17).
    StartPlaybook {
        playbook_id: Uuid,
        #[schemars(length(min = 1, max = 1000), pattern(crate::domain::VISIBLE))]
        reason: String,
    },
}

impl AccountAction {
    /// The customer command of the action (none for a playbook's start, which is a run's), as
    /// `role` issues it, under the custom-field definitions in force.
    fn command(&self, definitions: &std::sync::Arc<Definitions>, role: Role) -> CustomerCommand {
        match self.clone() {
            AccountAction::RecordHealth { score, reason } => CustomerCommand::RecordHealthScore(RecordHealthScore {
                score,
                source: HealthSource::Manual,
                reason: Some(reason),
                risk_factors: Vec::new(),
                measured_at: None,
            }),
            AccountAction::AssignCsm { csm_id, reason } => CustomerCommand::AssignCsm(AssignCsm {
                csm_id,
                reason,
                occurred_at: None,
            }),
            AccountAction::AssignPartner { partner_id } => CustomerCommand::AssignPartner(AssignPartner { partner_id }),
            AccountAction::UnassignPartner { partner_id, reason } => {
                CustomerCommand::UnassignPartner(UnassignPartner { partner_id, reason })
            }
            AccountAction::SetCustomField { key, value } => CustomerCommand::SetCustomFields(SetCustomFields {
                values: std::collections::BTreeMap::from([(key, value)]),
                definitions: definitions.clone(),
                role: Some(role),
            }),
            AccountAction::AddTag { tag } => CustomerCommand::TagCustomer(TagCustomer { tag }),
            AccountAction::RemoveTag { tag, reason } => CustomerCommand::UntagCustomer(UntagCustomer { tag, reason }),
            AccountAction::StartPlaybook { .. } => unreachable!("a playbook's start is not a customer command"),
        }
    }
}

/// Refusals that mean "this account already has it": left out, not failed.
fn unchanged(rejection: &CommandError) -> bool {
    matches!(
        rejection,
        CommandError::Invalid {
            code: "csm_unchanged",
            ..
        } | CommandError::Conflict {
            code: "partner_already_assigned",
            ..
        } | CommandError::NotFound {
            entity: "partner assignment"
        } | CommandError::Invalid { code: "no_change", .. }
            | CommandError::Conflict {
                code: "tag_present" | "tag_absent",
                ..
            }
    )
}

/// What each account has now of what the action sets, in words, with its name.
async fn before(
    app: &super::Handlers,
    ids: &[Uuid],
    action: &AccountAction,
) -> Result<Vec<(Uuid, String, String)>, ApiError> {
    let playbook_sql;
    let sql = match action {
        AccountAction::RecordHealth { .. } => {
            "SELECT p.customer_id, p.name, coalesce((SELECT h.score::text FROM health_points h WHERE h.customer_id = p.customer_id
                                                      ORDER BY h.measured_at DESC, h.sequence DESC LIMIT 1), 'no score')
               FROM customer_profiles p WHERE p.customer_id = ANY ($1)"
        }
        AccountAction::AssignCsm { .. } => {
            "SELECT p.customer_id, p.name, coalesce((SELECT d.name FROM csm_directory d WHERE d.csm_id = p.csm_id), 'no CSM')
               FROM customer_profiles p WHERE p.customer_id = ANY ($1)"
        }
        AccountAction::AddTag { .. } | AccountAction::RemoveTag { .. } => {
            "SELECT p.customer_id, p.name, coalesce(nullif(array_to_string(p.tags, ', '), ''), 'no tags')
               FROM customer_profiles p WHERE p.customer_id = ANY ($1)"
        }
        AccountAction::SetCustomField { .. } => {
            "SELECT p.customer_id, p.name, coalesce(p.custom_fields->>$2, 'empty')
               FROM customer_profiles p WHERE p.customer_id = ANY ($1)"
        }
        AccountAction::StartPlaybook { playbook_id, .. } => {
            // A UUID's text is safe to put in the statement.
            playbook_sql = format!(
                "SELECT p.customer_id, p.name,
                        CASE WHEN EXISTS (SELECT 1 FROM events s
                                           WHERE s.aggregate_type = 'PlaybookRun' AND s.sequence = 1
                                             AND s.payload->'PlaybookRunStarted'->>'customer_id' = p.customer_id::text
                                             AND s.payload->'PlaybookRunStarted'->>'playbook_id' = '{playbook_id}'
                                             AND NOT EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = 'PlaybookRun'
                                                               AND e.aggregate_id = s.aggregate_id AND e.event_type = 'PlaybookRunEnded'))
                             THEN 'a run open' ELSE 'no run open' END
                   FROM customer_profiles p WHERE p.customer_id = ANY ($1)"
            );
            playbook_sql.as_str()
        }
        AccountAction::AssignPartner { .. } | AccountAction::UnassignPartner { .. } => {
            "SELECT p.customer_id, p.name,
                    coalesce((SELECT string_agg(d.name, ', ' ORDER BY d.name) FROM customer_partners cp
                               JOIN partner_directory d ON d.partner_id = cp.partner_id WHERE cp.customer_id = p.customer_id), 'no partner')
               FROM customer_profiles p WHERE p.customer_id = ANY ($1)"
        }
    };
    let key = match action {
        AccountAction::SetCustomField { key, .. } => key.clone(),
        _ => String::new(),
    };
    let query = sqlx::query_as(sql).bind(ids);
    let query = if sql.contains("$2") { query.bind(key) } else { query };
    query
        .fetch_all(&app.pool)
        .await
        .map_err(|error| ExecuteError::from_database(&error).into())
}

/// What the action sets, in words.
async fn after(app: &super::Handlers, action: &AccountAction) -> Result<String, ApiError> {
    let name = |sql: &'static str, id: Uuid| async move {
        sqlx::query_scalar::<_, String>(sql)
            .bind(id)
            .fetch_optional(&app.pool)
            .await
            .map_err(|error| ApiError::from(ExecuteError::from_database(&error)))
    };
    Ok(match action {
        AccountAction::RecordHealth { score, .. } => format!("{score}"),
        AccountAction::AssignCsm { csm_id, .. } => name("SELECT name FROM csm_directory WHERE csm_id = $1", *csm_id)
            .await?
            .unwrap_or_else(|| "an unknown CSM".into()),
        AccountAction::AssignPartner { partner_id } => format!(
            "with {}",
            name("SELECT name FROM partner_directory WHERE partner_id = $1", *partner_id)
                .await?
                .unwrap_or_else(|| "an unknown partner".into())
        ),
        AccountAction::UnassignPartner { partner_id, .. } => format!(
            "without {}",
            name("SELECT name FROM partner_directory WHERE partner_id = $1", *partner_id)
                .await?
                .unwrap_or_else(|| "an unknown partner".into())
        ),
        AccountAction::AddTag { tag } => format!("with {}", tag.trim()),
        AccountAction::RemoveTag { tag, .. } => format!("without {}", tag.trim()),
        AccountAction::SetCustomField { value, .. } => match value {
            Value::Null => "empty".into(),
            Value::String(text) => text.clone(),
            other => other.to_string(),
        },
        AccountAction::StartPlaybook { playbook_id, .. } => {
            let playbooks = super::playbooks::playbooks(&app.pool)
                .await
                .map_err(|error| ApiError::from(ExecuteError::from_database(&error)))?;
            match playbooks.iter().find(|p| p.playbook_id == *playbook_id && !p.retired) {
                Some(p) => format!("a run of {}", p.name),
                None => "an unknown playbook".into(),
            }
        }
    })
}

/// `POST /api/v1/customers/bulk/preview`: every account's command decided, nothing appended.
pub async fn preview(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(body): JsonBody<BulkAccounts>,
) -> Answer {
    super::bulk::check_ids(&body.customer_ids, "customer_ids")?;
    let changes = match &body.action {
        AccountAction::StartPlaybook { playbook_id, reason } => {
            super::playbooks::start_on_many(&app, &context, &body.customer_ids, *playbook_id, reason, false).await?
        }
        action => {
            let definitions = super::fields::definitions(&app).await?;
            let role = context.principal.role;
            let commands: Vec<(Uuid, CustomerCommand)> = body
                .customer_ids
                .iter()
                .map(|id| (*id, action.command(&definitions, role)))
                .collect();
            super::bulk::decide_each(&app, &context, &commands, "customer_ids", unchanged).await?
        }
    };
    let now: std::collections::HashMap<Uuid, (String, String)> = before(&app, &body.customer_ids, &body.action)
        .await?
        .into_iter()
        .map(|(id, name, value)| (id, (name, value)))
        .collect();
    let to = after(&app, &body.action).await?;
    let rows: Vec<Value> = body
        .customer_ids
        .iter()
        .zip(&changes)
        .map(|(id, changes)| {
            let (name, value) = now.get(id).cloned().unwrap_or_default();
            json!({"customer_id": id, "name": name, "before": value, "after": to, "changes": changes})
        })
        .collect();
    let changing = changes.iter().filter(|c| **c).count();
    Ok((
        StatusCode::OK,
        Json(
            json!({"customers": rows.len(), "changing": changing, "unchanged": rows.len() - changing, "accounts": rows}),
        ),
    ))
}

/// `POST /api/v1/customers/bulk`: all the accounts' commands in one append, or none.
pub async fn apply(
    State(app): State<AppState>,
    context: CommandContext,
    JsonBody(body): JsonBody<BulkAccounts>,
) -> Answer {
    let changed = match &body.action {
        AccountAction::StartPlaybook { playbook_id, reason } => {
            super::bulk::check_ids(&body.customer_ids, "customer_ids")?;
            let changes =
                super::playbooks::start_on_many(&app, &context, &body.customer_ids, *playbook_id, reason, true).await?;
            changes.iter().filter(|c| **c).count()
        }
        action => {
            let definitions = super::fields::definitions(&app).await?;
            let role = context.principal.role;
            let command = |_| action.command(&definitions, role);
            super::bulk::on_customers(&app, &context, &body.customer_ids, command, unchanged).await?
        }
    };
    Ok((
        StatusCode::OK,
        Json(json!({"customers": body.customer_ids.len(), "changed": changed})),
    ))
}
