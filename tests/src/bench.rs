//! Bulk generation of a realistic store for the benchmarks: onboarding, stakeholders, a year of
//! activities and health scores per customer, appended by set-based SQL.

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

/// The portfolio reports as the benchmarks and the load generator read them: (name, query).
pub const PORTFOLIO_REPORTS: [(&str, &str); 3] = [
    (
        "coverageReport",
        "{ coverageReport { summary { accounts underCovered } byTier { coveragePct } gaps { customerId } } }",
    ),
    (
        "engagementMetrics",
        "{ engagementMetrics { customers averageScore distribution { customers } outliers { customerId } } }",
    ),
    (
        "csmWorkload",
        "{ csmWorkload { csms { accounts utilizationPct } rebalancing { customerId } } }",
    ),
];

/// One customer's page: profile, CSM, stakeholders, health and the latest 20 timeline entries.
pub const CUSTOMER_360: &str =
    "query($id: UUID!) { customer(id: $id) { name tier arr csm { name } stakeholders { name } health { score }
        timeline(first: 20) { edges { node { kind summary occurredAt } } } } }";

pub const GENERATE: &str = r#"
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'Customer', md5('c' || c)::uuid::text, 1, 'CustomerOnboarded', '1',
       jsonb_build_object('CustomerOnboarded', jsonb_build_object(
           'customer_id', md5('c' || c)::uuid, 'name', 'Customer ' || lpad(c::text, 5, '0'),
           'salesforce_id', '0015g00000AbCdEAAV',
           'tier', (ARRAY['Enterprise', 'MidMarket', 'SMB', 'SMB', 'MidMarket'])[1 + c % 5],
           'arr', (5000 + (c * 7919) % 200000)::text, 'industry', 'Retail', 'account_manager', 'AM',
           'csm_id', ($1::uuid[])[1 + c % cardinality($1::uuid[])], 'products_owned', '[]'::jsonb,
           'contract_start', (current_date - 400)::text, 'renewal_date', (current_date + c % 365)::text,
           'occurred_at', to_char(now() - interval '400 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))),
       '{"actor_id": "bench", "actor_role": "admin", "source": "import"}'
  FROM generate_series(1, $2) c
 WHERE $3::int > 0;

INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'Customer', md5('c' || c)::uuid::text, 1 + k, 'StakeholderAdded', '1',
       jsonb_build_object('StakeholderAdded', jsonb_build_object(
           'stakeholder_id', md5('s' || c || '-' || k)::uuid, 'name', 'Person ' || k, 'role', 'Director',
           'level', CASE k WHEN 1 THEN 'executive' WHEN 2 THEN 'champion' ELSE 'user' END, 'email', NULL,
           'occurred_at', to_char(now() - interval '399 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))),
       '{"actor_id": "bench", "actor_role": "admin", "source": "import"}'
  FROM generate_series(1, $2) c, generate_series(1, 3) k
 WHERE cardinality($1::uuid[]) > 0 AND $3::int > 0;

INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'Customer', md5('c' || c)::uuid::text, 4 + a, 'ActivityLogged', '1',
       jsonb_build_object('ActivityLogged', jsonb_build_object(
           'activity_id', md5('a' || c || '-' || a)::uuid,
           'kind', (ARRAY['email', 'email', 'meeting', 'call', 'qbr', 'note', 'message', 'email'])[1 + (a + c) % 8],
           'direction', CASE WHEN (a + c) % 3 = 0 THEN 'inbound' ELSE 'outbound' END,
           'occurred_at', to_char(now() - make_interval(days => (($3 - a) * 365 / $3 + c % 3)::int, hours => 1), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           'duration_minutes', CASE WHEN (a + c) % 8 IN (2, 4) THEN 45 END,
           'participants', jsonb_build_array(md5('s' || c || '-' || (1 + a % 3))::uuid),
           'response_received', CASE WHEN (a + c) % 8 IN (0, 1, 7) THEN a % 3 <> 0 END,
           'response_time_hours', CASE WHEN (a + c) % 8 IN (0, 1, 7) AND a % 3 <> 0 THEN 6.0 END,
           'subject', 'touch ' || a, 'logged_by', 'bench')),
       '{"actor_id": "bench", "actor_role": "csm", "source": "outlook"}'
  FROM generate_series(1, $2) c, generate_series(1, $3) a
 WHERE cardinality($1::uuid[]) > 0;

INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'Customer', md5('c' || c)::uuid::text, 4 + $3 + h, 'HealthScoreRecorded', '2',
       jsonb_build_object('HealthScoreRecorded', jsonb_build_object(
           'score', 20 + (c * 37 + h * 11) % 80, 'source', 'gainsight', 'reason', NULL,
           'risk_factors', '[]'::jsonb,
           'measured_at', to_char(now() - make_interval(days => (4 - h) * 90 + 1), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))),
       '{"actor_id": "gainsight-sync", "actor_role": "admin", "source": "gainsight"}'
  FROM generate_series(1, $2) c, generate_series(1, 4) h
 WHERE cardinality($1::uuid[]) > 0;
"#;

/// Appends `customers` customers of 8 + `activities` events each, spread over `csms`, in one
/// transaction. A bulk load: the per-row hash-chain trigger is off for it and the generated rows
/// carry an empty hash (such a store's chains are not verifiable; the benchmarks read it).
pub async fn append_portfolio(pool: &PgPool, csms: &[Uuid], customers: i32, activities: i32) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    for statement in [
        "SET LOCAL session_replication_role = replica",
        "ALTER TABLE events ALTER COLUMN hash SET DEFAULT ''::bytea",
    ] {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    // Every statement takes the CSMs ($1), the customers ($2) and the activities per customer ($3).
    for statement in GENERATE.split(";\n").filter(|s| !s.trim().is_empty()) {
        sqlx::query(statement)
            .bind(csms)
            .bind(customers)
            .bind(activities)
            .execute(&mut *tx)
            .await
            .context("generating events")?;
    }
    sqlx::query("ALTER TABLE events ALTER COLUMN hash DROP DEFAULT")
        .execute(&mut *tx)
        .await?;
    // Stream heads, as the trigger would have kept them.
    sqlx::query(
        "INSERT INTO stream_heads (aggregate_type, aggregate_id, sequence, hash)
         SELECT aggregate_type, aggregate_id, max(sequence), ''::bytea FROM events
          WHERE aggregate_type = 'Customer' GROUP BY aggregate_type, aggregate_id
         ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET sequence = EXCLUDED.sequence",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// HTTP limits that never bind: benchmarks measure the service, not its rate limit.
pub const UNLIMITED: events::service::http::HttpLimits = events::service::http::HttpLimits {
    rate_limit_per_second: 1e12,
    rate_limit_burst: 1e12,
    header_read_seconds: 60,
    request_seconds: 600,
};

/// Streams every event out in position order with `COPY (SELECT ... ORDER BY global_position)
/// TO STDOUT`, PostgreSQL's own rate of reading the store out: rows, bytes and the time taken.
pub async fn copy_events(database_url: &str) -> anyhow::Result<(u64, u64, std::time::Duration)> {
    use futures_util::StreamExt;
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(database_url).await?;
    let started = std::time::Instant::now();
    let mut copied = 0_u64;
    let mut bytes = 0_u64;
    {
        let mut out = connection
            .copy_out_raw(
                "COPY (SELECT global_position, event_id, aggregate_type, aggregate_id, sequence, event_type,
                              event_version, payload, metadata, recorded_at
                         FROM events ORDER BY global_position) TO STDOUT",
            )
            .await?;
        while let Some(chunk) = out.next().await {
            let chunk = chunk?;
            bytes += chunk.len() as u64;
            copied += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        }
    }
    let elapsed = started.elapsed();
    connection.close().await.ok();
    Ok((copied, bytes, elapsed))
}

/// Rebuilds every projection from the store, in passes of up to 4,000,000 events read 50,000 at
/// a time, and switches the rebuilt tables in.
pub async fn rebuild_all(system: &crate::TestSystem) -> anyhow::Result<projection_service::rebuild::RebuildSummary> {
    let request = projection_service::rebuild::RebuildRequest {
        projectors: projection_service::projectors(),
        known_at: None,
        snapshot_name: None,
        batch: 50_000,
        pass_events: 4_000_000,
        fold_workers: None,
    };
    projection_service::rebuild::rebuild(&system.pool, &system.database_url, &request).await
}
