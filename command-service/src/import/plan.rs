//! From a sheet to commands: the targets of each import kind, the column mapping suggested from
//! the headers, and the row-by-row plan. Every row becomes the same commands the REST API takes,
//! decided by the same aggregates in a [`Batch`]; a preview reports the plan, a commit appends it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use events::customer::{ActivityKind, Direction, HealthSource, StakeholderLevel, Tier};
use events::fields::{Definitions, FieldType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::sheet::{Cell, Sheet};
use crate::auth::Principal;
use crate::domain::customer::*;
use crate::domain::CommandError;
use crate::store::{Batch, ExecuteError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Customers,
    Stakeholders,
    Activities,
    HealthScores,
    CustomFields,
}

impl Kind {
    pub fn parse(value: &str) -> Option<Kind> {
        serde_json::from_value(Value::String(value.to_owned())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Customers => "customers",
            Kind::Stakeholders => "stakeholders",
            Kind::Activities => "activities",
            Kind::HealthScores => "health_scores",
            Kind::CustomFields => "custom_fields",
        }
    }
}

/// A field an import column can fill.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub key: String,
    pub label: String,
    pub required: bool,
    #[serde(skip)]
    synonyms: Vec<String>,
}

fn target(key: &str, label: &str, required: bool, synonyms: &[&str]) -> Target {
    Target {
        key: key.to_owned(),
        label: label.to_owned(),
        required,
        synonyms: synonyms
            .iter()
            .map(|s| normal(s))
            .chain([normal(key), normal(label)])
            .collect(),
    }
}

/// A header as compared: lower-case letters and digits only ("Account Name" = "account_name").
fn normal(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

const CUSTOMER_REF: &[&str] = &[
    "sfdc id",
    "sfdc account id",
    "salesforce account id",
    "account id",
    "sf id",
    "salesforce id",
    "salesforceid",
];

/// The targets of a kind; custom fields are `cf.<key>` with their label as a synonym.
pub fn targets(kind: Kind, definitions: &Definitions) -> Vec<Target> {
    let mut targets = match kind {
        Kind::Customers => vec![
            target(
                "name",
                "Name",
                true,
                &["account name", "customer", "customer name", "company", "account"],
            ),
            target("salesforce_id", "Salesforce id", true, CUSTOMER_REF),
            target("tier", "Tier", true, &["segment", "service tier", "customer tier"]),
            target(
                "arr",
                "ARR",
                true,
                &["annual recurring revenue", "arr usd", "contract value", "acv"],
            ),
            target(
                "csm",
                "CSM",
                true,
                &["csm email", "customer success manager", "csm name", "owner", "cs owner"],
            ),
            target("industry", "Industry", false, &["vertical", "sector"]),
            target(
                "account_manager",
                "Account manager",
                false,
                &["am", "account executive", "ae", "account owner"],
            ),
            target("products_owned", "Products owned", false, &["products", "product"]),
            target(
                "contract_start",
                "Contract start",
                true,
                &["start date", "contract start date", "start"],
            ),
            target(
                "renewal_date",
                "Renewal date",
                true,
                &["renewal", "contract end", "end date", "renewal date"],
            ),
            target(
                "onboarded_at",
                "Onboarded at",
                false,
                &["onboarded", "customer since", "onboarding date"],
            ),
        ],
        Kind::Stakeholders => vec![
            target("customer", "Customer (Salesforce id)", true, CUSTOMER_REF),
            target("name", "Name", true, &["full name", "contact", "contact name"]),
            target("role", "Role", true, &["title", "job title", "position"]),
            target("level", "Level", true, &["seniority", "stakeholder level", "type"]),
            target("email", "E-mail", false, &["email address", "mail", "e mail"]),
        ],
        Kind::Activities => vec![
            target("customer", "Customer (Salesforce id)", true, CUSTOMER_REF),
            target("kind", "Kind", true, &["type", "activity type", "activity"]),
            target("direction", "Direction", true, &["inbound outbound", "in out"]),
            target(
                "occurred_at",
                "Occurred at",
                true,
                &["date", "when", "activity date", "timestamp"],
            ),
            target(
                "duration_minutes",
                "Duration (minutes)",
                false,
                &["duration", "minutes", "length"],
            ),
            target("subject", "Subject", false, &["title", "summary", "description"]),
            target(
                "participants",
                "Participants (e-mails)",
                false,
                &["attendees", "contacts", "participant emails"],
            ),
            target(
                "response_received",
                "Response received",
                false,
                &["replied", "response"],
            ),
            target(
                "response_time_hours",
                "Response time (hours)",
                false,
                &["response time", "hours to respond"],
            ),
        ],
        Kind::HealthScores => vec![
            target("customer", "Customer (Salesforce id)", true, CUSTOMER_REF),
            target("score", "Score", true, &["health score", "health", "overall score"]),
            target(
                "measured_at",
                "Measured at",
                true,
                &["date", "as of", "score date", "measured"],
            ),
            target("source", "Source", false, &["health source"]),
            target("reason", "Reason", false, &["comment", "notes", "why"]),
        ],
        Kind::CustomFields => vec![target("customer", "Customer (Salesforce id)", true, CUSTOMER_REF)],
    };
    if matches!(kind, Kind::Customers | Kind::CustomFields) {
        targets.extend(
            definitions
                .fields
                .iter()
                .map(|field| target(&format!("cf.{}", field.key), &field.label, false, &[&field.key])),
        );
    }
    targets
}

/// target key -> header text.
pub type Mapping = BTreeMap<String, String>;

/// Suggests a column for each target: a header equal to the target's key, label or a common
/// synonym, ignoring case, spacing and punctuation; each column is used once.
pub fn suggest(targets: &[Target], headers: &[String]) -> Mapping {
    let mut used = vec![false; headers.len()];
    let mut mapping = Mapping::new();
    for target in targets {
        let found = headers
            .iter()
            .enumerate()
            .find(|(index, header)| !used[*index] && target.synonyms.contains(&normal(header)));
        if let Some((index, header)) = found {
            used[index] = true;
            mapping.insert(target.key.clone(), header.clone());
        }
    }
    mapping
}

/// Checks a mapping: known targets, existing headers, every required target mapped.
pub fn check_mapping(targets: &[Target], headers: &[String], mapping: &Mapping) -> Result<(), (String, String)> {
    for (key, header) in mapping {
        if !targets.iter().any(|target| &target.key == key) {
            return Err((format!("mapping.{key}"), format!("{key} is not a field of this import")));
        }
        if !headers.contains(header) {
            return Err((format!("mapping.{key}"), format!("the file has no column {header:?}")));
        }
    }
    if let Some(missing) = targets
        .iter()
        .find(|target| target.required && !mapping.contains_key(&target.key))
    {
        return Err((
            format!("mapping.{}", missing.key),
            format!("map a column to {} ({})", missing.key, missing.label),
        ));
    }
    Ok(())
}

/// One cell's problem, or a command's refusal, on a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    pub column: Option<String>,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowOutcome {
    /// The worksheet of the row (none for CSV).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// The row's number in the spreadsheet (the header is row 1).
    pub row: usize,
    /// create, update, unchanged or error.
    pub action: &'static str,
    pub customer_id: Option<Uuid>,
    /// The id of what the row creates (a customer, stakeholder or activity): the preview shows
    /// the id the commit will create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_id: Option<Uuid>,
    pub changes: Vec<Change>,
    pub errors: Vec<RowError>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub rows: usize,
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub error: usize,
}

