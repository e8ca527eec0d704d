// Alerts: open ones (or every one), by kind, customer and CSM (choices kept in the address), 50 a
// page with the total, newest first, each naming its customer; the team acknowledges them. A
// partner sees its own customers' alerts.

import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { Button, Select, SelectItem, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag, Toggle } from "@carbon/react";
import { graphql } from "../gql";
import { useLive, useUrlParams } from "../hooks";
import { useSession } from "../App";
import { can } from "../api/session";
import { CustomerPicker, Pending, Problem, Table } from "../components";
import { count, when } from "../format";
import { CommandButton } from "../forms";

const ALERTS = graphql(`
  query Alerts($acknowledged: Boolean, $kind: String, $customerId: UUID, $csmId: UUID, $first: Int!, $after: String) {
    alerts(acknowledged: $acknowledged, kind: $kind, customerId: $customerId, csmId: $csmId, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        alertId
        customerId
        customerName
        kind
        message
        raisedAt
        asOf
        acknowledgedAt
        acknowledgedBy
      }
    }
  }
`);

const ALERT_FILTERS = graphql(`
  query AlertFilters($portfolio: Boolean!) {
    csmWorkload @include(if: $portfolio) {
      csms {
        csmId
        name
      }
    }
  }
`);

const ALERT_CHANGED = graphql(`
  subscription AlertChanged {
    alertChanged {
      alertId
      customerId
      change
    }
  }
`);

/** The alert kinds, as a person reads them. */
export const ALERT_KIND_WORDS: Record<string, string> = {
  coverage_urgent: "coverage urgent",
  engagement_at_risk: "engagement at risk",
  health_red: "health red",
  task_overdue: "task overdue",
  renewal_window: "renewal coming",
  partner_report_submitted: "partner report",
  churn_risk_high: "churn risk high",
};

const PAGE = 50;

export default function Alerts() {
  const session = useSession();
  const portfolio = can.portfolio(session.role);
  const { params, set } = useUrlParams();
  const showAcknowledged = params.get("acknowledged") === "shown";
  const kind = params.get("kind");
  const customerId = params.get("customer");
  const csmId = params.get("csm");
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const choose = (name: string, value: string | null) => {
    set(name, value);
    setCursors([null]);
  };
  const [{ data, fetching, error }, refetch] = useQuery({
    query: ALERTS,
    variables: { acknowledged: showAcknowledged ? null : false, kind, customerId, csmId, first: PAGE, after: cursors[cursors.length - 1] },
  });
  const [{ data: filters }] = useQuery({ query: ALERT_FILTERS, variables: { portfolio } });
  const refresh = () => refetch({ requestPolicy: "network-only" });
  useLive(ALERT_CHANGED, {}, refresh);
  const alerts = data?.alerts;
  const first = (cursors.length - 1) * PAGE;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Alerts</h1>
      <div className="cs-toolbar" role="group" aria-label="Which alerts">
        <Select id="alerts-kind" labelText="Kind" value={kind ?? ""} onChange={(e) => choose("kind", e.target.value || null)}>
          <SelectItem value="" text="Every kind" />
          {Object.entries(ALERT_KIND_WORDS).map(([value, text]) => (
            <SelectItem key={value} value={value} text={text} />
          ))}
        </Select>
        <CustomerPicker id="alerts-customer" label="Customer (empty: every one)" value={customerId} onChange={(id) => choose("customer", id)} />
        {portfolio ? (
          <Select id="alerts-csm" labelText="CSM" value={csmId ?? ""} onChange={(e) => choose("csm", e.target.value || null)}>
            <SelectItem value="" text="Every CSM" />
            {(filters?.csmWorkload?.csms ?? []).map((c) => (
              <SelectItem key={c.csmId} value={c.csmId} text={c.name ?? "a CSM without a name"} />
            ))}
          </Select>
        ) : null}
        <Toggle
          id="show-acknowledged"
          labelText="Acknowledged alerts"
          labelA="Hidden"
          labelB="Shown"
          toggled={showAcknowledged}
          onToggle={(on) => choose("acknowledged", on ? "shown" : null)}
        />
      </div>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {alerts ? (
        <div>
          <Table cards size="md" aria-label="Alerts">
            <TableHead>
              <TableRow>
                <TableHeader>Kind</TableHeader>
                <TableHeader>Customer</TableHeader>
                <TableHeader>Alert</TableHeader>
                <TableHeader>Raised</TableHeader>
                <TableHeader>State</TableHeader>
              </TableRow>
            </TableHead>
            <TableBody>
              {alerts.nodes.map((alert) => (
                <TableRow key={alert.alertId} data-testid="alert-row" data-alert-id={alert.alertId}>
                  <TableCell>
                    <Tag type="red" size="sm">
                      {ALERT_KIND_WORDS[alert.kind] ?? alert.kind.replace(/_/g, " ")}
                    </Tag>
                  </TableCell>
                  <TableCell>
                    <Link to={`/customers/${alert.customerId}`}>{alert.customerName}</Link>
                  </TableCell>
                  <TableCell>{alert.message}</TableCell>
                  <TableCell>{when(alert.raisedAt)}</TableCell>
                  <TableCell>
                    {alert.acknowledgedAt ? (
                      <span data-testid="acknowledged">
                        acknowledged by {alert.acknowledgedBy} {when(alert.acknowledgedAt)}
                      </span>
                    ) : can.record(session.role) ? (
                      <CommandButton label="Acknowledge" path={`/api/v1/alerts/${alert.alertId}/acknowledge`} body={{}} />
                    ) : (
                      "open"
                    )}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          {alerts.nodes.length === 0 ? (
            <p className="cs-muted" style={{ marginTop: "1rem" }}>
              No alerts.
            </p>
          ) : (
            <nav className="cs-toolbar" aria-label="Alert pages" style={{ marginTop: "1rem", alignItems: "center" }}>
              <Button kind="secondary" size="sm" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
                Previous {PAGE}
              </Button>
              <span className="cs-muted" data-testid="alerts-total">
                {first + 1} to {first + alerts.nodes.length} of {count(alerts.totalCount, "alert", "alerts")}
              </span>
              <Button kind="secondary" size="sm" disabled={!alerts.pageInfo.hasNextPage} onClick={() => setCursors([...cursors, alerts.pageInfo.endCursor ?? null])}>
                Next {PAGE}
              </Button>
            </nav>
          )}
        </div>
      ) : null}
    </>
  );
}
