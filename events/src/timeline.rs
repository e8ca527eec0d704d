//! How a customer's events read in its timeline (docs/DOMAIN.md, "Timeline"): which events are
//! shown, under which kind, with which one-line summary. The timeline is served from the store
//! itself (a customer's stream, read by when each event happened), so these rules are applied as
//! it is read, not stored beside the events.

use crate::customer::{ActivityKind, CustomerEvent};

/// An event as the timeline shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: &'static str,
    pub summary: String,
    /// The event's body (without its type tag).
    pub detail: serde_json::Value,
}

/// The timeline kind of a customer event type; `note` tells a logged note from another
/// activity. `None` for the events the timeline leaves out: custom-field values (shown only to
/// the roles their definitions name, while every reader of the customer sees the timeline) and
/// the bookkeeping of profile, partners, stakeholders and report edits.
pub fn kind(event_type: &str, note: bool) -> Option<&'static str> {
    Some(match event_type {
        "ActivityLogged" if note => "note",
        "ActivityLogged" | "ActivityCorrected" | "ActivityRetracted" => "activity",
        "HealthScoreRecorded" | "HealthScoreRetracted" => "health",
        "TaskCreated" | "TaskUpdated" | "TaskReassigned" | "TaskStatusChanged" | "TaskCompleted" | "TaskCancelled" => {
            "task"
        }
        "PartnerReportSubmitted" | "PartnerReportDrafted" => "partner_report",
        "MilestoneRecorded" => "milestone",
        "IssueLogged" | "IssueResolved" => "issue",
        "EscalationRaised" | "EscalationResolved" => "escalation",
        "AdoptionStageChanged" => "adoption",
        "UseCaseStatusChanged" => "use_case",
        "NpsRecorded" => "nps",
        "CustomerRenewed" => "renewal",
        "CustomerChurned" => "churn",
        "CsmAssigned" => "csm",
        "CustomerOnboarded" => "profile",
        _ => return None,
    })
}

/// Every kind the timeline shows.
pub const KINDS: &[&str] = &[
    "activity",
    "note",
    "health",
    "task",
    "partner_report",
    "milestone",
    "issue",
    "escalation",
    "adoption",
    "use_case",
    "nps",
    "renewal",
    "churn",
    "csm",
    "profile",
];

/// Which stored events a timeline of some kinds reads: the event types (of
/// [`CustomerEvent::TYPES`]) with an entry of one of `kinds`, and, as `ActivityLogged` is a note
/// or another activity by its body, whether notes and whether other logged activities are
/// wanted.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub event_types: Vec<&'static str>,
    pub notes: bool,
    pub other_activities: bool,
}

impl Selection {
    /// `None`: every kind.
    pub fn of(kinds: Option<&[String]>) -> Selection {
        let wanted = |kind: &str| kinds.is_none_or(|kinds| kinds.iter().any(|k| k == kind));
        let notes = wanted("note");
        let other_activities = wanted("activity");
        let event_types = CustomerEvent::TYPES
            .iter()
            .copied()
            .filter(|event_type| match *event_type {
                "ActivityLogged" => notes || other_activities,
                other => kind(other, false).is_some_and(wanted),
            })
            .collect();
        Selection {
            event_types,
            notes,
            other_activities,
        }
    }
}

