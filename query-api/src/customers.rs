//! Customers for front-end clients: one customer's 360 view, the portfolio list, tasks, partner
//! reports, the renewal pipeline and the executive summary. Nested fields of a customer load
//! through per-request DataLoaders, so a list of customers costs a fixed number of statements.

use std::collections::HashMap;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ComplexObject, Context, Enum, InputObject, Result, SimpleObject};
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use events::coverage::{round1, HealthColour as Colour};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::scalars::{HealthColour, Tier};
use crate::schema::coded_error;

pub type Loaders = DataLoader<Store>;

/// Batch loads of customer facts by customer id (or CSM id).
pub struct Store(pub PgPool);

fn failed(error: sqlx::Error) -> String {
    tracing::error!(%error, "read model query failed");
    "the read models are unavailable".to_owned()
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct Csm {
    pub csm_id: Uuid,
    pub name: String,
    pub email: String,
    pub team: String,
    pub monthly_capacity_hours: i32,
}

/// A partner organisation assigned to a customer.
#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct AssignedPartner {
    pub partner_id: Uuid,
    /// None until the partner directory has the organisation.
    pub name: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct Stakeholder {
    #[graphql(skip)]
    pub customer_id: Uuid,
    pub stakeholder_id: Uuid,
    pub name: String,
    pub role: String,
    /// executive, champion or user.
    pub level: String,
    pub email: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct CurrentHealth {
    #[graphql(skip)]
    pub customer_id: Uuid,
    pub score: f64,
    pub source: String,
    pub measured_at: DateTime<Utc>,
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct UseCase {
    #[graphql(skip)]
    pub customer_id: Uuid,
    pub use_case: String,
    /// not_started, in_progress, implemented or optimized.
    pub status: String,
    pub notes: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct NpsResponse {
    #[graphql(skip)]
    pub customer_id: Uuid,
    pub score: i16,
    pub stakeholder_id: Option<Uuid>,
    pub comment: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct AdoptionChange {
    #[graphql(skip)]
    pub customer_id: Uuid,
    pub summary: String,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: String,
}

/// Keys of the batch loads: which facts, of which customer (or CSM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CsmKey(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StakeholdersOf(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HealthOf(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UseCasesOf(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NpsOf(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartnersOf(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdoptionOf(pub Uuid);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NextTouchOf(pub Uuid);
/// A customer and a user: pinned to that user's focus or not.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PinnedBy(pub Uuid, pub String);

impl Loader<PinnedBy> for Store {
    type Value = bool;
    type Error = String;

    async fn load(&self, keys: &[PinnedBy]) -> Result<HashMap<PinnedBy, bool>, String> {
        let customers: Vec<Uuid> = keys.iter().map(|key| key.0).collect();
        let users: Vec<String> = keys.iter().map(|key| key.1.clone()).collect();
        let pinned: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT customer_id, user_id FROM focus_pins
              WHERE (customer_id, user_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))",
        )
        .bind(customers)
        .bind(users)
        .fetch_all(&self.0)
        .await
        .map_err(failed)?;
        Ok(keys
            .iter()
            .map(|key| (key.clone(), pinned.iter().any(|(c, u)| *c == key.0 && *u == key.1)))
            .collect())
    }
}

impl Loader<NextTouchOf> for Store {
    type Value = crate::next_touch::NextTouch;
    type Error = String;

    /// Under the rules in force, as of today.
    async fn load(&self, keys: &[NextTouchOf]) -> Result<HashMap<NextTouchOf, Self::Value>, String> {
        let rules = events::service::read_models::current_rules(&self.0)
            .await
            .map_err(failed)?;
        let touches = crate::next_touch::of(&self.0, &ids(keys, |key| key.0), Utc::now().date_naive(), &rules)
            .await
            .map_err(failed)?;
        Ok(touches
            .into_iter()
            .map(|(id, touch)| (NextTouchOf(id), touch))
            .collect())
    }
}

fn ids<K: Copy>(keys: &[K], id: impl Fn(K) -> Uuid) -> Vec<Uuid> {
    keys.iter().map(|key| id(*key)).collect()
}

fn group<T, K: Eq + std::hash::Hash + Copy>(keys: &[K], rows: Vec<T>, key: impl Fn(&T) -> K) -> HashMap<K, Vec<T>> {
    let mut grouped: HashMap<K, Vec<T>> = keys.iter().map(|key| (*key, Vec::new())).collect();
    for row in rows {
        grouped.entry(key(&row)).or_default().push(row);
    }
    grouped
}

impl Loader<CsmKey> for Store {
    type Value = Csm;
    type Error = String;

    async fn load(&self, keys: &[CsmKey]) -> Result<HashMap<CsmKey, Csm>, String> {
        let rows: Vec<Csm> = sqlx::query_as(
            "SELECT csm_id, name, email, team, monthly_capacity_hours FROM csm_directory WHERE csm_id = ANY ($1)",
        )
        .bind(ids(keys, |key| key.0))
        .fetch_all(&self.0)
        .await
        .map_err(failed)?;
        Ok(rows.into_iter().map(|csm| (CsmKey(csm.csm_id), csm)).collect())
    }
}

impl Loader<StakeholdersOf> for Store {
    type Value = Vec<Stakeholder>;
    type Error = String;

    async fn load(&self, keys: &[StakeholdersOf]) -> Result<HashMap<StakeholdersOf, Vec<Stakeholder>>, String> {
        let rows: Vec<Stakeholder> = sqlx::query_as(
            "SELECT customer_id, stakeholder_id, name, role, level, email FROM customer_stakeholders
              WHERE customer_id = ANY ($1) AND NOT removed ORDER BY name, stakeholder_id",
        )
        .bind(ids(keys, |key| key.0))
        .fetch_all(&self.0)
        .await
        .map_err(failed)?;
        Ok(group(keys, rows, |row| StakeholdersOf(row.customer_id)))
    }
}

impl Loader<HealthOf> for Store {
    type Value = CurrentHealth;
    type Error = String;

    async fn load(&self, keys: &[HealthOf]) -> Result<HashMap<HealthOf, CurrentHealth>, String> {
        let rows: Vec<CurrentHealth> = sqlx::query_as(
            "SELECT DISTINCT ON (customer_id) customer_id, score, source, measured_at FROM health_points
              WHERE customer_id = ANY ($1) ORDER BY customer_id, measured_at DESC, sequence DESC",
        )
        .bind(ids(keys, |key| key.0))
        .fetch_all(&self.0)
        .await
        .map_err(failed)?;
        Ok(rows.into_iter().map(|row| (HealthOf(row.customer_id), row)).collect())
    }
}

impl Loader<UseCasesOf> for Store {
    type Value = Vec<UseCase>;
    type Error = String;

    async fn load(&self, keys: &[UseCasesOf]) -> Result<HashMap<UseCasesOf, Vec<UseCase>>, String> {
        let rows: Vec<UseCase> = sqlx::query_as(
            "SELECT customer_id, use_case, status, notes, updated_at FROM customer_use_cases
              WHERE customer_id = ANY ($1) ORDER BY use_case",
        )
        .bind(ids(keys, |key| key.0))
        .fetch_all(&self.0)
        .await
        .map_err(failed)?;
        Ok(group(keys, rows, |row| UseCasesOf(row.customer_id)))
    }
}

impl Loader<NpsOf> for Store {
    type Value = Vec<NpsResponse>;
    type Error = String;

    async fn load(&self, keys: &[NpsOf]) -> Result<HashMap<NpsOf, Vec<NpsResponse>>, String> {
        let rows: Vec<NpsResponse> = sqlx::query_as(
            "SELECT customer_id, score, stakeholder_id, comment, occurred_at FROM nps_responses
              WHERE customer_id = ANY ($1) ORDER BY occurred_at DESC, sequence DESC",
        )
        .bind(ids(keys, |key| key.0))
        .fetch_all(&self.0)
        .await
        .map_err(failed)?;
        Ok(group(keys, rows, |row| NpsOf(row.customer_id)))
    }
}

impl Loader<PartnersOf> for Store {
    type Value = Vec<AssignedPartner>;
    type Error = String;

    async fn load(&self, keys: &[PartnersOf]) -> Result<HashMap<PartnersOf, Vec<AssignedPartner>>, String> {
        let rows: Vec<(Uuid, Uuid, Option<String>)> = sqlx::query_as(
            "SELECT cp.customer_id, cp.partner_id, d.name FROM customer_partners cp
               LEFT JOIN partner_directory d USING (partner_id)
              WHERE cp.customer_id = ANY ($1) ORDER BY cp.partner_id",
        )
        .bind(ids(keys, |key| key.0))
        .fetch_all(&self.0)
        .await
        .map_err(failed)?;
        let grouped = group(keys, rows, |row| PartnersOf(row.0));
        Ok(grouped
            .into_iter()
            .map(|(key, rows)| {
                let partners = rows
                    .into_iter()
                    .map(|(_, partner_id, name)| AssignedPartner { partner_id, name })
                    .collect();
                (key, partners)
            })
            .collect())
    }
}

impl Loader<AdoptionOf> for Store {
    type Value = Vec<AdoptionChange>;
    type Error = String;

    async fn load(&self, keys: &[AdoptionOf]) -> Result<HashMap<AdoptionOf, Vec<AdoptionChange>>, String> {
        let rows: Vec<AdoptionChange> = sqlx::query_as(
            "SELECT customer_id, summary, occurred_at, actor_id FROM adoption_changes
              WHERE customer_id = ANY ($1) ORDER BY occurred_at, sequence",
        )
        .bind(ids(keys, |key| key.0))
        .fetch_all(&self.0)
        .await
        .map_err(failed)?;
        Ok(group(keys, rows, |row| AdoptionOf(row.customer_id)))
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct UseCaseChecklist {
    pub items: Vec<UseCase>,
    pub total: usize,
    /// Implemented or optimized.
    pub done: usize,
    /// done / total in percent, one decimal.
    pub progress_pct: f64,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct NpsSummary {
    pub latest: Option<i16>,
    pub average: Option<f64>,
    pub responses: Vec<NpsResponse>,
}

/// A work item of a delivery tool linked to a customer.
#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct WorkItem {
    /// targetprocess.
    pub system: String,
    pub entity_id: i64,
    /// Null until the connector has read the item.
    pub name: Option<String>,
    /// UserStory, Bug, Feature, Request ...
    pub kind: Option<String>,
    /// The item's state in the tool (Open, In Progress, Done ...).
    pub state: Option<String>,
    pub modified_at: Option<DateTime<Utc>>,
    pub synced_at: Option<DateTime<Utc>>,
}

/// An upcoming meeting read from a calendar.
#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct ScheduledTouch {
    pub subject: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// outbound when the CSM organised it.
    pub direction: String,
    /// The connector that read it (microsoft365).
    pub source: String,
}

/// The fields a customer record must have for compliance: all present or the record is flagged.
#[derive(SimpleObject, Debug, Clone)]
pub struct Compliance {
    pub complete: bool,
    pub missing: Vec<String>,
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
#[graphql(complex)]
pub struct Customer {
    pub customer_id: Uuid,
    pub name: String,
    pub salesforce_id: String,
    #[graphql(skip)]
    pub tier_name: String,
    pub arr: Decimal,
    pub industry: String,
    pub account_manager: String,
    pub csm_id: Uuid,
    pub products_owned: Vec<String>,
    pub contract_start: NaiveDate,
    pub renewal_date: NaiveDate,
    pub onboarded_at: DateTime<Utc>,
    /// onboarding, implementing, adopted, optimizing or advocate.
    pub adoption_stage: Option<String>,
    pub churned_on: Option<NaiveDate>,
    pub churn_reason: Option<String>,
    #[graphql(skip)]
    pub custom_fields: sqlx::types::Json<std::collections::BTreeMap<String, serde_json::Value>>,
    #[graphql(skip)]
    pub tags: Vec<String>,
}

/// A customer at the end of a day (docs/DOMAIN.md section 1): the CSM, tier, ARR, renewal
/// date, health and custom-field values it had then, so a screen set to a past day shows that
/// day's facts throughout.
#[derive(SimpleObject, Debug, Clone)]
pub struct CustomerOnDay {
    pub as_of: crate::scalars::Date,
    pub tier: Option<Tier>,
    pub arr: Decimal,
    pub csm: Option<Csm>,
    pub renewal_date: crate::scalars::Date,
    /// Days from the day to the renewal date (negative once passed).
    pub days_until_renewal: i64,
    /// The latest score measured on or before the day.
    pub health: Option<CurrentHealth>,
    pub health_colour: Option<HealthColour>,
    /// The values set on or before the day that the caller may see, under the definitions in
    /// force.
    pub custom_fields: Vec<crate::custom_fields::CustomFieldValue>,
}

fn loaders<'a>(ctx: &'a Context<'_>) -> Result<&'a Loaders> {
    ctx.data::<Loaders>()
}

fn loader_error(error: String) -> async_graphql::Error {
    coded_error("UNAVAILABLE", error)
}

#[ComplexObject]
impl Customer {
    /// The tags on the customer, in the order they were put on (docs/DOMAIN.md section 16).
    /// The team's own labels: none for partners.
    async fn tags(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        Ok(
            if crate::access::access(ctx)?.principal.role == events::metadata::Role::Partner {
                Vec::new()
            } else {
                self.tags.clone()
            },
        )
    }

    async fn tier(&self) -> Option<Tier> {
        events::customer::Tier::parse(&self.tier_name).map(Into::into)
    }

    /// The custom fields the caller may see (docs/DOMAIN.md section 9), in definition order;
    /// fields hidden by their condition are left out.
    async fn custom_fields(&self, ctx: &Context<'_>) -> Result<Vec<crate::custom_fields::CustomFieldValue>> {
        let definitions = crate::custom_fields::in_force(ctx).await?;
        let role = crate::custom_fields::role(ctx)?;
        Ok(crate::custom_fields::visible_values(
            &definitions,
            &self.custom_fields.0,
            role,
        ))
    }

    async fn csm(&self, ctx: &Context<'_>) -> Result<Option<Csm>> {
        loaders(ctx)?.load_one(CsmKey(self.csm_id)).await.map_err(loader_error)
    }

    async fn partner_ids(&self, ctx: &Context<'_>) -> Result<Vec<Uuid>> {
        Ok(self
            .partners(ctx)
            .await?
            .into_iter()
            .map(|partner| partner.partner_id)
            .collect())
    }

    /// The partner organisations assigned to the customer, by name; a partner sees only its own.
    async fn partners(&self, ctx: &Context<'_>) -> Result<Vec<AssignedPartner>> {
        let mut partners = loaders(ctx)?
            .load_one(PartnersOf(self.customer_id))
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        let principal = &crate::access::access(ctx)?.principal;
        if principal.role == events::metadata::Role::Partner {
            partners.retain(|partner| Some(partner.partner_id) == principal.partner_id);
        }
        partners.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(partners)
    }

    async fn stakeholders(&self, ctx: &Context<'_>) -> Result<Vec<Stakeholder>> {
        Ok(loaders(ctx)?
            .load_one(StakeholdersOf(self.customer_id))
            .await
            .map_err(loader_error)?
            .unwrap_or_default())
    }

    /// The latest health score.
    async fn health(&self, ctx: &Context<'_>) -> Result<Option<CurrentHealth>> {
        loaders(ctx)?
            .load_one(HealthOf(self.customer_id))
            .await
            .map_err(loader_error)
    }

    async fn health_colour(&self, ctx: &Context<'_>) -> Result<Option<HealthColour>> {
        Ok(self.health(ctx).await?.map(|health| Colour::of(health.score).into()))
    }

    async fn adoption_history(&self, ctx: &Context<'_>) -> Result<Vec<AdoptionChange>> {
        Ok(loaders(ctx)?
            .load_one(AdoptionOf(self.customer_id))
            .await
            .map_err(loader_error)?
            .unwrap_or_default())
    }

    async fn use_cases(&self, ctx: &Context<'_>) -> Result<UseCaseChecklist> {
        let items = loaders(ctx)?
            .load_one(UseCasesOf(self.customer_id))
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        let done = items
            .iter()
            .filter(|item| item.status == "implemented" || item.status == "optimized")
            .count();
        let progress = if items.is_empty() {
            0.0
        } else {
            round1(done as f64 * 100.0 / items.len() as f64)
        };
        Ok(UseCaseChecklist {
            total: items.len(),
            done,
            progress_pct: progress,
            items,
        })
    }

    async fn nps(&self, ctx: &Context<'_>) -> Result<NpsSummary> {
        let responses = loaders(ctx)?
            .load_one(NpsOf(self.customer_id))
            .await
            .map_err(loader_error)?
            .unwrap_or_default();
        let average = (!responses.is_empty())
            .then(|| round1(responses.iter().map(|r| f64::from(r.score)).sum::<f64>() / responses.len() as f64));
        Ok(NpsSummary {
            latest: responses.first().map(|r| r.score),
            average,
            responses,
        })
    }

    /// Whether the caller pinned the customer to their focus ("My focus", docs/WEB.md).
    async fn pinned(&self, ctx: &Context<'_>) -> Result<bool> {
        let user = &crate::access::access(ctx)?.principal.user_id;
        loaders(ctx)?
            .load_one(PinnedBy(self.customer_id, user.clone()))
            .await
            .map_err(loader_error)
            .map(|pinned| pinned.unwrap_or(false))
    }

    /// Today's churn-risk score and band under the rules in force (docs/DOMAIN.md section 12);
    /// none for partners, who do not see the CS team's risk assessment.
    async fn risk(&self, ctx: &Context<'_>) -> Result<Option<crate::risk::RiskSummary>> {
        if crate::access::access(ctx)?.principal.role == events::metadata::Role::Partner {
            return Ok(None);
        }
        Ok(crate::risk::today(ctx).await?.get(&self.customer_id).copied())
    }

    /// The churn-risk score on `asOf` (default today) as known at `knownAt` (default now), under
    /// the rules in force or what-if `rules`, with every factor's finding, points and the
    /// events behind it. Not for partners.
    async fn churn_risk(
        &self,
        ctx: &Context<'_>,
        as_of: Option<crate::scalars::Date>,
        known_at: Option<chrono::DateTime<Utc>>,
        rules: Option<crate::rules::RulesInput>,
    ) -> Result<Option<crate::risk::ChurnRisk>> {
        crate::access::portfolio(ctx)?;
        let pool = ctx.data::<PgPool>()?;
        let now = Utc::now();
        if known_at.is_some_and(|at| at > now) {
            return Err(crate::schema::bad_input("knownAt", "`knownAt` is not in the future"));
        }
        let _place = match known_at {
            Some(at) => crate::audit::look_back(ctx, self.customer_id, at).await?,
            None => None,
        };
        let known_at = known_at.unwrap_or(now);
        let day = as_of.map_or_else(|| known_at.date_naive(), |day| day.0);
        let rules = crate::rules::effective(ctx, rules).await?;
        let definitions = events::service::read_models::custom_field_definitions(pool, Some(known_at))
            .await
            .map_err(crate::schema::unavailable)?;
        let names = crate::risk::FieldNames::for_role(&definitions, crate::access::access(ctx)?.principal.role);
        crate::risk::of(pool, self.customer_id, day, known_at, &rules, &names)
            .await
            .map_err(crate::schema::unavailable)
    }

    /// When the account is next due a contact, and why (docs/DOMAIN.md, "Next touch"); none for a
    /// churned customer.
    async fn next_touch(&self, ctx: &Context<'_>) -> Result<Option<crate::next_touch::NextTouch>> {
        loaders(ctx)?
            .load_one(NextTouchOf(self.customer_id))
            .await
            .map_err(loader_error)
    }

    /// The next meeting with the customer on a CSM's calendar (docs/CONNECTORS.md): upcoming
    /// meetings are not activities until they have happened.
    async fn next_scheduled_touch(&self, ctx: &Context<'_>) -> Result<Option<ScheduledTouch>> {
        let pool = ctx.data::<PgPool>()?;
        sqlx::query_as(
            "SELECT subject, starts_at, ends_at, direction, connector AS source FROM scheduled_touches
              WHERE customer_id = $1 AND ends_at > now() ORDER BY starts_at LIMIT 1",
        )
        .bind(self.customer_id)
        .fetch_optional(pool)
        .await
        .map_err(|error| loader_error(failed(error)))
    }

    /// The delivery tool's work items linked to the customer, with the state last read
    /// (docs/CONNECTORS.md); none for partners.
    async fn work_items(&self, ctx: &Context<'_>) -> Result<Vec<WorkItem>> {
        if crate::access::access(ctx)?.principal.role == events::metadata::Role::Partner {
            return Ok(Vec::new());
        }
        let pool = ctx.data::<PgPool>()?;
        sqlx::query_as(
            "SELECT l.system, l.entity_id, w.name, w.kind, w.state, w.modified_at, w.synced_at
               FROM work_item_links l LEFT JOIN work_items w USING (system, entity_id)
              WHERE l.customer_id = $1 ORDER BY l.system, l.entity_id",
        )
        .bind(self.customer_id)
        .fetch_all(pool)
        .await
        .map_err(|error| loader_error(failed(error)))
    }

    /// The customer at the end of `asOf` (default today): its CSM, tier, ARR, renewal date,
    /// health and custom fields of that day.
    async fn on_day(&self, ctx: &Context<'_>, as_of: Option<crate::scalars::Date>) -> Result<CustomerOnDay> {
        let pool = ctx.data::<PgPool>()?;
        let day = as_of.map_or_else(|| Utc::now().date_naive(), |day| day.0);
        let fail = |error: sqlx::Error| loader_error(failed(error));
        let then = events::service::read_models::changed_since(pool, day, Some(&[self.customer_id]))
            .await
            .map_err(fail)?
            .remove(&self.customer_id)
            .unwrap_or_default();
        let csm_id = then.csm.map_or(self.csm_id, |(csm_id, _)| csm_id);
        let renewal_date = then.renewal_date.unwrap_or(self.renewal_date);
        let health: Option<CurrentHealth> = sqlx::query_as(
            "SELECT customer_id, score, source, measured_at FROM health_points
              WHERE customer_id = $1 AND measured_on <= $2 ORDER BY measured_at DESC, sequence DESC LIMIT 1",
        )
        .bind(self.customer_id)
        .bind(day)
        .fetch_optional(pool)
        .await
        .map_err(fail)?;
        // Custom-field values by when they were set, folded up to the end of the day.
        let after = day
            .checked_add_days(chrono::Days::new(1))
            .and_then(|next| next.and_hms_opt(0, 0, 0))
            .map(|midnight| midnight.and_utc());
        let sets: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT payload -> 'CustomFieldsSet' -> 'values' FROM events
              WHERE aggregate_type = 'Customer' AND aggregate_id = $1 AND event_type = 'CustomFieldsSet'
                AND occurred_at < COALESCE($2, 'infinity')
              ORDER BY occurred_at, sequence",
        )
        .bind(self.customer_id.to_string())
        .bind(after)
        .fetch_all(pool)
        .await
        .map_err(fail)?;
        let mut values = std::collections::BTreeMap::new();
        for set in sets {
            for (key, value) in set.as_object().into_iter().flatten() {
                if value.is_null() {
                    values.remove(key);
                } else {
                    values.insert(key.clone(), value.clone());
                }
            }
        }
        let definitions = crate::custom_fields::in_force(ctx).await?;
        let role = crate::custom_fields::role(ctx)?;
        Ok(CustomerOnDay {
            as_of: crate::scalars::Date(day),
            tier: then
                .tier
                .or_else(|| events::customer::Tier::parse(&self.tier_name))
                .map(Into::into),
            arr: then.arr.unwrap_or(self.arr),
            csm: loaders(ctx)?.load_one(CsmKey(csm_id)).await.map_err(loader_error)?,
            renewal_date: crate::scalars::Date(renewal_date),
            days_until_renewal: (renewal_date - day).num_days(),
            health_colour: health.as_ref().map(|health| Colour::of(health.score).into()),
            health,
            custom_fields: crate::custom_fields::visible_values(&definitions, &values, role),
        })
    }

    /// Days from today to the renewal date (negative once passed).
    async fn days_until_renewal(&self) -> i64 {
        (self.renewal_date - Utc::now().date_naive()).num_days()
    }

    async fn compliance(&self) -> Compliance {
        let missing: Vec<String> = [
            ("salesforce_id", self.salesforce_id.is_empty()),
            ("account_manager", self.account_manager.is_empty()),
            ("industry", self.industry.is_empty()),
            ("products_owned", self.products_owned.is_empty()),
        ]
        .into_iter()
        .filter(|(_, absent)| *absent)
        .map(|(field, _)| field.to_owned())
        .collect();
        Compliance {
            complete: missing.is_empty(),
            missing,
        }
    }

    /// The customer's timeline, newest first.
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
        kinds: Option<Vec<String>>,
    ) -> Result<Connection<String, crate::timeline::TimelineEntry, EmptyFields, EmptyFields>> {
        let pool = ctx.data::<PgPool>()?;
        let after = after
            .map(|cursor| {
                crate::timeline::decode_cursor(&cursor).ok_or_else(|| coded_error("BAD_USER_INPUT", "unknown cursor"))
            })
            .transpose()?;
        let drafts_of = crate::access::access(ctx)?.drafts();
        crate::timeline::page(
            pool,
            self.customer_id,
            drafts_of,
            None,
            None,
            kinds,
            first.max(1) as usize,
            after,
        )
        .await
        .map_err(|error| loader_error(failed(error)))
    }
}

/// The parameters every customer selection binds before its custom-field ones.
const FIXED_PARAMETERS: usize = 24;

/// The next touch's day inside a selection's statement: today is `$5`, the cadence `$15`..`$17`.
fn next_touch_due() -> String {
    crate::next_touch::due_sql(5, 15)
}

/// A customer's latest health score (null when none), inside a selection's statement.
const LATEST_SCORE: &str = "(SELECT h.score FROM health_points h WHERE h.customer_id = p.customer_id
    ORDER BY h.measured_at DESC, h.sequence DESC LIMIT 1)";

pub const CUSTOMER_COLUMNS: &str =
    "customer_id, name, salesforce_id, tier AS tier_name, arr, industry, account_manager, csm_id,
    products_owned, contract_start, renewal_date, onboarded_at, adoption_stage, churned_on, churn_reason, custom_fields, tags";

pub async fn one(pool: &PgPool, customer_id: Uuid) -> Result<Option<Customer>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customer_profiles WHERE customer_id = $1"
    ))
    .bind(customer_id)
    .fetch_optional(pool)
    .await
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerSort {
    Name,
    ArrDesc,
    RenewalDate,
    /// Lowest latest health score first; customers with no score last.
    HealthAsc,
    /// The next touch due soonest first (overdue ones first of all).
    NextTouch,
    /// Highest churn-risk score first (docs/DOMAIN.md section 12).
    RiskDesc,
}

