import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { TableBody, TableCell, TableHead, TableHeader, TableRow, Tag, Toggle } from "@carbon/react";
import { graphql } from "../gql";
import { useLive } from "../hooks";
import { useSession } from "../App";
import { can } from "../api/session";
import { Pending, Problem, Table } from "../components";
import { instant, words } from "../format";
import { CommandButton } from "../forms";

const ALERTS = graphql(`
  query Alerts($acknowledged: Boolean) {
    alerts(acknowledged: $acknowledged, first: 100) {
      nodes {
        alertId
        customerId
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

const ALERT_CHANGED = graphql(`
  subscription AlertChanged {
    alertChanged {
      alertId
      customerId
      change
    }
  }
`);

export default function Alerts() {
  const session = useSession();
  const [showAcknowledged, setShowAcknowledged] = useState(false);
  const [{ data, fetching, error }, refetch] = useQuery({ query: ALERTS, variables: { acknowledged: showAcknowledged ? null : false } });
  const refresh = () => refetch({ requestPolicy: "network-only" });
  useLive(ALERT_CHANGED, {}, refresh);
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Alerts</h1>
      <div className="cs-toolbar">
        <Toggle id="show-acknowledged" labelText="Acknowledged alerts" labelA="Hidden" labelB="Shown" toggled={showAcknowledged} onToggle={setShowAcknowledged} />
      </div>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {data ? (
        <div>
          <Table size="md" aria-label="Alerts">
            <TableHead>
              <TableRow>
                <TableHeader>Kind</TableHeader>
                <TableHeader>Alert</TableHeader>
                <TableHeader>Raised</TableHeader>
                <TableHeader>State</TableHeader>
              </TableRow>
            </TableHead>
            <TableBody>
              {data.alerts.nodes.map((alert) => (
                <TableRow key={alert.alertId} data-testid="alert-row" data-alert-id={alert.alertId}>
                  <TableCell>
                    <Tag type="red" size="sm">
                      {words(alert.kind)}
                    </Tag>
                  </TableCell>
                  <TableCell>
                    <Link to={`/customers/${alert.customerId}`}>{alert.message}</Link>
                  </TableCell>
                  <TableCell>{instant(alert.raisedAt)}</TableCell>
                  <TableCell>
                    {alert.acknowledgedAt ? (
                      <span data-testid="acknowledged">
                        acknowledged by {alert.acknowledgedBy} {instant(alert.acknowledgedAt)}
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
          {data.alerts.nodes.length === 0 ? <p className="cs-muted" style={{ marginTop: "1rem" }}>No alerts.</p> : null}
        </div>
      ) : null}
    </>
  );
}
