//! Salesforce (docs/CONNECTORS.md): Accounts to customers, Contacts to stakeholders, open
//! renewal Opportunities to each customer's renewal date (and, when configured, a custom field
//! holding the renewal's amount). Read through the REST API's SOQL `query` resource, page by
//! page along `nextRecordsUrl`, incrementally by `SystemModstamp`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use events::metadata::Source;
use serde_json::Value;

use super::vendor::{OAuth, Secret, VendorClient};
use super::{cell, instant, Connector, Record, Run};
use crate::import::plan::{Kind, World};
use crate::import::sheet::Cell;

pub const NAME: &str = "salesforce";

#[derive(clap::Args, Debug, Clone, Default)]
pub struct SalesforceSettings {
    /// OAuth2 token endpoint (for example https://login.salesforce.com/services/oauth2/token).
    /// The connector runs only when this is set.
    #[arg(
        id = "salesforce_token_url",
        long = "salesforce-token-url",
        env = "CSTRACK_SALESFORCE_TOKEN_URL"
    )]
    pub token_url: Option<String>,
    #[arg(
        id = "salesforce_client_id",
        long = "salesforce-client-id",
        env = "CSTRACK_SALESFORCE_CLIENT_ID",
        default_value = ""
    )]
    pub client_id: String,
    #[arg(
        id = "salesforce_client_secret",
        long = "salesforce-client-secret",
        env = "CSTRACK_SALESFORCE_CLIENT_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub client_secret: Secret,
    /// A refresh token (the refresh-token grant); without one, client credentials are used.
    #[arg(
        id = "salesforce_refresh_token",
        long = "salesforce-refresh-token",
        env = "CSTRACK_SALESFORCE_REFRESH_TOKEN",
        hide_env_values = true
    )]
    pub refresh_token: Option<Secret>,
    /// The key rotated refresh tokens are kept in the store under (64 hex characters); required
    /// with a refresh token.
    #[arg(
        id = "salesforce_token_key",
        long = "token-key",
        env = "CSTRACK_TOKEN_KEY",
        hide_env_values = true
    )]
    pub token_key: Option<super::vault::TokenKey>,
    /// The instance to call; by default the `instance_url` of the token answer.
    #[arg(
        id = "salesforce_instance_url",
        long = "salesforce-instance-url",
        env = "CSTRACK_SALESFORCE_INSTANCE_URL"
    )]
    pub instance_url: Option<String>,
    #[arg(
        id = "salesforce_api_version",
        long = "salesforce-api-version",
        env = "CSTRACK_SALESFORCE_API_VERSION",
        default_value = "v60.0"
    )]
    pub api_version: String,
    /// Account fields by target: `target=Field` pairs, comma-separated; targets are the
    /// customer import's (name, arr, tier, csm, industry, account_manager, products_owned,
    /// contract_start, renewal_date, onboarded_at, cf.<custom field key>).
    #[arg(
        id = "salesforce_account_fields",
        long = "salesforce-account-fields",
        env = "CSTRACK_SALESFORCE_ACCOUNT_FIELDS",
        default_value = "name=Name,arr=AnnualRevenue,tier=Tier__c,csm=Owner.Email,industry=Industry,contract_start=CreatedDate"
    )]
    pub account_fields: String,
    /// Contact fields by target (name, role, level, email). Without `level`, it is read from
    /// the title (docs/CONNECTORS.md).
    #[arg(
        id = "salesforce_contact_fields",
        long = "salesforce-contact-fields",
        env = "CSTRACK_SALESFORCE_CONTACT_FIELDS",
        default_value = "name=Name,role=Title,email=Email"
    )]
    pub contact_fields: String,
    /// The Opportunity `Type` of renewals.
    #[arg(
        id = "salesforce_renewal_type",
        long = "salesforce-renewal-type",
        env = "CSTRACK_SALESFORCE_RENEWAL_TYPE",
        default_value = "Renewal"
    )]
    pub renewal_type: String,
    /// The custom field (key) that receives the open renewal's amount, when it is defined.
    #[arg(
        id = "salesforce_renewal_amount_field",
        long = "salesforce-renewal-amount-field",
        env = "CSTRACK_SALESFORCE_RENEWAL_AMOUNT_FIELD"
    )]
    pub renewal_amount_field: Option<String>,
    /// Write back to Account fields after each sync: `health_colour=Field` and/or
    /// `coverage_status=Field` pairs; empty: nothing is written.
    #[arg(
        id = "salesforce_write_back",
        long = "salesforce-write-back",
        env = "CSTRACK_SALESFORCE_WRITE_BACK",
        default_value = ""
    )]
    pub write_back: String,
    /// Seconds between two syncs.
    #[arg(
        id = "salesforce_interval_seconds",
        long = "salesforce-interval-seconds",
        env = "CSTRACK_SALESFORCE_INTERVAL_SECONDS",
        default_value_t = 900.0
    )]
    pub interval_seconds: f64,
}