/// A customer's latest NPS answer, as the survey reads it: 9 and 10 promote, 7 and 8 are
/// passive, 0 to 6 detract.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpsCategory {
    Promoter,
    Passive,
    Detractor,
    /// No NPS answer recorded.
    NoAnswer,
}

impl NpsCategory {
    fn as_str(self) -> &'static str {
        match self {
            NpsCategory::Promoter => "PROMOTER",
            NpsCategory::Passive => "PASSIVE",
            NpsCategory::Detractor => "DETRACTOR",
            NpsCategory::NoAnswer => "NO_ANSWER",
        }
    }
}

#[derive(InputObject, Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Part of the name, case-insensitive.
    pub search: Option<String>,
    pub tier: Option<Tier>,
    pub csm_id: Option<Uuid>,
    pub health_colour: Option<HealthColour>,
    /// Renewing from today to this many days ahead.
    pub renewal_within_days: Option<i32>,
    pub coverage_status: Option<crate::scalars::CoverageStatus>,
    /// Include churned customers (default: no).
    pub include_churned: Option<bool>,
    /// Customers assigned to this partner organisation.
    pub partner_id: Option<Uuid>,
    /// By the latest NPS answer.
    pub nps_category: Option<NpsCategory>,
    /// At risk: the latest health score is red or yellow (under 70).
    pub at_risk: Option<bool>,
    /// By when the next touch is due (docs/DOMAIN.md, "Next touch").
    pub next_touch: Option<crate::next_touch::NextTouchWindow>,
    /// By today's churn-risk band (docs/DOMAIN.md section 12).
    pub risk_band: Option<crate::risk::RiskBand>,
    /// In the caller's focus (pinned by them) or not.
    pub pinned: Option<bool>,
    /// Customers with this tag (compared without regard to case).
    pub tag: Option<String>,
}

