//! Exports (docs/EXPORTS.md): every report and list a CS team reads, as an .xlsx workbook or
//! CSV, at `GET /export/{report}.{xlsx|csv}`. Each export runs the GraphQL query a screen runs,
//! with the caller's own access, so its numbers and its visibility (partners, hidden custom
//! fields, readonly drafts) are exactly the API's; then it lays the answer out as sheets.

use std::collections::BTreeMap;

use events::service::workbook::{self, Cell, Kind, Table};
use serde_json::{json, Value};

use crate::access::Access;

/// Rows a paged list is fetched in: the largest page a list gives.
const PAGE: usize = crate::timeline::MAX_PAGE;
/// Most rows one export holds.
pub const MAX_ROWS: usize = 50_000;

/// One column: title, JSON pointer into a row, kind.
type Col = (&'static str, &'static str, Kind);

struct SheetSpec {
    name: &'static str,
    /// Pointer to the rows in the answer (an array), or to one object shown as one row.
    rows: &'static str,
    columns: &'static [Col],
}

struct ReportSpec {
    title: &'static str,
    query: &'static str,
    /// Top-level field of a paged connection, fetched page by page.
    paged: Option<&'static str>,
    /// Pointer to the report's rules version, for the About sheet.
    rules_version: Option<&'static str>,
    sheets: &'static [SheetSpec],
}

use Kind::{Bool, Currency, Date, Integer, Number, Percent, Text};

const COUNTS: &[Col] = &[
    ("As of", "/asOf", Date),
    ("Accounts", "/summary/accounts", Integer),
    ("Well covered", "/summary/wellCovered", Integer),
    ("Under-covered", "/summary/underCovered", Integer),
    ("Over-covered", "/summary/overCovered", Integer),
    ("Well covered %", "/summary/wellCoveredPct", Percent),
    ("Under-covered %", "/summary/underCoveredPct", Percent),
    ("Average score", "/summary/averageScore", Number),
    ("ARR", "/summary/arr", Currency),
];

const ACCOUNT: &[Col] = &[
    ("Customer", "/name", Text),
    ("Tier", "/tier", Text),
    ("ARR", "/arr", Currency),
    ("CSM", "/csmName", Text),
    ("Last contact", "/lastContactDate", Date),
    ("Days since contact", "/daysSinceContact", Integer),
    ("Stakeholders engaged", "/stakeholdersEngaged", Integer),
    ("Coverage score", "/score", Number),
    ("Contact deduction", "/deductions/contact", Number),
    ("Touches deduction", "/deductions/touches", Number),
    ("Meetings deduction", "/deductions/meetings", Number),
    ("Stakeholders deduction", "/deductions/stakeholders", Number),
    ("Gap areas", "/gapAreas", Text),
    ("Status", "/status", Text),
    ("Priority", "/priority", Text),
    ("At risk", "/atRisk", Bool),
    ("Health score", "/healthScore", Number),
];

