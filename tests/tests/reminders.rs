//! Reminders (docs/DOMAIN.md section 13), the scheduler on a pinned clock: recurring reminders
//! keep their wall-clock time across daylight-saving changes, a monthly one on the 31st skips
//! the short months, a thousand due in the same minute fire once each even when a tick stops
//! part-way (a crash) and is run again, a rule fires once for a silent account and says why, a
//! snooze "until the customer replies" ends with the reply, a relative reminder follows the
//! customer's renewal date, and only the team reads reminders.

use chrono::{DateTime, Duration, Utc};
use command_service::reminders::tick;
use reqwest::Method;
use serde_json::{json, Value};
use tests::{token, uuid, TestSystem};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

/// A system whose own scheduler is paused: these tests tick it on their own clock.
async fn paused() -> TestSystem {
    TestSystem::spawn_with(8, 3600.0).await.unwrap()
}

const QUEUE: &str = "query($status: ReminderStatus, $scope: ReminderScope, $at: DateTime, $customer: UUID) {
  reminders(status: $status, scope: $scope, at: $at, customerId: $customer, first: 100) {
    totalCount
    nodes { title occurrenceKey state trigger dueAt why ruleId rulesVersion customerName ownerName
            facts { label kind id } snoozeReason snoozedUntilEvent history { what by reason } }
  }
}";

async fn queue(system: &TestSystem, variables: Value) -> Value {
    system.graphql(QUEUE, variables).await["reminders"].clone()
}

