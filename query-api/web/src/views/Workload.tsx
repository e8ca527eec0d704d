import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { ProgressBar, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import { usePortfolioLive, useTimeTravel } from "../hooks";
import { Kpi, Pending, Problem, RulesVersion, TimeTravel, Table } from "../components";
import { Downloads, sheets } from "../downloads";
import { day, money, one, pct } from "../format";

const WORKLOAD = graphql(`
  query Workload($asOf: Date, $snapshot: String!, $inSnapshot: Boolean!) {
    csmWorkload(asOf: $asOf) @skip(if: $inSnapshot) {
      ...WorkloadFields
    }
    snapshot(name: $snapshot) @include(if: $inSnapshot) {
      csmWorkload(asOf: $asOf) {
        ...WorkloadFields
      }
    }
  }
  fragment WorkloadFields on TeamWorkload {
    asOf
    rulesVersion
    averageAccounts
    averageArr
    averageUtilizationPct
    portfolioBalancePct
    balanced
    csms {
      csmId
      name
      accounts
      arr
      atRisk
      openTasks
      overdueTasks
      renewalsNext90Days
      hoursNeeded
      capacityHours
      utilizationPct
    }
    transitions {
      customerId
      name
      csmId
      previousCsmId
      handedOverOn
      daysSinceHandoff
      contactedSince
    }
    rebalancing {
      customerId
      name
      arr
      fromCsmId
      toCsmId
      fromUtilizationAfter
      toUtilizationAfter
    }
  }
`);


export default function Workload() {
  const { asOf, knownAt } = useTimeTravel();
  const [{ data, fetching, error }, refetch] = useQuery({
    query: WORKLOAD,
    variables: { asOf, snapshot: knownAt ?? "", inSnapshot: Boolean(knownAt) },
  });
  usePortfolioLive(() => refetch({ requestPolicy: "network-only" }), Boolean(knownAt));
  const team = knownAt ? data?.snapshot?.csmWorkload : data?.csmWorkload;
  const name = (id: string | null | undefined) => team?.csms.find((c) => c.csmId === id)?.name ?? id ?? "—";
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>CSM workload</h1>
      <TimeTravel knownAt="snapshot" />
      <Downloads choices={sheets("workload")} params={{ asOf }} knownAt={knownAt} />
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(team)} />
      {team ? (
        <>
          <RulesVersion version={team.rulesVersion} asOf={team.asOf} />
          <section className="cs-kpis" aria-label="Team balance">
            <Kpi testId="workload-utilization" label="Average utilization" value={pct(team.averageUtilizationPct)} />
            <Kpi testId="workload-balance" label="Portfolio balance" value={pct(team.portfolioBalancePct)} change={team.balanced ? "Balanced" : "Unbalanced"} />
            <Kpi label="Average accounts" value={one(team.averageAccounts)} />
            <Kpi label="Average ARR" value={money(team.averageArr)} />
          </section>
          <section className="cs-section" aria-labelledby="utilization-heading">
            <h2 id="utilization-heading">Utilization</h2>
            {team.csms.map((csm) => (
              <div className="cs-bar" key={csm.csmId} data-testid="utilization-bar">
                <span>{csm.name ?? csm.csmId}</span>
                <ProgressBar
                  label={`${csm.name ?? csm.csmId}: ${one(csm.hoursNeeded)} of ${one(csm.capacityHours)} hours`}
                  hideLabel
                  value={Math.min(csm.utilizationPct, 100)}
                  max={100}
                  status={csm.utilizationPct > 100 ? "error" : "active"}
                  helperText={`${csm.accounts} accounts · ${money(csm.arr)} · ${csm.openTasks} open tasks (${csm.overdueTasks} overdue) · ${csm.renewalsNext90Days} renewals in 90 days`}
                />
                <span>{pct(csm.utilizationPct)}</span>
              </div>
            ))}
          </section>
          <div className="cs-two">
            <section className="cs-section" aria-labelledby="handoffs-heading">
              <h2 id="handoffs-heading">Handoffs (last 30 days)</h2>
              {team.transitions.length === 0 ? <p className="cs-muted">No handoffs.</p> : null}
              <Table size="sm" aria-labelledby="handoffs-heading">
                <TableHead>
                  <TableRow>
                    <TableHeader>Account</TableHeader>
                    <TableHeader>From → to</TableHeader>
                    <TableHeader>On</TableHeader>
                    <TableHeader>Contacted since</TableHeader>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {team.transitions.map((t) => (
                    <TableRow key={`${t.customerId}-${t.handedOverOn}`}>
                      <TableCell>
                        <Link to={`/customers/${t.customerId}`}>{t.name}</Link>
                      </TableCell>
                      <TableCell>
                        {name(t.previousCsmId)} → {name(t.csmId)}
                      </TableCell>
                      <TableCell>{day(t.handedOverOn)}</TableCell>
                      <TableCell>{t.contactedSince ? <Tag type="green" size="sm">yes</Tag> : <Tag type="red" size="sm">not yet</Tag>}</TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            </section>
            <section className="cs-section" aria-labelledby="rebalancing-heading">
              <h2 id="rebalancing-heading">Rebalancing suggestions</h2>
              {team.rebalancing.length === 0 ? <p className="cs-muted">No move would improve the balance.</p> : null}
              <ul>
                {team.rebalancing.map((move) => (
                  <li key={move.customerId} style={{ marginBottom: "0.5rem" }}>
                    Move <Link to={`/customers/${move.customerId}`}>{move.name}</Link> ({money(move.arr)}) from {name(move.fromCsmId)} to {name(move.toCsmId)}:{" "}
                    <span className="cs-muted">
                      {pct(move.fromUtilizationAfter)} and {pct(move.toUtilizationAfter)} after
                    </span>
                  </li>
                ))}
              </ul>
            </section>
          </div>
        </>
      ) : null}
    </>
  );
}
