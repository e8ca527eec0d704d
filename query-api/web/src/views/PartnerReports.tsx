// Partner status reports: a partner drafts, changes and submits its own and reads every one it
// wrote; the CS team reads the submitted ones (readonly users see no drafts). A submitted report
// is what the CS team acted on: it no longer changes (the next report corrects it).

import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { Button, Modal, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "../gql";
import type { PartnerReportsQuery } from "../gql/graphql";
import { useSession } from "../App";
import { usePortfolioLive, useReadBack } from "../hooks";
import { can } from "../api/session";
import { Pending, Problem, Table } from "../components";
import { count, day, when } from "../format";
import { CommandButton, OVERALL_WORDS, PartnerReportForm } from "../forms";

const PAGE = 25;

const REPORTS = graphql(`
  query PartnerReports($after: String) {
    partnerReports(first: 25, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        reportId
        customerId
        customerName
        partnerName
        periodStart
        periodEnd
        overallStatus
        summary
        accomplishments
        plannedActivities
        risksAndIssues
        status
        updatedAt
        submittedAt
      }
    }
  }
`);

type Report = PartnerReportsQuery["partnerReports"]["nodes"][number];

const OVERALL_TAG: Record<string, "green" | "warm-gray" | "red"> = { on_track: "green", at_risk: "warm-gray", off_track: "red" };

export default function PartnerReports() {
  const session = useSession();
  const partner = session.role === "partner";
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [{ data, fetching, error }, refetch] = useQuery({ query: REPORTS, variables: { after: cursors[cursors.length - 1] } });
  const refresh = () => refetch({ requestPolicy: "network-only" });
  usePortfolioLive(refresh);
  const expect = useReadBack(data, refresh);
  const [readingId, setReadingId] = useState<string | null>(null);
  const [editing, setEditing] = useState<Report | null>(null);
  const [drafting, setDrafting] = useState(false);
  const page = data?.partnerReports;
  // The report read is the latest the list holds, so a change just made shows in it.
  const reading = page?.nodes.find((r) => r.reportId === readingId) ?? null;
  const first = (cursors.length - 1) * PAGE;
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Partner reports</h1>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {partner && can.write(session.role) ? (
        <div className="cs-toolbar">
          <Button kind="primary" size="md" onClick={() => setDrafting(true)}>
            Draft a report
          </Button>
        </div>
      ) : null}
      {page ? (
        <div>
          <section className="cs-section" aria-labelledby="reports-heading">
            <h2 id="reports-heading">Reports</h2>
            <p className="cs-muted" role="status" data-testid="reports-total">
              {page.totalCount === 0 ? "No reports yet." : `${first + 1} to ${first + page.nodes.length} of ${count(page.totalCount, "report", "reports")}`}
            </p>
            {page.nodes.length ? (
              <Table cards size="md" aria-labelledby="reports-heading">
                <TableHead>
                  <TableRow>
                    <TableHeader>Customer</TableHeader>
                    <TableHeader>Period</TableHeader>
                    <TableHeader>Overall</TableHeader>
                    <TableHeader>Status</TableHeader>
                    <TableHeader>
                      <span className="cs-visually-hidden">Actions</span>
                    </TableHeader>
                  </TableRow>
                </TableHead>
                <TableBody>
                  {page.nodes.map((r) => (
                    <TableRow key={r.reportId} data-testid="report-row">
                      <TableCell>
                        <Link to={`/customers/${r.customerId}`}>{r.customerName || "a customer no longer listed"}</Link>
                        {partner ? null : <div className="cs-muted">by {r.partnerName ?? "a partner"}</div>}
                        <div className="cs-muted">{r.summary}</div>
                      </TableCell>
                      <TableCell>
                        {day(r.periodStart)} to {day(r.periodEnd)}
                      </TableCell>
                      <TableCell>
                        <Tag size="sm" type={OVERALL_TAG[r.overallStatus] ?? "gray"}>
                          {OVERALL_WORDS[r.overallStatus] ?? r.overallStatus}
                        </Tag>
                      </TableCell>
                      <TableCell data-testid="report-status">{r.submittedAt ? `submitted ${when(r.submittedAt)}` : `draft, changed ${when(r.updatedAt)}`}</TableCell>
                      <TableCell>
                        <Button kind="ghost" size="sm" onClick={() => setReadingId(r.reportId)}>
                          Read
                        </Button>
                        {partner && !r.submittedAt && can.write(session.role) ? (
                          <>
                            <Button kind="ghost" size="sm" onClick={() => setEditing(r)}>
                              Change
                            </Button>
                            <CommandButton label="Submit" kind="primary" path={`/api/v1/customers/${r.customerId}/partner-reports/${r.reportId}/submit`} onDone={refresh} />
                          </>
                        ) : null}
                      </TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            ) : null}
            <div className="cs-toolbar" style={{ marginTop: "1rem" }}>
              <Button kind="secondary" size="md" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
                Previous page
              </Button>
              <Button kind="secondary" size="md" disabled={!page.pageInfo.hasNextPage} onClick={() => setCursors([...cursors, page.pageInfo.endCursor ?? null])}>
                Next page
              </Button>
            </div>
          </section>
        </div>
      ) : null}
      {drafting ? (
        <Modal open passiveModal modalHeading="Draft a report" onRequestClose={() => setDrafting(false)}>
          <PartnerReportForm
            onDone={() => {
              setDrafting(false);
              // Read again until the projector has the new draft.
              const known = page?.totalCount ?? 0;
              expect((read) => read.partnerReports.totalCount > known);
            }}
          />
        </Modal>
      ) : null}
      {reading ? <Reading report={reading} onClose={() => setReadingId(null)} /> : null}
      {editing ? (
        <Modal open passiveModal modalHeading={`Change the draft for ${editing.customerName}`} onRequestClose={() => setEditing(null)}>
          <PartnerReportForm
            report={editing}
            onDone={() => {
              const { reportId, updatedAt } = editing;
              setEditing(null);
              // Read again until the projector has the change.
              expect((read) => read.partnerReports.nodes.some((r) => r.reportId === reportId && r.updatedAt !== updatedAt));
            }}
          />
        </Modal>
      ) : null}
    </>
  );
}

/** One report, every section of it. */
function Reading({ report, onClose }: { report: Report; onClose: () => void }) {
  const sections: Array<[string, string]> = [
    ["Summary", report.summary],
    ["Accomplishments", report.accomplishments],
    ["Planned activities", report.plannedActivities],
    ["Risks and issues", report.risksAndIssues],
  ];
  return (
    <Modal open passiveModal modalHeading={`${report.customerName}: ${day(report.periodStart)} to ${day(report.periodEnd)}`} onRequestClose={onClose}>
      <p style={{ marginBottom: "1rem" }}>
        <Tag size="sm" type={OVERALL_TAG[report.overallStatus] ?? "gray"}>
          {OVERALL_WORDS[report.overallStatus] ?? report.overallStatus}
        </Tag>{" "}
        {report.partnerName ? `by ${report.partnerName}, ` : ""}
        {report.submittedAt ? `submitted ${when(report.submittedAt)}` : `a draft, changed ${when(report.updatedAt)}`}
      </p>
      <dl className="cs-report" data-testid="report-sections">
        {sections.map(([title, text]) => (
          <div key={title} style={{ marginBottom: "1rem" }}>
            <dt>
              <strong>{title}</strong>
            </dt>
            <dd style={{ whiteSpace: "pre-wrap" }}>{text || "—"}</dd>
          </div>
        ))}
      </dl>
    </Modal>
  );
}
