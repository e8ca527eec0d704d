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
use serde_json::Value;

use super::mailbox::{Mailboxes, Meeting, Message};
use super::vendor::{OAuth, Secret, VendorClient};
use super::{Connector, Run};
use crate::import::plan::World;

pub const NAME: &str = "microsoft365";
const MESSAGE_FIELDS: &str = "subject,from,toRecipients,ccRecipients,sentDateTime,receivedDateTime,conversationId";

#[derive(clap::Args, Debug, Clone, Default)]
pub struct MicrosoftSettings {
    /// The tenant's token endpoint (https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token);
    /// the connector runs only when this is set.
    #[arg(id = "m365_token_url", long = "m365-token-url", env = "CSTRACK_M365_TOKEN_URL")]
    pub token_url: Option<String>,
    #[arg(
        id = "m365_client_id",
        long = "m365-client-id",
        env = "CSTRACK_M365_CLIENT_ID",
        default_value = ""
    )]
    pub client_id: String,
    #[arg(
        id = "m365_client_secret",
        long = "m365-client-secret",
        env = "CSTRACK_M365_CLIENT_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub client_secret: Secret,
    #[arg(
        id = "m365_graph_url",
        long = "m365-graph-url",
        env = "CSTRACK_M365_GRAPH_URL",
        default_value = "https://graph.microsoft.com/v1.0"
    )]
    pub graph_url: String,
    /// The mailboxes read (the CSMs' addresses), comma-separated.
    #[arg(
        id = "m365_mailboxes",
        long = "m365-mailboxes",
        env = "CSTRACK_M365_MAILBOXES",
        default_value = ""
    )]
    pub mailboxes: String,
    /// Days before and after the first sync the calendars are read over.
    #[arg(
        id = "m365_calendar_days",
        long = "m365-calendar-days",
        env = "CSTRACK_M365_CALENDAR_DAYS",
        default_value_t = 30
    )]
    pub calendar_days: i64,
    #[arg(
        id = "m365_interval_seconds",
        long = "m365-interval-seconds",
        env = "CSTRACK_M365_INTERVAL_SECONDS",
        default_value_t = 900.0
    )]
    pub interval_seconds: f64,
}

/// What the connector takes as the present moment (a test sets another).
pub type Clock = std::sync::Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub struct Microsoft365 {
    settings: MicrosoftSettings,
    mailboxes: Vec<String>,
    client: VendorClient,
    clock: Clock,
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
            clock: std::sync::Arc::new(Utc::now),
        })
    }

    /// The same connector, with the calendar windows placed by `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
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
}

/// The shared mail and calendar handling, under this connector's name and keys.
const MAILBOXES: Mailboxes = Mailboxes {
    connector: NAME,
    prefix: "outlook",
};

/// A Graph message as the shared form; `None` for one the delta says was removed.
fn message_of(message: &Value, mailbox: &str) -> Option<Message> {
    if !message["@removed"].is_null() {
        return None;
    }
    let from = address(&message["from"]);
    let outbound = from.as_deref() == Some(mailbox);
    let mut recipients = addresses(&message["toRecipients"]);
    recipients.extend(addresses(&message["ccRecipients"]));
    Some(Message {
        id: message["id"].as_str().unwrap_or_default().to_owned(),
        from,
        recipients,
        at: message[if outbound { "sentDateTime" } else { "receivedDateTime" }]
            .as_str()
            .and_then(super::instant),
        subject: message["subject"].as_str().unwrap_or_default().to_owned(),
        conversation: message["conversationId"].as_str().unwrap_or_default().to_owned(),
    })
}

/// A Graph event as the shared form (removed and cancelled events are cancelled).
fn meeting_of(event: &Value) -> Meeting {
    Meeting {
        id: event["id"].as_str().unwrap_or_default().to_owned(),
        cancelled: !event["@removed"].is_null() || event["isCancelled"] == true,
        subject: event["subject"].as_str().unwrap_or_default().to_owned(),
        start: graph_time(&event["start"]),
        end: graph_time(&event["end"]),
        organizer: address(&event["organizer"]),
        attendees: addresses(&event["attendees"]),
    }
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
            for message in messages.iter().filter_map(|message| message_of(message, mailbox)) {
                MAILBOXES.apply_message(run, &world, mailbox, &message).await?;
            }
            for (stream, link) in links {
                super::save_cursor(&pool, NAME, &stream, &link).await?;
            }

            // Calendar: a `calendarView` delta query keeps the window of its first request for
            // good, so the window is moved on: once less than half its look-ahead is left, the
            // old query's last changes are read and a new query over now ± the days starts.
            // What the two windows share is read again and appends nothing twice (each meeting
            // is logged under its id and start; a scheduled touch is replaced).
            let stream = format!("calendar:{mailbox}");
            let window_stream = format!("calendar-window:{mailbox}");
            let now = (self.clock)();
            let days = chrono::Duration::days(self.settings.calendar_days.clamp(1, 365));
            let window_end = cursors
                .get(&window_stream)
                .and_then(|end| DateTime::parse_from_rfc3339(end).ok())
                .map(|end| end.with_timezone(&Utc));
            let stored = cursors.get(&stream);
            let current = stored.filter(|_| window_end.is_some_and(|end| end - now > days / 2));
            let mut meetings = Vec::new();
            let (link, moved_to) = match current {
                Some(link) => {
                    let (items, link) = self.delta(link).await?;
                    meetings.extend(items);
                    (link, None)
                }
                None => {
                    if let Some(old) = stored {
                        meetings.extend(self.delta(old).await?.0);
                    }
                    let (start, end) = (now - days, now + days);
                    let url = format!(
                        "{}/users/{mailbox}/calendarView/delta?startDateTime={}&endDateTime={}",
                        self.graph(),
                        start.format("%Y-%m-%dT%H:%M:%SZ"),
                        end.format("%Y-%m-%dT%H:%M:%SZ")
                    );
                    let (items, link) = self.delta(&url).await?;
                    meetings.extend(items);
                    (link, Some(end))
                }
            };
            for meeting in &meetings {
                MAILBOXES
                    .apply_meeting(run, &world, mailbox, &meeting_of(meeting))
                    .await?;
            }
            // The link before the window: a crash between the two leaves a window thought to be
            // ending, which only reads the new query's meetings again.
            super::save_cursor(&pool, NAME, &stream, &link).await?;
            if let Some(end) = moved_to {
                super::save_cursor(&pool, NAME, &window_stream, &end.to_rfc3339()).await?;
            }
        }
        MAILBOXES.settle_touches(run, &world).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
