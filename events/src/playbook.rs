//! Events of the `Playbook` streams (one per playbook template, each save a version) and the
//! `PlaybookRun` streams (one per run of a playbook on a customer): docs/DOMAIN.md section 17.
//! A run keeps the steps of the version it started with; each step is a task of the customer,
//! whose id is fixed by the run and the step, so it is made once.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::customer::{TaskKind, TaskPriority};

/// What starts a run of a playbook by itself (when the playbook's `auto_start` is on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PlaybookTrigger {
    /// Only by hand.
    Manual,
    /// The account's health turns red (the `health_red` alert).
    HealthRed,
    /// The account's churn risk reaches the high band (the `churn_risk_high` alert).
    ChurnRiskHigh,
    /// The renewal date is within `days` days.
    RenewalWithin {
        #[schemars(range(min = 1, max = 730))]
        days: u32,
    },
    /// A customer is onboarded.
    Onboarding,
}

impl PlaybookTrigger {
    pub fn name(&self) -> &'static str {
        match self {
            PlaybookTrigger::Manual => "manual",
            PlaybookTrigger::HealthRed => "health_red",
            PlaybookTrigger::ChurnRiskHigh => "churn_risk_high",
            PlaybookTrigger::RenewalWithin { .. } => "renewal_within",
            PlaybookTrigger::Onboarding => "onboarding",
        }
    }
}

/// Who a step's task is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOwner {
    /// The account's CSM (the user who said they are that CSM; else the CSM's id).
    Csm,
    /// The manager of the CSM's team (a manager whose preferences name that team); else the
    /// person who started the run.
    Manager,
    /// The person who started the run (for a run a rule started: the account's CSM).
    Starter,
}

