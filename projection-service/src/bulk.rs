//! Set-based application of many events, for rebuilds: each projector folds the events in memory
//! into the final rows of its tables ([`Fold`]), which are then written once, with `COPY`.
//!
//! [`Projector::apply`](crate::projector::Projector::apply), one event at a time in SQL, stays the
//! definition of every read model: a fold mirrors its statements (an `INSERT ... ON CONFLICT DO
//! NOTHING` is [`Keyed::insert`], an `UPDATE ... COALESCE` an in-place change of the row), and
//! the tests hold the two equal, row for row, over every event type.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hash;

use chrono::{DateTime, NaiveDate, Utc};
use events::csm::CsmEvent;
use events::customer::CustomerEvent;
use events::metadata::{Actor, CommandMetadata, EventMetadata, Source};
use events::{upcast, EventEnvelope};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::projector::ProjectionError;

/// One event, decoded (and upcast) once for every fold.
pub enum Decoded {
    Customer(Uuid, CustomerEvent),
    Csm(Uuid, CsmEvent),
    Partner(Uuid, events::partner::PartnerEvent),
    Reminder(Uuid, events::reminder::ReminderEvent),
    /// Streams no fold reads. Alert acknowledgments are among them: they update the alert
    /// checker's `alerts` table, which is not a projector's and is never rebuilt.
    Other,
}

/// One stored event as a rebuild reads it: payload and metadata as JSON text, parsed straight
/// into the typed event (through a `Value` only when it must be upcast).
#[derive(sqlx::FromRow)]
pub struct BulkRow {
    pub global_position: i64,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: DateTime<Utc>,
}

impl BulkRow {
    /// The columns, for `SELECT {COLUMNS} FROM events ...`.
    pub const COLUMNS: &'static str = "global_position, event_id, aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload::text AS payload, metadata::text AS metadata, recorded_at";

    /// The envelope (its payload left out: the decoded event carries it) and the decoded event.
    pub fn decode(self) -> Result<(EventEnvelope, Decoded), ProjectionError> {
        let id = || {
            Uuid::parse_str(&self.aggregate_id)
                .map_err(|_| ProjectionError::Poison(format!("bad stream id {}", self.aggregate_id)))
        };
        let decoded = match self.aggregate_type.as_str() {
            CustomerEvent::STREAM_TYPE => Decoded::Customer(id()?, self.typed()?),
            CsmEvent::STREAM_TYPE => Decoded::Csm(id()?, self.typed()?),
            events::partner::PartnerEvent::STREAM_TYPE => Decoded::Partner(id()?, self.typed()?),
            events::reminder::ReminderEvent::STREAM_TYPE => Decoded::Reminder(id()?, self.typed()?),
            _ => Decoded::Other,
        };
        let command = metadata(&self.metadata);
        let envelope = EventEnvelope {
            stream_type: self.aggregate_type,
            stream_id: self.aggregate_id,
            sequence: self.sequence,
            global_position: self.global_position,
            event_type: self.event_type,
            event_version: self.event_version,
            metadata: EventMetadata::stored(self.event_id, self.recorded_at, command),
            payload: serde_json::Value::Null,
        };
        Ok((envelope, decoded))
    }

    fn typed<E: serde::de::DeserializeOwned>(&self) -> Result<E, ProjectionError> {
        if upcast::is_current(&self.event_type, &self.event_version) {
            return Ok(serde_json::from_str(&self.payload)?);
        }
        let stored: serde_json::Value = serde_json::from_str(&self.payload)?;
        Ok(serde_json::from_value(upcast::to_current(
            &self.event_type,
            &self.event_version,
            stored,
        ))?)
    }
}

