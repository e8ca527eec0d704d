import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { Select, SelectItem, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import { usePortfolioLive, useTimeTravel, useUrlParams } from "../hooks";
import { Kpi, Pending, Problem, RulesVersion, TimeTravel, Table } from "../components";
import { money, one, periodWords, words } from "../format";
import { Downloads, sheets } from "../downloads";
import { BookSwitch, useBook } from "../book";
import { useMemo } from "react";

const ENGAGEMENT = graphql(`
  query EngagementPortfolio($asOf: Date, $period: String, $csmId: UUID, $snapshot: String!, $inSnapshot: Boolean!) {
    engagementMetrics(asOf: $asOf, period: $period, csmId: $csmId) @skip(if: $inSnapshot) {
      ...EngagementFields
    }
    snapshot(name: $snapshot) @include(if: $inSnapshot) {
      engagementMetrics(asOf: $asOf, period: $period, csmId: $csmId) {
        ...EngagementFields
      }
    }
  }
  fragment EngagementFields on EngagementPortfolio {
    rulesVersion
    period
    asOf
    customers
    averageScore
    distribution {
      category
      customers
    }
    segments {
      tier
      customers
      averageScore
      bandLow
      bandHigh
      belowBand
      withinBand
      aboveBand
    }
    outliers {
      customerId
      name
      tier
      score
      z
    }
    needingAttention {
      customerId
      name
      tier
      arr
      score
      category
      trend
      change
      daysSinceContact
    }
  }
`);


/**
 * The periods a person picks from, in words: the last 30 and 90 days, the 12 months and the 8
 * quarters up to the report's day (the API's labels `30d`, `2026-11`, `2026-Q4` as values).
 */
function periodChoices(asOf: string | null): Array<[string, string]> {
  const day = asOf ? new Date(`${asOf}T12:00:00`) : new Date();
  const choices: Array<[string, string]> = [
    ["30d", "Last 30 days"],
    ["90d", "Last 90 days"],
  ];
  for (let i = 0; i < 12; i += 1) {
    const month = new Date(day.getFullYear(), day.getMonth() - i, 1);
    const label = `${month.getFullYear()}-${String(month.getMonth() + 1).padStart(2, "0")}`;
    choices.push([label, `${periodWords(label)}${i === 0 ? " (so far)" : ""}`]);
  }
  const quarter = Math.floor(day.getMonth() / 3);
  for (let i = 0; i < 8; i += 1) {
    const q = quarter - i;
    const year = day.getFullYear() + Math.floor(q / 4);
    const label = `${year}-Q${(((q % 4) + 4) % 4) + 1}`;
    choices.push([label, `${periodWords(label)}${i === 0 ? " (so far)" : ""}`]);
  }
  return choices;
}

const CATEGORY_TAG = { HIGH: "green", HEALTHY: "teal", LOW: "warm-gray", AT_RISK: "red" } as const;

export default function Engagement() {
  const { asOf, knownAt } = useTimeTravel();
  // The last 30 days by default: a calendar month that has barely begun says nothing. The choice
  // is kept in the address.
  const { params, set } = useUrlParams();
  const period = params.get("period") || "30d";
  const periods = useMemo(() => periodChoices(asOf), [asOf]);
  const book = useBook();
  const [{ data, fetching, error }, refetch] = useQuery({
    query: ENGAGEMENT,
    pause: !book.ready,
    variables: { asOf, period: period || null, csmId: book.csmId, snapshot: knownAt ?? "", inSnapshot: Boolean(knownAt) },
  });
  usePortfolioLive(() => refetch({ requestPolicy: "network-only" }), Boolean(knownAt));
  const report = knownAt ? data?.snapshot?.engagementMetrics : data?.engagementMetrics;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Engagement</h1>
      <BookSwitch book={book} />
      <TimeTravel knownAt="snapshot" />
      <Downloads choices={sheets("engagement")} params={{ asOf, period }} knownAt={knownAt} />
      <div className="cs-toolbar">
        <Select id="period-choice" labelText="Period" value={period} onChange={(e) => set("period", e.target.value === "30d" ? null : e.target.value)}>
          {periods.map(([value, text]) => (
            <SelectItem key={value} value={value} text={text} />
          ))}
        </Select>
      </div>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(report)} />
      {report ? (
        <>
          <RulesVersion version={report.rulesVersion} asOf={report.asOf} />
          <section className="cs-kpis" aria-label="Engagement summary">
            <Kpi testId="engagement-customers" label={`Customers, ${periodWords(report.period)}`} value={report.customers} />
            <Kpi testId="engagement-average" label="Average score" value={one(report.averageScore)} />
            {report.distribution.map((slice) => (
              <Kpi key={slice.category} testId={`engagement-${slice.category}`} label={words(slice.category)} value={slice.customers} />
            ))}
          </section>
          <section className="cs-section" aria-labelledby="bands-heading">
            <h2 id="bands-heading">Segment bands</h2>
            <div>
              <Table size="sm" aria-labelledby="bands-heading">
                <TableHead>
                  <TableRow>
                    <TableHeader>Tier</TableHeader>
                    <TableHeader>Customers</TableHeader>
                    <TableHeader>Average</TableHeader>
                    <TableHeader>Band</TableHeader>
                    <TableHeader>Below</TableHeader>
                    <TableHeader>Within</TableHeader>
                    <TableHeader>Above</TableHeader>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {report.segments.map((segment) => (
                    <TableRow key={segment.tier}>
                      <TableCell>{words(segment.tier)}</TableCell>
                      <TableCell>{segment.customers}</TableCell>
                      <TableCell>{one(segment.averageScore)}</TableCell>
                      <TableCell>
                        {one(segment.bandLow)} to {one(segment.bandHigh)}
                      </TableCell>
                      <TableCell>{segment.belowBand}</TableCell>
                      <TableCell>{segment.withinBand}</TableCell>
                      <TableCell>{segment.aboveBand}</TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            </div>
          </section>
          <div className="cs-two">
            <section className="cs-section" aria-labelledby="attention-heading">
              <h2 id="attention-heading">Needing attention</h2>
              {report.needingAttention.length === 0 ? <p className="cs-muted">No customer needs attention.</p> : null}
              <ul>
                {report.needingAttention.map((customer) => (
                  <li key={customer.customerId} style={{ marginBottom: "0.5rem" }}>
                    <Tag type={CATEGORY_TAG[customer.category]} size="sm">
                      {words(customer.category)}
                    </Tag>{" "}
                    <Link to={`/customers/${customer.customerId}`}>{customer.name}</Link>{" "}
                    <span className="cs-muted">
                      {one(customer.score)} ({customer.change >= 0 ? "+" : ""}
                      {one(customer.change)}, {words(customer.trend)}) · {money(customer.arr)}
                    </span>
                  </li>
                ))}
              </ul>
            </section>
            <section className="cs-section" aria-labelledby="outliers-heading">
              <h2 id="outliers-heading">Outliers within their tier</h2>
              {report.outliers.length === 0 ? <p className="cs-muted">No outliers.</p> : null}
              <ul>
                {report.outliers.map((outlier) => (
                  <li key={outlier.customerId} style={{ marginBottom: "0.5rem" }}>
                    <Link to={`/customers/${outlier.customerId}`}>{outlier.name}</Link>{" "}
                    <span className="cs-muted">
                      {one(outlier.score)} (z {outlier.z.toFixed(2)}, {words(outlier.tier)})
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
