//! PowerPoint decks for management (docs/EXPORTS.md, "Decks"): the portfolio deck (executive
//! summary, coverage, engagement distribution, renewals, at-risk accounts) and a one-slide
//! customer summary, from the same GraphQL queries as the screens, written into the template an
//! admin uploaded (else the shipped default).

use std::collections::BTreeMap;

use events::service::deck::{self, Block, Chart, ChartKind, Slide};
use serde_json::{json, Value};

use crate::access::Access;
use crate::export::{execute, refusal, Export, Refusal};

/// The template shipped with the service (written by LibreOffice Impress from
/// `assets/deck/default.fodp`).
pub const DEFAULT_TEMPLATE: &[u8] = include_bytes!("../assets/deck/default.pptx");

/// The template in force: the latest an admin uploaded, else the default.
async fn template(pool: &sqlx::PgPool) -> Result<Vec<u8>, Refusal> {
    let uploaded: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT content FROM deck_templates ORDER BY uploaded_at DESC LIMIT 1")
            .fetch_optional(pool)
            .await
            .map_err(|error| refusal(503, "UNAVAILABLE", error.to_string()))?;
    Ok(uploaded.unwrap_or_else(|| DEFAULT_TEMPLATE.to_vec()))
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "—".into(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn number(value: &Value) -> f64 {
    match value {
        Value::Number(number) => number.as_f64().unwrap_or_default(),
        Value::String(text) => text.parse().unwrap_or_default(),
        _ => 0.0,
    }
}

/// A whole number with its thousands separated: "1,234,567".
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// An amount as a person reads it on a slide: "$1,234,567".
fn money(value: &Value) -> String {
    let amount = number(value).round() as i64;
    format!(
        "{}${}",
        if amount < 0 { "-" } else { "" },
        thousands(amount.unsigned_abs())
    )
}

fn rows(value: &Value) -> Vec<Value> {
    value.as_array().cloned().unwrap_or_default()
}

/// An enum value of the API as a person says it.
fn said(value: &Value) -> String {
    let text = match value {
        Value::Null => return "—".into(),
        Value::String(text) => text.as_str(),
        other => return other.to_string(),
    };
    match text {
        "GREEN" => "Green".into(),
        "YELLOW" => "Yellow".into(),
        "RED" => "Red".into(),
        "ENTERPRISE" => "Enterprise".into(),
        "MID_MARKET" => "Mid-market".into(),
        "SMB" => "SMB".into(),
        "HIGH" => "High".into(),
        "HEALTHY" => "Healthy".into(),
        "LOW" => "Low".into(),
        "AT_RISK" => "At risk".into(),
        "URGENT" => "Urgent".into(),
        "ATTENTION" => "Attention".into(),
        "OK" => "OK".into(),
        "IMPROVING" => "improving".into(),
        "DECLINING" => "declining".into(),
        "STABLE" => "stable".into(),
        other => other.to_lowercase().replace('_', " "),
    }
}

/// A health colour's name, "No score" for none.
fn colour_name(value: &Value) -> String {
    if value.is_null() {
        "No score".into()
    } else {
        said(value)
    }
}

/// The colour a chart paints a health colour, an engagement category or a coverage status.
fn paint(value: &Value) -> String {
    match value.as_str() {
        Some("GREEN" | "HIGH") => "24A148",
        Some("YELLOW" | "LOW") => "F1C21B",
        Some("RED" | "AT_RISK") => "DA1E28",
        Some("HEALTHY") => "009D9A",
        _ => "8D8D8D",
    }
    .into()
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// An engagement period as the API names it (`30d`, `2026-11`, `2026-Q4`), in words.
fn period_words(value: &Value) -> String {
    let label = text(value);
    if let Some(days) = label.strip_suffix('d') {
        return format!("the last {days} days");
    }
    if let Some((year, quarter)) = label.split_once("-Q") {
        return format!("Q{quarter} {year}");
    }
    if let Some((year, month)) = label.split_once('-') {
        if let Some(name) = month.parse::<usize>().ok().and_then(|m| MONTHS.get(m.wrapping_sub(1))) {
            return format!("{name} {year}");
        }
    }
    label
}

/// What a coverage gap means, in words.
fn gap_words(value: &Value) -> String {
    match value.as_str() {
        Some("CONTACT") => "no recent contact".into(),
        Some("TOUCHES") => "too few touches".into(),
        Some("MEETINGS") => "too few meetings".into(),
        Some("STAKEHOLDERS") => "too few stakeholders".into(),
        _ => said(value),
    }
}

/// A health score with its colour: "42.0 (Red)".
fn health(score: &Value, colour: &Value) -> String {
    if score.is_null() {
        "No score".into()
    } else {
        format!("{:.1} ({})", number(score), colour_name(colour))
    }
}

/// Most CSMs the coverage chart shows (those with the most under-covered accounts).
const CHART_CSMS: usize = 12;
/// Most rows the renewals and at-risk tables list, over their slides.
const LISTED: usize = 30;

/// A table's last row saying how many more there are, when there are.
fn and_more(rows: &mut Vec<Vec<String>>, total: usize, columns: usize, what: &str) {
    if total > rows.len() {
        let mut last = vec![format!("and {} more {what}", thousands((total - rows.len()) as u64))];
        last.resize(columns, String::new());
        rows.push(last);
    }
}

/// The portfolio deck's sections, in their order, as `sections=` names them.
pub const SECTIONS: [&str; 5] = ["summary", "coverage", "engagement", "renewals", "at-risk"];

/// The sections a request chose (every one without `sections`); an unknown one is refused.
fn sections(params: &BTreeMap<String, String>) -> Result<Vec<&'static str>, Refusal> {
    let Some(chosen) = params.get("sections") else {
        return Ok(SECTIONS.to_vec());
    };
    let mut wanted = Vec::new();
    for name in chosen.split(',').map(str::trim).filter(|name| !name.is_empty()) {
        let section = SECTIONS.iter().find(|section| **section == name).ok_or_else(|| {
            refusal(
                400,
                "BAD_USER_INPUT",
                format!("no deck section {name:?}; sections: {}", SECTIONS.join(", ")),
            )
        })?;
        if !wanted.contains(section) {
            wanted.push(*section);
        }
    }
    if wanted.is_empty() {
        return Err(refusal(400, "BAD_USER_INPUT", "sections names at least one section"));
    }
    // Always in the deck's own order.
    wanted.sort_by_key(|section| SECTIONS.iter().position(|s| s == section));
    Ok(wanted)
}

fn portfolio_slides(data: &Value, as_of: &str, by: &str, chosen: &[&str]) -> Vec<Slide> {
    let summary = &data["summary"];
    let current = &summary["current"];
    let previous = &summary["previousQuarter"];
    let coverage = &data["coverage"];
    let engagement = &data["engagement"];
    let colours = rows(&current["colours"]);
    let mut slides = vec![Slide {
        title: "Portfolio review".into(),
        blocks: vec![Block::Text(vec![
            format!("As of {as_of}"),
            format!(
                "{} customers, {} ARR",
                thousands(number(&current["customers"]) as u64),
                money(&current["totalArr"])
            ),
            format!("Coverage rules: version {}", text(&coverage["rulesVersion"])),
            format!("Prepared by {by} with cstrack"),
        ])],
    }];
    let mut section_of = vec![""];
    section_of.push("summary");
    slides.push(Slide {
        title: "Executive summary".into(),
        blocks: vec![
            Block::Table(
                vec![
                    "Measure".into(),
                    "Now".into(),
                    format!("At {}", text(&previous["asOf"])),
                ],
                vec![
                    vec![
                        "Customers".into(),
                        text(&current["customers"]),
                        text(&previous["customers"]),
                    ],
                    vec![
                        "Total ARR".into(),
                        money(&current["totalArr"]),
                        money(&previous["totalArr"]),
                    ],
                    vec![
                        "ARR at risk".into(),
                        money(&current["arrAtRisk"]),
                        money(&previous["arrAtRisk"]),
                    ],
                    vec!["NPS".into(), text(&current["nps"]), text(&previous["nps"])],
                    vec!["ARR change".into(), money(&summary["arrChange"]), String::new()],
                ],
            ),
            Block::Chart(
                Chart::new(
                    ChartKind::Bar,
                    "ARR by health",
                    colours.iter().map(|slice| colour_name(&slice["colour"])).collect(),
                    vec![(
                        "ARR".into(),
                        colours.iter().map(|slice| number(&slice["arr"])).collect(),
                    )],
                )
                .money()
                .point_colours(colours.iter().map(|slice| paint(&slice["colour"])).collect()),
            ),
        ],
    });
    // The CSMs with the most under-covered accounts first; a chart of 56 CSMs is 56 hairlines.
    let mut by_csm = rows(&coverage["byCsm"]);
    by_csm.sort_by(|a, b| {
        number(&b["coverage"]["underCovered"])
            .total_cmp(&number(&a["coverage"]["underCovered"]))
            .then_with(|| text(&a["csmName"]).cmp(&text(&b["csmName"])))
    });
    let csm_count = by_csm.len();
    by_csm.truncate(CHART_CSMS);
    let counts = &coverage["summary"];
    section_of.push("coverage");
    slides.push(Slide {
        title: "Coverage".into(),
        blocks: vec![
            Block::Text(vec![
                format!("{} accounts", thousands(number(&counts["accounts"]) as u64)),
                format!("Well covered: {}", text(&counts["wellCovered"])),
                format!("Under-covered: {}", text(&counts["underCovered"])),
                format!("Over-covered: {}", text(&counts["overCovered"])),
                format!("Average coverage score: {:.1}", number(&counts["averageScore"])),
            ]),
            Block::Chart(
                Chart::new(
                    ChartKind::Bar,
                    if csm_count > CHART_CSMS {
                        format!("Coverage by CSM: the {CHART_CSMS} with most under-covered accounts, of {csm_count}")
                    } else {
                        "Coverage by CSM".into()
                    },
                    by_csm.iter().map(|csm| text(&csm["csmName"])).collect(),
                    ["wellCovered", "underCovered", "overCovered"]
                        .iter()
                        .zip(["Well covered", "Under-covered", "Over-covered"])
                        .map(|(field, name)| {
                            (
                                name.to_owned(),
                                by_csm.iter().map(|csm| number(&csm["coverage"][field])).collect(),
                            )
                        })
                        .collect(),
                )
                .counts()
                .series_colours(&["24A148", "DA1E28", "8A3FFC"]),
            ),
        ],
    });
    let distribution = rows(&engagement["distribution"]);
    section_of.push("engagement");
    slides.push(Slide {
        title: format!("Engagement, {}", period_words(&engagement["period"])),
        blocks: vec![
            Block::Chart(
                Chart::new(
                    ChartKind::Bar,
                    "Customers by engagement",
                    distribution.iter().map(|bucket| said(&bucket["category"])).collect(),
                    vec![(
                        "Customers".into(),
                        distribution.iter().map(|bucket| number(&bucket["customers"])).collect(),
                    )],
                )
                .counts()
                .point_colours(distribution.iter().map(|bucket| paint(&bucket["category"])).collect()),
            ),
            Block::Table(
                vec!["Tier".into(), "Customers".into(), "Average score".into()],
                rows(&engagement["segments"])
                    .iter()
                    .map(|segment| {
                        vec![
                            said(&segment["tier"]),
                            text(&segment["customers"]),
                            format!("{:.1}", number(&segment["averageScore"])),
                        ]
                    })
                    .collect(),
            ),
        ],
    });
    let windows = rows(&current["renewals"]);
    let renewals_total = rows(&data["pipeline"])
        .iter()
        .map(|month| number(&month["accounts"]) as usize)
        .sum::<usize>();
    let mut renewals: Vec<Vec<String>> = data["renewals"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .take(LISTED)
        .map(|edge| {
            let node = &edge["node"];
            vec![
                text(&node["name"]),
                text(&node["csmName"]),
                money(&node["arr"]),
                format!(
                    "{} (in {} days)",
                    text(&node["renewalDate"]),
                    text(&node["daysUntilRenewal"])
                ),
                colour_name(&node["healthColour"]),
            ]
        })
        .collect();
    and_more(&mut renewals, renewals_total, 5, "renewals");
    section_of.push("renewals");
    slides.push(Slide {
        title: "Renewals in the next 90 days".into(),
        blocks: vec![
            if renewals.is_empty() {
                Block::Text(vec!["No customer renews in the next 90 days.".into()])
            } else {
                Block::Table(
                    vec![
                        "Customer".into(),
                        "CSM".into(),
                        "ARR".into(),
                        "Renews".into(),
                        "Health".into(),
                    ],
                    renewals,
                )
            },
            Block::Chart(
                Chart::new(
                    ChartKind::Bar,
                    "ARR renewing",
                    windows
                        .iter()
                        .map(|window| format!("within {} days", text(&window["days"])))
                        .collect(),
                    vec![(
                        "ARR".into(),
                        windows.iter().map(|window| number(&window["arr"])).collect(),
                    )],
                )
                .money()
                .series_colours(&["0F62FE"]),
            ),
        ],
    });
    // Red and yellow accounts, largest ARR first, then the most urgent coverage.
    let report = &data["atRisk"];
    let mut at_risk: Vec<Vec<String>> = rows(&report["accounts"])
        .iter()
        .map(|entry| {
            let account = &entry["coverage"];
            let gaps: Vec<String> = rows(&account["gapAreas"]).iter().map(gap_words).collect();
            vec![
                text(&account["name"]),
                money(&account["arr"]),
                health(&account["healthScore"], &account["healthColour"]),
                if gaps.is_empty() {
                    said(&account["priority"])
                } else {
                    format!("{}: {}", said(&account["priority"]), gaps.join(", "))
                },
                text(&account["csmName"]),
            ]
        })
        .collect();
    and_more(&mut at_risk, number(&report["total"]) as usize, 5, "accounts at risk");
    section_of.push("at-risk");
    slides.push(Slide {
        title: format!(
            "At-risk accounts: {} red, {} yellow, {} ARR",
            text(&report["red"]),
            text(&report["yellow"]),
            money(&report["arr"])
        ),
        blocks: vec![if at_risk.is_empty() {
            Block::Text(vec!["No account is red or yellow.".into()])
        } else {
            Block::Table(
                vec![
                    "Customer".into(),
                    "ARR".into(),
                    "Health".into(),
                    "Coverage".into(),
                    "CSM".into(),
                ],
                at_risk,
            )
        }],
    });
    // The title slide, then the chosen sections: every slide is tagged with its section.
    debug_assert_eq!(slides.len(), section_of.len(), "a portfolio slide without its section");
    slides
        .into_iter()
        .zip(section_of)
        .filter(|(_, section)| section.is_empty() || chosen.contains(section))
        .map(|(slide, _)| slide)
        .collect()
}

fn customer_slide(data: &Value) -> Slide {
    let customer = &data["customer"];
    let engagement = &data["engagement"];
    let points = rows(&data["trend"]["points"]);
    let mut profile = vec![
        format!("{} · {} ARR", said(&customer["tier"]), money(&customer["arr"])),
        format!("CSM: {}", text(&customer["csm"]["name"])),
        format!(
            "Renews {} (in {} days)",
            text(&customer["renewalDate"]),
            text(&customer["daysUntilRenewal"])
        ),
        format!(
            "Health: {}",
            health(&customer["health"]["score"], &customer["healthColour"])
        ),
        format!(
            "Engagement, {}: {:.1}, {} ({})",
            period_words(&engagement["period"]),
            number(&engagement["score"]),
            said(&engagement["category"]).to_lowercase(),
            said(&engagement["trend"])
        ),
    ];
    profile.extend(
        rows(&customer["customFields"])
            .iter()
            .filter(|field| field["display"].as_str().is_some_and(|display| !display.is_empty()))
            .take(4)
            .map(|field| format!("{}: {}", text(&field["label"]), text(&field["display"]))),
    );
    let tasks: Vec<Vec<String>> = data["tasks"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|edge| {
            let node = &edge["node"];
            vec![text(&node["title"]), text(&node["dueDate"]), said(&node["status"])]
        })
        .collect();
    let mut blocks = vec![
        Block::Text(profile),
        Block::Chart(
            Chart::new(
                ChartKind::Line,
                "Health, last 90 days",
                points.iter().map(|point| text(&point["bucket"])).collect(),
                vec![(
                    "Health".into(),
                    points.iter().map(|point| number(&point["score"])).collect(),
                )],
            )
            .series_colours(&["0F62FE"]),
        ),
    ];
    blocks.push(if tasks.is_empty() {
        Block::Text(vec!["No open tasks.".into()])
    } else {
        Block::Table(vec!["Open task".into(), "Due".into(), "Status".into()], tasks)
    });
    Slide {
        title: text(&customer["name"]),
        blocks,
    }
}

const PORTFOLIO: &str = "query($asOf: Date, $to: Date, $listed: Int!) {
  summary: executiveSummary(asOf: $asOf) { arrChange arrAtRiskChange
    current { asOf customers totalArr arrAtRisk nps colours { colour accounts arr } renewals { days customers arr } }
    previousQuarter { asOf customers totalArr arrAtRisk nps } }
  coverage: coverageReport(asOf: $asOf) { rulesVersion summary { accounts wellCovered underCovered overCovered averageScore }
    byCsm { csmName coverage { wellCovered underCovered overCovered } } }
  engagement: engagementMetrics(asOf: $asOf) { period distribution { category customers } segments { tier customers averageScore } }
  renewals(from: $asOf, to: $to, first: $listed) { edges { node { name csmName arr renewalDate daysUntilRenewal healthColour } } }
  pipeline: renewalPipeline(from: $asOf, to: $to) { accounts }
  atRisk: atRiskReport(asOf: $asOf, limit: $listed) { total red yellow arr
    accounts { coverage { name arr csmName healthScore healthColour priority gapAreas } } } }";

const CUSTOMER: &str = "query($customerId: UUID!, $from: Date, $asOf: Date) {
  customer(id: $customerId) { name tier arr csm { name } renewalDate daysUntilRenewal healthColour health { score }
    customFields { label display } }
  trend: healthTrend(customerId: $customerId, from: $from, to: $asOf, granularity: WEEK) { points { bucket score } }
  engagement: customerEngagement(customerId: $customerId, asOf: $asOf) { period score category trend }
  tasks(filter: {customerId: $customerId, state: OPEN}, first: 8) { edges { node { title dueDate status } } } }";

pub const DECKS: [&str; 2] = ["portfolio", "customer"];

/// Builds `portfolio.pptx` or `customer.pptx` for the caller.
pub async fn build(
    schema: &crate::schema::CstrackSchema,
    pool: &sqlx::PgPool,
    access: &Access,
    deck_name: &str,
    params: &BTreeMap<String, String>,
) -> Result<Export, Refusal> {
    for key in params.keys() {
        if !matches!(key.as_str(), "asOf" | "customerId" | "sections") {
            return Err(refusal(
                400,
                "BAD_USER_INPUT",
                format!("a deck takes no parameter {key:?}"),
            ));
        }
    }
    let today = chrono::Utc::now().date_naive();
    let as_of = match params.get("asOf") {
        Some(day) => day
            .parse::<chrono::NaiveDate>()
            .map_err(|_| refusal(400, "BAD_USER_INPUT", "asOf is a date (YYYY-MM-DD)"))?,
        None => today,
    };
    let by = format!("{} ({})", access.principal.user_id, access.principal.role.as_str());
    let (slides, stem) = match deck_name {
        "portfolio" => {
            let variables = json!({"asOf": as_of.to_string(), "to": (as_of + chrono::Duration::days(90)).to_string(),
                "listed": LISTED});
            let chosen = sections(params)?;
            let data = execute(schema, pool, access, PORTFOLIO, &variables).await?;
            (
                portfolio_slides(&data, &as_of.to_string(), &by, &chosen),
                format!("cstrack-portfolio-{as_of}"),
            )
        }
        "customer" => {
            let customer = params
                .get("customerId")
                .ok_or_else(|| refusal(400, "BAD_USER_INPUT", "customerId is required"))?;
            let variables = json!({"customerId": customer, "asOf": as_of.to_string(),
                "from": (as_of - chrono::Duration::days(90)).to_string()});
            let data = execute(schema, pool, access, CUSTOMER, &variables).await?;
            if data["customer"].is_null() {
                return Err(refusal(404, "NOT_FOUND", format!("no customer {customer}")));
            }
            (
                vec![customer_slide(&data)],
                format!("cstrack-customer-{customer}-{as_of}"),
            )
        }
        other => {
            return Err(refusal(
                404,
                "NOT_FOUND",
                format!("no deck {other:?}; decks: {}", DECKS.join(", ")),
            ))
        }
    };
    let template = template(pool).await?;
    let bytes = deck::build(&template, &slides).map_err(|error| refusal(500, "INTERNAL", error.to_string()))?;
    Ok(Export {
        body: crate::export::Payload::Whole(bytes),
        content_type: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        file_name: format!("{stem}.pptx"),
    })
}

/// Most customer decks one batch holds.
pub const BATCH: usize = 50;

/// A name that is safe as a file name in a zip and on every desktop.
fn file_stem(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_matches('.').chars().take(80).collect::<String>();
    if trimmed.is_empty() {
        "customer".into()
    } else {
        trimmed
    }
}

/// `customers.zip?customerIds=a,b&asOf=`: one customer summary deck per customer (1 to 50 the
/// caller may see), in one zip, each named after its customer.
pub async fn batch(
    schema: &crate::schema::CstrackSchema,
    pool: &sqlx::PgPool,
    access: &Access,
    params: &BTreeMap<String, String>,
) -> Result<Export, Refusal> {
    use std::io::Write;
    for key in params.keys() {
        if !matches!(key.as_str(), "asOf" | "customerIds") {
            return Err(refusal(
                400,
                "BAD_USER_INPUT",
                format!("customers.zip takes no parameter {key:?}"),
            ));
        }
    }
    let ids: Vec<&str> = params
        .get("customerIds")
        .map(|ids| ids.split(',').map(str::trim).filter(|id| !id.is_empty()).collect())
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > BATCH {
        return Err(refusal(
            400,
            "BAD_USER_INPUT",
            format!("customerIds names 1 to {BATCH} customers, separated by commas"),
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for id in ids {
        let mut one = BTreeMap::new();
        one.insert("customerId".to_owned(), id.to_owned());
        if let Some(as_of) = params.get("asOf") {
            one.insert("asOf".to_owned(), as_of.clone());
        }
        let deck = build(schema, pool, access, "customer", &one).await?;
        let crate::export::Payload::Whole(bytes) = deck.body else {
            return Err(refusal(500, "INTERNAL", "a customer deck came streamed"));
        };
        let name = execute(
            schema,
            pool,
            access,
            "query($id: UUID!) { customer(id: $id) { name } }",
            &json!({"id": id}),
        )
        .await?["customer"]["name"]
            .as_str()
            .map(file_stem)
            .unwrap_or_else(|| "customer".into());
        // Two customers of one name get a number each after the first.
        let mut file = format!("{name}.pptx");
        let mut n = 2;
        while !names.insert(file.clone()) {
            file = format!("{name} ({n}).pptx");
            n += 1;
        }
        zip.start_file(file, options)
            .and_then(|_| zip.write_all(&bytes).map_err(Into::into))
            .map_err(|error| refusal(500, "INTERNAL", error.to_string()))?;
    }
    let bytes = zip
        .finish()
        .map_err(|error| refusal(500, "INTERNAL", error.to_string()))?
        .into_inner();
    let as_of = params
        .get("asOf")
        .cloned()
        .unwrap_or_else(|| chrono::Utc::now().date_naive().to_string());
    Ok(Export {
        body: crate::export::Payload::Whole(bytes),
        content_type: "application/zip",
        file_name: format!("cstrack-customer-decks-{as_of}.zip"),
    })
}
