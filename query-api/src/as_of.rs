//! A customer as the system knew it at an instant: the stream's events recorded by then, upcast
//! and folded here, independent of the read models (which only know the present). The facts
//! the formulas need (coverage inputs, engagement activities, health points) come out of the
//! fold and are scored by the same functions the live reports use.

use std::collections::{BTreeMap, BTreeSet};

use async_graphql::SimpleObject;
use chrono::{DateTime, NaiveDate, Utc};
use events::coverage::{window_start, CoverageInputs, MEETING_WINDOW_DAYS, TOUCH_WINDOW_DAYS};
use events::customer::{ActivityLogged, CustomerEvent, StakeholderLevel, Tier};
use events::engagement::Activity;
use events::metadata::CommandMetadata;
use events::service::read_models::{AccountFacts, EngagementFacts};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::health::{Lineage, Point};

#[derive(Debug, Clone)]
pub struct KnownStakeholder {
    pub name: String,
    pub role: String,
    pub level: StakeholderLevel,
    pub removed: bool,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct KnownTask {
    pub task_id: Uuid,
    pub title: String,
    pub kind: String,
    pub priority: String,
    pub assignee_id: String,
    pub due_date: NaiveDate,
    /// pending, in_progress, completed or cancelled.
    pub status: String,
}

/// The fold of a customer's stream up to an instant.
#[derive(Debug, Clone)]
pub struct KnownCustomer {
    pub customer_id: Uuid,
    pub known_at: DateTime<Utc>,
    pub events: i64,
    pub last_sequence: i64,
    pub name: String,
    pub salesforce_id: String,
    pub tier: Tier,
    pub arr: Decimal,
    pub industry: String,
    pub account_manager: String,
    pub csm_id: Uuid,
    pub products_owned: Vec<String>,
    pub contract_start: NaiveDate,
    pub renewal_date: NaiveDate,
    pub onboarded_at: DateTime<Utc>,
    pub adoption_stage: Option<String>,
    pub churned_on: Option<NaiveDate>,
    pub partners: BTreeSet<Uuid>,
    pub stakeholders: BTreeMap<Uuid, KnownStakeholder>,
    /// Non-retracted activities, corrections applied.
    pub activities: BTreeMap<Uuid, ActivityLogged>,
    /// In measurement order.
    pub health: Vec<Point>,
    pub tasks: BTreeMap<Uuid, KnownTask>,
    /// Custom-field values (docs/DOMAIN.md section 9); cleared fields are absent.
    pub custom_fields: BTreeMap<String, serde_json::Value>,
    /// Tags, in the order they were put on (docs/DOMAIN.md section 16).
    pub tags: Vec<String>,
    /// Event id of the health score recorded at each stream sequence, for retractions.
    health_events: BTreeMap<i64, Uuid>,
    /// The event that logged each activity.
    pub activity_events: BTreeMap<Uuid, Uuid>,
    /// NPS answers in the order recorded.
    pub nps: Vec<KnownFact<u8>>,
    /// Issues and escalations logged and not resolved.
    pub open_issues: BTreeMap<Uuid, KnownFact<(String, events::customer::Severity)>>,
    pub open_escalations: BTreeMap<Uuid, KnownFact<(String, events::customer::Severity)>>,
    /// The event that set the adoption stage.
    pub adoption_event: Option<KnownFact<()>>,
    pub use_cases: BTreeMap<String, events::customer::UseCaseStatus>,
    /// The event that last set each custom field.
    pub custom_field_events: BTreeMap<String, Uuid>,
}

/// A fact with the event that recorded it and when it happened.
#[derive(Debug, Clone)]
pub struct KnownFact<T> {
    pub value: T,
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow, Clone)]
pub struct Row {
    aggregate_id: String,
    sequence: i64,
    event_id: Uuid,
    event_type: String,
    event_version: String,
    payload: serde_json::Value,
    metadata: serde_json::Value,
    recorded_at: DateTime<Utc>,
}

fn snake<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Row {
    /// The stream's id (the customer's).
    pub fn stream(&self) -> &str {
        &self.aggregate_id
    }
}

/// Folds the customer's events recorded at or before `known_at`; `None` when the customer had
/// not been onboarded by then.
pub async fn load(
    pool: &PgPool,
    customer_id: Uuid,
    known_at: DateTime<Utc>,
) -> Result<Option<KnownCustomer>, sqlx::Error> {
    let rows = rows(pool, Some(&[customer_id]), known_at).await?;
    Ok(fold(customer_id, &rows, known_at, None))
}