fn spec(report: &str) -> Option<ReportSpec> {
    Some(match report {
        "customers" => ReportSpec {
            title: "Customers",
            // Read straight from the read model (`CustomersListing`); each column's pointer names
            // the GraphQL field of `customers` it equals.
            query: "",
            paged: None,
            rules_version: None,
            sheets: &[SheetSpec {
                name: "Customers",
                rows: "/page",
                columns: &[
                    ("Customer", "/name", Text),
                    ("Salesforce id", "/salesforceId", Text),
                    ("Tier", "/tier", Text),
                    ("ARR", "/arr", Currency),
                    ("Industry", "/industry", Text),
                    ("Account manager", "/accountManager", Text),
                    ("Products owned", "/productsOwned", Text),
                    ("CSM", "/csm/name", Text),
                    ("Contract start", "/contractStart", Date),
                    ("Renewal date", "/renewalDate", Date),
                    ("Days until renewal", "/daysUntilRenewal", Integer),
                    ("Health", "/healthColour", Text),
                    ("Health score", "/health/score", Number),
                    ("Adoption stage", "/adoptionStage", Text),
                    ("Churned on", "/churnedOn", Date),
                ],
            }],
        },
        "coverage" => ReportSpec {
            title: "Coverage report",
            query: "query($asOf: Date, $csmId: UUID, $tier: Tier) {
                report: coverageReport(asOf: $asOf, csmId: $csmId, tier: $tier) {
                  asOf rulesVersion summary { accounts wellCovered underCovered overCovered wellCoveredPct underCoveredPct averageScore arr }
                  byCsm { csmName coverage { accounts wellCovered underCovered overCovered averageScore arr } accountsVsTeamAverage arrVsTeamAverage }
                  accounts { ...account } gaps { ...account } } }
              fragment account on AccountCoverage { name tier arr csmName lastContactDate daysSinceContact stakeholdersEngaged score
                deductions { contact touches meetings stakeholders } gapAreas status priority atRisk healthScore }",
            paged: None,
            rules_version: Some("/report/rulesVersion"),
            sheets: &[
                SheetSpec {
                    name: "Summary",
                    rows: "/report",
                    columns: COUNTS,
                },
                SheetSpec {
                    name: "Accounts",
                    rows: "/report/accounts",
                    columns: ACCOUNT,
                },
                SheetSpec {
                    name: "Gaps",
                    rows: "/report/gaps",
                    columns: ACCOUNT,
                },
                SheetSpec {
                    name: "By CSM",
                    rows: "/report/byCsm",
                    columns: &[
                        ("CSM", "/csmName", Text),
                        ("Accounts", "/coverage/accounts", Integer),
                        ("Well covered", "/coverage/wellCovered", Integer),
                        ("Under-covered", "/coverage/underCovered", Integer),
                        ("Over-covered", "/coverage/overCovered", Integer),
                        ("Average score", "/coverage/averageScore", Number),
                        ("ARR", "/coverage/arr", Currency),
                        ("Accounts vs team average", "/accountsVsTeamAverage", Number),
                        ("ARR vs team average", "/arrVsTeamAverage", Currency),
                    ],
                },
            ],
        },
        "engagement" => ReportSpec {
            title: "Engagement portfolio",
            query: "query($asOf: Date, $period: String, $csmId: UUID, $tier: Tier) {
                report: engagementMetrics(asOf: $asOf, period: $period, csmId: $csmId, tier: $tier) {
                  rulesVersion period asOf customers averageScore distribution { category customers }
                  segments { tier customers averageScore bandLow bandHigh belowBand withinBand aboveBand }
                  needingAttention { name tier score category daysSinceContact }
                  items { name tier arr emailsSent emailsReceived responseRate meetingsHeld meetingMinutes callsMade
                    qbrsCompleted stakeholdersEngaged executiveTouchpoints daysSinceContact score category previousScore change trend } } }",
            paged: None,
            rules_version: Some("/report/rulesVersion"),
            sheets: &[
                SheetSpec {
                    name: "Summary",
                    rows: "/report",
                    columns: &[
                        ("Period", "/period", Text),
                        ("As of", "/asOf", Date),
                        ("Customers", "/customers", Integer),
                        ("Average score", "/averageScore", Number),
                    ],
                },
                SheetSpec {
                    name: "Distribution",
                    rows: "/report/distribution",
                    columns: &[("Category", "/category", Text), ("Customers", "/customers", Integer)],
                },
                SheetSpec {
                    name: "Segments",
                    rows: "/report/segments",
                    columns: &[
                        ("Tier", "/tier", Text),
                        ("Customers", "/customers", Integer),
                        ("Average score", "/averageScore", Number),
                        ("Band low", "/bandLow", Number),
                        ("Band high", "/bandHigh", Number),
                        ("Below band", "/belowBand", Integer),
                        ("Within band", "/withinBand", Integer),
                        ("Above band", "/aboveBand", Integer),
                    ],
                },
                SheetSpec {
                    name: "Needing attention",
                    rows: "/report/needingAttention",
                    columns: &[
                        ("Customer", "/name", Text),
                        ("Tier", "/tier", Text),
                        ("Score", "/score", Number),
                        ("Category", "/category", Text),
                        ("Days since contact", "/daysSinceContact", Integer),
                    ],
                },
                SheetSpec {
                    name: "Customers",
                    rows: "/report/items",
                    columns: &[
                        ("Customer", "/name", Text),
                        ("Tier", "/tier", Text),
                        ("ARR", "/arr", Currency),
                        ("E-mails sent", "/emailsSent", Integer),
                        ("E-mails received", "/emailsReceived", Integer),
                        ("Response rate", "/responseRate", Number),
                        ("Meetings", "/meetingsHeld", Integer),
                        ("Meeting minutes", "/meetingMinutes", Integer),
                        ("Calls", "/callsMade", Integer),
                        ("QBRs", "/qbrsCompleted", Integer),
                        ("Stakeholders engaged", "/stakeholdersEngaged", Integer),
                        ("Executive touchpoints", "/executiveTouchpoints", Integer),
                        ("Days since contact", "/daysSinceContact", Integer),
                        ("Score", "/score", Number),
                        ("Category", "/category", Text),
                        ("Previous score", "/previousScore", Number),
                        ("Change", "/change", Number),
                        ("Trend", "/trend", Text),
                    ],
                },
            ],
        },
        "workload" => ReportSpec {
            title: "CSM workload",
            query: "query($asOf: Date) {
                report: csmWorkload(asOf: $asOf) {
                  asOf rulesVersion averageAccounts averageArr averageUtilizationPct portfolioBalancePct balanced
                  csms { name accounts arr atRisk openTasks overdueTasks averageCoverageScore underCovered hoursNeeded capacityHours utilizationPct }
                  transitions { name previousCsmName csmName handedOverOn daysSinceHandoff contactedSince }
                  rebalancing { name tier arr fromCsmName toCsmName fromUtilizationAfter toUtilizationAfter } } }",
            paged: None,
            rules_version: Some("/report/rulesVersion"),
            sheets: &[
                SheetSpec {
                    name: "CSMs",
                    rows: "/report/csms",
                    columns: &[
                        ("CSM", "/name", Text),
                        ("Accounts", "/accounts", Integer),
                        ("ARR", "/arr", Currency),
                        ("At risk", "/atRisk", Integer),
                        ("Open tasks", "/openTasks", Integer),
                        ("Overdue tasks", "/overdueTasks", Integer),
                        ("Average coverage score", "/averageCoverageScore", Number),
                        ("Under-covered", "/underCovered", Integer),
                        ("Hours needed", "/hoursNeeded", Number),
                        ("Capacity hours", "/capacityHours", Number),
                        ("Utilization", "/utilizationPct", Percent),
                    ],
                },
                SheetSpec {
                    name: "Team",
                    rows: "/report",
                    columns: &[
                        ("As of", "/asOf", Date),
                        ("Average accounts", "/averageAccounts", Number),
                        ("Average ARR", "/averageArr", Currency),
                        ("Average utilization", "/averageUtilizationPct", Percent),
                        ("Portfolio balance", "/portfolioBalancePct", Percent),
                        ("Balanced", "/balanced", Bool),
                    ],
                },
                SheetSpec {
                    name: "Handoffs",
                    rows: "/report/transitions",
                    columns: &[
                        ("Customer", "/name", Text),
                        ("From CSM", "/previousCsmName", Text),
                        ("To CSM", "/csmName", Text),
                        ("Handed over on", "/handedOverOn", Date),
                        ("Days since handoff", "/daysSinceHandoff", Integer),
                        ("Contacted since", "/contactedSince", Bool),
                    ],
                },
                SheetSpec {
                    name: "Rebalancing",
                    rows: "/report/rebalancing",
                    columns: &[
                        ("Customer", "/name", Text),
                        ("Tier", "/tier", Text),
                        ("ARR", "/arr", Currency),
                        ("From CSM", "/fromCsmName", Text),
                        ("To CSM", "/toCsmName", Text),
                        ("From CSM utilization after", "/fromUtilizationAfter", Percent),
                        ("To CSM utilization after", "/toUtilizationAfter", Percent),
                    ],
                },
            ],
        },
        "renewals" => ReportSpec {
            title: "Renewals",
            query: "query($from: Date, $to: Date, $after: String, $first: Int!) {
                page: renewals(from: $from, to: $to, first: $first, after: $after) {
                  pageInfo { hasNextPage endCursor }
                  edges { node { name arr renewalDate daysUntilRenewal healthScore healthColour } } } }",
            paged: Some("page"),
            rules_version: None,
            sheets: &[SheetSpec {
                name: "Renewals",
                rows: "/page",
                columns: &[
                    ("Customer", "/name", Text),
                    ("ARR", "/arr", Currency),
                    ("Renewal date", "/renewalDate", Date),
                    ("Days until renewal", "/daysUntilRenewal", Integer),
                    ("Health score", "/healthScore", Number),
                    ("Health", "/healthColour", Text),
                ],
            }],
        },
        "tasks" => ReportSpec {
            title: "Tasks",
            query: "query($taskFilter: TaskFilter, $after: String, $first: Int!) {
                page: tasks(filter: $taskFilter, first: $first, after: $after) {
                  pageInfo { hasNextPage endCursor }
                  edges { node { title kind priority assigneeId dueDate status customerId createdAt closedAt outcome } } } }",
            paged: Some("page"),
            rules_version: None,
            sheets: &[SheetSpec {
                name: "Tasks",
                rows: "/page",
                columns: &[
                    ("Title", "/title", Text),
                    ("Kind", "/kind", Text),
                    ("Priority", "/priority", Text),
                    ("Assignee", "/assigneeId", Text),
                    ("Due", "/dueDate", Date),
                    ("Status", "/status", Text),
                    ("Customer id", "/customerId", Text),
                    ("Created at", "/createdAt", Text),
                    ("Closed at", "/closedAt", Text),
                    ("Outcome", "/outcome", Text),
                ],
            }],
        },
        "health-trend" => ReportSpec {
            title: "Health trend",
            query: "query($customerId: UUID!, $from: Date, $to: Date, $granularity: Granularity!) {
                report: healthTrend(customerId: $customerId, from: $from, to: $to, granularity: $granularity) {
                  points { bucket score colour measuredInBucket lineage { source reason actorId measuredAt } }
                  windows { days delta trend } } }",
            paged: None,
            rules_version: None,
            sheets: &[
                SheetSpec {
                    name: "Points",
                    rows: "/report/points",
                    columns: &[
                        ("Bucket", "/bucket", Date),
                        ("Score", "/score", Number),
                        ("Colour", "/colour", Text),
                        ("Measured in bucket", "/measuredInBucket", Bool),
                        ("Source", "/lineage/source", Text),
                        ("Reason", "/lineage/reason", Text),
                        ("By", "/lineage/actorId", Text),
                        ("Measured at", "/lineage/measuredAt", Text),
                    ],
                },
                SheetSpec {
                    name: "Trends",
                    rows: "/report/windows",
                    columns: &[("Days", "/days", Integer), ("Change", "/delta", Number), ("Trend", "/trend", Text)],
                },
            ],
        },
        "executive-summary" => ReportSpec {
            title: "Executive summary",
            query: "query($asOf: Date, $csmId: UUID) {
                report: executiveSummary(asOf: $asOf, csmId: $csmId) {
                  arrChange arrAtRiskChange
                  current { ...snapshot } previousQuarter { ...snapshot } } }
              fragment snapshot on PortfolioSnapshot { asOf customers totalArr arrAtRisk npsAverage nps npsResponses
                colours { colour accounts arr } renewals { days customers arr } }",
            paged: None,
            rules_version: None,
            sheets: &[
                SheetSpec {
                    name: "Portfolio",
                    rows: "/report",
                    columns: &[
                        ("As of", "/current/asOf", Date),
                        ("Customers", "/current/customers", Integer),
                        ("Total ARR", "/current/totalArr", Currency),
                        ("ARR at risk", "/current/arrAtRisk", Currency),
                        ("NPS", "/current/nps", Number),
                        ("NPS responses", "/current/npsResponses", Integer),
                        ("Previous quarter", "/previousQuarter/asOf", Date),
                        ("Previous total ARR", "/previousQuarter/totalArr", Currency),
                        ("Previous ARR at risk", "/previousQuarter/arrAtRisk", Currency),
                        ("ARR change", "/arrChange", Currency),
                        ("ARR at risk change", "/arrAtRiskChange", Currency),
                    ],
                },
                SheetSpec {
                    name: "Health colours",
                    rows: "/report/current/colours",
                    columns: &[("Colour", "/colour", Text), ("Accounts", "/accounts", Integer), ("ARR", "/arr", Currency)],
                },
                SheetSpec {
                    name: "Renewals",
                    rows: "/report/current/renewals",
                    columns: &[("Within days", "/days", Integer), ("Customers", "/customers", Integer), ("ARR", "/arr", Currency)],
                },
            ],
        },
        _ => return None,
    })
}

