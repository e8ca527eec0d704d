//! Gainsight (docs/CONNECTORS.md): each Company's overall health score (and NPS, where a field
//! holds it) recorded as `HealthScoreRecorded` with source `gainsight`; manual overrides made in
//! cstrack pushed back to a Company field. Read through the Company API's query resource, page
//! by page (`limit`, `offset`), incrementally by `ModifiedDate`; authenticated by the tenant's
//! access key in the `Accesskey` header.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use events::metadata::Source;
use serde_json::{json, Value};

use super::salesforce::field_map;
use super::vendor::{Auth, Secret, VendorClient};
use super::{cell, instant, Connector, Record, Run};
use crate::import::plan::{Kind, World};
use crate::import::sheet::Cell;

pub const NAME: &str = "gainsight";
const TARGETS: &[&str] = &["salesforce_id", "score", "nps", "override"];

#[derive(clap::Args, Debug, Clone, Default)]
pub struct GainsightSettings {
    /// The tenant's API domain (for example https://acme.gainsightcloud.com). The connector runs
    /// only when this is set.
    #[arg(id = "gainsight_url", long = "gainsight-url", env = "CSTRACK_GAINSIGHT_URL")]
    pub url: Option<String>,
    #[arg(
        id = "gainsight_access_key",
        long = "gainsight-access-key",
        env = "CSTRACK_GAINSIGHT_ACCESS_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub access_key: Secret,
    /// Company fields by target: `salesforce_id` (matches the customer), `score` (0 to 100),
    /// `nps` (a 0 to 10 response, optional) and `override` (where manual scores are written
    /// back, optional).
    #[arg(
        id = "gainsight_fields",
        long = "gainsight-fields",
        env = "CSTRACK_GAINSIGHT_FIELDS",
        default_value = "salesforce_id=SfdcAccountId,score=OverallScore"
    )]
    pub fields: String,
    /// Companies per page of the query resource (Gainsight reads at most 5,000).
    #[arg(
        id = "gainsight_page_size",
        long = "gainsight-page-size",
        env = "CSTRACK_GAINSIGHT_PAGE_SIZE",
        default_value_t = 1000
    )]
    pub page_size: usize,
    #[arg(
        id = "gainsight_interval_seconds",
        long = "gainsight-interval-seconds",
        env = "CSTRACK_GAINSIGHT_INTERVAL_SECONDS",
        default_value_t = 900.0
    )]
    pub interval_seconds: f64,
}

pub struct Gainsight {
    settings: GainsightSettings,
    fields: BTreeMap<String, String>,
    client: VendorClient,
}

impl Gainsight {
    pub fn new(settings: GainsightSettings) -> anyhow::Result<Self> {
        anyhow::ensure!(settings.url.is_some(), "CSTRACK_GAINSIGHT_URL is not set");
        let fields = field_map(&settings.fields, TARGETS).context("CSTRACK_GAINSIGHT_FIELDS")?;
        anyhow::ensure!(
            fields.keys().all(|target| TARGETS.contains(&target.as_str())),
            "CSTRACK_GAINSIGHT_FIELDS takes salesforce_id, score, nps and override"
        );
        for required in ["salesforce_id", "score"] {
            anyhow::ensure!(
                fields.contains_key(required),
                "CSTRACK_GAINSIGHT_FIELDS must map {required}"
            );
        }
        let client = VendorClient::with_auth(Auth::Header {
            name: "Accesskey",
            key: settings.access_key.clone(),
        })?;
        Ok(Gainsight {
            settings,
            fields,
            client,
        })
    }

    fn base(&self) -> String {
        self.settings
            .url
            .as_deref()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned()
    }

