//! Given/when/then tests of the rest of the customer's commands and of the permission rules.

use events::metadata::Role;

use super::*;
use crate::auth::Principal;
use crate::domain::authorize;

fn task(w: &World, id: Uuid, depends_on: Vec<Uuid>) -> CreateTask {
    let _ = w;
    CreateTask {
        task_id: Some(id),
        title: "Prepare the QBR deck".into(),
        description: String::new(),
        kind: TaskKind::QbrPrep,
        priority: TaskPriority::High,
        assignee_id: "csm-1".into(),
        due_date: "2026-07-15".parse().unwrap(),
        parent_task_id: None,
        depends_on,
    }
}

fn task_created(id: Uuid, depends_on: Vec<Uuid>) -> CustomerEvent {
    CustomerEvent::TaskCreated(TaskCreated {
        task_id: id,
        title: "Prepare the QBR deck".into(),
        description: String::new(),
        kind: TaskKind::QbrPrep,
        priority: TaskPriority::High,
        assignee_id: "csm-1".into(),
        due_date: "2026-07-15".parse().unwrap(),
        parent_task_id: None,
        depends_on,
        occurred_at: at(fixed::NOW),
    })
}

fn completed(id: Uuid) -> CustomerEvent {
    CustomerEvent::TaskCompleted(TaskCompleted {
        task_id: id,
        outcome: "done".into(),
        occurred_at: at(fixed::NOW),
    })
}

async fn expect_error(w: &World, given: Vec<CustomerEvent>, command: CustomerCommand, expected: CommandError) {
    w.test()
        .given(given)
        .when_async(command)
        .await
        .then_expect_error(expected);
}

async fn expect_one_event(w: &World, given: Vec<CustomerEvent>, command: CustomerCommand) -> CustomerEvent {
    let mut events = w
        .test()
        .given(given)
        .when_async(command)
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 1);
    events.remove(0)
}

#[tokio::test]
async fn updates_the_profile_and_refuses_empty_or_inconsistent_updates() {
    let w = World::new();
    let event = expect_one_event(
        &w,
        vec![w.onboarded()],
        CustomerCommand::UpdateProfile(UpdateProfile {
            tier: Some(Tier::MidMarket),
            ..Default::default()
        }),
    )
    .await;
    assert!(matches!(event, CustomerEvent::CustomerProfileUpdated(ref e) if e.tier == Some(Tier::MidMarket)));
    expect_error(
        &w,
        vec![w.onboarded()],
        CustomerCommand::UpdateProfile(UpdateProfile::default()),
        invalid("no_change", "body", "the command changes no field"),
    )
    .await;
    expect_error(
        &w,
        vec![w.onboarded()],
        CustomerCommand::UpdateProfile(UpdateProfile {
            renewal_date: Some("2024-01-01".parse().unwrap()),
            ..Default::default()
        }),
        invalid(
            "renewal_before_contract_start",
            "renewal_date",
            "renewal_date must not be before contract_start",
        ),
    )
    .await;
    expect_error(
        &w,
        vec![w.onboarded()],
        CustomerCommand::UpdateProfile(UpdateProfile {
            arr: Some(Decimal::new(-5, 0)),
            ..Default::default()
        }),
        invalid("negative_arr", "arr", "arr must not be negative"),
    )
    .await;
}

