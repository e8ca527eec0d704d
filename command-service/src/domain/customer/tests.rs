//! Given/when/then tests of every customer command and every rejection rule.

use chrono::{DateTime, Utc};
use cqrs_es::test::TestFramework;
use events::customer::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::domain::{fixed, ActivityRecord, CommandError};

type CustomerTest = TestFramework<Customer>;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

struct World {
    customer: Uuid,
    csm: Uuid,
    other_csm: Uuid,
    stakeholder: Uuid,
    activity: Uuid,
}

impl World {
    fn new() -> Self {
        World {
            customer: Uuid::now_v7(),
            csm: Uuid::now_v7(),
            other_csm: Uuid::now_v7(),
            stakeholder: Uuid::now_v7(),
            activity: Uuid::now_v7(),
        }
    }

    fn test(&self) -> CustomerTest {
        CustomerTest::with(fixed::services(vec![self.csm, self.other_csm]))
    }

    /// A test whose store knows the world's activity, retracted or not.
    fn test_with_activity(&self, retracted: bool) -> CustomerTest {
        CustomerTest::with(fixed::with(fixed::Known {
            csms: vec![self.csm, self.other_csm],
            activities: vec![(self.activity, ActivityRecord { retracted })],
            ..Default::default()
        }))
    }

    fn onboard(&self) -> OnboardCustomer {
        OnboardCustomer {
            customer_id: Some(self.customer),
            name: "Acme Corp".into(),
            salesforce_id: "0015g00000AbCdEAAV".into(),
            tier: Tier::Enterprise,
            arr: Decimal::new(25_000_000, 2),
            industry: "Manufacturing".into(),
            account_manager: "Sam Reyes".into(),
            csm_id: self.csm,
            products_owned: vec!["Platform".into()],
            contract_start: "2025-01-01".parse().unwrap(),
            renewal_date: "2026-12-31".parse().unwrap(),
            occurred_at: Some(at("2025-01-02T09:00:00Z")),
        }
    }

    fn onboarded(&self) -> CustomerEvent {
        let command = self.onboard();
        CustomerEvent::CustomerOnboarded(CustomerOnboarded {
            customer_id: self.customer,
            name: command.name,
            salesforce_id: command.salesforce_id,
            tier: command.tier,
            arr: command.arr,
            industry: command.industry,
            account_manager: command.account_manager,
            csm_id: self.csm,
            products_owned: command.products_owned,
            contract_start: command.contract_start,
            renewal_date: command.renewal_date,
            occurred_at: at("2025-01-02T09:00:00Z"),
        })
    }

    fn stakeholder_added(&self) -> CustomerEvent {
        CustomerEvent::StakeholderAdded(StakeholderAdded {
            stakeholder_id: self.stakeholder,
            name: "Priya Natarajan".into(),
            role: "VP Operations".into(),
            level: StakeholderLevel::Executive,
            email: None,
            occurred_at: at(fixed::NOW),
        })
    }

    fn log(&self) -> LogActivity {
        LogActivity {
            activity_id: Some(self.activity),
            fresh_id: false,
            kind: ActivityKind::Meeting,
            direction: Direction::Outbound,
            occurred_at: at("2026-06-29T15:00:00Z"),
            duration_minutes: Some(45),
            participants: vec![self.stakeholder],
            response_received: None,
            response_time_hours: None,
            subject: "Roadmap review".into(),
            logged_by: Some("csm-1".into()),
        }
    }

    fn logged(&self) -> CustomerEvent {
        let command = self.log();
        CustomerEvent::ActivityLogged(ActivityLogged {
            activity_id: self.activity,
            kind: command.kind,
            direction: command.direction,
            occurred_at: command.occurred_at,
            duration_minutes: command.duration_minutes,
            participants: command.participants,
            response_received: None,
            response_time_hours: None,
            subject: command.subject,
            logged_by: "csm-1".into(),
        })
    }

    fn health(&self, score: f64, source: HealthSource, reason: Option<&str>) -> RecordHealthScore {
        RecordHealthScore {
            score,
            source,
            reason: reason.map(Into::into),
            risk_factors: vec![RiskFactor {
                name: "low usage".into(),
                weight: None,
            }],
            measured_at: Some(at("2026-06-30T08:00:00Z")),
        }
    }
}