#[tokio::test]
async fn recurring_reminders_keep_their_local_time_and_fire_each_occurrence_once() {
    let system = paused().await;
    let handlers = command_service::handlers(&system.pool);
    // Weekly on Mondays at 09:00 in Berlin, across the change to summer time on 2027-03-28.
    let weekly = system
        .post_ok(
            "/api/v1/reminders",
            &json!({"title": "Pipeline review", "time_zone": "Europe/Berlin",
                    "schedule": {"kind": "recurring", "rrule": "FREQ=WEEKLY;BYDAY=MO", "starts": "2027-03-22T09:00:00"}}),
        )
        .await;
    // Monthly on the 31st in UTC: February and April have none.
    system
        .post_ok(
            "/api/v1/reminders",
            &json!({"title": "Month-end check", "time_zone": "UTC",
                    "schedule": {"kind": "recurring", "rrule": "FREQ=MONTHLY;BYMONTHDAY=31", "starts": "2027-01-31T17:00:00"}}),
        )
        .await;
    system.caught_up().await;

    let now = at("2027-04-06T00:00:00Z");
    let first = tick(&handlers, now, false, usize::MAX).await.unwrap().unwrap();
    assert_eq!(first.fired, 5, "{first:?}");
    // A restart that ticks again at once (the read model may not have moved yet) fires nothing.
    let again = tick(&handlers, now, false, usize::MAX).await.unwrap().unwrap();
    assert_eq!(again.fired, 0, "{again:?}");
    system.caught_up().await;
    let later = tick(&handlers, now, false, usize::MAX).await.unwrap().unwrap();
    assert_eq!((later.fired, later.already), (0, 0));

    let open = queue(&system, json!({"status": "OPEN", "at": now})).await;
    assert_eq!(open["totalCount"], 5);
    let due: Vec<(String, String)> = open["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["title"].as_str().unwrap().to_owned(),
                n["dueAt"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        due,
        [
            ("Month-end check", "2027-01-31T17:00:00+00:00"),
            ("Pipeline review", "2027-03-22T08:00:00+00:00"),
            ("Pipeline review", "2027-03-29T07:00:00+00:00"),
            ("Month-end check", "2027-03-31T17:00:00+00:00"),
            ("Pipeline review", "2027-04-05T07:00:00+00:00"),
        ]
        .map(|(t, d)| (t.to_owned(), d.to_owned()))
    );
    let node = &open["nodes"][1];
    assert_eq!(node["occurrenceKey"], "2027-03-22T08:00:00Z");
    assert_eq!(node["trigger"], "recurring");
    assert_eq!(
        node["why"],
        "Recurring reminder (FREQ=WEEKLY;BYDAY=MO) due Mon 22 Mar 2027 09:00 (Europe/Berlin)."
    );
    // Up next: the Monday after, still at 09:00 Berlin time.
    let upcoming = system
        .graphql(
            "query($at: DateTime) { upcomingReminders(at: $at) { totalCount items { title nextDueAt } } }",
            json!({"at": now}),
        )
        .await;
    assert_eq!(
        upcoming["upcomingReminders"],
        json!({"totalCount": 2, "items": [
            {"title": "Pipeline review", "nextDueAt": "2027-04-12T07:00:00+00:00"},
            {"title": "Month-end check", "nextDueAt": "2027-05-31T17:00:00+00:00"}]})
    );

    // Completing one is the owner's event, and done is done.
    let weekly = uuid(&weekly["reminder_id"]);
    let path = format!("/api/v1/reminders/{weekly}/complete");
    let done = json!({"occurrence_key": "2027-03-22T08:00:00Z", "note": "reviewed"});
    let (status, _) = system.post(&path, &done).await;
    assert_eq!(status, 200);
    let (status, answer) = system.post(&path, &done).await;
    assert_eq!((status.as_u16(), answer["error"].clone()), (422, json!("already_done")));
    // Someone else's reminder is not theirs to close.
    let sam = token(events::metadata::Role::Csm, "sam", None);
    let (status, answer) = system
        .send_as(
            &sam,
            Method::POST,
            &path,
            Some(&json!({"occurrence_key": "2027-03-29T07:00:00Z"})),
        )
        .await;
    assert_eq!((status.as_u16(), answer["error"].clone()), (403, json!("forbidden")));
}

#[tokio::test]
async fn a_thousand_reminders_due_in_the_same_minute_fire_once_each_through_a_crash() {
    let system = paused().await;
    let handlers = command_service::handlers(&system.pool);
    let due = at("2027-01-04T09:00:00Z");
    for n in 0..1000 {
        system
            .post_ok(
                "/api/v1/reminders",
                &json!({"title": format!("Call back #{n}"), "schedule": {"kind": "once", "at": due}}),
            )
            .await;
    }
    system.caught_up().await;
    assert!(tick(&handlers, due - Duration::seconds(1), false, usize::MAX)
        .await
        .unwrap()
        .is_some_and(|tick| tick.fired == 0));
    // The first tick stops after 400 firings, as a crash would.
    let cut = tick(&handlers, due, false, 400).await.unwrap().unwrap();
    assert_eq!(cut.fired, 400);
    let rest = tick(&handlers, due, false, usize::MAX).await.unwrap().unwrap();
    assert_eq!(rest.fired, 600, "{rest:?}");
    let (fired, streams): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT aggregate_id) FROM events
          WHERE aggregate_type = 'Reminder' AND event_type = 'ReminderFired'",
    )
    .fetch_one(&system.pool)
    .await
    .unwrap();
    assert_eq!((fired, streams), (1000, 1000));
    system.caught_up().await;
    assert_eq!(queue(&system, json!({"at": due})).await["totalCount"], 1000);
    let counts = system
        .graphql(
            "query($at: DateTime) { reminderCounts(at: $at) { open overdue snoozed next7Days } }",
            json!({"at": due + Duration::days(2)}),
        )
        .await;
    assert_eq!(
        counts["reminderCounts"],
        json!({"open": 1000, "overdue": 1000, "snoozed": 0, "next7Days": 0})
    );
}

