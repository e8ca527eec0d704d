//! Google Workspace (docs/CONNECTORS.md): Gmail and Calendar metadata (never bodies) of the
//! CSMs' mailboxes, read with a service account acting for each mailbox (domain-wide
//! delegation). Gmail is read in full once (messages of the last days, then each message's
//! headers) and afterwards through its history from the stored `historyId`; Calendar through
//! `syncToken`. A history or sync token Google no longer honours (404, 410) starts a full read
//! again, which appends nothing it appended before.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use events::metadata::Source;
use serde_json::Value;

use super::mailbox::{Mailboxes, Meeting, Message};
use super::vendor::{Auth, Secret, VendorClient, VendorError};
use super::{Connector, Run};
use crate::import::plan::World;

pub const NAME: &str = "google";
const MAILBOXES: Mailboxes = Mailboxes {
    connector: NAME,
    prefix: "gmail",
};
const SCOPES: &str = "https://www.googleapis.com/auth/gmail.metadata https://www.googleapis.com/auth/calendar.readonly";

#[derive(clap::Args, Debug, Clone, Default)]
pub struct GoogleSettings {
    /// The service account's e-mail (its `client_email`); the connector runs only when set.
    #[arg(
        id = "google_client_email",
        long = "google-client-email",
        env = "CSTRACK_GOOGLE_CLIENT_EMAIL"
    )]
    pub client_email: Option<String>,
    /// The service account's RSA private key, PEM.
    #[arg(
        id = "google_private_key",
        long = "google-private-key",
        env = "CSTRACK_GOOGLE_PRIVATE_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub private_key: Secret,
    #[arg(
        id = "google_token_url",
        long = "google-token-url",
        env = "CSTRACK_GOOGLE_TOKEN_URL",
        default_value = "https://oauth2.googleapis.com/token"
    )]
    pub token_url: String,
    #[arg(
        id = "google_gmail_url",
        long = "google-gmail-url",
        env = "CSTRACK_GOOGLE_GMAIL_URL",
        default_value = "https://gmail.googleapis.com/gmail/v1"
    )]
    pub gmail_url: String,
    #[arg(
        id = "google_calendar_url",
        long = "google-calendar-url",
        env = "CSTRACK_GOOGLE_CALENDAR_URL",
        default_value = "https://www.googleapis.com/calendar/v3"
    )]
    pub calendar_url: String,
    /// The mailboxes read (the CSMs' addresses), comma-separated.
    #[arg(
        id = "google_mailboxes",
        long = "google-mailboxes",
        env = "CSTRACK_GOOGLE_MAILBOXES",
        default_value = ""
    )]
    pub mailboxes: String,
    /// Days of mail and calendar read by a full sync.
    #[arg(
        id = "google_days",
        long = "google-days",
        env = "CSTRACK_GOOGLE_DAYS",
        default_value_t = 30
    )]
    pub days: i64,
    #[arg(
        id = "google_interval_seconds",
        long = "google-interval-seconds",
        env = "CSTRACK_GOOGLE_INTERVAL_SECONDS",
        default_value_t = 900.0
    )]
    pub interval_seconds: f64,
}

pub struct Google {
    settings: GoogleSettings,
    /// Each mailbox with a client acting for it.
    mailboxes: Vec<(String, VendorClient)>,
}

/// The address in a header value such as `Dana Whitfield <dana@vendor.example>`, lower-case.
fn address_in(text: &str) -> Option<String> {
    let text = text.trim();
    let address = match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close => &text[open + 1..close],
        _ => text,
    };
    let address = address.trim().trim_matches('"').to_lowercase();
    address.contains('@').then_some(address)
}

/// Every address of a header listing several (`a@x, "B" <b@y>`).
fn addresses_in(text: &str) -> Vec<String> {
    text.split(',').filter_map(address_in).collect()
}

fn header<'a>(message: &'a Value, name: &str) -> &'a str {
    message["payload"]["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|header| header["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|header| header["value"].as_str())
        .unwrap_or_default()
}

/// A Gmail message (`format=metadata`) as the shared form. Its time is `internalDate`
/// (milliseconds since the epoch): when Gmail received or sent it.
fn message_of(message: &Value) -> Message {
    let mut recipients = addresses_in(header(message, "To"));
    recipients.extend(addresses_in(header(message, "Cc")));
    Message {
        id: message["id"].as_str().unwrap_or_default().to_owned(),
        from: address_in(header(message, "From")),
        recipients,
        at: message["internalDate"]
            .as_str()
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis),
        subject: header(message, "Subject").to_owned(),
        conversation: message["threadId"].as_str().unwrap_or_default().to_owned(),
    }
}

