//! The pipeline under load: a backlog applied by the projectors in batches, exactly once, with a
//! poisoned event among them; the load generator's portfolio, the same for a seed and accepted
//! whole by the command API.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use serde_json::{json, Value};
use tests::load::{self, Portfolio, Target};
use tests::{eventually, TestSystem};
use uuid::Uuid;

async fn log_batch(system: &TestSystem, customer: Uuid, count: usize) {
    let activities: Vec<Value> = (0..count)
        .map(|n| {
            json!({"kind": "email", "direction": "outbound", "subject": format!("touch {n}"),
                   "occurred_at": Utc::now() - chrono::Duration::minutes(n as i64 + 1)})
        })
        .collect();
    system.log_activities(customer, activities).await;
}

async fn stored_events(system: &TestSystem) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap()
}

/// Waits until every projector has applied at least `events`, lets `settle` pass (for anything
/// applied twice to show), and returns each projector's count, in projector order.
async fn applied_by_every_projector(system: &TestSystem, events: i64, settle: Duration) -> Vec<i64> {
    eventually(Duration::from_secs(60), || async {
        let least: Option<i64> = sqlx::query_scalar("SELECT min(events_applied) FROM projector_status")
            .fetch_one(&system.pool)
            .await
            .unwrap();
        least.unwrap_or(0) >= events
    })
    .await
    .expect("every projector applies the events");
    tokio::time::sleep(settle).await;
    sqlx::query_scalar("SELECT events_applied FROM projector_status ORDER BY projector")
        .fetch_all(&system.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_backlog_is_applied_in_batches_exactly_once_and_a_poisoned_event_is_set_aside_alone() {
    let mut system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Bea Backlog").await;
    let onboarded = Utc::now() - chrono::Duration::days(30);
    let first = system.onboard("First", "SMB", "1000", csm, onboarded).await;
    let second = system.onboard("Second", "SMB", "1000", csm, onboarded).await;
    let poisoned = system.onboard("Poisoned", "SMB", "1000", csm, onboarded).await;
    system.caught_up().await;

    // The projectors are away while a backlog builds up on three streams, one of them ending in
    // an event no version can decode.
    system.kill_every_projection().await;
    log_batch(&system, first, 300).await;
    log_batch(&system, second, 250).await;
    log_batch(&system, poisoned, 5).await;
    let payload = json!({"ActivityLogged": {"activity_id": "01932f00-0000-7000-8000-000000000043", "kind": 42}});
    let blocked_at = system.append_stored(poisoned, "ActivityLogged", "1", payload).await;
    system.start_projection().await.unwrap();

    eventually(Duration::from_secs(60), || async {
        system.contacts(first).await == 300 && system.contacts(second).await == 250
    })
    .await
    .expect("the backlog is applied");
    eventually(Duration::from_secs(60), || async {
        let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
            .fetch_one(&system.pool)
            .await
            .unwrap();
        dead == events::topology::PROJECTORS.len() as i64
    })
    .await
    .expect("each projector sets the poisoned event aside");
    assert_eq!(system.contacts(poisoned).await, 5);
    assert_eq!(system.contacts(first).await, 300, "nothing applied twice");

    // Every event but the poisoned one applied exactly once by every projector, and the
    // checkpoints where the streams end (the poisoned one's just before the event it holds).
    let stored = stored_events(&system).await;
    assert_eq!(
        applied_by_every_projector(&system, stored - 1, Duration::from_millis(500)).await,
        vec![stored - 1; events::topology::PROJECTORS.len()]
    );
    let checkpoints: Vec<(String, i64)> = sqlx::query_as(
        "SELECT stream_id, min(last_sequence) FROM projector_checkpoints
          WHERE stream_id = ANY($1) GROUP BY stream_id ORDER BY stream_id",
    )
    .bind(vec![first.to_string(), second.to_string(), poisoned.to_string()])
    .fetch_all(&system.pool)
    .await
    .unwrap();
    let checkpoints: BTreeMap<String, i64> = checkpoints.into_iter().collect();
    assert_eq!(checkpoints[&first.to_string()], 301);
    assert_eq!(checkpoints[&second.to_string()], 251);
    assert_eq!(checkpoints[&poisoned.to_string()], blocked_at - 1);
    system.stop().await;
}

/// The projectors share a delivery but not its fate: an event only one of them cannot apply is
/// applied by the other and set aside for that one alone.
#[tokio::test]
async fn an_event_one_projector_cannot_apply_is_set_aside_for_that_projector_alone() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Ola Only").await;
    let customer = system
        .onboard("Around", "SMB", "1000", csm, Utc::now() - chrono::Duration::days(30))
        .await;
    system.caught_up().await;

    // An acknowledgement whose alert id is not an id: the customers projector (which keeps the
    // alerts) cannot decode it; the coverage projector has no use for alert streams.
    let stream = Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Alert', $1, 1, 'AlertAcknowledged', '1', '{\"AlertAcknowledged\": {\"alert_id\": 42}}',
                 '{\"actor_id\": \"import\", \"actor_role\": \"admin\", \"source\": \"import\"}')",
    )
    .bind(&stream)
    .execute(&system.pool)
    .await
    .unwrap();
    log_batch(&system, customer, 3).await;

    eventually(Duration::from_secs(60), || async {
        let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
            .fetch_one(&system.pool)
            .await
            .unwrap();
        dead > 0
    })
    .await
    .expect("the event is dead-lettered");
    eventually(Duration::from_secs(30), || async {
        system.contacts(customer).await == 3
    })
    .await
    .expect("the activities after it are applied");
    let dead: Vec<(String, String)> = sqlx::query_as("SELECT projector, stream_id FROM dead_letters")
        .fetch_all(&system.pool)
        .await
        .unwrap();
    assert_eq!(dead, vec![("customers".to_owned(), stream.clone())]);
    let checkpoints: Vec<(String, i64)> = sqlx::query_as(
        "SELECT projector, last_sequence FROM projector_checkpoints WHERE stream_id = $1 AND last_sequence > 0
          ORDER BY projector",
    )
    .bind(&stream)
    .fetch_all(&system.pool)
    .await
    .unwrap();
    assert_eq!(checkpoints, vec![("coverage".to_owned(), 1)]);
    system.stop().await;
}