/// What the store knows that a plan looks things up in.
pub struct World {
    pub definitions: Arc<Definitions>,
    /// Lower-case Salesforce id -> customer.
    customers: HashMap<String, Uuid>,
    profiles: HashMap<Uuid, Profile>,
    /// Lower-case e-mail or name -> CSM.
    csms: HashMap<String, Uuid>,
    csm_names: HashMap<Uuid, String>,
    /// Per customer: its stakeholders as they are now.
    stakeholders: HashMap<Uuid, Vec<Person>>,
    /// Lower-case stakeholder e-mail -> its customer; `None` when several customers have it.
    by_email: HashMap<String, Option<Uuid>>,
    /// E-mail domain of stakeholders -> its customer; `None` when several customers have it.
    by_domain: HashMap<String, Option<Uuid>>,
}

/// A stakeholder as it is now, for the fields an import or a connector compares.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub level: Option<StakeholderLevel>,
    /// Lower-case.
    pub email: Option<String>,
    /// The vendor record that added it (`Contact/<id>` for Salesforce).
    pub vendor_record: Option<String>,
}

impl Person {
    /// Whether a row naming `name` and `email` is this person: the same address, else (when
    /// either has none) the same name, ignoring case.
    fn is(&self, name: &str, email: Option<&str>) -> bool {
        match (email, &self.email) {
            (Some(email), Some(known)) => email.to_lowercase() == *known,
            _ => self.name.to_lowercase() == name.trim().to_lowercase(),
        }
    }
}

pub use crate::domain::customer::Profile;

