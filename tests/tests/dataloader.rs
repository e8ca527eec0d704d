//! A nested GraphQL query costs a fixed number of SQL statements, whatever the number of
//! customers: nested fields load through DataLoaders, not one query per customer.
//!
//! sqlx emits a `tracing` event per statement; this binary holds this one test, so its process
//! holds only this test's services, and the relay, the projectors and the alert checker are
//! paused while the query runs: every statement counted is the query's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{Days, Utc};
use serde_json::json;
use tests::{uuid, TestSystem};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

struct CountStatements(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> Layer<S> for CountStatements {
    fn on_event(&self, event: &tracing::Event<'_>, _context: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn a_nested_customer_list_costs_the_same_statements_for_5_or_25_customers() {
    let statements = Arc::new(AtomicUsize::new(0));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(CountStatements(statements.clone())))
        .expect("the only subscriber of this process");

    let mut system = TestSystem::spawn_with(tests::TEST_POOL, 3600.0).await.unwrap();
    let csm = system.register_csm("Dana Whitfield").await;
    let today = Utc::now().date_naive();
    for n in 0..25 {
        let id = uuid(
            &system
                .post_ok(
                    "/api/v1/customers",
                    &json!({"name": format!("Customer {n:02}"), "salesforce_id": "0015g00000AbCdEAAV",
                    "tier": "SMB", "arr": "1000", "csm_id": csm, "contract_start": today - Days::new(100),
                    "renewal_date": today + Days::new(100)}),
                )
                .await["customer_id"],
        );
        system.add_stakeholder(id, "Sam", "user").await;
        system.record_health(id, 60.0, today).await;
    }
    system.caught_up().await;
    system.kill_relay().await;
    // The projection service's own reads (its check for streams behind their head) would count too.
    system.kill_every_projection().await;
    let query = "query($n: Int!) { customers(first: $n) { edges { node { name csm { name } stakeholders { name } health { score }
        useCases { total } nps { latest } partnerIds } } } }";
    // A fresh connection pays a one-off statement; warm the pool first.
    system.graphql(query, json!({"n": 1})).await;
    let mut cost = Vec::new();
    for n in [5, 25] {
        let before = statements.load(Ordering::SeqCst);
        let data = system.graphql(query, json!({"n": n})).await;
        cost.push(statements.load(Ordering::SeqCst) - before);
        assert_eq!(data["customers"]["edges"].as_array().unwrap().len(), n);
    }
    // Access for an admin needs no statement; the page is one; each of the six nested fields is one batch.
    assert_eq!(cost, vec![7, 7], "statements for 5 and for 25 customers");
    system.start_relay();
    system.start_projection().await.unwrap();
    system.stop().await;
}
