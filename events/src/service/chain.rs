//! Tamper evidence: every event's hash chains it to the previous event of its stream (computed
//! by the store's trigger in the appending transaction), and the whole store is sealed in
//! digests, one Merkle root per range of global positions.
//!
//! Verification recomputes the hashes here, from the stored text, with the same definition as the
//! trigger (`cstrack_event_hash`): SHA-256 over the previous hash followed by the stream type, id,
//! sequence, event type, version, payload text and metadata text, joined by newlines.

use std::time::Duration;

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// A stored event as its hash covers it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChainedRow {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
    pub hash: Vec<u8>,
}

const CHAINED_COLUMNS: &str = "aggregate_type, aggregate_id, sequence, event_type, event_version, \
     payload::text AS payload, metadata::text AS metadata, hash";

/// The hash of `row` after `previous` (`None` for a stream's first event).
pub fn event_hash(previous: Option<&[u8]>, row: &ChainedRow) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous.unwrap_or_default());
    let sequence = row.sequence.to_string();
    let fields = [
        row.aggregate_type.as_str(),
        row.aggregate_id.as_str(),
        sequence.as_str(),
        row.event_type.as_str(),
        row.event_version.as_str(),
        row.payload.as_str(),
        row.metadata.as_str(),
    ];
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            hasher.update(b"\n");
        }
        hasher.update(field.as_bytes());
    }
    hasher.finalize().into()
}

/// Why a stream's chain is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakReason {
    /// The event's stored text or hash no longer matches its chain: it was altered (or an
    /// earlier event it chains to was).
    Altered,
    /// The sequence is missing: the row was deleted.
    Missing,
    /// The stream ends before the sequence its head records: its last rows were deleted.
    Truncated,
}

/// The first broken link of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Break {
    pub sequence: i64,
    pub reason: BreakReason,
}

/// The outcome of verifying one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamVerification {
    pub stream_type: String,
    pub stream_id: String,
    /// Events checked.
    pub events: i64,
    /// The last sequence the head records.
    pub head_sequence: Option<i64>,
    pub broken: Option<Break>,
}

/// Walks one stream's rows in sequence order.
struct Walker {
    verification: StreamVerification,
    previous: Option<[u8; 32]>,
    expected: i64,
}

impl Walker {
    fn new(stream_type: &str, stream_id: &str, head_sequence: Option<i64>) -> Self {
        Walker {
            verification: StreamVerification {
                stream_type: stream_type.to_owned(),
                stream_id: stream_id.to_owned(),
                events: 0,
                head_sequence,
                broken: None,
            },
            previous: None,
            expected: 1,
        }
    }

    fn step(&mut self, row: &ChainedRow) {
        self.verification.events += 1;
        if self.verification.broken.is_some() {
            return;
        }
        if row.sequence != self.expected {
            self.verification.broken = Some(Break {
                sequence: self.expected,
                reason: BreakReason::Missing,
            });
            return;
        }
        let hash = event_hash(self.previous.as_ref().map(|hash| hash.as_slice()), row);
        if hash.as_slice() != row.hash.as_slice() {
            self.verification.broken = Some(Break {
                sequence: row.sequence,
                reason: BreakReason::Altered,
            });
            return;
        }
        self.previous = Some(hash);
        self.expected += 1;
    }

    fn finish(mut self) -> StreamVerification {
        if self.verification.broken.is_none() {
            if let Some(head) = self.verification.head_sequence {
                if head >= self.expected {
                    self.verification.broken = Some(Break {
                        sequence: self.expected,
                        reason: BreakReason::Truncated,
                    });
                }
            }
        }
        self.verification
    }
}

/// Verifies one stream against its chain and its head.
pub async fn verify_stream(
    pool: &PgPool,
    stream_type: &str,
    stream_id: &str,
) -> Result<StreamVerification, sqlx::Error> {
    let head: Option<i64> =
        sqlx::query_scalar("SELECT sequence FROM stream_heads WHERE aggregate_type = $1 AND aggregate_id = $2")
            .bind(stream_type)
            .bind(stream_id)
            .fetch_optional(pool)
            .await?;
    let mut walker = Walker::new(stream_type, stream_id, head);
    let statement = format!(
        "SELECT {CHAINED_COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
    );
    let mut rows = sqlx::query_as::<_, ChainedRow>(&statement)
        .bind(stream_type)
        .bind(stream_id)
        .fetch(pool);
    while let Some(row) = rows.try_next().await? {
        walker.step(&row);
    }
    Ok(walker.finish())
}

