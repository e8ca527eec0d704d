//! What the settings screens read besides the reports: the rules in force, the CSM directory and
//! the partner organisations with their users.
//! Live only (not in snapshots), and not for partners.

use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use events::metadata::Role;
use sqlx::PgPool;
use uuid::Uuid;

use crate::schema::unavailable;

/// The SQL of a user's name from the user id in `column`: the CSM the user said they are (in
/// their notification preferences), else the partner user of that id, else the CSM whose id it
/// is (a task given to a CSM who has no user yet); null when none says.
pub fn name_of(column: &str) -> String {
    format!(
        "coalesce((SELECT d.name FROM notification_preferences np JOIN csm_directory d ON d.csm_id = np.csm_id
                    WHERE np.user_id = {column}),
                  (SELECT pu.name FROM partner_users pu WHERE pu.user_id = {column} ORDER BY pu.invited_at LIMIT 1),
                  (SELECT d.name FROM csm_directory d WHERE d.csm_id::text = {column}))"
    )
}

/// The signed-in user as the client shows them.
#[derive(SimpleObject, Debug, Clone)]
pub struct Me {
    pub user_id: String,
    /// admin, manager, csm, partner, readonly or auditor.
    pub role: String,
    /// Their name, when the directory knows it (see `name_of`).
    pub name: Option<String>,
    /// The partner organisation of a partner user, by name.
    pub partner_name: Option<String>,
}

#[derive(Default)]
pub struct SettingsQuery;

#[Object]
impl SettingsQuery {
    /// The coverage standards, engagement weights and workload hours in force, with when they
    /// last changed. Not for partners.
    async fn rules(&self, ctx: &Context<'_>) -> Result<crate::rules::RulesInForce> {
        crate::access::portfolio(ctx)?;
        crate::rules::in_force(ctx.data::<PgPool>()?).await
    }

    /// Every registered CSM with their e-mail, team and monthly capacity, by name. Not for
    /// partners.
    async fn csms(&self, ctx: &Context<'_>) -> Result<Vec<crate::customers::Csm>> {
        crate::access::portfolio(ctx)?;
        sqlx::query_as(
            "SELECT csm_id, name, email, team, monthly_capacity_hours FROM csm_directory ORDER BY name, csm_id",
        )
        .fetch_all(ctx.data::<PgPool>()?)
        .await
        .map_err(unavailable)
    }

    /// The signed-in user: their id, role, and name where the directory knows it. Every role.
    async fn me(&self, ctx: &Context<'_>) -> Result<Me> {
        let principal = crate::access::access(ctx)?.principal.clone();
        let (name, partner_name): (Option<String>, Option<String>) = sqlx::query_as(&format!(
            "SELECT {}, (SELECT name FROM partner_directory WHERE partner_id = $2)",
            name_of("$1")
        ))
        .bind(&principal.user_id)
        .bind(principal.partner_id)
        .fetch_one(ctx.data::<PgPool>()?)
        .await
        .map_err(unavailable)?;
        Ok(Me {
            user_id: principal.user_id,
            role: principal.role.as_str().to_owned(),
            name,
            partner_name,
        })
    }

    /// Every partner organisation, by name, with its portal users and how many customers are
    /// assigned to it. Admins and managers only.
    async fn partners(&self, ctx: &Context<'_>) -> Result<Vec<PartnerOrganisation>> {
        let role = crate::access::access(ctx)?.principal.role;
        if !matches!(role, Role::Admin | Role::Manager) {
            return Err(crate::schema::coded_error(
                "FORBIDDEN",
                "only admins and managers see the partner organisations",
            ));
        }
        let pool = ctx.data::<PgPool>()?;
        let organisations: Vec<(Uuid, String, DateTime<Utc>, i64)> = sqlx::query_as(
            "SELECT d.partner_id, d.name, d.registered_at,
                    (SELECT count(*) FROM customer_partners cp JOIN customer_profiles p USING (customer_id)
                      WHERE cp.partner_id = d.partner_id AND p.churned_on IS NULL)
               FROM partner_directory d ORDER BY lower(d.name), d.partner_id",
        )
        .fetch_all(pool)
        .await
        .map_err(unavailable)?;
        let users: Vec<PartnerUser> = sqlx::query_as(
            "SELECT partner_id, user_id, name, email, status, reason, invited_at, changed_at
               FROM partner_users ORDER BY lower(name), user_id",
        )
        .fetch_all(pool)
        .await
        .map_err(unavailable)?;
        Ok(organisations
            .into_iter()
            .map(
                |(partner_id, name, registered_at, customer_count)| PartnerOrganisation {
                    partner_id,
                    name,
                    registered_at,
                    customer_count,
                    users: users
                        .iter()
                        .filter(|user| user.partner_id == partner_id)
                        .cloned()
                        .collect(),
                },
            )
            .collect())
    }
}

/// A partner organisation (docs/DOMAIN.md, partners).
#[derive(SimpleObject, Debug, Clone)]
pub struct PartnerOrganisation {
    pub partner_id: Uuid,
    pub name: String,
    pub registered_at: DateTime<Utc>,
    /// Customers assigned to it, churned ones left out.
    pub customer_count: i64,
    /// Its portal users, by name.
    pub users: Vec<PartnerUser>,
}

/// Where a partner user stands: invited (not yet activated), active, or deactivated (refused
/// on every request).
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum PartnerUserStatus {
    Invited,
    Active,
    Deactivated,
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct PartnerUser {
    #[graphql(skip)]
    pub partner_id: Uuid,
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub status: PartnerUserStatus,
    /// Why the user was deactivated.
    pub reason: Option<String>,
    pub invited_at: DateTime<Utc>,
    /// When the status last changed.
    pub changed_at: DateTime<Utc>,
}
