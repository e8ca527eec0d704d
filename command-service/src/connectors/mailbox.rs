//! What mail and calendar connectors share (docs/CONNECTORS.md): a vendor's message or meeting,
//! read into the forms below, becomes an activity of the customer its outside addresses name;
//! a reply corrects the message it answers with the real response time; an upcoming meeting is
//! the customer's next scheduled touch until it ends.

use chrono::{DateTime, Utc};
use serde_json::json;
use uuid::Uuid;

use super::{Outcome, Record, Run};
use crate::import::plan::{Kind, World};
use crate::import::sheet::Cell;

/// A mail message's metadata (never its body).
pub struct Message {
    pub id: String,
    /// The sender, lower-case.
    pub from: Option<String>,
    /// Every recipient (to and cc), lower-case.
    pub recipients: Vec<String>,
    /// When it was sent (outbound) or received (inbound).
    pub at: Option<DateTime<Utc>>,
    pub subject: String,
    /// The vendor's conversation or thread id.
    pub conversation: String,
}

/// A calendar event.
pub struct Meeting {
    pub id: String,
    pub cancelled: bool,
    pub subject: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub organizer: Option<String>,
    pub attendees: Vec<String>,
}

/// A meeting with a customer.
#[derive(sqlx::FromRow)]
struct Touch {
    customer_id: Uuid,
    subject: String,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    direction: String,
    participants: Vec<String>,
}

/// A scheduled touch as stored, with the calendar's event id.
#[derive(sqlx::FromRow)]
struct StoredTouch {
    source_id: String,
    #[sqlx(flatten)]
    touch: Touch,
}

fn domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, domain)| domain)
}

/// The mail and calendar of one connector: its name (the connector's key in the tables) and
/// the prefix of its idempotency keys (`outlook`, `gmail`).
pub struct Mailboxes {
    pub connector: &'static str,
    pub prefix: &'static str,
}

impl Mailboxes {
    /// The customer and its stakeholders among `outside` addresses: a stakeholder's address
    /// first, else a domain only one customer's stakeholders have.
    fn customer_of(world: &World, outside: &[String]) -> Option<(Uuid, Vec<String>)> {
        let customer = outside
            .iter()
            .find_map(|email| {
                world
                    .customer_of_email(email)
                    .filter(|c| world.is_stakeholder(*c, email))
            })
            .or_else(|| outside.iter().find_map(|email| world.customer_of_email(email)))?;
        let people = outside
            .iter()
            .filter(|email| world.is_stakeholder(customer, email))
            .cloned()
            .collect();
        Some((customer, people))
    }

    /// One message of `mailbox`: an e-mail activity, and for a reply the correction of the
    /// message it answers.
    pub async fn apply_message(
        &self,
        run: &mut Run<'_>,
        world: &World,
        mailbox: &str,
        message: &Message,
    ) -> anyhow::Result<()> {
        let id = &message.id;
        let Some(from) = &message.from else {
            run.skip(
                "message",
                id,
                "malformed_record",
                Some("from"),
                "no sender address".into(),
            );
            return Ok(());
        };
        let (Some(at), false) = (message.at, id.is_empty()) else {
            run.skip("message", id, "malformed_record", None, "no id or time".into());
            return Ok(());
        };
        let outbound = from == mailbox;
        let mut outside = if outbound {
            message.recipients.clone()
        } else {
            vec![from.clone()]
        };
        outside.retain(|email| domain(email) != domain(mailbox));
        let Some((customer, people)) = Self::customer_of(world, &outside) else {
            run.ignore();
            return Ok(());
        };
        let Some(salesforce_id) = world.salesforce_id(customer) else {
            run.ignore();
            return Ok(());
        };
        let record: Record = vec![
            ("customer".into(), Cell::Text(salesforce_id.to_owned())),
            ("kind".into(), Cell::Text("email".into())),
            (
                "direction".into(),
                Cell::Text(if outbound { "outbound" } else { "inbound" }.into()),
            ),
            ("occurred_at".into(), Cell::DateTime(at.naive_utc())),
            (
                "subject".into(),
                Cell::Text(message.subject.chars().take(500).collect()),
            ),
            ("participants".into(), Cell::Text(people.join(";"))),
        ];
        let key = format!("{}:message:{id}", self.prefix);
        let outcome = run.apply(Kind::Activities, world, "message", id, &key, record).await?;
        let conversation = message.conversation.as_str();
        if conversation.is_empty() {
            return Ok(());
        }
        let pool = run.pool().clone();
        if outbound {
            if let (Outcome::Applied { .. }, Some(activity)) = (outcome, run.issued.first().copied()) {
                let thread =
                    json!({"activity_id": activity, "customer_id": customer, "sent_at": at, "answered": false});
                super::save_value(&pool, self.connector, conversation, "thread", &thread).await?;
            }
            return Ok(());
        }
        // A reply: the conversation's unanswered outbound message was answered, this long after.
        let Some(thread) = super::last_value(&pool, self.connector, conversation, "thread").await? else {
            return Ok(());
        };
        let sent_at = thread["sent_at"].as_str().and_then(super::instant);
        let activity = thread["activity_id"].as_str().and_then(|id| id.parse::<Uuid>().ok());
        let thread_customer = thread["customer_id"].as_str().and_then(|id| id.parse::<Uuid>().ok());
        let (false, Some(sent_at), Some(activity), Some(thread_customer)) =
            (thread["answered"] == true, sent_at, activity, thread_customer)
        else {
            return Ok(());
        };
        if at <= sent_at {
            return Ok(());
        }
        let hours = ((at - sent_at).num_seconds() as f64 / 3600.0 * 10.0).round() / 10.0;
        let correction =
            crate::domain::customer::CustomerCommand::CorrectActivity(crate::domain::customer::CorrectActivity {
                activity_id: activity,
                reason: format!("reply received ({})", self.connector),
                kind: None,
                direction: None,
                occurred_at: None,
                duration_minutes: None,
                participants: None,
                response_received: Some(true),
                response_time_hours: Some(hours),
                subject: None,
            });
        let key = format!("{}:reply:{conversation}:{activity}", self.prefix);
        run.command(thread_customer, correction, "message", id, &key).await?;
        let mut answered = thread.clone();
        answered["answered"] = json!(true);
        super::save_value(&pool, self.connector, conversation, "thread", &answered).await?;
        Ok(())
    }