/// Event types a profile is folded from.
pub const PROFILE_EVENTS: [&str; 5] = [
    "CustomerOnboarded",
    "CustomerProfileUpdated",
    "CustomerRenewed",
    "CsmAssigned",
    "CustomerRetracted",
];

impl World {
    pub async fn load(pool: &PgPool) -> Result<World, sqlx::Error> {
        let definitions = Arc::new(events::service::read_models::custom_field_definitions(pool, None).await?);
        let rows: Vec<(String, String, Value)> = sqlx::query_as(
            "SELECT aggregate_id, event_type, payload FROM events
              WHERE aggregate_type = 'Customer' AND event_type = ANY ($1) ORDER BY aggregate_id, sequence",
        )
        .bind(&PROFILE_EVENTS[..])
        .fetch_all(pool)
        .await?;
        let mut profiles: HashMap<Uuid, Profile> = HashMap::new();
        for (id, event_type, payload) in rows {
            let Ok(id) = Uuid::parse_str(&id) else { continue };
            if event_type == "CustomerRetracted" {
                profiles.remove(&id);
                continue;
            }
            if let Ok(event) = serde_json::from_value::<events::customer::CustomerEvent>(payload) {
                profiles.entry(id).or_default().apply(&event);
            }
        }
        let customers = profiles
            .iter()
            .map(|(id, profile)| (profile.salesforce_id.to_lowercase(), *id))
            .collect();
        let csm_rows: Vec<(Value,)> = sqlx::query_as(
            "SELECT payload -> 'CsmRegistered' FROM events WHERE aggregate_type = 'Csm' AND event_type = 'CsmRegistered'",
        )
        .fetch_all(pool)
        .await?;
        let mut csms = HashMap::new();
        let mut csm_names = HashMap::new();
        for (payload,) in csm_rows {
            let Some(id) = payload["csm_id"].as_str().and_then(|id| Uuid::parse_str(id).ok()) else {
                continue;
            };
            for key in ["email", "name"] {
                if let Some(value) = payload[key].as_str() {
                    csms.insert(value.trim().to_lowercase(), id);
                }
            }
            csm_names.insert(id, payload["name"].as_str().unwrap_or_default().to_owned());
        }
        let people: Vec<(String, String, Value, Option<String>)> = sqlx::query_as(
            "SELECT aggregate_id, event_type, payload, metadata ->> 'vendor_record' FROM events
              WHERE aggregate_type = 'Customer' AND event_type IN ('StakeholderAdded', 'StakeholderUpdated', 'StakeholderRemoved')
              ORDER BY aggregate_id, sequence",
        )
        .fetch_all(pool)
        .await?;
        let mut stakeholders: HashMap<Uuid, Vec<Person>> = HashMap::new();
        for (customer, event_type, payload, vendor_record) in people {
            let Ok(customer) = Uuid::parse_str(&customer) else {
                continue;
            };
            let body = &payload[&event_type];
            let Some(id) = body["stakeholder_id"].as_str().and_then(|id| Uuid::parse_str(id).ok()) else {
                continue;
            };
            let list = stakeholders.entry(customer).or_default();
            let text = |key: &str| body[key].as_str().map(|text| text.trim().to_owned());
            let level = || serde_json::from_value::<StakeholderLevel>(body["level"].clone()).ok();
            let email = || text("email").map(|email| email.to_lowercase());
            match event_type.as_str() {
                "StakeholderAdded" => list.push(Person {
                    id,
                    name: text("name").unwrap_or_default(),
                    role: text("role").unwrap_or_default(),
                    level: level(),
                    email: email(),
                    vendor_record,
                }),
                "StakeholderUpdated" => {
                    if let Some(person) = list.iter_mut().find(|person| person.id == id) {
                        person.name = text("name").unwrap_or(std::mem::take(&mut person.name));
                        person.role = text("role").unwrap_or(std::mem::take(&mut person.role));
                        person.level = level().or(person.level);
                        person.email = email().or(person.email.take());
                    }
                }
                _ => list.retain(|person| person.id != id),
            }
        }
        // Each address and domain once, with the one customer it names (or none if several).
        let (mut by_email, mut by_domain) = (HashMap::new(), HashMap::new());
        let note = |index: &mut HashMap<String, Option<Uuid>>, key: &str, customer: Uuid| {
            index
                .entry(key.to_owned())
                .and_modify(|owner: &mut Option<Uuid>| {
                    if *owner != Some(customer) {
                        *owner = None;
                    }
                })
                .or_insert(Some(customer));
        };
        for (customer, people) in &stakeholders {
            for email in people.iter().filter_map(|person| person.email.as_deref()) {
                note(&mut by_email, email, *customer);
                if let Some((_, domain)) = email.rsplit_once('@') {
                    note(&mut by_domain, domain, *customer);
                }
            }
        }
        Ok(World {
            definitions,
            customers,
            profiles,
            csms,
            csm_names,
            stakeholders,
            by_email,
            by_domain,
        })
    }

