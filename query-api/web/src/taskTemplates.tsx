// Task templates and recurring tasks on a customer's 360 (docs/WEB.md, "Tasks"): make a task and
// its subtasks from a template, and repeat a task every period (a monthly check-in), with the
// customer's recurring tasks listed and stoppable.

import { useState } from "react";
import { useQuery } from "urql";
import { Button, Form, InlineNotification, NumberInput, Select, SelectItem, TableBody, TableCell, TableHead, TableHeader, TableRow, TextInput } from "@carbon/react";
import { graphql } from "./gql";
import { useSession } from "./App";
import { command, CommandError } from "./api/commands";
import { Table } from "./components";
import { day } from "./format";
import { CommandButton } from "./forms";
import { rruleWords } from "./reminders";

export const TASK_TEMPLATES = graphql(`
  query TaskTemplates {
    taskTemplates {
      templateId
      name
      title
      description
      kind
      priority
      dueOffsetDays
      version
      savedAt
      subtasks {
        title
        dueOffsetDays
      }
    }
  }
`);

const RECURRING = graphql(`
  query RecurringTasks($customerId: UUID!) {
    recurringTasks(customerId: $customerId) {
      recurrenceId
      title
      assigneeId
      rrule
      starts
      dueOffsetDays
      active
      currentPeriod
      nextPeriod
      stoppedBy
    }
  }
`);

function Refusal({ error }: { error: CommandError | null }) {
  if (!error) return null;
  const fields = Object.values(error.fields).filter((v) => typeof v === "string");
  return <InlineNotification kind="error" title="Refused" subtitle={fields.length ? fields.join("; ") : error.message} hideCloseButton lowContrast role="alert" />;
}