    /// A meeting that ended as a meeting activity.
    async fn log_meeting(&self, run: &mut Run<'_>, world: &World, event_id: &str, touch: &Touch) -> anyhow::Result<()> {
        let Some(salesforce_id) = world.salesforce_id(touch.customer_id) else {
            run.ignore();
            return Ok(());
        };
        let minutes = (touch.ends_at - touch.starts_at).num_minutes().clamp(0, 1440);
        let record: Record = vec![
            ("customer".into(), Cell::Text(salesforce_id.to_owned())),
            ("kind".into(), Cell::Text("meeting".into())),
            ("direction".into(), Cell::Text(touch.direction.clone())),
            ("occurred_at".into(), Cell::DateTime(touch.starts_at.naive_utc())),
            ("duration_minutes".into(), Cell::Number(minutes as f64)),
            ("subject".into(), Cell::Text(touch.subject.clone())),
            ("participants".into(), Cell::Text(touch.participants.join(";"))),
        ];
        let key = format!("{}:event:{event_id}:{}", self.prefix, touch.starts_at.to_rfc3339());
        run.apply(Kind::Activities, world, "event", event_id, &key, record)
            .await?;
        Ok(())
    }

    /// One calendar event of `mailbox`: a meeting activity once ended, the next scheduled touch
    /// while upcoming, nothing when cancelled.
    pub async fn apply_meeting(
        &self,
        run: &mut Run<'_>,
        world: &World,
        mailbox: &str,
        meeting: &Meeting,
    ) -> anyhow::Result<()> {
        let id = &meeting.id;
        let pool = run.pool().clone();
        if meeting.cancelled {
            sqlx::query("DELETE FROM scheduled_touches WHERE connector = $1 AND source_id = $2")
                .bind(self.connector)
                .bind(id)
                .execute(&pool)
                .await?;
            return Ok(());
        }
        let (Some(starts_at), Some(ends_at)) = (meeting.start, meeting.end) else {
            run.skip(
                "event",
                id,
                "malformed_record",
                Some("start"),
                "no start and end in UTC".into(),
            );
            return Ok(());
        };
        let organizer = meeting.organizer.clone().unwrap_or_default();
        let mut outside = meeting.attendees.clone();
        outside.push(organizer.clone());
        outside.retain(|email| domain(email) != domain(mailbox));
        let Some((customer_id, participants)) = Self::customer_of(world, &outside) else {
            run.ignore();
            return Ok(());
        };
        let touch = Touch {
            customer_id,
            subject: meeting.subject.chars().take(500).collect(),
            starts_at,
            ends_at,
            direction: if organizer == mailbox { "outbound" } else { "inbound" }.into(),
            participants,
        };
        if ends_at <= Utc::now() {
            return self.log_meeting(run, world, id, &touch).await;
        }
        // Not yet happened: the customer's next scheduled touch, until it ends.
        run.counts.records_read += 1;
        sqlx::query(
            "INSERT INTO scheduled_touches (connector, source_id, customer_id, subject, starts_at, ends_at, direction, participants, mailbox)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (connector, source_id) DO UPDATE SET customer_id = EXCLUDED.customer_id, subject = EXCLUDED.subject,
                 starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at, direction = EXCLUDED.direction,
                 participants = EXCLUDED.participants, mailbox = EXCLUDED.mailbox",
        )
        .bind(self.connector)
        .bind(id)
        .bind(touch.customer_id)
        .bind(&touch.subject)
        .bind(touch.starts_at)
        .bind(touch.ends_at)
        .bind(&touch.direction)
        .bind(&touch.participants)
        .bind(mailbox)
        .execute(&pool)
        .await?;
        Ok(())
    }

    /// Scheduled touches whose meeting has ended become meeting activities.
    pub async fn settle_touches(&self, run: &mut Run<'_>, world: &World) -> anyhow::Result<()> {
        let pool = run.pool().clone();
        let ended: Vec<StoredTouch> = sqlx::query_as(
            "SELECT source_id, customer_id, subject, starts_at, ends_at, direction, participants FROM scheduled_touches
              WHERE connector = $1 AND ends_at <= now() ORDER BY starts_at",
        )
        .bind(self.connector)
        .fetch_all(&pool)
        .await?;
        for StoredTouch { source_id, touch } in ended {
            self.log_meeting(run, world, &source_id, &touch).await?;
            sqlx::query("DELETE FROM scheduled_touches WHERE connector = $1 AND source_id = $2")
                .bind(self.connector)
                .bind(&source_id)
                .execute(&pool)
                .await?;
        }
        Ok(())
    }
}