/// Longest name search accepted (customer names are at most 200 characters).
pub const MAX_SEARCH_CHARS: usize = 200;

/// The `ILIKE` pattern of a name search: the text anywhere in the name, with `%`, `_` and `\`
/// matched as themselves.
fn search_pattern(search: &str) -> Result<String> {
    if search.chars().count() > MAX_SEARCH_CHARS {
        return Err(crate::schema::bad_input(
            "filter.search",
            format!("a search is at most {MAX_SEARCH_CHARS} characters"),
        ));
    }
    if search.contains('\0') {
        return Err(crate::schema::bad_input(
            "filter.search",
            "a search may not contain U+0000",
        ));
    }
    Ok(like_pattern(search))
}

/// The `ILIKE` pattern matching `text` anywhere, with `%`, `_` and `\` as themselves.
pub fn like_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// What a page of customers says besides its rows.
#[derive(SimpleObject, Debug, Clone, Copy, Default)]
pub struct CustomerPageFields {
    /// How many customers the filter selects in all, on every page, of those the caller may see.
    pub total_count: i64,
}

/// Which customers a listing selects and in what order: the SQL and parameters shared by a
/// page of `customers` and the customers export, so both apply the same filters and visibility.
#[derive(Clone)]
pub struct Selection {
    key: String,
    order: String,
    compare: &'static str,
    custom_condition: String,
    extra: Vec<serde_json::Value>,
    search: Option<String>,
    tier: Option<&'static str>,
    csm_id: Option<Uuid>,
    renewal_within_days: Option<i32>,
    include_churned: bool,
    visible: Option<Vec<Uuid>>,
    after: Option<(String, Uuid)>,
    health_colour: Option<String>,
    partner_id: Option<Uuid>,
    nps_category: Option<&'static str>,
    at_risk: Option<bool>,
    next_touch: Option<&'static str>,
    /// The three tiers' maximum days between contacts, for the next touch.
    cadence: [i32; 3],
    /// Today's churn-risk scores and bands by customer, when the list orders or filters by them.
    risk: Option<(Vec<Uuid>, Vec<f64>, Vec<&'static str>)>,
    risk_band: Option<&'static str>,
    pinned: Option<bool>,
    /// Whose focus `pinned` reads.
    user_id: String,
    /// Rows read; `None` reads every match.
    limit: Option<i64>,
}

impl Selection {
    pub fn new(
        filter: &CustomerFilter,
        sort: CustomerSort,
        after: Option<String>,
        visible: Option<&[Uuid]>,
        custom: CustomListing<'_>,
    ) -> Result<Self> {
        let search = filter.search.as_deref().map(search_pattern).transpose()?;
        let after = after
            .map(|cursor| {
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
                let text = String::from_utf8(bytes).ok()?;
                let (key, id) = text.rsplit_once('|')?;
                Some((key.to_owned(), Uuid::parse_str(id).ok()?))
            })
            .map(|cursor| cursor.ok_or_else(|| coded_error("BAD_USER_INPUT", "unknown cursor")))
            .transpose()?;
        // Custom-field parameters follow the fixed ones.
        let mut extra: Vec<serde_json::Value> = Vec::new();
        let mut custom_condition = "true".to_owned();
        if let Some((definition, filter)) = custom.filter {
            let sql = crate::custom_fields::filter_sql(definition, filter, FIXED_PARAMETERS + 1)?;
            custom_condition = sql.condition;
            extra.extend(sql.parameters);
        }
        let custom_sort = custom.sort.map(|(definition, descending)| {
            let at = FIXED_PARAMETERS + 1 + extra.len();
            extra.push(serde_json::Value::String(definition.key.clone()));
            extra.push(definition.default.clone().unwrap_or(serde_json::Value::Null));
            (crate::custom_fields::sort_key(definition, at, at + 1), descending)
        });
        if let Some(tag) = filter.tag.as_deref().map(str::trim).filter(|tag| !tag.is_empty()) {
            if tag.chars().count() > 40 || tag.contains('\0') {
                return Err(crate::schema::bad_input("filter.tag", "a tag is 1 to 40 characters"));
            }
            let at = FIXED_PARAMETERS + 1 + extra.len();
            extra.push(serde_json::Value::String(tag.to_lowercase()));
            custom_condition = format!(
                "({custom_condition}) AND EXISTS (SELECT 1 FROM unnest(p.tags) AS t WHERE lower(t) = (${at}::jsonb #>> '{{}}'))"
            );
        }
        let (key, order, compare) = match (&custom_sort, sort) {
            (Some((key, false)), _) => (key.clone(), format!("{key}, customer_id"), ">"),
            (Some((key, true)), _) => (key.clone(), format!("{key} DESC, customer_id DESC"), "<"),
            (None, CustomerSort::Name) => ("lower(name)".to_owned(), "lower(name), customer_id".to_owned(), ">"),
            (None, CustomerSort::ArrDesc) => (
                "lpad(((arr * 100)::bigint)::text, 20, '0')".to_owned(),
                "arr DESC, customer_id DESC".to_owned(),
                "<",
            ),
            (None, CustomerSort::RenewalDate) => (
                "renewal_date::text".to_owned(),
                "renewal_date, customer_id".to_owned(),
                ">",
            ),
            (None, CustomerSort::HealthAsc) => (
                format!("to_char(coalesce({LATEST_SCORE}, 1000), 'FM0000.0000')"),
                format!("coalesce({LATEST_SCORE}, 1000), customer_id"),
                ">",
            ),
            (None, CustomerSort::NextTouch) => (
                format!("({})::text", next_touch_due()),
                format!("{}, customer_id", next_touch_due()),
                ">",
            ),
            // Scores are 0 to 100 with one decimal; unscored customers (none yet) come last.
            (None, CustomerSort::RiskDesc) => (
                "to_char(coalesce(risk_score, -1) + 1, 'FM000.0')".to_owned(),
                "coalesce(risk_score, -1) DESC, customer_id DESC".to_owned(),
                "<",
            ),
        };
        Ok(Selection {
            key,
            order,
            compare,
            custom_condition,
            extra,
            search,
            tier: filter.tier.map(|tier| events::customer::Tier::from(tier).as_str()),
            csm_id: filter.csm_id,
            renewal_within_days: filter.renewal_within_days,
            include_churned: filter.include_churned.unwrap_or(false),
            visible: visible.map(<[Uuid]>::to_vec),
            after,
            health_colour: filter.health_colour.map(|colour| format!("{colour:?}").to_uppercase()),
            partner_id: filter.partner_id,
            nps_category: filter.nps_category.map(NpsCategory::as_str),
            at_risk: filter.at_risk,
            next_touch: filter.next_touch.map(crate::next_touch::NextTouchWindow::as_str),
            cadence: crate::next_touch::cadence(&events::rules::Rules::default()),
            risk: None,
            risk_band: filter.risk_band.map(crate::risk::RiskBand::as_str),
            pinned: filter.pinned,
            user_id: String::new(),
            limit: None,
        })
    }