/// The command metadata stored with an event, read without building a map.
fn metadata(text: &str) -> CommandMetadata {
    #[derive(serde::Deserialize)]
    struct Stored<'a> {
        #[serde(borrow)]
        actor_id: Option<Cow<'a, str>>,
        #[serde(borrow)]
        actor_role: Option<Cow<'a, str>>,
        #[serde(borrow)]
        correlation_id: Option<Cow<'a, str>>,
        #[serde(borrow)]
        causation_id: Option<Cow<'a, str>>,
        #[serde(borrow)]
        source: Option<Cow<'a, str>>,
        #[serde(borrow)]
        idempotency_key: Option<Cow<'a, str>>,
    }
    let Ok(stored) = serde_json::from_str::<Stored>(text) else {
        return CommandMetadata::from_map(&HashMap::new());
    };
    let uuid = |value: &Option<Cow<str>>| {
        value
            .as_deref()
            .and_then(|text| Uuid::parse_str(text).ok())
            .unwrap_or(Uuid::nil())
    };
    CommandMetadata {
        actor: Actor {
            id: stored.actor_id.as_deref().unwrap_or("unknown").to_owned(),
            role: stored.actor_role.as_deref().unwrap_or("unknown").to_owned(),
        },
        correlation_id: uuid(&stored.correlation_id),
        causation_id: uuid(&stored.causation_id),
        source: stored
            .source
            .as_deref()
            .and_then(Source::parse)
            .unwrap_or(Source::System),
        idempotency_key: stored.idempotency_key.map(Cow::into_owned),
    }
}

/// A projector's read model held in memory while a rebuild folds the store into it.
pub trait Fold: Send {
    /// Applies one event, exactly as the projector's `apply` would.
    fn apply(&mut self, envelope: &EventEnvelope, event: &Decoded) -> Result<(), ProjectionError>;

    /// A writer of each table's rows.
    fn into_tables(self: Box<Self>) -> Vec<TableWriter>;
}

/// Bytes of `COPY` data handed to the database at a time.
const CHUNK: usize = 1 << 20;

/// The binary `COPY` signature, flags and header extension.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Rows of one table in `COPY ... FROM STDIN (FORMAT binary)` format (binary, so that the
/// server parses no text: uuids, timestamps and arrays dominate these tables), handed on in
/// chunks as they are written when the table has a sink.
pub struct CopyTable {
    pub table: &'static str,
    /// The column list, in the order of each row's values.
    pub columns: &'static str,
    pub data: Vec<u8>,
    pub rows: u64,
    sink: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
}

impl CopyTable {
    /// Rows kept in memory, to be handed to a streaming table later ([`CopyTable::into_writer`]).
    pub fn new(table: &'static str, columns: &'static str) -> Self {
        CopyTable {
            table,
            columns,
            data: Vec::new(),
            rows: 0,
            sink: None,
        }
    }

    /// A whole `COPY` stream (header, rows, trailer), handed to `sink` a chunk at a time from a
    /// blocking thread.
    pub fn streaming(table: &'static str, columns: &'static str, sink: tokio::sync::mpsc::Sender<Vec<u8>>) -> Self {
        let mut data = Vec::with_capacity(CHUNK + CHUNK / 4);
        data.extend_from_slice(HEADER);
        CopyTable {
            sink: Some(sink),
            data,
            ..CopyTable::new(table, columns)
        }
    }

    pub fn row(&mut self, values: &[&dyn CopyValue]) {
        self.data.extend_from_slice(&(values.len() as i16).to_be_bytes());
        for value in values {
            value.write_copy(&mut self.data);
        }
        self.rows += 1;
        if self.data.len() >= CHUNK && self.sink.is_some() {
            self.flush();
        }
    }

    /// Hands the rows written so far to the sink.
    fn flush(&mut self) {
        if let Some(sink) = &self.sink {
            if !self.data.is_empty() {
                let chunk = std::mem::replace(&mut self.data, Vec::with_capacity(CHUNK + CHUNK / 4));
                // A closed sink means the COPY failed; its error is reported there.
                let _ = sink.blocking_send(chunk);
            }
        }
    }

    /// Ends a streaming table: the trailer, and the last chunk. Returns the rows written.
    pub fn finish(mut self) -> u64 {
        self.data.extend_from_slice(&(-1_i16).to_be_bytes());
        self.flush();
        self.rows
    }

