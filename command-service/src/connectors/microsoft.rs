//! Microsoft 365 (docs/CONNECTORS.md): mail and meeting metadata (never bodies) of the CSMs'
//! mailboxes through Microsoft Graph, read by delta queries (`@odata.nextLink` pages, then the
//! `@odata.deltaLink` kept as the cursor) so an hourly run reads only what changed.
//!
//! - A message is an e-mail activity of the customer its outside addresses belong to (a
//!   stakeholder's address, else a domain only one customer's stakeholders have), outbound when
//!   the mailbox sent it. Its stakeholders are its participants.
//! - A reply in the same conversation to an outbound message corrects that activity:
//!   `response_received` and `response_time_hours` are the reply's, not guesses.
//! - A meeting that has ended is a meeting activity with its duration; an upcoming one is the
//!   customer's next scheduled touch (`scheduled_touches`) until it ends.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Utc};
use events::metadata::Source;
use serde_json::{json, Value};
use uuid::Uuid;

use super::vendor::{OAuth, Secret, VendorClient};
use super::{Connector, Record, Run};
use crate::import::plan::{Kind, World};
use crate::import::sheet::Cell;

pub const NAME: &str = "microsoft365";
const MESSAGE_FIELDS: &str = "subject,from,toRecipients,ccRecipients,sentDateTime,receivedDateTime,conversationId";

#[derive(clap::Args, Debug, Clone, Default)]
pub struct MicrosoftSettings {
    /// The tenant's token endpoint (https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token);
    /// the connector runs only when this is set.
    #[arg(long = "m365-token-url", env = "CSTRACK_M365_TOKEN_URL")]
    pub token_url: Option<String>,
    #[arg(long = "m365-client-id", env = "CSTRACK_M365_CLIENT_ID", default_value = "")]
    pub client_id: String,
    #[arg(
        long = "m365-client-secret",
        env = "CSTRACK_M365_CLIENT_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub client_secret: Secret,
    #[arg(
        long = "m365-graph-url",
        env = "CSTRACK_M365_GRAPH_URL",
        default_value = "https://graph.microsoft.com/v1.0"
    )]
    pub graph_url: String,
    /// The mailboxes read (the CSMs' addresses), comma-separated.
    #[arg(long = "m365-mailboxes", env = "CSTRACK_M365_MAILBOXES", default_value = "")]
    pub mailboxes: String,
    /// Days before and after the first sync the calendars are read over.
    #[arg(
        long = "m365-calendar-days",
        env = "CSTRACK_M365_CALENDAR_DAYS",
        default_value_t = 30
    )]
    pub calendar_days: i64,
    #[arg(
        long = "m365-interval-seconds",
        env = "CSTRACK_M365_INTERVAL_SECONDS",
        default_value_t = 900.0
    )]
    pub interval_seconds: f64,
}

pub struct Microsoft365 {
    settings: MicrosoftSettings,
    mailboxes: Vec<String>,
    client: VendorClient,
}

/// An address of a Graph `recipient` (`{"emailAddress": {"address": ...}}`), lower-case.
fn address(recipient: &Value) -> Option<String> {
    recipient["emailAddress"]["address"]
        .as_str()
        .map(|address| address.trim().to_lowercase())
        .filter(|address| address.contains('@'))
}

fn addresses(list: &Value) -> Vec<String> {
    list.as_array().into_iter().flatten().filter_map(address).collect()
}

/// A Graph `dateTimeTimeZone` read in UTC (requests ask for UTC with `Prefer`).
fn graph_time(value: &Value) -> Option<DateTime<Utc>> {
    let text = value["dateTime"].as_str()?;
    let zone = value["timeZone"].as_str().unwrap_or("UTC");
    if zone != "UTC" {
        return None;
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|at| at.and_utc())
}

fn domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, domain)| domain)
}

impl Microsoft365 {
    pub fn new(settings: MicrosoftSettings) -> anyhow::Result<Self> {
        let token_url = settings
            .token_url
            .clone()
            .context("CSTRACK_M365_TOKEN_URL is not set")?;
        let mailboxes: Vec<String> = settings
            .mailboxes
            .split(',')
            .map(|mailbox| mailbox.trim().to_lowercase())
            .filter(|mailbox| !mailbox.is_empty())
            .collect();
        anyhow::ensure!(!mailboxes.is_empty(), "CSTRACK_M365_MAILBOXES names no mailbox");
        anyhow::ensure!(
            mailboxes
                .iter()
                .all(|mailbox| mailbox.contains('@') && !mailbox.contains('/')),
            "CSTRACK_M365_MAILBOXES holds e-mail addresses"
        );
        let client = VendorClient::new(OAuth {
            token_url,
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            refresh_token: None,
            scope: Some("https://graph.microsoft.com/.default".into()),
        })?
        .with_header("Prefer", "outlook.timezone=\"UTC\"");
        Ok(Microsoft365 {
            settings,
            mailboxes,
            client,
        })
    }

    fn graph(&self) -> &str {
        self.settings.graph_url.trim_end_matches('/')
    }