/// Declares a durable queue, or with `passive` finds one (its message count) and fails when
/// there is none.
async fn declare(channel: &lapin::Channel, queue: &str, passive: bool) -> lapin::Result<lapin::Queue> {
    let options = lapin::options::QueueDeclareOptions {
        durable: true,
        passive,
        ..Default::default()
    };
    channel
        .queue_declare(queue.into(), options, lapin::types::FieldTable::default())
        .await
}

/// Upgrading from the queue-per-projector layout: the services delete the old queues on start,
/// and what those alone still held is applied from the store, exactly once.
#[tokio::test]
async fn an_earlier_versions_projector_queues_are_retired_and_what_they_held_is_applied_from_the_store() {
    use lapin::options::{QueueBindOptions, QueuePurgeOptions};
    use lapin::types::FieldTable;

    let mut system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Uma Upgrade").await;
    let customer = system
        .onboard("Upgraded", "SMB", "1000", csm, Utc::now() - chrono::Duration::days(30))
        .await;
    system.caught_up().await;

    // An earlier version's queues, each projector's own per partition, receive a backlog that
    // never reaches the partition queues.
    system.kill_every_projection().await;
    let connection = events::service::amqp::connect(tests::AMQP_URL, "test-retired-queues")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let topology = system.topology();
    let retired: Vec<String> = events::topology::PROJECTORS
        .iter()
        .flat_map(|projector| {
            (0..topology.partitions()).map(|partition| topology.retired_projector_queue(projector, partition))
        })
        .collect();
    for (k, queue) in retired.iter().enumerate() {
        let partition = k as u16 % topology.partitions();
        declare(&channel, queue, false).await.unwrap();
        channel
            .queue_bind(
                queue.as_str().into(),
                topology.events_exchange().as_str().into(),
                events::topology::Topology::partition_binding(partition).as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    log_batch(&system, customer, 12).await;
    system.relayed_everything().await;
    let mut held = 0;
    for queue in &retired {
        held += declare(&channel, queue, true).await.unwrap().message_count();
    }
    assert_eq!(held, 2 * 12, "each old queue got its projector's copy");
    for partition in 0..topology.partitions() {
        channel
            .queue_purge(
                topology.projection_queue(partition).as_str().into(),
                QueuePurgeOptions::default(),
            )
            .await
            .unwrap();
    }

    system.start_projection().await.unwrap();
    eventually(Duration::from_secs(30), || async {
        system.contacts(customer).await == 12
    })
    .await
    .expect("the backlog is applied from the store");
    for queue in &retired {
        // A passive declaration of a missing queue closes its channel: one channel per probe.
        let probe = connection.create_channel().await.unwrap();
        assert!(declare(&probe, queue, true).await.is_err(), "{queue} is deleted");
    }
    connection.close(0, "done".into()).await.ok();
    let stored = stored_events(&system).await;
    assert_eq!(
        applied_by_every_projector(&system, stored, Duration::from_millis(2500)).await,
        vec![stored; events::topology::PROJECTORS.len()],
        "nothing applied twice"
    );
    assert_eq!(system.contacts(customer).await, 12);
    system.stop().await;
}

#[tokio::test]
async fn events_the_broker_lost_are_applied_from_the_store_exactly_once() {
    let mut system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Lou Lost").await;
    let onboarded = Utc::now() - chrono::Duration::days(30);
    let lost = system.onboard("Lost", "SMB", "1000", csm, onboarded).await;
    system.caught_up().await;

    // The relay publishes a backlog (confirmed by the broker) while the projectors are away, and
    // then the broker loses every message of the partition queues.
    system.kill_every_projection().await;
    log_batch(&system, lost, 40).await;
    system.relayed_everything().await;
    let connection = events::service::amqp::connect(tests::AMQP_URL, "test-lost-messages")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let topology = system.topology();
    let mut purged = 0;
    for partition in 0..topology.partitions() {
        purged += channel
            .queue_purge(
                topology.projection_queue(partition).as_str().into(),
                lapin::options::QueuePurgeOptions::default(),
            )
            .await
            .unwrap();
    }
    // At least the backlog: a delivery applied but not yet acknowledged when the projection
    // service was killed is back in its queue too.
    assert!(purged >= 40, "the backlog is gone from the broker: {purged}");
    connection.close(0, "done".into()).await.ok();

    // Nothing more will arrive for the stream: the projectors find it behind the store and
    // bring it up to its head, exactly once.
    system.start_projection().await.unwrap();
    eventually(Duration::from_secs(30), || async { system.contacts(lost).await == 40 })
        .await
        .expect("the lost events are applied from the store");
    let stored = stored_events(&system).await;
    // Two more reconciliations pass before the counts are read: nothing is applied twice.
    assert_eq!(
        applied_by_every_projector(&system, stored, Duration::from_millis(2500)).await,
        vec![stored; events::topology::PROJECTORS.len()],
        "nothing applied twice"
    );
    let checkpoints: Vec<i64> =
        sqlx::query_scalar("SELECT last_sequence FROM projector_checkpoints WHERE stream_id = $1 ORDER BY projector")
            .bind(lost.to_string())
            .fetch_all(&system.pool)
            .await
            .unwrap();
    assert_eq!(checkpoints, vec![41; events::topology::PROJECTORS.len()]);
    assert_eq!(system.contacts(lost).await, 40);
    system.stop().await;
}

/// Under load with no fault, deliveries taken from the queues and still being applied are no
/// loss: the reconciler, looking often while batches linger, brings nothing up from the store
/// and its counter (which says the broker lost messages) stays at zero.
#[tokio::test]
async fn deliveries_in_flight_are_not_taken_for_lost_ones() {
    let mut system = TestSystem::spawn().await.unwrap();
    system
        .reconfigure_projection(|settings| {
            settings.reconcile_seconds = 0.2;
            settings.apply_linger_ms = 100;
        })
        .await
        .unwrap();
    let csm = system.register_csm("Fay Flight").await;
    let onboarded = Utc::now() - chrono::Duration::days(30);
    let mut customers = Vec::new();
    for n in 0..4 {
        customers.push(
            system
                .onboard(&format!("Busy {n}"), "SMB", "1000", csm, onboarded)
                .await,
        );
    }
    for round in 0..12 {
        for customer in &customers {
            log_batch(&system, *customer, 3).await;
        }
        tokio::time::sleep(Duration::from_millis(if round % 2 == 0 { 90 } else { 230 })).await;
    }
    system.caught_up().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        system
            .projection_counter("cstrack_projection_recovered_from_store_total")
            .await,
        0.0,
        "nothing was lost, so nothing is recovered"
    );
    for customer in &customers {
        assert_eq!(system.contacts(*customer).await, 36);
    }
    system.stop().await;
}

const AS_OF: NaiveDate = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();

#[test]
fn a_seed_makes_the_same_portfolio_and_the_portfolio_looks_like_a_book_of_business() {
    let portfolio = Portfolio::generate(7, 150, AS_OF);
    let again = Portfolio::generate(7, 150, AS_OF);
    let ids = |portfolio: &Portfolio| portfolio.customers.iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(&portfolio), ids(&again));
    assert_eq!(portfolio.commands(), again.commands());
    let bodies = |portfolio: &Portfolio| {
        portfolio
            .customers
            .iter()
            .flat_map(|c| c.history.iter().map(|r| r.body.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(bodies(&portfolio), bodies(&again));
    assert_ne!(ids(&portfolio), ids(&Portfolio::generate(8, 150, AS_OF)));

    assert_eq!(portfolio.customers.len(), 150);
    let mut books: BTreeMap<Uuid, usize> = BTreeMap::new();
    for customer in &portfolio.customers {
        *books.entry(customer.csm).or_default() += 1;
    }
    let last = portfolio.customers.last().unwrap().csm;
    for (csm, size) in &books {
        assert!(*csm == last || (20..=60).contains(size), "a CSM holds {size}");
    }
    let tiers = |tier: &str| portfolio.customers.iter().filter(|c| c.tier == tier).count();
    assert!(tiers("Enterprise") > 0 && tiers("MidMarket") > 0 && tiers("SMB") > tiers("Enterprise"));

    // A year of activities, mostly on weekdays, none after the day the history ends.
    let mut weekdays = 0;
    let mut weekends = 0;
    for customer in &portfolio.customers {
        for request in customer.history.iter().filter(|r| r.kind == "log_activity") {
            let at: chrono::DateTime<Utc> = serde_json::from_value(request.body["occurred_at"].clone()).unwrap();
            assert!(at.date_naive() < AS_OF && at.date_naive() >= AS_OF - chrono::Days::new(365));
            if at.weekday().number_from_monday() > 5 {
                weekends += 1;
            } else {
                weekdays += 1;
            }
        }
        let health = customer.history.iter().filter(|r| r.kind == "record_health").count();
        assert!((52..=53).contains(&health), "weekly health scores: {health}");
    }
    assert!(weekdays > 100 * 150 / 2, "{weekdays} activities on weekdays");
    assert!(weekends * 20 < weekdays, "{weekends} at weekends against {weekdays}");
    // Batches hold every activity once.
    let history = &portfolio.customers[0].history;
    let batched = load::batched(history, 40);
    let activities = |requests: &[load::Request]| -> usize {
        requests
            .iter()
            .map(|r| match r.kind {
                "log_activity" => 1,
                "log_activities" => r.body["activities"].as_array().unwrap().len(),
                _ => 0,
            })
            .sum()
    };
    assert_eq!(activities(&batched), activities(history));
    assert!(batched
        .iter()
        .all(|r| r.kind != "log_activities" || r.body["activities"].as_array().unwrap().len() <= 40));
}

#[tokio::test]
async fn the_load_generator_plays_a_portfolio_through_the_command_api_without_a_refusal() {
    let system = TestSystem::spawn().await.unwrap();
    let portfolio = Portfolio::generate(11, 3, AS_OF);
    let target = Target {
        http: reqwest::Client::new(),
        command_url: system.command_url.clone(),
        graphql_url: system.graphql_url.clone(),
        token: system.admin.clone(),
    };
    let recorder = load::bulk(&target, &portfolio, 2, 0.0, 50).await;
    assert_eq!(recorder.failed.load(Ordering::Relaxed), 0, "{:?}", recorder.errors());
    // Every event the answers named is in the store, and nothing else is.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(recorder.events.load(Ordering::Relaxed) as i64, stored);
    system.caught_up().await;
    let customers = system
        .graphql(
            "{ customers(first: 10) { edges { node { customerId tier } } } }",
            json!({}),
        )
        .await;
    let mut seen: Vec<(String, String)> = customers["customers"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| {
            (
                edge["node"]["customerId"].as_str().unwrap().to_owned(),
                edge["node"]["tier"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut planned: Vec<(String, String)> = portfolio
        .customers
        .iter()
        .map(|c| {
            let tier = match c.tier {
                "Enterprise" => "ENTERPRISE",
                "MidMarket" => "MID_MARKET",
                _ => "SMB",
            };
            (c.id.to_string(), tier.to_owned())
        })
        .collect();
    planned.sort();
    assert_eq!(seen, planned);

    // The steady mix reads and writes on those customers without a failure.
    let recorder = load::steady(&target, &portfolio, 2, 10.0, 10.0, Duration::from_secs(2)).await;
    assert_eq!(recorder.failed.load(Ordering::Relaxed), 0, "{:?}", recorder.errors());
    assert!(recorder.sent.load(Ordering::Relaxed) >= 30);
    system.stop().await;
}