    /// Rows written without a sink, handed on as they are.
    pub fn into_writer(self) -> TableWriter {
        let (data, rows) = (self.data, self.rows);
        TableWriter::new(self.table, self.columns, move |out| {
            for chunk in data.chunks(CHUNK) {
                out.data.extend_from_slice(chunk);
                out.flush();
            }
            out.rows += rows;
        })
    }

    /// The `COPY` statement that loads these rows into `schema`.
    pub fn statement(&self, schema: &str) -> String {
        format!(
            "COPY {schema}.{} ({}) FROM STDIN (FORMAT binary)",
            self.table, self.columns
        )
    }
}

/// What writes one table's rows: run on a blocking thread while the rows already written
/// stream to the database.
pub struct TableWriter {
    pub table: &'static str,
    pub columns: &'static str,
    pub fill: Box<dyn FnOnce(&mut CopyTable) + Send>,
}

impl TableWriter {
    pub fn new(table: &'static str, columns: &'static str, fill: impl FnOnce(&mut CopyTable) + Send + 'static) -> Self {
        TableWriter {
            table,
            columns,
            fill: Box::new(fill),
        }
    }
}

/// A value as one field of a binary `COPY` row (its length, then PostgreSQL's binary form),
/// stored exactly as binding it in a statement would store it.
pub trait CopyValue {
    fn write_copy(&self, out: &mut Vec<u8>);
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

impl CopyValue for str {
    fn write_copy(&self, out: &mut Vec<u8>) {
        field(out, self.as_bytes());
    }
}

impl CopyValue for String {
    fn write_copy(&self, out: &mut Vec<u8>) {
        field(out, self.as_bytes());
    }
}

impl CopyValue for &str {
    fn write_copy(&self, out: &mut Vec<u8>) {
        field(out, self.as_bytes());
    }
}

impl<T: CopyValue> CopyValue for Option<T> {
    fn write_copy(&self, out: &mut Vec<u8>) {
        match self {
            Some(value) => value.write_copy(out),
            None => out.extend_from_slice(&(-1_i32).to_be_bytes()),
        }
    }
}

impl CopyValue for Uuid {
    fn write_copy(&self, out: &mut Vec<u8>) {
        field(out, self.as_bytes());
    }
}

macro_rules! big_endian {
    ($($type:ty),*) => {
        $(impl CopyValue for $type {
            fn write_copy(&self, out: &mut Vec<u8>) {
                field(out, &self.to_be_bytes());
            }
        })*
    };
}

big_endian!(i16, i32, i64, f64);

impl CopyValue for bool {
    fn write_copy(&self, out: &mut Vec<u8>) {
        field(out, &[u8::from(*self)]);
    }
}

/// PostgreSQL counts days and microseconds from 2000-01-01.
fn postgres_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid date")
}

impl CopyValue for NaiveDate {
    fn write_copy(&self, out: &mut Vec<u8>) {
        field(out, &((*self - postgres_epoch()).num_days() as i32).to_be_bytes());
    }
}

impl CopyValue for DateTime<Utc> {
    /// Microseconds, truncated as the binary encoding of a bound parameter truncates them.
    fn write_copy(&self, out: &mut Vec<u8>) {
        let since = self.naive_utc() - postgres_epoch().and_time(chrono::NaiveTime::MIN);
        let micros = since.num_microseconds().unwrap_or(i64::MAX);
        field(out, &micros.to_be_bytes());
    }
}

