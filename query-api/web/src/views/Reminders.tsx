// Reminders (docs/WEB.md, "Reminders"): the queue of what fired, mine or my team's (managers),
// by customer and by state (open, overdue, snoozed, done, held back), 50 a page with the total;
// each says why it fired with links to the facts, and is completed, snoozed with a reason or
// dismissed here. Below, what is still to come, with each schedule in words.

import { useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { Button, Select, SelectItem, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import type { ReminderScope, ReminderStatus } from "../gql/graphql";
import { useUrlParams } from "../hooks";
import { useSession } from "../App";
import { can } from "../api/session";
import { CustomerPicker, Pending, Problem, Table } from "../components";
import { count, when } from "../format";
import { CommandButton } from "../forms";
import { DismissDialog, NewReminder, ReminderCounts, scheduleWords, SnoozeDialog, WhyFired, type Occurrence } from "../reminders";

const QUEUE = graphql(`
  query ReminderQueue($scope: ReminderScope, $status: ReminderStatus, $customerId: UUID, $first: Int!, $after: String) {
    reminders(scope: $scope, status: $status, customerId: $customerId, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        reminderId
        occurrenceKey
        state
        title
        note
        trigger
        ruleId
        rulesVersion
        ownerName
        customerId
        customerName
        dueAt
        why
        facts {
          label
          kind
          id
          streamId
        }
        snoozedUntil
        snoozedUntilEvent
        snoozeReason
        history {
          what
          at
          by
          reason
        }
      }
    }
  }
`);

const UPCOMING = graphql(`
  query UpcomingReminders($scope: ReminderScope, $customerId: UUID) {
    upcomingReminders(scope: $scope, customerId: $customerId, first: 50) {
      totalCount
      items {
        reminderId
        title
        kind
        nextDueAt
        timeZone
        schedule
        customerId
        customerName
      }
    }
  }
`);

const STATES: Array<[string, string]> = [
  ["OPEN", "Due"],
  ["OVERDUE", "Overdue (over a day)"],
  ["SNOOZED", "Snoozed"],
  ["DONE", "Completed or dismissed"],
  ["SUPPRESSED", "Held back by a snooze"],
];

const STATE_TAG: Record<string, "blue" | "red" | "gray" | "green" | "purple"> = {
  open: "blue",
  snoozed: "purple",
  completed: "green",
  dismissed: "gray",
  suppressed: "gray",
};

const TRIGGER_WORDS: Record<string, string> = {
  once: "one-time",
  recurring: "repeating",
  relative: "relative to a date",
  rule: "rule",
};

const PAGE = 50;

export default function Reminders() {
  const session = useSession();
  const oversees = session.role !== "csm";
  const acts = can.record(session.role);
  const { params, set } = useUrlParams();
  const scope = (params.get("scope") ?? "MINE") as ReminderScope;
  const status = (params.get("status") ?? "OPEN") as ReminderStatus;
  const customerId = params.get("customer");
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const [snoozing, setSnoozing] = useState<Occurrence | null>(null);
  const [dismissing, setDismissing] = useState<Occurrence | null>(null);
  const [changed, setChanged] = useState(0);
  const choose = (name: string, value: string | null) => {
    set(name, value);
    setCursors([null]);
  };
  const [{ data, fetching, error }, refetch] = useQuery({
    query: QUEUE,
    variables: { scope, status, customerId, first: PAGE, after: cursors[cursors.length - 1] },
  });
  const [{ data: upcoming }, refetchUpcoming] = useQuery({ query: UPCOMING, variables: { scope, customerId } });
  const refresh = () => {
    refetch({ requestPolicy: "network-only" });
    refetchUpcoming({ requestPolicy: "network-only" });
    setChanged((n) => n + 1);
  };
  // The scheduler and the projector work in the background: read again shortly after a change.
  const refreshSoon = () => {
    refresh();
    window.setTimeout(refresh, 800);
  };
  // Reminders come due while the page is open: read again every 15 seconds.
  useEffect(() => {
    const timer = window.setInterval(refresh, 15_000);
    return () => window.clearInterval(timer);
  });
  const reminders = data?.reminders;
  const first = (cursors.length - 1) * PAGE;
  return (
    <>
      <div className="cs-toolbar" style={{ justifyContent: "space-between", marginBottom: "1rem" }}>
        <h1>Reminders</h1>
        {acts ? <NewReminder onDone={refreshSoon} /> : null}
      </div>
      <ReminderCounts changed={changed} />
      <div className="cs-toolbar" role="group" aria-label="Which reminders">
        {oversees ? (
          <Select id="reminders-scope" labelText="Whose" value={scope} onChange={(e) => choose("scope", e.target.value === "MINE" ? null : e.target.value)}>
            <SelectItem value="MINE" text="Mine" />
            <SelectItem value="TEAM" text="My team's" />
            <SelectItem value="ALL" text="Everyone's" />
          </Select>
        ) : null}
        <Select id="reminders-status" labelText="State" value={status} onChange={(e) => choose("status", e.target.value === "OPEN" ? null : e.target.value)}>
          {STATES.map(([value, text]) => (
            <SelectItem key={value} value={value} text={text} />
          ))}
        </Select>
        <CustomerPicker id="reminders-customer" label="Customer (empty: every one)" value={customerId} onChange={(id) => choose("customer", id)} />
      </div>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {reminders ? (
        <div>
          <Table cards size="md" aria-label="Reminders">
            <TableHead>
              <TableRow>
                <TableHeader>Due</TableHeader>
                <TableHeader>Reminder</TableHeader>
                <TableHeader>Why this fired</TableHeader>
                <TableHeader>For</TableHeader>
                <TableHeader>State</TableHeader>
              </TableRow>
            </TableHead>
            <TableBody>
              {reminders.nodes.map((r) => {
                const occurrence = { reminderId: r.reminderId, occurrenceKey: r.occurrenceKey, title: r.title, customerId: r.customerId, customerName: r.customerName };
                const open = r.state === "open" || r.state === "snoozed";
                return (
                  <TableRow key={`${r.reminderId}/${r.occurrenceKey}`} data-testid="reminder-row">
                    <TableCell>{when(r.dueAt)}</TableCell>
                    <TableCell>
                      <strong>{r.title}</strong>
                      {r.customerId ? (
                        <>
                          {" · "}
                          <Link to={`/customers/${r.customerId}`}>{r.customerName}</Link>
                        </>
                      ) : null}
                      <div className="cs-muted">
                        {TRIGGER_WORDS[r.trigger] ?? r.trigger}
                        {r.rulesVersion ? ` · rules version ${r.rulesVersion}` : ""}
                      </div>
                      {r.note ? <div className="cs-muted">{r.note}</div> : null}
                    </TableCell>
                    <TableCell>
                      <WhyFired why={r.why} facts={r.facts} customerId={r.customerId} />
                      {r.history.length > 1 ? (
                        <details>
                          <summary>History ({count(r.history.length, "step", "steps")})</summary>
                          <ol className="cs-facts" data-testid="reminder-history">
                            {r.history.map((step, index) => (
                              <li key={index}>
                                {when(step.at)}: {step.what}
                                {step.by ? ` by ${step.by}` : ""}
                                {step.reason ? `: ${step.reason}` : ""}
                              </li>
                            ))}
                          </ol>
                        </details>
                      ) : null}
                    </TableCell>
                    <TableCell>{r.ownerName ?? "—"}</TableCell>
                    <TableCell>
                      <Tag type={STATE_TAG[r.state] ?? "gray"} size="sm">
                        {r.state === "suppressed" ? "held back" : r.state}
                      </Tag>
                      {r.state === "snoozed" ? (
                        <div className="cs-muted" data-testid="reminder-snooze">
                          {r.snoozedUntilEvent ?? `until ${when(r.snoozedUntil)}`}: {r.snoozeReason}
                        </div>
                      ) : null}
                      {open && acts ? (
                        <div className="cs-toolbar" style={{ marginTop: "0.5rem" }}>
                          <CommandButton
                            label="Complete"
                            path={`/api/v1/reminders/${r.reminderId}/complete`}
                            body={{ occurrence_key: r.occurrenceKey }}
                            onDone={refreshSoon}
                          />
                          <Button size="sm" kind="ghost" onClick={() => setSnoozing(occurrence)}>
                            Snooze
                          </Button>
                          <Button size="sm" kind="ghost" onClick={() => setDismissing(occurrence)}>
                            Dismiss
                          </Button>
                        </div>
                      ) : null}
                    </TableCell>
                  </TableRow>
                );
              })}
            </TableBody>
          </Table>
          {reminders.nodes.length === 0 ? (
            <p className="cs-muted" style={{ marginTop: "1rem" }} data-testid="reminders-empty">
              Nothing here.
            </p>
          ) : (
            <nav className="cs-toolbar" aria-label="Reminder pages" style={{ marginTop: "1rem", alignItems: "center" }}>
              <Button kind="secondary" size="sm" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
                Previous {PAGE}
              </Button>
              <span className="cs-muted" data-testid="reminders-total">
                {first + 1} to {first + reminders.nodes.length} of {count(reminders.totalCount, "reminder", "reminders")}
              </span>
              <Button kind="secondary" size="sm" disabled={!reminders.pageInfo.hasNextPage} onClick={() => setCursors([...cursors, reminders.pageInfo.endCursor ?? null])}>
                Next {PAGE}
              </Button>
            </nav>
          )}
        </div>
      ) : null}
      <section aria-labelledby="upcoming-heading" style={{ marginTop: "2rem" }}>
        <h2 id="upcoming-heading">Still to come</h2>
        {upcoming && upcoming.upcomingReminders.totalCount === 0 ? (
          <p className="cs-muted" data-testid="upcoming-total">
            No reminder is still to come.
          </p>
        ) : null}
        {upcoming && upcoming.upcomingReminders.totalCount > 0 ? (
          <>
            <Table size="md" aria-labelledby="upcoming-heading">
              <TableHead>
                <TableRow>
                  <TableHeader>Next</TableHeader>
                  <TableHeader>Reminder</TableHeader>
                  <TableHeader>Schedule</TableHeader>
                  <TableHeader>
                    <span className="cs-visually-hidden">Actions</span>
                  </TableHeader>
                </TableRow>
              </TableHead>
              <TableBody>
                {upcoming.upcomingReminders.items.map((u) => (
                  <TableRow key={u.reminderId} data-testid="upcoming-row">
                    <TableCell>{when(u.nextDueAt)}</TableCell>
                    <TableCell>
                      {u.title}
                      {u.customerId ? (
                        <>
                          {" · "}
                          <Link to={`/customers/${u.customerId}`}>{u.customerName}</Link>
                        </>
                      ) : null}
                    </TableCell>
                    <TableCell>{scheduleWords(u.schedule as Record<string, unknown>, u.timeZone)}</TableCell>
                    <TableCell>
                      {acts ? <CommandButton label="Stop" kind="ghost" path={`/api/v1/reminders/${u.reminderId}/cancel`} body={{}} onDone={refreshSoon} /> : null}
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
            <p className="cs-muted" data-testid="upcoming-total">
              {upcoming.upcomingReminders.items.length < upcoming.upcomingReminders.totalCount
                ? `The next ${upcoming.upcomingReminders.items.length} of ${count(upcoming.upcomingReminders.totalCount, "reminder", "reminders")} to come.`
                : `${count(upcoming.upcomingReminders.totalCount, "reminder", "reminders")} to come.`}
            </p>
          </>
        ) : null}
      </section>
      {snoozing ? <SnoozeDialog occurrence={snoozing} onClose={() => setSnoozing(null)} onDone={() => (setSnoozing(null), refreshSoon())} /> : null}
      {dismissing ? <DismissDialog occurrence={dismissing} onClose={() => setDismissing(null)} onDone={() => (setDismissing(null), refreshSoon())} /> : null}
    </>
  );
}
