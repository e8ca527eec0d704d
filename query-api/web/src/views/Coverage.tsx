import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { Select, SelectItem, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import type { CoverageStatus, Tier } from "../gql/graphql";
import { usePortfolioLive, useTimeTravel } from "../hooks";
import { Kpi, Pager, Pending, Problem, RulesVersion, TimeTravel, Table } from "../components";
import { Downloads, sheets } from "../downloads";
import { BookSwitch, useBook } from "../book";
import { money, one, pct, statusTag, words } from "../format";

const COVERAGE = graphql(`
  query Coverage(
    $asOf: Date
    $csmId: UUID
    $tier: Tier
    $status: CoverageStatus
    $snapshot: String!
    $inSnapshot: Boolean!
    $accountsOffset: Int!
    $gapsOffset: Int!
  ) {
    coverageReport(asOf: $asOf, csmId: $csmId, tier: $tier, status: $status) @skip(if: $inSnapshot) {
      ...CoverageFields
    }
    snapshot(name: $snapshot) @include(if: $inSnapshot) {
      coverageReport(asOf: $asOf, csmId: $csmId, tier: $tier, status: $status) {
        ...CoverageFields
      }
    }
  }
  fragment CoverageFields on CoverageReport {
    ...CoverageSummaryFields
    byCsm {
      csmId
      csmName
    }
    accountsTotal
    accounts(offset: $accountsOffset, limit: 50) {
      customerId
      name
      tier
      arr
      csmName
      daysSinceContact
      touches30d
      meetings90d
      stakeholdersEngaged
      score
      status
      priority
      gapAreas
      deductions {
        contact
        touches
        meetings
        stakeholders
      }
    }
    gapsTotal
    gaps(offset: $gapsOffset, limit: 50) {
      customerId
      name
      tier
      arr
      csmName
      daysSinceContact
      score
      priority
      gapAreas
    }
  }
`);


const TIERS: Tier[] = ["ENTERPRISE", "MID_MARKET", "SMB"];
const STATUSES: CoverageStatus[] = ["UNDER_COVERED", "WELL_COVERED", "OVER_COVERED"];

export default function Coverage() {
  const { asOf, knownAt } = useTimeTravel();
  const [csmId, setCsmId] = useState("");
  const [tier, setTier] = useState("");
  const [status, setStatus] = useState("");
  const [accountsOffset, setAccountsOffset] = useState(0);
  const [gapsOffset, setGapsOffset] = useState(0);
  const filter = (set: (value: string) => void) => (value: string) => {
    set(value);
    setAccountsOffset(0);
    setGapsOffset(0);
  };
  const book = useBook();
  const [{ data, fetching, error }, refetch] = useQuery({
    query: COVERAGE,
    pause: !book.ready,
    variables: {
      asOf,
      csmId: book.csmId ?? (csmId || null),
      tier: (tier || null) as Tier | null,
      status: (status || null) as CoverageStatus | null,
      snapshot: knownAt ?? "",
      inSnapshot: Boolean(knownAt),
      accountsOffset,
      gapsOffset,
    },
  });
  usePortfolioLive(() => refetch({ requestPolicy: "network-only" }), Boolean(knownAt));
  const report = data?.coverageReport ?? data?.snapshot?.coverageReport;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Coverage</h1>
      <BookSwitch book={book} />
      <TimeTravel knownAt="snapshot" />
      <Downloads choices={sheets("coverage")} params={{ asOf, csmId: book.csmId ?? csmId, tier }} knownAt={knownAt} />
      <div className="cs-toolbar" role="group" aria-label="Filters">
        {book.csmId ? null : (
          <Select id="filter-csm" labelText="CSM" value={csmId} onChange={(e) => filter(setCsmId)(e.target.value)}>
            <SelectItem value="" text="Every CSM" />
            {(report?.byCsm ?? []).map((csm) => (
              <SelectItem key={csm.csmId} value={csm.csmId} text={csm.csmName ?? csm.csmId} />
            ))}
          </Select>
        )}
        <Select id="filter-tier" labelText="Tier" value={tier} onChange={(e) => filter(setTier)(e.target.value)}>
          <SelectItem value="" text="Every tier" />
          {TIERS.map((t) => (
            <SelectItem key={t} value={t} text={words(t)} />
          ))}
        </Select>
        <Select id="filter-status" labelText="Status" value={status} onChange={(e) => filter(setStatus)(e.target.value)}>
          <SelectItem value="" text="Every status" />
          {STATUSES.map((s) => (
            <SelectItem key={s} value={s} text={words(s)} />
          ))}
        </Select>
      </div>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(report)} />
      {report ? (
        <>
          <RulesVersion version={report.rulesVersion} asOf={report.asOf} />
          <section className="cs-kpis" aria-label="Coverage summary">
            <Kpi testId="coverage-accounts" label="Accounts" value={report.summary.accounts} change={money(report.summary.arr)} />
            <Kpi testId="coverage-well" label="Well covered" value={report.summary.wellCovered} />
            <Kpi testId="coverage-under" label="Under-covered" value={report.summary.underCovered} change={pct(report.summary.underCoveredPct)} />
            <Kpi testId="coverage-over" label="Over-covered" value={report.summary.overCovered} />
            <Kpi testId="coverage-average" label="Average score" value={one(report.summary.averageScore)} />
          </section>
          <section className="cs-section" aria-labelledby="gaps-heading">
            <h2 id="gaps-heading">Gap list ({report.gapsTotal})</h2>
            <div>
              <Table size="sm" aria-labelledby="gaps-heading">
                <TableHead>
                  <TableRow>
                    <TableHeader>Priority</TableHeader>
                    <TableHeader>Account</TableHeader>
                    <TableHeader>Tier</TableHeader>
                    <TableHeader>ARR</TableHeader>
                    <TableHeader>CSM</TableHeader>
                    <TableHeader>Days since contact</TableHeader>
                    <TableHeader>Score</TableHeader>
                    <TableHeader>Gaps</TableHeader>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {report.gaps.map((gap) => (
                    <TableRow key={gap.customerId} data-testid="gap-row">
                      <TableCell>
                        <Tag type={gap.priority === "URGENT" ? "red" : gap.priority === "ATTENTION" ? "magenta" : "gray"} size="sm">
                          {words(gap.priority)}
                        </Tag>
                      </TableCell>
                      <TableCell>
                        <Link to={`/customers/${gap.customerId}`}>{gap.name}</Link>
                      </TableCell>
                      <TableCell>{words(gap.tier)}</TableCell>
                      <TableCell>{money(gap.arr)}</TableCell>
                      <TableCell>{gap.csmName ?? "—"}</TableCell>
                      <TableCell>{gap.daysSinceContact ?? "never"}</TableCell>
                      <TableCell>{one(gap.score)}</TableCell>
                      <TableCell>{gap.gapAreas.map(words).join(", ")}</TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
              <Pager label="Gaps" offset={gapsOffset} size={50} total={report.gapsTotal} onChange={setGapsOffset} />
            </div>
          </section>
          <section className="cs-section" aria-labelledby="accounts-heading">
            <h2 id="accounts-heading">Accounts and their deductions ({report.accountsTotal})</h2>
            <div>
              <Table size="sm" aria-labelledby="accounts-heading">
                <TableHead>
                  <TableRow>
                    <TableHeader>Account</TableHeader>
                    <TableHeader>Status</TableHeader>
                    <TableHeader>Score</TableHeader>
                    <TableHeader>Contact</TableHeader>
                    <TableHeader>Touches</TableHeader>
                    <TableHeader>Meetings</TableHeader>
                    <TableHeader>Stakeholders</TableHeader>
                    <TableHeader>Inputs</TableHeader>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {report.accounts.map((account) => (
                    <TableRow key={account.customerId} data-testid="coverage-account">
                      <TableCell>
                        <Link to={`/customers/${account.customerId}`}>{account.name}</Link>
                      </TableCell>
                      <TableCell>
                        <Tag type={statusTag[account.status]} size="sm">
                          {words(account.status)}
                        </Tag>
                      </TableCell>
                      <TableCell>{one(account.score)}</TableCell>
                      <TableCell>−{one(account.deductions.contact)}</TableCell>
                      <TableCell>−{one(account.deductions.touches)}</TableCell>
                      <TableCell>−{one(account.deductions.meetings)}</TableCell>
                      <TableCell>−{one(account.deductions.stakeholders)}</TableCell>
                      <TableCell className="cs-muted">
                        {account.daysSinceContact ?? "no"} days · {account.touches30d} touches/30d · {account.meetings90d} meetings/90d · {account.stakeholdersEngaged} people
                      </TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
              <Pager label="Accounts" offset={accountsOffset} size={50} total={report.accountsTotal} onChange={setAccountsOffset} />
            </div>
          </section>
        </>
      ) : null}
    </>
  );
}
