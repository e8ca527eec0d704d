//! In-process caches of the portfolio reports' per-customer rows, kept current by the
//! projectors' change marks.
//!
//! Every `projector_checkpoints` row carries the id of the transaction that last wrote it
//! (`changed_xid`, set by a trigger), and a projector writes a stream's checkpoint in the same
//! transaction as the rows the event changed. A cache entry remembers the oldest transaction still
//! running when it was last brought up to date (the `xmin` of that statement's snapshot): every
//! write it could not see then belongs to a transaction at or after that mark. Bringing it up to
//! date again is one indexed read of the checkpoints marked since, and a reload of those
//! customers' rows only.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

/// Entries kept per cache (one per report day or period); the least recently used goes first.
const ENTRIES: usize = 8;

/// A row of a portfolio report: one customer, in the report's order.
pub trait PortfolioRow: Clone {
    fn customer_id(&self) -> Uuid;
    /// What the report orders by before the customer id (the database's collation decides, so
    /// a row whose key changes is not placed here: the whole entry is reloaded).
    fn order_key(&self) -> &str;
}

/// What a projector changed since a mark.
#[derive(Debug, Default)]
struct Changes {
    /// The mark to ask from next time.
    mark: i64,
    customers: Vec<Uuid>,
    /// Streams other than customers' (CSMs, rules, partners) changed: reload everything.
    others: bool,
}

async fn changes(pool: &PgPool, projectors: &[&str], since: Option<i64>) -> Result<Changes, sqlx::Error> {
    let (mark, customers, others): (i64, Vec<String>, bool) = sqlx::query_as(
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8,
                ARRAY(SELECT stream_id FROM projector_checkpoints
                       WHERE projector = ANY ($1) AND changed_xid >= $2::text::xid8 AND stream_type = 'Customer'),
                EXISTS (SELECT 1 FROM projector_checkpoints
                         WHERE projector = ANY ($1) AND changed_xid >= $2::text::xid8 AND stream_type <> 'Customer')",
    )
    .bind(projectors)
    // Before the first load nothing is asked: no transaction id reaches i64::MAX.
    .bind(since.unwrap_or(i64::MAX))
    .fetch_one(pool)
    .await?;
    Ok(Changes {
        mark,
        customers: customers.iter().filter_map(|id| Uuid::parse_str(id).ok()).collect(),
        others,
    })
}

struct Entry<K, V> {
    key: K,
    mark: i64,
    rows: Arc<Vec<V>>,
    used: u64,
}

/// The rows of every customer for a key (a day, a period), loaded once and then refreshed for
/// the customers whose streams the projector has moved since.
pub struct PortfolioCache<K, V> {
    projectors: &'static [&'static str],
    entries: tokio::sync::Mutex<(u64, Vec<Entry<K, V>>)>,
}

impl<K: PartialEq + Clone, V: PortfolioRow> PortfolioCache<K, V> {
    /// A cache of rows that the read models of `projectors` hold.
    pub fn new(projectors: &'static [&'static str]) -> Self {
        Self {
            projectors,
            entries: tokio::sync::Mutex::new((0, Vec::new())),
        }
    }

    /// Every customer's rows for `key`, current as of this call. `load(None)` loads every
    /// customer's rows in the report's order; `load(Some(ids))` those of `ids` (a customer left
    /// out no longer belongs to the report).
    pub async fn rows<F, Fut>(&self, pool: &PgPool, key: &K, load: F) -> Result<Arc<Vec<V>>, sqlx::Error>
    where
        F: Fn(Option<Vec<Uuid>>) -> Fut,
        Fut: Future<Output = Result<Vec<V>, sqlx::Error>>,
    {
        let mut guard = self.entries.lock().await;
        let (clock, entries) = &mut *guard;
        *clock += 1;
        let used = *clock;
        let Some(entry) = entries.iter_mut().find(|entry| entry.key == *key) else {
            let mark = changes(pool, self.projectors, None).await?.mark;
            let rows = Arc::new(load(None).await?);
            if entries.len() >= ENTRIES {
                let oldest = (0..entries.len()).min_by_key(|index| entries[*index].used);
                entries.swap_remove(oldest.expect("a full cache has entries"));
            }
            entries.push(Entry {
                key: key.clone(),
                mark,
                rows: rows.clone(),
                used,
            });
            return Ok(rows);
        };
        entry.used = used;
        let changes = changes(pool, self.projectors, Some(entry.mark)).await?;
        if changes.others {
            entry.rows = Arc::new(load(None).await?);
        } else if !changes.customers.is_empty() {
            let fresh = load(Some(changes.customers.clone())).await?;
            entry.rows = match merged(&entry.rows, &changes.customers, fresh) {
                Some(rows) => Arc::new(rows),
                None => Arc::new(load(None).await?),
            };
        }
        entry.mark = changes.mark;
        Ok(entry.rows.clone())
    }
}

/// `rows` with the rows of `changed` replaced by `fresh`; `None` when a row would move (a new
/// customer, or one whose order key changed).
fn merged<V: PortfolioRow>(rows: &[V], changed: &[Uuid], fresh: Vec<V>) -> Option<Vec<V>> {
    let changed: HashSet<Uuid> = changed.iter().copied().collect();
    let mut fresh: HashMap<Uuid, V> = fresh.into_iter().map(|row| (row.customer_id(), row)).collect();
    let mut result = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.customer_id();
        if !changed.contains(&id) {
            result.push(row.clone());
            continue;
        }
        if let Some(new) = fresh.remove(&id) {
            if new.order_key() != row.order_key() {
                return None;
            }
            result.push(new);
        }
    }
    fresh.is_empty().then_some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Row(Uuid, &'static str, u32);

    impl PortfolioRow for Row {
        fn customer_id(&self) -> Uuid {
            self.0
        }
        fn order_key(&self) -> &str {
            self.1
        }
    }

    fn ids() -> [Uuid; 3] {
        [Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)]
    }

    #[test]
    fn changed_rows_are_replaced_in_place() {
        let [a, b, c] = ids();
        let rows = vec![Row(a, "a", 1), Row(b, "b", 1), Row(c, "c", 1)];
        let merged = merged(&rows, &[b], vec![Row(b, "b", 2)]).unwrap();
        assert_eq!(merged, vec![Row(a, "a", 1), Row(b, "b", 2), Row(c, "c", 1)]);
    }

    #[test]
    fn a_changed_row_left_out_of_the_reload_leaves_the_report() {
        let [a, b, c] = ids();
        let rows = vec![Row(a, "a", 1), Row(b, "b", 1), Row(c, "c", 1)];
        assert_eq!(
            merged(&rows, &[b], vec![]).unwrap(),
            vec![Row(a, "a", 1), Row(c, "c", 1)]
        );
    }

    #[test]
    fn new_customers_and_renames_need_a_full_reload() {
        let [a, b, c] = ids();
        let rows = vec![Row(a, "a", 1), Row(b, "b", 1)];
        assert_eq!(merged(&rows, &[c], vec![Row(c, "c", 1)]), None);
        assert_eq!(merged(&rows, &[a], vec![Row(a, "z", 1)]), None);
    }
}
