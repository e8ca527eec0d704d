import { useState } from "react";
import { Link } from "react-router-dom";
import { useUrlParams } from "../hooks";
import { useQuery } from "urql";
import { Button, Checkbox, Search, Select, SelectItem, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import { Pending, Problem, Table } from "../components";
import { Downloads, sheets } from "../downloads";
import { BookSwitch, useBook } from "../book";
import { colourTag, count, day, money, words } from "../format";
import type { CoverageStatus, CustomerSort, HealthColour, Tier } from "../gql/graphql";
import { useSession } from "../App";
import { CommandError, download } from "../api/commands";

const CUSTOMERS = graphql(`
  query Customers($filter: CustomerFilter, $sort: CustomerSort!, $after: String) {
    customers(filter: $filter, sort: $sort, first: 50, after: $after) {
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
        healthColour
        renewalDate
        daysUntilRenewal
        churnedOn
        csm {
          name
        }
      }
    }
  }
`);

const CSM_CHOICES = graphql(`
  query CustomerListCsms {
    csmWorkload {
      csms {
        csmId
        name
      }
    }
  }
`);

const TIERS: Tier[] = ["ENTERPRISE", "MID_MARKET", "SMB"];
const COLOURS: HealthColour[] = ["GREEN", "YELLOW", "RED"];
const STATUSES: CoverageStatus[] = ["UNDER_COVERED", "WELL_COVERED", "OVER_COVERED"];
const SORTS: Array<[CustomerSort, string]> = [
  ["NAME", "name"],
  ["ARR_DESC", "ARR, largest first"],
  ["RENEWAL_DATE", "renewal, soonest first"],
];

/** The portfolio list, a page of 50 at a time (partners see only their customers). */
export default function Customers() {
  const session = useSession();
  const { params, set } = useUrlParams();
  const search = params.get("search") ?? "";
  const tier = (params.get("tier") || null) as Tier | null;
  const book = useBook();
  const csmId = book.csmId ?? (params.get("csm") || null);
  const healthColour = (params.get("health") || null) as HealthColour | null;
  const coverageStatus = (params.get("coverage") || null) as CoverageStatus | null;
  const renewal = params.get("renewal") || "";
  const includeChurned = params.get("churned") === "1";
  const sort = (params.get("sort") || "NAME") as CustomerSort;
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const choose = (name: string, value: string) => {
    setCursors([null]);
    set(name, value);
  };
  const after = cursors[cursors.length - 1];
  const filter = {
    search: search || null,
    tier,
    csmId,
    healthColour,
    coverageStatus,
    renewalWithinDays: renewal ? Number(renewal) : null,
    includeChurned,
  };
  // Customers chosen for a batch of decks (across pages and filters), by id with their names.
  const decks = session.role !== "partner";
  const [selected, setSelected] = useState<Map<string, string>>(new Map());
  const [{ data, fetching, error }] = useQuery({ query: CUSTOMERS, variables: { filter, sort, after }, pause: !book.ready });
  const [{ data: csms }] = useQuery({ query: CSM_CHOICES, pause: session.role === "partner" });
  const page = data?.customers;
  const first = (cursors.length - 1) * 50;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Customers</h1>
      <BookSwitch book={book} />
      <div className="cs-toolbar">
        <Downloads choices={sheets("customers")} params={{ search, tier, csmId, healthColour, renewalWithinDays: renewal }} />
        {decks ? <DeckBatch selected={selected} onDone={() => setSelected(new Map())} /> : null}
      </div>
      <div className="cs-toolbar">
        <Search
          id="customer-search"
          labelText="Search customers"
          placeholder="Search by name"
          value={search}
          onChange={(e) => choose("search", e.target.value)}
          size="lg"
        />
      </div>
      <div className="cs-toolbar" role="group" aria-label="Filters and order">
        <Select id="customers-tier" labelText="Tier" value={tier ?? ""} onChange={(e) => choose("tier", e.target.value)}>
          <SelectItem value="" text="Every tier" />
          {TIERS.map((t) => (
            <SelectItem key={t} value={t} text={words(t)} />
          ))}
        </Select>
        {session.role !== "partner" && !book.csmId ? (
          <Select id="customers-csm" labelText="CSM" value={csmId ?? ""} onChange={(e) => choose("csm", e.target.value)}>
            <SelectItem value="" text="Every CSM" />
            {(csms?.csmWorkload.csms ?? []).map((csm) => (
              <SelectItem key={csm.csmId} value={csm.csmId} text={csm.name ?? "a CSM without a name"} />
            ))}
          </Select>
        ) : null}
        <Select id="customers-health" labelText="Health" value={healthColour ?? ""} onChange={(e) => choose("health", e.target.value)}>
          <SelectItem value="" text="Any health" />
          {COLOURS.map((c) => (
            <SelectItem key={c} value={c} text={words(c)} />
          ))}
        </Select>
        <Select id="customers-coverage" labelText="Coverage" value={coverageStatus ?? ""} onChange={(e) => choose("coverage", e.target.value)}>
          <SelectItem value="" text="Any coverage" />
          {STATUSES.map((c) => (
            <SelectItem key={c} value={c} text={words(c)} />
          ))}
        </Select>
        <Select id="customers-renewal" labelText="Renewing" value={renewal} onChange={(e) => choose("renewal", e.target.value)}>
          <SelectItem value="" text="any time" />
          <SelectItem value="30" text="in the next 30 days" />
          <SelectItem value="90" text="in the next 90 days" />
          <SelectItem value="180" text="in the next 180 days" />
        </Select>
        <Select id="customers-sort" labelText="Order by" value={sort} onChange={(e) => choose("sort", e.target.value === "NAME" ? "" : e.target.value)}>
          {SORTS.map(([value, label]) => (
            <SelectItem key={value} value={value} text={label} />
          ))}
        </Select>
        <Checkbox id="customers-churned" labelText="Include churned" checked={includeChurned} onChange={(_, { checked }) => choose("churned", checked ? "1" : "")} />
      </div>
      {page ? (
        <p className="cs-muted" role="status" data-testid="customers-total" style={{ marginBottom: "0.5rem" }}>
          {page.totalCount === 0
            ? "No customer matches."
            : `${first + 1} to ${first + page.nodes.length} of ${count(page.totalCount, "customer", "customers")}`}
        </p>
      ) : null}
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(page)} />
      {page ? (
        <>
          <div>
            <Table cards size="md" aria-label="Customers">
              <TableHead>
                <TableRow>
                  {decks ? (
                    <TableHeader>
                      <span className="cs-visually-hidden">Selected</span>
                    </TableHeader>
                  ) : null}
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
                    {decks ? (
                      <TableCell>
                        <Checkbox
                          id={`select-${customer.customerId}`}
                          labelText={`Select ${customer.name}`}
                          hideLabel
                          checked={selected.has(customer.customerId)}
                          disabled={!selected.has(customer.customerId) && selected.size >= BATCH}
                          onChange={(_, { checked }) => {
                            const next = new Map(selected);
                            if (checked) next.set(customer.customerId, customer.name);
                            else next.delete(customer.customerId);
                            setSelected(next);
                          }}
                        />
                      </TableCell>
                    ) : null}
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
                      {customer.churnedOn ? (
                        <span className="cs-muted">churned {day(customer.churnedOn)}</span>
                      ) : (
                        <>
                          {day(customer.renewalDate)} <span className="cs-muted">({count(customer.daysUntilRenewal, "day", "days")})</span>
                        </>
                      )}
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

/** Most customer decks one batch builds (the export's limit). */
const BATCH = 50;

/** "Decks for N customers (.zip)": one customer summary deck each, in one zip. */
function DeckBatch({ selected, onDone }: { selected: Map<string, string>; onDone: () => void }) {
  const session = useSession();
  const [state, setState] = useState<{ busy: boolean; error: string | null }>({ busy: false, error: null });
  if (selected.size === 0) return <span className="cs-muted">Select customers to download their decks in one file.</span>;
  return (
    <>
      <Button
        kind="tertiary"
        size="md"
        disabled={state.busy}
        data-testid="deck-batch"
        onClick={async () => {
          setState({ busy: true, error: null });
          try {
            await download(session, `/export/customers.zip?customerIds=${[...selected.keys()].join(",")}`);
            setState({ busy: false, error: null });
            onDone();
          } catch (error) {
            setState({ busy: false, error: CommandError.from(error).message });
          }
        }}
      >
        {state.busy ? "Building the decks…" : `Decks for ${count(selected.size, "customer", "customers")} (.zip)`}
      </Button>
      {state.error ? (
        <span role="alert" className="cs-error-text">
          {state.error}
        </span>
      ) : null}
    </>
  );
}
