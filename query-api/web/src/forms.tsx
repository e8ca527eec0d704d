// The daily commands as forms. Each sends one REST command; a refusal's fields are shown on the
// inputs they name, and its message above the buttons.

import { useState } from "react";
import { Button, Form, InlineNotification, Modal, NumberInput, Select, SelectItem, TextArea, TextInput, MultiSelect } from "@carbon/react";
import { command, CommandError } from "./api/commands";
import { sendOrKeep } from "./offline";

/** What a form says of a command kept on the device while offline. */
const KEPT = "Saved on this device: it is sent when you are back online";
import { useSession } from "./App";
import { useQuery } from "urql";
import { CustomFieldsForm, FIELD_DEFINITIONS } from "./fieldsForm";
import { CustomerPicker } from "./components";

interface FormState {
  busy: boolean;
  error: CommandError | null;
  done: string | null;
}

function useCommandForm() {
  const session = useSession();
  const [state, setState] = useState<FormState>({ busy: false, error: null, done: null });
  /** Sends a command; with `offline` (what it is, in words) it is kept to send later when the network is down. */
  const run = async (method: "POST" | "PUT" | "PATCH", path: string, body: unknown, done: string, after?: () => void, offline?: string) => {
    setState({ busy: true, error: null, done: null });
    try {
      const outcome = offline ? await sendOrKeep(session, method, path, body, offline) : (await command(session, method, path, body), "sent");
      setState({ busy: false, error: null, done: outcome === "kept" ? KEPT : done });
      after?.();
    } catch (e) {
      setState({ busy: false, error: CommandError.from(e), done: null });
    }
  };
  const field = (name: string) => ({
    invalid: Boolean(state.error?.field(name)),
    invalidText: state.error?.field(name),
  });
  return { state, run, field };
}

function Outcome({ state }: { state: FormState }) {
  if (state.error)
    return (
      <InlineNotification
        kind="error"
        title="Refused"
        subtitle={`${state.error.message} (${state.error.code})`}
        hideCloseButton
        lowContrast
        role="alert"
      />
    );
  if (state.done) return <InlineNotification kind="success" title={state.done} hideCloseButton lowContrast role="status" />;
  return null;
}

/** Now, as the value of a datetime-local input (minutes, UTC). */
function nowLocal(): string {
  return new Date().toISOString().slice(0, 16);
}

export function LogActivityForm({ customerId, stakeholders }: { customerId: string; stakeholders: Array<{ stakeholderId: string; name: string }> }) {
  const { state, run, field } = useCommandForm();
  const [kind, setKind] = useState("meeting");
  const [direction, setDirection] = useState("outbound");
  const [occurredAt, setOccurredAt] = useState(nowLocal);
  const [duration, setDuration] = useState<number | "">(30);
  const [subject, setSubject] = useState("");
  const [participants, setParticipants] = useState<string[]>([]);
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    run(
      "POST",
      `/api/v1/customers/${customerId}/activities`,
      {
        kind,
        direction,
        occurred_at: occurredAt ? `${occurredAt}:00Z` : "",
        duration_minutes: kind === "meeting" || kind === "call" || kind === "qbr" ? (duration === "" ? null : duration) : null,
        subject,
        participants,
      },
      "Activity logged",
      () => setSubject(""),
      `${kind === "qbr" ? "QBR" : kind} “${subject}”`,
    );
  };
  return (
    <Form onSubmit={submit} className="cs-form" aria-label="Log an activity">
      <Select id="activity-kind" labelText="Kind" value={kind} onChange={(e) => setKind(e.target.value)} {...field("kind")}>
        {["email", "meeting", "call", "qbr", "message", "event", "note"].map((k) => (
          <SelectItem key={k} value={k} text={k === "qbr" ? "QBR" : k} />
        ))}
      </Select>
      <Select id="activity-direction" labelText="Direction" value={direction} onChange={(e) => setDirection(e.target.value)} {...field("direction")}>
        <SelectItem value="outbound" text="outbound" />
        <SelectItem value="inbound" text="inbound" />
      </Select>
      <TextInput id="activity-occurred-at" type="datetime-local" labelText="When (UTC)" value={occurredAt} onChange={(e) => setOccurredAt(e.target.value)} {...field("occurred_at")} />
      <NumberInput
        id="activity-duration"
        label="Duration (minutes)"
        value={duration}
        min={0}
        allowEmpty
        onChange={(_e, { value }) => setDuration(value === "" || value == null ? "" : Number(value))}
        {...field("duration_minutes")}
      />
      <TextInput id="activity-subject" labelText="Subject" value={subject} onChange={(e) => setSubject(e.target.value)} {...field("subject")} />
      <MultiSelect
        id="activity-participants"
        titleText="Participants"
        label="Choose stakeholders"
        items={stakeholders}
        itemToString={(item) => item?.name ?? ""}
        onChange={({ selectedItems }) => setParticipants((selectedItems ?? []).map((s) => s.stakeholderId))}
        {...field("participants")}
      />
      <Outcome state={state} />
      <Button type="submit" disabled={state.busy}>
        Log activity
      </Button>
    </Form>
  );
}

