//! The deterministic demo portfolio: 4 CSMs and 60 customers over the three tiers, with a year
//! of activities and monthly health scores ending today. Every fact goes through the same command
//! handlers as the REST API, so it is validated, stored and relayed like any other. Running it
//! again changes nothing: customers that exist are skipped.

use anyhow::Context;
use chrono::{DateTime, Days, Duration, NaiveDate, Utc};
use events::customer::{
    ActivityKind, AdoptionStage, Direction, HealthSource, OverallStatus, Severity, StakeholderLevel, TaskKind,
    TaskPriority, TaskStatus, Tier, UseCaseStatus,
};
use events::metadata::{Actor, CommandMetadata, Source};
use events::service::settings::DatabaseSettings;
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use crate::domain::csm::{CsmCommand, RegisterCsm};
use crate::domain::customer::*;
use crate::domain::partner::{InviteUser, PartnerCommand, RegisterPartner};
use crate::domain::CommandError;
use crate::http::Handlers;
use crate::store::ExecuteError;

#[derive(clap::Args, Debug, Clone)]
pub struct SeedSettings {
    #[command(flatten)]
    pub database: DatabaseSettings,
}

const CSMS: [(&str, &str, &str); 4] = [
    ("Dana Whitfield", "dana.whitfield@cstrack.example", "Enterprise"),
    ("Marco Bianchi", "marco.bianchi@cstrack.example", "Enterprise"),
    ("Aiko Tanaka", "aiko.tanaka@cstrack.example", "Growth"),
    ("Samuel Osei", "samuel.osei@cstrack.example", "Growth"),
];

const NAMES: [&str; 20] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Pied Piper",
    "Aperture",
    "Black Mesa",
    "Oscorp",
    "Gringotts",
    "Monarch",
    "Massive Dynamic",
    "Nakatomi",
];
const SUFFIXES: [&str; 3] = ["Corp", "Labs", "Group"];
const INDUSTRIES: [&str; 5] = [
    "Manufacturing",
    "Financial Services",
    "Healthcare",
    "Retail",
    "Software",
];
const ROLES: [(&str, StakeholderLevel); 5] = [
    ("Chief Operating Officer", StakeholderLevel::Executive),
    ("VP Customer Operations", StakeholderLevel::Executive),
    ("Platform Owner", StakeholderLevel::Champion),
    ("Operations Analyst", StakeholderLevel::User),
    ("Support Lead", StakeholderLevel::User),
];

/// Fixed ids so a second run recognises what the first one recorded.
fn seeded_id(kind: u128, n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | (kind << 32) | n)
}

fn metadata() -> CommandMetadata {
    let mut metadata = CommandMetadata::system(Source::Import);
    metadata.actor = Actor {
        id: "demo-seed".into(),
        role: "admin".into(),
    };
    metadata
}

fn noon(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(12, 0, 0).expect("noon exists").and_utc()
}

pub async fn run(settings: &SeedSettings) -> anyhow::Result<()> {
    let pool = settings.database.connect().await.context("connecting to PostgreSQL")?;
    crate::migrate(&pool).await?;
    let handlers = crate::handlers(&pool);
    let summary = seed(&handlers, Utc::now().date_naive()).await?;
    tracing::info!(customers = summary.0, events = summary.1, "demo portfolio recorded");
    Ok(())
}