/// Verifies every stream of the store; returns how many streams and events were checked and the
/// broken streams, each with its first broken link.
pub async fn verify_all(pool: &PgPool) -> Result<(usize, i64, Vec<StreamVerification>), sqlx::Error> {
    let heads: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT aggregate_type, aggregate_id, sequence FROM stream_heads")
            .fetch_all(pool)
            .await?;
    let mut heads: std::collections::HashMap<(String, String), i64> =
        heads.into_iter().map(|(t, id, sequence)| ((t, id), sequence)).collect();
    let mut broken = Vec::new();
    let (mut streams, mut events) = (0, 0);
    let mut walker: Option<Walker> = None;
    let statement = format!("SELECT {CHAINED_COLUMNS} FROM events ORDER BY aggregate_type, aggregate_id, sequence");
    let mut rows = sqlx::query_as::<_, ChainedRow>(&statement).fetch(pool);
    let mut finish = |walker: Walker, broken: &mut Vec<StreamVerification>| {
        let verification = walker.finish();
        streams += 1;
        events += verification.events;
        if verification.broken.is_some() {
            broken.push(verification);
        }
    };
    while let Some(row) = rows.try_next().await? {
        let same = walker.as_ref().is_some_and(|walker| {
            walker.verification.stream_type == row.aggregate_type && walker.verification.stream_id == row.aggregate_id
        });
        if !same {
            if let Some(done) = walker.take() {
                finish(done, &mut broken);
            }
            let head = heads.remove(&(row.aggregate_type.clone(), row.aggregate_id.clone()));
            walker = Some(Walker::new(&row.aggregate_type, &row.aggregate_id, head));
        }
        if let Some(walker) = walker.as_mut() {
            walker.step(&row);
        }
    }
    if let Some(done) = walker.take() {
        finish(done, &mut broken);
    }
    // Heads of streams with no row left: the whole stream was deleted.
    for ((stream_type, stream_id), head) in heads {
        let walker = Walker::new(&stream_type, &stream_id, Some(head));
        finish(walker, &mut broken);
    }
    broken.sort_by(|a, b| (&a.stream_type, &a.stream_id).cmp(&(&b.stream_type, &b.stream_id)));
    Ok((streams, events, broken))
}

/// The Merkle root of `leaves`: pairs hashed level by level, an odd last node carried up as is;
/// the root of no leaves is the hash of nothing.
pub fn merkle_root(leaves: &[[u8; 32]]) -> [u8; 32] {
    if leaves.is_empty() {
        return Sha256::digest([]).into();
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => {
                    let mut hasher = Sha256::new();
                    hasher.update(left);
                    hasher.update(right);
                    hasher.finalize().into()
                }
                [single] => *single,
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    level[0]
}

/// A sealed range of the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct StoreDigest {
    pub range_start: i64,
    pub range_end: i64,
    pub events: i32,
    /// Hex.
    #[sqlx(try_from = "Vec<u8>")]
    pub root: HexDigest,
}

/// A SHA-256 digest that reads and writes as hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HexDigest(pub String);

impl From<Vec<u8>> for HexDigest {
    fn from(bytes: Vec<u8>) -> Self {
        HexDigest(hex::encode(bytes))
    }
}

/// The root of the events now stored in `range_start..=range_end`, and how many there are.
///
/// Each leaf is recomputed from the row as it is now: the hash of its stored chain hash followed
/// by its stored text, so altering any stored field of any event in the range (or its hash, or
/// deleting or adding a row) changes the root.
pub async fn range_root(pool: &PgPool, range_start: i64, range_end: i64) -> Result<([u8; 32], i32), sqlx::Error> {
    let statement = format!(
        "SELECT {CHAINED_COLUMNS} FROM events WHERE global_position BETWEEN $1 AND $2 ORDER BY global_position"
    );
    let rows: Vec<ChainedRow> = sqlx::query_as(&statement)
        .bind(range_start)
        .bind(range_end)
        .fetch_all(pool)
        .await?;
    let leaves: Vec<[u8; 32]> = rows.iter().map(|row| event_hash(Some(&row.hash), row)).collect();
    Ok((merkle_root(&leaves), leaves.len() as i32))
}

/// Advisory lock of the sealer ("cstrack" + 3).
const SEALER_LOCK: i64 = 0x6373_7472_6163_6b03;

