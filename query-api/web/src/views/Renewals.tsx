// The renewal pipeline as a list: the customers renewing in a window (the next 30, 60 or 90
// days, or a month), soonest first, with ARR, health, the last contact and the risk in words;
// the window's totals by health colour above it. Partners see their own customers.

import { useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { Button, Select, SelectItem, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import { usePortfolioLive, useUrlParams } from "../hooks";
import { Kpi, Pending, Problem, Table } from "../components";
import { colourTag, count, day, money } from "../format";
import { BookSwitch, useBook } from "../book";

const RENEWALS = graphql(`
  query Renewals($from: Date!, $to: Date!, $csmId: UUID, $first: Int!, $after: String) {
    renewalPipeline(from: $from, to: $to, csmId: $csmId) {
      month
      accounts
      arr
      colours {
        colour
        accounts
        arr
      }
    }
    renewals(from: $from, to: $to, csmId: $csmId, first: $first, after: $after) {
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        customerId
        name
        csmName
        arr
        renewalDate
        daysUntilRenewal
        healthScore
        healthColour
        lastContactDate
      }
    }
  }
`);

const PAGE = 25;
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

function isoDay(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** The windows a person picks from: the next 30/60/90 days, then each of the next 12 months. */
function windows(today: Date): Array<{ key: string; label: string; from: string; to: string }> {
  const ahead = (days: number) => {
    const end = new Date(today);
    end.setDate(today.getDate() + days);
    return { from: isoDay(today), to: isoDay(end) };
  };
  const months = Array.from({ length: 12 }, (_, i) => {
    const start = new Date(today.getFullYear(), today.getMonth() + i, 1);
    const end = new Date(today.getFullYear(), today.getMonth() + i + 1, 0);
    return { key: isoDay(start).slice(0, 7), label: `${MONTHS[start.getMonth()]} ${start.getFullYear()}`, from: isoDay(start), to: isoDay(end) };
  });
  return [
    { key: "30", label: "The next 30 days", ...ahead(30) },
    { key: "60", label: "The next 60 days", ...ahead(60) },
    { key: "90", label: "The next 90 days", ...ahead(90) },
    ...months,
  ];
}

/** The risk of a renewal in words: its health, and a contact gap when there is one. */
function risk(colour: string | null | undefined, lastContact: string | null | undefined, today: Date): string {
  const health = colour === "RED" ? "at risk" : colour === "YELLOW" ? "watch" : colour === "GREEN" ? "healthy" : "no health score";
  if (!lastContact) return `${health}; never contacted`;
  const days = Math.round((today.getTime() - new Date(`${lastContact}T12:00:00`).getTime()) / 86_400_000);
  return days > 30 ? `${health}; no contact in ${days} days` : health;
}

export default function Renewals() {
  const { params, set } = useUrlParams();
  const today = useMemo(() => new Date(), []);
  const choices = useMemo(() => windows(today), [today]);
  const chosen = choices.find((w) => w.key === params.get("window")) ?? choices[2];
  // Cursors of the pages before this one, so "Previous" goes back exactly.
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const after = cursors[cursors.length - 1];
  const book = useBook();
  const [{ data, fetching, error }, refetch] = useQuery({
    query: RENEWALS,
    variables: { from: chosen.from, to: chosen.to, csmId: book.csmId, first: PAGE, after },
    pause: !book.ready,
  });
  usePortfolioLive(() => refetch({ requestPolicy: "network-only" }));
  const months = data?.renewalPipeline ?? [];
  const total = months.reduce((n, m) => n + m.accounts, 0);
  const byColour = (colour: string | null) =>
    months.flatMap((m) => m.colours.filter((c) => (c.colour ?? null) === colour)).reduce((n, c) => n + c.accounts, 0);
  const totalArr = months
    .reduce((sum, m) => {
      const [whole, fraction = ""] = m.arr.split(".");
      return sum + BigInt(whole) * 100n + BigInt((fraction + "00").slice(0, 2));
    }, 0n)
    .toString();
  const arrText = money(`${totalArr.slice(0, -2) || "0"}.${totalArr.slice(-2).padStart(2, "0")}`);
  const first = (cursors.length - 1) * PAGE;
  const rows = data?.renewals.nodes ?? [];
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Renewals</h1>
      <BookSwitch book={book} />
      <div className="cs-toolbar">
        <Select
          id="renewals-window"
          labelText="Renewing in"
          value={chosen.key}
          onChange={(e) => {
            set("window", e.target.value);
            setCursors([null]);
          }}
        >
          {choices.map((w) => (
            <SelectItem key={w.key} value={w.key} text={w.label} />
          ))}
        </Select>
      </div>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {data ? (
        <>
          <section className="cs-kpis" aria-label="The window's renewals">
            <Kpi testId="renewals-count" label="Renewals" value={total} change={`${day(chosen.from)} to ${day(chosen.to)}`} />
            <Kpi testId="renewals-arr" label="ARR renewing" value={arrText} />
            <Kpi testId="renewals-red" label="At risk (red)" value={byColour("RED")} change={`${byColour("YELLOW")} to watch (yellow)`} />
            <Kpi testId="renewals-unscored" label="No health score" value={byColour(null)} />
          </section>
          {total === 0 ? (
            <p className="cs-muted">No customer renews in this window.</p>
          ) : (
            <>
              <Table cards size="md" aria-label="Renewals in the window">
                <TableHead>
                  <TableRow>
                    <TableHeader>Customer</TableHeader>
                    <TableHeader>CSM</TableHeader>
                    <TableHeader>ARR</TableHeader>
                    <TableHeader>Renews</TableHeader>
                    <TableHeader>Health</TableHeader>
                    <TableHeader>Last contact</TableHeader>
                    <TableHeader>Risk</TableHeader>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {rows.map((r) => (
                    <TableRow key={r.customerId} data-testid="renewal-row">
                      <TableCell>
                        <Link to={`/customers/${r.customerId}`}>{r.name}</Link>
                      </TableCell>
                      <TableCell>{r.csmName ?? "—"}</TableCell>
                      <TableCell>{money(r.arr)}</TableCell>
                      <TableCell>
                        {day(r.renewalDate)} <span className="cs-muted">({count(r.daysUntilRenewal, "day", "days")})</span>
                      </TableCell>
                      <TableCell>
                        {r.healthColour ? (
                          <Tag type={colourTag[r.healthColour]} size="sm">
                            {r.healthScore?.toFixed(1)}
                          </Tag>
                        ) : (
                          "—"
                        )}
                      </TableCell>
                      <TableCell>{day(r.lastContactDate)}</TableCell>
                      <TableCell>{risk(r.healthColour, r.lastContactDate, today)}</TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
              <nav className="cs-toolbar" aria-label="Renewal pages" style={{ marginTop: "1rem", alignItems: "center" }}>
                <Button kind="secondary" size="sm" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
                  Previous {PAGE}
                </Button>
                <span className="cs-muted" data-testid="renewals-page">
                  {first + 1} to {first + rows.length} of {count(total, "renewal", "renewals")}
                </span>
                <Button
                  kind="secondary"
                  size="sm"
                  disabled={!data.renewals.pageInfo.hasNextPage}
                  onClick={() => setCursors([...cursors, data.renewals.pageInfo.endCursor ?? null])}
                >
                  Next {PAGE}
                </Button>
              </nav>
            </>
          )}
        </>
      ) : null}
    </>
  );
}