/// The events of the customers' streams (all customers' when `None`) recorded at or before
/// `known_at`, by stream and sequence.
pub async fn rows(pool: &PgPool, customers: Option<&[Uuid]>, known_at: DateTime<Utc>) -> Result<Vec<Row>, sqlx::Error> {
    let ids: Option<Vec<String>> = customers.map(|ids| ids.iter().map(Uuid::to_string).collect());
    sqlx::query_as(
        "SELECT aggregate_id, sequence, event_id, event_type, event_version, payload, metadata, recorded_at
           FROM events
          WHERE aggregate_type = 'Customer' AND ($1::text[] IS NULL OR aggregate_id = ANY ($1)) AND recorded_at <= $2
          ORDER BY aggregate_id, sequence",
    )
    .bind(ids)
    .bind(known_at)
    .fetch_all(pool)
    .await
}

/// Every customer's fold from `rows` (as [`rows`] reads them), by stream.
pub fn fold_all(rows: &[Row], known_at: DateTime<Utc>, occurred_by: Option<DateTime<Utc>>) -> Vec<KnownCustomer> {
    rows.chunk_by(|a, b| a.aggregate_id == b.aggregate_id)
        .filter_map(|stream| {
            let customer_id = Uuid::parse_str(&stream[0].aggregate_id).ok()?;
            fold(customer_id, stream, known_at, occurred_by)
        })
        .collect()
}

/// Corrections and retractions fix the record rather than the world: a fold up to a day
/// applies them whenever they were made.
fn fixes_the_record(event: &CustomerEvent) -> bool {
    matches!(
        event,
        CustomerEvent::ActivityCorrected(_)
            | CustomerEvent::ActivityRetracted(_)
            | CustomerEvent::HealthScoreRetracted(_)
            | CustomerEvent::CustomerRetracted(_)
    )
}

/// Folds one customer's `rows`; with `occurred_by`, only the events that happened by then in
/// the world (and every correction or retraction): the customer as it stood that day, as far
/// as was known at `known_at`.
pub fn fold(
    customer_id: Uuid,
    rows: &[Row],
    known_at: DateTime<Utc>,
    occurred_by: Option<DateTime<Utc>>,
) -> Option<KnownCustomer> {
    let mut known: Option<KnownCustomer> = None;
    for row in rows {
        let payload = events::upcast::to_current(&row.event_type, &row.event_version, row.payload.clone());
        let Ok(event) = serde_json::from_value::<CustomerEvent>(payload) else {
            tracing::warn!(%customer_id, sequence = row.sequence, "an event the fold cannot read was skipped");
            continue;
        };
        if occurred_by.is_some_and(|by| event.occurred_at() > by) && !fixes_the_record(&event) {
            continue;
        }
        if let CustomerEvent::CustomerOnboarded(o) = &event {
            known = Some(KnownCustomer {
                customer_id,
                known_at,
                events: 0,
                last_sequence: 0,
                name: o.name.clone(),
                salesforce_id: o.salesforce_id.clone(),
                tier: o.tier,
                arr: o.arr,
                industry: o.industry.clone(),
                account_manager: o.account_manager.clone(),
                csm_id: o.csm_id,
                products_owned: o.products_owned.clone(),
                contract_start: o.contract_start,
                renewal_date: o.renewal_date,
                onboarded_at: o.occurred_at,
                adoption_stage: None,
                churned_on: None,
                partners: BTreeSet::new(),
                stakeholders: BTreeMap::new(),
                activities: BTreeMap::new(),
                health: Vec::new(),
                tasks: BTreeMap::new(),
                custom_fields: BTreeMap::new(),
                tags: Vec::new(),
                health_events: BTreeMap::new(),
                activity_events: BTreeMap::new(),
                nps: Vec::new(),
                open_issues: BTreeMap::new(),
                open_escalations: BTreeMap::new(),
                adoption_event: None,
                use_cases: BTreeMap::new(),
                custom_field_events: BTreeMap::new(),
            });
        }
        if let CustomerEvent::CustomerRetracted(_) = &event {
            known = None;
            continue;
        }
        let Some(customer) = known.as_mut() else { continue };
        customer.events += 1;
        customer.last_sequence = row.sequence;
        let map: std::collections::HashMap<String, String> =
            serde_json::from_value(row.metadata.clone()).unwrap_or_default();
        let actor = CommandMetadata::from_map(&map).actor;
        if let CustomerEvent::HealthScoreRecorded(_) = &event {
            customer.health_events.insert(row.sequence, row.event_id);
        }
        apply(customer, event, row.event_id, actor, row.recorded_at);
    }
    known
}