#[tokio::test]
async fn assigns_and_unassigns_known_partners() {
    let w = World::new();
    let partner = Uuid::now_v7();
    let services = || {
        fixed::with(fixed::Known {
            partners: vec![partner],
            ..Default::default()
        })
    };
    TestFramework::<Customer>::with(services())
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::AssignPartner(AssignPartner { partner_id: partner }))
        .await
        .then_expect_events(vec![CustomerEvent::PartnerAssigned(PartnerAssigned {
            partner_id: partner,
            occurred_at: at(fixed::NOW),
        })]);
    let stranger = Uuid::now_v7();
    TestFramework::<Customer>::with(services())
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::AssignPartner(AssignPartner { partner_id: stranger }))
        .await
        .then_expect_error(invalid(
            "unknown_partner",
            "partner_id",
            &format!("no partner organisation is registered with id {stranger}"),
        ));
    let assigned = CustomerEvent::PartnerAssigned(PartnerAssigned {
        partner_id: partner,
        occurred_at: at(fixed::NOW),
    });
    TestFramework::<Customer>::with(services())
        .given(vec![w.onboarded(), assigned.clone()])
        .when_async(CustomerCommand::AssignPartner(AssignPartner { partner_id: partner }))
        .await
        .then_expect_error_message("this partner is already assigned");
    TestFramework::<Customer>::with(services())
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::UnassignPartner(UnassignPartner {
            partner_id: partner,
            reason: "contract ended".into(),
        }))
        .await
        .then_expect_error(CommandError::NotFound {
            entity: "partner assignment",
        });
    TestFramework::<Customer>::with(services())
        .given(vec![w.onboarded(), assigned])
        .when_async(CustomerCommand::UnassignPartner(UnassignPartner {
            partner_id: partner,
            reason: "contract ended".into(),
        }))
        .await
        .then_expect_events(vec![CustomerEvent::PartnerUnassigned(PartnerUnassigned {
            partner_id: partner,
            reason: "contract ended".into(),
            occurred_at: at(fixed::NOW),
        })]);
}

#[tokio::test]
async fn updates_and_removes_known_stakeholders_only() {
    let w = World::new();
    let update = UpdateStakeholder {
        stakeholder_id: w.stakeholder,
        name: None,
        role: Some("COO".into()),
        level: None,
        email: None,
    };
    expect_one_event(
        &w,
        vec![w.onboarded(), w.stakeholder_added()],
        CustomerCommand::UpdateStakeholder(update.clone()),
    )
    .await;
    expect_error(
        &w,
        vec![w.onboarded()],
        CustomerCommand::UpdateStakeholder(update),
        CommandError::NotFound { entity: "stakeholder" },
    )
    .await;
    let remove = RemoveStakeholder {
        stakeholder_id: w.stakeholder,
        reason: "left the company".into(),
    };
    let removed = expect_one_event(
        &w,
        vec![w.onboarded(), w.stakeholder_added()],
        CustomerCommand::RemoveStakeholder(remove),
    )
    .await;
    // A removed stakeholder is no longer a valid participant.
    expect_error(
        &w,
        vec![w.onboarded(), w.stakeholder_added(), removed],
        CustomerCommand::LogActivity(w.log()),
        invalid(
            "unknown_stakeholder",
            "participants",
            &format!("stakeholder {} is not a stakeholder of this customer", w.stakeholder),
        ),
    )
    .await;
}

#[tokio::test]
async fn a_batch_is_all_or_nothing_and_names_the_bad_item() {
    let w = World::new();
    let mut second = w.log();
    second.activity_id = Some(Uuid::now_v7());
    let events = w
        .test()
        .given(vec![w.onboarded(), w.stakeholder_added()])
        .when_async(CustomerCommand::LogActivities(LogActivities {
            activities: vec![w.log(), second.clone()],
        }))
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 2);
    let mut future = second.clone();
    future.occurred_at = at("2026-07-09T00:00:00Z");
    expect_error(
        &w,
        vec![w.onboarded(), w.stakeholder_added()],
        CustomerCommand::LogActivities(LogActivities {
            activities: vec![w.log(), future],
        }),
        invalid(
            "in_future",
            "activities[1].occurred_at",
            "activities[1]: occurred_at is in the future",
        ),
    )
    .await;
    expect_error(
        &w,
        vec![w.onboarded(), w.stakeholder_added()],
        CustomerCommand::LogActivities(LogActivities {
            activities: vec![w.log(), w.log()],
        }),
        invalid(
            "duplicate_activity",
            "activities[1].activity_id",
            "the batch holds this activity id twice",
        ),
    )
    .await;
    expect_error(
        &w,
        vec![w.onboarded()],
        CustomerCommand::LogActivities(LogActivities { activities: vec![] }),
        invalid("batch_size", "activities", "a batch holds 1 to 1000 activities"),
    )
    .await;
}

