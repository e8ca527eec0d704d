//! What the projection service tells live readers when its read models change: a PostgreSQL
//! notification sent inside the transaction that changes them, so it is delivered exactly when
//! (and only if) that transaction commits. The query API listens and feeds its GraphQL
//! subscriptions from it; nothing on the command path notifies.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The channel of every read-model change.
pub const CHANNEL: &str = "cstrack_read_models";

/// One committed change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A projector applied an event of a stream (a customer's, an alert's, a CSM's...).
    Applied {
        projector: String,
        stream_type: String,
        stream_id: String,
        event_type: String,
        global_position: i64,
    },
    /// The alert checker raised an alert.
    AlertRaised { alert_id: Uuid, customer_id: Uuid },
}

impl Change {
    /// Sends the change as part of the transaction `db` is in.
    pub async fn notify(&self, db: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        let payload = serde_json::to_string(self).expect("a change serializes");
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(db)
            .await?;
        Ok(())
    }

    /// Sends every change as part of the transaction `db` is in, with one statement, in order.
    pub async fn notify_all(
        db: &mut sqlx::PgConnection,
        changes: impl IntoIterator<Item = Change>,
    ) -> Result<(), sqlx::Error> {
        let payloads: Vec<String> = changes
            .into_iter()
            .map(|change| serde_json::to_string(&change).expect("a change serializes"))
            .collect();
        if payloads.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "SELECT pg_notify($1, payload) FROM UNNEST($2::text[]) WITH ORDINALITY AS c(payload, n) ORDER BY n",
        )
        .bind(CHANNEL)
        .bind(payloads)
        .execute(db)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_reads_back_as_written() {
        let change = Change::Applied {
            projector: "customers".into(),
            stream_type: "Customer".into(),
            stream_id: Uuid::nil().to_string(),
            event_type: "ActivityLogged".into(),
            global_position: 42,
        };
        let text = serde_json::to_string(&change).unwrap();
        assert!(text.contains(r#""kind":"applied""#), "{text}");
        assert_eq!(serde_json::from_str::<Change>(&text).unwrap(), change);
    }
}
