//! What the settings screens read besides the reports: the rules in force and the CSM directory.
//! Live only (not in snapshots), and not for partners.

use async_graphql::{Context, Object, Result};
use sqlx::PgPool;

use crate::schema::unavailable;

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
}
