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
/// Most rows a deck table shows.
const TABLE_ROWS: usize = 12;

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

fn portfolio_slides(data: &Value, as_of: &str, by: &str) -> Vec<Slide> {
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
                text(&current["customers"]),
                money(&current["totalArr"])
            ),
            format!("Rules version {}", text(&coverage["rulesVersion"])),
            format!("Prepared by {by} with cstrack"),
        ])],
    }];
    slides.push(Slide {
        title: "Executive summary".into(),
        blocks: vec![
            Block::Table(
                vec![
                    "Measure".into(),
                    "Now".into(),
                    format!("Quarter before ({})", text(&previous["asOf"])),
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
            Block::Chart(Chart {
                kind: ChartKind::Bar,
                title: "ARR by health".into(),
                categories: colours.iter().map(|slice| text(&slice["colour"])).collect(),
                series: vec![(
                    "ARR".into(),
                    colours.iter().map(|slice| number(&slice["arr"])).collect(),
                )],
            }),
        ],
    });
    let by_csm = rows(&coverage["byCsm"]);
    let counts = &coverage["summary"];
    slides.push(Slide {
        title: "Coverage".into(),
        blocks: vec![
            Block::Text(vec![
                format!("{} accounts", text(&counts["accounts"])),
                format!("Well covered: {}", text(&counts["wellCovered"])),
                format!("Under-covered: {}", text(&counts["underCovered"])),
                format!("Over-covered: {}", text(&counts["overCovered"])),
                format!("Average coverage score: {:.1}", number(&counts["averageScore"])),
            ]),
            Block::Chart(Chart {
                kind: ChartKind::Bar,
                title: "Coverage by CSM".into(),
                categories: by_csm.iter().map(|csm| text(&csm["csmName"])).collect(),
                series: ["wellCovered", "underCovered", "overCovered"]
                    .iter()
                    .zip(["Well covered", "Under-covered", "Over-covered"])
                    .map(|(field, name)| {
                        (
                            name.to_owned(),
                            by_csm.iter().map(|csm| number(&csm["coverage"][field])).collect(),
                        )
                    })
                    .collect(),
            }),
        ],
    });
    let distribution = rows(&engagement["distribution"]);
    slides.push(Slide {
        title: format!("Engagement, {}", text(&engagement["period"])),
        blocks: vec![
            Block::Chart(Chart {
                kind: ChartKind::Bar,
                title: "Customers by engagement".into(),
                categories: distribution.iter().map(|bucket| text(&bucket["category"])).collect(),
                series: vec![(
                    "Customers".into(),
                    distribution.iter().map(|bucket| number(&bucket["customers"])).collect(),
                )],
            }),
            Block::Table(
                vec!["Tier".into(), "Customers".into(), "Average score".into()],
                rows(&engagement["segments"])
                    .iter()
                    .map(|segment| {
                        vec![
                            text(&segment["tier"]),
                            text(&segment["customers"]),
                            format!("{:.1}", number(&segment["averageScore"])),
                        ]
                    })
                    .collect(),
            ),
        ],
    });
    let windows = rows(&current["renewals"]);
    slides.push(Slide {
        title: "Renewals".into(),
        blocks: vec![
            Block::Table(
                vec![
                    "Customer".into(),
                    "ARR".into(),
                    "Renews".into(),
                    "Days".into(),
                    "Health".into(),
                ],
                data["renewals"]["edges"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .take(TABLE_ROWS)
                    .map(|edge| {
                        let node = &edge["node"];
                        vec![
                            text(&node["name"]),
                            money(&node["arr"]),
                            text(&node["renewalDate"]),
                            text(&node["daysUntilRenewal"]),
                            text(&node["healthColour"]),
                        ]
                    })
                    .collect(),
            ),
            Block::Chart(Chart {
                kind: ChartKind::Bar,
                title: "ARR renewing".into(),
                categories: windows
                    .iter()
                    .map(|window| format!("{} days", text(&window["days"])))
                    .collect(),
                series: vec![(
                    "ARR".into(),
                    windows.iter().map(|window| number(&window["arr"])).collect(),
                )],
            }),
        ],
    });
    let at_risk: Vec<Vec<String>> = rows(&coverage["accounts"])
        .iter()
        .filter(|account| account["atRisk"] == true)
        .take(TABLE_ROWS)
        .map(|account| {
            vec![
                text(&account["name"]),
                text(&account["tier"]),
                money(&account["arr"]),
                text(&account["csmName"]),
                format!("{:.1}", number(&account["score"])),
                text(&account["healthScore"]),
            ]
        })
        .collect();
    slides.push(Slide {
        title: "At-risk accounts".into(),
        blocks: vec![if at_risk.is_empty() {
            Block::Text(vec!["No account is at risk.".into()])
        } else {
            Block::Table(
                vec![
                    "Customer".into(),
                    "Tier".into(),
                    "ARR".into(),
                    "CSM".into(),
                    "Coverage".into(),
                    "Health".into(),
                ],
                at_risk,
            )
        }],
    });
    slides
}

fn customer_slide(data: &Value) -> Slide {
    let customer = &data["customer"];
    let engagement = &data["engagement"];
    let points = rows(&data["trend"]["points"]);
    let mut profile = vec![
        format!("{} · {} ARR", text(&customer["tier"]), money(&customer["arr"])),
        format!("CSM: {}", text(&customer["csm"]["name"])),
        format!(
            "Renews {} (in {} days)",
            text(&customer["renewalDate"]),
            text(&customer["daysUntilRenewal"])
        ),
        format!(
            "Health: {} ({})",
            text(&customer["health"]["score"]),
            text(&customer["healthColour"])
        ),
        format!(
            "Engagement {}: {:.1}, {} ({})",
            text(&engagement["period"]),
            number(&engagement["score"]),
            text(&engagement["category"]),
            text(&engagement["trend"])
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
            vec![text(&node["title"]), text(&node["dueDate"]), text(&node["status"])]
        })
        .collect();
    let mut blocks = vec![
        Block::Text(profile),
        Block::Chart(Chart {
            kind: ChartKind::Line,
            title: "Health, last 90 days".into(),
            categories: points.iter().map(|point| text(&point["bucket"])).collect(),
            series: vec![(
                "Health".into(),
                points.iter().map(|point| number(&point["score"])).collect(),
            )],
        }),
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

const PORTFOLIO: &str = "query($asOf: Date, $to: Date) {
  summary: executiveSummary(asOf: $asOf) { arrChange arrAtRiskChange
    current { asOf customers totalArr arrAtRisk nps colours { colour accounts arr } renewals { days customers arr } }
    previousQuarter { asOf customers totalArr arrAtRisk nps } }
  coverage: coverageReport(asOf: $asOf) { rulesVersion summary { accounts wellCovered underCovered overCovered averageScore }
    byCsm { csmName coverage { wellCovered underCovered overCovered } }
    accounts { name tier arr csmName score atRisk healthScore } }
  engagement: engagementMetrics(asOf: $asOf) { period distribution { category customers } segments { tier customers averageScore } }
  renewals(from: $asOf, to: $to, first: 12) { edges { node { name arr renewalDate daysUntilRenewal healthColour } } } }";

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
        if !matches!(key.as_str(), "asOf" | "customerId") {
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
            let variables = json!({"asOf": as_of.to_string(), "to": (as_of + chrono::Duration::days(90)).to_string()});
            let data = execute(schema, pool, access, PORTFOLIO, &variables).await?;
            (
                portfolio_slides(&data, &as_of.to_string(), &by),
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
