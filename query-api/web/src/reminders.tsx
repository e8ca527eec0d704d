// Reminders' shared pieces: the form that makes one (one-time, repeating as an RFC 5545 rule, or
// relative to a date of the customer), the snooze and dismiss dialogs, "why this fired" with
// links to its facts, and the counts the dashboard shows (docs/WEB.md, "Reminders").

import { useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import {
  Button,
  Checkbox,
  DatePicker,
  DatePickerInput,
  Form,
  InlineNotification,
  Modal,
  NumberInput,
  RadioButton,
  RadioButtonGroup,
  Select,
  SelectItem,
  TextArea,
  TextInput,
} from "@carbon/react";
import { graphql } from "./gql";
import type { ReminderScope } from "./gql/graphql";
import { useSession } from "./App";
import { command, CommandError } from "./api/commands";
import { CustomerPicker, Kpi } from "./components";
import { timeZone, when } from "./format";

/** The offset of `zone` from UTC at `instant`, in milliseconds. */
function offsetAt(zone: string, instant: number): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: zone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(instant));
  const get = (type: string) => Number(parts.find((part) => part.type === type)?.value);
  return Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second")) - instant;
}

/** The instant of a wall-clock time ("2027-01-04T09:00") in `zone`. */
export function zonedInstant(local: string, zone: string): string {
  const [date, time] = local.split("T");
  const [y, m, d] = date.split("-").map(Number);
  const [hh, mm] = (time ?? "00:00").split(":").map(Number);
  const guess = Date.UTC(y, m - 1, d, hh, mm);
  const first = guess - offsetAt(zone, guess);
  const instant = guess - offsetAt(zone, first);
  return new Date(instant).toISOString();
}

/** Today in `zone`, as YYYY-MM-DD. */
function todayIn(zone: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
}