    /// Reads `pinned` as this user's focus.
    pub fn for_user(mut self, user_id: &str) -> Self {
        self.user_id = user_id.to_owned();
        self
    }

    /// Orders and filters by these scores (today's, of every customer).
    pub fn with_risk(mut self, scores: &HashMap<Uuid, crate::risk::RiskSummary>) -> Self {
        let mut columns = (Vec::new(), Vec::new(), Vec::new());
        for (id, summary) in scores {
            columns.0.push(*id);
            columns.1.push(summary.score);
            columns.2.push(summary.band.as_str());
        }
        self.risk = Some(columns);
        self
    }

    /// Counts the next touch with these maximum days between contacts (the rules in force).
    pub fn with_cadence(mut self, cadence: [i32; 3]) -> Self {
        self.cadence = cadence;
        self
    }

    /// The statement `listed` runs.
    pub fn listed_sql(&self) -> String {
        self.sql(&format!(
            "{CUSTOMER_COLUMNS},
             (SELECT c.name FROM csm_directory c WHERE c.csm_id = p.csm_id) AS csm_name,
             (SELECT h.score FROM health_points h WHERE h.customer_id = p.customer_id
               ORDER BY h.measured_at DESC, h.sequence DESC LIMIT 1) AS health_score"
        ))
    }

