import { lazy, Suspense, useMemo } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { InlineLoading, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import { usePortfolioLive, useTimeTravel } from "../hooks";
import { useSession } from "../App";
import { Contained, Kpi, Pending, Problem, RulesVersion, TimeTravel, Table } from "../components";
import { Downloads, PortfolioDeck } from "../downloads";
import { BookSwitch, useBook } from "../book";
import { ReminderCounts } from "../reminders";
import { colourTag, day, money, moneyChange, one, pct, words } from "../format";

const DASHBOARD = graphql(`
  query Dashboard(
    $asOf: Date
    $csmId: UUID
    $me: String!
    $snapshot: String!
    $inSnapshot: Boolean!
    $trendFrom: Date!
    $trendTo: Date!
    $pipelineFrom: Date!
    $pipelineTo: Date!
  ) {
    executiveSummary(asOf: $asOf, csmId: $csmId) @skip(if: $inSnapshot) {
      ...SummaryFields
    }
    csmWorkload(asOf: $asOf) @skip(if: $inSnapshot) {
      ...TierBooks
    }
    portfolioHealthTrend(from: $trendFrom, to: $trendTo, csmId: $csmId) @skip(if: $inSnapshot) {
      ...TrendFields
    }
    renewalPipeline(from: $pipelineFrom, to: $pipelineTo, csmId: $csmId) @skip(if: $inSnapshot) {
      month
      accounts
      arr
      colours {
        colour
        accounts
        arr
      }
    }
    coverageReport(asOf: $asOf, csmId: $csmId) @skip(if: $inSnapshot) {
      ...CoverageSummaryFields
    }
    alerts(acknowledged: false, first: 5, csmId: $csmId) @skip(if: $inSnapshot) {
      ...OpenAlertFields
    }
    tasks(filter: { assigneeId: $me, overdue: true }, first: 10) @skip(if: $inSnapshot) {
      ...OverdueTaskFields
    }
    snapshot(name: $snapshot) @include(if: $inSnapshot) {
      executiveSummary(asOf: $asOf, csmId: $csmId) {
        ...SummaryFields
      }
      coverageReport(asOf: $asOf, csmId: $csmId) {
        ...CoverageSummaryFields
      }
      tasks(filter: { assigneeId: $me, overdue: true }, first: 10) {
        ...OverdueTaskFields
      }
      csmWorkload(asOf: $asOf) {
        ...TierBooks
      }
      portfolioHealthTrend(from: $trendFrom, to: $trendTo, csmId: $csmId) {
        ...TrendFields
      }
    }
  }
  fragment TierBooks on TeamWorkload {
    csms {
      csmId
      byTier {
        tier
        accounts
        arr
      }
    }
  }
  fragment TrendFields on HealthBucket {
    bucket
    colours {
      colour
      accounts
      arr
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
      renewals {
        days
        customers
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

/** The portfolio's engagement month by month: six months to the report's day (the last one so far). */
const ENGAGEMENT_TREND = graphql(`
  query EngagementTrend(
    $csmId: UUID
    $p0: String!
    $a0: Date!
    $p1: String!
    $a1: Date!
    $p2: String!
    $a2: Date!
    $p3: String!
    $a3: Date!
    $p4: String!
    $a4: Date!
    $p5: String!
    $a5: Date!
  ) {
    m0: engagementMetrics(period: $p0, asOf: $a0, csmId: $csmId) {
      ...MonthEngagement
    }
    m1: engagementMetrics(period: $p1, asOf: $a1, csmId: $csmId) {
      ...MonthEngagement
    }
    m2: engagementMetrics(period: $p2, asOf: $a2, csmId: $csmId) {
      ...MonthEngagement
    }
    m3: engagementMetrics(period: $p3, asOf: $a3, csmId: $csmId) {
      ...MonthEngagement
    }
    m4: engagementMetrics(period: $p4, asOf: $a4, csmId: $csmId) {
      ...MonthEngagement
    }
    m5: engagementMetrics(period: $p5, asOf: $a5, csmId: $csmId) {
      ...MonthEngagement
    }
  }
  fragment MonthEngagement on EngagementPortfolio {
    period
    asOf
    customers
    averageScore
    distribution {
      category
      customers
    }
  }
`);

/** The six calendar months to the day's (`p0` the oldest), each read as of its last day, the day's own month as of the day. */
function engagementMonths(asOf: string | null) {
  const day = asOf ? new Date(`${asOf}T12:00:00`) : new Date();
  const variables: Record<string, string> = {};
  for (let i = 0; i < 6; i += 1) {
    const back = 5 - i;
    const start = new Date(day.getFullYear(), day.getMonth() - back, 1);
    const end = back === 0 ? day : new Date(day.getFullYear(), day.getMonth() - back + 1, 0);
    variables[`p${i}`] = isoDay(start).slice(0, 7);
    variables[`a${i}`] = isoDay(end);
  }
  return variables;
}

const Charts = {
  EngagementTrend: lazy(() => import("./Charts").then((m) => ({ default: m.EngagementTrend }))),
  HealthDonut: lazy(() => import("./Charts").then((m) => ({ default: m.HealthDonut }))),
  ArrByHealth: lazy(() => import("./Charts").then((m) => ({ default: m.ArrByHealth }))),
  ArrByTier: lazy(() => import("./Charts").then((m) => ({ default: m.ArrByTier }))),
  RenewalPipeline: lazy(() => import("./Charts").then((m) => ({ default: m.RenewalPipeline }))),
  CoverageGauge: lazy(() => import("./Charts").then((m) => ({ default: m.CoverageGauge }))),
  PortfolioHealthTrend: lazy(() => import("./Charts").then((m) => ({ default: m.PortfolioHealthTrend }))),
};

/** A day as `YYYY-MM-DD` in the user's own calendar. */
function isoDay(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** The spans the charts cover: the 12 weeks to the day, and the 12 months from its month. */
function chartSpans(asOf: string | null) {
  const day = asOf ? new Date(`${asOf}T12:00:00`) : new Date();
  const weeksBack = new Date(day);
  weeksBack.setDate(day.getDate() - 7 * 12);
  const monthStart = new Date(day.getFullYear(), day.getMonth(), 1);
  const yearOn = new Date(day.getFullYear(), day.getMonth() + 12, 0);
  return { trendFrom: isoDay(weeksBack), trendTo: isoDay(day), pipelineFrom: isoDay(monthStart), pipelineTo: isoDay(yearOn) };
}

/** ARR and accounts by tier over the CSMs' books. */
function tiersOf(books: Array<{ byTier: Array<{ tier: string; accounts: number; arr: string }> }>) {
  const sums = new Map<string, { tier: string; accounts: number; cents: bigint }>();
  for (const slice of books.flatMap((b) => b.byTier)) {
    const sum = sums.get(slice.tier) ?? { tier: slice.tier, accounts: 0, cents: 0n };
    const [whole, fraction = ""] = slice.arr.split(".");
    sum.accounts += slice.accounts;
    sum.cents += BigInt(whole) * 100n + BigInt((fraction + "00").slice(0, 2));
    sums.set(slice.tier, sum);
  }
  return ["ENTERPRISE", "MID_MARKET", "SMB"]
    .map((tier) => sums.get(tier) ?? { tier, accounts: 0, cents: 0n })
    .map(({ tier, accounts, cents }) => ({ tier, accounts, arr: `${cents / 100n}.${String(cents % 100n).padStart(2, "0")}` }));
}

export default function Dashboard() {
  const session = useSession();
  const { asOf, knownAt } = useTimeTravel();
  const spans = useMemo(() => chartSpans(asOf), [asOf]);
  const book = useBook();
  const [{ data: answer, fetching, error }, refetch] = useQuery({
    query: DASHBOARD,
    variables: { asOf, csmId: book.csmId, me: session.user, snapshot: knownAt ?? "", inSnapshot: Boolean(knownAt), ...spans },
    pause: !book.ready,
  });
  usePortfolioLive(() => refetch({ requestPolicy: "network-only" }), Boolean(knownAt));
  // The live read models, or a rebuilt snapshot of what the system knew.
  const data = knownAt ? answer?.snapshot : answer;
  // Alerts are the live system's, not kept in snapshots.
  const alerts = knownAt ? null : answer?.alerts;
  // The pipeline is the live system's too.
  const pipeline = knownAt ? null : answer?.renewalPipeline;
  const summary = data?.executiveSummary;
  // Engagement month by month: the live read models only, asked apart so the figures above come first.
  const months = useMemo(() => engagementMonths(asOf), [asOf]);
  const [{ data: engagement }] = useQuery({
    query: ENGAGEMENT_TREND,
    variables: { csmId: book.csmId, ...months } as never,
    pause: !book.ready || Boolean(knownAt),
  });
  const engagementMonthsRead = engagement ? [engagement.m0, engagement.m1, engagement.m2, engagement.m3, engagement.m4, engagement.m5] : null;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>{book.csmId ? "My book" : "Portfolio"}</h1>
      <BookSwitch book={book} />
      <ReminderCounts />
      <TimeTravel knownAt="snapshot" />
      <div className="cs-toolbar">
        <Downloads
          choices={[
            { report: "executive-summary", format: "xlsx", label: "Executive summary (.xlsx)" },
            { report: "executive-summary", format: "csv", label: "Executive summary (.csv)" },
          ]}
          params={{ asOf, csmId: book.csmId }}
          knownAt={knownAt}
        />
        <PortfolioDeck asOf={asOf} knownAt={knownAt} />
      </div>
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
          <Contained fallback={<p className="cs-muted">The charts could not be drawn; the tables below hold the same figures.</p>}>
          <Suspense fallback={<InlineLoading description="Drawing the charts" />}>
            <section className="cs-charts" aria-label="Charts">
              <Charts.HealthDonut slices={summary.current.colours} money={money} />
              <Charts.ArrByHealth slices={summary.current.colours} money={money} />
              {data.csmWorkload ? <Charts.ArrByTier tiers={tiersOf(data.csmWorkload.csms.filter((c) => !book.csmId || c.csmId === book.csmId))} money={money} /> : null}
              <Charts.CoverageGauge accounts={data.coverageReport.summary.accounts} underCovered={data.coverageReport.summary.underCovered} />
            </section>
            <section className="cs-charts cs-charts-wide" aria-label="Trends">
              {pipeline ? (
                <Charts.RenewalPipeline months={pipeline} money={money} />
              ) : (
                <p className="cs-muted">The renewal pipeline is today's: set “What the system knew” to now to see it.</p>
              )}
              {data.portfolioHealthTrend ? <Charts.PortfolioHealthTrend buckets={data.portfolioHealthTrend} /> : null}
              {knownAt ? (
                <p className="cs-muted">Engagement month by month is today's: set “What the system knew” to now to see it.</p>
              ) : engagementMonthsRead ? (
                <Charts.EngagementTrend months={engagementMonthsRead} />
              ) : null}
            </section>
          </Suspense>
          </Contained>
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
                    <TableHeader>At the previous quarter's end</TableHeader>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {summary.current.renewals.map((window) => {
                    const before = summary.previousQuarter.renewals.find((w) => w.days === window.days);
                    return (
                      <TableRow key={window.days} data-testid={`renewals-${window.days}`}>
                        <TableCell>{window.days} days</TableCell>
                        <TableCell>{window.customers}</TableCell>
                        <TableCell>{money(window.arr)}</TableCell>
                        <TableCell>{before ? `${before.customers} · ${money(before.arr)}` : "—"}</TableCell>
                      </TableRow>
                    );
                  })}
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