/// Records the portfolio ending on `today`; returns (customers created, events appended).
pub async fn seed(handlers: &Handlers, today: NaiveDate) -> anyhow::Result<(usize, usize)> {
    let metadata = metadata();
    let mut rng = fastrand::Rng::with_seed(162_157);
    let year_ago = today - Days::new(365);
    let mut appended = 0;

    let mut csm_ids = Vec::new();
    for (n, (name, email, team)) in CSMS.iter().enumerate() {
        let csm_id = seeded_id(1, n as u128);
        let command = RegisterCsm {
            csm_id: Some(csm_id),
            name: (*name).into(),
            email: (*email).into(),
            team: (*team).into(),
            monthly_capacity_hours: Some(if n == 0 { 140 } else { 120 }),
            occurred_at: Some(noon(year_ago - Days::new(30))),
        };
        appended += skip_existing(
            handlers
                .csms
                .execute(&csm_id.to_string(), CsmCommand::Register(command), &metadata, None)
                .await,
        )?;
        csm_ids.push(csm_id);
    }

    let mut partners = Vec::new();
    for (n, name) in ["Northwind Consulting", "Blue Harbor Partners"].iter().enumerate() {
        let partner_id = seeded_id(4, n as u128);
        let register = PartnerCommand::Register(RegisterPartner {
            partner_id: Some(partner_id),
            name: (*name).into(),
        });
        appended += skip_existing(
            handlers
                .partners
                .execute(&partner_id.to_string(), register, &metadata, None)
                .await,
        )?;
        let user_id = format!("partner-user-{}", n + 1);
        let invite = PartnerCommand::InviteUser(InviteUser {
            user_id: Some(user_id.clone()),
            name: format!("Partner user {}", n + 1),
            email: format!("{user_id}@partners.example"),
        });
        appended += skip_existing(
            handlers
                .partners
                .execute(&partner_id.to_string(), invite, &metadata, None)
                .await,
        )?;
        let activate = PartnerCommand::ActivateUser { user_id };
        appended += skip_existing(
            handlers
                .partners
                .execute(&partner_id.to_string(), activate, &metadata, None)
                .await,
        )?;
        partners.push(partner_id);
    }

    // Two custom fields the team keeps: a segment everyone sees, and a discount for management.
    for definition in [
        json!({"key": "segment", "label": "Segment", "section": "Account", "field_type": "single_select",
               "options": ["Strategic", "Growth", "Maintain"], "default": "Growth"}),
        json!({"key": "discount", "label": "Discount", "section": "Commercial", "field_type": "percent",
               "visible_to": ["admin", "manager"], "editable_by": ["admin", "manager"]}),
    ] {
        let define: crate::domain::fields::DefineField = serde_json::from_value(definition)?;
        appended += skip_existing(
            handlers
                .fields
                .execute(
                    events::fields::FIELDS_STREAM_ID,
                    crate::domain::fields::FieldsCommand::Define(define),
                    &metadata,
                    None,
                )
                .await,
        )?;
    }
    let definitions =
        std::sync::Arc::new(events::service::read_models::custom_field_definitions(&handlers.pool, None).await?);

    let mut created = 0;
    for n in 0..60_u32 {
        let tier = match n % 5 {
            0 => Tier::Enterprise,
            1 | 2 => Tier::MidMarket,
            _ => Tier::Smb,
        };
        let customer_id = seeded_id(2, u128::from(n));
        let id = customer_id.to_string();
        // The first CSM carries a heavier book, which the workload views should show.
        let csm_id = csm_ids[if n % 7 == 0 { 0 } else { (n % 4) as usize }];
        let base_arr: i64 = match tier {
            Tier::Enterprise => 180_000 + rng.i64(0..220_000),
            Tier::MidMarket => 45_000 + rng.i64(0..60_000),
            Tier::Smb => 6_000 + rng.i64(0..18_000),
        };
        let onboarded_on = year_ago - Days::new(rng.u64(0..400));
        let contract_start = onboarded_on;
        let renewal_date = contract_start + Days::new(365 * (1 + u64::from(n % 3)));
        let renewal_date = if renewal_date < today {
            renewal_date + Days::new(365 * 3)
        } else {
            renewal_date
        };
        let onboard = OnboardCustomer {
            customer_id: Some(customer_id),
            name: format!("{} {}", NAMES[(n % 20) as usize], SUFFIXES[(n / 20) as usize]),
            salesforce_id: format!("0015g0000{:09}", 100_000 + n).chars().take(18).collect(),
            tier,
            arr: Decimal::new(base_arr * 100, 2),
            industry: INDUSTRIES[(n % 5) as usize].into(),
            account_manager: "Jordan Lee".into(),
            csm_id,
            products_owned: vec!["Platform".into(), "Analytics".into()]
                .into_iter()
                .take(1 + (n % 2) as usize)
                .collect(),
            contract_start,
            renewal_date,
            occurred_at: Some(noon(onboarded_on)),
        };
        match handlers
            .customers
            .execute(&id, CustomerCommand::Onboard(onboard), &metadata, None)
            .await
        {
            Ok(result) => appended += result.event_ids.len(),
            Err(ExecuteError::Rejected(CommandError::Conflict { .. })) => continue,
            Err(error) => return Err(error.into()),
        }
        created += 1;
        let segment = ["Strategic", "Growth", "Maintain"][(n % 3) as usize];
        let mut values = std::collections::BTreeMap::from([("segment".to_owned(), json!(segment))]);
        if tier == Tier::Enterprise {
            values.insert("discount".into(), json!(5 + n % 4 * 5));
        }
        let set = SetCustomFields {
            values,
            definitions: definitions.clone(),
            role: None,
        };
        appended += handlers
            .customers
            .execute(&id, CustomerCommand::SetCustomFields(set), &metadata, None)
            .await?
            .event_ids
            .len();

        let mut stakeholders: Vec<Uuid> = Vec::new();
        for (k, (role, level)) in ROLES.iter().take(2 + (n % 4) as usize).enumerate() {
            let stakeholder_id = seeded_id(3, u128::from(n) * 16 + k as u128);
            let add = AddStakeholder {
                stakeholder_id: Some(stakeholder_id),
                name: format!("Contact {} of {}", k + 1, n + 1),
                role: (*role).into(),
                level: *level,
                email: None,
                occurred_at: Some(noon(onboarded_on)),
            };
            appended += handlers
                .customers
                .execute(&id, CustomerCommand::AddStakeholder(add), &metadata, None)
                .await?
                .event_ids
                .len();
            stakeholders.push(stakeholder_id);
        }

        // Touches per month by tier, scaled by how engaged this account is; every sixth account
        // has gone quiet for the last weeks, so the coverage report has real gaps to show.
        let monthly = match tier {
            Tier::Enterprise => 6,
            Tier::MidMarket => 3,
            Tier::Smb => 1,
        };
        let engagement = 0.5 + rng.f64();
        let silent_days = if n % 6 == 5 { 20 + rng.u64(0..40) } else { 0 };
        let start = onboarded_on.max(year_ago);
        let mut day = start;
        while day <= today - Days::new(silent_days) {
            let gap_days = ((30.0 / (f64::from(monthly) * engagement)).max(1.0) * (0.5 + rng.f64())) as u64;
            day = day + Days::new(gap_days.max(1));
            if day > today - Days::new(silent_days) || day > today {
                break;
            }
            let kind = match rng.u32(0..10) {
                0..=4 => ActivityKind::Email,
                5 | 6 => ActivityKind::Meeting,
                7 => ActivityKind::Call,
                8 if tier != Tier::Smb => ActivityKind::Qbr,
                _ => ActivityKind::Note,
            };
            let outbound = rng.bool();
            let participants: Vec<Uuid> = stakeholders
                .iter()
                .copied()
                .filter(|_| rng.u32(0..3) == 0)
                .take(3)
                .collect();
            let participants = if participants.is_empty() {
                vec![stakeholders[0]]
            } else {
                participants
            };
            let occurred_at = noon(day) - Duration::minutes(rng.i64(0..240));
            let log = LogActivity {
                activity_id: None,
                fresh_id: false,
                kind,
                direction: if outbound {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                },
                occurred_at: occurred_at.min(Utc::now()),
                duration_minutes: kind.is_meeting().then(|| 30 + 15 * rng.u32(0..4)),
                participants,
                response_received: (kind == ActivityKind::Email && outbound).then(|| rng.u32(0..10) < 7),
                response_time_hours: (kind == ActivityKind::Email && outbound).then(|| f64::from(rng.u32(1..72))),
                subject: format!("{} with {}", kind.as_str(), NAMES[(n % 20) as usize]),
                logged_by: Some("demo-seed".into()),
            };
            appended += handlers
                .customers
                .execute(&id, CustomerCommand::LogActivity(log), &metadata, None)
                .await?
                .event_ids
                .len();
        }

        // Monthly Gainsight scores drifting around a per-account level.
        let mut score: f64 = 35.0 + rng.f64() * 55.0;
        let mut measured = start;
        while measured <= today {
            score = (score + (rng.f64() - 0.5) * 12.0).clamp(5.0, 98.0);
            let record = RecordHealthScore {
                score: (score * 10.0).round() / 10.0,
                source: HealthSource::Gainsight,
                reason: None,
                risk_factors: if score < 50.0 {
                    vec![events::customer::RiskFactor {
                        name: "declining usage".into(),
                        weight: None,
                    }]
                } else {
                    vec![]
                },
                measured_at: Some(noon(measured).min(Utc::now())),
            };
            appended += handlers
                .customers
                .execute(&id, CustomerCommand::RecordHealthScore(record), &metadata, None)
                .await?
                .event_ids
                .len();
            measured = measured + Days::new(30);
        }

        appended += usage_history(
            handlers,
            &metadata,
            &mut rng,
            n,
            &id,
            &csm_ids,
            &partners,
            &stakeholders,
            today,
            renewal_date,
        )
        .await?;
    }
    Ok((created, appended))
}

