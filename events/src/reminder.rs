//! Events of the `Reminder` stream (docs/DOMAIN.md section 13). A user's reminder has its own
//! stream (id = reminder id); a reminder rule's firings for one customer share a stream whose id
//! is [`rule_stream_id`]. Every firing, snooze, wake, suppression, completion and dismissal is
//! an event, keyed by its occurrence: the same occurrence is never fired twice.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use cqrs_es::DomainEvent;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// When a user's reminder is due.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Once, at an instant.
    Once { at: DateTime<Utc> },
    /// Repeatedly, as an RFC 5545 `RRULE` (`FREQ=WEEKLY;BYDAY=MO,TH;COUNT=10`) from a local
    /// start in the reminder's time zone: each occurrence keeps its wall-clock time across
    /// daylight-saving changes.
    Recurring {
        #[schemars(length(min = 1, max = 500))]
        rrule: String,
        /// Local date and time, `2027-01-04T09:00:00`.
        #[schemars(pattern(r"^(19[7-9][0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"))]
        starts: NaiveDateTime,
    },
    /// A number of days before (negative) or after a date of the customer, at a local time.
    Relative {
        anchor: Anchor,
        #[schemars(range(min = -3650, max = 3650))]
        offset_days: i32,
        /// Local time, `09:00:00`.
        #[schemars(pattern(r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"))]
        at: NaiveTime,
    },
}

/// A date of the customer a relative reminder counts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "date", rename_all = "snake_case", deny_unknown_fields)]
pub enum Anchor {
    RenewalDate,
    ContractStart,
    /// A custom field of kind date, by key.
    CustomField {
        key: String,
    },
}

impl Anchor {
    pub fn describe(&self) -> String {
        match self {
            Anchor::RenewalDate => "the renewal date".into(),
            Anchor::ContractStart => "the contract start".into(),
            Anchor::CustomField { key } => format!("the date in custom field {key}"),
        }
    }
}

/// How a firing came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Once,
    Recurring,
    Relative,
    Rule,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Once => "once",
            Trigger::Recurring => "recurring",
            Trigger::Relative => "relative",
            Trigger::Rule => "rule",
        }
    }
}

/// A condition of the book that makes a rule-based reminder fire for a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleCondition {
    /// No contact (an activity other than a note) for this many days.
    NoContact {
        #[schemars(range(min = 1, max = 365))]
        days: u32,
    },
    /// The latest health score is below this.
    HealthBelow {
        #[schemars(range(min = 0.01, max = 100))]
        score: f64,
    },
    /// The engagement score over the last 30 days is below 40.
    EngagementAtRisk,
    /// An open task of the customer is overdue by this many days.
    TaskOverdue {
        #[schemars(range(min = 1, max = 365))]
        days: u32,
    },
}

/// A reminder rule: what makes it fire, whether it is on. Versioned in the Rules stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReminderRule {
    /// Stable id (`no-contact`): the occurrence keys and the streams of its firings name it.
    #[schemars(pattern(r"^[a-z0-9-]{1,40}$"))]
    pub id: String,
    #[schemars(
        length(min = 1, max = 200),
        pattern(r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$")
    )]
    pub title: String,
    pub condition: RuleCondition,
    pub enabled: bool,
}

/// The rules cstrack ships: defined, and off until an admin turns them on, so that a new
/// installation does not fill every CSM's day with reminders for history nobody reviewed.
pub fn default_rules() -> Vec<ReminderRule> {
    vec![
        ReminderRule {
            id: "no-contact".into(),
            title: "No contact in 14 days".into(),
            condition: RuleCondition::NoContact { days: 14 },
            enabled: false,
        },
        ReminderRule {
            id: "health-below".into(),
            title: "Health below 50".into(),
            condition: RuleCondition::HealthBelow { score: 50.0 },
            enabled: false,
        },
        ReminderRule {
            id: "engagement-at-risk".into(),
            title: "Engagement at risk".into(),
            condition: RuleCondition::EngagementAtRisk,
            enabled: false,
        },
        ReminderRule {
            id: "task-overdue".into(),
            title: "Task overdue by 3 days".into(),
            condition: RuleCondition::TaskOverdue { days: 3 },
            enabled: false,
        },
    ]
}