fn invalid(code: &'static str, field: &'static str, message: &str) -> CommandError {
    CommandError::invalid(code, field, message)
}

#[tokio::test]
async fn onboards_a_customer() {
    let w = World::new();
    w.test()
        .given_no_previous_events()
        .when_async(CustomerCommand::Onboard(w.onboard()))
        .await
        .then_expect_events(vec![w.onboarded()]);
}

#[tokio::test]
async fn refuses_onboarding_twice() {
    let w = World::new();
    w.test()
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::Onboard(w.onboard()))
        .await
        .then_expect_error_message("this customer is already onboarded");
}

/// A change that makes a valid command invalid, and the error it must meet.
type Case<Change> = (Change, CommandError);
type ActivityChange = Box<dyn Fn(&mut LogActivity)>;

#[tokio::test]
async fn refuses_invalid_onboarding_fields() {
    let w = World::new();
    let cases: Vec<Case<fn(&mut OnboardCustomer)>> = vec![
        (
            |c| c.salesforce_id = "0015g00000AbCdE-AV".into(),
            invalid(
                "invalid_salesforce_id",
                "salesforce_id",
                "salesforce_id must be 15 or 18 alphanumeric characters",
            ),
        ),
        (
            |c| c.salesforce_id = "0015g00000AbCd".into(),
            invalid(
                "invalid_salesforce_id",
                "salesforce_id",
                "salesforce_id must be 15 or 18 alphanumeric characters",
            ),
        ),
        (
            |c| c.arr = Decimal::new(-1, 0),
            invalid("negative_arr", "arr", "arr must not be negative"),
        ),
        (
            |c| c.arr = Decimal::new(1001, 3),
            invalid("too_many_decimals", "arr", "arr has at most two decimal places"),
        ),
        (
            |c| c.renewal_date = "2024-12-31".parse().unwrap(),
            invalid(
                "renewal_before_contract_start",
                "renewal_date",
                "renewal_date must not be before contract_start",
            ),
        ),
        (
            |c| c.name = "  ".into(),
            invalid("required", "name", "name must not be empty"),
        ),
        (
            |c| c.occurred_at = Some(at("2026-07-01T00:00:00Z")),
            invalid("in_future", "occurred_at", "occurred_at is in the future"),
        ),
    ];
    for (break_it, expected) in cases {
        let mut command = w.onboard();
        break_it(&mut command);
        w.test()
            .given_no_previous_events()
            .when_async(CustomerCommand::Onboard(command))
            .await
            .then_expect_error(expected);
    }
}

#[tokio::test]
async fn accepts_a_fifteen_character_salesforce_id() {
    let w = World::new();
    let mut command = w.onboard();
    command.salesforce_id = "0015g00000AbCdE".into();
    let events = w
        .test()
        .given_no_previous_events()
        .when_async(CustomerCommand::Onboard(command))
        .await
        .inspect_result();
    assert_eq!(events.unwrap().len(), 1);
}

#[tokio::test]
async fn refuses_an_unknown_csm() {
    let w = World::new();
    let mut command = w.onboard();
    command.csm_id = Uuid::now_v7();
    let message = format!("no CSM is registered with id {}", command.csm_id);
    w.test()
        .given_no_previous_events()
        .when_async(CustomerCommand::Onboard(command))
        .await
        .then_expect_error(invalid("unknown_csm", "csm_id", &message));
}

#[tokio::test]
async fn commands_on_a_customer_that_does_not_exist_are_not_found() {
    let w = World::new();
    let commands = vec![
        CustomerCommand::AssignCsm(AssignCsm {
            csm_id: w.other_csm,
            reason: "handoff".into(),
            occurred_at: None,
        }),
        CustomerCommand::LogActivity(w.log()),
        CustomerCommand::RecordHealthScore(w.health(80.0, HealthSource::Gainsight, None)),
        CustomerCommand::RetractActivity(RetractActivity {
            activity_id: w.activity,
            reason: "duplicate".into(),
        }),
    ];
    for command in commands {
        w.test()
            .given_no_previous_events()
            .when_async(command)
            .await
            .then_expect_error(CommandError::NotFound { entity: "customer" });
    }
}