    /// Every Company modified at or after `since`, oldest first.
    async fn companies(&self, since: DateTime<Utc>) -> anyhow::Result<Vec<Value>> {
        let url = format!("{}/v1/data/objects/query/Company", self.base());
        let mut select: Vec<&str> = vec!["Gsid", "Name", "ModifiedDate"];
        select.extend(self.fields.values().map(String::as_str));
        select.sort();
        select.dedup();
        let page_size = self.settings.page_size.clamp(1, 5000);
        let mut records = Vec::new();
        loop {
            let body = json!({
                "select": select,
                "where": {"conditions": [{"name": "ModifiedDate", "alias": "A", "value": [since.to_rfc3339()], "operator": "GTE"}],
                          "expression": "A"},
                "orderBy": {"ModifiedDate": "asc", "Gsid": "asc"},
                "limit": page_size,
                "offset": records.len(),
            });
            let answer = self
                .client
                .send_json(reqwest::Method::POST, &url, &[], Some(&body))
                .await?;
            anyhow::ensure!(
                answer["result"] == true,
                "Gainsight refused the query: {} {}",
                answer["errorCode"].as_str().unwrap_or_default(),
                answer["errorDesc"].as_str().unwrap_or_default()
            );
            let page = answer["data"]["records"]
                .as_array()
                .context("a query answer without data.records")?;
            let full = page.len() == page_size;
            records.extend(page.iter().cloned());
            if !full {
                return Ok(records);
            }
        }
    }

