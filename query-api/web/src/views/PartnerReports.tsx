import { useQuery } from "urql";
import { TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import { useSession } from "../App";
import { usePortfolioLive } from "../hooks";
import { can } from "../api/session";
import { Pending, Problem, Table } from "../components";
import { day, instant, words } from "../format";
import { CommandButton, PartnerReportForm } from "../forms";

const REPORTS = graphql(`
  query PartnerReports {
    partnerReports(first: 100) {
      nodes {
        reportId
        customerId
        partnerId
        periodStart
        periodEnd
        overallStatus
        summary
        status
        updatedAt
        submittedAt
      }
    }
    customers(first: 100) {
      nodes {
        customerId
        name
      }
    }
  }
`);


/** Partner status reports: a partner drafts and submits its own; the CS team reads them. */
export default function PartnerReports() {
  const session = useSession();
  const [{ data, fetching, error }, refetch] = useQuery({ query: REPORTS });
  const refresh = () => refetch({ requestPolicy: "network-only" });
  usePortfolioLive(refresh);
  const name = (id: string) => data?.customers.nodes.find((c) => c.customerId === id)?.name ?? id;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Partner reports</h1>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {data ? (
        <div className="cs-two">
          <section className="cs-section" aria-labelledby="reports-heading">
            <h2 id="reports-heading">Reports</h2>
            <div>
              <Table size="md" aria-labelledby="reports-heading">
                <TableHead>
                  <TableRow>
                    <TableHeader>Customer</TableHeader>
                    <TableHeader>Period</TableHeader>
                    <TableHeader>Overall</TableHeader>
                    <TableHeader>Status</TableHeader>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {data.partnerReports.nodes.map((r) => (
                    <TableRow key={r.reportId} data-testid="report-row">
                      <TableCell>
                        {name(r.customerId)}
                        <br />
                        <span className="cs-muted">{r.summary}</span>
                      </TableCell>
                      <TableCell>
                        {day(r.periodStart)} to {day(r.periodEnd)}
                      </TableCell>
                      <TableCell>
                        <Tag size="sm" type={r.overallStatus === "on_track" ? "green" : r.overallStatus === "at_risk" ? "warm-gray" : "red"}>
                          {words(r.overallStatus)}
                        </Tag>
                      </TableCell>
                      <TableCell data-testid="report-status">
                        {r.status === "submitted" || r.submittedAt ? (
                          `submitted ${instant(r.submittedAt)}`
                        ) : session.role === "partner" ? (
                          <CommandButton label="Submit" kind="primary" path={`/api/v1/customers/${r.customerId}/partner-reports/${r.reportId}/submit`} onDone={refresh} />
                        ) : (
                          "draft"
                        )}
                      </TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            </div>
            {data.partnerReports.nodes.length === 0 ? <p className="cs-muted">No reports yet.</p> : null}
          </section>
          {session.role === "partner" && can.write(session.role) ? (
            <section className="cs-section" aria-labelledby="draft-heading">
              <h2 id="draft-heading">Draft a report</h2>
              <PartnerReportForm customers={data.customers.nodes} onDone={refresh} />
            </section>
          ) : null}
        </div>
      ) : null}
    </>
  );
}