#[tokio::test]
async fn hands_the_customer_to_another_csm() {
    let w = World::new();
    w.test()
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::AssignCsm(AssignCsm {
            csm_id: w.other_csm,
            reason: "territory change".into(),
            occurred_at: None,
        }))
        .await
        .then_expect_events(vec![CustomerEvent::CsmAssigned(CsmAssigned {
            csm_id: w.other_csm,
            previous_csm_id: Some(w.csm),
            reason: "territory change".into(),
            occurred_at: at(fixed::NOW),
        })]);
}

#[tokio::test]
async fn refuses_assigning_the_same_csm_or_without_reason() {
    let w = World::new();
    w.test()
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::AssignCsm(AssignCsm {
            csm_id: w.csm,
            reason: "again".into(),
            occurred_at: None,
        }))
        .await
        .then_expect_error(invalid("csm_unchanged", "csm_id", "the customer already has this CSM"));
    w.test()
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::AssignCsm(AssignCsm {
            csm_id: w.other_csm,
            reason: "".into(),
            occurred_at: None,
        }))
        .await
        .then_expect_error(invalid("required", "reason", "reason must not be empty"));
}

#[tokio::test]
async fn adds_a_stakeholder_once() {
    let w = World::new();
    let add = AddStakeholder {
        stakeholder_id: Some(w.stakeholder),
        name: "Priya Natarajan".into(),
        role: "VP Operations".into(),
        level: StakeholderLevel::Executive,
        email: Some("".into()),
        occurred_at: None,
    };
    w.test()
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::AddStakeholder(add.clone()))
        .await
        .then_expect_events(vec![w.stakeholder_added()]);
    w.test()
        .given(vec![w.onboarded(), w.stakeholder_added()])
        .when_async(CustomerCommand::AddStakeholder(add.clone()))
        .await
        .then_expect_error_message("a stakeholder with this id already exists");
    let mut bad_email = add;
    bad_email.stakeholder_id = None;
    bad_email.email = Some("priya".into());
    w.test()
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::AddStakeholder(bad_email))
        .await
        .then_expect_error(invalid("invalid_email", "email", "email must be an e-mail address"));
}

#[tokio::test]
async fn logs_an_activity_with_known_participants() {
    let w = World::new();
    w.test()
        .given(vec![w.onboarded(), w.stakeholder_added()])
        .when_async(CustomerCommand::LogActivity(w.log()))
        .await
        .then_expect_events(vec![w.logged()]);
}

#[tokio::test]
async fn refuses_invalid_activities() {
    let w = World::new();
    let unknown = Uuid::now_v7();
    let cases: Vec<Case<ActivityChange>> = vec![
        (
            Box::new(|c| c.occurred_at = at("2026-07-02T00:00:00Z")),
            invalid("in_future", "occurred_at", "occurred_at is in the future"),
        ),
        (
            Box::new(move |c| c.participants = vec![unknown]),
            invalid(
                "unknown_stakeholder",
                "participants",
                &format!("stakeholder {unknown} is not a stakeholder of this customer"),
            ),
        ),
        (
            Box::new(|c| c.duration_minutes = Some(1441)),
            invalid("out_of_range", "duration_minutes", "duration_minutes is at most 1440"),
        ),
        (
            Box::new(|c| c.response_time_hours = Some(-1.0)),
            invalid(
                "out_of_range",
                "response_time_hours",
                "response_time_hours must be a non-negative number of hours, at most 8760 (a year)",
            ),
        ),
        (
            Box::new(|c| c.subject = "x".repeat(501)),
            invalid("too_long", "subject", "subject must be at most 500 characters"),
        ),
    ];
    for (break_it, expected) in cases {
        let mut command = w.log();
        break_it(&mut command);
        w.test()
            .given(vec![w.onboarded(), w.stakeholder_added()])
            .when_async(CustomerCommand::LogActivity(command))
            .await
            .then_expect_error(expected);
    }
    w.test_with_activity(false)
        .given(vec![w.onboarded(), w.stakeholder_added(), w.logged()])
        .when_async(CustomerCommand::LogActivity(w.log()))
        .await
        .then_expect_error_message("an activity with this id already exists");
}