export function HealthScoreForm({ customerId }: { customerId: string }) {
  const { state, run, field } = useCommandForm();
  const [score, setScore] = useState<number | "">("");
  const [reason, setReason] = useState("");
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    run(
      "POST",
      `/api/v1/customers/${customerId}/health-scores`,
      { score: score === "" ? null : score, source: "manual", reason: reason || null },
      "Health score recorded",
      () => setReason(""),
    );
  };
  return (
    <Form onSubmit={submit} className="cs-form" aria-label="Record a manual health score">
      <NumberInput
        id="health-score"
        label="Score (0 to 100)"
        value={score}
        allowEmpty
        onChange={(_e, { value }) => setScore(value === "" || value == null ? "" : Number(value))}
        {...field("score")}
      />
      <TextArea id="health-reason" labelText="Reason" rows={2} value={reason} onChange={(e) => setReason(e.target.value)} {...field("reason")} />
      <Outcome state={state} />
      <Button type="submit" disabled={state.busy}>
        Record score
      </Button>
    </Form>
  );
}

export function CreateTaskForm({ customerId }: { customerId: string }) {
  const session = useSession();
  const { state, run, field } = useCommandForm();
  const [title, setTitle] = useState("");
  const [kind, setKind] = useState("follow_up");
  const [priority, setPriority] = useState("medium");
  const [assignee, setAssignee] = useState(session.user);
  const [due, setDue] = useState("");
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    run(
      "POST",
      `/api/v1/customers/${customerId}/tasks`,
      { title, kind, priority, assignee_id: assignee, due_date: due },
      "Task created",
      () => setTitle(""),
    );
  };
  return (
    <Form onSubmit={submit} className="cs-form" aria-label="Create a task">
      <TextInput id="task-title" labelText="Title" value={title} onChange={(e) => setTitle(e.target.value)} {...field("title")} />
      <Select id="task-kind" labelText="Kind" value={kind} onChange={(e) => setKind(e.target.value)} {...field("kind")}>
        {["follow_up", "qbr_prep", "escalation", "onboarding", "renewal", "general"].map((k) => (
          <SelectItem key={k} value={k} text={k.replace("_", " ")} />
        ))}
      </Select>
      <Select id="task-priority" labelText="Priority" value={priority} onChange={(e) => setPriority(e.target.value)} {...field("priority")}>
        {["low", "medium", "high", "urgent"].map((p) => (
          <SelectItem key={p} value={p} text={p} />
        ))}
      </Select>
      <TextInput id="task-assignee" labelText="Assignee (user id)" value={assignee} onChange={(e) => setAssignee(e.target.value)} {...field("assignee_id")} />
      <TextInput id="task-due" type="date" labelText="Due" value={due} onChange={(e) => setDue(e.target.value)} {...field("due_date")} />
      <Outcome state={state} />
      <Button type="submit" disabled={state.busy}>
        Create task
      </Button>
    </Form>
  );
}

/** The words of a report's overall status. */
export const OVERALL_WORDS: Record<string, string> = { on_track: "on track", at_risk: "at risk", off_track: "off track" };

