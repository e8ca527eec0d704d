// Today (docs/WEB.md, "Today"): one ranked list of what needs the signed-in user, each with the
// reason it is there: reminders due, tasks overdue or due today, accounts due a contact, new
// alerts and renewals within 30 days; riskiest and largest accounts first, then by due day. A
// CSM lands here after signing in.

import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { Button, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import { useSession } from "../App";
import { can } from "../api/session";
import { Pager, Pending, Problem, Table } from "../components";
import { count, day, money, one } from "../format";
import { CommandButton } from "../forms";
import { SnoozeDialog, type Occurrence } from "../reminders";

const TODAY = graphql(`
  query Today($offset: Int!, $first: Int!) {
    today(offset: $offset, first: $first) {
      day
      csmName
      totalCount
      counts {
        kind
        count
      }
      items {
        kind
        title
        reason
        due
        customerId
        customerName
        arr
        riskScore
        riskBand
        reminderId
        occurrenceKey
        taskId
        alertId
      }
    }
  }
`);

const KIND_WORDS: Record<string, string> = {
  REMINDER: "reminder",
  OVERDUE_TASK: "overdue task",
  TASK_DUE_TODAY: "task due today",
  PLAYBOOK_STEP: "playbook step",
  NEXT_TOUCH: "contact due",
  ALERT: "new alert",
  RENEWAL: "renewal",
};

/** The same, for more than one. */
const KIND_PLURALS: Record<string, string> = {
  REMINDER: "reminders",
  OVERDUE_TASK: "overdue tasks",
  TASK_DUE_TODAY: "tasks due today",
  PLAYBOOK_STEP: "playbook steps",
  NEXT_TOUCH: "contacts due",
  ALERT: "new alerts",
  RENEWAL: "renewals",
};

const KIND_TAG: Record<string, "purple" | "red" | "blue" | "teal" | "magenta" | "cyan"> = {
  REMINDER: "purple",
  OVERDUE_TASK: "red",
  TASK_DUE_TODAY: "blue",
  PLAYBOOK_STEP: "cyan",
  NEXT_TOUCH: "teal",
  ALERT: "magenta",
  RENEWAL: "cyan",
};

const BAND_TAG: Record<string, "red" | "warm-gray" | "green"> = { HIGH: "red", WATCH: "warm-gray", LOW: "green" };

const PAGE = 50;

export default function Today() {
  const session = useSession();
  const acts = can.record(session.role);
  const [offset, setOffset] = useState(0);
  const [snoozing, setSnoozing] = useState<Occurrence | null>(null);
  const [{ data, fetching, error }, refetch] = useQuery({ query: TODAY, variables: { offset, first: PAGE } });
  const refresh = () => {
    refetch({ requestPolicy: "network-only" });
    window.setTimeout(() => refetch({ requestPolicy: "network-only" }), 800);
  };
  const today = data?.today;
  return (
    <>
      <h1 style={{ marginBottom: "0.5rem" }}>Today</h1>
      {today ? (
        <p className="cs-muted" style={{ marginBottom: "1rem" }} data-testid="today-summary">
          {day(today.day)}: {count(today.totalCount, "thing needs you", "things need you")}
          {today.csmName ? `, on ${today.csmName}'s accounts and your own reminders and tasks` : ""}.{" "}
          {today.csmName ? null : (
            <>
              Only your reminders and tasks are here: <Link to="/settings">say which CSM you are</Link> to see your accounts&apos; contacts, alerts and renewals too.
            </>
          )}
        </p>
      ) : null}
      {today && today.counts.length ? (
        <ul className="cs-toolbar" aria-label="How many of each" style={{ listStyle: "none", marginBottom: "1rem" }}>
          {today.counts.map((c) => (
            <li key={c.kind}>
              <Tag type={KIND_TAG[c.kind]} size="md">
                {count(c.count, KIND_WORDS[c.kind], KIND_PLURALS[c.kind])}
              </Tag>
            </li>
          ))}
        </ul>
      ) : null}
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {today ? (
        <>
          <Table cards size="md" aria-label="What needs you today">
            <TableHead>
              <TableRow>
                <TableHeader>What</TableHeader>
                <TableHeader>Account</TableHeader>
                <TableHeader>Why it is here</TableHeader>
                <TableHeader>Due</TableHeader>
                <TableHeader>
                  <span className="cs-visually-hidden">Actions</span>
                </TableHeader>
              </TableRow>
            </TableHead>
            <TableBody>
              {today.items.map((item, index) => (
                <TableRow key={`${item.kind}-${item.reminderId ?? item.taskId ?? item.alertId ?? item.customerId}-${item.occurrenceKey ?? ""}-${index}`} data-testid="today-row">
                  <TableCell>
                    <Tag type={KIND_TAG[item.kind]} size="sm">
                      {KIND_WORDS[item.kind]}
                    </Tag>
                    <div>
                      <strong>{item.title}</strong>
                    </div>
                  </TableCell>
                  <TableCell>
                    {item.customerId ? (
                      <>
                        <Link to={`/customers/${item.customerId}`}>{item.customerName}</Link>
                        <div className="cs-muted">
                          {item.arr ? money(item.arr) : ""}
                          {item.riskBand ? (
                            <>
                              {" · risk "}
                              <Tag type={BAND_TAG[item.riskBand]} size="sm">
                                {one(item.riskScore)} {item.riskBand.toLowerCase()}
                              </Tag>
                            </>
                          ) : null}
                        </div>
                      </>
                    ) : (
                      "—"
                    )}
                  </TableCell>
                  <TableCell data-testid="today-reason">{item.reason}</TableCell>
                  <TableCell>{item.due ? day(item.due) : "—"}</TableCell>
                  <TableCell>
                    {item.kind === "REMINDER" && item.reminderId && item.occurrenceKey && acts ? (
                      <div className="cs-toolbar">
                        <CommandButton label="Complete" path={`/api/v1/reminders/${item.reminderId}/complete`} body={{ occurrence_key: item.occurrenceKey }} onDone={refresh} />
                        <Button
                          size="sm"
                          kind="ghost"
                          onClick={() =>
                            setSnoozing({ reminderId: item.reminderId!, occurrenceKey: item.occurrenceKey!, title: item.title, customerId: item.customerId, customerName: item.customerName })
                          }
                        >
                          Snooze
                        </Button>
                      </div>
                    ) : null}
                    {item.taskId && item.kind === "PLAYBOOK_STEP" ? <Link to={`/customers/${item.customerId}`}>Open the playbook</Link> : null}
                    {item.taskId && item.kind !== "PLAYBOOK_STEP" ? <Link to={`/tasks?customer=${item.customerId}`}>Open the task</Link> : null}
                    {item.kind === "NEXT_TOUCH" ? <Link to={`/customers/${item.customerId}`}>Log a contact</Link> : null}
                    {item.alertId ? <Link to={`/alerts?customer=${item.customerId}`}>See the alert</Link> : null}
                    {item.kind === "RENEWAL" ? <Link to="/renewals">Renewals</Link> : null}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          {today.items.length === 0 ? (
            <p className="cs-muted" style={{ marginTop: "1rem" }} data-testid="today-empty">
              Nothing needs you today.
            </p>
          ) : (
            <Pager label="Today's list" offset={offset} size={PAGE} total={today.totalCount} onChange={setOffset} />
          )}
        </>
      ) : null}
      {snoozing ? <SnoozeDialog occurrence={snoozing} onClose={() => setSnoozing(null)} onDone={() => (setSnoozing(null), refresh())} /> : null}
    </>
  );
}
