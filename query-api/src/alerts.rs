//! Alerts raised by the projection service's checker, newest first, keyset-paginated.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::SimpleObject;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use base64::Engine;

use crate::timeline::MAX_PAGE;

/// Cursor: (raised_at, alert_id) of the last alert seen; alerts of one check share raised_at.
fn encode_cursor(raised_at: DateTime<Utc>, alert_id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{alert_id}", raised_at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let text = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (micros, id) = text.split_once('|')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        Uuid::parse_str(id).ok()?,
    ))
}

#[derive(SimpleObject, Debug, Clone, sqlx::FromRow)]
pub struct Alert {
    pub alert_id: Uuid,
    pub customer_id: Uuid,
    pub customer_name: String,
    pub csm_id: Uuid,
    /// coverage_urgent, engagement_at_risk, health_red, task_overdue, renewal_window,
    /// partner_report_submitted, churn_risk_high.
    pub kind: String,
    pub message: String,
    pub detail: serde_json::Value,
    pub raised_at: DateTime<Utc>,
    pub as_of: NaiveDate,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
}

/// Which alerts a list holds: by CSM, customer, kind, acknowledged or not, and of the customers
/// the caller may see (`None`: every customer).
pub struct Filter {
    pub csm_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub kind: Option<String>,
    pub acknowledged: Option<bool>,
    pub visible: Option<Vec<Uuid>>,
    /// Kinds the caller may not read (see [`hidden_kinds`]).
    pub hidden_kinds: Vec<String>,
}

/// Alert kinds that carry what a role may not see: a churn-risk alert states the score, which
/// partners do not see (docs/PERMISSIONS.md).
pub fn hidden_kinds(role: events::metadata::Role) -> Vec<String> {
    match role {
        events::metadata::Role::Partner => vec!["churn_risk_high".to_owned()],
        _ => Vec::new(),
    }
}

const CONDITIONS: &str = "($1::uuid IS NULL OR csm_id = $1) AND ($2::uuid IS NULL OR customer_id = $2)
            AND ($3::text IS NULL OR kind = $3)
            AND ($4::boolean IS NULL OR (acknowledged_at IS NOT NULL) = $4)
            AND ($5::uuid[] IS NULL OR customer_id = ANY ($5))
            AND NOT (kind = ANY ($6::text[]))";

fn bind_filter<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    filter: &Filter,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(filter.csm_id)
        .bind(filter.customer_id)
        .bind(filter.kind.clone())
        .bind(filter.acknowledged)
        .bind(filter.visible.clone())
        .bind(filter.hidden_kinds.clone())
}

/// A page of alerts, newest first, each with its customer's name; the total when `counted`.
pub async fn page(
    pool: &PgPool,
    filter: &Filter,
    first: usize,
    after: Option<String>,
    counted: bool,
) -> Result<Connection<String, Alert, crate::portfolio::PageTotal, EmptyFields>, async_graphql::Error> {
    let after = after
        .map(|cursor| {
            decode_cursor(&cursor).ok_or_else(|| crate::schema::coded_error("BAD_USER_INPUT", "unknown cursor"))
        })
        .transpose()?;
    let first = first.clamp(1, MAX_PAGE);
    let failed = |error: sqlx::Error| {
        tracing::error!(%error, "alerts query failed");
        crate::schema::coded_error("UNAVAILABLE", "the read models are unavailable; retry later")
    };
    let sql = format!(
        "SELECT alert_id, customer_id,
                coalesce((SELECT name FROM customer_profiles p WHERE p.customer_id = alerts.customer_id), '') AS customer_name,
                csm_id, kind, message, detail, raised_at, as_of, acknowledged_at, acknowledged_by
           FROM alerts
          WHERE {CONDITIONS}
            AND ($7::timestamptz IS NULL OR (raised_at, alert_id) < ($7, $8))
          ORDER BY raised_at DESC, alert_id DESC
          LIMIT $9"
    );
    let rows: Vec<Alert> = bind_filter(sqlx::query_as(&sql), filter)
        .bind(after.map(|(at, _)| at))
        .bind(after.map_or(Uuid::max(), |(_, id)| id))
        .bind(first as i64 + 1)
        .fetch_all(pool)
        .await
        .map_err(failed)?;
    let total_count = if counted {
        let (total,): (i64,) = bind_filter(
            sqlx::query_as(&format!("SELECT count(*) FROM alerts WHERE {CONDITIONS}")),
            filter,
        )
        .fetch_one(pool)
        .await
        .map_err(failed)?;
        total
    } else {
        0
    };
    let has_next = rows.len() > first;
    let mut connection =
        Connection::with_additional_fields(after.is_some(), has_next, crate::portfolio::PageTotal { total_count });
    connection.edges.extend(
        rows.into_iter()
            .take(first)
            .map(|alert| Edge::new(encode_cursor(alert.raised_at, alert.alert_id), alert)),
    );
    Ok(connection)
}
