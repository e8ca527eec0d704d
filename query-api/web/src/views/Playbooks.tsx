// Playbooks (docs/WEB.md, "Playbooks"): the report of the runs started in a period by playbook
// (how many, open, completed, ended by their exit condition or by hand, the completion rate, the
// median days to complete, and how many at-risk accounts left risk within 60 days of a run), and
// the runs themselves, open first, 20 a page with the total.

import { useState } from "react";
import { useQuery } from "urql";
import { Select, SelectItem, TableBody, TableCell, TableHead, TableHeader, TableRow, TextInput } from "@carbon/react";
import { graphql } from "../gql";
import type { RunStatus } from "../gql/graphql";
import { useSession } from "../App";
import { can } from "../api/session";
import { Pager, Pending, Problem, Table } from "../components";
import { count, day, one, pct } from "../format";
import { PLAYBOOK_RUNS, RunCard, RUN_STATUS_WORDS } from "../playbooks";

const REPORT = graphql(`
  query PlaybooksReport($from: Date, $to: Date) {
    playbooksReport(from: $from, to: $to) {
      from
      to
      rows {
        playbookId
        playbookName
        runs
        open
        completed
        exited
        cancelled
        completionRate
        medianDaysToComplete
        atRiskAtStart
        leftRiskWithin60Days
      }
      total {
        runs
        open
        completed
        exited
        cancelled
        completionRate
        medianDaysToComplete
        atRiskAtStart
        leftRiskWithin60Days
      }
    }
  }
`);

const PAGE = 20;

function isoDay(date: Date): string {
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
}

type Row = { runs: number; open: number; completed: number; exited: number; cancelled: number; completionRate?: number | null; medianDaysToComplete?: number | null; atRiskAtStart: number; leftRiskWithin60Days: number };

function Figures({ row }: { row: Row }) {
  return (
    <>
      <TableCell>{row.runs}</TableCell>
      <TableCell>{row.open}</TableCell>
      <TableCell>{row.completed}</TableCell>
      <TableCell>{row.exited}</TableCell>
      <TableCell>{row.cancelled}</TableCell>
      <TableCell>{row.completionRate == null ? "—" : pct(row.completionRate * 100)}</TableCell>
      <TableCell>{row.medianDaysToComplete == null ? "—" : `${one(row.medianDaysToComplete)} days`}</TableCell>
      <TableCell>
        {row.atRiskAtStart ? `${row.leftRiskWithin60Days} of ${row.atRiskAtStart}` : "—"}
      </TableCell>
    </>
  );
}

export default function Playbooks() {
  const session = useSession();
  const [to, setTo] = useState(() => isoDay(new Date()));
  const [from, setFrom] = useState(() => isoDay(new Date(Date.now() - 365 * 86_400_000)));
  const [status, setStatus] = useState<RunStatus | "">("OPEN");
  const [offset, setOffset] = useState(0);
  const [{ data, fetching, error }] = useQuery({ query: REPORT, variables: { from, to } });
  const [{ data: runs, error: runsError }, refetch] = useQuery({
    query: PLAYBOOK_RUNS,
    variables: { status: status || null, offset, first: PAGE },
  });
  const refresh = () => {
    refetch({ requestPolicy: "network-only" });
    window.setTimeout(() => refetch({ requestPolicy: "network-only" }), 800);
  };
  const report = data?.playbooksReport;
  return (
    <>
      <h1 style={{ marginBottom: "0.5rem" }}>Playbooks</h1>
      <p className="cs-muted" style={{ marginBottom: "1rem" }}>
        Runs started in the period, by playbook. Completion counts the runs that ended with every step closed among those that ended; an account left risk when a health score of 70 or more was
        recorded within 60 days of the start of a run that began while it was below 70. Admins and managers edit the playbooks in Settings › Playbooks.
      </p>
      <div className="cs-toolbar" style={{ marginBottom: "1rem" }}>
        <TextInput id="report-from" type="date" labelText="Started from" value={from} onChange={(e) => setFrom(e.target.value)} />
        <TextInput id="report-to" type="date" labelText="to" value={to} onChange={(e) => setTo(e.target.value)} />
      </div>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {report ? (
        <Table size="md" aria-label="Runs by playbook">
          <TableHead>
            <TableRow>
              <TableHeader>Playbook</TableHeader>
              <TableHeader>Runs</TableHeader>
              <TableHeader>In progress</TableHeader>
              <TableHeader>Completed</TableHeader>
              <TableHeader>No longer at risk</TableHeader>
              <TableHeader>Ended early</TableHeader>
              <TableHeader>Completion</TableHeader>
              <TableHeader>Median time to complete</TableHeader>
              <TableHeader>Left risk within 60 days</TableHeader>
            </TableRow>
          </TableHead>
          <TableBody>
            {report.rows.map((r) => (
              <TableRow key={r.playbookId} data-testid="playbook-report-row">
                <TableCell>{r.playbookName}</TableCell>
                <Figures row={r} />
              </TableRow>
            ))}
            <TableRow data-testid="playbook-report-total">
              <TableCell>
                <strong>All playbooks</strong>
              </TableCell>
              <Figures row={report.total} />
            </TableRow>
          </TableBody>
        </Table>
      ) : null}
      {report && report.rows.length === 0 ? (
        <p className="cs-muted">
          No run started from {day(report.from)} to {day(report.to)}.
        </p>
      ) : null}
      <section aria-labelledby="runs-heading" style={{ marginTop: "2rem" }}>
        <div className="cs-toolbar" style={{ justifyContent: "space-between", alignItems: "end" }}>
          <h2 id="runs-heading">Runs</h2>
          <Select
            id="runs-status"
            labelText="Showing"
            value={status}
            onChange={(e) => {
              setStatus(e.target.value as RunStatus | "");
              setOffset(0);
            }}
          >
            <SelectItem value="" text="Every run" />
            {Object.entries(RUN_STATUS_WORDS).map(([value, text]) => (
              <SelectItem key={value} value={value} text={text[0].toUpperCase() + text.slice(1)} />
            ))}
          </Select>
        </div>
        <Problem error={runsError} />
        {runs ? (
          <>
            <p className="cs-muted" style={{ margin: "0.5rem 0 1rem" }}>
              {count(runs.playbookRuns.totalCount, "run", "runs")}
            </p>
            {runs.playbookRuns.items.map((run) => (
              <RunCard key={run.runId} run={run} writable={can.record(session.role)} onDone={refresh} showCustomer />
            ))}
            <Pager label="Runs" offset={offset} size={PAGE} total={runs.playbookRuns.totalCount} onChange={setOffset} />
          </>
        ) : null}
      </section>
    </>
  );
}
