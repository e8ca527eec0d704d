import { Component, useEffect, useRef, useState, type ReactNode } from "react";
import { useQuery, type CombinedError } from "urql";
import { Button, ComboBox, InlineNotification, Select, SelectItem, TextInput, Tile, SkeletonText, Table as CarbonTable } from "@carbon/react";
import type { ComponentProps } from "react";
import { graphql } from "./gql";
import { useTimeTravel } from "./hooks";
import { when } from "./format";

const SNAPSHOTS = graphql(`
  query Snapshots {
    projectionSnapshots {
      name
      knownAt
      events
    }
  }
`);

/**
 * The time-travel control of a report: the day it is about (`asOf`) and what the system knew.
 * Portfolio reports read what was known from the named snapshots analysts rebuild
 * (`projection-service rebuild --known-at`); a customer's reports take any instant.
 */
export function TimeTravel({ knownAt }: { knownAt: "instant" | "snapshot" | "none" }) {
  const travel = useTimeTravel();
  return (
    <div className="cs-toolbar" role="group" aria-label="Time travel">
      <TextInput
        id="as-of"
        type="date"
        labelText="As of (the day the report is about)"
        value={travel.asOf ?? ""}
        onChange={(e) => travel.set("asOf", e.target.value || null)}
        helperText={travel.asOf ? undefined : "Today"}
        size="md"
      />
      {knownAt === "instant" ? (
        <TextInput
          id="known-at"
          type="datetime-local"
          labelText="What the system knew at"
          value={travel.knownAt ? localMinute(travel.knownAt) : ""}
          onChange={(e) => travel.set("knownAt", e.target.value ? new Date(e.target.value).toISOString().replace(/\.\d+Z$/, "Z") : null)}
          helperText={travel.knownAt ? "your time" : "Now: everything recorded so far"}
          size="md"
        />
      ) : null}
      {knownAt === "snapshot" ? <SnapshotPicker /> : null}
    </div>
  );
}

function SnapshotPicker() {
  const travel = useTimeTravel();
  const [{ data }] = useQuery({ query: SNAPSHOTS });
  return (
    <Select
      id="known-at-snapshot"
      labelText="What the system knew"
      value={travel.knownAt ?? ""}
      onChange={(e) => travel.set("knownAt", e.target.value || null)}
      helperText={data && data.projectionSnapshots.length === 0 ? "No earlier knowledge kept yet (analysts rebuild it)" : undefined}
      size="md"
    >
      <SelectItem value="" text="Now: everything recorded so far" />
      {(data?.projectionSnapshots ?? []).map((snapshot) => (
        <SelectItem key={snapshot.name} value={snapshot.name} text={`On ${when(snapshot.knownAt)} (${snapshot.name})`} />
      ))}
    </Select>
  );
}