    /// `SELECT {columns} FROM customer_profiles p WHERE <the selection> ORDER BY <its order>`.
    fn sql(&self, columns: &str) -> String {
        let Selection {
            key,
            order,
            compare,
            custom_condition,
            ..
        } = self;
        let touch_condition = crate::next_touch::NextTouchWindow::condition(&next_touch_due(), 18, 5);
        format!(
            "SELECT {columns} FROM customer_profiles p
               LEFT JOIN unnest($19::uuid[], $20::float8[], $21::text[]) AS r(risk_customer, risk_score, risk_band)
                 ON r.risk_customer = p.customer_id
              WHERE ($1::text IS NULL OR name ILIKE $1)
                AND ($2::text IS NULL OR tier = $2)
                AND ($3::uuid IS NULL OR csm_id = $3)
                AND ($4::int IS NULL OR renewal_date BETWEEN $5 AND $5 + $4)
                AND ($6 OR churned_on IS NULL)
                AND ($7::uuid[] IS NULL OR customer_id = ANY ($7))
                AND ($8::text IS NULL OR ({key}, customer_id) {compare} ($8, $9))
                AND ($10::text IS NULL OR (SELECT CASE WHEN score >= 70 THEN 'GREEN' WHEN score >= 50 THEN 'YELLOW' ELSE 'RED' END
                       FROM health_points h WHERE h.customer_id = p.customer_id ORDER BY measured_at DESC, sequence DESC LIMIT 1) = $10)
                AND ($12::uuid IS NULL OR EXISTS (SELECT 1 FROM customer_partners cp
                       WHERE cp.customer_id = p.customer_id AND cp.partner_id = $12))
                AND ($13::text IS NULL OR coalesce((SELECT CASE WHEN n.score >= 9 THEN 'PROMOTER' WHEN n.score >= 7 THEN 'PASSIVE' ELSE 'DETRACTOR' END
                       FROM nps_responses n WHERE n.customer_id = p.customer_id ORDER BY n.occurred_at DESC, n.sequence DESC LIMIT 1), 'NO_ANSWER') = $13)
                AND ($14::bool IS NULL OR coalesce({LATEST_SCORE} < 70, false) = $14)
                AND {touch_condition}
                AND ($22::text IS NULL OR risk_band = $22)
                AND ($23::bool IS NULL OR EXISTS (SELECT 1 FROM focus_pins f
                       WHERE f.user_id = $24 AND f.customer_id = p.customer_id) = $23)
                AND ({custom_condition})
              ORDER BY {order}
              LIMIT $11"
        )
    }