/** A partner report as the form edits it. */
export interface ReportDraft {
  reportId: string;
  customerId: string;
  periodStart: string;
  periodEnd: string;
  overallStatus: string;
  summary: string;
  accomplishments: string;
  plannedActivities: string;
  risksAndIssues: string;
}

/**
 * Drafts a partner status report for a customer found by name or, given `report`, changes that
 * draft (only the fields changed are sent).
 */
export function PartnerReportForm({ report, onDone }: { report?: ReportDraft; onDone: () => void }) {
  const { state, run, field } = useCommandForm();
  const [customerId, setCustomerId] = useState<string | null>(report?.customerId ?? null);
  const [form, setForm] = useState({
    period_start: report?.periodStart ?? "",
    period_end: report?.periodEnd ?? "",
    overall_status: report?.overallStatus ?? "on_track",
    summary: report?.summary ?? "",
    accomplishments: report?.accomplishments ?? "",
    planned_activities: report?.plannedActivities ?? "",
    risks_and_issues: report?.risksAndIssues ?? "",
  });
  const set = (name: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [name]: e.target.value });
  const id = (name: string) => `report-${report ? "edit-" : ""}${name}`;
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    if (report) {
      const before: Record<string, string> = {
        period_start: report.periodStart,
        period_end: report.periodEnd,
        overall_status: report.overallStatus,
        summary: report.summary,
        accomplishments: report.accomplishments,
        planned_activities: report.plannedActivities,
        risks_and_issues: report.risksAndIssues,
      };
      const changed = Object.fromEntries(Object.entries(form).filter(([name, value]) => value !== before[name]));
      run("PATCH", `/api/v1/customers/${report.customerId}/partner-reports/${report.reportId}`, changed, "Draft changed", onDone);
    } else {
      run("POST", `/api/v1/customers/${customerId}/partner-reports`, form, "Draft saved", onDone);
    }
  };
  return (
    <Form onSubmit={submit} className="cs-form" aria-label={report ? "Change the draft" : "Draft a partner status report"}>
      {report ? null : <CustomerPicker id="report-customer" label="Customer" value={customerId} onChange={(chosen) => setCustomerId(chosen)} />}
      <TextInput id={id("period-start")} type="date" labelText="Period start" value={form.period_start} onChange={set("period_start")} {...field("period_start")} />
      <TextInput id={id("period-end")} type="date" labelText="Period end" value={form.period_end} onChange={set("period_end")} {...field("period_end")} />
      <Select id={id("overall")} labelText="Overall status" value={form.overall_status} onChange={set("overall_status")} {...field("overall_status")}>
        {Object.entries(OVERALL_WORDS).map(([value, words]) => (
          <SelectItem key={value} value={value} text={words} />
        ))}
      </Select>
      <TextArea id={id("summary")} labelText="Summary" rows={3} value={form.summary} onChange={set("summary")} {...field("summary")} />
      <TextArea id={id("accomplishments")} labelText="Accomplishments" rows={2} value={form.accomplishments} onChange={set("accomplishments")} {...field("accomplishments")} />
      <TextArea id={id("planned")} labelText="Planned activities" rows={2} value={form.planned_activities} onChange={set("planned_activities")} {...field("planned_activities")} />
      <TextArea id={id("risks")} labelText="Risks and issues" rows={2} value={form.risks_and_issues} onChange={set("risks_and_issues")} {...field("risks_and_issues")} />
      <Outcome state={state} />
      <Button type="submit" disabled={state.busy || (!report && !customerId)}>
        {report ? "Save the changes" : "Save draft"}
      </Button>
    </Form>
  );
}

/** A one-button command (complete, start, submit, acknowledge) with its outcome. */
export function CommandButton({
  label,
  method = "POST",
  path,
  body,
  onDone,
  kind = "tertiary",
}: {
  label: string;
  method?: "POST" | "PUT";
  path: string;
  body?: unknown;
  onDone?: () => void;
  kind?: "primary" | "secondary" | "tertiary" | "ghost";
}) {
  const { state, run } = useCommandForm();
  return (
    <span>
      <Button size="sm" kind={kind} disabled={state.busy || Boolean(state.done)} onClick={() => run(method, path, body ?? {}, "Done", onDone)}>
        {state.done ? `${label}: done` : label}
      </Button>
      {state.error ? (
        <span role="alert" className="cs-muted" style={{ marginLeft: "0.5rem", color: "#da1e28" }}>
          {state.error.message}
        </span>
      ) : null}
    </span>
  );
}

