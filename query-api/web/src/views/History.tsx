import { useState } from "react";
import { useNavigate, useParams } from "react-router-dom";
import { useQuery } from "urql";
import { Button, InlineNotification, Search, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@carbon/react";
import { graphql } from "../gql";
import { Pending, Problem, Table } from "../components";
import { instant } from "../format";

const FIND = graphql(`
  query HistoryCustomers($search: String) {
    customers(filter: { search: $search, includeChurned: true }, first: 20) {
      nodes {
        customerId
        name
      }
    }
  }
`);

const HISTORY = graphql(`
  query CustomerHistory($id: UUID!, $after: String) {
    verifyCustomerHistory(customerId: $id) {
      events
      headSequence
      intact
      brokenAtSequence
      reason
    }
    customerHistory(customerId: $id, first: 100, after: $after) {
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        sequence
        globalPosition
        eventId
        eventType
        version
        storedVersion
        hash
        metadata {
          actorId
          actorRole
          source
          occurredAt
          recordedAt
          correlationId
          idempotencyKey
        }
      }
    }
  }
`);

/** Auditors: a customer's full history with its metadata and the hash chain verified. */
export default function History() {
  const { customerId } = useParams();
  const navigate = useNavigate();
  const [search, setSearch] = useState("");
  const [{ data: found }] = useQuery({ query: FIND, variables: { search: search || null }, pause: Boolean(customerId) });
  const [after, setAfter] = useState<string | null>(null);
  const [{ data, fetching, error }] = useQuery({ query: HISTORY, variables: { id: customerId ?? "", after }, pause: !customerId });
  if (!customerId) {
    return (
      <>
        <h1 style={{ marginBottom: "1.5rem" }}>History</h1>
        <Search id="history-search" labelText="Find a customer" placeholder="Search by name" value={search} onChange={(e) => setSearch(e.target.value)} />
        <ul style={{ marginTop: "1rem" }}>
          {(found?.customers.nodes ?? []).map((c) => (
            <li key={c.customerId} style={{ marginBottom: "0.5rem" }}>
              <Button kind="ghost" size="sm" onClick={() => navigate(`/history/${c.customerId}`)}>
                {c.name}
              </Button>
            </li>
          ))}
        </ul>
      </>
    );
  }
  const verification = data?.verifyCustomerHistory;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>History of {customerId}</h1>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {verification ? (
        <div data-testid="verification">
          {verification.intact ? (
            <InlineNotification
              kind="success"
              title="Verified"
              subtitle={`The hash chain of all ${verification.events} events is intact (head sequence ${verification.headSequence ?? "—"}).`}
              hideCloseButton
              lowContrast
            />
          ) : (
            <InlineNotification
              kind="error"
              title="Tampered"
              subtitle={`The chain breaks at sequence ${verification.brokenAtSequence}: ${verification.reason ?? ""}`}
              hideCloseButton
              lowContrast
            />
          )}
        </div>
      ) : null}
      {data ? (
        <div>
          <Table size="sm" aria-label="Events">
            <TableHead>
              <TableRow>
                <TableHeader>#</TableHeader>
                <TableHeader>Event</TableHeader>
                <TableHeader>By</TableHeader>
                <TableHeader>Source</TableHeader>
                <TableHeader>Occurred</TableHeader>
                <TableHeader>Recorded</TableHeader>
                <TableHeader>Hash</TableHeader>
              </TableRow>
            </TableHead>
            <TableBody>
              {data.customerHistory.nodes.map((e) => (
                <TableRow key={e.eventId} data-testid="history-event">
                  <TableCell>{e.sequence}</TableCell>
                  <TableCell>
                    {e.eventType} v{e.version}
                    {e.storedVersion !== e.version ? ` (stored v${e.storedVersion})` : ""}
                  </TableCell>
                  <TableCell>
                    {e.metadata.actorId} ({e.metadata.actorRole})
                  </TableCell>
                  <TableCell>{e.metadata.source}</TableCell>
                  <TableCell>{instant(e.metadata.occurredAt)}</TableCell>
                  <TableCell>{instant(e.metadata.recordedAt)}</TableCell>
                  <TableCell>
                    <code title={e.hash}>{e.hash.slice(0, 12)}…</code>
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          {data.customerHistory.pageInfo.hasNextPage ? (
            <Button kind="secondary" size="md" style={{ marginTop: "1rem" }} onClick={() => setAfter(data.customerHistory.pageInfo.endCursor ?? null)}>
              Next 100 events
            </Button>
          ) : null}
        </div>
      ) : null}
    </>
  );
}