/// An event time: `dateTime` (RFC 3339); all-day events (`date` only) have none.
fn event_time(value: &Value) -> Option<DateTime<Utc>> {
    value["dateTime"].as_str().and_then(super::instant)
}

fn meeting_of(event: &Value) -> Meeting {
    Meeting {
        id: event["id"].as_str().unwrap_or_default().to_owned(),
        cancelled: event["status"] == "cancelled",
        subject: event["summary"].as_str().unwrap_or_default().to_owned(),
        start: event_time(&event["start"]),
        end: event_time(&event["end"]),
        organizer: event["organizer"]["email"].as_str().map(str::to_lowercase),
        attendees: event["attendees"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|attendee| attendee["email"].as_str().map(str::to_lowercase))
            .collect(),
    }
}

/// Whether Google no longer honours a history id or sync token.
fn expired(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<VendorError>(),
        Some(VendorError::Status { status: 404 | 410, .. })
    )
}

impl Google {
    pub fn new(settings: GoogleSettings) -> anyhow::Result<Self> {
        let client_email = settings
            .client_email
            .clone()
            .context("CSTRACK_GOOGLE_CLIENT_EMAIL is not set")?;
        anyhow::ensure!(
            jsonwebtoken::EncodingKey::from_rsa_pem(settings.private_key.expose().as_bytes()).is_ok(),
            "CSTRACK_GOOGLE_PRIVATE_KEY is not an RSA private key in PEM"
        );
        let mut mailboxes = Vec::new();
        for mailbox in settings
            .mailboxes
            .split(',')
            .map(|m| m.trim().to_lowercase())
            .filter(|m| !m.is_empty())
        {
            anyhow::ensure!(
                mailbox.contains('@') && !mailbox.contains('/'),
                "CSTRACK_GOOGLE_MAILBOXES holds e-mail addresses"
            );
            let client = VendorClient::with_auth(Auth::ServiceAccount {
                token_url: settings.token_url.clone(),
                client_email: client_email.clone(),
                private_key: settings.private_key.clone(),
                scope: SCOPES.into(),
                subject: mailbox.clone(),
            })?;
            mailboxes.push((mailbox, client));
        }
        anyhow::ensure!(!mailboxes.is_empty(), "CSTRACK_GOOGLE_MAILBOXES names no mailbox");
        Ok(Google { settings, mailboxes })
    }

    fn gmail(&self, mailbox: &str) -> String {
        format!("{}/users/{mailbox}", self.settings.gmail_url.trim_end_matches('/'))
    }