/// Seals every complete range of `range_size` positions whose events are all committed: the
/// positions drawn so far are read with the transactions then in progress, and only once those
/// have all ended are the ranges up to that position sealed. Returns the digests sealed.
pub async fn seal(pool: &PgPool, range_size: i64, wait: Duration) -> Result<Vec<StoreDigest>, sqlx::Error> {
    let (drawn, xmax): (i64, String) = sqlx::query_as(
        "SELECT COALESCE((SELECT max(global_position) FROM events), 0),
                pg_snapshot_xmax(pg_current_snapshot())::text",
    )
    .fetch_one(pool)
    .await?;
    let started = std::time::Instant::now();
    loop {
        let done: bool = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8")
            .bind(&xmax)
            .fetch_one(pool)
            .await?;
        if done {
            break;
        }
        if started.elapsed() >= wait {
            return Ok(Vec::new());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Positions are drawn before their rows are visible: a transaction still in progress at the
    // first read may hold positions up to `drawn` (a sequence's value is drawn by the insert, so
    // an insert after it ends draws above it), and it has now ended.
    let mut connection = pool.acquire().await?;
    if !sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
        .bind(SEALER_LOCK)
        .fetch_one(&mut *connection)
        .await?
    {
        return Ok(Vec::new());
    }
    let sealed = seal_ranges(pool, &mut connection, range_size, drawn).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(SEALER_LOCK)
        .execute(&mut *connection)
        .await?;
    sealed
}

/// Seals the complete ranges up to `drawn`, each in its own short transaction (a long one would
/// hold back every reader that waits for older transactions to end, the relay first).
async fn seal_ranges(
    pool: &PgPool,
    connection: &mut sqlx::PgConnection,
    range_size: i64,
    drawn: i64,
) -> Result<Vec<StoreDigest>, sqlx::Error> {
    let mut start: i64 = sqlx::query_scalar("SELECT COALESCE(max(range_end), 0) + 1 FROM store_digests")
        .fetch_one(&mut *connection)
        .await?;
    let mut sealed = Vec::new();
    while start + range_size - 1 <= drawn {
        let end = start + range_size - 1;
        let (root, events) = range_root(pool, start, end).await?;
        sqlx::query("INSERT INTO store_digests (range_start, range_end, events, root) VALUES ($1, $2, $3, $4)")
            .bind(start)
            .bind(end)
            .bind(events)
            .bind(root.as_slice())
            .execute(&mut *connection)
            .await?;
        sealed.push(StoreDigest {
            range_start: start,
            range_end: end,
            events,
            root: HexDigest(hex::encode(root)),
        });
        start = end + 1;
    }
    Ok(sealed)
}

/// Every sealed digest, in position order.
pub async fn digests(pool: &PgPool) -> Result<Vec<StoreDigest>, sqlx::Error> {
    sqlx::query_as("SELECT range_start, range_end, events, root FROM store_digests ORDER BY range_start")
        .fetch_all(pool)
        .await
}

/// Each of `digests` (as recorded, or as exported earlier) whose range no longer has that root.
pub async fn verify_digests(pool: &PgPool, digests: &[StoreDigest]) -> Result<Vec<StoreDigest>, sqlx::Error> {
    let mut changed = Vec::new();
    for digest in digests {
        let (root, events) = range_root(pool, digest.range_start, digest.range_end).await?;
        if hex::encode(root) != digest.root.0 || events != digest.events {
            changed.push(digest.clone());
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(n: u8) -> [u8; 32] {
        [n; 32]
    }

    fn pair(left: [u8; 32], right: [u8; 32]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(left);
        hasher.update(right);
        hasher.finalize().into()
    }

    #[test]
    fn merkle_root_pairs_and_carries_the_odd_leaf() {
        assert_eq!(merkle_root(&[leaf(1)]), leaf(1));
        assert_eq!(merkle_root(&[leaf(1), leaf(2)]), pair(leaf(1), leaf(2)));
        assert_eq!(
            merkle_root(&[leaf(1), leaf(2), leaf(3)]),
            pair(pair(leaf(1), leaf(2)), leaf(3))
        );
        assert_ne!(merkle_root(&[leaf(2), leaf(1)]), merkle_root(&[leaf(1), leaf(2)]));
    }

    #[test]
    fn a_hash_covers_every_field_and_the_previous_hash() {
        let row = ChainedRow {
            aggregate_type: "Customer".into(),
            aggregate_id: "c1".into(),
            sequence: 1,
            event_type: "NoteAdded".into(),
            event_version: "1".into(),
            payload: r#"{"a": 1}"#.into(),
            metadata: "{}".into(),
            hash: vec![],
        };
        let expected: [u8; 32] = Sha256::digest("Customer\nc1\n1\nNoteAdded\n1\n{\"a\": 1}\n{}").into();
        assert_eq!(event_hash(None, &row), expected);
        assert_ne!(event_hash(Some(&[0]), &row), expected);
        let altered = ChainedRow {
            payload: r#"{"a": 2}"#.into(),
            ..row
        };
        assert_ne!(event_hash(None, &altered), expected);
    }
}
