import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import { usePortfolioLive, useTimeTravel } from "../hooks";
import { useSession } from "../App";
import { Kpi, Pending, Problem, RulesVersion, TimeTravel, Table } from "../components";
import { Downloads } from "../downloads";
import { colourTag, day, money, moneyChange, one, pct, words } from "../format";

const DASHBOARD = graphql(`
  query Dashboard($asOf: Date, $me: String!, $snapshot: String!, $inSnapshot: Boolean!) {
    executiveSummary(asOf: $asOf) @skip(if: $inSnapshot) {
      ...SummaryFields
    }
    coverageReport(asOf: $asOf) @skip(if: $inSnapshot) {
      ...CoverageSummaryFields
    }
    alerts(acknowledged: false, first: 5) @skip(if: $inSnapshot) {
      ...OpenAlertFields
    }
    tasks(filter: { assigneeId: $me, overdue: true }, first: 10) @skip(if: $inSnapshot) {
      ...OverdueTaskFields
    }
    snapshot(name: $snapshot) @include(if: $inSnapshot) {
      executiveSummary(asOf: $asOf) {
        ...SummaryFields
      }
      coverageReport(asOf: $asOf) {
        ...CoverageSummaryFields
      }
      tasks(filter: { assigneeId: $me, overdue: true }, first: 10) {
        ...OverdueTaskFields
      }
    }
  }
  fragment SummaryFields on ExecutiveSummary {
    current {
      asOf
      customers
      totalArr
      arrAtRisk
      colours {
        colour
        accounts
        arr
      }
      renewals {
        days
        customers
        arr
      }
      npsAverage
    }
    previousQuarter {
      asOf
      customers
      totalArr
      arrAtRisk
      colours {
        colour
        accounts
        arr
      }
    }
    arrChange
    arrAtRiskChange
  }
  fragment CoverageSummaryFields on CoverageReport {
    asOf
    rulesVersion
    summary {
      accounts
      wellCovered
      underCovered
      overCovered
      underCoveredPct
      averageScore
      arr
    }
  }
  fragment OpenAlertFields on AlertConnection {
    nodes {
      alertId
      customerId
      kind
      message
      raisedAt
    }
  }
  fragment OverdueTaskFields on TaskConnection {
    nodes {
      taskId
      customerId
      title
      dueDate
      priority
    }
  }
`);


