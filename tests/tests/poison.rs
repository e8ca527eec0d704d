//! One stored event this version cannot decode: its stream stops where it stands, visibly and by
//! name; everything else keeps working; a rebuild skips and reports it and leaves nothing behind;
//! once the cause is fixed, `dlq replay` applies the stream.

use std::time::Duration;

use chrono::Utc;
use projection_service::rebuild::RebuildRequest;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tests::{eventually, TestSystem};
use uuid::Uuid;

const STATUS: &str = "{ projectionStatus { projector lagEvents lagSeconds deadLettered
    blockedStreams { streamType streamId sequence eventType ageSeconds deadLetters } } }";

/// The activity of the undecodable event.
const ACTIVITY: &str = "01932f00-0000-7000-8000-000000000042";

/// Appends, past the command path, an `ActivityLogged` whose payload no version can decode.
async fn append_undecodable(system: &TestSystem, customer: Uuid) -> i64 {
    let payload = json!({"ActivityLogged": {"activity_id": ACTIVITY, "kind": 42}});
    system.append_stored(customer, "ActivityLogged", "1", payload).await
}

#[tokio::test]
async fn an_undecodable_event_blocks_its_stream_visibly_and_nothing_else_until_replayed() {
    let system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Pat Poison").await;
    let onboarded = Utc::now() - chrono::Duration::days(20);
    let poisoned = system.onboard("Poisoned", "SMB", "1000", csm, onboarded).await;
    let healthy = system.onboard("Healthy", "SMB", "1000", csm, onboarded).await;
    let today = Utc::now().date_naive();
    system.log_activity(poisoned, "email", today, &[]).await;
    system.caught_up().await;
    let sequence = append_undecodable(&system, poisoned).await;

    // Both projectors give up on it after their redeliveries and say so, by stream.
    eventually(Duration::from_secs(30), || async {
        let status = system.graphql(STATUS, json!({})).await;
        status["projectionStatus"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["blockedStreams"].as_array().unwrap().len() == 1)
    })
    .await
    .expect("both projectors report the blocked stream");
    let status = system.graphql(STATUS, json!({})).await;
    for projector in status["projectionStatus"].as_array().unwrap() {
        let blocked = &projector["blockedStreams"][0];
        assert_eq!(blocked["streamId"], json!(poisoned.to_string()), "{projector}");
        assert_eq!(blocked["sequence"], sequence);
        assert_eq!(blocked["eventType"], "ActivityLogged");
        assert!(blocked["ageSeconds"].as_f64().unwrap() > 0.0);
        assert_eq!(projector["deadLettered"], 1);
        assert_eq!(projector["lagEvents"], 1);
        assert!(projector["lagSeconds"].as_f64().unwrap() > 0.0, "{projector}");
    }

    // Commands on the blocked customer are refused for what it is; others carry on.
    let (status_code, body) = system
        .post(
            &format!("/api/v1/customers/{poisoned}/activities"),
            &json!({"kind": "call", "direction": "outbound", "occurred_at": Utc::now()}),
        )
        .await;
    assert_eq!(status_code, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "stream_unreadable");
    system.log_activity(healthy, "call", today, &[]).await;
    eventually(Duration::from_secs(10), || async {
        system.contacts(healthy).await == 1
    })
    .await
    .unwrap();

    // A rebuild skips the blocked stream from that event on, reports it, equals the live
    // models, and leaves no staging schema.
    let live = tests::read_models(&system.pool, "public").await;
    let request = RebuildRequest {
        projectors: projection_service::projectors(),
        known_at: None,
        snapshot_name: None,
        batch: 5,
        pass_events: 1_000_000,
        fold_workers: None,
    };
    let summary = projection_service::rebuild::rebuild(&system.pool, &system.database_url, &request)
        .await
        .expect("a rebuild succeeds around an undecodable event");
    assert_eq!(summary.blocked.len(), 1);
    assert_eq!(summary.blocked[0].stream_id, poisoned.to_string());
    assert_eq!(summary.blocked[0].sequence, sequence);
    assert_eq!(tests::read_models(&system.pool, "public").await, live);
    let staging: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild\\_%'")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(staging, 0);

    // Replaying before the cause is fixed fails and says why; nothing changes.
    let projectors = projection_service::projectors();
    let report = projection_service::dead_letters::replay(&system.pool, &projectors)
        .await
        .unwrap();
    assert_eq!(report.failed.len(), 2, "{report:?}");
    assert_eq!(system.contacts(poisoned).await, 1);

    // Fixed (as a version that reads the event would): replay applies the stream, once.
    sqlx::query(
        "UPDATE events SET payload = jsonb_build_object('ActivityLogged', jsonb_build_object(
            'activity_id', $3::text, 'kind', 'meeting', 'direction', 'outbound', 'occurred_at', $4::text,
            'duration_minutes', 30, 'participants', '[]'::jsonb, 'subject', 'repaired', 'logged_by', 'import'))
          WHERE aggregate_id = $1 AND sequence = $2",
    )
    .bind(poisoned.to_string())
    .bind(sequence)
    .bind(ACTIVITY)
    .bind(Utc::now().to_rfc3339())
    .execute(&system.pool)
    .await
    .unwrap();
    let report = projection_service::dead_letters::replay(&system.pool, &projectors)
        .await
        .unwrap();
    assert_eq!(
        (report.streams, report.events, report.failed.len()),
        (2, 2, 0),
        "{report:?}"
    );
    assert_eq!(system.contacts(poisoned).await, 2);
    let again = projection_service::dead_letters::replay(&system.pool, &projectors)
        .await
        .unwrap();
    assert_eq!(again.streams, 0, "nothing left open");
    let status: Value = system.graphql(STATUS, json!({})).await;
    for projector in status["projectionStatus"].as_array().unwrap() {
        assert_eq!(projector["blockedStreams"], json!([]), "{projector}");
        assert_eq!(projector["deadLettered"], 0);
        assert_eq!(projector["lagEvents"], 0);
    }
    assert!(system.projected().await.unwrap());
    system.stop().await;
}