#[tokio::test]
async fn corrects_a_live_activity_only() {
    let w = World::new();
    let correct = CorrectActivity {
        activity_id: w.activity,
        reason: "it was a call".into(),
        kind: Some(ActivityKind::Call),
        direction: None,
        occurred_at: None,
        duration_minutes: None,
        participants: None,
        response_received: None,
        response_time_hours: None,
        subject: None,
    };
    let events = w
        .test_with_activity(false)
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::CorrectActivity(correct.clone()))
        .await
        .inspect_result()
        .unwrap();
    assert!(matches!(&events[0], CustomerEvent::ActivityCorrected(e) if e.kind == Some(ActivityKind::Call)));
    w.test_with_activity(true)
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::CorrectActivity(correct.clone()))
        .await
        .then_expect_error_message("this activity is already retracted");
    w.test()
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::CorrectActivity(correct.clone()))
        .await
        .then_expect_error(CommandError::NotFound { entity: "activity" });
    w.test_with_activity(false)
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::CorrectActivity(CorrectActivity {
            kind: None,
            ..correct
        }))
        .await
        .then_expect_error(invalid("no_change", "body", "the command changes no field"));
}

#[tokio::test]
async fn tasks_move_through_their_life_and_refuse_what_does_not_fit() {
    let w = World::new();
    let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
    let event = expect_one_event(
        &w,
        vec![w.onboarded()],
        CustomerCommand::CreateTask(task(&w, first, vec![])),
    )
    .await;
    assert_eq!(event, task_created(first, vec![]));
    let base = vec![w.onboarded(), task_created(first, vec![])];

    expect_error(
        &w,
        base.clone(),
        CustomerCommand::CreateTask(task(&w, second, vec![Uuid::from_u128(9)])),
        invalid(
            "unknown_task",
            "depends_on",
            &format!("task {} does not exist", Uuid::from_u128(9)),
        ),
    )
    .await;
    expect_error(
        &w,
        base.clone(),
        CustomerCommand::CreateTask(task(&w, first, vec![])),
        CommandError::conflict("task_exists", "a task with this id already exists"),
    )
    .await;
    let with_dependency = [base.clone(), vec![task_created(second, vec![first])]].concat();
    // first -> second would close a cycle (second already depends on first).
    expect_error(
        &w,
        with_dependency.clone(),
        CustomerCommand::UpdateTask(UpdateTask {
            task_id: first,
            title: None,
            description: None,
            kind: None,
            priority: None,
            due_date: None,
            depends_on: Some(vec![second]),
        }),
        invalid(
            "dependency_cycle",
            "depends_on",
            "these dependencies would form a cycle",
        ),
    )
    .await;
    expect_error(
        &w,
        with_dependency.clone(),
        CustomerCommand::CompleteTask(CompleteTask {
            task_id: second,
            outcome: "done".into(),
        }),
        CommandError::conflict(
            "dependencies_open",
            format!("task {first} must be completed or cancelled first"),
        ),
    )
    .await;

    let started = expect_one_event(
        &w,
        base.clone(),
        CustomerCommand::ChangeTaskStatus(ChangeTaskStatus {
            task_id: first,
            status: TaskStatus::InProgress,
        }),
    )
    .await;
    expect_error(
        &w,
        [base.clone(), vec![started]].concat(),
        CustomerCommand::ChangeTaskStatus(ChangeTaskStatus {
            task_id: first,
            status: TaskStatus::InProgress,
        }),
        invalid("status_unchanged", "status", "the task already has this status"),
    )
    .await;
    expect_one_event(
        &w,
        base.clone(),
        CustomerCommand::ReassignTask(ReassignTask {
            task_id: first,
            assignee_id: "csm-2".into(),
            reason: None,
        }),
    )
    .await;
    expect_error(
        &w,
        base.clone(),
        CustomerCommand::ReassignTask(ReassignTask {
            task_id: first,
            assignee_id: "csm-1".into(),
            reason: None,
        }),
        invalid(
            "assignee_unchanged",
            "assignee_id",
            "the task already has this assignee",
        ),
    )
    .await;

    let done = [base.clone(), vec![completed(first)]].concat();
    expect_error(
        &w,
        done.clone(),
        CustomerCommand::CompleteTask(CompleteTask {
            task_id: first,
            outcome: "again".into(),
        }),
        CommandError::conflict("task_completed", "this task is already completed"),
    )
    .await;
    expect_error(
        &w,
        done,
        CustomerCommand::CancelTask(CancelTask {
            task_id: first,
            reason: "no".into(),
        }),
        CommandError::conflict("task_completed", "this task is already completed"),
    )
    .await;
    expect_error(
        &w,
        vec![w.onboarded()],
        CustomerCommand::CompleteTask(CompleteTask {
            task_id: first,
            outcome: "x".into(),
        }),
        CommandError::NotFound { entity: "task" },
    )
    .await;
    expect_one_event(
        &w,
        base,
        CustomerCommand::CancelTask(CancelTask {
            task_id: first,
            reason: "superseded".into(),
        }),
    )
    .await;
}