/// A field an event names replaces the known value; a field it leaves out keeps it.
fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

fn set_some<T>(target: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *target = value;
    }
}

fn apply(
    customer: &mut KnownCustomer,
    event: CustomerEvent,
    event_id: Uuid,
    actor: events::metadata::Actor,
    recorded_at: DateTime<Utc>,
) {
    use CustomerEvent as E;
    match event {
        E::CustomerOnboarded(_) => {}
        E::CustomerProfileUpdated(u) => {
            set(&mut customer.name, u.name);
            set(&mut customer.salesforce_id, u.salesforce_id);
            set(&mut customer.tier, u.tier);
            set(&mut customer.arr, u.arr);
            set(&mut customer.industry, u.industry);
            set(&mut customer.account_manager, u.account_manager);
            set(&mut customer.products_owned, u.products_owned);
            set(&mut customer.contract_start, u.contract_start);
            set(&mut customer.renewal_date, u.renewal_date);
        }
        E::CsmAssigned(a) => customer.csm_id = a.csm_id,
        E::PartnerAssigned(p) => {
            customer.partners.insert(p.partner_id);
        }
        E::PartnerUnassigned(p) => {
            customer.partners.remove(&p.partner_id);
        }
        E::StakeholderAdded(s) => {
            customer.stakeholders.insert(
                s.stakeholder_id,
                KnownStakeholder {
                    name: s.name,
                    role: s.role,
                    level: s.level,
                    removed: false,
                },
            );
        }
        E::StakeholderUpdated(s) => {
            if let Some(known) = customer.stakeholders.get_mut(&s.stakeholder_id) {
                set(&mut known.name, s.name);
                set(&mut known.role, s.role);
                set(&mut known.level, s.level);
            }
        }
        E::StakeholderRemoved(s) => {
            if let Some(known) = customer.stakeholders.get_mut(&s.stakeholder_id) {
                known.removed = true;
            }
        }
        E::ActivityLogged(a) => {
            customer.activity_events.insert(a.activity_id, event_id);
            customer.activities.insert(a.activity_id, a);
        }
        E::ActivityCorrected(c) => {
            if let Some(a) = customer.activities.get_mut(&c.activity_id) {
                set(&mut a.kind, c.kind);
                set(&mut a.direction, c.direction);
                set(&mut a.occurred_at, c.activity_occurred_at);
                set_some(&mut a.duration_minutes, c.duration_minutes);
                set(&mut a.participants, c.participants);
                set_some(&mut a.response_received, c.response_received);
                set_some(&mut a.response_time_hours, c.response_time_hours);
                set(&mut a.subject, c.subject);
            }
        }
        E::ActivityRetracted(r) => {
            customer.activities.remove(&r.activity_id);
        }
        E::HealthScoreRecorded(h) => {
            customer.health.push(Point {
                measured_on: h.measured_at.date_naive(),
                score: h.score,
                lineage: Lineage {
                    event_id,
                    source: snake(&h.source),
                    actor_id: actor.id,
                    actor_role: actor.role,
                    reason: h.reason,
                    risk_factors: serde_json::to_value(&h.risk_factors).unwrap_or_default(),
                    measured_at: h.measured_at,
                    recorded_at,
                },
            });
            customer.health.sort_by_key(|point| point.lineage.measured_at);
        }
        E::TaskCreated(t) => {
            customer.tasks.insert(
                t.task_id,
                KnownTask {
                    task_id: t.task_id,
                    title: t.title,
                    kind: snake(&t.kind),
                    priority: snake(&t.priority),
                    assignee_id: t.assignee_id,
                    due_date: t.due_date,
                    status: "pending".into(),
                },
            );
        }
        E::TaskUpdated(u) => {
            if let Some(task) = customer.tasks.get_mut(&u.task_id) {
                set(&mut task.title, u.title);
                if let Some(kind) = u.kind {
                    task.kind = snake(&kind);
                }
                if let Some(priority) = u.priority {
                    task.priority = snake(&priority);
                }
                set(&mut task.due_date, u.due_date);
            }
        }
        E::TaskReassigned(r) => {
            if let Some(task) = customer.tasks.get_mut(&r.task_id) {
                task.assignee_id = r.assignee_id;
            }
        }
        E::TaskStatusChanged(s) => {
            if let Some(task) = customer.tasks.get_mut(&s.task_id) {
                task.status = snake(&s.status);
            }
        }
        E::TaskCompleted(c) => {
            if let Some(task) = customer.tasks.get_mut(&c.task_id) {
                task.status = "completed".into();
            }
        }
        E::TaskCancelled(c) => {
            if let Some(task) = customer.tasks.get_mut(&c.task_id) {
                task.status = "cancelled".into();
            }
        }
        E::AdoptionStageChanged(a) => {
            customer.adoption_stage = Some(snake(&a.stage));
            customer.adoption_event = Some(KnownFact {
                value: (),
                event_id,
                occurred_at: a.occurred_at,
            });
        }
        E::UseCaseStatusChanged(u) => {
            customer.use_cases.insert(u.use_case, u.status);
        }
        E::NpsRecorded(n) => customer.nps.push(KnownFact {
            value: n.score,
            event_id,
            occurred_at: n.occurred_at,
        }),
        E::IssueLogged(i) => {
            customer.open_issues.insert(
                i.issue_id,
                KnownFact {
                    value: (i.title, i.severity),
                    event_id,
                    occurred_at: i.occurred_at,
                },
            );
        }
        E::IssueResolved(r) => {
            customer.open_issues.remove(&r.issue_id);
        }
        E::EscalationRaised(e) => {
            customer.open_escalations.insert(
                e.escalation_id,
                KnownFact {
                    value: (e.title, e.severity),
                    event_id,
                    occurred_at: e.occurred_at,
                },
            );
        }
        E::EscalationResolved(r) => {
            customer.open_escalations.remove(&r.escalation_id);
        }
        E::CustomerRenewed(r) => {
            customer.renewal_date = r.renewal_date;
            set(&mut customer.arr, r.arr);
            customer.churned_on = None;
        }
        E::CustomerChurned(c) => customer.churned_on = Some(c.churned_on),
        E::CustomFieldsSet(set) => {
            for (key, value) in set.values {
                customer.custom_field_events.insert(key.clone(), event_id);
                if value.is_null() {
                    customer.custom_fields.remove(&key);
                } else {
                    customer.custom_fields.insert(key, value);
                }
            }
        }
        E::HealthScoreRetracted(r) => {
            if let Some(event_id) = customer.health_events.get(&r.sequence).copied() {
                customer.health.retain(|point| point.lineage.event_id != event_id);
            }
        }
        E::CustomerRetracted(_) => {}
        E::CustomerTagged(t) => {
            customer.tags.retain(|tag| tag != &t.tag);
            customer.tags.push(t.tag);
        }
        E::CustomerUntagged(t) => customer.tags.retain(|tag| tag != &t.tag),
        E::PartnerReportDrafted(_)
        | E::PartnerReportUpdated(_)
        | E::PartnerReportSubmitted(_)
        | E::MilestoneRecorded(_) => {}
    }
}