/** An instant as a datetime-local input's value: the user's own time, to the minute. */
function localMinute(value: string): string {
  const instant = new Date(value);
  if (Number.isNaN(instant.getTime())) return "";
  const local = new Date(instant.getTime() - instant.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

export function RulesVersion({ version, asOf }: { version: string; asOf?: string }) {
  return (
    <p className="cs-rules" data-testid="rules-version">
      Computed under rules version {version}
      {asOf ? ` as of ${asOf}` : ""}.
    </p>
  );
}

export function Kpi({ label, value, change, testId }: { label: string; value: ReactNode; change?: ReactNode; testId?: string }) {
  return (
    <Tile data-testid={testId}>
      <h2 style={{ fontSize: "0.875rem", fontWeight: 400 }}>{label}</h2>
      <p className="cs-kpi__value" data-testid={testId ? `${testId}-value` : undefined}>
        {value}
      </p>
      {change != null ? (
        <p className="cs-kpi__change cs-muted" data-testid={testId ? `${testId}-change` : undefined}>
          {change}
        </p>
      ) : null}
    </Tile>
  );
}

export function Problem({ error }: { error: CombinedError | Error | undefined | null }) {
  if (!error) return null;
  const message =
    "graphQLErrors" in error && error.graphQLErrors.length ? error.graphQLErrors.map((e) => e.message).join("; ") : error.message;
  return <InlineNotification kind="error" title="The API refused" subtitle={message} hideCloseButton lowContrast />;
}

export function Pending({ fetching, hasData }: { fetching: boolean; hasData: boolean }) {
  return fetching && !hasData ? <SkeletonText paragraph lineCount={4} /> : null;
}

/** Snapshot reads go through `snapshot(name)`; live reads through the root. */
export function useKnownAtSnapshot(): string | null {
  return useTimeTravel().knownAt;
}

/**
 * A Carbon table in a region of its own that scrolls sideways on narrow screens and takes the
 * keyboard focus, so its hidden columns can be reached without a mouse.
 */
/**
 * A table in a region that scrolls sideways when it must. With `cards`, a phone shows each row
 * as a card, each value under its column's name (read from the header into `data-label`).
 */
export function Table({ cards, ...props }: ComponentProps<typeof CarbonTable> & { "aria-label"?: string; "aria-labelledby"?: string; cards?: boolean }) {
  const region = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!cards || !region.current) return;
    const headers = [...region.current.querySelectorAll("thead th")].map((th) => th.textContent?.trim() ?? "");
    region.current.querySelectorAll("tbody tr").forEach((row) => {
      [...row.children].forEach((cell, index) => cell.setAttribute("data-label", headers[index] ?? ""));
    });
  });
  return (
    <div
      ref={region}
      className={cards ? "cs-table-scroll cs-cards" : "cs-table-scroll"}
      tabIndex={0}
      role="region"
      aria-label={props["aria-label"]}
      aria-labelledby={props["aria-labelledby"]}
    >
      <CarbonTable {...props} />
    </div>
  );
}

/** Previous and next pages of a list the API cuts into pages of `size` from `offset`. */
export function Pager({ label, offset, size, total, onChange }: { label: string; offset: number; size: number; total: number; onChange: (offset: number) => void }) {
  if (total <= size) return null;
  const last = Math.min(offset + size, total);
  return (
    <nav className="cs-toolbar" aria-label={`${label} pages`} style={{ marginTop: "1rem", alignItems: "center" }}>
      <Button kind="secondary" size="sm" disabled={offset === 0} onClick={() => onChange(Math.max(0, offset - size))}>
        Previous {size}
      </Button>
      <span className="cs-muted">
        {offset + 1} to {last} of {total}
      </span>
      <Button kind="secondary" size="sm" disabled={last >= total} onClick={() => onChange(offset + size)}>
        Next {size}
      </Button>
    </nav>
  );
}

/** Keeps a part of a page that fails to draw (a chart) from taking the page down with it. */
export class Contained extends Component<{ children: ReactNode; fallback: ReactNode }, { failed: boolean }> {
  state = { failed: false };

  static getDerivedStateFromError() {
    return { failed: true };
  }

  componentDidCatch(error: unknown) {
    console.error("a part of the page could not be drawn", error);
  }

  render() {
    return this.state.failed ? this.props.fallback : this.props.children;
  }
}

const CUSTOMER_SEARCH = graphql(`
  query CustomerPicker($search: String, $id: UUID!, $chosen: Boolean!) {
    customers(filter: { search: $search }, first: 20) {
      nodes {
        customerId
        name
      }
    }
    customer(id: $id) @include(if: $chosen) {
      customerId
      name
    }
  }
`);

/** A customer chosen by typing part of its name (the first 20 matches are offered). */
export function CustomerPicker({ id, label, value, onChange }: { id: string; label: string; value: string | null; onChange: (customerId: string | null, name: string | null) => void }) {
  const [search, setSearch] = useState("");
  const [{ data }] = useQuery({
    query: CUSTOMER_SEARCH,
    variables: { search: search || null, id: value ?? "00000000-0000-0000-0000-000000000000", chosen: Boolean(value) },
  });
  const chosen = value && data?.customer ? { customerId: data.customer.customerId, name: data.customer.name } : null;
  return (
    <ComboBox
      id={id}
      titleText={label}
      placeholder="Type part of the name"
      items={data?.customers.nodes ?? []}
      itemToString={(item) => item?.name ?? ""}
      selectedItem={chosen}
      onInputChange={(text) => setSearch(text ?? "")}
      onChange={({ selectedItem }) => onChange(selectedItem?.customerId ?? null, selectedItem?.name ?? null)}
    />
  );
}
