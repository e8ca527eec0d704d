//! The reminders read model (docs/DOMAIN.md section 13), kept by the customers projector: each
//! reminder with its next scheduled occurrence, each occurrence with its state and history.
//! One pure transition ([`transition`]) serves both the live projector (row by row) and the
//! rebuild's fold (in memory), so the two cannot disagree. A firing or a wake is also handed to
//! the notification channels once (the inbox keys it by its event), live only: a rebuild
//! re-tells nobody.

use chrono::{DateTime, Duration, DurationRound, Utc};
use events::reminder::*;
use events::EventEnvelope;
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::bulk::{Keyed, TableWriter};
use crate::projector::ProjectionError;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ReminderRow {
    pub reminder_id: Uuid,
    pub kind: String,
    pub owner_id: Option<String>,
    pub csm_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    pub title: String,
    pub note: Option<String>,
    pub schedule: Option<Value>,
    pub time_zone: String,
    pub rule_id: Option<String>,
    pub status: String,
    pub next_due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OccurrenceRow {
    pub reminder_id: Uuid,
    pub occurrence_key: String,
    pub state: String,
    pub owner_id: Option<String>,
    pub csm_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub title: String,
    pub trigger: String,
    pub rule_id: Option<String>,
    pub rules_version: Option<String>,
    pub due_at: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    pub sequence: i64,
    pub why: String,
    pub facts: Value,
    pub snoozed_until: Option<DateTime<Utc>>,
    pub snooze_condition: Option<Value>,
    pub snooze_reason: Option<String>,
    pub snoozed_by: Option<String>,
    pub snoozed_at: Option<DateTime<Utc>>,
    pub history: Value,
    pub closed_at: Option<DateTime<Utc>>,
    pub changed_at: DateTime<Utc>,
}

const REMINDER_COLUMNS: &str = "reminder_id, kind, owner_id, csm_id, customer_id, task_id, title, note, schedule, \
     time_zone, rule_id, status, next_due_at, created_at, changed_at";
const OCCURRENCE_COLUMNS: &str = "reminder_id, occurrence_key, state, owner_id, csm_id, customer_id, title, trigger, \
     rule_id, rules_version, due_at, fired_at, sequence, why, facts, snoozed_until, snooze_condition, snooze_reason, \
     snoozed_by, snoozed_at, history, closed_at, changed_at";

/// The occurrence an event is about, if any.
pub fn occurrence_key(event: &ReminderEvent) -> Option<&str> {
    match event {
        ReminderEvent::ReminderFired(e) => Some(&e.occurrence_key),
        ReminderEvent::ReminderSuppressed(e) => Some(&e.occurrence_key),
        ReminderEvent::ReminderSnoozed(e) => Some(&e.occurrence_key),
        ReminderEvent::ReminderWoke(e) => Some(&e.occurrence_key),
        ReminderEvent::ReminderCompleted(e) => Some(&e.occurrence_key),
        ReminderEvent::ReminderDismissed(e) => Some(&e.occurrence_key),
        ReminderEvent::ReminderScheduled(_) | ReminderEvent::ReminderCancelled(_) => None,
    }
}

/// The first occurrence a new schedule fires: a one-time reminder's instant; a recurring one's
/// first occurrence from the minute it was made (so "daily from 09:00 today", made at 09:00:40,
/// fires today).
pub fn first_due(schedule: &Schedule, zone: &str, created_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match schedule {
        Schedule::Once { at } => Some(*at),
        Schedule::Recurring { rrule, starts } => {
            let minute = created_at.duration_trunc(Duration::minutes(1)).unwrap_or(created_at);
            next_recurrence(rrule, *starts, zone, minute - Duration::seconds(1))
                .ok()
                .flatten()
        }
        Schedule::Relative { .. } => None,
    }
}

/// The occurrence after `due_at`: none for a one-time reminder or a relative one.
fn next_after(row: &ReminderRow, due_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let schedule: Schedule = serde_json::from_value(row.schedule.clone()?).ok()?;
    match schedule {
        Schedule::Recurring { rrule, starts } => next_recurrence(&rrule, starts, &row.time_zone, due_at).ok().flatten(),
        Schedule::Once { .. } | Schedule::Relative { .. } => None,
    }
}

fn step(what: &str, at: DateTime<Utc>, by: Option<&str>, reason: Option<&str>) -> Value {
    json!({"what": what, "at": at, "by": by, "reason": reason})
}

fn push(history: &mut Value, entry: Value) {
    if let Value::Array(entries) = history {
        entries.push(entry);
    } else {
        *history = Value::Array(vec![entry]);
    }
}

/// How one event changes a reminder's row and its occurrence's row.
pub fn transition(
    stream_id: Uuid,
    sequence: i64,
    mut reminder: Option<ReminderRow>,
    mut occurrence: Option<OccurrenceRow>,
    event: &ReminderEvent,
) -> (Option<ReminderRow>, Option<OccurrenceRow>) {
    match event {
        ReminderEvent::ReminderScheduled(e) => {
            let kind = match e.schedule {
                Schedule::Once { .. } => "once",
                Schedule::Recurring { .. } => "recurring",
                Schedule::Relative { .. } => "relative",
            };
            let next_due_at = first_due(&e.schedule, &e.time_zone, e.occurred_at);
            reminder = Some(ReminderRow {
                reminder_id: stream_id,
                kind: kind.into(),
                owner_id: Some(e.owner_id.clone()),
                csm_id: None,
                customer_id: e.customer_id,
                task_id: e.task_id,
                title: e.title.clone(),
                note: e.note.clone(),
                schedule: serde_json::to_value(&e.schedule).ok(),
                time_zone: e.time_zone.clone(),
                rule_id: None,
                status: if kind != "relative" && next_due_at.is_none() {
                    "finished".into()
                } else {
                    "active".into()
                },
                next_due_at,
                created_at: e.occurred_at,
                changed_at: e.occurred_at,
            });
        }
        ReminderEvent::ReminderFired(e) => {
            let row = reminder.get_or_insert_with(|| ReminderRow {
                reminder_id: stream_id,
                kind: "rule".into(),
                owner_id: e.owner_id.clone(),
                csm_id: e.csm_id,
                customer_id: e.customer_id,
                task_id: None,
                title: e.title.clone(),
                note: None,
                schedule: None,
                time_zone: "UTC".into(),
                rule_id: e.rule.as_ref().map(|rule| rule.rule_id.clone()),
                status: "active".into(),
                next_due_at: None,
                created_at: e.occurred_at,
                changed_at: e.occurred_at,
            });
            advance(row, e.trigger, e.due_at, e.occurred_at);
            occurrence = Some(OccurrenceRow {
                reminder_id: stream_id,
                occurrence_key: e.occurrence_key.clone(),
                state: "open".into(),
                owner_id: row.owner_id.clone(),
                csm_id: row.csm_id.or(e.csm_id),
                customer_id: e.customer_id,
                title: e.title.clone(),
                trigger: e.trigger.as_str().into(),
                rule_id: e.rule.as_ref().map(|rule| rule.rule_id.clone()),
                rules_version: e.rule.as_ref().map(|rule| rule.rules_version.clone()),
                due_at: e.due_at,
                fired_at: e.occurred_at,
                sequence,
                why: e.why.clone(),
                facts: serde_json::to_value(&e.facts).unwrap_or(Value::Null),
                snoozed_until: None,
                snooze_condition: None,
                snooze_reason: None,
                snoozed_by: None,
                snoozed_at: None,
                history: json!([step("fired", e.occurred_at, None, Some(&e.why))]),
                closed_at: None,
                changed_at: e.occurred_at,
            });
        }
        ReminderEvent::ReminderSuppressed(e) => {
            let Some(row) = reminder.as_mut() else {
                return (reminder, occurrence);
            };
            let trigger = match row.kind.as_str() {
                "once" => Trigger::Once,
                "recurring" => Trigger::Recurring,
                "relative" => Trigger::Relative,
                _ => Trigger::Rule,
            };
            advance(row, trigger, e.due_at, e.occurred_at);
            occurrence = Some(OccurrenceRow {
                reminder_id: stream_id,
                occurrence_key: e.occurrence_key.clone(),
                state: "suppressed".into(),
                owner_id: row.owner_id.clone(),
                csm_id: row.csm_id,
                customer_id: row.customer_id,
                title: row.title.clone(),
                trigger: trigger.as_str().into(),
                rule_id: row.rule_id.clone(),
                rules_version: None,
                due_at: e.due_at,
                fired_at: e.occurred_at,
                sequence,
                why: e.why.clone(),
                facts: json!([]),
                snoozed_until: None,
                snooze_condition: None,
                snooze_reason: None,
                snoozed_by: None,
                snoozed_at: None,
                history: json!([step(
                    "suppressed",
                    e.occurred_at,
                    None,
                    Some(&format!("occurrence {} is snoozed", e.snoozed_occurrence))
                )]),
                closed_at: Some(e.occurred_at),
                changed_at: e.occurred_at,
            });
        }
        ReminderEvent::ReminderSnoozed(e) => {
            if let Some(row) = occurrence.as_mut() {
                row.state = "snoozed".into();
                row.snoozed_until = e.until;
                row.snooze_condition = e.condition.as_ref().and_then(|c| serde_json::to_value(c).ok());
                row.snooze_reason = Some(e.reason.clone());
                row.snoozed_by = Some(e.snoozed_by.clone());
                row.snoozed_at = Some(e.occurred_at);
                row.changed_at = e.occurred_at;
                push(
                    &mut row.history,
                    step("snoozed", e.occurred_at, Some(&e.snoozed_by), Some(&e.reason)),
                );
            }
        }
        ReminderEvent::ReminderWoke(e) => {
            if let Some(row) = occurrence.as_mut() {
                row.state = "open".into();
                row.snoozed_until = None;
                row.snooze_condition = None;
                row.changed_at = e.occurred_at;
                push(&mut row.history, step("woke", e.occurred_at, None, Some(&e.because)));
            }
        }
        ReminderEvent::ReminderCompleted(e) => {
            if let Some(row) = occurrence.as_mut() {
                row.state = "completed".into();
                row.closed_at = Some(e.occurred_at);
                row.changed_at = e.occurred_at;
                push(
                    &mut row.history,
                    step("completed", e.occurred_at, Some(&e.completed_by), e.note.as_deref()),
                );
            }
        }
        ReminderEvent::ReminderDismissed(e) => {
            if let Some(row) = occurrence.as_mut() {
                row.state = "dismissed".into();
                row.closed_at = Some(e.occurred_at);
                row.changed_at = e.occurred_at;
                push(
                    &mut row.history,
                    step("dismissed", e.occurred_at, Some(&e.dismissed_by), Some(&e.reason)),
                );
            }
        }
        ReminderEvent::ReminderCancelled(e) => {
            if let Some(row) = reminder.as_mut() {
                row.status = "cancelled".into();
                row.next_due_at = None;
                row.changed_at = e.occurred_at;
            }
        }
    }
    (reminder, occurrence)
}

/// Moves a reminder's schedule past an occurrence that fired (or was held back).
fn advance(row: &mut ReminderRow, trigger: Trigger, due_at: DateTime<Utc>, at: DateTime<Utc>) {
    match trigger {
        Trigger::Once => {
            row.next_due_at = None;
            row.status = "finished".into();
        }
        Trigger::Recurring => {
            row.next_due_at = next_after(row, due_at);
            if row.next_due_at.is_none() {
                row.status = "finished".into();
            }
        }
        Trigger::Relative | Trigger::Rule => {}
    }
    row.changed_at = at;
}

fn decode(event: &EventEnvelope) -> Result<(Uuid, ReminderEvent), ProjectionError> {
    let id = Uuid::parse_str(&event.stream_id)
        .map_err(|_| ProjectionError::Poison(format!("bad stream id {}", event.stream_id)))?;
    Ok((id, event.decode()?))
}

/// Applies one Reminder event live: reads the rows it changes, applies [`transition`], writes
/// them back, and hands a firing or a wake to the notification channels.
pub async fn apply(db: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError> {
    let (stream_id, decoded) = decode(event)?;
    let reminder: Option<ReminderRow> = sqlx::query_as(&format!(
        "SELECT {REMINDER_COLUMNS} FROM reminders WHERE reminder_id = $1"
    ))
    .bind(stream_id)
    .fetch_optional(&mut *db)
    .await?;
    let occurrence: Option<OccurrenceRow> = match occurrence_key(&decoded) {
        Some(key) => {
            sqlx::query_as(&format!(
                "SELECT {OCCURRENCE_COLUMNS} FROM reminder_occurrences WHERE reminder_id = $1 AND occurrence_key = $2"
            ))
            .bind(stream_id)
            .bind(key)
            .fetch_optional(&mut *db)
            .await?
        }
        None => None,
    };
    let (reminder, occurrence) = transition(stream_id, event.sequence, reminder, occurrence, &decoded);
    if let Some(row) = &reminder {
        upsert_reminder(db, row).await?;
    }
    if let Some(row) = &occurrence {
        upsert_occurrence(db, row).await?;
    }
    match (&decoded, &occurrence) {
        (ReminderEvent::ReminderFired(fired), Some(row)) => {
            let message = format!("Reminder: {}", fired.title);
            tell(db, event, "reminder.fired", row, &message, &fired.why).await?;
        }
        (ReminderEvent::ReminderWoke(woke), Some(row)) => {
            let message = format!("Reminder back: {}", row.title);
            tell(db, event, "reminder.woke", row, &message, &woke.because).await?;
        }
        _ => {}
    }
    Ok(())
}

async fn upsert_reminder(db: &mut PgConnection, row: &ReminderRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO reminders ({REMINDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (reminder_id) DO UPDATE SET owner_id = EXCLUDED.owner_id, csm_id = EXCLUDED.csm_id,
             status = EXCLUDED.status, next_due_at = EXCLUDED.next_due_at, changed_at = EXCLUDED.changed_at"
    ))
    .bind(row.reminder_id)
    .bind(&row.kind)
    .bind(&row.owner_id)
    .bind(row.csm_id)
    .bind(row.customer_id)
    .bind(row.task_id)
    .bind(&row.title)
    .bind(&row.note)
    .bind(&row.schedule)
    .bind(&row.time_zone)
    .bind(&row.rule_id)
    .bind(&row.status)
    .bind(row.next_due_at)
    .bind(row.created_at)
    .bind(row.changed_at)
    .execute(&mut *db)
    .await?;
    Ok(())
}

async fn upsert_occurrence(db: &mut PgConnection, row: &OccurrenceRow) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO reminder_occurrences ({OCCURRENCE_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
         ON CONFLICT (reminder_id, occurrence_key) DO UPDATE SET state = EXCLUDED.state,
             snoozed_until = EXCLUDED.snoozed_until, snooze_condition = EXCLUDED.snooze_condition,
             snooze_reason = EXCLUDED.snooze_reason, snoozed_by = EXCLUDED.snoozed_by, snoozed_at = EXCLUDED.snoozed_at,
             history = EXCLUDED.history, closed_at = EXCLUDED.closed_at, changed_at = EXCLUDED.changed_at"
    ))
    .bind(row.reminder_id)
    .bind(&row.occurrence_key)
    .bind(&row.state)
    .bind(&row.owner_id)
    .bind(row.csm_id)
    .bind(row.customer_id)
    .bind(&row.title)
    .bind(&row.trigger)
    .bind(&row.rule_id)
    .bind(&row.rules_version)
    .bind(row.due_at)
    .bind(row.fired_at)
    .bind(row.sequence)
    .bind(&row.why)
    .bind(&row.facts)
    .bind(row.snoozed_until)
    .bind(&row.snooze_condition)
    .bind(&row.snooze_reason)
    .bind(&row.snoozed_by)
    .bind(row.snoozed_at)
    .bind(&row.history)
    .bind(row.closed_at)
    .bind(row.changed_at)
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// Records a reminder message once (keyed by its event) with a delivery per channel of each
/// person it is for: its owner, or, for a rule's, the users who are the customer's CSM. In-app,
/// the occurrence itself is the message.
async fn tell(
    db: &mut PgConnection,
    event: &EventEnvelope,
    kind: &str,
    row: &OccurrenceRow,
    message: &str,
    why: &str,
) -> Result<(), sqlx::Error> {
    let message_id = format!("{}/{}/{}", event.stream_type, event.stream_id, event.sequence);
    let fresh = sqlx::query("INSERT INTO notification_inbox (message_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(&message_id)
        .bind(kind)
        .execute(&mut *db)
        .await?
        .rows_affected()
        > 0;
    if !fresh {
        return Ok(());
    }
    let payload = json!({
        "reminder_id": row.reminder_id, "occurrence_key": row.occurrence_key, "customer_id": row.customer_id,
        "message": message, "why": why, "raised_at": row.fired_at, "due_at": row.due_at,
    });
    let people: Vec<(String, Vec<String>, String)> = sqlx::query_as(
        "SELECT user_id, channels, mode FROM notification_preferences
          WHERE user_id = $1 OR ($1 IS NULL AND csm_id = $2)",
    )
    .bind(&row.owner_id)
    .bind(row.csm_id)
    .fetch_all(&mut *db)
    .await?;
    for (user_id, channels, mode) in people {
        for channel in channels {
            let mode = match channel.as_str() {
                "email" if mode == "digest" => "digest",
                "email" | "slack" => "immediate",
                _ => continue,
            };
            sqlx::query(
                "INSERT INTO notification_deliveries (delivery_id, message_id, kind, channel, recipient, mode, payload)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(&message_id)
            .bind(kind)
            .bind(&channel)
            .bind(&user_id)
            .bind(mode)
            .bind(&payload)
            .execute(&mut *db)
            .await?;
        }
    }
    Ok(())
}

/// The reminders read model folded in memory, for rebuilds.
#[derive(Default)]
pub struct ReminderFold {
    reminders: Keyed<Uuid, ReminderRow>,
    occurrences: Keyed<(Uuid, String), OccurrenceRow>,
}

impl ReminderFold {
    pub fn apply(&mut self, stream_id: Uuid, sequence: i64, event: &ReminderEvent) {
        let reminder = self.reminders.get_mut(&stream_id).cloned();
        let key = occurrence_key(event).map(|key| (stream_id, key.to_owned()));
        let occurrence = key.as_ref().and_then(|key| self.occurrences.get_mut(key).cloned());
        let (reminder, occurrence) = transition(stream_id, sequence, reminder, occurrence, event);
        if let Some(row) = reminder {
            self.reminders.upsert(stream_id, row);
        }
        if let (Some(key), Some(row)) = (key, occurrence) {
            self.occurrences.upsert(key, row);
        }
    }

    pub fn into_tables(self) -> Vec<TableWriter> {
        let ReminderFold { reminders, occurrences } = self;
        vec![
            TableWriter::new("reminders", REMINDER_COLUMNS, move |out| {
                for row in reminders.into_rows() {
                    out.row(&[
                        &row.reminder_id,
                        &row.kind,
                        &row.owner_id,
                        &row.csm_id,
                        &row.customer_id,
                        &row.task_id,
                        &row.title,
                        &row.note,
                        &row.schedule,
                        &row.time_zone,
                        &row.rule_id,
                        &row.status,
                        &row.next_due_at,
                        &row.created_at,
                        &row.changed_at,
                    ]);
                }
            }),
            TableWriter::new("reminder_occurrences", OCCURRENCE_COLUMNS, move |out| {
                for row in occurrences.into_rows() {
                    out.row(&[
                        &row.reminder_id,
                        &row.occurrence_key,
                        &row.state,
                        &row.owner_id,
                        &row.csm_id,
                        &row.customer_id,
                        &row.title,
                        &row.trigger,
                        &row.rule_id,
                        &row.rules_version,
                        &row.due_at,
                        &row.fired_at,
                        &row.sequence,
                        &row.why,
                        &row.facts,
                        &row.snoozed_until,
                        &row.snooze_condition,
                        &row.snooze_reason,
                        &row.snoozed_by,
                        &row.snoozed_at,
                        &row.history,
                        &row.closed_at,
                        &row.changed_at,
                    ]);
                }
            }),
        ]
    }
}