    fn bind<'q, O>(
        &'q self,
        query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        let query = query
            .bind(self.search.as_deref())
            .bind(self.tier)
            .bind(self.csm_id)
            .bind(self.renewal_within_days)
            .bind(Utc::now().date_naive())
            .bind(self.include_churned)
            .bind(self.visible.as_deref())
            .bind(self.after.as_ref().map(|(key, _)| key.as_str()))
            .bind(self.after.as_ref().map(|(_, id)| *id))
            .bind(self.health_colour.as_deref())
            .bind(self.limit)
            .bind(self.partner_id)
            .bind(self.nps_category)
            .bind(self.at_risk)
            .bind(self.cadence[0])
            .bind(self.cadence[1])
            .bind(self.cadence[2])
            .bind(self.next_touch)
            .bind(self.risk.as_ref().map(|r| r.0.clone()))
            .bind(self.risk.as_ref().map(|r| r.1.clone()))
            .bind(self.risk.as_ref().map(|r| r.2.clone()))
            .bind(self.risk_band)
            .bind(self.pinned)
            .bind(&self.user_id);
        self.extra
            .iter()
            .fold(query, |query, value| query.bind(sqlx::types::Json(value)))
    }
}

/// One page of customers. The sort key and id form the cursor, so pages are stable.
#[allow(clippy::too_many_arguments)]
pub async fn page(
    pool: &PgPool,
    filter: CustomerFilter,
    sort: CustomerSort,
    first: usize,
    after: Option<String>,
    coverage: Option<&HashMap<Uuid, crate::scalars::CoverageStatus>>,
    visible: Option<&[Uuid]>,
    custom: CustomListing<'_>,
    counted: bool,
    cadence: [i32; 3],
    risk: Option<&HashMap<Uuid, crate::risk::RiskSummary>>,
    user_id: &str,
) -> Result<Connection<String, Customer, CustomerPageFields, EmptyFields>> {
    let first = first.clamp(1, crate::timeline::MAX_PAGE);
    let mut selection = Selection::new(&filter, sort, after, visible, custom)?
        .with_cadence(cadence)
        .for_user(user_id);
    if let Some(scores) = risk {
        selection = selection.with_risk(scores);
    }
    // The total: every match of the filter, whatever page this is (when the query asks for it).
    let total_count = if counted {
        let mut every = selection.clone();
        every.after = None;
        every.limit = None;
        let matched: Vec<(Uuid,)> = every
            .bind(sqlx::query_as::<_, (Uuid,)>(&every.sql("customer_id")))
            .fetch_all(pool)
            .await
            .map_err(|error| loader_error(failed(error)))?;
        let total = match (filter.coverage_status, coverage) {
            (Some(status), Some(statuses)) => matched.iter().filter(|(id,)| statuses.get(id) == Some(&status)).count(),
            _ => matched.len(),
        };
        total as i64
    } else {
        0
    };
    // Coverage status is computed after the query, so that filter reads every match.
    selection.limit = filter.coverage_status.is_none().then_some(first as i64 + 1);
    let sql = selection.sql(&format!("{} AS sort_key, {CUSTOMER_COLUMNS}", selection.key));
    let rows: Vec<(String, Customer)> = selection
        .bind(sqlx::query_as::<_, CustomerRow>(&sql))
        .fetch_all(pool)
        .await
        .map_err(|error| loader_error(failed(error)))?
        .into_iter()
        .map(|row| (row.sort_key.clone(), row.into()))
        .collect();
    let rows: Vec<(String, Customer)> = match (filter.coverage_status, coverage) {
        (Some(status), Some(statuses)) => rows
            .into_iter()
            .filter(|(_, c)| statuses.get(&c.customer_id) == Some(&status))
            .collect(),
        _ => rows,
    };
    let has_next = rows.len() > first;
    let mut connection =
        Connection::with_additional_fields(selection.after.is_some(), has_next, CustomerPageFields { total_count });
    connection
        .edges
        .extend(rows.into_iter().take(first).map(|(key, customer)| {
            let cursor =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{key}|{}", customer.customer_id));
            Edge::new(cursor, customer)
        }));
    Ok(connection)
}

