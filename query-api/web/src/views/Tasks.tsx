// Tasks: mine, the team's, overdue and upcoming, with the customer each is for, 50 a page with
// the total; a new task for any customer; start and complete (with what came of it). A manager
// lands on the team's tasks, a CSM on their own.

import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { Button, Checkbox, ContentSwitcher, Modal, Switch, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@carbon/react";
import { graphql } from "../gql";
import type { TaskFilter } from "../gql/graphql";
import { useSession } from "../App";
import { usePortfolioLive, useReadBack, useUrlParams } from "../hooks";
import { TaskBulk, type SelectedTask } from "./TaskBulk";
import { can } from "../api/session";
import { CustomerPicker, Pending, Problem, Table } from "../components";
import { count, day, words } from "../format";
import { Downloads, sheets } from "../downloads";
import { CreateTaskForm, TaskActions } from "../forms";

const TASKS = graphql(`
  query Tasks($filter: TaskFilter, $first: Int!, $after: String) {
    tasks(filter: $filter, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        ...TaskFields
      }
    }
  }
  fragment TaskFields on Task {
    taskId
    customerId
    customerName
    title
    kind
    priority
    assigneeId
    assigneeName
    dueDate
    status
  }
`);

const VIEWS = ["Mine", "Team", "Overdue", "Upcoming"] as const;
type View = (typeof VIEWS)[number];
const PAGE = 50;

export default function Tasks() {
  const session = useSession();
  const { params, set } = useUrlParams();
  // A manager's day starts with the team's tasks; a CSM's with their own.
  const landing: View = session.role === "manager" || session.role === "admin" ? "Team" : "Mine";
  const view = (VIEWS as readonly string[]).includes(params.get("view") ?? "") ? (params.get("view") as View) : landing;
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const [creating, setCreating] = useState(false);
  const filter: TaskFilter = {
    state: "OPEN",
    ...(view === "Mine" ? { assigneeId: session.user } : {}),
    ...(view === "Overdue" ? { overdue: true } : {}),
    ...(view === "Upcoming" ? { dueWithinDays: 14 } : {}),
  };
  const [{ data, fetching, error }, refetch] = useQuery({ query: TASKS, variables: { filter, first: PAGE, after: cursors[cursors.length - 1] } });
  const refresh = () => refetch({ requestPolicy: "network-only" });
  usePortfolioLive(refresh);
  const expect = useReadBack(data, refresh);
  // Tasks chosen for a bulk action, kept across pages and views.
  const [selected, setSelected] = useState<Map<string, SelectedTask>>(new Map());
  const bulk = can.write(session.role);
  const first = (cursors.length - 1) * PAGE;
  const tasks = data?.tasks;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Tasks</h1>
      <div className="cs-toolbar">
        <Downloads
          choices={sheets("tasks")}
          params={{ state: filter.state, assigneeId: filter.assigneeId, overdue: filter.overdue ? "true" : null }}
        />
        {can.write(session.role) ? (
          <Button size="md" onClick={() => setCreating(true)}>
            New task
          </Button>
        ) : null}
      </div>
      {bulk ? (
        <div className="cs-toolbar" role="group" aria-label="Selected tasks">
          <TaskBulk
            selected={selected}
            onDone={(expected) => {
              const chosen = new Map(selected);
              setSelected(new Map());
              if (expected)
                expect((read) =>
                  [...chosen].every(([taskId, before]) => expected(read.tasks.nodes.find((t) => t.taskId === taskId), before)),
                );
            }}
          />
        </div>
      ) : null}
      <ContentSwitcher
        onChange={({ name }) => {
          set("view", String(name));
          setCursors([null]);
        }}
        selectedIndex={VIEWS.indexOf(view)}
        size="md"
        style={{ maxWidth: "32rem", marginBottom: "1.5rem" }}
      >
        {VIEWS.map((v) => (
          <Switch key={v} name={v} text={v} />
        ))}
      </ContentSwitcher>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {tasks ? (
        <div>
          <Table cards size="md" aria-label={`${view} tasks`}>
            <TableHead>
              <TableRow>
                {bulk ? (
                  <TableHeader>
                    <span className="cs-visually-hidden">Selected</span>
                  </TableHeader>
                ) : null}
                <TableHeader>Task</TableHeader>
                <TableHeader>Customer</TableHeader>
                <TableHeader>Kind</TableHeader>
                <TableHeader>Priority</TableHeader>
                <TableHeader>Assignee</TableHeader>
                <TableHeader>Due</TableHeader>
                <TableHeader>Status</TableHeader>
                <TableHeader>Actions</TableHeader>
              </TableRow>
            </TableHead>
            <TableBody>
              {tasks.nodes.map((t) => (
                <TableRow key={t.taskId} data-testid="task-row">
                  {bulk ? (
                    <TableCell>
                      <Checkbox
                        id={`select-task-${t.taskId}`}
                        labelText={`Select ${t.title}`}
                        hideLabel
                        checked={selected.has(t.taskId)}
                        onChange={(_, { checked }) => {
                          const next = new Map(selected);
                          if (checked) next.set(t.taskId, { title: t.title, dueDate: t.dueDate });
                          else next.delete(t.taskId);
                          setSelected(next);
                        }}
                      />
                    </TableCell>
                  ) : null}
                  <TableCell>{t.title}</TableCell>
                  <TableCell>
                    <Link to={`/customers/${t.customerId}`}>{t.customerName}</Link>
                  </TableCell>
                  <TableCell>{words(t.kind)}</TableCell>
                  <TableCell>{words(t.priority)}</TableCell>
                  <TableCell>{t.assigneeId === session.user ? "me" : (t.assigneeName ?? t.assigneeId)}</TableCell>
                  <TableCell>{day(t.dueDate)}</TableCell>
                  <TableCell>{words(t.status)}</TableCell>
                  <TableCell>
                    {can.write(session.role) ? <TaskActions customerId={t.customerId} taskId={t.taskId} status={t.status} title={t.title} onDone={refresh} /> : null}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          {tasks.nodes.length === 0 ? (
            <p className="cs-muted" style={{ marginTop: "1rem" }}>
              No tasks here.
            </p>
          ) : (
            <nav className="cs-toolbar" aria-label="Task pages" style={{ marginTop: "1rem", alignItems: "center" }}>
              <Button kind="secondary" size="sm" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
                Previous {PAGE}
              </Button>
              <span className="cs-muted" data-testid="tasks-total">
                {first + 1} to {first + tasks.nodes.length} of {count(tasks.totalCount, "task", "tasks")}
              </span>
              <Button kind="secondary" size="sm" disabled={!tasks.pageInfo.hasNextPage} onClick={() => setCursors([...cursors, tasks.pageInfo.endCursor ?? null])}>
                Next {PAGE}
              </Button>
            </nav>
          )}
        </div>
      ) : null}
      {creating ? (
        <NewTask
          onClose={() => {
            setCreating(false);
            refresh();
          }}
        />
      ) : null}
    </>
  );
}

/** A new task for a customer found by name. */
function NewTask({ onClose }: { onClose: () => void }) {
  const [customer, setCustomer] = useState<{ customerId: string; name: string } | null>(null);
  return (
    <Modal open passiveModal modalHeading={customer ? `A new task for ${customer.name}` : "A new task"} onRequestClose={onClose}>
      <CustomerPicker id="new-task-customer" label="Customer" value={customer?.customerId ?? null} onChange={(id, name) => setCustomer(id && name ? { customerId: id, name } : null)} />
      {customer ? (
        <div style={{ marginTop: "1rem" }}>
          <CreateTaskForm customerId={customer.customerId} />
        </div>
      ) : null}
    </Modal>
  );
}