pub const REPORTS: [&str; 8] = [
    "customers",
    "coverage",
    "engagement",
    "workload",
    "renewals",
    "tasks",
    "health-trend",
    "executive-summary",
];

/// Why an export was refused.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// An export's body: built whole (workbooks, decks) or streamed as it is read (CSV lists).
pub enum Payload {
    Whole(Vec<u8>),
    Streamed(axum::body::Body),
}

pub fn refusal(status: u16, code: &str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        code: code.to_owned(),
        message: message.into(),
    }
}

/// The query-string parameters an export takes, as GraphQL variables.
/// A yes-or-no parameter: true, 1 or yes; false, 0 or no.
fn flag(key: &str, value: &str) -> Result<bool, Refusal> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(refusal(
            400,
            "BAD_USER_INPUT",
            format!("{key} is true or false (1 or 0)"),
        )),
    }
}

pub fn variables(params: &BTreeMap<String, String>) -> Result<Value, Refusal> {
    let mut variables = serde_json::Map::new();
    let mut filter = serde_json::Map::new();
    let mut task_filter = serde_json::Map::new();
    for (key, value) in params {
        match key.as_str() {
            "asOf" | "period" | "csmId" | "tier" | "customerId" | "from" | "to" => {
                variables.insert(key.clone(), json!(value));
            }
            "granularity" => {
                variables.insert(key.clone(), json!(value.to_uppercase()));
            }
            "search" | "healthColour" | "partnerId" | "npsCategory" | "nextTouch" | "riskBand" => {
                filter.insert(key.clone(), json!(value));
            }
            "atRisk" | "includeChurned" | "pinned" => {
                filter.insert(key.clone(), json!(flag(key, value)?));
            }
            "renewalWithinDays" => {
                let days: i64 = value
                    .parse()
                    .map_err(|_| refusal(400, "BAD_USER_INPUT", "renewalWithinDays is a number of days"))?;
                filter.insert(key.clone(), json!(days));
            }
            "assigneeId" | "kind" | "state" => {
                task_filter.insert(key.clone(), json!(value));
            }
            "overdue" => {
                task_filter.insert(key.clone(), json!(flag(key, value)?));
            }
            "section" | "sheet" => {}
            other => {
                return Err(refusal(
                    400,
                    "BAD_USER_INPUT",
                    format!("an export takes no parameter {other:?}"),
                ));
            }
        }
    }
    if let Some(tier) = variables.get("tier").cloned() {
        filter.insert("tier".into(), tier);
    }
    if let Some(csm) = variables.get("csmId").cloned() {
        filter.insert("csmId".into(), csm);
    }
    variables.insert("filter".into(), Value::Object(filter));
    variables.insert("taskFilter".into(), Value::Object(task_filter));
    variables.entry("granularity").or_insert(json!("WEEK"));
    variables.insert("first".into(), json!(PAGE));
    Ok(Value::Object(variables))
}