    pub fn customer(&self, salesforce_id: &str) -> Option<Uuid> {
        self.customers.get(&salesforce_id.trim().to_lowercase()).copied()
    }

    /// A customer's Salesforce id, as an import row names it.
    pub fn salesforce_id(&self, customer_id: Uuid) -> Option<&str> {
        self.profiles
            .get(&customer_id)
            .map(|profile| profile.salesforce_id.as_str())
            .filter(|id| !id.is_empty())
    }

    /// The customer an e-mail address belongs to: the customer with a stakeholder of that
    /// address, else the one customer whose stakeholders' addresses share its domain (none when
    /// the address or the domain is several customers' or nobody's). Indexed once per load.
    pub fn customer_of_email(&self, email: &str) -> Option<Uuid> {
        let email = email.trim().to_lowercase();
        if let Some(owner) = self.by_email.get(&email) {
            return *owner;
        }
        let domain = email.rsplit_once('@')?.1;
        self.by_domain.get(domain).copied().flatten()
    }

    /// Whether `email` is a stakeholder of `customer_id`.
    pub fn is_stakeholder(&self, customer_id: Uuid, email: &str) -> bool {
        let email = email.trim().to_lowercase();
        self.stakeholders.get(&customer_id).is_some_and(|people| {
            people
                .iter()
                .any(|person| person.email.as_deref() == Some(email.as_str()))
        })
    }
}

/// A sheet's rows resolved against the mapping.
struct Row<'a> {
    cells: &'a [Cell],
    columns: &'a HashMap<String, (usize, String)>,
    errors: Vec<RowError>,
}

impl Row<'_> {
    fn cell(&self, key: &str) -> Option<&Cell> {
        let (index, _) = self.columns.get(key)?;
        self.cells.get(*index).filter(|cell| !cell.is_empty())
    }

    fn column(&self, key: &str) -> Option<String> {
        self.columns.get(key).map(|(_, header)| header.clone())
    }

    fn fail(&mut self, key: &str, code: &str, message: String) {
        let column = self.column(key);
        self.errors.push(RowError {
            column,
            code: code.to_owned(),
            message,
        });
    }

    /// Refuses a cell holding U+0000 (PostgreSQL stores none), naming its column.
    fn nul(&mut self, key: &str) -> bool {
        let held = matches!(self.cell(key), Some(Cell::Text(text)) if text.contains('\0'));
        if held {
            self.fail(
                key,
                "invalid_character",
                format!("{key} holds the NUL character (U+0000)"),
            );
        }
        held
    }

    fn text(&mut self, key: &str, required: bool) -> Option<String> {
        if self.nul(key) {
            return None;
        }
        match self.cell(key).map(Cell::text) {
            Some(text) => Some(text),
            None if required => {
                self.fail(key, "required", format!("{key} is required"));
                None
            }
            None => None,
        }
    }

    fn parsed<T>(&mut self, key: &str, required: bool, what: &str, parse: impl Fn(&Cell) -> Option<T>) -> Option<T> {
        if self.nul(key) {
            return None;
        }
        match self.cell(key) {
            None if required => {
                self.fail(key, "required", format!("{key} is required"));
                None
            }
            None => None,
            Some(cell) => match parse(cell) {
                Some(value) => Some(value),
                None => {
                    let shown = cell.text();
                    self.fail(key, "invalid_value", format!("{key}: {shown:?} is not {what}"));
                    None
                }
            },
        }
    }

    fn customer(&mut self, world: &World) -> Option<Uuid> {
        let reference = self.text("customer", true)?;
        let found = world.customer(&reference);
        if found.is_none() {
            self.fail(
                "customer",
                "unknown_customer",
                format!("no customer has Salesforce id {reference}"),
            );
        }
        found
    }
}

fn enum_of<T: serde::de::DeserializeOwned>(cell: &Cell) -> Option<T> {
    let text = cell.text().trim().to_lowercase().replace([' ', '-'], "_");
    serde_json::from_value(Value::String(text)).ok()
}

fn tier_of(cell: &Cell) -> Option<Tier> {
    match normal(&cell.text()).as_str() {
        "enterprise" | "ent" => Some(Tier::Enterprise),
        "midmarket" | "mid" | "mm" => Some(Tier::MidMarket),
        "smb" | "smallbusiness" | "small" => Some(Tier::Smb),
        _ => None,
    }
}

