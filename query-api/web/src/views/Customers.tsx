// The customer list a team works from: filters on every column the API offers (tier, CSM,
// partner, health, at risk, NPS, coverage, renewal, a custom field), custom-field columns of the
// user's choice, an order, saved views, the total, and batches (decks, partner assignment).
// Everything chosen is kept in the address, so a saved view is that address.

import { useState } from "react";
import { Link } from "react-router-dom";
import { useReadBack, useUrlParams } from "../hooks";
import { useQuery } from "urql";
import { Button, Checkbox, Modal, Search, Select, SelectItem, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag, TextInput } from "@carbon/react";
import { graphql } from "../gql";
import { Pending, Problem, Table } from "../components";
import { Downloads, sheets } from "../downloads";
import { BookSwitch, useBook } from "../book";
import { colourTag, count, day, money, words } from "../format";
import type { CoverageStatus, CustomerSort, HealthColour, NextTouchWindow, NpsCategory, RiskBand, Tier } from "../gql/graphql";
import { TouchTag } from "../touch";
import { RiskTag } from "../risk";
import { PinButton } from "../focus";
import { useSession } from "../App";
import { can } from "../api/session";
import { CommandError, command, download } from "../api/commands";
import { FIELD_DEFINITIONS, FieldInput, type FieldDefinitionView } from "../fieldsForm";
import { ColumnChooser, CustomFieldFilter, customFieldFilter } from "./CustomFieldControls";
import { SavedViews, viewParams } from "./SavedViews";

const CUSTOMERS = graphql(`
  query Customers($filter: CustomerFilter, $sort: CustomerSort!, $after: String, $customField: CustomFieldFilter, $sortByCustomField: CustomFieldSort) {
    customers(filter: $filter, sort: $sort, first: 50, after: $after, customField: $customField, sortByCustomField: $sortByCustomField) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        customerId
        name
        tags
        tier
        arr
        healthColour
        renewalDate
        daysUntilRenewal
        churnedOn
        csmId
        csm {
          name
        }
        partnerIds
        nextTouch {
          ...NextTouchFields
        }
        risk {
          score
          band
        }
        pinned
        customFields {
          key
          display
        }
      }
    }
  }
`);

