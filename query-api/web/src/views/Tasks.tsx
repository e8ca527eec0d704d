import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { ContentSwitcher, Switch, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@carbon/react";
import { graphql } from "../gql";
import type { TaskFilter } from "../gql/graphql";
import { useSession } from "../App";
import { usePortfolioLive } from "../hooks";
import { can } from "../api/session";
import { Pending, Problem, Table } from "../components";
import { day, words } from "../format";
import { Downloads, sheets } from "../downloads";
import { TaskActions } from "../forms";

const TASKS = graphql(`
  query Tasks($filter: TaskFilter) {
    tasks(filter: $filter, first: 100) {
      nodes {
        ...TaskFields
      }
    }
  }
  fragment TaskFields on Task {
    taskId
    customerId
    title
    kind
    priority
    assigneeId
    dueDate
    status
  }
`);


const VIEWS = ["Mine", "Team", "Overdue", "Upcoming"] as const;

export default function Tasks() {
  const session = useSession();
  const [view, setView] = useState<(typeof VIEWS)[number]>("Mine");
  const filter: TaskFilter = {
    state: "OPEN",
    ...(view === "Mine" ? { assigneeId: session.user } : {}),
    ...(view === "Overdue" ? { overdue: true } : {}),
    ...(view === "Upcoming" ? { dueWithinDays: 14 } : {}),
  };
  const [{ data, fetching, error }, refetch] = useQuery({ query: TASKS, variables: { filter } });
  const refresh = () => refetch({ requestPolicy: "network-only" });
  usePortfolioLive(refresh);
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Tasks</h1>
      <Downloads
        choices={sheets("tasks")}
        params={{ state: filter.state, assigneeId: filter.assigneeId, overdue: filter.overdue ? "true" : null }}
      />
      <ContentSwitcher
        onChange={({ name }) => setView(name as (typeof VIEWS)[number])}
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
      {data ? (
        <div>
          <Table size="md" aria-label={`${view} tasks`}>
            <TableHead>
              <TableRow>
                <TableHeader>Task</TableHeader>
                <TableHeader>Kind</TableHeader>
                <TableHeader>Priority</TableHeader>
                <TableHeader>Assignee</TableHeader>
                <TableHeader>Due</TableHeader>
                <TableHeader>Status</TableHeader>
                <TableHeader>Actions</TableHeader>
              </TableRow>
            </TableHead>
            <TableBody>
              {data.tasks.nodes.map((t) => (
                <TableRow key={t.taskId} data-testid="task-row">
                  <TableCell>
                    <Link to={`/customers/${t.customerId}`}>{t.title}</Link>
                  </TableCell>
                  <TableCell>{words(t.kind)}</TableCell>
                  <TableCell>{t.priority}</TableCell>
                  <TableCell>{t.assigneeId}</TableCell>
                  <TableCell>{day(t.dueDate)}</TableCell>
                  <TableCell>{words(t.status)}</TableCell>
                  <TableCell>
                    {can.write(session.role) ? <TaskActions customerId={t.customerId} taskId={t.taskId} status={t.status} onDone={refresh} /> : null}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          {data.tasks.nodes.length === 0 ? <p className="cs-muted" style={{ marginTop: "1rem" }}>No tasks here.</p> : null}
        </div>
      ) : null}
    </>
  );
}