impl CopyValue for Decimal {
    /// `numeric`: base-10000 digits with a weight, a sign and a display scale.
    fn write_copy(&self, out: &mut Vec<u8>) {
        let text = self.abs().to_string();
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
        let whole = whole.trim_start_matches('0');
        let mut decimal = "0".repeat((4 - whole.len() % 4) % 4);
        decimal.push_str(whole);
        let whole_groups = decimal.len() / 4;
        decimal.push_str(fraction);
        decimal.push_str(&"0".repeat((4 - decimal.len() % 4) % 4));
        let mut groups: Vec<i16> = decimal
            .as_bytes()
            .chunks(4)
            .map(|group| group.iter().fold(0_i16, |n, digit| n * 10 + i16::from(digit - b'0')))
            .collect();
        let mut weight = whole_groups as i16 - 1;
        let leading = groups.iter().take_while(|group| **group == 0).count();
        groups.drain(..leading);
        weight -= leading as i16;
        while groups.last() == Some(&0) {
            groups.pop();
        }
        if groups.is_empty() {
            weight = 0;
        }
        let sign: u16 = if self.is_sign_negative() && !groups.is_empty() {
            0x4000
        } else {
            0
        };
        let mut bytes = Vec::with_capacity(8 + 2 * groups.len());
        bytes.extend_from_slice(&(groups.len() as i16).to_be_bytes());
        bytes.extend_from_slice(&weight.to_be_bytes());
        bytes.extend_from_slice(&sign.to_be_bytes());
        bytes.extend_from_slice(&(fraction.len() as i16).to_be_bytes());
        for group in groups {
            bytes.extend_from_slice(&group.to_be_bytes());
        }
        field(out, &bytes);
    }
}

impl CopyValue for serde_json::Value {
    /// `jsonb`: a version byte, then the text.
    fn write_copy(&self, out: &mut Vec<u8>) {
        let mut bytes = vec![1_u8];
        serde_json::to_writer(&mut bytes, self).expect("a Value always serializes");
        field(out, &bytes);
    }
}

/// `jsonb` from JSON text already serialized.
pub struct JsonText(pub Vec<u8>);

impl CopyValue for JsonText {
    fn write_copy(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.0.len() as i32 + 1).to_be_bytes());
        out.push(1);
        out.extend_from_slice(&self.0);
    }
}

/// A one-dimensional array of `oid` elements, each already written as a field.
fn array(out: &mut Vec<u8>, oid: u32, count: usize, elements: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&i32::from(count > 0).to_be_bytes()); // dimensions
    bytes.extend_from_slice(&0_i32.to_be_bytes()); // no nulls
    bytes.extend_from_slice(&oid.to_be_bytes());
    if count > 0 {
        bytes.extend_from_slice(&(count as i32).to_be_bytes());
        bytes.extend_from_slice(&1_i32.to_be_bytes()); // lower bound
        elements(&mut bytes);
    }
    field(out, &bytes);
}

/// `uuid[]`.
impl CopyValue for Vec<Uuid> {
    fn write_copy(&self, out: &mut Vec<u8>) {
        array(out, 2950, self.len(), |bytes| {
            for id in self {
                id.write_copy(bytes);
            }
        });
    }
}

/// `text[]`.
impl CopyValue for Vec<String> {
    fn write_copy(&self, out: &mut Vec<u8>) {
        array(out, 25, self.len(), |bytes| {
            for text in self {
                text.write_copy(bytes);
            }
        });
    }
}

/// Rows with a primary key, kept in the order they were first inserted (the order the
/// per-event statements would have written them).
pub struct Keyed<K, R> {
    rows: Vec<Option<R>>,
    index: HashMap<K, usize, foldhash::fast::RandomState>,
}

impl<K, R> Default for Keyed<K, R> {
    fn default() -> Self {
        Keyed {
            rows: Vec::new(),
            index: HashMap::default(),
        }
    }
}

impl<K: Hash + Eq, R> Keyed<K, R> {
    /// `INSERT ... ON CONFLICT DO NOTHING`.
    pub fn insert(&mut self, key: K, row: R) {
        if !self.index.contains_key(&key) {
            self.index.insert(key, self.rows.len());
            self.rows.push(Some(row));
        }
    }

    /// `INSERT ... ON CONFLICT DO UPDATE` setting every column.
    pub fn upsert(&mut self, key: K, row: R) {
        match self.index.get(&key) {
            Some(&at) => self.rows[at] = Some(row),
            None => {
                self.index.insert(key, self.rows.len());
                self.rows.push(Some(row));
            }
        }
    }