const PARTNER_CHOICES = graphql(`
  query CustomerListPartners {
    partners {
      partnerId
      name
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
  ["HEALTH_ASC", "health, lowest first"],
  ["NEXT_TOUCH", "next touch, soonest first"],
  ["RISK_DESC", "churn risk, highest first"],
];
const NPS: Array<[NpsCategory, string]> = [
  ["PROMOTER", "promoters (9 or 10)"],
  ["PASSIVE", "passives (7 or 8)"],
  ["DETRACTOR", "detractors (0 to 6)"],
  ["NO_ANSWER", "no NPS answer"],
];

/** The portfolio list, a page of 50 at a time (partners see only their customers). */
export default function Customers() {
  const session = useSession();
  const { params, set, setAll, replace } = useUrlParams();
  const search = params.get("search") ?? "";
  const tier = (params.get("tier") || null) as Tier | null;
  const book = useBook();
  const csmId = book.csmId ?? (params.get("csm") || null);
  const healthColour = (params.get("health") || null) as HealthColour | null;
  const coverageStatus = (params.get("coverage") || null) as CoverageStatus | null;
  const renewal = params.get("renewal") || "";
  const includeChurned = params.get("churned") === "1";
  const chosenSort = params.get("sort") || "NAME";
  const sort = (chosenSort.startsWith("cf:") ? "NAME" : chosenSort) as CustomerSort;
  const partnerId = params.get("partner") || null;
  const npsCategory = (params.get("nps") || null) as NpsCategory | null;
  const risk = params.get("risk") || "";
  const nextTouch = (params.get("touch") || null) as NextTouchWindow | null;
  const riskBand = (params.get("churn") || null) as RiskBand | null;
  const focus = params.get("focus") === "1";
  const tag = params.get("tag") ?? "";
  // Partners do not see the churn-risk score (docs/PERMISSIONS.md).
  const staff = session.role !== "partner";
  const columns = (params.get("columns") ?? "").split(",").filter(Boolean);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const choose = (name: string, value: string) => {
    setCursors([null]);
    set(name, value);
  };
  const chooseAll = (changes: Record<string, string>) => {
    setCursors([null]);
    setAll(changes);
  };
  const [{ data: fields }] = useQuery({ query: FIELD_DEFINITIONS });
  const definitions = (fields?.customFieldDefinitions ?? []) as FieldDefinitionView[];
  const shownColumns = definitions.filter((d) => columns.includes(d.key));
  const customField = customFieldFilter(definitions, params);
  const sortByCustomField = chosenSort.startsWith("cf:") ? { key: chosenSort.split(":")[1], descending: chosenSort.endsWith(":desc") } : null;
  const after = cursors[cursors.length - 1];
  const filter = {
    search: search || null,
    tier,
    csmId,
    healthColour,
    coverageStatus,
    renewalWithinDays: renewal ? Number(renewal) : null,
    includeChurned,
    partnerId,
    npsCategory,
    atRisk: risk === "at-risk" ? true : risk === "not-at-risk" ? false : null,
    nextTouch,
    riskBand: staff ? riskBand : null,
    pinned: focus ? true : null,
    tag: staff ? tag.trim() || null : null,
  };
  // Customers chosen for a batch of decks (across pages and filters), by id with their names.
  const decks = session.role !== "partner";
  const [selected, setSelected] = useState<Map<string, string>>(new Map());
  const [{ data, fetching, error }, refetch] = useQuery({
    query: CUSTOMERS,
    variables: { filter, sort, after, customField, sortByCustomField },
    pause: !book.ready || (Boolean(params.get("cf")) && !fields),
  });
  const expect = useReadBack(data, () => refetch({ requestPolicy: "network-only" }));
  const [{ data: csms }] = useQuery({ query: CSM_CHOICES, pause: session.role === "partner" });
  const managing = session.role === "admin" || session.role === "manager";
  const [{ data: partners }] = useQuery({ query: PARTNER_CHOICES, pause: !managing });
  const page = data?.customers;
  const first = (cursors.length - 1) * 50;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Customers</h1>
      <BookSwitch book={book} />
      <SavedViews
        screen="customers"
        params={viewParams(params)}
        onChoose={(query) => {
          setCursors([null]);
          replace(query);
        }}
      />
      <div className="cs-toolbar">
        <Downloads
          choices={sheets("customers")}
          params={{ search, tier, csmId, healthColour, renewalWithinDays: renewal, partnerId, npsCategory, atRisk: filter.atRisk, nextTouch, riskBand: filter.riskBand, pinned: filter.pinned, includeChurned: includeChurned || null }}
        />
        {decks ? <DeckBatch selected={selected} onDone={() => setSelected(new Map())} /> : null}
        {can.record(session.role) ? (
          <BatchChange
            selected={selected}
            managing={managing}
            csms={(csms?.csmWorkload.csms ?? []).map((c) => ({ id: c.csmId, name: c.name ?? "a CSM without a name" }))}
            partners={(partners?.partners ?? []).map((p) => ({ id: p.partnerId, name: p.name }))}
            fields={definitions.filter((d) => d.editable)}
            onDone={() => {
              setSelected(new Map());
              refetch({ requestPolicy: "network-only" });
              window.setTimeout(() => refetch({ requestPolicy: "network-only" }), 800);
            }}
          />
        ) : null}
        {managing && selected.size > 0 ? (
          <>
            <BatchHandOver
              selected={selected}
              over={{
                to: "CSM",
                choices: (csms?.csmWorkload.csms ?? []).map((c) => ({ id: c.csmId, name: c.name ?? "a CSM without a name" })),
                path: (id) => `/api/v1/csms/${id}/customers`,
                reason: true,
                counted: "reassigned",
                testId: "csm-batch",
              }}
              onDone={({ id, customerIds }) => {
                setSelected(new Map());
                // Read the page again until its rows show the handoffs.
                expect((read) => read.customers.nodes.every((c) => !customerIds.includes(c.customerId) || c.csmId === id));
              }}
            />
            <BatchHandOver
              selected={selected}
              over={{
                to: "partner",
                choices: (partners?.partners ?? []).map((p) => ({ id: p.partnerId, name: p.name })),
                path: (id) => `/api/v1/partners/${id}/customers`,
                reason: false,
                counted: "assigned",
                testId: "partner-batch",
              }}
              onDone={({ id, customerIds }) => {
                setSelected(new Map());
                expect((read) => read.customers.nodes.every((c) => !customerIds.includes(c.customerId) || c.partnerIds.includes(id)));
              }}
            />
          </>
        ) : null}
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
        {managing ? (
          <Select id="customers-partner" labelText="Partner" value={partnerId ?? ""} onChange={(e) => choose("partner", e.target.value)}>
            <SelectItem value="" text="Any partner or none" />
            {(partners?.partners ?? []).map((p) => (
              <SelectItem key={p.partnerId} value={p.partnerId} text={p.name} />
            ))}
          </Select>
        ) : null}
        <Select id="customers-health" labelText="Health" value={healthColour ?? ""} onChange={(e) => choose("health", e.target.value)}>
          <SelectItem value="" text="Any health" />
          {COLOURS.map((c) => (
            <SelectItem key={c} value={c} text={words(c)} />
          ))}
        </Select>
        <Select id="customers-risk" labelText="Health risk" value={risk} onChange={(e) => choose("risk", e.target.value)}>
          <SelectItem value="" text="Any" />
          <SelectItem value="at-risk" text="At risk (red or yellow)" />
          <SelectItem value="not-at-risk" text="Not at risk (green or no score)" />
        </Select>
        {staff ? (
          <Select id="customers-churn" labelText="Churn risk" value={riskBand ?? ""} onChange={(e) => choose("churn", e.target.value)}>
            <SelectItem value="" text="Any band" />
            <SelectItem value="HIGH" text="high" />
            <SelectItem value="WATCH" text="watch" />
            <SelectItem value="LOW" text="low" />
          </Select>
        ) : null}
        {staff ? <TextInput id="customers-tag" labelText="Tag" placeholder="Any tag" value={tag} onChange={(e) => choose("tag", e.target.value)} /> : null}
        <Select id="customers-nps" labelText="NPS" value={npsCategory ?? ""} onChange={(e) => choose("nps", e.target.value)}>
          <SelectItem value="" text="Any NPS" />
          {NPS.map(([value, label]) => (
            <SelectItem key={value} value={value} text={label} />
          ))}
        </Select>
        <Select id="customers-coverage" labelText="Coverage" value={coverageStatus ?? ""} onChange={(e) => choose("coverage", e.target.value)}>
          <SelectItem value="" text="Any coverage" />
          {STATUSES.map((c) => (
            <SelectItem key={c} value={c} text={words(c)} />
          ))}
        </Select>
        <Select id="customers-touch" labelText="Next touch" value={nextTouch ?? ""} onChange={(e) => choose("touch", e.target.value)}>
          <SelectItem value="" text="any time" />
          <SelectItem value="OVERDUE" text="overdue" />
          <SelectItem value="NEXT_7_DAYS" text="due in the next 7 days" />
          <SelectItem value="NEXT_30_DAYS" text="due in the next 30 days" />
        </Select>
        <Select id="customers-renewal" labelText="Renewing" value={renewal} onChange={(e) => choose("renewal", e.target.value)}>
          <SelectItem value="" text="any time" />
          <SelectItem value="30" text="in the next 30 days" />
          <SelectItem value="90" text="in the next 90 days" />
          <SelectItem value="180" text="in the next 180 days" />
        </Select>
        <CustomFieldFilter definitions={definitions} params={params} choose={chooseAll} />
        <Select id="customers-sort" labelText="Order by" value={chosenSort} onChange={(e) => choose("sort", e.target.value === "NAME" ? "" : e.target.value)}>
          {SORTS.filter(([value]) => staff || value !== "RISK_DESC").map(([value, label]) => (
            <SelectItem key={value} value={value} text={label} />
          ))}
          {shownColumns.flatMap((d) => [
            <SelectItem key={`cf:${d.key}`} value={`cf:${d.key}`} text={`${d.label}, ascending`} />,
            <SelectItem key={`cf:${d.key}:desc`} value={`cf:${d.key}:desc`} text={`${d.label}, descending`} />,
          ])}
        </Select>
        <ColumnChooser definitions={definitions} chosen={columns} onChange={(keys) => choose("columns", keys.join(","))} />
        <Checkbox id="customers-focus" labelText="My focus only" checked={focus} onChange={(_, { checked }) => choose("focus", checked ? "1" : "")} />
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
                  <TableHeader>Next touch</TableHeader>
                  {staff ? <TableHeader>Churn risk</TableHeader> : null}
                  {shownColumns.map((d) => (
                    <TableHeader key={d.key}>{d.label}</TableHeader>
                  ))}
                  <TableHeader>Focus</TableHeader>
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
                      {customer.tags.length ? (
                        <div>
                          {customer.tags.map((t) => (
                            <Tag key={t} size="sm" type="outline">
                              {t}
                            </Tag>
                          ))}
                        </div>
                      ) : null}
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
                    <TableCell data-testid="column-next-touch">
                      <TouchTag touch={customer.nextTouch} />
                    </TableCell>
                    {staff ? (
                      <TableCell data-testid="column-churn-risk">
                        <RiskTag risk={customer.risk} />
                      </TableCell>
                    ) : null}
                    {shownColumns.map((d) => (
                      <TableCell key={d.key} data-testid={`column-${d.key}`}>
                        {customer.customFields.find((f) => f.key === d.key)?.display || "—"}
                      </TableCell>
                    ))}
                    <TableCell>
                      <PinButton customerId={customer.customerId} name={customer.name} pinned={customer.pinned} onChange={() => refetch({ requestPolicy: "network-only" })} />
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

/** What a batch hands the selected customers to: a partner organisation, or a CSM (with a reason). */
interface HandOver {
  /** "partner" or "CSM", as the button and dialog say it. */
  to: string;
  choices: Array<{ id: string; name: string }>;
  /** The command's path for the chosen one. */
  path: (id: string) => string;
  /** A reason kept with each change. */
  reason: boolean;
  /** The answer's count of customers changed. */
  counted: "assigned" | "reassigned";
  testId: string;
}

/**
 * "Assign N customers to a partner" or "Reassign N customers to a CSM": the selection handed
 * over in one all-or-nothing command; those already theirs are left as they are.
 */
function BatchHandOver({ selected, over, onDone }: { selected: Map<string, string>; over: HandOver; onDone: (done: { id: string; customerIds: string[] }) => void }) {
  const session = useSession();
  const [open, setOpen] = useState(false);
  const [chosen, setChosen] = useState("");
  const [reason, setReason] = useState("");
  const [state, setState] = useState<{ busy: boolean; error: string | null; done: string | null }>({ busy: false, error: null, done: null });
  if (over.choices.length === 0) return null;
  const verb = over.reason ? "Reassign" : "Assign";
  const heading = `${verb} ${count(selected.size, "customer", "customers")} to a ${over.to}`;
  return (
    <>
      <Button kind="tertiary" size="md" onClick={() => setOpen(true)} data-testid={over.testId}>
        {heading}
      </Button>
      {state.done ? (
        <span className="cs-muted" role="status">
          {state.done}
        </span>
      ) : null}
      <Modal
        open={open}
        modalHeading={heading}
        primaryButtonText={state.busy ? "Working…" : verb}
        primaryButtonDisabled={state.busy || !chosen || (over.reason && !reason.trim())}
        secondaryButtonText="Cancel"
        onRequestClose={() => setOpen(false)}
        onRequestSubmit={async () => {
          setState({ busy: true, error: null, done: null });
          const customerIds = [...selected.keys()];
          try {
            const body = over.reason ? { customer_ids: customerIds, reason: reason.trim() } : { customer_ids: customerIds };
            const answer = await command<Record<string, number>>(session, "POST", over.path(chosen), body);
            const name = over.choices.find((c) => c.id === chosen)?.name ?? `the ${over.to}`;
            setState({ busy: false, error: null, done: `${count(answer[over.counted] ?? 0, "customer", "customers")} now with ${name}; the others were already.` });
            setOpen(false);
            onDone({ id: chosen, customerIds });
          } catch (error) {
            setState({ busy: false, error: CommandError.from(error).message, done: null });
          }
        }}
      >
        <p style={{ marginBottom: "1rem" }}>
          {[...selected.values()].slice(0, 10).join(", ")}
          {selected.size > 10 ? ` and ${selected.size - 10} more` : ""}. All change together, or none.
        </p>
        <Select id={`${over.testId}-choice`} labelText={over.to === "CSM" ? "CSM" : "Partner organisation"} value={chosen} onChange={(e) => setChosen(e.target.value)}>
          <SelectItem value="" text="Choose one" />
          {over.choices.map((c) => (
            <SelectItem key={c.id} value={c.id} text={c.name} />
          ))}
        </Select>
        {over.reason ? <TextInput id={`${over.testId}-reason`} labelText="Why (kept with each handoff)" value={reason} onChange={(e) => setReason(e.target.value)} /> : null}
        {state.error ? (
          <p role="alert" className="cs-error-text">
            {state.error}
          </p>
        ) : null}
      </Modal>
    </>
  );
}

interface PreviewRow {
  customer_id: string;
  name: string;
  before: string;
  after: string;
  changes: boolean;
}

/**
 * "Change N customers": one action on the selection (a health score with its reason, a CSM, a
 * partner added or removed), previewed account by account (what it has now, what it will have,
 * whether it changes) before it is applied to all of them together, or none.
 */
const BATCH_PLAYBOOKS = graphql(`
  query BatchPlaybooks {
    playbooks {
      playbookId
      name
    }
  }
`);

function BatchChange({
  selected,
  managing,
  csms,
  partners,
  fields,
  onDone,
}: {
  selected: Map<string, string>;
  managing: boolean;
  csms: Array<{ id: string; name: string }>;
  partners: Array<{ id: string; name: string }>;
  fields: FieldDefinitionView[];
  onDone: () => void;
}) {
  const session = useSession();
  const [open, setOpen] = useState(false);
  const [kind, setKind] = useState("record_health");
  const [score, setScore] = useState("");
  const [chosen, setChosen] = useState("");
  const [reason, setReason] = useState("");
  const [fieldValue, setFieldValue] = useState<unknown>(null);
  const [preview, setPreview] = useState<{ rows: PreviewRow[]; changing: number } | null>(null);
  const [state, setState] = useState<{ busy: boolean; error: string | null; done: string | null }>({ busy: false, error: null, done: null });
  const heading = `Change ${count(selected.size, "customer", "customers")}`;
  const [{ data: playbookData }] = useQuery({ query: BATCH_PLAYBOOKS, pause: kind !== "start_playbook" });
  const action = () => {
    switch (kind) {
      case "start_playbook":
        return { start_playbook: { playbook_id: chosen, reason: reason.trim() } };
      case "set_custom_field":
        return { set_custom_field: { key: chosen, value: fieldValue ?? null } };
      case "add_tag":
        return { add_tag: { tag: chosen.trim() } };
      case "remove_tag":
        return { remove_tag: { tag: chosen.trim(), reason: reason.trim() } };
      case "record_health":
        return { record_health: { score: Number(score), reason: reason.trim() } };
      case "assign_csm":
        return { assign_csm: { csm_id: chosen, reason: reason.trim() } };
      case "assign_partner":
        return { assign_partner: { partner_id: chosen } };
      default:
        return { unassign_partner: { partner_id: chosen, reason: reason.trim() } };
    }
  };
  const ready =
    kind === "record_health"
      ? score !== "" && Number(score) >= 0 && Number(score) <= 100 && reason.trim() !== ""
      : kind === "add_tag" || kind === "remove_tag"
        ? chosen.trim() !== ""
        : chosen !== "" && (kind === "assign_partner" || kind === "set_custom_field" || reason.trim() !== "");
  const field = kind === "set_custom_field" ? fields.find((f) => f.key === chosen) : undefined;
  const body = () => ({ customer_ids: [...selected.keys()], action: action() });
  const reset = (next: string) => {
    setKind(next);
    setChosen("");
    setFieldValue(null);
    setPreview(null);
  };
  const run = async (path: string) => {
    setState({ busy: true, error: null, done: null });
    try {
      if (path.endsWith("preview")) {
        const answer = await command<{ accounts: PreviewRow[]; changing: number }>(session, "POST", path, body());
        setPreview({ rows: answer.accounts, changing: answer.changing });
        setState({ busy: false, error: null, done: null });
      } else {
        const answer = await command<{ changed: number }>(session, "POST", path, body());
        setState({ busy: false, error: null, done: `${count(answer.changed, "customer", "customers")} changed; the others already had it.` });
        setOpen(false);
        setPreview(null);
        onDone();
      }
    } catch (error) {
      setState({ busy: false, error: CommandError.from(error).message, done: null });
    }
  };
  const choices =
    kind === "assign_csm"
      ? csms
      : kind === "start_playbook"
        ? (playbookData?.playbooks ?? []).map((p) => ({ id: p.playbookId, name: p.name }))
        : kind === "set_custom_field"
          ? fields.map((f) => ({ id: f.key, name: f.label }))
          : partners;
  return (
    <>
      {selected.size > 0 ? (
        <Button kind="tertiary" size="md" onClick={() => setOpen(true)} data-testid="batch-change">
          {heading}
        </Button>
      ) : null}
      {state.done ? (
        <span className="cs-muted" role="status">
          {state.done}
        </span>
      ) : null}
      <Modal
        open={open}
        size="lg"
        modalHeading={heading}
        primaryButtonText={state.busy ? "Working…" : preview ? `Apply to ${count(preview.changing, "customer", "customers")}` : "Preview the change"}
        primaryButtonDisabled={state.busy || !ready || (preview !== null && preview.changing === 0)}
        secondaryButtonText="Cancel"
        onRequestClose={() => {
          setOpen(false);
          setPreview(null);
        }}
        onRequestSubmit={() => run(preview ? "/api/v1/customers/bulk" : "/api/v1/customers/bulk/preview")}
      >
        <Select id="batch-action" labelText="Change" value={kind} onChange={(e) => reset(e.target.value)}>
          <SelectItem value="record_health" text="Record a health score" />
          {managing ? <SelectItem value="assign_csm" text="Hand to a CSM" /> : null}
          {managing ? <SelectItem value="assign_partner" text="Add a partner" /> : null}
          {managing ? <SelectItem value="unassign_partner" text="Remove a partner" /> : null}
          <SelectItem value="add_tag" text="Add a tag" />
          <SelectItem value="remove_tag" text="Remove a tag" />
          <SelectItem value="start_playbook" text="Start a playbook" />
          {fields.length ? <SelectItem value="set_custom_field" text="Set a custom field" /> : null}
        </Select>
        {kind === "add_tag" || kind === "remove_tag" ? (
          <TextInput
            id="batch-tag"
            labelText="Tag"
            value={chosen}
            onChange={(e) => {
              setChosen(e.target.value);
              setPreview(null);
            }}
          />
        ) : kind === "record_health" ? (
          <TextInput
            id="batch-score"
            type="number"
            labelText="Health score (0 to 100)"
            value={score}
            onChange={(e) => {
              setScore(e.target.value);
              setPreview(null);
            }}
          />
        ) : (
          <Select
            id="batch-choice"
            labelText={kind === "assign_csm" ? "CSM" : kind === "start_playbook" ? "Playbook" : kind === "set_custom_field" ? "Field" : "Partner organisation"}
            value={chosen}
            onChange={(e) => {
              setChosen(e.target.value);
              setFieldValue(null);
              setPreview(null);
            }}
          >
            <SelectItem value="" text="Choose one" />
            {choices.map((c) => (
              <SelectItem key={c.id} value={c.id} text={c.name} />
            ))}
          </Select>
        )}
        {field ? (
          <FieldInput
            key={field.key}
            id="batch-value"
            field={field}
            value={fieldValue}
            onChange={(value) => {
              setFieldValue(value);
              setPreview(null);
            }}
          />
        ) : null}
        {kind !== "assign_partner" && kind !== "set_custom_field" && kind !== "add_tag" ? (
          <TextInput
            id="batch-reason"
            labelText="Why (kept with each change)"
            value={reason}
            onChange={(e) => {
              setReason(e.target.value);
              setPreview(null);
            }}
          />
        ) : null}
        {preview ? (
          <div style={{ marginTop: "1rem" }}>
            <p data-testid="batch-preview-summary">
              {count(preview.changing, "customer changes", "customers change")}; {count(preview.rows.length - preview.changing, "already has it", "already have it")}. All change together, or none.
            </p>
            <Table size="sm" aria-label="What will change">
              <TableHead>
                <TableRow>
                  <TableHeader>Customer</TableHeader>
                  <TableHeader>Now</TableHeader>
                  <TableHeader>After</TableHeader>
                  <TableHeader>Changes</TableHeader>
                </TableRow>
              </TableHead>
              <TableBody>
                {preview.rows.map((row) => (
                  <TableRow key={row.customer_id} data-testid="batch-preview-row">
                    <TableCell>{row.name}</TableCell>
                    <TableCell>{row.before}</TableCell>
                    <TableCell>{row.after}</TableCell>
                    <TableCell>{row.changes ? "yes" : "no: already so"}</TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          </div>
        ) : (
          <p className="cs-muted" style={{ marginTop: "1rem" }}>
            {[...selected.values()].slice(0, 10).join(", ")}
            {selected.size > 10 ? ` and ${selected.size - 10} more` : ""}: preview what each will have before it is applied.
          </p>
        )}
        {state.error ? (
          <p role="alert" className="cs-error-text">
            {state.error}
          </p>
        ) : null}
      </Modal>
    </>
  );
}
