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
    pub csm_id: Uuid,
    /// coverage_urgent, engagement_at_risk, health_red, task_overdue, renewal_window,
    /// partner_report_submitted.
    pub kind: String,
    pub message: String,
    pub detail: serde_json::Value,
    pub raised_at: DateTime<Utc>,
    pub as_of: NaiveDate,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub async fn page(
    pool: &PgPool,
    csm_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    kind: Option<String>,
    acknowledged: Option<bool>,
    first: usize,
    after: Option<String>,
) -> Result<Connection<String, Alert, EmptyFields, EmptyFields>, async_graphql::Error> {
    let after = after
        .map(|cursor| {
            decode_cursor(&cursor).ok_or_else(|| crate::schema::coded_error("BAD_USER_INPUT", "unknown cursor"))
        })
        .transpose()?;
    let first = first.clamp(1, MAX_PAGE);
    let rows: Vec<Alert> = sqlx::query_as(
        "SELECT alert_id, customer_id, csm_id, kind, message, detail, raised_at, as_of, acknowledged_at, acknowledged_by
           FROM alerts
          WHERE ($1::uuid IS NULL OR csm_id = $1) AND ($2::uuid IS NULL OR customer_id = $2)
            AND ($3::text IS NULL OR kind = $3)
            AND ($4::boolean IS NULL OR (acknowledged_at IS NOT NULL) = $4)
            AND ($5::timestamptz IS NULL OR (raised_at, alert_id) < ($5, $6))
          ORDER BY raised_at DESC, alert_id DESC
          LIMIT $7",
    )
    .bind(csm_id)
    .bind(customer_id)
    .bind(kind)
    .bind(acknowledged)
    .bind(after.map(|(at, _)| at))
    .bind(after.map_or(Uuid::max(), |(_, id)| id))
    .bind(first as i64 + 1)
    .fetch_all(pool)
    .await
    .map_err(|error| {
        tracing::error!(%error, "alerts query failed");
        crate::schema::coded_error("UNAVAILABLE", "the read models are unavailable; retry later")
    })?;
    let has_next = rows.len() > first;
    let mut connection = Connection::new(after.is_some(), has_next);
    connection.edges.extend(
        rows.into_iter()
            .take(first)
            .map(|alert| Edge::new(encode_cursor(alert.raised_at, alert.alert_id), alert)),
    );
    Ok(connection)
}