    /// The ids of the messages to read, and the history id to resume from: everything of the
    /// last days on a full read, else what was added since `history`.
    async fn message_ids(
        &self,
        client: &VendorClient,
        mailbox: &str,
        history: Option<&str>,
    ) -> anyhow::Result<(Vec<String>, String)> {
        let base = self.gmail(mailbox);
        if let Some(start) = history {
            let read: anyhow::Result<(Vec<String>, String)> = async {
                let (mut ids, mut page, mut latest) = (Vec::new(), None::<String>, start.to_owned());
                loop {
                    let mut query = vec![("startHistoryId", start), ("historyTypes", "messageAdded")];
                    if let Some(token) = page.as_deref() {
                        query.push(("pageToken", token));
                    }
                    let answer = client.get_json(&format!("{base}/history"), &query).await?;
                    for record in answer["history"].as_array().into_iter().flatten() {
                        for added in record["messagesAdded"].as_array().into_iter().flatten() {
                            if let Some(id) = added["message"]["id"].as_str() {
                                ids.push(id.to_owned());
                            }
                        }
                    }
                    if let Some(id) = answer["historyId"].as_str() {
                        latest = id.to_owned();
                    }
                    match answer["nextPageToken"].as_str() {
                        Some(token) => page = Some(token.to_owned()),
                        None => return Ok((ids, latest)),
                    }
                }
            }
            .await;
            match read {
                Err(error) if expired(&error) => {
                    tracing::info!(mailbox, "Gmail no longer has that history; reading in full again");
                }
                other => return other,
            }
        }
        // The history id first, so what arrives during the read is in the next history.
        let profile = client.get_json(&format!("{base}/profile"), &[]).await?;
        let latest = profile["historyId"]
            .as_str()
            .context("a profile without historyId")?
            .to_owned();
        let newer = format!("newer_than:{}d", self.settings.days.clamp(1, 365));
        let (mut ids, mut page) = (Vec::new(), None::<String>);
        loop {
            let mut query = vec![("q", newer.as_str()), ("maxResults", "500")];
            if let Some(token) = page.as_deref() {
                query.push(("pageToken", token));
            }
            let answer = client.get_json(&format!("{base}/messages"), &query).await?;
            ids.extend(
                answer["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|message| message["id"].as_str().map(str::to_owned)),
            );
            match answer["nextPageToken"].as_str() {
                Some(token) => page = Some(token.to_owned()),
                None => return Ok((ids, latest)),
            }
        }
    }

    /// Calendar events changed since the sync token (or, without one, of the last days and
    /// after), and the token to resume from.
    async fn events(
        &self,
        client: &VendorClient,
        mailbox: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(Vec<Value>, String)> {
        let url = format!(
            "{}/calendars/{mailbox}/events",
            self.settings.calendar_url.trim_end_matches('/')
        );
        let since = (Utc::now() - chrono::Duration::days(self.settings.days.clamp(1, 365))).to_rfc3339();
        let mut token = token.map(str::to_owned);
        loop {
            let (mut items, mut page) = (Vec::new(), None::<String>);
            let read: anyhow::Result<String> = async {
                loop {
                    let mut query = vec![("singleEvents", "true"), ("maxResults", "250")];
                    match token.as_deref() {
                        Some(sync) => query.push(("syncToken", sync)),
                        None => query.push(("timeMin", since.as_str())),
                    }
                    if let Some(next) = page.as_deref() {
                        query.push(("pageToken", next));
                    }
                    let mut answer = client.get_json(&url, &query).await?;
                    if let Some(found) = answer["items"].as_array_mut() {
                        items.append(found);
                    }
                    if let Some(next) = answer["nextPageToken"].as_str() {
                        page = Some(next.to_owned());
                        continue;
                    }
                    return answer["nextSyncToken"]
                        .as_str()
                        .map(str::to_owned)
                        .context("the last events page has no nextSyncToken");
                }
            }
            .await;
            match read {
                Ok(next) => return Ok((items, next)),
                Err(error) if expired(&error) && token.is_some() => {
                    tracing::info!(
                        mailbox,
                        "Calendar no longer honours the sync token; reading in full again"
                    );
                    token = None;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

impl Connector for Google {
    fn name(&self) -> &'static str {
        NAME
    }

    fn source(&self) -> Source {
        Source::Google
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.settings.interval_seconds.max(1.0))
    }

    fn waited_ms(&self) -> u64 {
        self.mailboxes
            .iter()
            .map(|(_, client)| client.waited.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    async fn sync(&self, run: &mut Run<'_>) -> anyhow::Result<()> {
        let cursors = super::cursors(run.pool(), NAME).await?;
        let world = World::load(run.pool()).await?;
        let pool = run.pool().clone();
        for (mailbox, client) in &self.mailboxes {
            let stream = format!("gmail:{mailbox}");
            let (ids, latest) = self
                .message_ids(client, mailbox, cursors.get(&stream).map(String::as_str))
                .await?;
            let mut messages = Vec::with_capacity(ids.len());
            for id in ids {
                let url = format!("{}/messages/{id}", self.gmail(mailbox));
                let query = [
                    ("format", "metadata"),
                    ("metadataHeaders", "From"),
                    ("metadataHeaders", "To"),
                    ("metadataHeaders", "Cc"),
                    ("metadataHeaders", "Subject"),
                ];
                match client.get_json(&url, &query).await {
                    Ok(message) => messages.push(message_of(&message)),
                    // Deleted between the listing and the read.
                    Err(VendorError::Status { status: 404, .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            // In the order they happened, so a reply meets the message it answers.
            messages.sort_by_key(|message| message.at);
            for message in &messages {
                MAILBOXES.apply_message(run, &world, mailbox, message).await?;
            }
            super::save_cursor(&pool, NAME, &stream, &latest).await?;

            let stream = format!("calendar:{mailbox}");
            let (events, token) = self
                .events(client, mailbox, cursors.get(&stream).map(String::as_str))
                .await?;
            for event in &events {
                let meeting = meeting_of(event);
                if !meeting.cancelled && (meeting.start.is_none() || meeting.end.is_none()) {
                    // An all-day event is no meeting.
                    run.ignore();
                    continue;
                }
                MAILBOXES.apply_meeting(run, &world, mailbox, &meeting).await?;
            }
            super::save_cursor(&pool, NAME, &stream, &token).await?;
        }
        MAILBOXES.settle_touches(run, &world).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_addresses_are_read_with_and_without_names() {
        assert_eq!(
            address_in("Dana Whitfield <Dana@Vendor.example>").as_deref(),
            Some("dana@vendor.example")
        );
        assert_eq!(address_in("priya@acme.example").as_deref(), Some("priya@acme.example"));
        assert_eq!(address_in("undisclosed-recipients:;"), None);
        assert_eq!(
            addresses_in("\"Shah, Priya\" <priya@acme.example>, sam@beta.example"),
            ["priya@acme.example", "sam@beta.example"]
        );
    }
}