/// `target=Field` pairs, checked: known targets, field paths of letters, digits, `_` and `.`.
pub fn field_map(text: &str, targets: &[&str]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
        let (target, field) = pair
            .split_once('=')
            .with_context(|| format!("{pair:?} is not target=Field"))?;
        let (target, field) = (target.trim(), field.trim());
        anyhow::ensure!(
            targets.contains(&target) || target.starts_with("cf."),
            "unknown target {target:?} (targets: {})",
            targets.join(", ")
        );
        anyhow::ensure!(
            !field.is_empty() && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'),
            "{field:?} is not a Salesforce field name"
        );
        map.insert(target.to_owned(), field.to_owned());
    }
    Ok(map)
}

const ACCOUNT_TARGETS: &[&str] = &[
    "name",
    "arr",
    "tier",
    "csm",
    "industry",
    "account_manager",
    "products_owned",
    "contract_start",
    "renewal_date",
    "onboarded_at",
];
const CONTACT_TARGETS: &[&str] = &["name", "role", "level", "email"];
const WRITE_BACK_TARGETS: &[&str] = &["health_colour", "coverage_status"];

/// A SOQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A SOQL datetime literal, to the second (the cursor compares with `>=`, so nothing is lost).
fn soql_instant(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The value at a field path (`Owner.Email`) of a record.
fn at_path<'a>(record: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(record, |value, part| &value[part])
}

/// A stakeholder's level from a title when no field says it: chiefs, presidents, VPs, heads
/// and directors are executives, everyone else a user. Champions are named in a field.
pub fn level_from_title(title: &str) -> &'static str {
    let title = title.to_lowercase();
    let words: Vec<&str> = title.split(|c: char| !c.is_alphanumeric()).collect();
    let executive = [
        "chief",
        "president",
        "vp",
        "svp",
        "evp",
        "head",
        "director",
        "ceo",
        "cfo",
        "cto",
        "coo",
        "cio",
        "cro",
    ];
    if words.iter().any(|word| executive.contains(word)) || title.contains("vice president") {
        "executive"
    } else {
        "user"
    }
}

pub struct Salesforce {
    settings: SalesforceSettings,
    accounts: BTreeMap<String, String>,
    contacts: BTreeMap<String, String>,
    /// cstrack fact -> Account field written back.
    write_back: BTreeMap<String, String>,
    client: VendorClient,
}

/// Account ids per SOQL `IN` list.
const IDS_PER_QUERY: usize = 200;

impl Salesforce {
    pub fn new(settings: SalesforceSettings) -> anyhow::Result<Self> {
        let token_url = settings
            .token_url
            .clone()
            .context("CSTRACK_SALESFORCE_TOKEN_URL is not set")?;
        let accounts =
            field_map(&settings.account_fields, ACCOUNT_TARGETS).context("CSTRACK_SALESFORCE_ACCOUNT_FIELDS")?;
        let contacts =
            field_map(&settings.contact_fields, CONTACT_TARGETS).context("CSTRACK_SALESFORCE_CONTACT_FIELDS")?;
        for required in ["name", "arr", "tier", "csm", "contract_start"] {
            anyhow::ensure!(
                accounts.contains_key(required),
                "CSTRACK_SALESFORCE_ACCOUNT_FIELDS must map {required}"
            );
        }
        for required in ["name", "role"] {
            anyhow::ensure!(
                contacts.contains_key(required),
                "CSTRACK_SALESFORCE_CONTACT_FIELDS must map {required}"
            );
        }
        let write_back =
            field_map(&settings.write_back, WRITE_BACK_TARGETS).context("CSTRACK_SALESFORCE_WRITE_BACK")?;
        anyhow::ensure!(
            write_back
                .keys()
                .all(|target| WRITE_BACK_TARGETS.contains(&target.as_str())),
            "CSTRACK_SALESFORCE_WRITE_BACK takes health_colour and coverage_status"
        );
        anyhow::ensure!(
            settings.refresh_token.is_none() || settings.token_key.is_some(),
            "CSTRACK_TOKEN_KEY is not set: Salesforce rotates refresh tokens, and the newest is kept in \
             the store encrypted under that key (64 hex characters; `openssl rand -hex 32` makes one)"
        );
        let client = VendorClient::new(OAuth {
            token_url,
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            refresh_token: settings.refresh_token.clone(),
            scope: None,
        })?;
        Ok(Salesforce {
            settings,
            accounts,
            contacts,
            write_back,
            client,
        })
    }

