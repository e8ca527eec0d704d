// The at-risk report: the red and yellow accounts as of a day, largest ARR first, each with its
// reasons: the latest health score's source and reason and the risk factors it named (its
// lineage), and the coverage gaps behind its coverage status.

import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import { usePortfolioLive, useTimeTravel } from "../hooks";
import { Kpi, Pager, Pending, Problem, Table, TimeTravel } from "../components";
import { GAP_WORDS, colourTag, count, day, money, one, statusTag, when, words } from "../format";
import { BookSwitch, useBook } from "../book";

const AT_RISK = graphql(`
  query AtRisk($asOf: Date, $csmId: UUID, $offset: Int!, $limit: Int!) {
    atRiskReport(asOf: $asOf, csmId: $csmId, offset: $offset, limit: $limit) {
      asOf
      total
      red
      yellow
      arr
      accounts {
        coverage {
          customerId
          name
          tier
          arr
          csmName
          healthScore
          healthColour
          lastContactDate
          daysSinceContact
          status
          priority
          gapAreas
        }
        healthSource
        healthReason
        healthMeasuredAt
        riskFactors {
          name
          weight
        }
      }
    }
  }
`);

const PAGE = 25;

const SOURCE_WORDS: Record<string, string> = { gainsight: "Gainsight", manual: "a manual score", import: "an import" };

export default function AtRisk() {
  const { asOf } = useTimeTravel();
  const [offset, setOffset] = useState(0);
  const book = useBook();
  const [{ data, fetching, error }, refetch] = useQuery({ query: AT_RISK, variables: { asOf, csmId: book.csmId, offset, limit: PAGE }, pause: !book.ready });
  usePortfolioLive(() => refetch({ requestPolicy: "network-only" }));
  const report = data?.atRiskReport;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>At risk</h1>
      <BookSwitch book={book} />
      <TimeTravel knownAt="none" />
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {report ? (
        <>
          <p className="cs-muted" style={{ marginBottom: "1rem" }}>
            Accounts whose health on {day(report.asOf)} was red (below 50) or yellow (50 to 69), largest ARR first, with why.
          </p>
          <section className="cs-kpis" aria-label="At risk in all">
            <Kpi testId="at-risk-total" label="Accounts" value={report.total} change={`${report.red} red, ${report.yellow} yellow`} />
            <Kpi testId="at-risk-arr" label="Their ARR" value={money(report.arr)} />
          </section>
          {report.total === 0 ? (
            <p className="cs-muted">No account is red or yellow.</p>
          ) : (
            <>
              <Table cards size="md" aria-label="Accounts at risk">
                <TableHead>
                  <TableRow>
                    <TableHeader>Customer</TableHeader>
                    <TableHeader>ARR</TableHeader>
                    <TableHeader>Health and why</TableHeader>
                    <TableHeader>Coverage and gaps</TableHeader>
                    <TableHeader>Last contact</TableHeader>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {report.accounts.map(({ coverage: a, healthSource, healthReason, healthMeasuredAt, riskFactors }) => (
                    <TableRow key={a.customerId} data-testid="at-risk-row">
                      <TableCell>
                        <Link to={`/customers/${a.customerId}`}>{a.name}</Link>
                        <div className="cs-muted">
                          {words(a.tier)} · {a.csmName ?? "no CSM"}
                        </div>
                      </TableCell>
                      <TableCell>{money(a.arr)}</TableCell>
                      <TableCell>
                        {a.healthColour ? (
                          <Tag type={colourTag[a.healthColour]} size="sm">
                            {one(a.healthScore)} {words(a.healthColour)}
                          </Tag>
                        ) : null}
                        <div className="cs-muted">
                          from {SOURCE_WORDS[healthSource ?? ""] ?? healthSource ?? "—"}
                          {healthMeasuredAt ? `, ${when(healthMeasuredAt)}` : ""}
                          {healthReason ? `: “${healthReason}”` : ""}
                        </div>
                        {riskFactors.length ? (
                          <div data-testid="risk-factors">
                            Risk factors: {riskFactors.map((f) => (f.weight != null ? `${f.name} (weight ${f.weight})` : f.name)).join(", ")}
                          </div>
                        ) : null}
                      </TableCell>
                      <TableCell>
                        <Tag type={statusTag[a.status]} size="sm">
                          {words(a.status)}
                        </Tag>{" "}
                        <span className="cs-muted">{words(a.priority)}</span>
                        {a.gapAreas.length ? <div data-testid="gaps">{a.gapAreas.map((g) => GAP_WORDS[g] ?? words(g)).join("; ")}</div> : null}
                      </TableCell>
                      <TableCell>
                        {a.lastContactDate ? `${day(a.lastContactDate)} (${count(a.daysSinceContact ?? 0, "day", "days")} ago)` : "never"}
                      </TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
              <Pager label="at-risk accounts" offset={offset} size={PAGE} total={report.total} onChange={setOffset} />
            </>
          )}
        </>
      ) : null}
    </>
  );
}