/** The next full hour in `zone`, as HH:MM. */
function nextHourIn(zone: string): string {
  const hour = Number(new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", hourCycle: "h23" }).format(new Date()));
  return `${String((hour + 1) % 24).padStart(2, "0")}:00`;
}

const DAYS: Array<[string, string]> = [
  ["MO", "Mon"],
  ["TU", "Tue"],
  ["WE", "Wed"],
  ["TH", "Thu"],
  ["FR", "Fri"],
  ["SA", "Sat"],
  ["SU", "Sun"],
];

/** What a repeating reminder's choices say as an RFC 5545 RRULE. */
export function rruleOf(choice: { freq: string; interval: number; days: string[]; monthDay: number; ends: string; until: string; count: number }): string {
  const parts = [`FREQ=${choice.freq}`];
  if (choice.interval > 1) parts.push(`INTERVAL=${choice.interval}`);
  if (choice.freq === "WEEKLY" && choice.days.length) parts.push(`BYDAY=${choice.days.join(",")}`);
  if (choice.freq === "MONTHLY") parts.push(`BYMONTHDAY=${choice.monthDay}`);
  if (choice.ends === "until" && choice.until) parts.push(`UNTIL=${choice.until.replace(/-/g, "")}T235959Z`);
  if (choice.ends === "count") parts.push(`COUNT=${choice.count}`);
  return parts.join(";");
}

/** An RRULE as a person reads it ("every week on Mon, Thu, 10 times"). */
export function rruleWords(rrule: string): string {
  const fields = Object.fromEntries(rrule.split(";").map((part) => part.split("=") as [string, string]));
  const every = Number(fields.INTERVAL ?? 1);
  const unit = ({ DAILY: "day", WEEKLY: "week", MONTHLY: "month", YEARLY: "year", HOURLY: "hour" } as Record<string, string>)[fields.FREQ] ?? fields.FREQ?.toLowerCase();
  let text = every > 1 ? `every ${every} ${unit}s` : `every ${unit}`;
  if (fields.BYDAY) text += ` on ${fields.BYDAY.split(",").map((d) => DAYS.find(([code]) => code === d)?.[1] ?? d).join(", ")}`;
  if (fields.BYMONTHDAY) text += Number(fields.BYMONTHDAY) === -1 ? " on the last day" : ` on day ${fields.BYMONTHDAY}`;
  if (fields.COUNT) text += `, ${fields.COUNT} times`;
  if (fields.UNTIL) text += `, until ${fields.UNTIL.slice(0, 4)}-${fields.UNTIL.slice(4, 6)}-${fields.UNTIL.slice(6, 8)}`;
  return text;
}

/** A schedule as entered, in words. */
export function scheduleWords(schedule: Record<string, unknown>, zone: string): string {
  switch (schedule.kind) {
    case "once":
      return `once, ${when(String(schedule.at))}`;
    case "recurring":
      return `${rruleWords(String(schedule.rrule))}, at ${String(schedule.starts).slice(11, 16)} (${zone})`;
    case "relative": {
      const days = Number(schedule.offset_days);
      const anchor = schedule.anchor as { date: string; key?: string };
      const date = anchor.date === "renewal_date" ? "the renewal date" : anchor.date === "contract_start" ? "the contract start" : `custom field ${anchor.key}`;
      const offset = days === 0 ? "on" : days < 0 ? `${-days} days before` : `${days} days after`;
      return `${offset} ${date}, at ${String(schedule.at).slice(0, 5)} (${zone})`;
    }
    default:
      return "";
  }
}

function dateValue(dates: Date[]): string {
  const date = dates[0];
  if (!date) return "";
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
}

/** The form that makes a reminder for the signed-in user, about a customer when given. */
export function ReminderForm({ customerId, customerName, onDone }: { customerId?: string; customerName?: string; onDone: () => void }) {
  const session = useSession();
  const zone = timeZone();
  const [title, setTitle] = useState(customerName ? `Follow up with ${customerName}` : "");
  const [customer, setCustomer] = useState<string | null>(customerId ?? null);
  const [note, setNote] = useState("");
  const [kind, setKind] = useState("once");
  const [day, setDay] = useState(todayIn(zone));
  const [time, setTime] = useState(nextHourIn(zone));
  const [freq, setFreq] = useState("WEEKLY");
  const [interval, setInterval] = useState(1);
  const [days, setDays] = useState<string[]>(["MO"]);
  const [monthDay, setMonthDay] = useState(1);
  const [ends, setEnds] = useState("never");
  const [until, setUntil] = useState("");
  const [count, setCount] = useState(10);
  const [anchor, setAnchor] = useState("renewal_date");
  const [fieldKey, setFieldKey] = useState("");
  const [offset, setOffset] = useState(30);
  const [direction, setDirection] = useState("before");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<CommandError | null>(null);
  const schedule = () => {
    if (kind === "once") return { kind: "once", at: zonedInstant(`${day}T${time}`, zone) };
    if (kind === "recurring")
      return { kind: "recurring", rrule: rruleOf({ freq, interval, days, monthDay, ends, until, count }), starts: `${day}T${time}:00` };
    return {
      kind: "relative",
      anchor: anchor === "custom_field" ? { date: "custom_field", key: fieldKey } : { date: anchor },
      offset_days: direction === "before" ? -offset : offset,
      at: `${time}:00`,
    };
  };
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await command(session, "POST", "/api/v1/reminders", { title, customer_id: customer, note: note || null, time_zone: zone, schedule: schedule() });
      onDone();
    } catch (e) {
      setError(CommandError.from(e));
    } finally {
      setBusy(false);
    }
  };
  const field = (name: string) => ({ invalid: Boolean(error?.field(name)), invalidText: error?.field(name) });
  return (
    <Form onSubmit={submit} aria-label="New reminder" className="cs-form">
      <TextInput id="reminder-title" labelText="Remind me to" value={title} onChange={(e) => setTitle(e.target.value)} required {...field("title")} />
      {customerId ? null : (
        <CustomerPicker id="reminder-customer" label="About a customer (optional)" value={customer} onChange={(id) => setCustomer(id)} />
      )}
      <RadioButtonGroup legendText="When" name="reminder-kind" valueSelected={kind} onChange={(value) => setKind(String(value))} orientation="horizontal">
        <RadioButton id="reminder-once" labelText="Once" value="once" />
        <RadioButton id="reminder-recurring" labelText="Repeating" value="recurring" />
        <RadioButton id="reminder-relative" labelText="Relative to a date of the customer" value="relative" disabled={!customer} />
      </RadioButtonGroup>
      {kind !== "relative" ? (
        <div className="cs-toolbar">
          <TextInput id="reminder-day" type="date" labelText={kind === "once" ? "Day" : "Starting on"} value={day} onChange={(e) => setDay(e.target.value)} {...field("schedule.at")} />
          <TextInput id="reminder-time" type="time" labelText={`At (${zone})`} value={time} onChange={(e) => setTime(e.target.value)} />
        </div>
      ) : null}
      {kind === "recurring" ? (
        <fieldset className="cs-form">
          <legend className="cds--label">Repeats</legend>
          <div className="cs-toolbar">
            <Select id="reminder-freq" labelText="Every" value={freq} onChange={(e) => setFreq(e.target.value)}>
              <SelectItem value="DAILY" text="day" />
              <SelectItem value="WEEKLY" text="week" />
              <SelectItem value="MONTHLY" text="month" />
            </Select>
            <NumberInput id="reminder-interval" label="Every how many" min={1} max={365} value={interval} onChange={(_, { value }) => setInterval(Number(value) || 1)} />
            {freq === "MONTHLY" ? (
              <NumberInput
                id="reminder-month-day"
                label="On day of the month (-1: the last)"
                min={-1}
                max={31}
                value={monthDay}
                onChange={(_, { value }) => setMonthDay(Number(value) || 1)}
              />
            ) : null}
          </div>
          {freq === "WEEKLY" ? (
            <fieldset className="cs-toolbar">
              <legend className="cds--label">On</legend>
              {DAYS.map(([code, label]) => (
                <Checkbox
                  key={code}
                  id={`reminder-day-${code}`}
                  labelText={label}
                  checked={days.includes(code)}
                  onChange={(_, { checked }) => setDays(checked ? [...days, code] : days.filter((d) => d !== code))}
                />
              ))}
            </fieldset>
          ) : null}
          <div className="cs-toolbar">
            <Select id="reminder-ends" labelText="Ends" value={ends} onChange={(e) => setEnds(e.target.value)}>
              <SelectItem value="never" text="never" />
              <SelectItem value="until" text="on a date" />
              <SelectItem value="count" text="after a number of times" />
            </Select>
            {ends === "until" ? <TextInput id="reminder-until" type="date" labelText="Last day" value={until} onChange={(e) => setUntil(e.target.value)} /> : null}
            {ends === "count" ? (
              <NumberInput id="reminder-count" label="Times" min={1} max={1000} value={count} onChange={(_, { value }) => setCount(Number(value) || 1)} />
            ) : null}
          </div>
          <p className="cs-muted" data-testid="reminder-rule-words">
            {rruleWords(rruleOf({ freq, interval, days, monthDay, ends, until, count }))}
          </p>
        </fieldset>
      ) : null}
      {kind === "relative" ? (
        <div className="cs-toolbar">
          <NumberInput id="reminder-offset" label="Days" min={0} max={3650} value={offset} onChange={(_, { value }) => setOffset(Number(value) || 0)} {...field("schedule.offset_days")} />
          <Select id="reminder-direction" labelText="Before or after" value={direction} onChange={(e) => setDirection(e.target.value)}>
            <SelectItem value="before" text="before" />
            <SelectItem value="after" text="after" />
          </Select>
          <Select id="reminder-anchor" labelText="The customer's" value={anchor} onChange={(e) => setAnchor(e.target.value)}>
            <SelectItem value="renewal_date" text="renewal date" />
            <SelectItem value="contract_start" text="contract start" />
            <SelectItem value="custom_field" text="date in a custom field" />
          </Select>
          {anchor === "custom_field" ? <TextInput id="reminder-field" labelText="Custom field key" value={fieldKey} onChange={(e) => setFieldKey(e.target.value)} /> : null}
          <TextInput id="reminder-relative-time" type="time" labelText={`At (${zone})`} value={time} onChange={(e) => setTime(e.target.value)} />
        </div>
      ) : null}
      <TextArea id="reminder-note" labelText="Note (optional)" value={note} onChange={(e) => setNote(e.target.value)} rows={2} />
      {error && !Object.keys(error.fields).length ? (
        <InlineNotification kind="error" title="Refused" subtitle={error.message} hideCloseButton lowContrast role="alert" />
      ) : null}
      {error && Object.keys(error.fields).length ? (
        <InlineNotification kind="error" title="Refused" subtitle={Object.values(error.fields).join("; ")} hideCloseButton lowContrast role="alert" />
      ) : null}
      <Button type="submit" disabled={busy || !title.trim()}>
        Save the reminder
      </Button>
    </Form>
  );
}