/// What a step's due offset counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepAnchor {
    /// The day the run starts.
    Start,
    /// The customer's renewal date.
    RenewalDate,
    /// The customer's contract start.
    ContractStart,
    /// The previous step's completion (until then: its due day).
    PreviousStep,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookStep {
    #[schemars(length(min = 1, max = 200), pattern(r"^[^\u0000]*[^\s\u0000][^\u0000]*$"))]
    pub title: String,
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub description: String,
    pub owner: StepOwner,
    pub anchor: StepAnchor,
    /// Days after the anchor (negative: before it).
    #[schemars(range(min = -3650, max = 3650))]
    pub offset_days: i32,
    pub kind: TaskKind,
    pub priority: TaskPriority,
    /// A note or e-mail to send, with `{customer}`, `{csm}` and `{renewal_date}` filled in when
    /// the run starts; it becomes part of the task's description.
    #[serde(default)]
    #[schemars(length(max = 5000))]
    pub template: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlaybookSaved {
    pub playbook_id: Uuid,
    pub name: String,
    pub description: String,
    pub trigger: PlaybookTrigger,
    /// Whether the trigger starts runs by itself.
    pub auto_start: bool,
    /// End the run as soon as the account is no longer at risk (its latest health score is 70
    /// or more), cancelling the steps left.
    pub exit_when_not_at_risk: bool,
    pub steps: Vec<PlaybookStep>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlaybookRetired {
    pub playbook_id: Uuid,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlaybookEvent {
    PlaybookSaved(PlaybookSaved),
    PlaybookRetired(PlaybookRetired),
}

impl PlaybookEvent {
    pub const STREAM_TYPE: &'static str = "Playbook";
}

impl DomainEvent for PlaybookEvent {
    fn event_type(&self) -> String {
        match self {
            PlaybookEvent::PlaybookSaved(_) => "PlaybookSaved",
            PlaybookEvent::PlaybookRetired(_) => "PlaybookRetired",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// A step of a run: the playbook's step as it was, and the task it became.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunStep {
    pub title: String,
    pub description: String,
    pub owner: StepOwner,
    pub anchor: StepAnchor,
    pub offset_days: i32,
    pub kind: TaskKind,
    pub priority: TaskPriority,
    pub task_id: Uuid,
    pub assignee_id: String,
    pub due_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlaybookRunStarted {
    pub run_id: Uuid,
    pub playbook_id: Uuid,
    /// The playbook's version the run keeps (0: as shipped, never edited).
    pub playbook_version: i64,
    pub playbook_name: String,
    pub customer_id: Uuid,
    /// What started it: `manual`, or the trigger's name.
    pub trigger: String,
    /// The occasion: `manual:<run>`, the alert's id, `renewal:<date>`, `onboarding`. A rule
    /// starts one run per playbook, customer and occasion.
    pub occasion: String,
    /// Why, in a sentence.
    pub why: String,
    pub started_by: String,
    pub exit_when_not_at_risk: bool,
    pub steps: Vec<RunStep>,
    pub occurred_at: DateTime<Utc>,
}

/// Step `from_step` and every later step still open moved by `days`; `due_dates` are the new
/// due days of the steps that moved, as (step index, day).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlaybookStepsMoved {
    pub from_step: usize,
    pub days: i64,
    pub due_dates: Vec<(usize, NaiveDate)>,
    pub reason: String,
    pub moved_by: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every step closed.
    Completed,
    /// The exit condition held: the account is no longer at risk.
    Exited,
    /// Ended by a person with a reason, or the customer churned.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlaybookRunEnded {
    pub outcome: RunOutcome,
    pub why: String,
    pub ended_by: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlaybookRunEvent {
    PlaybookRunStarted(PlaybookRunStarted),
    PlaybookStepsMoved(PlaybookStepsMoved),
    PlaybookRunEnded(PlaybookRunEnded),
}

impl PlaybookRunEvent {
    pub const STREAM_TYPE: &'static str = "PlaybookRun";
}

impl DomainEvent for PlaybookRunEvent {
    fn event_type(&self) -> String {
        match self {
            PlaybookRunEvent::PlaybookRunStarted(_) => "PlaybookRunStarted",
            PlaybookRunEvent::PlaybookStepsMoved(_) => "PlaybookStepsMoved",
            PlaybookRunEvent::PlaybookRunEnded(_) => "PlaybookRunEnded",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

const NAMESPACE: Uuid = Uuid::from_u128(0x6373_7472_6163_6b5f_706c_6179_626f_6f6b);

/// The run a rule starts for a playbook, customer and occasion: one id, so it starts once.
pub fn rule_run_id(playbook_id: Uuid, customer_id: Uuid, occasion: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{playbook_id}/{customer_id}/{occasion}").as_bytes())
}

/// The task of a run's step.
pub fn step_task_id(run_id: Uuid, step: usize) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{run_id}/step/{step}").as_bytes())
}

/// The customer's dates a step may count from.
#[derive(Debug, Clone, Copy)]
pub struct Anchors {
    pub start: NaiveDate,
    pub renewal_date: NaiveDate,
    pub contract_start: NaiveDate,
}

/// Each step's due day: its anchor plus its offset (a previous-step anchor counts from the
/// previous step's due day; the first step's previous is the start), never before the start.
pub fn due_dates(steps: &[PlaybookStep], anchors: Anchors) -> Vec<NaiveDate> {
    let mut days: Vec<NaiveDate> = Vec::with_capacity(steps.len());
    for step in steps {
        let anchor = match step.anchor {
            StepAnchor::Start => anchors.start,
            StepAnchor::RenewalDate => anchors.renewal_date,
            StepAnchor::ContractStart => anchors.contract_start,
            StepAnchor::PreviousStep => days.last().copied().unwrap_or(anchors.start),
        };
        days.push((anchor + Duration::days(i64::from(step.offset_days))).max(anchors.start));
    }
    days
}

/// Fills `{customer}`, `{csm}` and `{renewal_date}` of a step's note or e-mail template.
pub fn fill(template: &str, customer: &str, csm: &str, renewal_date: NaiveDate) -> String {
    template
        .replace("{customer}", customer)
        .replace("{csm}", csm)
        .replace("{renewal_date}", &renewal_date.to_string())
}

/// A shipped playbook: its fixed id, and what it holds until an admin saves a version of it.
pub struct Shipped {
    pub playbook_id: Uuid,
    pub name: &'static str,
    pub description: &'static str,
    pub trigger: PlaybookTrigger,
    pub exit_when_not_at_risk: bool,
    pub steps: Vec<PlaybookStep>,
}

fn step(
    title: &str,
    owner: StepOwner,
    anchor: StepAnchor,
    offset_days: i32,
    kind: TaskKind,
    priority: TaskPriority,
    template: &str,
) -> PlaybookStep {
    PlaybookStep {
        title: title.to_owned(),
        description: String::new(),
        owner,
        anchor,
        offset_days,
        kind,
        priority,
        template: template.to_owned(),
    }
}

/// The three playbooks cstrack ships (version 0 of their streams; auto-start off).
pub fn shipped() -> Vec<Shipped> {
    use StepAnchor::*;
    use StepOwner::*;
    use TaskKind as K;
    use TaskPriority as P;
    vec![
        Shipped {
            playbook_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0b01),
            name: "At-risk recovery",
            description: "For an account whose health turned red: find out why, agree a recovery plan with the sponsor, and check that it worked. Ends by itself once the account is no longer at risk.",
            trigger: PlaybookTrigger::HealthRed,
            exit_when_not_at_risk: true,
            steps: vec![
                step("Review the health lineage and risk factors", Csm, Start, 0, K::Escalation, P::High, ""),
                step("Call the champion to hear what changed", Csm, PreviousStep, 2, K::FollowUp, P::High,
                    "Hi, I noticed things have been harder at {customer} lately. Could we talk this week about what changed and what would help? {csm}"),
                step("Agree a recovery plan with the executive sponsor", Csm, PreviousStep, 5, K::Escalation, P::High, ""),
                step("Manager review of the recovery plan", Manager, PreviousStep, 3, K::General, P::Medium, ""),
                step("Check health again and record it", Csm, Start, 30, K::FollowUp, P::Medium, ""),
            ],
        },
        Shipped {
            playbook_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0b02),
            name: "Renewal preparation",
            description: "Starts 120 days before the renewal date: review the value delivered, hold a value review, send the proposal, and confirm the signature.",
            trigger: PlaybookTrigger::RenewalWithin { days: 120 },
            exit_when_not_at_risk: false,
            steps: vec![
                step("Review usage and the value delivered", Csm, RenewalDate, -120, K::Renewal, P::Medium, ""),
                step("Hold a value review with the sponsor", Csm, RenewalDate, -90, K::QbrPrep, P::Medium, ""),
                step("Send the renewal proposal", Csm, RenewalDate, -60, K::Renewal, P::High,
                    "Hello, {customer}'s subscription renews on {renewal_date}. Attached is our proposal for the coming term; I'd be glad to walk you through it. {csm}"),
                step("Manager sign-off on the renewal terms", Manager, RenewalDate, -45, K::Renewal, P::High, ""),
                step("Confirm the signature", Csm, RenewalDate, -14, K::Renewal, P::Urgent, ""),
            ],
        },
        Shipped {
            playbook_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0b03),
            name: "Onboarding",
            description: "For a new customer: kick-off, technical set-up, first value, and a 90-day review.",
            trigger: PlaybookTrigger::Onboarding,
            exit_when_not_at_risk: false,
            steps: vec![
                step("Kick-off call", Csm, Start, 3, K::Onboarding, P::High,
                    "Welcome to the team, {customer}! Let's set up a kick-off call this week to agree goals and a timeline. {csm}"),
                step("Technical set-up complete", Csm, PreviousStep, 14, K::Onboarding, P::Medium, ""),
                step("First value milestone reached", Csm, PreviousStep, 30, K::Onboarding, P::Medium, ""),
                step("90-day review", Csm, Start, 90, K::QbrPrep, P::Medium, ""),
            ],
        },
    ]
}

/// The days a move shifts by, and each moved step with its new due day.
pub type Moved = (i64, Vec<(usize, NaiveDate)>);

/// Moving step `from_step` (due `current[from_step].0`, open when `.1`) to `due_date`: the days it
/// moves, and each open step from it on with its new due day. Refused when the step is closed
/// (`step_closed`), does not exist (`out_of_range`) or is due that day already (`unchanged`).
pub fn moved(current: &[(NaiveDate, bool)], from_step: usize, due_date: NaiveDate) -> Result<Moved, &'static str> {
    let Some(&(due, open)) = current.get(from_step) else {
        return Err("out_of_range");
    };
    if !open {
        return Err("step_closed");
    }
    let days = (due_date - due).num_days();
    if days == 0 {
        return Err("unchanged");
    }
    let moved = current
        .iter()
        .enumerate()
        .skip(from_step)
        .filter(|(_, (_, open))| *open)
        .map(|(index, (day, _))| (index, *day + Duration::days(days)))
        .collect();
    Ok((days, moved))
}

/// A playbook as it stands: its latest save (or as shipped), its version, and since when its
/// trigger starts runs by itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaybookState {
    pub playbook_id: Uuid,
    /// The stream's sequence of the latest save; 0 as shipped.
    pub version: i64,
    pub name: String,
    pub description: String,
    pub trigger: PlaybookTrigger,
    pub auto_start: bool,
    /// The save that turned `auto_start` on, of the saves since it was last off.
    pub auto_start_since: Option<DateTime<Utc>>,
    pub exit_when_not_at_risk: bool,
    pub steps: Vec<PlaybookStep>,
    pub saved_at: Option<DateTime<Utc>>,
    pub shipped: bool,
    pub retired: bool,
}

/// Every playbook, the shipped ones included, from the events of the `Playbook` streams in
/// stream and sequence order: (stream id, sequence, event).
pub fn fold_playbooks(events: impl IntoIterator<Item = (Uuid, i64, PlaybookEvent)>) -> Vec<PlaybookState> {
    let mut by_id: std::collections::BTreeMap<Uuid, PlaybookState> = shipped()
        .into_iter()
        .map(|shipped| {
            (
                shipped.playbook_id,
                PlaybookState {
                    playbook_id: shipped.playbook_id,
                    version: 0,
                    name: shipped.name.to_owned(),
                    description: shipped.description.to_owned(),
                    trigger: shipped.trigger,
                    auto_start: false,
                    auto_start_since: None,
                    exit_when_not_at_risk: shipped.exit_when_not_at_risk,
                    steps: shipped.steps,
                    saved_at: None,
                    shipped: true,
                    retired: false,
                },
            )
        })
        .collect();
    for (id, sequence, event) in events {
        match event {
            PlaybookEvent::PlaybookSaved(saved) => {
                let before = by_id.get(&id);
                let shipped = before.is_some_and(|b| b.shipped);
                let since = match before {
                    Some(b) if b.auto_start && saved.auto_start => b.auto_start_since,
                    _ if saved.auto_start => Some(saved.occurred_at),
                    _ => None,
                };
                by_id.insert(
                    id,
                    PlaybookState {
                        playbook_id: id,
                        version: sequence,
                        name: saved.name,
                        description: saved.description,
                        trigger: saved.trigger,
                        auto_start: saved.auto_start,
                        auto_start_since: since,
                        exit_when_not_at_risk: saved.exit_when_not_at_risk,
                        steps: saved.steps,
                        saved_at: Some(saved.occurred_at),
                        shipped,
                        retired: false,
                    },
                );
            }
            PlaybookEvent::PlaybookRetired(_) => {
                if let Some(state) = by_id.get_mut(&id) {
                    state.retired = true;
                    state.auto_start = false;
                    state.auto_start_since = None;
                }
            }
        }
    }
    by_id.into_values().collect()
}

/// A run as its events leave it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    pub started: PlaybookRunStarted,
    /// Each step's due day after the moves (the task's own due day may have moved since).
    pub due_dates: Vec<NaiveDate>,
    pub moves: Vec<PlaybookStepsMoved>,
    pub ended: Option<PlaybookRunEnded>,
}

/// The run of one `PlaybookRun` stream's events, in sequence order.
pub fn fold_run(events: impl IntoIterator<Item = PlaybookRunEvent>) -> Option<RunState> {
    let mut run: Option<RunState> = None;
    for event in events {
        match (event, run.as_mut()) {
            (PlaybookRunEvent::PlaybookRunStarted(started), None) => {
                run = Some(RunState {
                    due_dates: started.steps.iter().map(|s| s.due_date).collect(),
                    started,
                    moves: Vec::new(),
                    ended: None,
                })
            }
            (PlaybookRunEvent::PlaybookStepsMoved(moved), Some(state)) => {
                for (index, day) in &moved.due_dates {
                    if let Some(due) = state.due_dates.get_mut(*index) {
                        *due = *day;
                    }
                }
                state.moves.push(moved);
            }
            (PlaybookRunEvent::PlaybookRunEnded(ended), Some(state)) => state.ended = Some(ended),
            _ => {}
        }
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn due_days_count_from_their_anchor_and_never_before_the_start() {
        let anchors = Anchors {
            start: day("2026-12-07"),
            renewal_date: day("2027-03-01"),
            contract_start: day("2024-03-01"),
        };
        let recovery = &shipped()[0];
        assert_eq!(
            due_dates(&recovery.steps, anchors),
            vec![
                day("2026-12-07"),
                day("2026-12-09"),
                day("2026-12-14"),
                day("2026-12-17"),
                day("2027-01-06")
            ]
        );
        // 84 days to the renewal: the steps 120 and 90 days before it are due at the start.
        let renewal = &shipped()[1];
        assert_eq!(
            due_dates(&renewal.steps, anchors),
            vec![
                day("2026-12-07"),
                day("2026-12-07"),
                day("2026-12-31"),
                day("2027-01-15"),
                day("2027-02-15")
            ]
        );
    }

    #[test]
    fn a_rule_starts_one_run_per_occasion() {
        let (p, c) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(
            rule_run_id(p, c, "renewal:2027-03-01"),
            rule_run_id(p, c, "renewal:2027-03-01")
        );
        assert_ne!(
            rule_run_id(p, c, "renewal:2027-03-01"),
            rule_run_id(p, c, "renewal:2028-03-01")
        );
        assert_ne!(step_task_id(p, 0), step_task_id(p, 1));
        assert_eq!(
            fill(
                "{customer} renews {renewal_date} ({csm})",
                "Acme",
                "Dana",
                day("2027-03-01")
            ),
            "Acme renews 2027-03-01 (Dana)"
        );
    }
}
