//! Who is asking, and what they may see: the same bearer tokens as the command API. Partners see
//! only the customers assigned to their organisation and no portfolio-wide report; readonly users
//! see no partner report drafts; partners see only their own drafts.

use async_graphql::{Context, Result};
use events::metadata::Role;
use events::service::auth::Principal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::schema::coded_error;

/// What the caller may see, resolved once per request.
#[derive(Debug, Clone)]
pub struct Access {
    pub principal: Principal,
    /// `None`: every customer; `Some`: only these.
    pub customers: Option<Vec<Uuid>>,
}

/// Why a caller with a valid token gets nothing.
#[derive(Debug)]
pub enum Refused {
    /// A partner user deactivated in the partner directory.
    Deactivated(String),
    Unavailable(sqlx::Error),
}

impl From<sqlx::Error> for Refused {
    fn from(error: sqlx::Error) -> Self {
        Refused::Unavailable(error)
    }
}

impl Access {
    pub async fn resolve(pool: &PgPool, principal: Principal) -> Result<Self, Refused> {
        if let Some(message) = events::service::auth::deactivated(pool, &principal).await? {
            return Err(Refused::Deactivated(message));
        }
        let customers = if principal.role == Role::Partner {
            let ids: Vec<Uuid> = sqlx::query_scalar("SELECT customer_id FROM customer_partners WHERE partner_id = $1")
                .bind(principal.partner_id)
                .fetch_all(pool)
                .await?;
            Some(ids)
        } else {
            None
        };
        Ok(Access { principal, customers })
    }

    pub fn visible(&self) -> Option<&[Uuid]> {
        self.customers.as_deref()
    }

    pub fn sees(&self, customer_id: Uuid) -> bool {
        self.customers.as_ref().is_none_or(|ids| ids.contains(&customer_id))
    }

    /// Whose partner-report drafts the caller may read: `None` all, `Some(None)` none,
    /// `Some(Some(p))` only partner `p`'s.
    pub fn drafts(&self) -> Option<Option<Uuid>> {
        match self.principal.role {
            Role::Readonly => Some(None),
            Role::Partner => Some(self.principal.partner_id),
            _ => None,
        }
    }
}

pub fn access<'a>(ctx: &'a Context<'_>) -> Result<&'a Access> {
    ctx.data::<Access>()
        .map_err(|_| coded_error("UNAUTHENTICATED", "a bearer token is required"))
}

/// One customer's data: refused (as not found, so existence does not leak) unless visible.
pub fn customer(ctx: &Context<'_>, customer_id: Uuid) -> Result<()> {
    if access(ctx)?.sees(customer_id) {
        Ok(())
    } else {
        Err(coded_error("NOT_FOUND", format!("no customer {customer_id}")))
    }
}

/// Portfolio-wide reports: not for partners.
pub fn portfolio(ctx: &Context<'_>) -> Result<()> {
    if access(ctx)?.principal.role == Role::Partner {
        Err(coded_error(
            "FORBIDDEN",
            "partners see only their customers, not portfolio reports",
        ))
    } else {
        Ok(())
    }
}