/// Runs `query` as the caller, with the variables it declares; GraphQL errors become refusals
/// with the status their code means.
pub async fn execute(
    schema: &crate::schema::CstrackSchema,
    pool: &sqlx::PgPool,
    access: &Access,
    query: &str,
    variables: &Value,
) -> Result<Value, Refusal> {
    let used: serde_json::Map<String, Value> = variables
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| query.contains(&format!("${key}")))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(Value::Object(used)))
        .data(access.clone())
        .data(async_graphql::dataloader::DataLoader::new(
            crate::customers::Store(pool.clone()),
            tokio::spawn,
        ))
        .data(crate::risk::Memo::default());
    let response = schema.execute(request).await;
    if let Some(error) = response.errors.first() {
        let code = error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code"))
            .and_then(|code| match code {
                async_graphql::Value::String(code) => Some(code.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "BAD_USER_INPUT".into());
        let status = match code.as_str() {
            "FORBIDDEN" => 403,
            "NOT_FOUND" => 404,
            "UNAVAILABLE" | "TIMEOUT" => 503,
            _ => 400,
        };
        return Err(refusal(status, &code, error.message.clone()));
    }
    response
        .data
        .into_json()
        .map_err(|error| refusal(500, "INTERNAL", error.to_string()))
}

/// Runs the report's query (every page of a list) as the caller.
async fn fetch(
    schema: &crate::schema::CstrackSchema,
    pool: &sqlx::PgPool,
    access: &Access,
    report: &ReportSpec,
    mut variables: Value,
) -> Result<Value, Refusal> {
    let mut answer: Option<Value> = None;
    let mut rows: Vec<Value> = Vec::new();
    loop {
        let data = execute(schema, pool, access, report.query, &variables).await?;
        let Some(field) = report.paged else { return Ok(data) };
        let page = &data[field];
        rows.extend(
            page["edges"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|edge| edge["node"].clone()),
        );
        if rows.len() > MAX_ROWS {
            return Err(refusal(
                400,
                "TOO_MANY_ROWS",
                format!("an export holds at most {MAX_ROWS} rows; narrow the filters"),
            ));
        }
        let next = page["pageInfo"]["hasNextPage"].as_bool() == Some(true);
        let cursor = page["pageInfo"]["endCursor"].clone();
        answer.get_or_insert(data);
        if !next {
            let mut answer = answer.unwrap_or_default();
            answer[field] = Value::Array(rows);
            return Ok(answer);
        }
        variables["after"] = cursor;
    }
}

fn cell(value: &Value, kind: Kind) -> Cell {
    match value {
        Value::Null => Cell::Empty,
        Value::Bool(flag) => Cell::Bool(*flag),
        Value::Number(number) => Cell::Number(number.as_f64().unwrap_or_default()),
        Value::Array(items) => Cell::Text(
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).unwrap_or_else(|| item.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Value::String(text) => match kind {
            Currency | Number | Percent | Integer => {
                text.parse().map(Cell::Number).unwrap_or_else(|_| Cell::text(text))
            }
            Date => text.parse().map(Cell::Date).unwrap_or_else(|_| Cell::text(text)),
            _ => Cell::text(text),
        },
        Value::Object(_) => Cell::Text(value.to_string()),
    }
}

/// A custom field's value as a cell of its type.
fn custom_cell(field_type: &str, value: &Value, display: &str) -> Cell {
    match (field_type, value) {
        (_, Value::Null) => Cell::Empty,
        ("number" | "currency" | "percent", _) => cell(value, Currency),
        ("date", _) => cell(value, Date),
        ("checkbox", Value::Bool(flag)) => Cell::Bool(*flag),
        _ => Cell::text(display),
    }
}

fn column_kind(field_type: &str) -> Kind {
    match field_type {
        "currency" => Currency,
        "number" => Number,
        "percent" => Number,
        "date" => Date,
        "checkbox" => Bool,
        _ => Text,
    }
}

/// The tables of a report's answer.
fn tables(report: &ReportSpec, data: &Value) -> Vec<Table> {
    report
        .sheets
        .iter()
        .map(|sheet| {
            let found = data.pointer(sheet.rows).cloned().unwrap_or(Value::Null);
            let rows: Vec<Value> = match found {
                Value::Array(rows) => rows,
                Value::Null => Vec::new(),
                single => vec![single],
            };
            let columns: Vec<workbook::Column> = sheet
                .columns
                .iter()
                .map(|(title, _, kind)| workbook::column(title, *kind))
                .collect();
            let rows = rows
                .iter()
                .map(|row| {
                    sheet
                        .columns
                        .iter()
                        .map(|(_, pointer, kind)| cell(row.pointer(pointer).unwrap_or(&Value::Null), *kind))
                        .collect()
                })
                .collect();
            Table {
                name: sheet.name.to_owned(),
                columns,
                rows,
            }
        })
        .collect()
}

/// Bytes a streamed export sends at a time.
const CHUNK: usize = 64 * 1024;

/// The customers list straight from the read model, with no GraphQL in between: the same
/// selection as the `customers` query (its filters and the caller's customers), the custom
/// fields the caller may see, and each row written as it is read.
struct CustomersListing {
    selection: crate::customers::Selection,
    sql: String,
    definitions: events::fields::Definitions,
    role: events::metadata::Role,
    columns: Vec<workbook::Column>,
    /// The visible definitions' keys and types, in definition order.
    custom: Vec<(String, String)>,
}

impl CustomersListing {
    async fn new(
        pool: &sqlx::PgPool,
        access: &Access,
        report: &ReportSpec,
        variables: &Value,
    ) -> Result<Self, Refusal> {
        let bad = |message: String| refusal(400, "BAD_USER_INPUT", message);
        let filter =
            async_graphql::Value::from_json(variables["filter"].clone()).map_err(|error| bad(error.to_string()))?;
        let filter = <crate::customers::CustomerFilter as async_graphql::InputType>::parse(Some(filter))
            .map_err(|error| bad(error.into_server_error(Default::default()).message))?;
        let rules = events::service::read_models::current_rules(pool)
            .await
            .map_err(|error| {
                tracing::error!(%error, "reading the rules failed");
                refusal(503, "UNAVAILABLE", "the read models are unavailable")
            })?;
        let selection = crate::customers::Selection::new(
            &filter,
            crate::customers::CustomerSort::Name,
            None,
            access.visible(),
            Default::default(),
        )
        .map_err(|error| bad(error.message))?
        .with_cadence(crate::next_touch::cadence(&rules))
        .for_user(&access.principal.user_id);
        let selection = match filter.risk_band {
            Some(_) if access.principal.role == events::metadata::Role::Partner => {
                return Err(refusal(
                    403,
                    "FORBIDDEN",
                    "partners do not see the churn-risk score, so cannot filter by it".to_owned(),
                ));
            }
            Some(_) => {
                let scores = crate::risk::portfolio(pool, None, chrono::Utc::now().date_naive(), &rules)
                    .await
                    .map_err(|error| {
                        tracing::error!(%error, "scoring churn risk failed");
                        refusal(503, "UNAVAILABLE", "the read models are unavailable")
                    })?;
                selection.with_risk(&scores.iter().map(|row| (row.customer_id, row.summary)).collect())
            }
            None => selection,
        };
        let definitions = events::service::read_models::custom_field_definitions(pool, None)
            .await
            .map_err(|error| {
                tracing::error!(%error, "reading custom-field definitions failed");
                refusal(503, "UNAVAILABLE", "the read models are unavailable")
            })?;
        let role = access.principal.role;
        let sheet = &report.sheets[0];
        let mut columns: Vec<workbook::Column> = sheet
            .columns
            .iter()
            .map(|(title, _, kind)| workbook::column(title, *kind))
            .collect();
        let mut custom = Vec::new();
        for definition in definitions
            .fields
            .iter()
            .filter(|definition| definition.visible_to(role))
        {
            let field_type = definition.field_type.as_str();
            columns.push(workbook::column(&definition.label, column_kind(field_type)));
            custom.push((definition.key.clone(), field_type.to_owned()));
        }
        Ok(CustomersListing {
            sql: selection.listed_sql(),
            selection,
            definitions,
            role,
            columns,
            custom,
        })
    }

    /// One customer's cells, equal to what the `customers` query answers for it.
    fn cells(&self, listed: crate::customers::ListedCustomer, today: chrono::NaiveDate) -> Vec<Cell> {
        use async_graphql::InputType;
        let customer = &listed.customer;
        let name = |value: async_graphql::Value| match value {
            async_graphql::Value::Enum(name) => Cell::text(name.as_str()),
            _ => Cell::Empty,
        };
        let tier = events::customer::Tier::parse(&customer.tier_name)
            .map_or(Cell::Empty, |tier| name(crate::scalars::Tier::from(tier).to_value()));
        let colour = listed.health_score.map_or(Cell::Empty, |score| {
            name(crate::scalars::HealthColour::from(events::coverage::HealthColour::of(score)).to_value())
        });
        let optional_text = |text: &Option<String>| text.as_ref().map_or(Cell::Empty, Cell::text);
        let mut cells = vec![
            Cell::text(&customer.name),
            Cell::text(&customer.salesforce_id),
            tier,
            Cell::Number(customer.arr.try_into().unwrap_or_default()),
            Cell::text(&customer.industry),
            Cell::text(&customer.account_manager),
            // As an import reads it back: options separated by "; ".
            Cell::text(&customer.products_owned.join("; ")),
            optional_text(&listed.csm_name),
            Cell::Date(customer.contract_start),
            Cell::Date(customer.renewal_date),
            Cell::Number((customer.renewal_date - today).num_days() as f64),
            colour,
            listed.health_score.map_or(Cell::Empty, Cell::Number),
            optional_text(&customer.adoption_stage),
            customer.churned_on.map_or(Cell::Empty, Cell::Date),
        ];
        let values = crate::custom_fields::visible_values(&self.definitions, &customer.custom_fields.0, self.role);
        for (key, field_type) in &self.custom {
            cells.push(
                values
                    .iter()
                    .find(|value| &value.key == key)
                    .map_or(Cell::Empty, |value| {
                        let stored = value.value.as_ref().map_or(Value::Null, |json| json.0.clone());
                        custom_cell(field_type, &stored, &value.display)
                    }),
            );
        }
        cells
    }

    /// Every row as one table (a workbook is written whole), at most `MAX_ROWS`.
    async fn table(&self, pool: &sqlx::PgPool) -> Result<Table, Refusal> {
        use futures_util::StreamExt;
        let today = chrono::Utc::now().date_naive();
        let mut rows = Vec::new();
        let mut listed = crate::customers::listed(pool, &self.selection, &self.sql);
        while let Some(row) = listed.next().await {
            let row = row.map_err(|error| {
                tracing::error!(%error, "customers export failed");
                refusal(503, "UNAVAILABLE", "the read models are unavailable")
            })?;
            if rows.len() == MAX_ROWS {
                return Err(refusal(
                    400,
                    "TOO_MANY_ROWS",
                    format!("a workbook holds at most {MAX_ROWS} rows; narrow the filters or export CSV"),
                ));
            }
            rows.push(self.cells(row, today));
        }
        Ok(Table {
            name: "Customers".into(),
            columns: self.columns.clone(),
            rows,
        })
    }

    /// The CSV, sent in chunks as rows are read. A read failing part-way ends the body with an
    /// error, so the client sees a broken download rather than a short file.
    fn csv(self, pool: sqlx::PgPool) -> axum::body::Body {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let today = chrono::Utc::now().date_naive();
            let mut out = workbook::csv_header(&self.columns);
            let mut listed = crate::customers::listed(&pool, &self.selection, &self.sql);
            while let Some(row) = listed.next().await {
                match row {
                    Ok(row) => {
                        workbook::csv_row(&self.cells(row, today), &mut out);
                        if out.len() >= CHUNK && sender.send(Ok(std::mem::take(&mut out))).await.is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "customers export failed while streaming");
                        let _ = sender.send(Err(std::io::Error::other(error))).await;
                        return;
                    }
                }
            }
            let _ = sender.send(Ok(out)).await;
        });
        axum::body::Body::from_stream(futures_util::stream::poll_fn(move |context| {
            receiver.poll_recv(context)
        }))
    }
}