impl KnownCustomer {
    fn executive(&self, participants: &[Uuid]) -> bool {
        participants.iter().any(|id| {
            self.stakeholders
                .get(id)
                .is_some_and(|s| s.level == StakeholderLevel::Executive)
        })
    }

    /// The activities as engagement scores them.
    pub fn engagement_facts(&self) -> EngagementFacts {
        EngagementFacts {
            customer_id: self.customer_id,
            name: self.name.clone(),
            tier: self.tier,
            csm_id: self.csm_id,
            arr: self.arr,
            activities: self
                .activities
                .values()
                .map(|a| Activity {
                    kind: a.kind,
                    direction: a.direction,
                    day: a.occurred_at.date_naive(),
                    duration_minutes: a.duration_minutes,
                    participants: a.participants.clone(),
                    response_received: a.response_received,
                    response_time_hours: a.response_time_hours,
                    executive_present: self.executive(&a.participants),
                })
                .collect(),
        }
    }

    /// The coverage facts as of `as_of`, as the coverage read model would have held them.
    pub fn account_facts(&self, as_of: NaiveDate, csm_name: Option<String>) -> AccountFacts {
        let contacts: Vec<&ActivityLogged> = self
            .activities
            .values()
            .filter(|a| a.kind.is_contact() && a.occurred_at.date_naive() <= as_of)
            .collect();
        let (touch_from, meeting_from) = (
            window_start(as_of, TOUCH_WINDOW_DAYS),
            window_start(as_of, MEETING_WINDOW_DAYS),
        );
        let in_window: Vec<&&ActivityLogged> = contacts
            .iter()
            .filter(|a| a.occurred_at.date_naive() >= meeting_from)
            .collect();
        let mut people: Vec<Uuid> = in_window.iter().flat_map(|a| a.participants.iter().copied()).collect();
        people.sort_unstable();
        people.dedup();
        AccountFacts {
            customer_id: self.customer_id,
            name: self.name.clone(),
            tier: self.tier,
            arr: self.arr,
            csm_id: self.csm_id,
            csm_name,
            inputs: CoverageInputs {
                as_of,
                onboarded_on: self.onboarded_at.date_naive(),
                last_contact_date: contacts.iter().map(|a| a.occurred_at.date_naive()).max(),
                touches_30d: in_window
                    .iter()
                    .filter(|a| a.occurred_at.date_naive() >= touch_from)
                    .count() as u32,
                meetings_90d: in_window.iter().filter(|a| a.kind.is_meeting()).count() as u32,
                stakeholders_engaged: people.len() as u32,
                health_score: crate::health::as_of(&self.health, as_of).map(|point| point.score),
            },
        }
    }
}