function todayValue(): string {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}-${String(now.getDate()).padStart(2, "0")}`;
}

/** A task and its subtasks from a template, due counted from a start day. */
export function FromTemplateForm({ customerId, onDone }: { customerId: string; onDone: () => void }) {
  const session = useSession();
  const [{ data }] = useQuery({ query: TASK_TEMPLATES });
  const [templateId, setTemplateId] = useState("");
  const [assignee, setAssignee] = useState(session.user);
  const [start, setStart] = useState(todayValue);
  const [error, setError] = useState<CommandError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const templates = data?.taskTemplates ?? [];
  const chosen = templates.find((t) => t.templateId === templateId);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setError(null);
    setDone(null);
    try {
      await command(session, "POST", `/api/v1/customers/${customerId}/tasks/from-template`, { template_id: templateId, assignee_id: assignee, start });
      setDone(`Made "${chosen?.title}" and ${chosen?.subtasks.length ?? 0} subtasks`);
      onDone();
    } catch (e) {
      setError(CommandError.from(e));
    }
  };
  if (!templates.length) return <p className="cs-muted">No task template yet: admins and managers add them in Settings › Task templates.</p>;
  return (
    <Form onSubmit={submit} className="cs-form" aria-label="Tasks from a template">
      <Select id="template-choice" labelText="Template" value={templateId} onChange={(e) => setTemplateId(e.target.value)}>
        <SelectItem value="" text="Choose a template" />
        {templates.map((t) => (
          <SelectItem key={t.templateId} value={t.templateId} text={t.name} />
        ))}
      </Select>
      {chosen ? (
        <p className="cs-muted" data-testid="template-preview">
          {chosen.title}, due {chosen.dueOffsetDays} days after the start
          {chosen.subtasks.length ? `; subtasks: ${chosen.subtasks.map((s) => `${s.title} (day ${s.dueOffsetDays})`).join(", ")}` : ""}
        </p>
      ) : null}
      <TextInput id="template-assignee" labelText="Assignee (user id)" value={assignee} onChange={(e) => setAssignee(e.target.value)} />
      <TextInput id="template-start" type="date" labelText="Counting from" value={start} onChange={(e) => setStart(e.target.value)} />
      <Refusal error={error} />
      {done ? <InlineNotification kind="success" title={done} hideCloseButton lowContrast role="status" /> : null}
      <Button type="submit" disabled={!templateId}>
        Make the tasks
      </Button>
    </Form>
  );
}

const WEEKDAYS: Array<[string, string]> = [
  ["MO", "Monday"],
  ["TU", "Tuesday"],
  ["WE", "Wednesday"],
  ["TH", "Thursday"],
  ["FR", "Friday"],
];

/** A customer's recurring tasks, and the form that starts one. */
export function RecurringTasks({ customerId, writable }: { customerId: string; writable: boolean }) {
  const session = useSession();
  const [{ data }, refetch] = useQuery({ query: RECURRING, variables: { customerId } });
  const [title, setTitle] = useState("Monthly check-in");
  const [kind, setKind] = useState("follow_up");
  const [priority, setPriority] = useState("medium");
  const [assignee, setAssignee] = useState(session.user);
  const [every, setEvery] = useState("month");
  const [monthDay, setMonthDay] = useState(1);
  const [weekday, setWeekday] = useState("MO");
  const [starts, setStarts] = useState(todayValue);
  const [offset, setOffset] = useState(5);
  const [error, setError] = useState<CommandError | null>(null);
  const refresh = () => {
    refetch({ requestPolicy: "network-only" });
    window.setTimeout(() => refetch({ requestPolicy: "network-only" }), 800);
  };
  const rrule = every === "month" ? `FREQ=MONTHLY;BYMONTHDAY=${monthDay}` : every === "week" ? `FREQ=WEEKLY;BYDAY=${weekday}` : `FREQ=WEEKLY;INTERVAL=2;BYDAY=${weekday}`;
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      await command(session, "POST", `/api/v1/customers/${customerId}/recurring-tasks`, {
        title,
        kind,
        priority,
        assignee_id: assignee,
        rrule,
        starts,
        due_offset_days: offset,
      });
      refresh();
    } catch (e) {
      setError(CommandError.from(e));
    }
  };
  const list = data?.recurringTasks ?? [];
  return (
    <section className="cs-section" aria-labelledby="recurring-heading" style={{ marginTop: "1.5rem" }}>
      <h2 id="recurring-heading">Recurring tasks</h2>
      {list.length ? (
        <Table size="sm" aria-labelledby="recurring-heading">
          <TableHead>
            <TableRow>
              <TableHeader>Task</TableHeader>
              <TableHeader>Repeats</TableHeader>
              <TableHeader>This period</TableHeader>
              <TableHeader>Next</TableHeader>
              <TableHeader>
                <span className="cs-visually-hidden">Actions</span>
              </TableHeader>
            </TableRow>
          </TableHead>
          <TableBody>
            {list.map((r) => (
              <TableRow key={r.recurrenceId} data-testid="recurring-task">
                <TableCell>
                  {r.title} <span className="cs-muted">for {r.assigneeId}</span>
                </TableCell>
                <TableCell>
                  {rruleWords(r.rrule)} from {day(r.starts)}, due {r.dueOffsetDays} days into each
                </TableCell>
                <TableCell>{r.currentPeriod ? day(r.currentPeriod) : "not started"}</TableCell>
                <TableCell>{r.active ? (r.nextPeriod ? day(r.nextPeriod) : "none") : `stopped by ${r.stoppedBy}`}</TableCell>
                <TableCell>
                  {r.active && writable ? <CommandButton label="Stop" kind="ghost" path={`/api/v1/recurring-tasks/${r.recurrenceId}/stop`} body={{}} onDone={refresh} /> : null}
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      ) : (
        <p className="cs-muted">None.</p>
      )}
      {writable ? (
        <Form onSubmit={submit} className="cs-form" aria-label="Repeat a task" style={{ marginTop: "1rem" }}>
          <TextInput id="recurring-title" labelText="Task" value={title} onChange={(e) => setTitle(e.target.value)} />
          <div className="cs-toolbar">
            <Select id="recurring-kind" labelText="Kind" value={kind} onChange={(e) => setKind(e.target.value)}>
              {["follow_up", "qbr_prep", "escalation", "onboarding", "renewal", "general"].map((k) => (
                <SelectItem key={k} value={k} text={k.replace("_", " ")} />
              ))}
            </Select>
            <Select id="recurring-priority" labelText="Priority" value={priority} onChange={(e) => setPriority(e.target.value)}>
              {["low", "medium", "high", "urgent"].map((p) => (
                <SelectItem key={p} value={p} text={p} />
              ))}
            </Select>
            <TextInput id="recurring-assignee" labelText="Assignee (user id)" value={assignee} onChange={(e) => setAssignee(e.target.value)} />
          </div>
          <div className="cs-toolbar">
            <Select id="recurring-every" labelText="Every" value={every} onChange={(e) => setEvery(e.target.value)}>
              <SelectItem value="month" text="month" />
              <SelectItem value="week" text="week" />
              <SelectItem value="fortnight" text="two weeks" />
            </Select>
            {every === "month" ? (
              <NumberInput id="recurring-month-day" label="On day" min={1} max={31} value={monthDay} onChange={(_, { value }) => setMonthDay(Number(value) || 1)} />
            ) : (
              <Select id="recurring-weekday" labelText="On" value={weekday} onChange={(e) => setWeekday(e.target.value)}>
                {WEEKDAYS.map(([code, name]) => (
                  <SelectItem key={code} value={code} text={name} />
                ))}
              </Select>
            )}
            <TextInput id="recurring-starts" type="date" labelText="From" value={starts} onChange={(e) => setStarts(e.target.value)} />
            <NumberInput id="recurring-offset" label="Due days into each" min={0} max={365} value={offset} onChange={(_, { value }) => setOffset(Number(value) || 0)} />
          </div>
          <p className="cs-muted">
            {rruleWords(rrule)}: each period&apos;s task is made when the period starts, or at once when the one before it is closed; never twice.
          </p>
          <Refusal error={error} />
          <Button type="submit">Repeat the task</Button>
        </Form>
      ) : null}
    </section>
  );
}
