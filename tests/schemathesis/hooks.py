"""Schemathesis hooks for `openapi_agrees::schemathesis_finds_every_valid_body_accepted`.

The check `stated_rules_suffice` is Schemathesis's positive-data acceptance made exact for this
API: a body that schemas/openapi.json calls valid may be refused only for a rule a JSON Schema
cannot state (the codes in BEYOND_SCHEMA, each documented in docs/RELIABILITY.md), for what the
caller may not do (401, 403), for what is absent (404) or for the state it meets (409). Any other
refusal names a rule the document leaves unstated, and fails the run.
"""

import json
import os
import uuid

import schemathesis

# 422 codes of rules no JSON Schema can state: they compare a field with another, with the
# stream's state, with the clock, or with what else is stored.
BEYOND_SCHEMA = {
    # with the clock: an instant may not lie ahead of the server's clock (5 minutes of skew)
    "in_future",
    # with another field of the same body
    "renewal_before_contract_start",
    "period_reversed",
    "reason_required",
    # with the stream's state
    "csm_unchanged",
    "stage_unchanged",
    "status_unchanged",
    "no_change",
    # with what else is stored: the id must name something that exists
    "unknown_csm",
    "unknown_partner",
    "unknown_stakeholder",
    "unknown_task",
    # a time zone must be one PostgreSQL knows (pg_timezone_names): a list, not a pattern
    "unknown_time_zone",
    "renewal_not_after_current",
    "capacity_unchanged",
    # the path's key and the body's key of a custom field must agree
    "key_mismatch",
    # the six engagement weights must sum to 1; the churn-risk weights to 100
    "weights_sum",
    # a custom field's value, default or condition against its definition (stored, or another
    # field of the body): select options, types and conditions
    "invalid_value",
    "invalid_option",
    "invalid_options",
    "invalid_condition",
    # the uploaded file must be a workbook or a CSV file: its content, not its shape
    "unreadable_file",
    # a webhook's host must resolve to public addresses: DNS's answer, not a schema's
    "internal_address",
    "unresolvable_host",
    # an id the client chose is taken (state, though the refusal names the id's field)
    "already_exists",
    "activity_exists",
    "stakeholder_exists",
    "task_exists",
    "report_exists",
    "issue_exists",
    "milestone_exists",
    "escalation_exists",
    "user_exists",
}

# Refusals of one operation that depend on what the store holds or on who calls: (operation,
# codes). Custom field values are checked against the definitions in force, and an admin or a
# manager drafting a partner report names the partner (a partner's own user is the partner).
CUSTOM_FIELD_VALUES = {
    "unknown_field", "field_retired", "invalid_value", "invalid_option", "required", "condition_not_met",
}
BY_OPERATION = {
    "PUT /api/v1/customers/{id}/custom-fields": CUSTOM_FIELD_VALUES,
    "POST /api/v1/custom-fields/{id}/bulk": CUSTOM_FIELD_VALUES,
    # The customer list's bulk actions set a custom field as its own bulk edit does, and start a
    # playbook in force (docs/DOMAIN.md sections 16 and 17).
    "POST /api/v1/customers/bulk": CUSTOM_FIELD_VALUES | {"unknown_playbook"},
    "POST /api/v1/customers/bulk/preview": CUSTOM_FIELD_VALUES | {"unknown_playbook"},
    # The order names every field in force, each once: what is in force is the store's.
    "PUT /api/v1/custom-field-order": {"invalid_order"},
    # Churn-risk rules: the bands compared with each other, and a custom factor's custom field
    # named once with one kind of match (docs/DOMAIN.md section 12).
    "PUT /api/v1/rules/churn-risk": {"out_of_range"},
    # Reminders (docs/DOMAIN.md section 13): a one-time reminder lies ahead of the clock, a
    # recurrence rule and a time zone parse (RFC 5545 and the IANA database: grammars and lists,
    # not patterns), the customer exists and the caller sees it, a relative one names it.
    # A local start's day exists in its month (the 31st of April does not): a calendar, not a
    # pattern (`invalid_type` on `schedule`).
    "POST /api/v1/reminders": {
        "in_past", "invalid_rrule", "invalid_time_zone", "unknown_customer", "task_of_another_customer", "required",
        "invalid_type",
    },
    # A snooze ends ahead of the clock; "until the score drops" needs a score to drop from.
    "POST /api/v1/reminders/{id}/snooze": {"in_past", "no_health_score"},
    # A task from a template names a template in force (docs/DOMAIN.md section 15).
    "POST /api/v1/customers/{id}/tasks/from-template": {"unknown_template"},
    # A recurring task's RFC 5545 rule parses and repeats daily at most.
    "POST /api/v1/customers/{id}/recurring-tasks": {"invalid_rrule"},
    # Playbooks (docs/DOMAIN.md section 17): a run names a playbook in force; a playbook started
    # only by hand cannot start by itself; a step moves to another day than its own.
    "POST /api/v1/customers/{id}/playbook-runs": {"unknown_playbook"},
    "POST /api/v1/playbooks": {"manual_trigger"},
    "PUT /api/v1/playbooks/{id}": {"manual_trigger"},
    "POST /api/v1/playbook-runs/{id}/move": {"unchanged", "out_of_range"},
    # Reminder rule ids are unique in the list.
    "PUT /api/v1/rules/reminders": {"duplicate"},
}
BY_FIELD = {
    ("POST /api/v1/customers/{id}/partner-reports", "required", "partner_id"),
}

REFUSALS_ALLOWED = {401, 403, 404, 409, 429}


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    """Each request is a new one: a client reuses an Idempotency-Key only to retry."""
    for name in list(case.headers or {}):
        if name.lower() == "idempotency-key":
            case.headers[name] = f"{case.headers[name][:160]}-{uuid.uuid4().hex}"


@schemathesis.check
def stated_rules_suffice(ctx, response, case):
    status = response.status_code
    if status < 400 or status >= 500 or status in REFUSALS_ALLOWED:
        return None
    try:
        answer = json.loads(response.content)
    except ValueError:
        answer = {}
    code = answer.get("error")
    if status == 422 and code in BEYOND_SCHEMA:
        return None
    operation = f"{case.method.upper()} {case.path}"
    if status == 422 and code in BY_OPERATION.get(operation, ()):
        return None
    if status == 422 and any((operation, code, field) in BY_FIELD for field in answer.get("fields") or {}):
        return None
    # A command that contradicts the state it meets (onboarding twice, an id reused, a task
    # completed twice) is refused naming no field: it is about the stream, not the body.
    if status == 422 and not answer.get("fields"):
        return None
    raise AssertionError(
        f"a request the document calls valid was refused: {status} {code} {answer.get('fields')}"
    )


# Dates and instants within the accepted years (events::dates), which the document states as a
# pattern beside the format: generated there, rather than drawn from 0001..9999 and filtered.
def _dates():
    from datetime import date, datetime, timedelta, timezone

    from hypothesis import strategies as st

    days = st.dates(min_value=date(1970, 1, 1), max_value=date(2099, 12, 31))
    instants = st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(timezone.utc)
    )
    schemathesis.openapi.format("date", days.map(date.isoformat))
    schemathesis.openapi.format("date-time", instants.map(lambda instant: instant.isoformat().replace("+00:00", "Z")))


_dates()