/// The stream of one rule's firings for one customer.
pub fn rule_stream_id(rule_id: &str, customer_id: Uuid) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x6373_7472_6163_6b5f_7265_6d69_6e64_6572);
    Uuid::new_v5(&NAMESPACE, format!("{rule_id}/{customer_id}").as_bytes())
}

/// A fact that made a reminder fire or wake: what it is, and the event it is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Fact {
    /// What the fact is, in words: `last contact: "QBR" (meeting) on 2026-11-02`.
    pub label: String,
    /// activity, health, task, renewal, engagement.
    pub kind: String,
    /// The activity or task id, where there is one.
    pub id: Option<Uuid>,
    /// The stream and sequence of the event behind it, where there is one.
    pub stream_id: Option<String>,
    pub sequence: Option<i64>,
    pub at: Option<DateTime<Utc>>,
}

/// The rule and its version behind a rule-based firing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RuleRef {
    pub rule_id: String,
    pub rules_version: String,
    pub condition: RuleCondition,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReminderScheduled {
    pub reminder_id: Uuid,
    /// The user the reminder is for.
    pub owner_id: String,
    pub customer_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    pub title: String,
    pub note: Option<String>,
    pub schedule: Schedule,
    /// IANA time zone the schedule's local times are in.
    pub time_zone: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReminderFired {
    pub reminder_id: Uuid,
    /// Unique within the stream: the instant of a scheduled occurrence, `relative:<date>`, or
    /// `<rule>:<episode>` for a rule.
    pub occurrence_key: String,
    pub trigger: Trigger,
    pub rule: Option<RuleRef>,
    pub customer_id: Option<Uuid>,
    /// The user it is for; a rule's firing is for the customer's CSM.
    pub owner_id: Option<String>,
    pub csm_id: Option<Uuid>,
    pub title: String,
    pub due_at: DateTime<Utc>,
    /// Why it fired, in one sentence.
    pub why: String,
    pub facts: Vec<Fact>,
    pub occurred_at: DateTime<Utc>,
}

/// An occurrence that came due while another of the same reminder was snoozed: recorded, not
/// delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReminderSuppressed {
    pub occurrence_key: String,
    pub due_at: DateTime<Utc>,
    /// The snoozed occurrence that held it back.
    pub snoozed_occurrence: String,
    pub why: String,
    pub occurred_at: DateTime<Utc>,
}