    /// The row an `UPDATE ... WHERE <key>` changes, if there is one.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut R> {
        let at = *self.index.get(key)?;
        self.rows[at].as_mut()
    }

    /// `DELETE ... WHERE <key>`.
    pub fn remove(&mut self, key: &K) {
        if let Some(at) = self.index.remove(key) {
            self.rows[at] = None;
        }
    }

    pub fn into_rows(self) -> impl Iterator<Item = R> {
        self.rows.into_iter().flatten()
    }

    /// The rows with their keys, in the order they were first inserted.
    pub fn into_keyed_rows(self) -> impl Iterator<Item = (K, R)> {
        let mut keys: Vec<(usize, K)> = self.index.into_iter().map(|(key, at)| (at, key)).collect();
        keys.sort_unstable_by_key(|(at, _)| *at);
        let mut rows = self.rows;
        keys.into_iter()
            .filter_map(move |(at, key)| rows[at].take().map(|row| (key, row)))
    }
}

/// Replaces `target` with `value` when there is one: the fold's `COALESCE($n, column)`.
pub fn coalesce<T: Clone>(target: &mut T, value: &Option<T>) {
    if let Some(value) = value {
        *target = value.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(value: &dyn CopyValue) -> Vec<u8> {
        let mut out = Vec::new();
        value.write_copy(&mut out);
        out
    }

    /// The length-prefixed field and the body of a value.
    fn body(value: &dyn CopyValue) -> Vec<u8> {
        let out = bytes(value);
        let length = i32::from_be_bytes(out[..4].try_into().unwrap());
        assert_eq!(length as usize, out.len() - 4);
        out[4..].to_vec()
    }

    fn numeric(text: &str) -> (i16, i16, u16, i16, Vec<i16>) {
        let out = body(&text.parse::<Decimal>().unwrap());
        let word = |at: usize| i16::from_be_bytes([out[at], out[at + 1]]);
        let digits = (0..word(0) as usize).map(|n| word(8 + 2 * n)).collect();
        (word(0), word(2), word(4) as u16, word(6), digits)
    }

    #[test]
    fn numerics_are_base_10000_digits_with_weight_sign_and_scale() {
        assert_eq!(numeric("12000.50"), (3, 1, 0, 2, vec![1, 2000, 5000]));
        assert_eq!(numeric("0.05"), (1, -1, 0, 2, vec![500]));
        assert_eq!(numeric("-99000"), (2, 1, 0x4000, 0, vec![9, 9000]));
        assert_eq!(numeric("90000"), (1, 1, 0, 0, vec![9]));
        assert_eq!(numeric("0.00"), (0, 0, 0, 2, vec![]));
        assert_eq!(numeric("123456789.1234"), (4, 2, 0, 4, vec![1, 2345, 6789, 1234]));
    }

    #[test]
    fn values_are_written_in_postgres_binary_form() {
        assert_eq!(bytes(&None::<String>), (-1_i32).to_be_bytes());
        assert_eq!(body(&"héllo"), "héllo".as_bytes());
        assert_eq!(body(&NaiveDate::from_ymd_opt(2000, 1, 2).unwrap()), 1_i32.to_be_bytes());
        let at = DateTime::parse_from_rfc3339("2000-01-01T00:00:01.000001999Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(body(&at), 1_000_001_i64.to_be_bytes());
        assert_eq!(body(&serde_json::json!({"a": 1})), b"\x01{\"a\":1}");
        let empty: Vec<Uuid> = Vec::new();
        assert_eq!(body(&empty), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b, 0x86]);
        let one = body(&vec!["x".to_owned()]);
        assert_eq!(
            one,
            [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, b'x']
        );
    }

    #[test]
    fn keyed_rows_keep_insertion_order_and_statement_semantics() {
        let mut rows: Keyed<u8, &str> = Keyed::default();
        rows.insert(2, "two");
        rows.insert(1, "one");
        rows.insert(2, "ignored");
        rows.upsert(1, "uno");
        rows.remove(&2);
        rows.insert(2, "again");
        *rows.get_mut(&1).unwrap() = "eins";
        assert_eq!(rows.into_rows().collect::<Vec<_>>(), ["eins", "again"]);
    }
}