    /// Every item of a delta query from `url` (the stored delta link, or the first request),
    /// and the delta link to resume from.
    async fn delta(&self, url: &str) -> anyhow::Result<(Vec<Value>, String)> {
        let mut url = url.to_owned();
        let mut items = Vec::new();
        loop {
            let mut page = self.client.get_json(&url, &[]).await?;
            items.append(page["value"].as_array_mut().context("a delta page without value")?);
            if let Some(next) = page["@odata.nextLink"].as_str() {
                url = next.to_owned();
            } else {
                let delta = page["@odata.deltaLink"]
                    .as_str()
                    .context("the last delta page has no @odata.deltaLink")?;
                return Ok((items, delta.to_owned()));
            }
        }
    }

    /// The customer and its stakeholders among `outside` addresses.
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

    async fn apply_message(
        &self,
        run: &mut Run<'_>,
        world: &World,
        mailbox: &str,
        message: &Value,
    ) -> anyhow::Result<()> {
        let id = message["id"].as_str().unwrap_or_default().to_owned();
        if !message["@removed"].is_null() {
            return Ok(());
        }
        let Some(from) = address(&message["from"]) else {
            run.skip(
                "message",
                &id,
                "malformed_record",
                Some("from"),
                "no sender address".into(),
            );
            return Ok(());
        };
        let outbound = from == mailbox;
        let mut outside: Vec<String> = if outbound {
            let mut to = addresses(&message["toRecipients"]);
            to.extend(addresses(&message["ccRecipients"]));
            to
        } else {
            vec![from.clone()]
        };
        outside.retain(|email| domain(email) != domain(mailbox));
        let at = message[if outbound { "sentDateTime" } else { "receivedDateTime" }]
            .as_str()
            .and_then(super::instant);
        let (Some(at), false) = (at, id.is_empty()) else {
            run.skip("message", &id, "malformed_record", None, "no id or time".into());
            return Ok(());
        };
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
                Cell::Text(
                    message["subject"]
                        .as_str()
                        .unwrap_or_default()
                        .chars()
                        .take(500)
                        .collect(),
                ),
            ),
            ("participants".into(), Cell::Text(people.join(";"))),
        ];
        let key = format!("outlook:message:{id}");
        let outcome = run.apply(Kind::Activities, world, "message", &id, &key, record).await?;
        let conversation = message["conversationId"].as_str().unwrap_or_default();
        if conversation.is_empty() {
            return Ok(());
        }
        let pool = run.pool().clone();
        if outbound {
            if let (super::Outcome::Applied { .. }, Some(activity)) = (outcome, run.issued.first().copied()) {
                let thread =
                    json!({"activity_id": activity, "customer_id": customer, "sent_at": at, "answered": false});
                super::save_value(&pool, NAME, conversation, "thread", &thread).await?;
            }
            return Ok(());
        }
        // A reply: the conversation's unanswered outbound message was answered, this long after.
        let Some(thread) = super::last_value(&pool, NAME, conversation, "thread").await? else {
            return Ok(());
        };
        let sent_at = thread["sent_at"].as_str().and_then(super::instant);
        let activity = thread["activity_id"].as_str().and_then(|id| id.parse::<Uuid>().ok());
        let thread_customer = thread["customer_id"].as_str().and_then(|id| id.parse::<Uuid>().ok());
        if let (false, Some(sent_at), Some(activity), Some(thread_customer)) =
            (thread["answered"] == true, sent_at, activity, thread_customer)
        {
            if at > sent_at {
                let hours = ((at - sent_at).num_seconds() as f64 / 3600.0 * 10.0).round() / 10.0;
                let correction = crate::domain::customer::CustomerCommand::CorrectActivity(
                    crate::domain::customer::CorrectActivity {
                        activity_id: activity,
                        reason: "reply received (Microsoft 365)".into(),
                        kind: None,
                        direction: None,
                        occurred_at: None,
                        duration_minutes: None,
                        participants: None,
                        response_received: Some(true),
                        response_time_hours: Some(hours),
                        subject: None,
                    },
                );
                let key = format!("outlook:reply:{conversation}:{activity}");
                run.command(thread_customer, correction, "message", &id, &key).await?;
                let mut answered = thread.clone();
                answered["answered"] = json!(true);
                super::save_value(&pool, NAME, conversation, "thread", &answered).await?;
            }
        }
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
        let key = format!("outlook:event:{event_id}:{}", touch.starts_at.to_rfc3339());
        run.apply(Kind::Activities, world, "event", event_id, &key, record)
            .await?;
        Ok(())
    }

    async fn apply_event(&self, run: &mut Run<'_>, world: &World, mailbox: &str, event: &Value) -> anyhow::Result<()> {
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        let pool = run.pool().clone();
        if !event["@removed"].is_null() || event["isCancelled"] == true {
            sqlx::query("DELETE FROM scheduled_touches WHERE connector = $1 AND source_id = $2")
                .bind(NAME)
                .bind(&id)
                .execute(&pool)
                .await?;
            return Ok(());
        }
        let (Some(starts_at), Some(ends_at)) = (graph_time(&event["start"]), graph_time(&event["end"])) else {
            run.skip(
                "event",
                &id,
                "malformed_record",
                Some("start"),
                "no start and end in UTC".into(),
            );
            return Ok(());
        };
        let organizer = address(&event["organizer"]).unwrap_or_default();
        let mut outside = addresses(&event["attendees"]);
        outside.push(organizer.clone());
        outside.retain(|email| domain(email) != domain(mailbox));
        let Some((customer_id, participants)) = Self::customer_of(world, &outside) else {
            run.ignore();
            return Ok(());
        };
        let touch = Touch {
            customer_id,
            subject: event["subject"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(500)
                .collect(),
            starts_at,
            ends_at,
            direction: if organizer == mailbox { "outbound" } else { "inbound" }.into(),
            participants,
        };
        if ends_at <= Utc::now() {
            return self.log_meeting(run, world, &id, &touch).await;
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
        .bind(NAME)
        .bind(&id)
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
    async fn settle_touches(&self, run: &mut Run<'_>, world: &World) -> anyhow::Result<()> {
        let pool = run.pool().clone();
        let ended: Vec<StoredTouch> = sqlx::query_as(
            "SELECT source_id, customer_id, subject, starts_at, ends_at, direction, participants FROM scheduled_touches
              WHERE connector = $1 AND ends_at <= now() ORDER BY starts_at",
        )
        .bind(NAME)
        .fetch_all(&pool)
        .await?;
        for StoredTouch { source_id: id, touch } in ended {
            self.log_meeting(run, world, &id, &touch).await?;
            sqlx::query("DELETE FROM scheduled_touches WHERE connector = $1 AND source_id = $2")
                .bind(NAME)
                .bind(&id)
                .execute(&pool)
                .await?;
        }
        Ok(())
    }
}

/// A scheduled touch as stored, with the calendar's event id.
#[derive(sqlx::FromRow)]
struct StoredTouch {
    source_id: String,
    #[sqlx(flatten)]
    touch: Touch,
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

impl Connector for Microsoft365 {
    fn name(&self) -> &'static str {
        NAME
    }

    fn source(&self) -> Source {
        Source::Outlook
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.settings.interval_seconds.max(1.0))
    }

    fn waited_ms(&self) -> u64 {
        self.client.waited.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn sync(&self, run: &mut Run<'_>) -> anyhow::Result<()> {
        let cursors = super::cursors(run.pool(), NAME).await?;
        let world = World::load(run.pool()).await?;
        let pool = run.pool().clone();
        for mailbox in &self.mailboxes {
            // Mail: what was received and what was sent, in the order it happened, so a reply
            // meets the message it answers.
            let mut messages = Vec::new();
            let mut links = Vec::new();
            for folder in ["sentitems", "inbox"] {
                let stream = format!("mail:{mailbox}:{folder}");
                let url = cursors.get(&stream).cloned().unwrap_or_else(|| {
                    format!(
                        "{}/users/{mailbox}/mailFolders/{folder}/messages/delta?$select={MESSAGE_FIELDS}",
                        self.graph()
                    )
                });
                let (items, link) = self.delta(&url).await?;
                messages.extend(items);
                links.push((stream, link));
            }
            let time = |message: &Value| {
                message["sentDateTime"]
                    .as_str()
                    .or(message["receivedDateTime"].as_str())
                    .and_then(super::instant)
            };
            messages.sort_by_key(|message| time(message));
            for message in &messages {
                self.apply_message(run, &world, mailbox, message).await?;
            }
            for (stream, link) in links {
                super::save_cursor(&pool, NAME, &stream, &link).await?;
            }

            // Calendar: meetings over the window, then only what changed.
            let stream = format!("calendar:{mailbox}");
            let url = cursors.get(&stream).cloned().unwrap_or_else(|| {
                let now = Utc::now();
                let days = chrono::Duration::days(self.settings.calendar_days.clamp(1, 365));
                format!(
                    "{}/users/{mailbox}/calendarView/delta?startDateTime={}&endDateTime={}",
                    self.graph(),
                    (now - days).format("%Y-%m-%dT%H:%M:%SZ"),
                    (now + days).format("%Y-%m-%dT%H:%M:%SZ")
                )
            });
            let (meetings, link) = self.delta(&url).await?;
            for meeting in &meetings {
                self.apply_event(run, &world, mailbox, meeting).await?;
            }
            super::save_cursor(&pool, NAME, &stream, &link).await?;
        }
        self.settle_touches(run, &world).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_times_are_read_in_utc_only() {
        let at = graph_time(&json!({"dateTime": "2026-12-03T15:30:00.0000000", "timeZone": "UTC"})).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-12-03T15:30:00+00:00");
        assert!(
            graph_time(&json!({"dateTime": "2026-12-03T15:30:00.0000000", "timeZone": "Pacific Standard Time"}))
                .is_none()
        );
    }
}