    /// Writes each customer's latest manual health score to the Company's override field, when
    /// it differs from what was written before.
    async fn push_overrides(&self, run: &mut Run<'_>, companies: &BTreeMap<String, String>) -> anyhow::Result<()> {
        let Some(field) = self.fields.get("override") else {
            return Ok(());
        };
        let pool = run.pool().clone();
        let latest: Vec<(String, f64, DateTime<Utc>)> = sqlx::query_as(
            "SELECT p.salesforce_id, h.score, h.measured_at FROM customer_profiles p
               JOIN LATERAL (SELECT score, source, measured_at FROM health_points h WHERE h.customer_id = p.customer_id
                              ORDER BY measured_at DESC, sequence DESC LIMIT 1) h ON true
              WHERE h.source = 'manual' AND p.salesforce_id <> ''",
        )
        .fetch_all(&pool)
        .await?;
        let url = format!("{}/v1/data/objects/Company", self.base());
        for (salesforce_id, score, measured_at) in latest {
            let Some(gsid) = companies.get(&salesforce_id.to_lowercase()) else {
                continue;
            };
            let value = json!({"score": score, "measured_at": measured_at});
            if super::last_value(&pool, NAME, gsid, "override").await?.as_ref() == Some(&value) {
                continue;
            }
            let body = json!({"records": [{"Gsid": gsid, field.as_str(): score}]});
            match self
                .client
                .send_json(reqwest::Method::PUT, &url, &[("keys", "Gsid")], Some(&body))
                .await
            {
                Ok(answer) if answer["result"] == true => {
                    super::save_value(&pool, NAME, gsid, "override", &value).await?;
                    run.pushed();
                }
                Ok(answer) => run.push_refused(
                    "Company",
                    gsid,
                    format!(
                        "Gainsight refused the update: {}",
                        answer["errorDesc"].as_str().unwrap_or_default()
                    ),
                ),
                Err(super::vendor::VendorError::Status { status, body }) if (400..500).contains(&status) => {
                    run.push_refused("Company", gsid, format!("Gainsight answered {status}: {body}"));
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }
}

impl Connector for Gainsight {
    fn name(&self) -> &'static str {
        NAME
    }

    fn source(&self) -> Source {
        Source::Gainsight
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.settings.interval_seconds.max(1.0))
    }

    fn waited_ms(&self) -> u64 {
        self.client.waited.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn sync(&self, run: &mut Run<'_>) -> anyhow::Result<()> {
        let cursors = super::cursors(run.pool(), NAME).await?;
        let since = cursors
            .get("Company")
            .and_then(|cursor| DateTime::parse_from_rfc3339(cursor).ok())
            .map_or(DateTime::UNIX_EPOCH, |at| at.with_timezone(&Utc));
        let companies = self.companies(since).await?;
        let world = World::load(run.pool()).await?;
        let pool = run.pool().clone();
        let mut through = since;
        let mut linked: BTreeMap<String, String> = BTreeMap::new();
        for company in &companies {
            // An ISO instant, or milliseconds since the epoch.
            let modified = company["ModifiedDate"].as_str().and_then(instant).or_else(|| {
                company["ModifiedDate"]
                    .as_i64()
                    .and_then(DateTime::from_timestamp_millis)
            });
            let (Some(gsid), Some(modified)) = (company["Gsid"].as_str(), modified) else {
                let id = company["Gsid"].as_str().unwrap_or_default();
                run.skip(
                    "Company",
                    id,
                    "malformed_record",
                    None,
                    "no Gsid or ModifiedDate".into(),
                );
                continue;
            };
            through = through.max(modified);
            let salesforce_id = company[self.fields["salesforce_id"].as_str()]
                .as_str()
                .unwrap_or_default();
            if salesforce_id.is_empty() {
                run.skip(
                    "Company",
                    gsid,
                    "unknown_customer",
                    Some("salesforce_id"),
                    "the Company has no Salesforce id".into(),
                );
                continue;
            }
            linked.insert(salesforce_id.to_lowercase(), gsid.to_owned());
            let score = &company[self.fields["score"].as_str()];
            if !score.is_null() && super::last_value(&pool, NAME, gsid, "score").await?.as_ref() != Some(score) {
                let record: Record = vec![
                    ("customer".into(), Cell::Text(salesforce_id.to_owned())),
                    ("score".into(), cell(score)),
                    ("measured_at".into(), Cell::DateTime(modified.naive_utc())),
                    ("source".into(), Cell::Text("gainsight".into())),
                    ("reason".into(), Cell::Text("Gainsight overall score".into())),
                ];
                let key = format!("gainsight:Company:{gsid}:score:{}", modified.to_rfc3339());
                let outcome = run
                    .apply(Kind::HealthScores, &world, "Company", gsid, &key, record)
                    .await?;
                if outcome != super::Outcome::Skipped {
                    super::save_value(&pool, NAME, gsid, "score", score).await?;
                }
            }
            if let Some(field) = self.fields.get("nps") {
                let nps = &company[field.as_str()];
                if !nps.is_null() && super::last_value(&pool, NAME, gsid, "nps").await?.as_ref() != Some(nps) {
                    let customer = world.customer(salesforce_id);
                    let score = nps.as_f64().filter(|n| n.fract() == 0.0 && (0.0..=10.0).contains(n));
                    match (customer, score) {
                        (None, _) => run.skip(
                            "Company",
                            gsid,
                            "unknown_customer",
                            Some("salesforce_id"),
                            format!("no customer has Salesforce id {salesforce_id}"),
                        ),
                        (_, None) => run.skip(
                            "Company",
                            gsid,
                            "invalid_value",
                            Some("nps"),
                            format!("NPS {nps} is not 0 to 10"),
                        ),
                        (Some(customer_id), Some(score)) => {
                            let command = crate::domain::customer::CustomerCommand::RecordNps(
                                crate::domain::customer::RecordNps {
                                    score: score as u8,
                                    stakeholder_id: None,
                                    comment: Some("Gainsight NPS".into()),
                                    occurred_at: Some(modified),
                                },
                            );
                            let key = format!("gainsight:Company:{gsid}:nps:{}", modified.to_rfc3339());
                            let outcome = run.command(customer_id, command, "Company", gsid, &key).await?;
                            if outcome != super::Outcome::Skipped {
                                super::save_value(&pool, NAME, gsid, "nps", nps).await?;
                            }
                        }
                    }
                }
            }
        }
        super::save_cursor(&pool, NAME, "Company", &through.to_rfc3339()).await?;
        // Every Company ever linked, for the overrides (the latest read holds only changes).
        let known: Vec<(String, String)> = sqlx::query_as(
            "SELECT lower(value ->> 'salesforce_id'), record_id FROM connector_values WHERE connector = $1 AND fact = 'link'",
        )
        .bind(NAME)
        .fetch_all(&pool)
        .await?;
        for (salesforce_id, gsid) in &linked {
            super::save_value(&pool, NAME, gsid, "link", &json!({"salesforce_id": salesforce_id})).await?;
        }
        linked.extend(known);
        self.push_overrides(run, &linked).await
    }
}
