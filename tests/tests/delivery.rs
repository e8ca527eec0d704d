//! Never lose, never skip: the relay and the projectors under late commits, crashes, duplicate
//! deliveries and a dropped broker connection. Observed through GraphQL, as a user would.

use std::time::Duration;

use chrono::{Days, Utc};
use events::customer::{ActivityKind, ActivityLogged, CustomerEvent, Direction};
use events::metadata::{CommandMetadata, Source};
use events::service::store::{StoredEvent, COLUMNS};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::BasicProperties;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use tests::{close_broker_connections, eventually, TestSystem, ACCOUNT_COVERAGE, AMQP_URL};
use uuid::Uuid;

async fn touches(system: &TestSystem, customer: Uuid) -> i64 {
    let data = system.graphql(ACCOUNT_COVERAGE, json!({"id": customer})).await;
    data["accountCoverage"]["touches30d"].as_i64().unwrap()
}

async fn customer_with_csm(system: &TestSystem, name: &str) -> Uuid {
    let csm = system.register_csm(&format!("CSM of {name}")).await;
    let onboarded = Utc::now() - chrono::Duration::days(100);
    system.onboard(name, "SMB", "10000", csm, onboarded).await
}

async fn log_email_today(system: &TestSystem, customer: Uuid) {
    system
        .log_activity(customer, "email", Utc::now().date_naive() - Days::new(0), &[])
        .await;
}

/// An `ActivityLogged` row as the store would hold it, for appending by hand.
fn activity_payload() -> (serde_json::Value, serde_json::Value) {
    let event = CustomerEvent::ActivityLogged(ActivityLogged {
        activity_id: Uuid::now_v7(),
        kind: ActivityKind::Call,
        direction: Direction::Outbound,
        occurred_at: Utc::now() - chrono::Duration::hours(1),
        duration_minutes: Some(10),
        participants: vec![],
        response_received: None,
        response_time_hours: None,
        subject: "late commit".into(),
        logged_by: "test".into(),
    });
    (
        serde_json::to_value(event).unwrap(),
        serde_json::to_value(CommandMetadata::system(Source::System).to_map()).unwrap(),
    )
}

async fn begin_append(system: &TestSystem, customer: Uuid, sequence: i64) -> PgConnection {
    let mut connection = PgConnection::connect(&system.database_url).await.unwrap();
    let (payload, metadata) = activity_payload();
    sqlx::query("BEGIN").execute(&mut connection).await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Customer', $1, $2, 'ActivityLogged', '1', $3, $4)",
    )
    .bind(customer.to_string())
    .bind(sequence)
    .bind(payload)
    .bind(metadata)
    .execute(&mut connection)
    .await
    .unwrap();
    connection
}

#[tokio::test]
async fn two_appends_committing_in_the_opposite_order_of_their_positions_are_both_published() {
    let system = TestSystem::spawn().await.unwrap();
    let first = customer_with_csm(&system, "Early Position").await;
    let second = customer_with_csm(&system, "Late Position").await;
    system.caught_up().await;

    // `early` takes the lower global position but commits last.
    let mut early = begin_append(&system, first, 2).await;
    let mut late = begin_append(&system, second, 2).await;
    sqlx::query("COMMIT").execute(&mut late).await.unwrap();
    // The relay runs meanwhile; the committed row with the higher position must not move its
    // cursor past the uncommitted one.
    tokio::time::sleep(Duration::from_millis(700)).await;
    sqlx::query("COMMIT").execute(&mut early).await.unwrap();

    let positions: Vec<(String, i64)> =
        sqlx::query_as("SELECT aggregate_id, global_position FROM events WHERE sequence = 2 ORDER BY global_position")
            .fetch_all(&system.pool)
            .await
            .unwrap();
    assert_eq!(
        positions[0].0,
        first.to_string(),
        "the early append holds the lower position"
    );

    system.caught_up().await;
    assert_eq!(touches(&system, first).await, 1);
    assert_eq!(touches(&system, second).await, 1);
    system.stop().await;
}

#[tokio::test]
async fn a_relay_killed_between_publish_and_cursor_update_republishes_and_the_activity_counts_once() {
    let mut system = TestSystem::spawn().await.unwrap();
    let customer = customer_with_csm(&system, "Crashy").await;
    log_email_today(&system, customer).await;
    system.caught_up().await;
    assert_eq!(touches(&system, customer).await, 1);

    // The crash: everything was published and confirmed, but the cursor update never happened.
    system.kill_relay().await;
    sqlx::query("UPDATE relay_cursor SET tx_id = '0', global_position = 0")
        .execute(&system.pool)
        .await
        .unwrap();
    log_email_today(&system, customer).await;
    system.start_relay();

    system.caught_up().await;
    eventually(Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT (SELECT global_position FROM relay_cursor) = (SELECT max(global_position) FROM events)",
        )
        .fetch_one(&system.pool)
        .await
        .unwrap_or(false)
    })
    .await
    .expect("the relay republishes up to the head of the store");
    assert_eq!(
        touches(&system, customer).await,
        2,
        "the republished activity is counted once"
    );
    system.stop().await;
}