#[derive(SimpleObject, Debug, Clone)]
pub struct KnownStakeholderView {
    pub stakeholder_id: Uuid,
    pub name: String,
    pub role: String,
    pub level: String,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct KnownHealth {
    pub score: f64,
    pub measured_at: DateTime<Utc>,
    pub source: String,
    pub event_id: Uuid,
}

/// A customer as the system knew it at `knownAt`.
#[derive(SimpleObject, Debug, Clone)]
pub struct CustomerAsOf {
    pub customer_id: Uuid,
    pub known_at: DateTime<Utc>,
    /// Events of the stream recorded by then, and the last one's sequence.
    pub events: i64,
    pub last_sequence: i64,
    pub name: String,
    pub salesforce_id: String,
    pub tier: crate::scalars::Tier,
    pub arr: Decimal,
    pub industry: String,
    pub account_manager: String,
    pub csm_id: Uuid,
    pub products_owned: Vec<String>,
    pub contract_start: crate::scalars::Date,
    pub renewal_date: crate::scalars::Date,
    pub onboarded_at: DateTime<Utc>,
    pub adoption_stage: Option<String>,
    pub churned_on: Option<crate::scalars::Date>,
    pub partner_ids: Vec<Uuid>,
    pub stakeholders: Vec<KnownStakeholderView>,
    /// The latest score measured by then.
    pub health: Option<KnownHealth>,
    /// Tasks pending or in progress.
    pub open_tasks: Vec<KnownTask>,
    /// Coverage on the day of `knownAt`, from what was known.
    pub coverage: crate::coverage::AccountCoverage,
    /// The custom fields the caller may see, under the definitions known at `knownAt`.
    pub custom_fields: Vec<crate::custom_fields::CustomFieldValue>,
}

impl KnownCustomer {
    pub fn view(&self, csm_name: Option<String>, rules: &events::rules::Rules) -> CustomerAsOf {
        let day = self.known_at.date_naive();
        CustomerAsOf {
            customer_id: self.customer_id,
            known_at: self.known_at,
            events: self.events,
            last_sequence: self.last_sequence,
            name: self.name.clone(),
            salesforce_id: self.salesforce_id.clone(),
            tier: self.tier.into(),
            arr: crate::coverage::money(self.arr),
            industry: self.industry.clone(),
            account_manager: self.account_manager.clone(),
            csm_id: self.csm_id,
            products_owned: self.products_owned.clone(),
            contract_start: crate::scalars::Date(self.contract_start),
            renewal_date: crate::scalars::Date(self.renewal_date),
            onboarded_at: self.onboarded_at,
            adoption_stage: self.adoption_stage.clone(),
            churned_on: self.churned_on.map(crate::scalars::Date),
            partner_ids: self.partners.iter().copied().collect(),
            stakeholders: self
                .stakeholders
                .iter()
                .filter(|(_, s)| !s.removed)
                .map(|(id, s)| KnownStakeholderView {
                    stakeholder_id: *id,
                    name: s.name.clone(),
                    role: s.role.clone(),
                    level: snake(&s.level),
                })
                .collect(),
            health: self.health.last().map(|point| KnownHealth {
                score: point.score,
                measured_at: point.lineage.measured_at,
                source: point.lineage.source.clone(),
                event_id: point.lineage.event_id,
            }),
            open_tasks: self
                .tasks
                .values()
                .filter(|task| task.status == "pending" || task.status == "in_progress")
                .cloned()
                .collect(),
            coverage: crate::coverage::account_coverage(&self.account_facts(day, csm_name), rules),
            custom_fields: Vec::new(),
        }
    }
}