    async fn base(&self) -> anyhow::Result<String> {
        let instance = match &self.settings.instance_url {
            Some(url) => url.clone(),
            None => self
                .client
                .instance_url()
                .await?
                .context("the token answer names no instance_url; set CSTRACK_SALESFORCE_INSTANCE_URL")?,
        };
        Ok(instance.trim_end_matches('/').to_owned())
    }

    /// Every record a SOQL query selects, read page by page.
    async fn query(&self, soql: &str) -> anyhow::Result<Vec<Value>> {
        let base = self.base().await?;
        let mut url = format!("{base}/services/data/{}/query", self.settings.api_version);
        let mut page = self.client.get_json(&url, &[("q", soql)]).await?;
        let mut kept = Vec::new();
        loop {
            let records = page["records"]
                .as_array_mut()
                .context("a query answer without records")?;
            kept.append(records);
            match page["nextRecordsUrl"]
                .as_str()
                .filter(|_| page["done"] != Value::Bool(true))
            {
                Some(next) => {
                    anyhow::ensure!(
                        next.starts_with("/services/data/"),
                        "unexpected nextRecordsUrl {next:?}"
                    );
                    url = format!("{base}{next}");
                    page = self.client.get_json(&url, &[]).await?;
                }
                None => return Ok(kept),
            }
        }
    }

    fn account_soql(&self, condition: &str) -> String {
        let mut fields: Vec<&str> = vec!["Id", "SystemModstamp"];
        fields.extend(self.accounts.values().map(String::as_str));
        fields.sort();
        fields.dedup();
        format!(
            "SELECT {}, (SELECT Id, CloseDate, Amount, SystemModstamp FROM Opportunities WHERE Type = {} AND IsClosed = false ORDER BY CloseDate LIMIT 1) FROM Account WHERE {condition} ORDER BY SystemModstamp, Id",
            fields.join(", "),
            literal(&self.settings.renewal_type)
        )
    }

    /// An account as a customer import row, and the idempotency key of this version of it.
    fn account_record(&self, account: &Value, world: &World) -> Result<(Record, String), String> {
        let id = account["Id"].as_str().ok_or("no Id")?;
        let stamp = account["SystemModstamp"].as_str().ok_or("no SystemModstamp")?;
        let mut record: Record = vec![("salesforce_id".into(), Cell::Text(id.to_owned()))];
        for (target, field) in &self.accounts {
            if let Some(key) = target.strip_prefix("cf.") {
                if world.definitions.get(key).is_none() {
                    continue;
                }
            }
            record.push((target.clone(), cell(at_path(account, field))));
        }
        let renewal = &account["Opportunities"]["records"][0];
        let mut key = format!("salesforce:Account:{id}:{stamp}");
        if renewal.is_object() {
            if !self.accounts.contains_key("renewal_date") {
                record.push(("renewal_date".into(), cell(&renewal["CloseDate"])));
            }
            if let Some(field) = &self.settings.renewal_amount_field {
                if world.definitions.get(field).is_some() {
                    record.push((format!("cf.{field}"), cell(&renewal["Amount"])));
                }
            }
            key.push_str(&format!(
                ":{}:{}",
                renewal["Id"].as_str().unwrap_or_default(),
                renewal["SystemModstamp"].as_str().unwrap_or_default()
            ));
        }
        Ok((record, key))
    }

    fn contact_record(&self, contact: &Value) -> Result<(Record, String), String> {
        let id = contact["Id"].as_str().ok_or("no Id")?;
        let stamp = contact["SystemModstamp"].as_str().ok_or("no SystemModstamp")?;
        let account = contact["AccountId"].as_str().ok_or("no AccountId")?;
        let mut record: Record = vec![("customer".into(), Cell::Text(account.to_owned()))];
        for (target, field) in &self.contacts {
            record.push((target.clone(), cell(at_path(contact, field))));
        }
        if !self.contacts.contains_key("level") {
            let title = self
                .contacts
                .get("role")
                .and_then(|field| at_path(contact, field).as_str())
                .unwrap_or_default();
            record.push(("level".into(), Cell::Text(level_from_title(title).into())));
        }
        Ok((record, format!("salesforce:Contact:{id}:{stamp}")))
    }