#[tokio::test]
async fn a_rule_fires_once_for_a_silent_account_says_why_and_a_reply_ends_its_snooze() {
    let system = paused().await;
    let handlers = command_service::handlers(&system.pool);
    let dana = system.register_csm("Dana").await;
    // The CSM's user says who they are in their notification preferences.
    let dana_user = token(events::metadata::Role::Csm, "dana", None);
    let (status, answer) = system
        .send_as(
            &dana_user,
            Method::PUT,
            "/api/v1/notification-preferences",
            Some(&json!({"csm_id": dana, "channels": [], "time_zone": "Europe/Berlin"})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let onboarded = Utc::now() - Duration::days(60);
    let acme = system.onboard("Acme", "Enterprise", "300000", dana, onboarded).await;
    let busy = system.onboard("Busy", "SMB", "9000", dana, onboarded).await;
    let silent_since = (Utc::now() - Duration::days(25)).date_naive();
    let logged = system.log_activity(acme, "meeting", silent_since, &[]).await;
    system
        .log_activity(busy, "email", (Utc::now() - Duration::days(10)).date_naive(), &[])
        .await;
    let mut rules: Vec<Value> = system
        .graphql(
            "{ rules { reminders { id title kind days score enabled } } }",
            json!({}),
        )
        .await["rules"]["reminders"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rules.len(), 4);
    assert!(rules.iter().all(|rule| rule["enabled"] == false));
    let body: Vec<Value> = rules
        .iter_mut()
        .map(|rule| {
            let condition = match rule["kind"].as_str().unwrap() {
                "no_contact" => json!({"kind": "no_contact", "days": 14}),
                "health_below" => json!({"kind": "health_below", "score": 50.0}),
                "engagement_at_risk" => json!({"kind": "engagement_at_risk"}),
                _ => json!({"kind": "task_overdue", "days": 3}),
            };
            json!({"id": rule["id"], "title": rule["title"], "condition": condition, "enabled": rule["id"] == "no-contact"})
        })
        .collect();
    let (status, answer) = system
        .send(Method::PUT, "/api/v1/rules/reminders", Some(&json!({"rules": body})))
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = system
        .send(
            Method::PUT,
            "/api/v1/rules/reminders",
            Some(&json!({"rules": [{"id": "x", "title": "Too quiet", "condition": {"kind": "no_contact", "days": 0}, "enabled": true}]})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].clone(), answer["fields"].clone()),
        (
            422,
            json!("out_of_range"),
            json!({"rules[0].condition": "days are 1 to 365 and a health score above 0 and at most 100"})
        )
    );
    system.caught_up().await;

    let now = silent_since.and_hms_opt(12, 0, 0).unwrap().and_utc() + Duration::days(20);
    let first = tick(&handlers, now, true, usize::MAX).await.unwrap().unwrap();
    assert_eq!(first.fired, 1, "only the silent account: {first:?}");
    system.caught_up().await;
    let again = tick(&handlers, now + Duration::hours(1), true, usize::MAX)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.fired, again.already), (0, 0));

    // Dana's own queue holds it, with why it fired and the fact behind it.
    let mine = system.graphql_as(&dana_user, QUEUE, json!({"at": now})).await["data"]["reminders"].clone();
    assert_eq!(mine["totalCount"], 1);
    let fired = &mine["nodes"][0];
    let activity = logged["activity_id"].as_str().unwrap();
    assert_eq!(fired["title"], "No contact in 14 days");
    assert_eq!(fired["occurrenceKey"], format!("no-contact:{activity}"));
    assert_eq!(fired["ruleId"], "no-contact");
    assert_eq!(fired["ownerName"], "Dana");
    assert_eq!(fired["customerName"], "Acme");
    assert_eq!(
        fired["why"],
        format!("No contact with Acme for 20 days (the rule says 14): the last was \"meeting on {silent_since}\" (meeting) on {silent_since}.")
    );
    assert_eq!(fired["facts"][0]["kind"], "activity");
    assert_eq!(fired["facts"][0]["id"], activity);
    assert!(fired["rulesVersion"].as_str().unwrap().parse::<i64>().unwrap() >= 1);

    // Snoozed until the customer replies, with a reason; another user may not snooze it.
    let stream = events::reminder::rule_stream_id("no-contact", acme);
    let snooze = json!({"occurrence_key": format!("no-contact:{activity}"),
                        "for": {"until": {"kind": "customer_replies"}}, "reason": "Waiting on their legal team"});
    let sam = token(events::metadata::Role::Csm, "sam", None);
    let (status, _) = system
        .send_as(
            &sam,
            Method::POST,
            &format!("/api/v1/reminders/{stream}/snooze"),
            Some(&snooze),
        )
        .await;
    assert_eq!(status, 403);
    let (status, answer) = system
        .send_as(
            &dana_user,
            Method::POST,
            &format!("/api/v1/reminders/{stream}/snooze"),
            Some(&snooze),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    system.caught_up().await;
    assert_eq!(
        tick(&handlers, now + Duration::hours(2), true, usize::MAX)
            .await
            .unwrap()
            .unwrap()
            .woke,
        0
    );
    let snoozed = queue(&system, json!({"status": "SNOOZED", "scope": "ALL", "at": now})).await;
    assert_eq!(snoozed["nodes"][0]["snoozeReason"], "Waiting on their legal team");
    assert_eq!(snoozed["nodes"][0]["snoozedUntilEvent"], "until the customer replies");

    // The reply ends the snooze, and the occurrence remembers why it slept and why it woke.
    let reply = system
        .post_ok(
            &format!("/api/v1/customers/{acme}/activities"),
            &json!({"kind": "email", "direction": "inbound", "occurred_at": Utc::now(),
                    "participants": [], "subject": "Re: contract"}),
        )
        .await;
    system.caught_up().await;
    let woke = tick(&handlers, now + Duration::hours(3), true, usize::MAX)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(woke.woke, 1);
    system.caught_up().await;
    let open = queue(&system, json!({"scope": "ALL", "at": now})).await;
    let node = &open["nodes"][0];
    assert_eq!(node["state"], "open");
    assert_eq!(
        node["history"],
        json!([
            {"what": "fired", "by": null, "reason": fired["why"]},
            {"what": "snoozed", "by": "dana", "reason": "Waiting on their legal team"},
            {"what": "woke", "by": null, "reason": "The customer replied: Re: contract (email)."}
        ])
    );
    assert!(reply["activity_id"].is_string());
}

