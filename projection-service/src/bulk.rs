//! Set-based application of many events, for rebuilds: each projector folds the events in memory
//! into the final rows of its tables ([`Fold`]), which are then written once, with `COPY`.
//!
//! [`Projector::apply`](crate::projector::Projector::apply), one event at a time in SQL, stays the
//! definition of every read model: a fold mirrors its statements (an `INSERT ... ON CONFLICT DO
//! NOTHING` is [`Keyed::insert`], an `UPDATE ... COALESCE` an in-place change of the row), and
//! the tests hold the two equal, row for row, over every event type.

use std::collections::HashMap;
use std::hash::Hash;
use std::io::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use events::csm::CsmEvent;
use events::customer::CustomerEvent;
use events::metadata::{CommandMetadata, EventMetadata};
use events::{upcast, EventEnvelope};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::projector::ProjectionError;

/// One event, decoded (and upcast) once for every fold.
pub enum Decoded {
    Customer(Uuid, CustomerEvent),
    Csm(Uuid, CsmEvent),
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
            _ => Decoded::Other,
        };
        let map: HashMap<String, String> = serde_json::from_str(&self.metadata).unwrap_or_default();
        let command = CommandMetadata::from_map(&map);
        let envelope = EventEnvelope {
            stream_type: self.aggregate_type,
            stream_id: self.aggregate_id,
            sequence: self.sequence,
            global_position: self.global_position,
            event_type: self.event_type,
            event_version: self.event_version,
            metadata: EventMetadata {
                event_id: self.event_id,
                recorded_at: self.recorded_at,
                actor: command.actor,
                correlation_id: command.correlation_id,
                causation_id: command.causation_id,
                source: command.source,
            },
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

/// A projector's read model held in memory while a rebuild folds the store into it.
pub trait Fold: Send {
    /// Applies one event, exactly as the projector's `apply` would.
    fn apply(&mut self, envelope: &EventEnvelope, event: &Decoded) -> Result<(), ProjectionError>;

    /// A writer of each table's rows.
    fn into_tables(self: Box<Self>) -> Vec<TableWriter>;
}

/// Bytes of `COPY` text handed to the database at a time.
const CHUNK: usize = 1 << 20;

/// Rows of one table in `COPY ... FROM STDIN` text format, handed on in chunks as they are
/// written when the table has a sink.
pub struct CopyTable {
    pub table: &'static str,
    /// The column list, in the order of each row's values.
    pub columns: &'static str,
    pub data: Vec<u8>,
    pub rows: u64,
    sink: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
}

impl CopyTable {
    pub fn new(table: &'static str, columns: &'static str) -> Self {
        CopyTable {
            table,
            columns,
            data: Vec::new(),
            rows: 0,
            sink: None,
        }
    }

    /// A table whose rows go to `sink` a chunk at a time (from a blocking thread).
    pub fn streaming(table: &'static str, columns: &'static str, sink: tokio::sync::mpsc::Sender<Vec<u8>>) -> Self {
        CopyTable {
            sink: Some(sink),
            data: Vec::with_capacity(CHUNK + CHUNK / 4),
            ..CopyTable::new(table, columns)
        }
    }

    pub fn row(&mut self, values: &[&dyn CopyValue]) {
        for (n, value) in values.iter().enumerate() {
            if n > 0 {
                self.data.push(b'\t');
            }
            value.write_copy(&mut self.data);
        }
        self.data.push(b'\n');
        self.rows += 1;
        if self.data.len() >= CHUNK && self.sink.is_some() {
            self.flush();
        }
    }

    /// Hands the rows written so far to the sink.
    pub fn flush(&mut self) {
        if let Some(sink) = &self.sink {
            if !self.data.is_empty() {
                let chunk = std::mem::replace(&mut self.data, Vec::with_capacity(CHUNK + CHUNK / 4));
                // A closed sink means the COPY failed; its error is reported there.
                let _ = sink.blocking_send(chunk);
            }
        }
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
        format!("COPY {schema}.{} ({}) FROM STDIN", self.table, self.columns)
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

/// A value as PostgreSQL reads it in a `COPY` text row, stored exactly as binding it in a
/// statement would store it.
pub trait CopyValue {
    fn write_copy(&self, out: &mut Vec<u8>);
}

/// Escapes text for a `COPY` text field.
fn escaped(text: &str, out: &mut Vec<u8>) {
    if !text.bytes().any(|byte| matches!(byte, b'\\' | b'\t' | b'\n' | b'\r')) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for &byte in text.as_bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(byte),
        }
    }
}

impl CopyValue for str {
    fn write_copy(&self, out: &mut Vec<u8>) {
        escaped(self, out);
    }
}

impl CopyValue for String {
    fn write_copy(&self, out: &mut Vec<u8>) {
        escaped(self, out);
    }
}

impl CopyValue for &str {
    fn write_copy(&self, out: &mut Vec<u8>) {
        escaped(self, out);
    }
}

impl<T: CopyValue> CopyValue for Option<T> {
    fn write_copy(&self, out: &mut Vec<u8>) {
        match self {
            Some(value) => value.write_copy(out),
            None => out.extend_from_slice(b"\\N"),
        }
    }
}

impl CopyValue for Uuid {
    fn write_copy(&self, out: &mut Vec<u8>) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (n, byte) in self.as_bytes().iter().enumerate() {
            if matches!(n, 4 | 6 | 8 | 10) {
                out.push(b'-');
            }
            out.push(HEX[(byte >> 4) as usize]);
            out.push(HEX[(byte & 0xf) as usize]);
        }
    }
}