#[tokio::test]
async fn partner_reports_are_drafted_updated_and_submitted_once() {
    let w = World::new();
    let (partner, report) = (Uuid::now_v7(), Uuid::now_v7());
    let assigned = CustomerEvent::PartnerAssigned(PartnerAssigned {
        partner_id: partner,
        occurred_at: at(fixed::NOW),
    });
    let draft = DraftPartnerReport {
        report_id: Some(report),
        partner_id: Some(partner),
        period_start: "2026-06-01".parse().unwrap(),
        period_end: "2026-06-30".parse().unwrap(),
        overall_status: OverallStatus::OnTrack,
        summary: "Rollout on schedule".into(),
        accomplishments: "Phase 1 live".into(),
        planned_activities: "Phase 2".into(),
        risks_and_issues: String::new(),
        attachments: vec![Attachment {
            name: "plan".into(),
            url: "https://files.example/plan.pdf".into(),
            kind: "pdf".into(),
        }],
    };
    let drafted = expect_one_event(
        &w,
        vec![w.onboarded(), assigned.clone()],
        CustomerCommand::DraftPartnerReport(draft.clone()),
    )
    .await;
    expect_error(
        &w,
        vec![w.onboarded()],
        CustomerCommand::DraftPartnerReport(draft.clone()),
        CommandError::Forbidden {
            message: "this partner is not assigned to the customer".into(),
        },
    )
    .await;
    let mut reversed = draft.clone();
    reversed.period_end = "2026-05-01".parse().unwrap();
    expect_error(
        &w,
        vec![w.onboarded(), assigned.clone()],
        CustomerCommand::DraftPartnerReport(reversed),
        invalid(
            "period_reversed",
            "period_end",
            "period_end must not be before period_start",
        ),
    )
    .await;

    let given = vec![w.onboarded(), assigned.clone(), drafted.clone()];
    let update = UpdatePartnerReport {
        report_id: report,
        acting_partner_id: Some(partner),
        period_start: None,
        period_end: None,
        overall_status: Some(OverallStatus::AtRisk),
        summary: None,
        accomplishments: None,
        planned_activities: None,
        risks_and_issues: None,
        attachments: None,
    };
    expect_one_event(&w, given.clone(), CustomerCommand::UpdatePartnerReport(update.clone())).await;
    expect_error(
        &w,
        given.clone(),
        CustomerCommand::UpdatePartnerReport(UpdatePartnerReport {
            acting_partner_id: Some(Uuid::now_v7()),
            ..update.clone()
        }),
        CommandError::Forbidden {
            message: "this report belongs to another partner".into(),
        },
    )
    .await;
    let submit = SubmitPartnerReport {
        report_id: report,
        acting_partner_id: Some(partner),
    };
    let submitted = expect_one_event(&w, given.clone(), CustomerCommand::SubmitPartnerReport(submit.clone())).await;
    let after = [given, vec![submitted]].concat();
    expect_error(
        &w,
        after.clone(),
        CustomerCommand::SubmitPartnerReport(submit),
        CommandError::conflict("report_already_submitted", "this report is already submitted"),
    )
    .await;
    expect_error(
        &w,
        after,
        CustomerCommand::UpdatePartnerReport(update),
        CommandError::conflict("report_submitted", "a submitted report cannot change"),
    )
    .await;
}