#[tokio::test]
async fn a_duplicated_delivery_is_counted_once() {
    let system = TestSystem::spawn().await.unwrap();
    let customer = customer_with_csm(&system, "Echo").await;
    log_email_today(&system, customer).await;
    system.caught_up().await;

    // Publish the stored activity a second time, exactly as the relay published it.
    let row: StoredEvent = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events WHERE aggregate_id = $1 AND event_type = 'ActivityLogged'"
    ))
    .bind(customer.to_string())
    .fetch_one(&system.pool)
    .await
    .unwrap();
    let envelope = row.into_envelope();
    let topology = events::topology::Topology::new(system.name.clone(), 2);
    let connection = events::service::amqp::connect(AMQP_URL, "test-duplicate")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let confirm = channel
        .basic_publish(
            ShortString::from(topology.events_exchange()),
            ShortString::from(topology.routing_key(&envelope.stream_type, &envelope.stream_id, &envelope.event_type)),
            BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            },
            &serde_json::to_vec(&envelope).unwrap(),
            BasicProperties::default().with_message_id(envelope.metadata.event_id.to_string().into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        matches!(confirm, lapin::Confirmation::Ack(None)),
        "duplicate routed: {confirm:?}"
    );
    connection.close(0, ShortString::from("done")).await.ok();

    // The same stream's next event sits behind the duplicate in the same partition queue, so
    // once it is applied the duplicate has been handled.
    log_email_today(&system, customer).await;
    system.caught_up().await;
    assert_eq!(touches(&system, customer).await, 2);
    system.stop().await;
}

#[tokio::test]
async fn a_dropped_broker_connection_is_recovered_without_restarting_anything() {
    let system = TestSystem::spawn().await.unwrap();
    let customer = customer_with_csm(&system, "Flaky Network").await;
    log_email_today(&system, customer).await;
    system.caught_up().await;

    let relay = format!("{}-relay", system.name);
    let projection = format!("{}-projection", system.name);
    let closed = tokio::task::spawn_blocking(move || {
        close_broker_connections(&relay).unwrap() + close_broker_connections(&projection).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        closed, 2,
        "both the relay's and the projectors' connections were closed"
    );

    for _ in 0..5 {
        log_email_today(&system, customer).await;
    }
    system.caught_up().await;
    assert_eq!(touches(&system, customer).await, 6);
    system.stop().await;
}

#[tokio::test]
async fn the_relay_reads_in_transaction_id_order_where_the_ids_gain_a_digit() {
    let mut system = TestSystem::spawn().await.unwrap();
    let big = customer_with_csm(&system, "Six Hundred Touches").await;
    let small = customer_with_csm(&system, "Three Touches").await;
    system.caught_up().await;

    // Every event the relay publishes from now on, counted by a queue of the test's own.
    let connection = lapin::Connection::connect(AMQP_URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let audit = format!("{}.relay-order-audit", system.name);
    channel
        .queue_declare(
            ShortString::from(audit.as_str()),
            lapin::options::QueueDeclareOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            ShortString::from(audit.as_str()),
            ShortString::from(format!("{}.events", system.name)),
            ShortString::from("#"),
            lapin::options::QueueBindOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();

    system.kill_relay().await;
    for _ in 0..3 {
        log_email_today(&system, small).await;
    }
    let activities: Vec<serde_json::Value> = (0..600)
        .map(|n| {
            json!({"kind": "email", "direction": "outbound", "subject": format!("touch {n}"),
                        "occurred_at": Utc::now() - chrono::Duration::minutes(n + 1)})
        })
        .collect();
    system.log_activities(big, activities).await;

    // Transaction ids as a long-lived store has them where they gain a digit (99999, then 100000
    // for a store past that): the earlier events, then the three touches, then the 600 in one
    // transaction. In the ids' text the 600 sort first; in the ids' order they come last. The
    // relay starts over from the beginning of the store.
    let current: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    let boundary = 10_i64.pow(current.ilog10());
    let touches_from = |customer: Uuid| format!("aggregate_id = '{customer}' AND event_type = 'ActivityLogged'");
    for (tx_id, rows) in [
        (boundary - 2, "true".to_owned()),
        (boundary - 1, touches_from(small)),
        (boundary, touches_from(big)),
    ] {
        sqlx::query(&format!("UPDATE events SET tx_id = '{tx_id}'::xid8 WHERE {rows}"))
            .execute(&system.pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE relay_cursor SET tx_id = '0', global_position = 0")
        .execute(&system.pool)
        .await
        .unwrap();
    system.start_relay();
    system.relayed_everything().await;
    system.caught_up().await;
    assert_eq!(touches(&system, small).await, 3);
    assert_eq!(touches(&system, big).await, 600);

    // Each stored event published once, in the order of the ids.
    let stored: Vec<i64> = sqlx::query_scalar("SELECT global_position FROM events ORDER BY tx_id, global_position")
        .fetch_all(&system.pool)
        .await
        .unwrap();
    let mut published = Vec::new();
    while let Some(message) = channel
        .basic_get(
            ShortString::from(audit.as_str()),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
    {
        let envelope: events::EventEnvelope = serde_json::from_slice(&message.delivery.data).unwrap();
        published.push(envelope.global_position);
    }
    assert_eq!(published, stored);
    channel
        .queue_delete(
            ShortString::from(audit.as_str()),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    system.stop().await;
}
