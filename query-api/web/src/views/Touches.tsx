// Next touches: the accounts whose next contact is overdue, and those due in the next 7 days,
// soonest first, each with why it is due then (docs/DOMAIN.md, "Next touch").

import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { Button, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@carbon/react";
import { graphql } from "../gql";
import type { NextTouchWindow } from "../gql/graphql";
import { Pending, Problem, Table } from "../components";
import { BookSwitch, useBook } from "../book";
import { count, money, words } from "../format";
import { TouchTag, touchReason } from "../touch";

const PAGE = 25;

const TOUCHES = graphql(`
  query NextTouches($window: NextTouchWindow!, $csmId: UUID, $after: String) {
    customers(filter: { nextTouch: $window, csmId: $csmId }, sort: NEXT_TOUCH, first: 25, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        customerId
        name
        tier
        arr
        csm {
          name
        }
        nextTouch {
          ...NextTouchFields
        }
      }
    }
  }
`);

export default function Touches() {
  const book = useBook();
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Next touches</h1>
      <BookSwitch book={book} />
      <p className="cs-muted" style={{ marginBottom: "1rem", maxWidth: "48rem" }}>
        An account is next due a contact at the earlier of its next meeting on a calendar and its last contact plus the longest its tier
        may go without one (the coverage standard in force).
      </p>
      {book.ready ? (
        <>
          <Window title="Overdue" window="OVERDUE" csmId={book.csmId} />
          <Window title="Due in the next 7 days" window="NEXT_7_DAYS" csmId={book.csmId} />
        </>
      ) : null}
    </>
  );
}

function Window({ title, window, csmId }: { title: string; window: NextTouchWindow; csmId: string | null }) {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [{ data, fetching, error }] = useQuery({ query: TOUCHES, variables: { window, csmId, after: cursors[cursors.length - 1] } });
  const page = data?.customers;
  const first = (cursors.length - 1) * PAGE;
  const id = `touches-${window.toLowerCase()}`;
  return (
    <section className="cs-section" aria-labelledby={id} data-testid={id}>
      <h2 id={id}>{title}</h2>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(page)} />
      {page ? (
        <>
          <p className="cs-muted" role="status" data-testid={`${id}-total`}>
            {page.totalCount === 0 ? "None." : `${first + 1} to ${first + page.nodes.length} of ${count(page.totalCount, "account", "accounts")}`}
          </p>
          {page.nodes.length ? (
            <Table cards size="md" aria-labelledby={id}>
              <TableHead>
                <TableRow>
                  <TableHeader>Customer</TableHeader>
                  <TableHeader>Tier</TableHeader>
                  <TableHeader>ARR</TableHeader>
                  <TableHeader>CSM</TableHeader>
                  <TableHeader>Next touch</TableHeader>
                  <TableHeader>Why then</TableHeader>
                </TableRow>
              </TableHead>
              <TableBody>
                {page.nodes.map((customer) => (
                  <TableRow key={customer.customerId} data-testid="touch-row">
                    <TableCell>
                      <Link to={`/customers/${customer.customerId}`}>{customer.name}</Link>
                    </TableCell>
                    <TableCell>{customer.tier ? words(customer.tier) : "—"}</TableCell>
                    <TableCell>{money(customer.arr)}</TableCell>
                    <TableCell>{customer.csm?.name ?? "—"}</TableCell>
                    <TableCell>
                      <TouchTag touch={customer.nextTouch} />
                    </TableCell>
                    <TableCell>{customer.nextTouch ? touchReason(customer.nextTouch) : "—"}</TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          ) : null}
          {page.totalCount > PAGE ? (
            <div className="cs-toolbar" style={{ marginTop: "1rem" }}>
              <Button kind="secondary" size="md" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
                Previous page
              </Button>
              <Button kind="secondary" size="md" disabled={!page.pageInfo.hasNextPage} onClick={() => setCursors([...cursors, page.pageInfo.endCursor ?? null])}>
                Next page
              </Button>
            </div>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