    /// The latest `SystemModstamp` of `records` and `since`.
    fn latest(records: &[Value], since: DateTime<Utc>) -> DateTime<Utc> {
        records
            .iter()
            .filter_map(|record| record["SystemModstamp"].as_str().and_then(instant))
            .fold(since, DateTime::max)
    }

    async fn apply_accounts(
        &self,
        run: &mut Run<'_>,
        accounts: &[Value],
        seen: &mut HashSet<String>,
    ) -> anyhow::Result<()> {
        let world = World::load(run.pool()).await?;
        for account in accounts {
            let id = account["Id"].as_str().unwrap_or_default().to_owned();
            match self.account_record(account, &world) {
                Err(reason) => run.skip("Account", &id, "malformed_record", None, reason),
                Ok((record, key)) => {
                    run.apply(Kind::Customers, &world, "Account", &id, &key, record).await?;
                }
            }
            seen.insert(id);
        }
        Ok(())
    }
}

impl Salesforce {
    /// Writes each customer's health colour and coverage status (as of today, under the rules
    /// in force) to the configured Account fields, where they changed since the last write.
    async fn write_back(&self, run: &mut Run<'_>) -> anyhow::Result<()> {
        if self.write_back.is_empty() {
            return Ok(());
        }
        let pool = run.pool().clone();
        let today = Utc::now().date_naive();
        let rules = events::service::read_models::current_rules(&pool).await?;
        let facts = events::service::read_models::account_facts(&pool, today, None).await?;
        let accounts: std::collections::HashMap<uuid::Uuid, String> = sqlx::query_as::<_, (uuid::Uuid, String)>(
            "SELECT customer_id, salesforce_id FROM customer_profiles WHERE churned_on IS NULL AND salesforce_id <> ''",
        )
        .fetch_all(&pool)
        .await?
        .into_iter()
        .collect();
        let pushed: std::collections::HashMap<String, Value> =
            sqlx::query_as::<_, (String, Value)>("SELECT record_id, pushed FROM connector_pushes WHERE connector = $1")
                .bind(NAME)
                .fetch_all(&pool)
                .await?
                .into_iter()
                .collect();
        let base = self.base().await?;
        for account in &facts {
            let Some(id) = accounts.get(&account.customer_id) else {
                continue;
            };
            let mut values = serde_json::Map::new();
            if let Some(field) = self.write_back.get("health_colour") {
                if let Some(score) = account.inputs.health_score {
                    let colour = format!("{:?}", events::coverage::HealthColour::of(score));
                    values.insert(field.clone(), Value::String(colour));
                }
            }
            if let Some(field) = self.write_back.get("coverage_status") {
                let assessment = events::coverage::assess(&account.inputs, &rules.standard(account.tier));
                values.insert(field.clone(), Value::String(assessment.status.as_str().to_owned()));
            }
            let values = Value::Object(values);
            if values.as_object().is_some_and(|values| values.is_empty()) || pushed.get(id) == Some(&values) {
                continue;
            }
            let url = format!(
                "{base}/services/data/{}/sobjects/Account/{id}",
                self.settings.api_version
            );
            match self
                .client
                .send_json(reqwest::Method::PATCH, &url, &[], Some(&values))
                .await
            {
                Ok(_) => {
                    sqlx::query(
                        "INSERT INTO connector_pushes (connector, record_id, pushed) VALUES ($1, $2, $3)
                         ON CONFLICT (connector, record_id) DO UPDATE SET pushed = EXCLUDED.pushed, pushed_at = now()",
                    )
                    .bind(NAME)
                    .bind(id)
                    .bind(&values)
                    .execute(&pool)
                    .await?;
                    run.pushed();
                }
                // Salesforce refused this record (a field that does not exist, a validation
                // rule): reported, and the others are still written.
                Err(super::vendor::VendorError::Status { status, body }) if (400..500).contains(&status) => {
                    run.push_refused("Account", id, format!("Salesforce answered {status}: {body}"));
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }
}

fn since(cursors: &std::collections::HashMap<String, String>, stream: &str) -> DateTime<Utc> {
    cursors
        .get(stream)
        .and_then(|cursor| DateTime::parse_from_rfc3339(cursor).ok())
        .map_or(DateTime::UNIX_EPOCH, |at| at.with_timezone(&Utc))
}

impl Connector for Salesforce {
    fn name(&self) -> &'static str {
        NAME
    }

    fn source(&self) -> Source {
        Source::Salesforce
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.settings.interval_seconds.max(1.0))
    }

    fn waited_ms(&self) -> u64 {
        self.client.waited.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn sync(&self, run: &mut Run<'_>) -> anyhow::Result<()> {
        if let (Some(configured), Some(key)) = (&self.settings.refresh_token, &self.settings.token_key) {
            let vault = super::vault::TokenVault::new(run.pool().clone(), NAME, key.clone(), configured);
            self.client.keep_rotated_tokens_in(vault).await?;
        }
        let cursors = super::cursors(run.pool(), NAME).await?;
        let mut seen = HashSet::new();

        // Accounts changed since the cursor, each with its open renewal.
        let from = since(&cursors, "Account");
        let accounts = self
            .query(&self.account_soql(&format!("SystemModstamp >= {}", soql_instant(from))))
            .await?;
        self.apply_accounts(run, &accounts, &mut seen).await?;
        let through = Self::latest(&accounts, from);
        super::save_cursor(run.pool(), NAME, "Account", &through.to_rfc3339()).await?;

        // Accounts whose renewal changed without the account changing.
        let from = since(&cursors, "Opportunity");
        let renewals = self
            .query(
                &format!(
                    "SELECT Id, AccountId, SystemModstamp FROM Opportunity WHERE Type = {} AND SystemModstamp >= {} ORDER BY SystemModstamp, Id",
                    literal(&self.settings.renewal_type),
                    soql_instant(from)
                ))
            .await?;
        let mut pending: Vec<String> = renewals
            .iter()
            .filter_map(|opportunity| opportunity["AccountId"].as_str())
            .filter(|id| !seen.contains(*id))
            .map(str::to_owned)
            .collect();
        pending.sort();
        pending.dedup();
        for ids in pending.chunks(IDS_PER_QUERY) {
            let list: Vec<String> = ids.iter().map(|id| literal(id)).collect();
            let accounts = self
                .query(&self.account_soql(&format!("Id IN ({})", list.join(", "))))
                .await?;
            self.apply_accounts(run, &accounts, &mut seen).await?;
        }
        let through = Self::latest(&renewals, from);
        super::save_cursor(run.pool(), NAME, "Opportunity", &through.to_rfc3339()).await?;

        // Contacts, once the accounts they belong to are customers.
        let from = since(&cursors, "Contact");
        let mut fields: Vec<&str> = vec!["Id", "AccountId", "SystemModstamp"];
        fields.extend(self.contacts.values().map(String::as_str));
        fields.sort();
        fields.dedup();
        let contacts = self
            .query(&format!(
                "SELECT {} FROM Contact WHERE AccountId != null AND SystemModstamp >= {} ORDER BY SystemModstamp, Id",
                fields.join(", "),
                soql_instant(from)
            ))
            .await?;
        let world = World::load(run.pool()).await?;
        for contact in &contacts {
            let id = contact["Id"].as_str().unwrap_or_default().to_owned();
            match self.contact_record(contact) {
                Err(reason) => run.skip("Contact", &id, "malformed_record", None, reason),
                Ok((record, key)) => {
                    run.apply(Kind::Stakeholders, &world, "Contact", &id, &key, record)
                        .await?;
                }
            }
        }
        let through = Self::latest(&contacts, from);
        super::save_cursor(run.pool(), NAME, "Contact", &through.to_rfc3339()).await?;
        self.write_back(run).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_maps_are_checked() {
        let map = field_map("name=Name, arr=ARR__c,csm=Owner.Email", ACCOUNT_TARGETS).unwrap();
        assert_eq!(map["csm"], "Owner.Email");
        assert!(field_map("colour=Colour__c", ACCOUNT_TARGETS).is_err());
        assert!(field_map("name=Name; DROP", ACCOUNT_TARGETS).is_err());
        assert!(field_map("name", ACCOUNT_TARGETS).is_err());
    }

    #[test]
    fn soql_literals_are_escaped() {
        assert_eq!(literal("O'Brien\\x"), "'O\\'Brien\\\\x'");
    }

    #[test]
    fn levels_come_from_titles() {
        assert_eq!(level_from_title("VP Operations"), "executive");
        assert_eq!(level_from_title("Chief Revenue Officer"), "executive");
        assert_eq!(level_from_title("Vice President, Sales"), "executive");
        assert_eq!(level_from_title("Data Analyst"), "user");
        assert_eq!(level_from_title("Headcount planner"), "user");
    }
}