export default function Dashboard() {
  const session = useSession();
  const { asOf, knownAt } = useTimeTravel();
  const [{ data: answer, fetching, error }, refetch] = useQuery({
    query: DASHBOARD,
    variables: { asOf, me: session.user, snapshot: knownAt ?? "", inSnapshot: Boolean(knownAt) },
  });
  usePortfolioLive(() => refetch({ requestPolicy: "network-only" }), Boolean(knownAt));
  // The live read models, or a rebuilt snapshot of what the system knew.
  const data = knownAt ? answer?.snapshot : answer;
  // Alerts are the live system's, not kept in snapshots.
  const alerts = knownAt ? null : answer?.alerts;
  const summary = data?.executiveSummary;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Portfolio</h1>
      <TimeTravel knownAt="snapshot" />
      <Downloads
        choices={[
          { report: "portfolio", format: "pptx", label: "Portfolio deck (.pptx)" },
          { report: "executive-summary", format: "xlsx", label: "Executive summary (.xlsx)" },
          { report: "executive-summary", format: "csv", label: "Executive summary (.csv)" },
        ]}
        params={{ asOf }}
        knownAt={knownAt}
      />
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {summary && data?.coverageReport && data.tasks ? (
        <>
          <RulesVersion version={data.coverageReport.rulesVersion} asOf={summary.current.asOf} />
          <section className="cs-kpis" aria-label="Key figures">
            <Kpi testId="kpi-accounts" label="Accounts" value={summary.current.customers} change={`${summary.previousQuarter.customers} at ${summary.previousQuarter.asOf}`} />
            <Kpi testId="kpi-arr" label="ARR" value={money(summary.current.totalArr)} change={`${moneyChange(summary.arrChange)} against ${summary.previousQuarter.asOf}`} />
            <Kpi testId="kpi-arr-at-risk" label="ARR at risk" value={money(summary.current.arrAtRisk)} change={`${moneyChange(summary.arrAtRiskChange)} against ${summary.previousQuarter.asOf}`} />
            <Kpi testId="kpi-under-covered" label="Under-covered" value={`${data.coverageReport.summary.underCovered} of ${data.coverageReport.summary.accounts}`} change={`${pct(data.coverageReport.summary.underCoveredPct)}; average score ${one(data.coverageReport.summary.averageScore)}`} />
          </section>
          <div className="cs-two">
            <section className="cs-section" aria-labelledby="colours-heading">
              <h2 id="colours-heading">Health colours</h2>
              <Table size="sm" aria-labelledby="colours-heading">
                <TableHead>
                  <TableRow>
                    <TableHeader>Colour</TableHeader>
                    <TableHeader>Accounts</TableHeader>
                    <TableHeader>ARR</TableHeader>
                    <TableHeader>Previous quarter</TableHeader>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {summary.current.colours.map((slice) => {
                    const before = summary.previousQuarter.colours.find((c) => c.colour === slice.colour);
                    return (
                      <TableRow key={slice.colour ?? "none"} data-testid={`colour-${slice.colour ?? "NONE"}`}>
                        <TableCell>{slice.colour ? <Tag type={colourTag[slice.colour]}>{words(slice.colour)}</Tag> : "no score"}</TableCell>
                        <TableCell>{slice.accounts}</TableCell>
                        <TableCell>{money(slice.arr)}</TableCell>
                        <TableCell>{before ? `${before.accounts} · ${money(before.arr)}` : "—"}</TableCell>
                      </TableRow>
                    );
                  })}
                </TableBody>
              </Table>
            </section>
            <section className="cs-section" aria-labelledby="renewals-heading">
              <h2 id="renewals-heading">Renewals</h2>
              <Table size="sm" aria-labelledby="renewals-heading">
                <TableHead>
                  <TableRow>
                    <TableHeader>Within</TableHeader>
                    <TableHeader>Accounts</TableHeader>
                    <TableHeader>ARR</TableHeader>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {summary.current.renewals.map((window) => (
                    <TableRow key={window.days} data-testid={`renewals-${window.days}`}>
                      <TableCell>{window.days} days</TableCell>
                      <TableCell>{window.customers}</TableCell>
                      <TableCell>{money(window.arr)}</TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            </section>
            <section className="cs-section" aria-labelledby="alerts-heading">
              <h2 id="alerts-heading">Open alerts</h2>
              {alerts === null ? <p className="cs-muted">Alerts are not kept with earlier knowledge: set “What the system knew” to now to see today's.</p> : null}
              {alerts?.nodes.length === 0 ? <p className="cs-muted">No open alerts.</p> : null}
              <ul>
                {(alerts?.nodes ?? []).map((alert) => (
                  <li key={alert.alertId} style={{ marginBottom: "0.5rem" }}>
                    <Tag type="red" size="sm">
                      {words(alert.kind)}
                    </Tag>{" "}
                    <Link to={`/customers/${alert.customerId}`}>{alert.message}</Link>
                  </li>
                ))}
              </ul>
              <Link to="/alerts">All alerts</Link>
            </section>
            <section className="cs-section" aria-labelledby="overdue-heading">
              <h2 id="overdue-heading">My overdue tasks</h2>
              {data.tasks.nodes.length === 0 ? <p className="cs-muted">Nothing overdue.</p> : null}
              <ul>
                {data.tasks.nodes.map((task) => (
                  <li key={task.taskId} style={{ marginBottom: "0.5rem" }}>
                    <Link to={`/customers/${task.customerId}`}>{task.title}</Link> <span className="cs-muted">due {day(task.dueDate)} · {task.priority}</span>
                  </li>
                ))}
              </ul>
              <Link to="/tasks">All tasks</Link>
            </section>
          </div>
        </>
      ) : null}
    </>
  );
}
