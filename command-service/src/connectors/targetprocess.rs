//! TargetProcess (docs/CONNECTORS.md): the work items a customer is linked to (user stories,
//! bugs, features, requests: any assignable), their names and states pulled through the REST
//! API v1 (`/api/v1/Assignables?where=(Id in (...))&include=[...]`, pages along `Next`),
//! authenticated by an access token. Work items are the vendor's; cstrack mirrors them
//! (`work_items`) and shows them on the customer.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use events::metadata::Source;
use serde_json::Value;

use super::vendor::{Auth, Secret, VendorClient};
use super::{Connector, Run};

pub const NAME: &str = "targetprocess";
/// Ids per `where=(Id in (...))`.
const IDS_PER_QUERY: usize = 100;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct TargetProcessSettings {
    /// The account's address (https://acme.tpondemand.com); the connector runs only when set.
    #[arg(
        id = "targetprocess_url",
        long = "targetprocess-url",
        env = "CSTRACK_TARGETPROCESS_URL"
    )]
    pub url: Option<String>,
    /// An access token (Settings, Access Tokens in TargetProcess).
    #[arg(
        id = "targetprocess_access_token",
        long = "targetprocess-access-token",
        env = "CSTRACK_TARGETPROCESS_ACCESS_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub access_token: Secret,
    #[arg(
        id = "targetprocess_interval_seconds",
        long = "targetprocess-interval-seconds",
        env = "CSTRACK_TARGETPROCESS_INTERVAL_SECONDS",
        default_value_t = 900.0
    )]
    pub interval_seconds: f64,
}

pub struct TargetProcess {
    settings: TargetProcessSettings,
    client: VendorClient,
}

/// A TargetProcess date (`/Date(1764590400000+0300)/`, milliseconds since the epoch).
fn tp_date(value: &Value) -> Option<DateTime<Utc>> {
    let text = value.as_str()?.strip_prefix("/Date(")?.strip_suffix(")/")?;
    let millis = text
        .find(['+', '-'])
        .filter(|at| *at > 0)
        .map_or(text, |at| &text[..at]);
    DateTime::from_timestamp_millis(millis.parse().ok()?)
}

impl TargetProcess {
    pub fn new(settings: TargetProcessSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(settings.url.is_some(), "CSTRACK_TARGETPROCESS_URL is not set");
        let client = VendorClient::with_auth(Auth::Query {
            name: "access_token",
            key: settings.access_token.clone(),
        })?;
        Ok(TargetProcess { settings, client })
    }

    fn base(&self) -> String {
        self.settings
            .url
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned()
    }

    /// The assignables with these ids, every page.
    async fn assignables(&self, ids: &[i64]) -> anyhow::Result<Vec<Value>> {
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let mut url = format!("{}/api/v1/Assignables", self.base());
        let filter = format!("(Id in ({}))", list.join(","));
        let mut query: Vec<(&str, &str)> = vec![
            ("where", filter.as_str()),
            ("include", "[Id,Name,EntityType,EntityState,ModifyDate]"),
            ("format", "json"),
            ("take", "100"),
        ];
        let mut items = Vec::new();
        loop {
            let mut page = self.client.get_json(&url, &query).await?;
            items.append(page["Items"].as_array_mut().context("an answer without Items")?);
            match page["Next"].as_str() {
                // The next page's address carries its own query.
                Some(next) => {
                    anyhow::ensure!(next.starts_with(&self.base()), "unexpected Next {next:?}");
                    url = next.to_owned();
                    query.clear();
                }
                None => return Ok(items),
            }
        }
    }
}

impl Connector for TargetProcess {
    fn name(&self) -> &'static str {
        NAME
    }

    fn source(&self) -> Source {
        Source::System
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.settings.interval_seconds.max(1.0))
    }

    fn waited_ms(&self) -> u64 {
        self.client.waited.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn sync(&self, run: &mut Run<'_>) -> anyhow::Result<()> {
        let pool = run.pool().clone();
        let linked: Vec<i64> =
            sqlx::query_scalar("SELECT DISTINCT entity_id FROM work_item_links WHERE system = $1 ORDER BY 1")
                .bind(NAME)
                .fetch_all(&pool)
                .await?;
        for ids in linked.chunks(IDS_PER_QUERY) {
            let items = self.assignables(ids).await?;
            let mut found = BTreeSet::new();
            for item in &items {
                let Some(id) = item["Id"].as_i64() else {
                    run.skip("Assignable", "", "malformed_record", Some("Id"), "no Id".into());
                    continue;
                };
                found.insert(id);
                let (Some(name), Some(state)) = (item["Name"].as_str(), item["EntityState"]["Name"].as_str()) else {
                    run.skip(
                        "Assignable",
                        &id.to_string(),
                        "malformed_record",
                        Some("EntityState"),
                        "no Name or EntityState".into(),
                    );
                    continue;
                };
                let kind = item["EntityType"]["Name"]
                    .as_str()
                    .or(item["ResourceType"].as_str())
                    .unwrap_or("Assignable");
                let changed = sqlx::query(
                    "INSERT INTO work_items (system, entity_id, name, kind, state, modified_at) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (system, entity_id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
                         state = EXCLUDED.state, modified_at = EXCLUDED.modified_at, synced_at = now()
                      WHERE (work_items.name, work_items.kind, work_items.state, work_items.modified_at)
                            IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.state, EXCLUDED.modified_at)",
                )
                .bind(NAME)
                .bind(id)
                .bind(name)
                .bind(kind)
                .bind(state)
                .bind(tp_date(&item["ModifyDate"]))
                .execute(&pool)
                .await?
                .rows_affected()
                    > 0;
                run.mirrored(changed);
            }
            for missing in ids.iter().filter(|id| !found.contains(id)) {
                run.skip(
                    "Assignable",
                    &missing.to_string(),
                    "unknown_work_item",
                    None,
                    "TargetProcess has no such assignable (deleted, or not visible to the token)".into(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targetprocess_dates_are_read() {
        let at = tp_date(&Value::String("/Date(1764590400000+0300)/".into())).unwrap();
        assert_eq!(at.timestamp(), 1_764_590_400);
        assert!(tp_date(&Value::String("2026-12-01".into())).is_none());
    }
}