/// A custom-field cell as the JSON value its type takes.
fn custom_value(field_type: FieldType, cell: &Cell) -> Option<Value> {
    Some(match field_type {
        FieldType::Number => json!(cell.number()?),
        FieldType::Percent => json!(cell.percent()?),
        FieldType::Currency => Value::String(cell.decimal()?.to_string()),
        FieldType::Date => Value::String(cell.date()?.to_string()),
        FieldType::Checkbox => Value::Bool(cell.bool()?),
        FieldType::MultiSelect => Value::Array(
            cell.text()
                .split([';', ','])
                .map(str::trim)
                .filter(|option| !option.is_empty())
                .map(|option| Value::String(option.to_owned()))
                .collect(),
        ),
        _ => Value::String(cell.text()),
    })
}

fn days(day: Option<NaiveDate>) -> Value {
    day.map_or(Value::Null, |day| Value::String(day.to_string()))
}

/// The plan of a whole sheet, decided into `batch`.
pub struct Plan {
    pub outcomes: Vec<RowOutcome>,
    pub counts: Counts,
}

/// Where a command's refusal points: the column mapped to the field it names.
fn refusal(error: ExecuteError, columns: &HashMap<String, (usize, String)>) -> Result<RowError, ExecuteError> {
    match error {
        ExecuteError::Rejected(rejection) => {
            let (code, field, message) = match rejection {
                CommandError::Invalid { code, field, message } => (code.to_owned(), Some(field), message),
                CommandError::Conflict { code, message } => (code.to_owned(), None, message),
                CommandError::NotFound { entity } => ("not_found".to_owned(), None, format!("{entity} not found")),
                CommandError::Forbidden { message } => ("forbidden".to_owned(), None, message),
                CommandError::Unavailable(reason) => return Err(ExecuteError::Unavailable(reason)),
            };
            let column = field.as_ref().and_then(|field| {
                let key = field.split(['.', '[']).next().unwrap_or(field);
                columns
                    .get(key)
                    .or_else(|| columns.get(&format!("cf.{key}")))
                    .or_else(|| (key == "csm_id").then(|| columns.get("csm")).flatten())
                    .map(|(_, header)| header.clone())
            });
            Ok(RowError { column, code, message })
        }
        other => Err(other),
    }
}