#[tokio::test]
async fn usage_framework_and_outcomes() {
    let w = World::new();
    let issue = Uuid::now_v7();
    let logged = expect_one_event(
        &w,
        vec![w.onboarded()],
        CustomerCommand::LogIssue(LogIssue {
            issue_id: Some(issue),
            title: "SSO outage".into(),
            description: String::new(),
            severity: Severity::High,
        }),
    )
    .await;
    let resolve = Resolve {
        id: issue,
        resolution: "fixed upstream".into(),
    };
    let resolved = expect_one_event(
        &w,
        vec![w.onboarded(), logged.clone()],
        CustomerCommand::ResolveIssue(resolve.clone()),
    )
    .await;
    expect_error(
        &w,
        vec![w.onboarded(), logged, resolved],
        CustomerCommand::ResolveIssue(resolve.clone()),
        CommandError::conflict("issue_already_resolved", "this issue is already resolved"),
    )
    .await;
    expect_error(
        &w,
        vec![w.onboarded()],
        CustomerCommand::ResolveEscalation(resolve),
        CommandError::NotFound { entity: "escalation" },
    )
    .await;
    expect_one_event(
        &w,
        vec![w.onboarded()],
        CustomerCommand::RaiseEscalation(RaiseEscalation {
            escalation_id: None,
            title: "Exec complaint".into(),
            description: String::new(),
            severity: Severity::Critical,
        }),
    )
    .await;

    expect_error(
        &w,
        vec![w.onboarded()],
        CustomerCommand::RecordMilestone(RecordMilestone {
            milestone_id: None,
            title: "Go-live".into(),
            description: String::new(),
            achieved_on: "2026-07-02".parse().unwrap(),
        }),
        invalid("in_future", "achieved_on", "achieved_on is in the future"),
    )
    .await;
    expect_one_event(
        &w,
        vec![w.onboarded()],
        CustomerCommand::RecordMilestone(RecordMilestone {
            milestone_id: None,
            title: "Go-live".into(),
            description: String::new(),
            achieved_on: "2026-06-29".parse().unwrap(),
        }),
    )
    .await;

    let stage = expect_one_event(
        &w,
        vec![w.onboarded()],
        CustomerCommand::ChangeAdoptionStage(ChangeAdoptionStage {
            stage: AdoptionStage::Implementing,
            notes: String::new(),
        }),
    )
    .await;
    expect_error(
        &w,
        vec![w.onboarded(), stage],
        CustomerCommand::ChangeAdoptionStage(ChangeAdoptionStage {
            stage: AdoptionStage::Implementing,
            notes: String::new(),
        }),
        invalid("stage_unchanged", "stage", "the customer is already at this stage"),
    )
    .await;
    let use_case = ChangeUseCaseStatus {
        use_case: "Renewal forecasting".into(),
        status: UseCaseStatus::InProgress,
        notes: String::new(),
    };
    let changed = expect_one_event(
        &w,
        vec![w.onboarded()],
        CustomerCommand::ChangeUseCaseStatus(use_case.clone()),
    )
    .await;
    expect_error(
        &w,
        vec![w.onboarded(), changed],
        CustomerCommand::ChangeUseCaseStatus(use_case),
        invalid("status_unchanged", "status", "the use case already has this status"),
    )
    .await;

    expect_error(
        &w,
        vec![w.onboarded()],
        CustomerCommand::RecordNps(RecordNps {
            score: 11,
            stakeholder_id: None,
            comment: None,
            occurred_at: None,
        }),
        invalid("out_of_range", "score", "an NPS score is between 0 and 10"),
    )
    .await;
    expect_one_event(
        &w,
        vec![w.onboarded(), w.stakeholder_added()],
        CustomerCommand::RecordNps(RecordNps {
            score: 9,
            stakeholder_id: Some(w.stakeholder),
            comment: None,
            occurred_at: None,
        }),
    )
    .await;

    expect_error(
        &w,
        vec![w.onboarded()],
        CustomerCommand::RecordRenewal(RecordRenewal {
            renewal_date: "2026-12-31".parse().unwrap(),
            arr: None,
        }),
        invalid(
            "renewal_not_after_current",
            "renewal_date",
            "the new renewal date must be after the current one, 2026-12-31",
        ),
    )
    .await;
    expect_one_event(
        &w,
        vec![w.onboarded()],
        CustomerCommand::RecordRenewal(RecordRenewal {
            renewal_date: "2027-12-31".parse().unwrap(),
            arr: Some(Decimal::new(30_000_000, 2)),
        }),
    )
    .await;
    let churned = expect_one_event(
        &w,
        vec![w.onboarded()],
        CustomerCommand::RecordChurn(RecordChurn {
            reason: "budget cut".into(),
            churned_on: "2026-06-30".parse().unwrap(),
        }),
    )
    .await;
    expect_error(
        &w,
        vec![w.onboarded(), churned],
        CustomerCommand::RecordChurn(RecordChurn {
            reason: "again".into(),
            churned_on: "2026-06-30".parse().unwrap(),
        }),
        CommandError::conflict("already_churned", "this customer has already churned"),
    )
    .await;
}