#[tokio::test]
async fn a_relative_reminder_follows_the_renewal_date_and_only_the_team_reads_reminders() {
    let system = paused().await;
    let handlers = command_service::handlers(&system.pool);
    let dana = system.register_csm("Dana").await;
    let acme = system
        .onboard("Acme", "Enterprise", "300000", dana, Utc::now() - Duration::days(60))
        .await;
    // Renewal on 2027-12-31 (the helper's): 30 days before, at 09:00 New York time.
    let made = system
        .post_ok(
            "/api/v1/reminders",
            &json!({"title": "Start the renewal", "customer_id": acme, "time_zone": "America/New_York",
                    "schedule": {"kind": "relative", "anchor": {"date": "renewal_date"}, "offset_days": -30, "at": "09:00:00"}}),
        )
        .await;
    system.caught_up().await;
    let upcoming = system
        .graphql(
            "query($at: DateTime) { upcomingReminders(at: $at) { items { title nextDueAt customerName } } }",
            json!({"at": at("2027-01-01T00:00:00Z")}),
        )
        .await;
    assert_eq!(
        upcoming["upcomingReminders"]["items"],
        json!([{"title": "Start the renewal", "nextDueAt": "2027-12-01T14:00:00+00:00", "customerName": "Acme"}])
    );
    assert_eq!(
        tick(&handlers, at("2027-12-01T13:59:00Z"), false, usize::MAX)
            .await
            .unwrap()
            .unwrap()
            .fired,
        0
    );
    assert_eq!(
        tick(&handlers, at("2027-12-01T14:00:00Z"), false, usize::MAX)
            .await
            .unwrap()
            .unwrap()
            .fired,
        1
    );
    system.caught_up().await;
    let open = queue(&system, json!({"customer": acme, "at": at("2027-12-01T14:00:00Z")})).await;
    assert_eq!(open["nodes"][0]["occurrenceKey"], "relative:2027-12-31");
    assert_eq!(
        open["nodes"][0]["why"],
        "30 days before the renewal date of Acme (2027-12-31)."
    );

    // Bad input names its field; a partner reads no reminders; another CSM reads none of these.
    let (status, answer) = system
        .post(
            "/api/v1/reminders",
            &json!({"title": "x", "time_zone": "Mars/Base", "schedule": {"kind": "once", "at": "2030-01-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), answer["error"].clone()),
        (422, json!("invalid_time_zone"))
    );
    let (status, answer) = system
        .post(
            "/api/v1/reminders",
            &json!({"title": "x", "schedule": {"kind": "recurring", "rrule": "FREQ=MINUTELY", "starts": "2030-01-01T00:00:00"}}),
        )
        .await;
    assert_eq!(
        (
            status.as_u16(),
            answer["error"].clone(),
            answer["fields"]["schedule.rrule"].clone()
        ),
        (422, json!("invalid_rrule"), json!("a reminder recurs at most hourly"))
    );
    let partner = token(events::metadata::Role::Partner, "p1", Some(uuid::Uuid::now_v7()));
    let refused = system
        .graphql_as(&partner, "{ reminderCounts { open } }", json!({}))
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let (status, _) = system
        .send_as(
            &partner,
            Method::POST,
            "/api/v1/reminders",
            Some(&json!({"title": "x", "schedule": {"kind": "once", "at": "2030-01-01T00:00:00Z"}})),
        )
        .await;
    assert_eq!(status, 403);
    let sam = token(events::metadata::Role::Csm, "sam", None);
    let theirs = system
        .graphql_as(&sam, QUEUE, json!({"scope": "ALL", "at": at("2027-12-02T00:00:00Z")}))
        .await;
    assert_eq!(theirs["data"]["reminders"]["totalCount"], 0);
    let manager = token(events::metadata::Role::Manager, "mia", None);
    let team = system
        .graphql_as(
            &manager,
            QUEUE,
            json!({"scope": "TEAM", "at": at("2027-12-02T00:00:00Z")}),
        )
        .await;
    assert_eq!(team["data"]["reminders"]["totalCount"], 1);
    assert!(made["reminder_id"].is_string());
}

#[tokio::test]
async fn an_overdue_task_reminds_the_accounts_csm_naming_the_assignee_by_name() {
    let system = paused().await;
    let handlers = command_service::handlers(&system.pool);
    let dana = system.register_csm("Dana").await;
    let acme = system
        .onboard("Acme", "Enterprise", "300000", dana, Utc::now() - Duration::days(60))
        .await;
    // The task is assigned by CSM id, as the seed and connectors do.
    let due = at("2027-03-01T00:00:00Z").date_naive();
    let task = system
        .post_ok(
            &format!("/api/v1/customers/{acme}/tasks"),
            &json!({"title": "Send the QBR deck", "kind": "qbr_prep", "priority": "high",
                    "assignee_id": dana.to_string(), "due_date": due}),
        )
        .await;
    let (status, answer) = system
        .send(
            Method::PUT,
            "/api/v1/rules/reminders",
            Some(
                &json!({"rules": [{"id": "task-overdue", "title": "Task overdue by 3 days",
                                    "condition": {"kind": "task_overdue", "days": 3}, "enabled": true}]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    system.caught_up().await;
    let early = tick(&handlers, at("2027-03-03T12:00:00Z"), true, usize::MAX)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(early.fired, 0, "two days late is inside the rule's three");
    let fired = tick(&handlers, at("2027-03-05T12:00:00Z"), true, usize::MAX)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fired.fired, 1);
    system.caught_up().await;
    let open = queue(&system, json!({"scope": "ALL", "at": at("2027-03-05T12:00:00Z")})).await;
    assert_eq!(
        open["nodes"][0]["why"],
        "Acme: task \"Send the QBR deck\" (assigned to Dana) was due on 2027-03-01, 4 days ago."
    );
    assert_eq!(open["nodes"][0]["facts"][0]["id"], task["task_id"]);
    assert_eq!(open["nodes"][0]["ownerName"], "Dana");
}