/// A message that is no event of the store, garbage or a forged envelope naming a real stream
/// at a position the store does not hold, is a dead letter that blocks no stream: the
/// reconciler still brings that stream up from the store after a loss, and `dlq replay`
/// closes such letters, so the dead-letter count falls back to zero.
#[tokio::test]
async fn a_forged_or_unreadable_message_blocks_no_stream_and_replay_closes_it() {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueuePurgeOptions};
    use lapin::types::ShortString;
    use lapin::BasicProperties;

    let mut system = TestSystem::spawn().await.unwrap();
    let csm = system.register_csm("Fran Forged").await;
    let customer = system
        .onboard("Targeted", "SMB", "1000", csm, Utc::now() - chrono::Duration::days(20))
        .await;
    system.caught_up().await;
    let row: events::service::store::StoredEvent = sqlx::query_as(&format!(
        "SELECT {} FROM events WHERE aggregate_id = $1 AND sequence = 1",
        events::service::store::COLUMNS
    ))
    .bind(customer.to_string())
    .fetch_one(&system.pool)
    .await
    .unwrap();
    let mut forged = row.into_envelope();
    forged.sequence = 999;
    forged.global_position = 999_999;
    let topology = system.topology();
    let connection = events::service::amqp::connect(tests::AMQP_URL, "test-forged")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    for body in [serde_json::to_vec(&forged).unwrap(), b"not an event at all".to_vec()] {
        channel
            .basic_publish(
                ShortString::from(topology.events_exchange()),
                ShortString::from(topology.routing_key(&forged.stream_type, &forged.stream_id, &forged.event_type)),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let projectors = projection_service::projectors().len() as i64;
    eventually(Duration::from_secs(30), || async {
        let letters: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
            .fetch_one(&system.pool)
            .await
            .unwrap();
        letters == 2 * projectors
    })
    .await
    .expect("both messages are dead-lettered for every projector");
    let naming: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters WHERE stream_id IS NOT NULL")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert_eq!(naming, 0, "neither names a stream the store holds it in");

    // A real loss on the targeted stream: the reconciler is not held back by the forgery.
    system.kill_every_projection().await;
    system
        .log_activity(customer, "email", Utc::now().date_naive(), &[])
        .await;
    system.relayed_everything().await;
    for partition in 0..topology.partitions() {
        channel
            .queue_purge(
                topology.projection_queue(partition).as_str().into(),
                QueuePurgeOptions::default(),
            )
            .await
            .unwrap();
    }
    connection.close(0, "done".into()).await.ok();
    system.start_projection().await.unwrap();
    eventually(Duration::from_secs(30), || async {
        system.contacts(customer).await == 1
    })
    .await
    .expect("the lost event is applied from the store");

    let report = projection_service::dead_letters::replay(&system.pool, &projection_service::projectors())
        .await
        .unwrap();
    assert_eq!(report.not_events as i64, 2 * projectors, "{report:?}");
    let status: Value = system.graphql(STATUS, json!({})).await;
    for projector in status["projectionStatus"].as_array().unwrap() {
        assert_eq!(projector["deadLettered"], 0, "{projector}");
        assert_eq!(projector["blockedStreams"], json!([]), "{projector}");
    }
    system.stop().await;
}
