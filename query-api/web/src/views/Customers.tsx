import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { Button, Search, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import { Pending, Problem, Table } from "../components";
import { Downloads, sheets } from "../downloads";
import { colourTag, day, money, words } from "../format";

const CUSTOMERS = graphql(`
  query Customers($search: String, $after: String) {
    customers(filter: { search: $search }, first: 50, after: $after) {
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        customerId
        name
        tier
        arr
        healthColour
        renewalDate
        daysUntilRenewal
        csm {
          name
        }
      }
    }
  }
`);

/** The portfolio list, a page of 50 at a time (partners see only their customers). */
export default function Customers() {
  const [search, setSearch] = useState("");
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors[cursors.length - 1];
  const [{ data, fetching, error }] = useQuery({ query: CUSTOMERS, variables: { search: search || null, after } });
  const page = data?.customers;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Customers</h1>
      <Downloads choices={sheets("customers")} params={{ search }} />
      <div className="cs-toolbar">
        <Search
          id="customer-search"
          labelText="Search customers"
          placeholder="Search by name"
          value={search}
          onChange={(e) => {
            setSearch(e.target.value);
            setCursors([null]);
          }}
          size="lg"
        />
      </div>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(page)} />
      {page ? (
        <>
          <div>
            <Table size="md" aria-label="Customers">
              <TableHead>
                <TableRow>
                  <TableHeader>Customer</TableHeader>
                  <TableHeader>Tier</TableHeader>
                  <TableHeader>ARR</TableHeader>
                  <TableHeader>Health</TableHeader>
                  <TableHeader>CSM</TableHeader>
                  <TableHeader>Renewal</TableHeader>
                </TableRow>
              </TableHead>
              <TableBody>
                {page.nodes.map((customer) => (
                  <TableRow key={customer.customerId} data-testid="customer-row">
                    <TableCell>
                      <Link to={`/customers/${customer.customerId}`}>{customer.name}</Link>
                    </TableCell>
                    <TableCell>{customer.tier ? words(customer.tier) : "—"}</TableCell>
                    <TableCell>{money(customer.arr)}</TableCell>
                    <TableCell>
                      {customer.healthColour ? (
                        <Tag type={colourTag[customer.healthColour]} size="sm">
                          {words(customer.healthColour)}
                        </Tag>
                      ) : (
                        "no score"
                      )}
                    </TableCell>
                    <TableCell>{customer.csm?.name ?? "—"}</TableCell>
                    <TableCell>
                      {day(customer.renewalDate)} <span className="cs-muted">({customer.daysUntilRenewal} days)</span>
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </div>
          <div className="cs-toolbar" style={{ marginTop: "1rem" }}>
            <Button kind="secondary" size="md" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
              Previous page
            </Button>
            <Button kind="secondary" size="md" disabled={!page.pageInfo.hasNextPage} onClick={() => setCursors([...cursors, page.pageInfo.endCursor ?? null])}>
              Next page
            </Button>
          </div>
        </>
      ) : null}
    </>
  );
}