/// A customer as its export row: the profile with its CSM's name and latest health score.
#[derive(sqlx::FromRow)]
pub struct ListedCustomer {
    #[sqlx(flatten)]
    pub customer: Customer,
    pub csm_name: Option<String>,
    pub health_score: Option<f64>,
}

/// Every customer a selection matches, in its order, read as a stream (the customers export).
pub fn listed<'a>(
    pool: &'a PgPool,
    selection: &'a Selection,
    sql: &'a str,
) -> impl futures_util::Stream<Item = Result<ListedCustomer, sqlx::Error>> + 'a {
    selection.bind(sqlx::query_as::<_, ListedCustomer>(sql)).fetch(pool)
}

/// The custom-field filter and sort of a customers page, checked against the caller's
/// visible definitions.
#[derive(Default)]
pub struct CustomListing<'a> {
    pub filter: Option<(
        &'a events::fields::FieldDefinition,
        &'a crate::custom_fields::CustomFieldFilter,
    )>,
    pub sort: Option<(&'a events::fields::FieldDefinition, bool)>,
}

#[derive(sqlx::FromRow)]
struct CustomerRow {
    sort_key: String,
    #[sqlx(flatten)]
    customer: Customer,
}

impl From<CustomerRow> for Customer {
    fn from(row: CustomerRow) -> Self {
        row.customer
    }
}