/// Decides every row of `sheet` into `batch`, with `metadata` plus the row number on each event.
#[allow(clippy::too_many_arguments)]
pub async fn decide(
    kind: Kind,
    sheet: &Sheet,
    mapping: &Mapping,
    world: &World,
    batch: &mut Batch<'_, crate::domain::customer::Customer>,
    principal: &Principal,
    metadata: &HashMap<String, String>,
    now: DateTime<Utc>,
    fresh: &crate::store::FreshActivities,
) -> Result<Plan, ExecuteError> {
    let columns: HashMap<String, (usize, String)> = mapping
        .iter()
        .filter_map(|(key, header)| {
            let index = sheet.headers.iter().position(|h| h == header)?;
            Some((key.clone(), (index, header.clone())))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(sheet.rows.len());
    let mut counts = Counts {
        rows: sheet.rows.len(),
        ..Counts::default()
    };
    let mut created_in_file: HashMap<String, String> = HashMap::new();
    for row_in in &sheet.rows {
        let (number, cells) = (&row_in.number, &row_in.cells);
        let place = match &row_in.sheet {
            Some(name) => format!("{name}!{number}"),
            None => number.to_string(),
        };
        let mut row = Row {
            cells,
            columns: &columns,
            errors: Vec::new(),
        };
        let mut metadata = metadata.clone();
        metadata.insert("import_row".into(), place.clone());
        // The ids of what an import's row creates follow from the import and the row, so the
        // preview shows the ids the commit creates (a connector's record, decided once, gets a
        // new one).
        let new_id = |what: &str| match metadata.get("import_id") {
            Some(import_id) => row_id(import_id, &place, what),
            None => Uuid::now_v7(),
        };
        let mut commands: Vec<(Uuid, bool, CustomerCommand)> = Vec::new();
        let mut changes = Vec::new();
        let mut action = "create";
        let mut customer_id = None;
        let mut created_id = None;
        let custom = |row: &mut Row<'_>, current: &BTreeMap<String, Value>, changes: &mut Vec<Change>| {
            let mut values = BTreeMap::new();
            for field in &world.definitions.fields {
                let key = format!("cf.{}", field.key);
                let field_type = field.field_type;
                if let Some(value) = row.parsed(&key, false, field_type.as_str(), |cell| custom_value(field_type, cell))
                {
                    let old = current.get(&field.key).cloned().unwrap_or(Value::Null);
                    let normalized = events::fields::normalize(field, &value).unwrap_or(value.clone());
                    if old != normalized {
                        changes.push(Change {
                            field: key,
                            old,
                            new: normalized,
                        });
                        values.insert(field.key.clone(), value);
                    }
                }
            }
            values
        };
        match kind {
            Kind::Customers => {
                let name = row.text("name", true);
                let salesforce_id = row.text("salesforce_id", true);
                let tier = row.parsed("tier", true, "Enterprise, MidMarket or SMB", tier_of);
                let arr = row.parsed("arr", true, "an amount", Cell::decimal);
                let csm = row.parsed("csm", true, "a registered CSM's e-mail or name", |cell| {
                    world.csms.get(&cell.text().to_lowercase()).copied()
                });
                let industry = row.text("industry", false);
                let account_manager = row.text("account_manager", false);
                let products = row.text("products_owned", false).map(|text| {
                    text.split([';', ','])
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                });
                let contract_start = row.parsed("contract_start", true, "a date", Cell::date);
                let renewal_date = row.parsed("renewal_date", true, "a date", Cell::date);
                let onboarded_at = row.parsed("onboarded_at", false, "a date or instant", Cell::instant);
                let existing = salesforce_id.as_deref().and_then(|id| world.customer(id));
                if let Some(sfid) = salesforce_id.as_deref().filter(|_| existing.is_none()) {
                    if let Some(first) = created_in_file.insert(sfid.to_lowercase(), place.clone()) {
                        row.fail(
                            "salesforce_id",
                            "duplicate_in_file",
                            format!("row {first} already creates the customer with Salesforce id {sfid}"),
                        );
                    }
                }
                if row.errors.is_empty() {
                    let (name, sfid, tier, arr, csm, start, renewal) = (
                        name.unwrap_or_default(),
                        salesforce_id.unwrap_or_default(),
                        tier.unwrap_or(Tier::Smb),
                        arr.unwrap_or_default(),
                        csm.unwrap_or_default(),
                        contract_start.unwrap_or_default(),
                        renewal_date.unwrap_or_default(),
                    );
                    match existing {
                        None => {
                            let id = new_id("customer");
                            customer_id = Some(id);
                            created_id = Some(id);
                            commands.push((
                                id,
                                true,
                                CustomerCommand::Onboard(OnboardCustomer {
                                    customer_id: Some(id),
                                    name,
                                    salesforce_id: sfid,
                                    tier,
                                    arr,
                                    industry: industry.unwrap_or_default(),
                                    account_manager: account_manager.unwrap_or_default(),
                                    csm_id: csm,
                                    products_owned: products.unwrap_or_default(),
                                    contract_start: start,
                                    renewal_date: renewal,
                                    occurred_at: Some(onboarded_at.unwrap_or(now)),
                                }),
                            ));
                            let values = custom(&mut row, &BTreeMap::new(), &mut Vec::new());
                            if !values.is_empty() {
                                commands.push((id, false, set_fields(values, world, principal)));
                            }
                        }
                        Some(id) => {
                            customer_id = Some(id);
                            action = "update";
                            let now_profile = world.profiles.get(&id).cloned().unwrap_or_default();
                            let mut update = UpdateProfile::default();
                            let mut note = |field: &str, old: Value, new: Value| {
                                changes.push(Change {
                                    field: field.to_owned(),
                                    old,
                                    new,
                                })
                            };
                            if name != now_profile.name {
                                note("name", json!(now_profile.name), json!(name));
                                update.name = Some(name);
                            }
                            if Some(tier) != now_profile.tier {
                                note("tier", json!(now_profile.tier), json!(tier));
                                update.tier = Some(tier);
                            }
                            if arr.round_dp(2) != now_profile.arr.round_dp(2) {
                                note("arr", json!(now_profile.arr.to_string()), json!(arr.to_string()));
                                update.arr = Some(arr);
                            }
                            if let Some(industry) = industry.filter(|value| *value != now_profile.industry) {
                                note("industry", json!(now_profile.industry), json!(industry));
                                update.industry = Some(industry);
                            }
                            if let Some(manager) = account_manager.filter(|value| *value != now_profile.account_manager)
                            {
                                note("account_manager", json!(now_profile.account_manager), json!(manager));
                                update.account_manager = Some(manager);
                            }
                            if let Some(products) = products.filter(|value| *value != now_profile.products_owned) {
                                note("products_owned", json!(now_profile.products_owned), json!(products));
                                update.products_owned = Some(products);
                            }
                            if Some(start) != now_profile.contract_start {
                                note("contract_start", days(now_profile.contract_start), days(Some(start)));
                                update.contract_start = Some(start);
                            }
                            if Some(renewal) != now_profile.renewal_date {
                                note("renewal_date", days(now_profile.renewal_date), days(Some(renewal)));
                                update.renewal_date = Some(renewal);
                            }
                            if update != UpdateProfile::default() {
                                commands.push((id, false, CustomerCommand::UpdateProfile(update)));
                            }
                            if Some(csm) != now_profile.csm_id {
                                let name_of = |id: Option<Uuid>| {
                                    id.and_then(|id| world.csm_names.get(&id).cloned())
                                        .map_or(Value::Null, Value::String)
                                };
                                changes.push(Change {
                                    field: "csm".into(),
                                    old: name_of(now_profile.csm_id),
                                    new: name_of(Some(csm)),
                                });
                                commands.push((
                                    id,
                                    false,
                                    CustomerCommand::AssignCsm(AssignCsm {
                                        csm_id: csm,
                                        reason: "imported".into(),
                                        occurred_at: None,
                                    }),
                                ));
                            }
                            let current = batch.aggregate(&id.to_string()).await?.custom_fields().clone();
                            let values = custom(&mut row, &current, &mut changes);
                            if !values.is_empty() {
                                commands.push((id, false, set_fields(values, world, principal)));
                            }
                        }
                    }
                }
            }
            Kind::CustomFields => {
                action = "update";
                if let Some(id) = row.customer(world) {
                    customer_id = Some(id);
                    let current = batch.aggregate(&id.to_string()).await?.custom_fields().clone();
                    let values = custom(&mut row, &current, &mut changes);
                    if !values.is_empty() {
                        commands.push((id, false, set_fields(values, world, principal)));
                    }
                }
            }
            Kind::Stakeholders => {
                let customer = row.customer(world);
                let name = row.text("name", true);
                let role = row.text("role", true);
                let level = row.parsed(
                    "level",
                    true,
                    "executive, champion or user",
                    enum_of::<StakeholderLevel>,
                );
                let email = row.text("email", false);
                if let (Some(id), Some(name), Some(role), Some(level)) = (customer, name, role, level) {
                    customer_id = Some(id);
                    // The person this row is: the one a connector's record added, else by
                    // address, else by name. A known person's changed fields are updated.
                    let vendor_record = metadata.get("vendor_record");
                    let people = world.stakeholders.get(&id).map(Vec::as_slice).unwrap_or_default();
                    let known = people
                        .iter()
                        .find(|person| vendor_record.is_some() && person.vendor_record.as_ref() == vendor_record)
                        .or_else(|| people.iter().find(|person| person.is(&name, email.as_deref())));
                    match known {
                        Some(person) => {
                            action = "update";
                            let mut update = UpdateStakeholder {
                                stakeholder_id: person.id,
                                name: None,
                                role: None,
                                level: None,
                                email: None,
                            };
                            if person.name != name.trim() {
                                changes.push(Change {
                                    field: "name".into(),
                                    old: json!(person.name),
                                    new: json!(name.trim()),
                                });
                                update.name = Some(name.trim().to_owned());
                            }
                            if person.role != role.trim() {
                                changes.push(Change {
                                    field: "role".into(),
                                    old: json!(person.role),
                                    new: json!(role.trim()),
                                });
                                update.role = Some(role.trim().to_owned());
                            }
                            if person.level != Some(level) {
                                changes.push(Change {
                                    field: "level".into(),
                                    old: json!(person.level),
                                    new: json!(level),
                                });
                                update.level = Some(level);
                            }
                            if let Some(email) =
                                email.filter(|email| person.email.as_deref() != Some(&email.to_lowercase()))
                            {
                                changes.push(Change {
                                    field: "email".into(),
                                    old: json!(person.email),
                                    new: json!(email),
                                });
                                update.email = Some(email);
                            }
                            if !changes.is_empty() {
                                commands.push((id, false, CustomerCommand::UpdateStakeholder(update)));
                            }
                        }
                        None => {
                            commands.push((
                                id,
                                false,
                                CustomerCommand::AddStakeholder(AddStakeholder {
                                    stakeholder_id: Some(*created_id.insert(new_id("stakeholder"))),
                                    name,
                                    role,
                                    level,
                                    email,
                                    occurred_at: None,
                                }),
                            ));
                        }
                    }
                }
            }
            Kind::Activities => {
                let customer = row.customer(world);
                let activity_kind = row.parsed(
                    "kind",
                    true,
                    "email, meeting, call, qbr, message, event or note",
                    enum_of::<ActivityKind>,
                );
                let direction = row.parsed("direction", true, "inbound or outbound", enum_of::<Direction>);
                let occurred_at = row.parsed("occurred_at", true, "a date or instant", Cell::instant);
                let duration = row.parsed("duration_minutes", false, "a number of minutes", |cell| {
                    cell.number()
                        .filter(|n| *n >= 0.0 && n.fract() == 0.0)
                        .map(|n| n as u32)
                });
                let subject = row.text("subject", false);
                let response_received = row.parsed("response_received", false, "yes or no", Cell::bool);
                let response_time_hours = row.parsed("response_time_hours", false, "a number of hours", Cell::number);
                let emails = row.text("participants", false);
                if let (Some(id), Some(activity_kind), Some(direction), Some(occurred_at)) =
                    (customer, activity_kind, direction, occurred_at)
                {
                    customer_id = Some(id);
                    let mut participants = Vec::new();
                    for email in emails.iter().flat_map(|text| text.split([';', ','])).map(str::trim) {
                        if email.is_empty() {
                            continue;
                        }
                        let found = world.stakeholders.get(&id).and_then(|people| {
                            people
                                .iter()
                                .find(|person| person.email.as_deref() == Some(&email.to_lowercase()))
                                .map(|person| person.id)
                        });
                        match found {
                            Some(person) => participants.push(person),
                            None => row.fail(
                                "participants",
                                "unknown_stakeholder",
                                format!("{email} is not a stakeholder of this customer"),
                            ),
                        }
                    }
                    commands.push((
                        id,
                        false,
                        CustomerCommand::LogActivity(LogActivity {
                            activity_id: Some(fresh.issue(*created_id.insert(new_id("activity")))),
                            fresh_id: false,
                            kind: activity_kind,
                            direction,
                            occurred_at,
                            duration_minutes: duration,
                            participants,
                            response_received,
                            response_time_hours,
                            subject: subject.unwrap_or_default(),
                            logged_by: Some(principal.user_id.clone()),
                        }),
                    ));
                }
            }
            Kind::HealthScores => {
                let customer = row.customer(world);
                let score = row.parsed("score", true, "a number from 0 to 100", Cell::number);
                let measured_at = row.parsed("measured_at", true, "a date or instant", Cell::instant);
                let source = match row.cell("source") {
                    None => Some(HealthSource::Manual),
                    Some(_) => row.parsed("source", false, "gainsight or manual", enum_of::<HealthSource>),
                };
                let reason = row.text("reason", false);
                if let (Some(id), Some(score), Some(measured_at), Some(source)) = (customer, score, measured_at, source)
                {
                    customer_id = Some(id);
                    commands.push((
                        id,
                        false,
                        CustomerCommand::RecordHealthScore(RecordHealthScore {
                            score,
                            source,
                            reason,
                            risk_factors: Vec::new(),
                            measured_at: Some(measured_at),
                        }),
                    ));
                }
            }
        }
        if row.errors.is_empty() {
            for (id, fresh, command) in commands {
                if let Err(error) = batch
                    .decide(&id.to_string(), fresh, command, Some(principal), &metadata)
                    .await
                {
                    row.errors.push(refusal(error, &columns)?);
                    break;
                }
            }
        }
        if !row.errors.is_empty() {
            action = "error";
        } else if action == "update" && changes.is_empty() {
            action = "unchanged";
        }
        match action {
            "create" => counts.create += 1,
            "update" => counts.update += 1,
            "unchanged" => counts.unchanged += 1,
            _ => counts.error += 1,
        }
        outcomes.push(RowOutcome {
            sheet: row_in.sheet.clone(),
            row: *number,
            action,
            customer_id,
            created_id: created_id.filter(|_| action == "create"),
            changes,
            errors: row.errors,
        });
    }
    Ok(Plan { outcomes, counts })
}

/// The id of what row `place` of import `import_id` creates (`what`: customer, stakeholder,
/// activity): the same in every preview and in the commit, and distinct across imports, rows and
/// kinds. A UUID of version 8 (custom) over SHA-256 of the three.
pub fn row_id(import_id: &str, place: &str, what: &str) -> Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("cstrack import {import_id} {place} {what}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn set_fields(values: BTreeMap<String, Value>, world: &World, principal: &Principal) -> CustomerCommand {
    CustomerCommand::SetCustomFields(SetCustomFields {
        values,
        definitions: world.definitions.clone(),
        role: Some(principal.role),
    })
}