fn principal(role: Role, partner_id: Option<Uuid>) -> Principal {
    Principal {
        user_id: "u".into(),
        role,
        partner_id,
    }
}

#[test]
fn partners_act_only_on_assigned_customers_and_only_through_partner_commands() {
    let w = World::new();
    let partner = Uuid::now_v7();
    let mut customer = Customer::default();
    customer.apply(w.onboarded());
    let note = CustomerCommand::LogActivity(LogActivity {
        kind: ActivityKind::Note,
        ..w.log()
    });
    let meeting = CustomerCommand::LogActivity(w.log());
    let as_partner = principal(Role::Partner, Some(partner));

    let refused = authorize(&customer, &note, &as_partner).unwrap_err();
    assert_eq!(
        refused,
        CommandError::Forbidden {
            message: "this customer is not assigned to your partner organisation".into()
        }
    );
    customer.apply(CustomerEvent::PartnerAssigned(PartnerAssigned {
        partner_id: partner,
        occurred_at: at(fixed::NOW),
    }));
    assert!(authorize(&customer, &note, &as_partner).is_ok());
    assert!(matches!(
        authorize(&customer, &meeting, &as_partner),
        Err(CommandError::Forbidden { .. })
    ));
    let other_partner = principal(Role::Partner, Some(Uuid::now_v7()));
    assert!(authorize(&customer, &note, &other_partner).is_err());
}

#[test]
fn roles_follow_the_permission_table() {
    let w = World::new();
    let mut customer = Customer::default();
    customer.apply(w.onboarded());
    let onboard = CustomerCommand::Onboard(w.onboard());
    let log = CustomerCommand::LogActivity(w.log());
    assert!(authorize(&customer, &onboard, &principal(Role::Manager, None)).is_ok());
    assert!(authorize(&customer, &onboard, &principal(Role::Csm, None)).is_err());
    assert!(authorize(&customer, &log, &principal(Role::Csm, None)).is_ok());
    for role in [Role::Readonly, Role::Auditor] {
        assert!(authorize(&customer, &log, &principal(role, None)).is_err());
    }
}