/** A button that opens the reminder form in a dialog. */
export function NewReminder({ customerId, customerName, onDone, kind = "primary" }: { customerId?: string; customerName?: string; onDone: () => void; kind?: "primary" | "tertiary" }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <Button size="sm" kind={kind} onClick={() => setOpen(true)}>
        {customerId ? "Remind me" : "New reminder"}
      </Button>
      {open ? (
        <Modal open passiveModal modalHeading={customerName ? `Remind me about ${customerName}` : "New reminder"} onRequestClose={() => setOpen(false)} size="md">
          <ReminderForm
            customerId={customerId}
            customerName={customerName}
            onDone={() => {
              setOpen(false);
              onDone();
            }}
          />
        </Modal>
      ) : null}
    </>
  );
}

export interface Occurrence {
  reminderId: string;
  occurrenceKey: string;
  title: string;
  customerId?: string | null;
  customerName?: string | null;
  renewalInDays?: number | null;
}

/** Snooze: for an hour, until tomorrow 09:00, next Monday, a week, until a day, or until something happens; always with a reason. */
export function SnoozeDialog({ occurrence, onClose, onDone }: { occurrence: Occurrence; onClose: () => void; onDone: () => void }) {
  const session = useSession();
  const [choice, setChoice] = useState("tomorrow_morning");
  const [until, setUntil] = useState("");
  const [days, setDays] = useState(30);
  const [reason, setReason] = useState("");
  const [error, setError] = useState<CommandError | null>(null);
  const [busy, setBusy] = useState(false);
  const about = Boolean(occurrence.customerId);
  const body = () => {
    switch (choice) {
      case "until_date":
        return { until_date: until };
      case "customer_replies":
        return { until: { kind: "customer_replies" } };
      case "score_drops":
        return { until: { kind: "score_drops" } };
      case "renewal_within":
        return { until: { kind: "renewal_within", days } };
      default:
        return { preset: choice };
    }
  };
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      await command(session, "POST", `/api/v1/reminders/${occurrence.reminderId}/snooze`, {
        occurrence_key: occurrence.occurrenceKey,
        for: body(),
        reason,
      });
      onDone();
    } catch (e) {
      setError(CommandError.from(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open
      modalHeading={`Snooze: ${occurrence.title}`}
      primaryButtonText="Snooze"
      secondaryButtonText="Cancel"
      primaryButtonDisabled={busy || !reason.trim() || (choice === "until_date" && !until)}
      onRequestSubmit={submit}
      onRequestClose={onClose}
    >
      <RadioButtonGroup legendText="Until" name="snooze-for" valueSelected={choice} onChange={(value) => setChoice(String(value))} orientation="vertical">
        <RadioButton id="snooze-hour" labelText="For 1 hour" value="one_hour" />
        <RadioButton id="snooze-tomorrow" labelText="Tomorrow 09:00" value="tomorrow_morning" />
        <RadioButton id="snooze-monday" labelText="Next Monday 09:00" value="next_monday" />
        <RadioButton id="snooze-week" labelText="For 1 week" value="one_week" />
        <RadioButton id="snooze-date" labelText="Until a day (09:00)" value="until_date" />
        <RadioButton id="snooze-reply" labelText="Until the customer replies" value="customer_replies" disabled={!about} />
        <RadioButton id="snooze-score" labelText="Until the health score drops further" value="score_drops" disabled={!about} />
        <RadioButton id="snooze-renewal" labelText="Until the renewal is close" value="renewal_within" disabled={!about} />
      </RadioButtonGroup>
      {choice === "until_date" ? (
        <DatePicker datePickerType="single" dateFormat="Y-m-d" onChange={(dates: Date[]) => setUntil(dateValue(dates))}>
          <DatePickerInput id="snooze-until" labelText="Day" placeholder="yyyy-mm-dd" />
        </DatePicker>
      ) : null}
      {choice === "renewal_within" ? (
        <NumberInput id="snooze-renewal-days" label="Days before the renewal" min={1} max={730} value={days} onChange={(_, { value }) => setDays(Number(value) || 1)} />
      ) : null}
      <TextInput id="snooze-reason" labelText="Why (kept with the reminder)" value={reason} onChange={(e) => setReason(e.target.value)} required />
      {error ? <InlineNotification kind="error" title="Refused" subtitle={error.message} hideCloseButton lowContrast role="alert" /> : null}
    </Modal>
  );
}

/** Dismiss, with a reason. */
export function DismissDialog({ occurrence, onClose, onDone }: { occurrence: Occurrence; onClose: () => void; onDone: () => void }) {
  const session = useSession();
  const [reason, setReason] = useState("");
  const [error, setError] = useState<CommandError | null>(null);
  const submit = async () => {
    try {
      await command(session, "POST", `/api/v1/reminders/${occurrence.reminderId}/dismiss`, { occurrence_key: occurrence.occurrenceKey, reason });
      onDone();
    } catch (e) {
      setError(CommandError.from(e));
    }
  };
  return (
    <Modal open modalHeading={`Dismiss: ${occurrence.title}`} primaryButtonText="Dismiss" secondaryButtonText="Cancel" primaryButtonDisabled={!reason.trim()} onRequestSubmit={submit} onRequestClose={onClose}>
      <TextInput id="dismiss-reason" labelText="Why" value={reason} onChange={(e) => setReason(e.target.value)} required />
      {error ? <InlineNotification kind="error" title="Refused" subtitle={error.message} hideCloseButton lowContrast role="alert" /> : null}
    </Modal>
  );
}

export interface FactView {
  label: string;
  kind: string;
  id?: string | null;
  streamId?: string | null;
}

/** Where a fact lives: the customer's timeline (activities, health), the task list. */
function factLink(fact: FactView, customerId?: string | null): string | null {
  const customer = fact.streamId ?? customerId;
  if (!customer) return null;
  switch (fact.kind) {
    case "task":
      return `/tasks?customer=${customer}`;
    case "activity":
      return `/customers/${customer}#activity-${fact.id}`;
    default:
      return `/customers/${customer}`;
  }
}

/** Why a reminder fired, in its sentence, with links to the facts behind it. */
export function WhyFired({ why, facts, customerId }: { why: string; facts: FactView[]; customerId?: string | null }) {
  return (
    <div data-testid="reminder-why">
      <span>{why}</span>
      {facts.length ? (
        <ul className="cs-facts" aria-label="The facts behind it">
          {facts.map((fact, index) => {
            const to = factLink(fact, customerId);
            return <li key={index}>{to ? <Link to={to}>{fact.label}</Link> : fact.label}</li>;
          })}
        </ul>
      ) : null}
    </div>
  );
}

const COUNTS = graphql(`
  query ReminderCounts {
    reminderCounts {
      open
      overdue
      snoozed
      next7Days
    }
  }
`);

/** The caller's reminder counts, as KPI tiles linking to the queue; read again when `changed` does. */
export function ReminderCounts({ changed = 0 }: { changed?: number }) {
  const [{ data }, refetch] = useQuery({ query: COUNTS });
  useEffect(() => {
    if (changed) refetch({ requestPolicy: "network-only" });
  }, [changed, refetch]);
  const counts = data?.reminderCounts;
  if (!counts) return null;
  return (
    <section aria-labelledby="reminder-counts-heading" className="cs-kpis">
      <h2 id="reminder-counts-heading" className="cs-visually-hidden">
        My reminders
      </h2>
      <Link to="/reminders" className="cs-kpi-link">
        <Kpi testId="kpi-reminders-open" label="My reminders due" value={counts.open} change={`${counts.overdue} overdue`} />
      </Link>
      <Link to="/reminders?status=SNOOZED" className="cs-kpi-link">
        <Kpi testId="kpi-reminders-snoozed" label="Snoozed" value={counts.snoozed} change={`${counts.next7Days} coming in 7 days`} />
      </Link>
    </section>
  );
}

const CUSTOMER_REMINDERS = graphql(`
  query CustomerReminders($customerId: UUID!, $scope: ReminderScope) {
    reminders(customerId: $customerId, scope: $scope, status: OPEN, first: 5) {
      totalCount
      nodes {
        reminderId
        occurrenceKey
        title
        dueAt
        why
        ownerName
        facts {
          label
          kind
          id
          streamId
        }
      }
    }
  }
`);

/** A customer's open reminders on its 360 (the caller's own; a manager's: everyone's). */
export function CustomerReminders({ customerId, customerName }: { customerId: string; customerName: string }) {
  const session = useSession();
  const scope: ReminderScope = session.role === "csm" ? "MINE" : "ALL";
  const [{ data }, refetch] = useQuery({ query: CUSTOMER_REMINDERS, variables: { customerId, scope } });
  const reminders = data?.reminders;
  const refresh = () => {
    refetch({ requestPolicy: "network-only" });
    window.setTimeout(() => refetch({ requestPolicy: "network-only" }), 800);
  };
  return (
    <section className="cs-section" aria-labelledby="customer-reminders-heading" data-testid="customer-reminders">
      <div className="cs-toolbar" style={{ justifyContent: "space-between" }}>
        <h2 id="customer-reminders-heading">Reminders due</h2>
        {session.role === "admin" || session.role === "manager" || session.role === "csm" ? (
          <NewReminder customerId={customerId} customerName={customerName} onDone={refresh} kind="tertiary" />
        ) : null}
      </div>
      {reminders && reminders.nodes.length ? (
        <ul className="cs-list">
          {reminders.nodes.map((r) => (
            <li key={`${r.reminderId}/${r.occurrenceKey}`}>
              <strong>{r.title}</strong> ({when(r.dueAt)}, for {r.ownerName ?? "—"})
              <WhyFired why={r.why} facts={r.facts} customerId={customerId} />
            </li>
          ))}
        </ul>
      ) : (
        <p className="cs-muted">None due.</p>
      )}
      {reminders ? (
        <Link to={`/reminders?customer=${customerId}${scope === "ALL" ? "&scope=ALL" : ""}`}>
          {reminders.totalCount > reminders.nodes.length ? `All ${reminders.totalCount} due, and those to come` : "Reminders for this customer"}
        </Link>
      ) : null}
    </section>
  );
}