/// What an export answers: its body, content type and file name.
pub struct Export {
    pub body: Payload,
    pub content_type: &'static str,
    pub file_name: String,
}

/// Builds `name` (`<report>.xlsx` or `<report>.csv`) for the caller.
pub async fn build(
    schema: &crate::schema::CstrackSchema,
    pool: &sqlx::PgPool,
    access: &Access,
    name: &str,
    params: &BTreeMap<String, String>,
) -> Result<Export, Refusal> {
    let (report_name, format) = name
        .rsplit_once('.')
        .filter(|(_, format)| matches!(*format, "xlsx" | "csv" | "pptx" | "zip"))
        .ok_or_else(|| {
            refusal(
                404,
                "NOT_FOUND",
                format!(
                    "exports are <report>.xlsx or <report>.csv (reports: {}), <deck>.pptx (decks: {}) and customers.zip",
                    REPORTS.join(", "),
                    crate::decks::DECKS.join(", ")
                ),
            )
        })?;
    if format == "pptx" {
        return crate::decks::build(schema, pool, access, report_name, params).await;
    }
    if format == "zip" {
        if report_name != "customers" {
            return Err(refusal(
                404,
                "NOT_FOUND",
                "the one .zip export is customers.zip (customer decks)",
            ));
        }
        return crate::decks::batch(schema, pool, access, params).await;
    }
    let report = spec(report_name).ok_or_else(|| {
        refusal(
            404,
            "NOT_FOUND",
            format!("no report {report_name:?}; reports: {}", REPORTS.join(", ")),
        )
    })?;
    let variables = variables(params)?;
    let generated = chrono::Utc::now();
    let stem = format!(
        "cstrack-{report_name}-{}",
        params
            .get("asOf")
            .cloned()
            .unwrap_or_else(|| generated.date_naive().to_string())
    );
    let (tables, data) = if report_name == "customers" {
        let listing = CustomersListing::new(pool, access, &report, &variables).await?;
        if format == "csv" {
            return Ok(Export {
                body: Payload::Streamed(listing.csv(pool.clone())),
                content_type: "text/csv; charset=utf-8",
                file_name: format!("{stem}-customers.csv"),
            });
        }
        (vec![listing.table(pool).await?], Value::Null)
    } else {
        let data = fetch(schema, pool, access, &report, variables).await?;
        (tables(&report, &data), data)
    };
    if format == "csv" {
        let wanted = params.get("section").or_else(|| params.get("sheet"));
        let table = match wanted {
            Some(section) => tables
                .iter()
                .find(|table| table.name.eq_ignore_ascii_case(section))
                .ok_or_else(|| {
                    let names: Vec<&str> = tables.iter().map(|table| table.name.as_str()).collect();
                    refusal(
                        400,
                        "BAD_USER_INPUT",
                        format!("section is one of: {}", names.join(", ")),
                    )
                })?,
            // The main list: the largest section.
            None => tables
                .iter()
                .max_by_key(|table| table.rows.len())
                .expect("a report has sheets"),
        };
        return Ok(Export {
            body: Payload::Whole(workbook::csv(table)),
            content_type: "text/csv; charset=utf-8",
            file_name: format!("{stem}-{}.csv", table.name.to_lowercase().replace(' ', "-")),
        });
    }
    let filters: Vec<String> = params
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "asOf" | "section" | "sheet"))
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let rules_version = report
        .rules_version
        .and_then(|pointer| data.pointer(pointer))
        .and_then(Value::as_str)
        .unwrap_or("not applicable")
        .to_owned();
    let about = vec![
        ("Report".to_owned(), report.title.to_owned()),
        (
            "As of".to_owned(),
            params
                .get("asOf")
                .cloned()
                .unwrap_or_else(|| format!("{} (today, UTC)", generated.date_naive())),
        ),
        (
            "Known at".to_owned(),
            format!(
                "{} (the live read models)",
                generated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ),
        ("Rules version".to_owned(), rules_version),
        (
            "Filters".to_owned(),
            if filters.is_empty() {
                "none".to_owned()
            } else {
                filters.join(", ")
            },
        ),
        (
            "Generated at".to_owned(),
            generated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        (
            "Generated by".to_owned(),
            format!("{} ({})", access.principal.user_id, access.principal.role.as_str()),
        ),
        (
            "Sheets".to_owned(),
            tables
                .iter()
                .map(|table| match table.rows.len() {
                    1 => format!("{} (1 row)", table.name),
                    rows => format!("{} ({rows} rows)", table.name),
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    let bytes =
        workbook::xlsx(report.title, &about, &tables).map_err(|error| refusal(500, "INTERNAL", error.to_string()))?;
    Ok(Export {
        body: Payload::Whole(bytes),
        content_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        file_name: format!("{stem}.xlsx"),
    })
}