/// The timeline entry of an event, if the timeline shows it.
pub fn entry(event: &CustomerEvent) -> Option<Entry> {
    use CustomerEvent as E;
    let note = matches!(event, E::ActivityLogged(a) if a.kind == ActivityKind::Note);
    let kind = kind(event.type_name(), note)?;
    let lower = |text: String| text.to_lowercase();
    let (summary, detail) = match event {
        E::ActivityLogged(a) => {
            let title = if a.subject.is_empty() {
                a.kind.as_str().to_owned()
            } else {
                format!("{}: {}", a.kind.as_str(), a.subject)
            };
            (title, body(a))
        }
        E::ActivityCorrected(a) => (format!("activity corrected: {}", a.reason), body(a)),
        E::ActivityRetracted(a) => (format!("activity retracted: {}", a.reason), body(a)),
        E::HealthScoreRecorded(h) => (lower(format!("health score {} ({:?})", h.score, h.source)), body(h)),
        E::HealthScoreRetracted(h) => (format!("health score retracted: {}", h.reason), body(h)),
        E::TaskCreated(t) => (format!("task created: {}", t.title), body(t)),
        E::TaskUpdated(t) => ("task updated".into(), body(t)),
        E::TaskReassigned(t) => (format!("task reassigned to {}", t.assignee_id), body(t)),
        E::TaskStatusChanged(t) => (lower(format!("task {:?}", t.status)), body(t)),
        E::TaskCompleted(t) => (format!("task completed: {}", t.outcome), body(t)),
        E::TaskCancelled(t) => (format!("task cancelled: {}", t.reason), body(t)),
        E::PartnerReportSubmitted(r) => ("partner status report submitted".into(), body(r)),
        E::PartnerReportDrafted(r) => (format!("partner status report drafted: {}", r.summary), body(r)),
        E::MilestoneRecorded(m) => (format!("milestone: {}", m.title), body(m)),
        E::IssueLogged(i) => (format!("issue logged: {}", i.title), body(i)),
        E::IssueResolved(i) => (format!("issue resolved: {}", i.resolution), body(i)),
        E::EscalationRaised(e) => (format!("escalation raised: {}", e.title), body(e)),
        E::EscalationResolved(e) => (format!("escalation resolved: {}", e.resolution), body(e)),
        E::AdoptionStageChanged(a) => (adoption_summary(a), body(a)),
        E::UseCaseStatusChanged(u) => (lower(format!("{}: {:?}", u.use_case, u.status)), body(u)),
        E::NpsRecorded(n) => (format!("NPS {}", n.score), body(n)),
        E::CustomerRenewed(r) => (format!("renewed until {}", r.renewal_date), body(r)),
        E::CustomerChurned(c) => (format!("churned: {}", c.reason), body(c)),
        E::CsmAssigned(c) => (format!("CSM changed: {}", c.reason), body(c)),
        E::CustomerOnboarded(o) => (format!("onboarded as {}", o.tier.as_str()), body(o)),
        E::CustomFieldsSet(_)
        | E::CustomerRetracted(_)
        | E::CustomerProfileUpdated(_)
        | E::PartnerAssigned(_)
        | E::PartnerUnassigned(_)
        | E::StakeholderAdded(_)
        | E::StakeholderUpdated(_)
        | E::StakeholderRemoved(_)
        | E::PartnerReportUpdated(_)
        | E::CustomerTagged(_)
        | E::CustomerUntagged(_) => return None,
    };
    Some(Entry { kind, summary, detail })
}

/// The summary of an adoption stage change, also listed in a customer's adoption history.
pub fn adoption_summary(change: &crate::customer::AdoptionStageChanged) -> String {
    format!("adoption stage: {:?}", change.stage).to_lowercase()
}

fn body<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(stored: serde_json::Value) -> CustomerEvent {
        serde_json::from_value(stored).unwrap()
    }

    #[test]
    fn a_note_and_an_email_are_told_apart_by_their_body() {
        let at = "2026-03-02T09:00:00Z";
        let logged = |kind: &str, subject: &str| {
            event(json!({"ActivityLogged": {
                "activity_id": "0190a4a8-0000-7000-8000-000000000001", "kind": kind, "direction": "outbound",
                "occurred_at": at, "duration_minutes": null, "participants": [], "response_received": null,
                "response_time_hours": null, "subject": subject, "logged_by": "csm-1"}}))
        };
        let email = entry(&logged("email", "Renewal terms")).unwrap();
        assert_eq!(
            (email.kind, email.summary.as_str()),
            ("activity", "email: Renewal terms")
        );
        assert_eq!(email.detail["subject"], "Renewal terms");
        assert_eq!(
            email.detail.get("ActivityLogged"),
            None,
            "the body, without its type tag"
        );
        let note = entry(&logged("note", "")).unwrap();
        assert_eq!((note.kind, note.summary.as_str()), ("note", "note"));
    }

    #[test]
    fn every_shown_type_has_a_listed_kind_and_selections_cover_exactly_the_kinds_asked() {
        for event_type in CustomerEvent::TYPES {
            for note in [false, true] {
                if let Some(kind) = kind(event_type, note) {
                    assert!(KINDS.contains(&kind), "{event_type}: {kind}");
                }
            }
        }
        let every = Selection::of(None);
        assert!(every.notes && every.other_activities);
        assert!(!every.event_types.contains(&"CustomFieldsSet"));
        assert!(every.event_types.contains(&"CustomerOnboarded"));

        let notes = Selection::of(Some(&["note".to_owned()]));
        assert_eq!(
            notes,
            Selection {
                event_types: vec!["ActivityLogged"],
                notes: true,
                other_activities: false
            }
        );
        let activities = Selection::of(Some(&["activity".to_owned()]));
        assert_eq!(
            activities.event_types,
            ["ActivityLogged", "ActivityCorrected", "ActivityRetracted"]
        );
        assert!(!activities.notes && activities.other_activities);
        assert!(Selection::of(Some(&["nothing".to_owned()])).event_types.is_empty());
    }
}