/// What ends a snooze besides its time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SnoozeCondition {
    /// An inbound activity of the customer after the snooze.
    CustomerReplies,
    /// The health score falls below `below` (the score when snoozed).
    ScoreDrops { below: f64 },
    /// The renewal is this many days away or fewer.
    RenewalWithin {
        #[schemars(range(min = 1, max = 730))]
        days: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReminderSnoozed {
    pub occurrence_key: String,
    pub until: Option<DateTime<Utc>>,
    pub condition: Option<SnoozeCondition>,
    pub reason: String,
    pub snoozed_by: String,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReminderWoke {
    pub occurrence_key: String,
    /// Why the snooze ended, in one sentence.
    pub because: String,
    pub fact: Option<Fact>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReminderCompleted {
    pub occurrence_key: String,
    pub completed_by: String,
    pub note: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReminderDismissed {
    pub occurrence_key: String,
    pub dismissed_by: String,
    pub reason: String,
    pub occurred_at: DateTime<Utc>,
}

/// A user's reminder stopped: no occurrence fires after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReminderCancelled {
    pub cancelled_by: String,
    pub reason: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReminderEvent {
    ReminderScheduled(ReminderScheduled),
    ReminderFired(ReminderFired),
    ReminderSuppressed(ReminderSuppressed),
    ReminderSnoozed(ReminderSnoozed),
    ReminderWoke(ReminderWoke),
    ReminderCompleted(ReminderCompleted),
    ReminderDismissed(ReminderDismissed),
    ReminderCancelled(ReminderCancelled),
}

impl ReminderEvent {
    pub const STREAM_TYPE: &'static str = "Reminder";
}

impl DomainEvent for ReminderEvent {
    fn event_type(&self) -> String {
        match self {
            ReminderEvent::ReminderScheduled(_) => "ReminderScheduled",
            ReminderEvent::ReminderFired(_) => "ReminderFired",
            ReminderEvent::ReminderSuppressed(_) => "ReminderSuppressed",
            ReminderEvent::ReminderSnoozed(_) => "ReminderSnoozed",
            ReminderEvent::ReminderWoke(_) => "ReminderWoke",
            ReminderEvent::ReminderCompleted(_) => "ReminderCompleted",
            ReminderEvent::ReminderDismissed(_) => "ReminderDismissed",
            ReminderEvent::ReminderCancelled(_) => "ReminderCancelled",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// A time zone by IANA name (`Europe/Berlin`), or why not.
pub fn time_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse::<chrono_tz::Tz>()
        .map_err(|_| format!("{name:?} is not an IANA time zone"))
}

/// The instant of a local time in `zone`: in a daylight-saving gap, the first instant after
/// it; in an overlap, the earlier of the two.
pub fn local_instant(zone: chrono_tz::Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..4 {
        if let Some(at) = zone.from_local_datetime(&probe).earliest() {
            return at.with_timezone(&Utc);
        }
        probe += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&local)
}

/// Largest number of occurrences a recurring reminder may have in a year (an hourly one).
pub const MOST_OCCURRENCES_PER_YEAR: usize = 366 * 24;

/// Checks a recurrence rule: it parses, and no more often than hourly.
pub fn check_rrule(rrule: &str, starts: NaiveDateTime, zone: &str) -> Result<(), String> {
    let set = rrule_set(rrule, starts, zone)?;
    match set.get_rrule().first().map(|rule| rule.get_freq()) {
        Some(rrule::Frequency::Secondly | rrule::Frequency::Minutely) => Err("a reminder recurs at most hourly".into()),
        _ => Ok(()),
    }
}

fn rrule_set(rrule: &str, starts: NaiveDateTime, zone: &str) -> Result<rrule::RRuleSet, String> {
    let zone = time_zone(zone)?;
    let text = rrule.trim().trim_start_matches("RRULE:");
    if text.is_empty() || text.contains(['\n', '\r']) || text.to_ascii_uppercase().contains("DTSTART") {
        return Err("rrule is one RFC 5545 RRULE value, such as FREQ=WEEKLY;BYDAY=MO".into());
    }
    let start = rrule::Tz::Tz(zone)
        .from_local_datetime(&starts)
        .earliest()
        .ok_or_else(|| "the start falls in a daylight-saving gap of the time zone".to_owned())?;
    let rule: rrule::RRule<rrule::Unvalidated> = text.parse().map_err(|error| format!("rrule: {error}"))?;
    rule.build(start).map_err(|error| format!("rrule: {error}"))
}

/// The occurrences of a recurring schedule strictly after `after` and at or before `until`,
/// at most `limit`, in order.
pub fn recurrences(
    rrule: &str,
    starts: NaiveDateTime,
    zone: &str,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: u16,
) -> Result<Vec<DateTime<Utc>>, String> {
    let set = rrule_set(rrule, starts, zone)?;
    let zone = rrule::Tz::UTC;
    let set = set
        .after(after.with_timezone(&zone) + Duration::seconds(1))
        .before(until.with_timezone(&zone));
    Ok(set
        .all(limit)
        .dates
        .into_iter()
        .map(|at| at.with_timezone(&Utc))
        .filter(|at| *at > after && *at <= until)
        .collect())
}

/// The next occurrence of a recurring schedule strictly after `after`, looking ahead up to
/// ten years.
pub fn next_recurrence(
    rrule: &str,
    starts: NaiveDateTime,
    zone: &str,
    after: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, String> {
    Ok(
        recurrences(rrule, starts, zone, after, after + Duration::days(3660), 1)?
            .into_iter()
            .next(),
    )
}

/// The instant a relative schedule falls on for an anchor date.
pub fn relative_instant(anchor: NaiveDate, offset_days: i32, at: NaiveTime, zone: chrono_tz::Tz) -> DateTime<Utc> {
    local_instant(zone, (anchor + Duration::days(i64::from(offset_days))).and_time(at))
}

/// Where a snooze preset ends, from `now` in `zone`: one hour, tomorrow 09:00, next Monday
/// 09:00, one week, or 09:00 on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnoozePreset {
    OneHour,
    TomorrowMorning,
    NextMonday,
    OneWeek,
}

pub const MORNING: NaiveTime = match NaiveTime::from_hms_opt(9, 0, 0) {
    Some(time) => time,
    None => panic!("09:00 is a time"),
};

pub fn snooze_end(preset: SnoozePreset, now: DateTime<Utc>, zone: chrono_tz::Tz) -> DateTime<Utc> {
    let today = now.with_timezone(&zone).date_naive();
    match preset {
        SnoozePreset::OneHour => now + Duration::hours(1),
        SnoozePreset::OneWeek => now + Duration::days(7),
        SnoozePreset::TomorrowMorning => local_instant(zone, (today + Duration::days(1)).and_time(MORNING)),
        SnoozePreset::NextMonday => {
            let days = 7 - i64::from(today.weekday().num_days_from_monday());
            local_instant(zone, (today + Duration::days(days)).and_time(MORNING))
        }
    }
}

/// 09:00 on `day` in `zone`.
pub fn morning_of(day: NaiveDate, zone: chrono_tz::Tz) -> DateTime<Utc> {
    local_instant(zone, day.and_time(MORNING))
}

/// Monday, for tests and messages.
pub const MONDAY: Weekday = Weekday::Mon;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn local(text: &str) -> NaiveDateTime {
        text.parse().unwrap()
    }

    #[test]
    fn a_weekly_reminder_keeps_its_wall_clock_time_across_daylight_saving() {
        // Berlin leaves summer time on 2026-10-25: 09:00 is 07:00 UTC before and 08:00 after.
        let fired = recurrences(
            "FREQ=WEEKLY;BYDAY=MO",
            local("2026-10-12T09:00:00"),
            "Europe/Berlin",
            at("2026-10-01T00:00:00Z"),
            at("2026-11-03T00:00:00Z"),
            10,
        )
        .unwrap();
        assert_eq!(
            fired,
            vec![
                at("2026-10-12T07:00:00Z"),
                at("2026-10-19T07:00:00Z"),
                at("2026-10-26T08:00:00Z"),
                at("2026-11-02T08:00:00Z"),
            ]
        );
        // New York springs forward on 2027-03-14: a daily 09:00 moves from 14:00 to 13:00 UTC.
        let daily = recurrences(
            "FREQ=DAILY",
            local("2027-03-12T09:00:00"),
            "America/New_York",
            at("2027-03-12T00:00:00Z"),
            at("2027-03-15T23:00:00Z"),
            10,
        )
        .unwrap();
        assert_eq!(
            daily,
            vec![
                at("2027-03-12T14:00:00Z"),
                at("2027-03-13T14:00:00Z"),
                at("2027-03-14T13:00:00Z"),
                at("2027-03-15T13:00:00Z"),
            ]
        );
    }

    #[test]
    fn a_monthly_reminder_on_the_31st_skips_shorter_months_as_rfc_5545_says() {
        let fired = recurrences(
            "FREQ=MONTHLY;BYMONTHDAY=31;COUNT=4",
            local("2027-01-31T10:00:00"),
            "UTC",
            at("2027-01-01T00:00:00Z"),
            at("2028-01-01T00:00:00Z"),
            10,
        )
        .unwrap();
        assert_eq!(
            fired,
            vec![
                at("2027-01-31T10:00:00Z"),
                at("2027-03-31T10:00:00Z"),
                at("2027-05-31T10:00:00Z"),
                at("2027-07-31T10:00:00Z"),
            ]
        );
        // The last day of every month instead: BYMONTHDAY=-1.
        let last = recurrences(
            "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3",
            local("2027-01-31T10:00:00"),
            "UTC",
            at("2027-01-01T00:00:00Z"),
            at("2028-01-01T00:00:00Z"),
            10,
        )
        .unwrap();
        assert_eq!(
            last,
            vec![
                at("2027-01-31T10:00:00Z"),
                at("2027-02-28T10:00:00Z"),
                at("2027-03-31T10:00:00Z")
            ]
        );
    }

    #[test]
    fn every_n_until_a_date_and_after_an_instant() {
        let fired = recurrences(
            "FREQ=DAILY;INTERVAL=3;UNTIL=20270110T235959Z",
            local("2027-01-01T08:30:00"),
            "UTC",
            at("2027-01-01T08:30:00Z"),
            at("2027-02-01T00:00:00Z"),
            10,
        )
        .unwrap();
        assert_eq!(
            fired,
            vec![
                at("2027-01-04T08:30:00Z"),
                at("2027-01-07T08:30:00Z"),
                at("2027-01-10T08:30:00Z")
            ]
        );
        assert_eq!(
            next_recurrence(
                "FREQ=DAILY;COUNT=2",
                local("2027-01-01T08:30:00"),
                "UTC",
                at("2027-01-02T08:30:00Z")
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn bad_rules_and_zones_are_refused() {
        let start = local("2027-01-01T08:30:00");
        assert!(check_rrule("FREQ=FORTNIGHTLY", start, "UTC").is_err());
        assert!(check_rrule("FREQ=MINUTELY", start, "UTC").is_err());
        assert!(check_rrule("FREQ=DAILY", start, "Mars/Olympus").is_err());
        assert!(check_rrule("FREQ=DAILY\nRRULE:FREQ=HOURLY", start, "UTC").is_err());
        assert!(check_rrule("FREQ=WEEKLY;BYDAY=MO,TH", start, "Europe/Berlin").is_ok());
    }

    #[test]
    fn snoozes_end_at_the_local_morning() {
        let berlin = time_zone("Europe/Berlin").unwrap();
        // Monday 2026-12-07 22:30 UTC is Monday 23:30 in Berlin.
        let now = at("2026-12-07T22:30:00Z");
        assert_eq!(
            snooze_end(SnoozePreset::OneHour, now, berlin),
            at("2026-12-07T23:30:00Z")
        );
        assert_eq!(
            snooze_end(SnoozePreset::TomorrowMorning, now, berlin),
            at("2026-12-08T08:00:00Z")
        );
        assert_eq!(
            snooze_end(SnoozePreset::NextMonday, now, berlin),
            at("2026-12-14T08:00:00Z")
        );
        assert_eq!(
            snooze_end(SnoozePreset::OneWeek, now, berlin),
            at("2026-12-14T22:30:00Z")
        );
        // 23:30 UTC on Monday is already Tuesday in Berlin.
        assert_eq!(
            snooze_end(SnoozePreset::TomorrowMorning, at("2026-12-07T23:30:00Z"), berlin),
            at("2026-12-09T08:00:00Z")
        );
    }

    #[test]
    fn local_times_in_a_gap_move_past_it() {
        let berlin = time_zone("Europe/Berlin").unwrap();
        // 02:30 on 2027-03-28 does not exist in Berlin; 03:00 local (01:00 UTC) does.
        assert_eq!(
            local_instant(berlin, local("2027-03-28T02:30:00")),
            at("2027-03-28T01:00:00Z")
        );
        assert_eq!(
            relative_instant("2027-04-30".parse().unwrap(), -30, MORNING, berlin),
            at("2027-03-31T07:00:00Z")
        );
        assert_ne!(
            rule_stream_id("no-contact", Uuid::nil()),
            rule_stream_id("health-below", Uuid::nil())
        );
    }
}