/// `value` in decimal, at least `width` digits.
fn digits(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut buffer = [b'0'; 20];
    let mut at = buffer.len();
    let mut rest = value;
    loop {
        at -= 1;
        buffer[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let start = at.min(buffer.len() - width.min(buffer.len()));
    out.extend_from_slice(&buffer[start..]);
}

fn integer(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    digits(out, value.unsigned_abs(), 1);
}

impl CopyValue for i64 {
    fn write_copy(&self, out: &mut Vec<u8>) {
        integer(out, *self);
    }
}

impl CopyValue for i32 {
    fn write_copy(&self, out: &mut Vec<u8>) {
        integer(out, i64::from(*self));
    }
}

impl CopyValue for i16 {
    fn write_copy(&self, out: &mut Vec<u8>) {
        integer(out, i64::from(*self));
    }
}

fn date(out: &mut Vec<u8>, day: NaiveDate) {
    if !(0..=9999).contains(&day.year()) {
        let _ = write!(out, "{day}");
        return;
    }
    digits(out, day.year() as u64, 4);
    out.push(b'-');
    digits(out, u64::from(day.month()), 2);
    out.push(b'-');
    digits(out, u64::from(day.day()), 2);
}

impl CopyValue for NaiveDate {
    fn write_copy(&self, out: &mut Vec<u8>) {
        date(out, *self);
    }
}

macro_rules! displayed {
    ($($type:ty),*) => {
        $(impl CopyValue for $type {
            fn write_copy(&self, out: &mut Vec<u8>) {
                let _ = write!(out, "{self}");
            }
        })*
    };
}

// Rust prints the shortest decimal that reads back as the same f64.
displayed!(f64, Decimal);

impl CopyValue for bool {
    fn write_copy(&self, out: &mut Vec<u8>) {
        out.push(if *self { b't' } else { b'f' });
    }
}

impl CopyValue for DateTime<Utc> {
    /// Microseconds, truncated as the binary encoding of a bound parameter truncates them.
    fn write_copy(&self, out: &mut Vec<u8>) {
        let time = self.time();
        date(out, self.date_naive());
        out.push(b' ');
        digits(out, u64::from(time.hour()), 2);
        out.push(b':');
        digits(out, u64::from(time.minute()), 2);
        out.push(b':');
        digits(out, u64::from(time.second()), 2);
        out.push(b'.');
        // A leap second's nanoseconds run past 999,999,999; PostgreSQL has no leap seconds.
        digits(out, u64::from(time.nanosecond().min(999_999_999) / 1_000), 6);
        out.extend_from_slice(b"+00");
    }
}

impl CopyValue for serde_json::Value {
    fn write_copy(&self, out: &mut Vec<u8>) {
        escaped(&self.to_string(), out);
    }
}

/// `uuid[]`.
impl CopyValue for [Uuid] {
    fn write_copy(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (n, id) in self.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            id.write_copy(out);
        }
        out.push(b'}');
    }
}

impl CopyValue for Vec<Uuid> {
    fn write_copy(&self, out: &mut Vec<u8>) {
        self.as_slice().write_copy(out);
    }
}

/// `text[]`: every element quoted, then the whole literal escaped for `COPY`.
impl CopyValue for Vec<String> {
    fn write_copy(&self, out: &mut Vec<u8>) {
        let mut literal = String::from("{");
        for (n, text) in self.iter().enumerate() {
            if n > 0 {
                literal.push(',');
            }
            literal.push('"');
            for c in text.chars() {
                if c == '"' || c == '\\' {
                    literal.push('\\');
                }
                literal.push(c);
            }
            literal.push('"');
        }
        literal.push('}');
        escaped(&literal, out);
    }
}

/// Rows with a primary key, kept in the order they were first inserted (the order the
/// per-event statements would have written them).
pub struct Keyed<K, R> {
    rows: Vec<Option<R>>,
    index: HashMap<K, usize>,
}

impl<K, R> Default for Keyed<K, R> {
    fn default() -> Self {
        Keyed {
            rows: Vec::new(),
            index: HashMap::new(),
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

    fn text(value: &dyn CopyValue) -> String {
        let mut out = Vec::new();
        value.write_copy(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_are_written_as_copy_text() {
        assert_eq!(text(&"a\tb\\c\nd"), "a\\tb\\\\c\\nd");
        assert_eq!(text(&None::<String>), "\\N");
        assert_eq!(
            text(&vec!["x\"y".to_owned(), "z\\".to_owned()]),
            "{\"x\\\\\"y\",\"z\\\\\\\\\"}"
        );
        let at = DateTime::parse_from_rfc3339("2026-03-31T23:59:58.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(text(&at), "2026-03-31 23:59:58.123456+00");
        assert_eq!(text(&0.1_f64), "0.1");
        assert_eq!(text(&-42_i64), "-42");
        assert_eq!(text(&0_i32), "0");
        assert_eq!(text(&NaiveDate::from_ymd_opt(812, 1, 9).unwrap()), "0812-01-09");
        let early = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(text(&early), "2026-01-02 03:04:05.000000+00");
        let id = Uuid::parse_str("0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap();
        assert_eq!(text(&id), "0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
        assert_eq!(text(&vec![Uuid::nil()]), "{00000000-0000-0000-0000-000000000000}");
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