#[tokio::test]
async fn retracts_an_activity_once() {
    let w = World::new();
    let retract = RetractActivity {
        activity_id: w.activity,
        reason: "logged on the wrong account".into(),
    };
    let retracted = CustomerEvent::ActivityRetracted(ActivityRetracted {
        activity_id: w.activity,
        reason: "logged on the wrong account".into(),
        occurred_at: at(fixed::NOW),
    });
    w.test_with_activity(false)
        .given(vec![w.onboarded(), w.stakeholder_added(), w.logged()])
        .when_async(CustomerCommand::RetractActivity(retract.clone()))
        .await
        .then_expect_events(vec![retracted]);
    w.test_with_activity(true)
        .given(vec![w.onboarded(), w.stakeholder_added(), w.logged()])
        .when_async(CustomerCommand::RetractActivity(retract.clone()))
        .await
        .then_expect_error_message("this activity is already retracted");
    w.test()
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::RetractActivity(retract))
        .await
        .then_expect_error(CommandError::NotFound { entity: "activity" });
    w.test_with_activity(false)
        .given(vec![w.onboarded(), w.stakeholder_added(), w.logged()])
        .when_async(CustomerCommand::RetractActivity(RetractActivity {
            activity_id: w.activity,
            reason: " ".into(),
        }))
        .await
        .then_expect_error(invalid("required", "reason", "reason must not be empty"));
}

#[tokio::test]
async fn records_gainsight_and_manual_health_scores() {
    let w = World::new();
    w.test()
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::RecordHealthScore(w.health(
            45.0,
            HealthSource::Gainsight,
            None,
        )))
        .await
        .then_expect_events(vec![CustomerEvent::HealthScoreRecorded(HealthScoreRecorded {
            score: 45.0,
            source: HealthSource::Gainsight,
            reason: None,
            risk_factors: vec![RiskFactor {
                name: "low usage".into(),
                weight: None,
            }],
            measured_at: at("2026-06-30T08:00:00Z"),
        })]);
    let events = w
        .test()
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::RecordHealthScore(w.health(
            72.0,
            HealthSource::Manual,
            Some("exec sponsor left"),
        )))
        .await
        .inspect_result()
        .unwrap();
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn refuses_invalid_health_scores() {
    let w = World::new();
    let cases = vec![
        (
            w.health(100.5, HealthSource::Gainsight, None),
            invalid("out_of_range", "score", "score must be between 0 and 100"),
        ),
        (
            w.health(-1.0, HealthSource::Gainsight, None),
            invalid("out_of_range", "score", "score must be between 0 and 100"),
        ),
        (
            w.health(f64::NAN, HealthSource::Gainsight, None),
            invalid("out_of_range", "score", "score must be between 0 and 100"),
        ),
        (
            w.health(60.0, HealthSource::Manual, None),
            invalid("reason_required", "reason", "a manual health score needs a reason"),
        ),
        (
            w.health(60.0, HealthSource::Manual, Some("  ")),
            invalid("reason_required", "reason", "a manual health score needs a reason"),
        ),
        (
            RecordHealthScore {
                measured_at: Some(at("2026-07-01T00:00:00Z")),
                ..w.health(60.0, HealthSource::Gainsight, None)
            },
            invalid("in_future", "measured_at", "measured_at is in the future"),
        ),
    ];
    for (command, expected) in cases {
        w.test()
            .given(vec![w.onboarded()])
            .when_async(CustomerCommand::RecordHealthScore(command))
            .await
            .then_expect_error(expected);
    }
}

#[tokio::test]
async fn refuses_a_handoff_to_an_unknown_csm() {
    let w = World::new();
    let stranger = Uuid::now_v7();
    w.test()
        .given(vec![w.onboarded()])
        .when_async(CustomerCommand::AssignCsm(AssignCsm {
            csm_id: stranger,
            reason: "handoff".into(),
            occurred_at: None,
        }))
        .await
        .then_expect_error(invalid(
            "unknown_csm",
            "csm_id",
            &format!("no CSM is registered with id {stranger}"),
        ));
}

mod more;