/**
 * Start (when pending) and complete: the task commands a list offers on each open task.
 * Completing asks what came of it: the outcome is part of the task's record.
 */
export function TaskActions({ customerId, taskId, status, title, onDone }: { customerId: string; taskId: string; status: string; title?: string; onDone: () => void }) {
  const session = useSession();
  const path = `/api/v1/customers/${customerId}/tasks/${taskId}`;
  const [completing, setCompleting] = useState(false);
  const [outcome, setOutcome] = useState("");
  const [state, setState] = useState<FormState>({ busy: false, error: null, done: null });
  const complete = async () => {
    setState({ busy: true, error: null, done: null });
    try {
      const sent = await sendOrKeep(session, "POST", `${path}/complete`, { outcome: outcome.trim() }, `Complete “${title ?? "a task"}”`);
      setState({ busy: false, error: null, done: sent === "kept" ? KEPT : "Completed" });
      setCompleting(false);
      setOutcome("");
      onDone();
    } catch (e) {
      setState({ busy: false, error: CommandError.from(e), done: null });
    }
  };
  return (
    <>
      {status === "pending" ? <CommandButton label="Start" method="PUT" path={`${path}/status`} body={{ status: "in_progress" }} onDone={onDone} /> : null}{" "}
      <Button kind="ghost" size="sm" onClick={() => setCompleting(true)}>
        Complete
      </Button>
      {completing ? (
        <Modal
          open
          modalHeading={title ? `Complete “${title}”` : "Complete the task"}
          primaryButtonText={state.busy ? "Completing…" : "Complete the task"}
          primaryButtonDisabled={state.busy || !outcome.trim()}
          secondaryButtonText="Cancel"
          onRequestClose={() => setCompleting(false)}
          onRequestSubmit={complete}
        >
          <TextArea
            id={`outcome-${taskId}`}
            labelText="What came of it"
            helperText="Kept with the task: the customer's timeline shows it"
            rows={3}
            value={outcome}
            onChange={(e) => setOutcome(e.target.value)}
            invalid={Boolean(state.error?.field("outcome"))}
            invalidText={state.error?.field("outcome")}
          />
          {state.error && !state.error.field("outcome") ? <Outcome state={state} /> : null}
        </Modal>
      ) : null}
    </>
  );
}


/**
 * A customer's custom fields, set in one command: only the values that changed are sent (null
 * clears one); the API checks each against its definition and the caller's role.
 */
export function CustomerFieldsForm({ customerId, values }: { customerId: string; values: Array<{ key: string; value?: unknown; isDefault: boolean }> }) {
  const session = useSession();
  const [{ data }] = useQuery({ query: FIELD_DEFINITIONS });
  const [error, setError] = useState<CommandError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [generation, setGeneration] = useState(0);
  if (!data) return null;
  if (data.customFieldDefinitions.length === 0) return <p className="cs-muted">No custom field is defined yet (Settings › Custom fields).</p>;
  // A default is what the customer shows, not a value of its own: the form starts empty there.
  const initial = Object.fromEntries(values.filter((v) => !v.isDefault).map((v) => [v.key, v.value ?? null]));
  return (
    <>
      <CustomFieldsForm
        key={`${generation}-${JSON.stringify(initial)}`}
        fields={data.customFieldDefinitions}
        initial={initial}
        error={error}
        onSave={async (changed) => {
          setError(null);
          setDone(null);
          try {
            await command(session, "PUT", `/api/v1/customers/${customerId}/custom-fields`, { values: changed });
            setDone("Saved");
            setGeneration(generation + 1);
          } catch (e) {
            setError(CommandError.from(e));
          }
        }}
      />
      {done ? <InlineNotification kind="success" title={done} hideCloseButton lowContrast role="status" /> : null}
    </>
  );
}