/// Tasks, partner work, milestones, issues, escalations, adoption, use cases, NPS, handoffs,
/// renewals and churn for customer `n` (whose renewal date is `renewal_date`).
#[allow(clippy::too_many_arguments)]
async fn usage_history(
    handlers: &Handlers,
    metadata: &CommandMetadata,
    rng: &mut fastrand::Rng,
    n: u32,
    id: &str,
    csm_ids: &[Uuid],
    partners: &[Uuid],
    stakeholders: &[Uuid],
    today: NaiveDate,
    renewal_date: NaiveDate,
) -> anyhow::Result<usize> {
    let mut appended = 0;
    let run = |command: CustomerCommand| {
        let id = id.to_owned();
        async move {
            handlers
                .customers
                .execute(&id, command, metadata, None)
                .await
                .map(|result| result.event_ids.len())
        }
    };

    // Tasks: one done, one overdue, one upcoming (in progress), one depending on the upcoming one.
    let tasks: Vec<Uuid> = (0..4).map(|k| seeded_id(5, u128::from(n) * 16 + k)).collect();
    let due = [
        today - Days::new(20),
        today - Days::new(3 + u64::from(n % 5)),
        today + Days::new(7),
        today + Days::new(30),
    ];
    let kinds = [
        TaskKind::FollowUp,
        TaskKind::QbrPrep,
        TaskKind::Renewal,
        TaskKind::General,
    ];
    for (k, task_id) in tasks.iter().enumerate() {
        appended += run(CustomerCommand::CreateTask(CreateTask {
            task_id: Some(*task_id),
            title: format!("{:?} for account {}", kinds[k], n + 1),
            description: String::new(),
            kind: kinds[k],
            priority: [
                TaskPriority::Medium,
                TaskPriority::High,
                TaskPriority::Urgent,
                TaskPriority::Low,
            ][k],
            assignee_id: csm_ids[(n as usize + k) % csm_ids.len()].to_string(),
            due_date: due[k],
            parent_task_id: None,
            depends_on: if k == 3 { vec![tasks[2]] } else { vec![] },
        }))
        .await?;
    }
    appended += run(CustomerCommand::CompleteTask(CompleteTask {
        task_id: tasks[0],
        outcome: "Followed up by phone".into(),
    }))
    .await?;
    appended += run(CustomerCommand::ChangeTaskStatus(ChangeTaskStatus {
        task_id: tasks[2],
        status: TaskStatus::InProgress,
    }))
    .await?;

    // Every fifth account works with a partner, who reports monthly.
    if n % 5 == 1 {
        let partner_id = partners[(n as usize / 5) % partners.len()];
        appended += run(CustomerCommand::AssignPartner(AssignPartner { partner_id })).await?;
        for month in 0..3_u64 {
            let end = today - Days::new(30 * month + 1);
            let report_id = seeded_id(6, u128::from(n) * 16 + u128::from(month));
            appended += run(CustomerCommand::DraftPartnerReport(DraftPartnerReport {
                report_id: Some(report_id),
                partner_id: Some(partner_id),
                period_start: end - Days::new(29),
                period_end: end,
                overall_status: [OverallStatus::OnTrack, OverallStatus::AtRisk, OverallStatus::OnTrack][month as usize],
                summary: "Implementation progressing".into(),
                accomplishments: "Integrations configured".into(),
                planned_activities: "User training".into(),
                risks_and_issues: String::new(),
                attachments: vec![],
            }))
            .await?;
            if month > 0 {
                appended += run(CustomerCommand::SubmitPartnerReport(SubmitPartnerReport {
                    report_id,
                    acting_partner_id: None,
                }))
                .await?;
            }
        }
    }

    appended += run(CustomerCommand::RecordMilestone(RecordMilestone {
        milestone_id: Some(seeded_id(7, u128::from(n))),
        title: "Go-live".into(),
        description: String::new(),
        achieved_on: today - Days::new(60 + u64::from(n)),
    }))
    .await?;
    let issue_id = seeded_id(8, u128::from(n));
    appended += run(CustomerCommand::LogIssue(LogIssue {
        issue_id: Some(issue_id),
        title: "Data sync delays".into(),
        description: String::new(),
        severity: [Severity::Low, Severity::Medium, Severity::High][n as usize % 3],
    }))
    .await?;
    if n.is_multiple_of(2) {
        appended += run(CustomerCommand::ResolveIssue(Resolve {
            id: issue_id,
            resolution: "Patched".into(),
        }))
        .await?;
    }
    if n % 9 == 4 {
        appended += run(CustomerCommand::RaiseEscalation(RaiseEscalation {
            escalation_id: Some(seeded_id(9, u128::from(n))),
            title: "Executive escalation".into(),
            description: String::new(),
            severity: Severity::Critical,
        }))
        .await?;
    }
    let stages = [
        AdoptionStage::Onboarding,
        AdoptionStage::Implementing,
        AdoptionStage::Adopted,
        AdoptionStage::Optimizing,
    ];
    for stage in stages.iter().take(1 + (n as usize % 4)) {
        appended += run(CustomerCommand::ChangeAdoptionStage(ChangeAdoptionStage {
            stage: *stage,
            notes: String::new(),
        }))
        .await?;
    }
    for (k, use_case) in ["Renewal forecasting", "Health monitoring", "QBR automation"]
        .iter()
        .enumerate()
    {
        let status = [
            UseCaseStatus::Implemented,
            UseCaseStatus::InProgress,
            UseCaseStatus::NotStarted,
        ][(n as usize + k) % 3];
        appended += run(CustomerCommand::ChangeUseCaseStatus(ChangeUseCaseStatus {
            use_case: (*use_case).into(),
            status,
            notes: String::new(),
        }))
        .await?;
    }
    for quarter in 0..4_u64 {
        appended += run(CustomerCommand::RecordNps(RecordNps {
            score: rng.u8(3..=10),
            stakeholder_id: Some(stakeholders[quarter as usize % stakeholders.len()]),
            comment: None,
            occurred_at: Some(noon(today - Days::new(90 * quarter + 5))),
        }))
        .await?;
    }
    // A few recent handoffs, so transitions have something to show.
    if n % 10 == 3 {
        let next = csm_ids[(n as usize + 1) % csm_ids.len()];
        appended += run(CustomerCommand::AssignCsm(AssignCsm {
            csm_id: next,
            reason: "Territory rebalancing".into(),
            occurred_at: Some(noon(today - Days::new(10 + u64::from(n % 15)))),
        }))
        .await?;
    }
    // Every sixth account renews today for another year: with the churn, the outcomes the
    // churn-risk backtest scores (docs/DOMAIN.md section 12).
    if n % 6 == 0 {
        appended += run(CustomerCommand::RecordRenewal(RecordRenewal {
            renewal_date: renewal_date + Days::new(365),
            arr: None,
        }))
        .await?;
    }
    if n == 58 {
        appended += run(CustomerCommand::RecordChurn(RecordChurn {
            reason: "Budget cut".into(),
            churned_on: today - Days::new(15),
        }))
        .await?;
    }
    Ok(appended)
}

/// Counts appended events, treating "already exists" as done.
fn skip_existing(result: Result<crate::store::Appended, ExecuteError>) -> anyhow::Result<usize> {
    match result {
        Ok(appended) => Ok(appended.event_ids.len()),
        Err(ExecuteError::Rejected(CommandError::Conflict { .. })) => Ok(0),
        Err(error) => Err(error.into()),
    }
}
