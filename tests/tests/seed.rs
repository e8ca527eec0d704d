//! The demo portfolio records through the same command handlers as the API, lands whole, and a
//! second run adds nothing.

use serde_json::json;
use tests::TestSystem;

#[tokio::test]
async fn the_demo_portfolio_records_once_and_reports() {
    let system = TestSystem::spawn().await.unwrap();
    let handlers = command_service::handlers(&system.pool);
    let today = chrono::Utc::now().date_naive();
    let (customers, events) = command_service::seed::seed(&handlers, today).await.unwrap();
    assert_eq!(customers, 60);
    assert!(events > 3000, "a year of history: {events} events");
    assert_eq!(
        command_service::seed::seed(&handlers, today).await.unwrap(),
        (0, 0),
        "a second run adds nothing"
    );

    let kinds: i64 = sqlx::query_scalar("SELECT count(DISTINCT event_type) FROM events")
        .fetch_one(&system.pool)
        .await
        .unwrap();
    assert!(kinds >= 20, "the seed uses most event types: {kinds}");
    system.caught_up().await;
    let report = system
        .graphql(
            "{ coverageReport { summary { accounts } team { csms } byTier { tier accounts } } }",
            json!({}),
        )
        .await;
    // Sixty customers, one of them churned 15 days ago: the report counts the 59 still in the book.
    assert_eq!(report["coverageReport"]["summary"]["accounts"], 59);
    assert_eq!(report["coverageReport"]["team"]["csms"], 4);
    system.stop().await;
}
