import { lazy, Suspense, useCallback, useEffect, useRef, useState } from "react";
import { useParams } from "react-router-dom";
import { useClient, useQuery } from "urql";
import { InlineLoading, Tab, TabList, TabPanel, TabPanels, Tabs, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag, Tile, ProgressBar } from "@carbon/react";
import { graphql } from "../gql";
import { TouchTag, touchReason } from "../touch";
import { ChurnRiskPanel, RiskTag } from "../risk";
import { PinButton } from "../focus";
import { CustomerReminders } from "../reminders";
import { FromTemplateForm, RecurringTasks } from "../taskTemplates";
import { CustomerPlaybooks } from "../playbooks";
import { CustomerTags } from "../tags";
import type { CustomerTimelineQuery } from "../gql/graphql";
import { useLive, useTimeTravel } from "../hooks";
import { useSession } from "../App";
import { can } from "../api/session";
import { Kpi, Pending, Problem, TimeTravel, Table } from "../components";
import { GAP_WORDS, USE_CASE_TAG, colourTag, count, day, instant, money, one, periodWords, statusTag, words } from "../format";
import { Downloads } from "../downloads";
import { CreateTaskForm, CustomerFieldsForm, HealthScoreForm, LogActivityForm, TaskActions } from "../forms";

const Charts = {
  Health: lazy(() => import("./Charts").then((m) => ({ default: m.HealthChart }))),
  Engagement: lazy(() => import("./Charts").then((m) => ({ default: m.EngagementChart }))),
};

const CUSTOMER = graphql(`
  query Customer360($id: UUID!, $asOf: Date, $knownAt: DateTime) {
    customer(id: $id) {
      customerId
      name
      tags
      tier
      arr
      industry
      accountManager
      salesforceId
      contractStart
      renewalDate
      daysUntilRenewal
      adoptionStage
      churnedOn
      csm {
        name
        email
      }
      customFields {
        key
        label
        section
        display
        value
        isDefault
      }
      stakeholders {
        stakeholderId
        name
        role
        level
        email
      }
      health {
        score
        source
        measuredAt
      }
      healthColour
      useCases {
        items {
          useCase
          status
          notes
        }
        total
        done
        progressPct
      }
      nps {
        latest
        average
        responses {
          score
          comment
          occurredAt
        }
      }
      risk {
        score
        band
      }
      pinned
      nextTouch {
        ...NextTouchFields
      }
      nextScheduledTouch {
        subject
        startsAt
      }
      onDay(asOf: $asOf) {
        asOf
        tier
        arr
        csm {
          name
        }
        renewalDate
        daysUntilRenewal
        health {
          score
          source
          measuredAt
        }
        healthColour
        customFields {
          key
          label
          section
          display
        }
      }
      compliance {
        complete
        missing
      }
    }
    accountCoverage(customerId: $id, asOf: $asOf, knownAt: $knownAt) {
      asOf
      lastContactDate
      daysSinceContact
      touches30d
      meetings90d
      stakeholdersEngaged
      standards {
        maxDaysBetweenContact
        expectedTouchesPerMonth
        minMeetingsPerQuarter
        stakeholderBreadth
      }
      score
      deductions {
        contact
        touches
        meetings
        stakeholders
      }
      gapAreas
      status
      priority
    }
    customerEngagement(customerId: $id, asOf: $asOf, knownAt: $knownAt) {
      period
      score
      category
      trend
      change
      emailsSent
      emailsReceived
      meetingsHeld
      callsMade
      qbrsCompleted
      stakeholdersEngaged
      executiveTouchpoints
    }
    engagementTrend(customerId: $id, periods: 6, asOf: $asOf) {
      period
      score
    }
    healthTrend(customerId: $id, to: $asOf, knownAt: $knownAt, granularity: WEEK) {
      points {
        bucket
        score
        colour
        measuredInBucket
        lineage {
          eventId
          source
          actorId
          actorRole
          reason
          measuredAt
          recordedAt
        }
      }
      windows {
        days
        delta
        trend
      }
    }
    tasks(filter: { customerId: $id, state: OPEN }, first: 20) {
      nodes {
        ...TaskFields
      }
    }
  }
`);

const TIMELINE = graphql(`
  query CustomerTimeline($id: UUID!, $after: String) {
    customerTimeline(customerId: $id, first: 20, after: $after) {
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        eventId
        kind
        eventType
        occurredAt
        actorId
        summary
      }
    }
  }
`);

const CHANGED = graphql(`
  subscription CustomerChanged($id: UUID!) {
    customerChanged(customerId: $id) {
      customerId
      projector
      eventType
      globalPosition
    }
  }
`);

type TimelineNode = CustomerTimelineQuery["customerTimeline"]["nodes"][number];

export default function Customer360() {
  const { customerId = "" } = useParams();
  const session = useSession();
  const { asOf, knownAt } = useTimeTravel();
  const [{ data, fetching, error }, refetch] = useQuery({ query: CUSTOMER, variables: { id: customerId, asOf, knownAt } });
  const [timelineVersion, setTimelineVersion] = useState(0);
  const refresh = useCallback(() => {
    refetch({ requestPolicy: "network-only" });
    setTimelineVersion((v) => v + 1);
  }, [refetch]);
  useLive(CHANGED, { id: customerId }, refresh);
  const customer = data?.customer;
  // The facts of the day shown (today, or the as-of day): CSM, tier, ARR, renewal, health, fields.
  const onDay = customer?.onDay;
  const coverage = data?.accountCoverage;
  const engagement = data?.customerEngagement;
  const writable = can.write(session.role);
  const recorder = can.record(session.role);
  return (
    <>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {data && !customer ? <p>There is no such customer, or it is not yours to see.</p> : null}
      {customer && coverage && engagement && data ? (
        <>
          <div className="cs-toolbar" style={{ alignItems: "center", marginBottom: "0.5rem" }}>
            <h1 data-testid="customer-name">{customer.name}</h1>
            <PinButton customerId={customer.customerId} name={customer.name} pinned={customer.pinned} onChange={refresh} />
          </div>
          <p className="cs-muted" style={{ marginBottom: "1.5rem" }}>
            {[
              onDay?.tier ? words(onDay.tier) : "no tier",
              money(onDay?.arr),
              customer.industry,
              `CSM ${onDay?.csm?.name ?? "—"}`,
              asOf ? `as of ${day(onDay?.asOf)}` : "",
              customer.churnedOn ? `churned ${customer.churnedOn}` : "",
            ]
              .filter(Boolean)
              .join(" · ")}
          </p>
          {session.role !== "partner" ? <CustomerTags customerId={customer.customerId} tags={customer.tags} writable={recorder && !asOf && !knownAt} onChange={refresh} /> : null}
          <TimeTravel knownAt="instant" />
          <Downloads
            choices={[
              { report: "customer", format: "pptx", label: "Customer summary deck (.pptx)", params: { asOf } },
              { report: "health-trend", format: "xlsx", label: "Health trend (.xlsx)", params: { to: asOf } },
              { report: "health-trend", format: "csv", label: "Health trend (.csv)", params: { to: asOf } },
            ]}
            params={{ customerId: customer.customerId }}
            knownAt={knownAt}
          />
          <section className="cs-kpis" aria-label="Key figures">
            <Kpi
              testId="customer-health"
              label="Health"
              value={onDay?.health ? one(onDay.health.score) : "—"}
              change={onDay?.healthColour ? <Tag type={colourTag[onDay.healthColour]}>{words(onDay.healthColour)}</Tag> : "no score"}
            />
            <Kpi testId="customer-coverage" label="Coverage score" value={one(coverage.score)} change={<Tag type={statusTag[coverage.status]}>{words(coverage.status)}</Tag>} />
            <Kpi testId="customer-engagement" label={`Engagement, ${periodWords(engagement.period)}`} value={one(engagement.score)} change={`${words(engagement.category)}, ${words(engagement.trend)}`} />
            <Kpi testId="customer-renewal" label={asOf ? `Renewal, from ${day(onDay?.asOf)}` : "Renewal"} value={`${onDay?.daysUntilRenewal ?? "—"} days`} change={day(onDay?.renewalDate)} />
            {asOf ? null : (
              <Kpi
                testId="customer-next-touch"
                label="Next touch"
                value={customer.nextTouch ? day(customer.nextTouch.due) : "—"}
                change={customer.nextTouch ? <><TouchTag touch={customer.nextTouch} /> {touchReason(customer.nextTouch)}</> : "churned"}
              />
            )}
            {session.role !== "partner" && !asOf && !knownAt ? (
              <Kpi testId="customer-churn-risk" label="Churn risk" value={customer.risk ? one(customer.risk.score) : "—"} change={<RiskTag risk={customer.risk} />} />
            ) : null}
            <Kpi testId="customer-nps" label="NPS (latest)" value={customer.nps.latest ?? "—"} change={customer.nps.average != null ? `average ${one(customer.nps.average)}` : "no responses"} />
          </section>
          <Tabs>
            <TabList aria-label="Customer views" contained>
              <Tab>Overview</Tab>
              <Tab>Trends</Tab>
              <Tab>Timeline</Tab>
              <Tab>Tasks</Tab>
              {recorder ? <Tab>Log and record</Tab> : null}
            </TabList>
            <TabPanels>
              <TabPanel>
                {session.role !== "partner" ? <ChurnRiskPanel customerId={customer.customerId} asOf={asOf} knownAt={knownAt} /> : null}
                {session.role !== "partner" && !asOf && !knownAt ? <CustomerReminders customerId={customer.customerId} customerName={customer.name} /> : null}
                {session.role !== "partner" && !asOf && !knownAt ? <CustomerPlaybooks customerId={customer.customerId} writable={recorder} /> : null}
                <div className="cs-two">
                  <section className="cs-section" aria-labelledby="profile-heading">
                    <h2 id="profile-heading">Profile</h2>
                    <dl>
                      <dt className="cs-muted">Salesforce</dt>
                      <dd>{customer.salesforceId}</dd>
                      <dt className="cs-muted">Account manager</dt>
                      <dd>{customer.accountManager || "—"}</dd>
                      <dt className="cs-muted">Contract</dt>
                      <dd>
                        {customer.contractStart} to {onDay?.renewalDate}
                      </dd>
                      <dt className="cs-muted">Adoption stage</dt>
                      <dd data-testid="adoption-stage">{customer.adoptionStage ?? "—"}</dd>
                      <dt className="cs-muted">Next scheduled touch</dt>
                      <dd>{customer.nextScheduledTouch ? `${customer.nextScheduledTouch.subject}, ${instant(customer.nextScheduledTouch.startsAt)}` : "none"}</dd>
                      <dt className="cs-muted">Compliance</dt>
                      <dd>{customer.compliance.complete ? "complete" : `missing ${customer.compliance.missing.join(", ")}`}</dd>
                      {(onDay?.customFields ?? []).map((f) => (
                        <div key={f.key}>
                          <dt className="cs-muted">
                            {f.label} <span>({f.section})</span>
                          </dt>
                          <dd>{f.display || "—"}</dd>
                        </div>
                      ))}
                    </dl>
                  </section>
                  <section className="cs-section" aria-labelledby="coverage-heading">
                    <h2 id="coverage-heading">Coverage inputs ({coverage.asOf})</h2>
                    <p data-testid="coverage-summary" style={{ marginBottom: "0.75rem" }}>
                      Priority <strong>{words(coverage.priority)}</strong>
                      {" · "}
                      {coverage.lastContactDate ? `last contact ${day(coverage.lastContactDate)} (${count(coverage.daysSinceContact ?? 0, "day", "days")} before)` : "never contacted"}
                      {coverage.gapAreas.length ? (
                        <>
                          {" · "}gaps: {coverage.gapAreas.map((g) => GAP_WORDS[g] ?? words(g)).join("; ")}
                        </>
                      ) : (
                        " · no gaps"
                      )}
                    </p>
                    <Table size="sm" aria-labelledby="coverage-heading">
                      <TableHead>
                        <TableRow>
                          <TableHeader>Input</TableHeader>
                          <TableHeader>On {day(coverage.asOf)}</TableHeader>
                          <TableHeader>Standard</TableHeader>
                          <TableHeader>Deduction</TableHeader>
                        </TableRow>
                      </TableHead>
                      <TableBody>
                        <TableRow data-testid="coverage-contact">
                          <TableCell>Days since contact</TableCell>
                          <TableCell>{coverage.daysSinceContact ?? "never"}</TableCell>
                          <TableCell>at most {coverage.standards.maxDaysBetweenContact}</TableCell>
                          <TableCell>−{one(coverage.deductions.contact)}</TableCell>
                        </TableRow>
                        <TableRow data-testid="coverage-touches">
                          <TableCell>Touches in 30 days</TableCell>
                          <TableCell>{coverage.touches30d}</TableCell>
                          <TableCell>{coverage.standards.expectedTouchesPerMonth}</TableCell>
                          <TableCell>−{one(coverage.deductions.touches)}</TableCell>
                        </TableRow>
                        <TableRow data-testid="coverage-meetings">
                          <TableCell>Meetings in 90 days</TableCell>
                          <TableCell>{coverage.meetings90d}</TableCell>
                          <TableCell>{coverage.standards.minMeetingsPerQuarter}</TableCell>
                          <TableCell>−{one(coverage.deductions.meetings)}</TableCell>
                        </TableRow>
                        <TableRow data-testid="coverage-stakeholders">
                          <TableCell>Stakeholders engaged</TableCell>
                          <TableCell>{coverage.stakeholdersEngaged}</TableCell>
                          <TableCell>{coverage.standards.stakeholderBreadth}</TableCell>
                          <TableCell>−{one(coverage.deductions.stakeholders)}</TableCell>
                        </TableRow>
                      </TableBody>
                    </Table>
                  </section>
                  <section className="cs-section" aria-labelledby="engagement-heading">
                    <h2 id="engagement-heading">Engagement, {periodWords(engagement.period)}</h2>
                    <dl data-testid="engagement-breakdown">
                      <dt className="cs-muted">E-mails sent · received</dt>
                      <dd>
                        {engagement.emailsSent} · {engagement.emailsReceived}
                      </dd>
                      <dt className="cs-muted">Meetings · calls · QBRs</dt>
                      <dd>
                        {engagement.meetingsHeld} · {engagement.callsMade} · {engagement.qbrsCompleted}
                      </dd>
                      <dt className="cs-muted">Stakeholders engaged</dt>
                      <dd>{engagement.stakeholdersEngaged}</dd>
                      <dt className="cs-muted">Executive touchpoints</dt>
                      <dd>{engagement.executiveTouchpoints}</dd>
                      <dt className="cs-muted">Score</dt>
                      <dd>
                        {one(engagement.score)} ({words(engagement.category)}, {words(engagement.trend)}
                        {engagement.change != null ? `, ${engagement.change > 0 ? "+" : ""}${one(engagement.change)} on the period before` : ""})
                      </dd>
                    </dl>
                  </section>
                  <section className="cs-section" aria-labelledby="stakeholders-heading">
                    <h2 id="stakeholders-heading">Stakeholders</h2>
                    <ul>
                      {customer.stakeholders.map((s) => (
                        <li key={s.stakeholderId} data-testid="stakeholder">
                          {s.name} <span className="cs-muted">{s.role}, {words(s.level)}</span>
                          {s.email ? (
                            <>
                              {" "}
                              <a href={`mailto:${s.email}`}>{s.email}</a>
                            </>
                          ) : null}
                        </li>
                      ))}
                    </ul>
                    {customer.stakeholders.length === 0 ? <p className="cs-muted">None recorded.</p> : null}
                  </section>
                  <section className="cs-section" aria-labelledby="usecases-heading">
                    <h2 id="usecases-heading">Use cases</h2>
                    <ProgressBar
                      label={`${customer.useCases.done} of ${customer.useCases.total} done`}
                      value={customer.useCases.progressPct}
                      max={100}
                      helperText={`${one(customer.useCases.progressPct)}%`}
                    />
                    <ul style={{ marginTop: "1rem" }}>
                      {customer.useCases.items.map((u) => (
                        <li key={u.useCase} data-testid="use-case">
                          <Tag size="sm" type={USE_CASE_TAG[u.status] ?? "gray"}>
                            {words(u.status)}
                          </Tag>{" "}
                          {u.useCase}
                          {u.notes ? <div className="cs-muted">{u.notes}</div> : null}
                        </li>
                      ))}
                    </ul>
                  </section>
                  <section className="cs-section" aria-labelledby="nps-heading">
                    <h2 id="nps-heading">NPS</h2>
                    {customer.nps.responses.length === 0 ? (
                      <p className="cs-muted">No responses yet.</p>
                    ) : (
                      <ul data-testid="nps-responses">
                        {customer.nps.responses.slice(0, 5).map((r) => (
                          <li key={r.occurredAt}>
                            <strong>{r.score}</strong> <span className="cs-muted">{day(r.occurredAt)}</span>
                            {r.comment ? ` “${r.comment}”` : ""}
                          </li>
                        ))}
                      </ul>
                    )}
                    {customer.nps.responses.length > 5 ? <p className="cs-muted">The latest 5 of {count(customer.nps.responses.length, "response", "responses")}.</p> : null}
                  </section>
                </div>
              </TabPanel>
              <TabPanel>
                <Suspense fallback={<InlineLoading description="Loading charts" />}>
                  <div className="cs-two">
                    <Tile>
                      <Charts.Health points={data.healthTrend.points} />
                      <p className="cs-muted">
                        {data.healthTrend.windows.map((w) => `${w.days} days: ${w.delta == null ? "—" : one(w.delta)} ${w.trend ? words(w.trend) : ""}`).join(" · ")}
                      </p>
                    </Tile>
                    <Tile>
                      <Charts.Engagement periods={data.engagementTrend} />
                    </Tile>
                  </div>
                </Suspense>
                <section className="cs-section" aria-labelledby="lineage-heading" style={{ marginTop: "1.5rem" }}>
                  <h2 id="lineage-heading">Health points and their lineage</h2>
                  <div>
                    <Table size="sm" aria-labelledby="lineage-heading">
                      <TableHead>
                        <TableRow>
                          <TableHeader>Week</TableHeader>
                          <TableHeader>Score</TableHeader>
                          <TableHeader>Source</TableHeader>
                          <TableHeader>By</TableHeader>
                          <TableHeader>Reason</TableHeader>
                          <TableHeader>Recorded</TableHeader>
                        </TableRow>
                      </TableHead>
                      <TableBody>
                        {data.healthTrend.points
                          .filter((p) => p.measuredInBucket)
                          .map((p) => (
                            <TableRow key={p.bucket}>
                              <TableCell>{p.bucket}</TableCell>
                              <TableCell>{one(p.score)}</TableCell>
                              <TableCell>{p.lineage.source}</TableCell>
                              <TableCell>
                                {p.lineage.actorId} ({p.lineage.actorRole})
                              </TableCell>
                              <TableCell>{p.lineage.reason ?? "—"}</TableCell>
                              <TableCell>{instant(p.lineage.recordedAt)}</TableCell>
                            </TableRow>
                          ))}
                      </TableBody>
                    </Table>
                  </div>
                </section>
              </TabPanel>
              <TabPanel>
                <Timeline customerId={customerId} version={timelineVersion} />
              </TabPanel>
              <TabPanel>
                <ul>
                  {data.tasks.nodes.map((t) => (
                    <li key={t.taskId} style={{ marginBottom: "0.75rem" }} data-testid="customer-task">
                      <strong>{t.title}</strong>{" "}
                      <span className="cs-muted">
                        {words(t.kind)} · {t.priority} · {t.assigneeName ?? t.assigneeId} · due {day(t.dueDate)} · {words(t.status)}
                      </span>{" "}
                      {writable ? <TaskActions customerId={customerId} taskId={t.taskId} status={t.status} title={t.title} onDone={refresh} /> : null}
                    </li>
                  ))}
                </ul>
                {data.tasks.nodes.length === 0 ? <p className="cs-muted">No open tasks.</p> : null}
                {writable ? (
                  <section className="cs-section" aria-labelledby="new-task-heading" style={{ marginTop: "1.5rem" }}>
                    <h2 id="new-task-heading">New task</h2>
                    <CreateTaskForm customerId={customerId} />
                  </section>
                ) : null}
                {writable && session.role !== "partner" ? (
                  <section className="cs-section" aria-labelledby="from-template-heading" style={{ marginTop: "1.5rem" }}>
                    <h2 id="from-template-heading">Tasks from a template</h2>
                    <FromTemplateForm customerId={customerId} onDone={refresh} />
                  </section>
                ) : null}
                {session.role !== "partner" ? <RecurringTasks customerId={customerId} writable={recorder} /> : null}
              </TabPanel>
              {recorder ? (
                <TabPanel>
                  <div className="cs-two">
                    <section aria-labelledby="log-heading">
                      <h2 id="log-heading" style={{ marginBottom: "1rem" }}>
                        Log an activity
                      </h2>
                      <LogActivityForm customerId={customerId} stakeholders={customer.stakeholders} />
                    </section>
                    <section aria-labelledby="score-heading">
                      <h2 id="score-heading" style={{ marginBottom: "1rem" }}>
                        Record a manual health score
                      </h2>
                      <HealthScoreForm customerId={customerId} />
                    </section>
                    <section aria-labelledby="fields-heading">
                      <h2 id="fields-heading" style={{ marginBottom: "1rem" }}>
                        Custom fields
                      </h2>
                      <CustomerFieldsForm customerId={customerId} values={customer.customFields} />
                    </section>
                  </div>
                </TabPanel>
              ) : null}
            </TabPanels>
          </Tabs>
        </>
      ) : null}
    </>
  );
}

/** The customer's timeline, newest first, the next page loaded as its end scrolls into view. */
function Timeline({ customerId, version }: { customerId: string; version: number }) {
  const client = useClient();
  const [entries, setEntries] = useState<TimelineNode[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [more, setMore] = useState(true);
  const [loading, setLoading] = useState(false);
  const end = useRef<HTMLDivElement>(null);
  const load = useCallback(
    async (after: string | null, replace: boolean) => {
      setLoading(true);
      const result = await client.query(TIMELINE, { id: customerId, after }, { requestPolicy: "network-only" }).toPromise();
      setLoading(false);
      const page = result.data?.customerTimeline;
      if (!page) return;
      setEntries((current) => (replace ? page.nodes : [...current, ...page.nodes]));
      setCursor(page.pageInfo.endCursor ?? null);
      setMore(page.pageInfo.hasNextPage);
    },
    [client, customerId],
  );
  useEffect(() => {
    load(null, true);
  }, [load, version]);
  useEffect(() => {
    const target = end.current;
    if (!target) return;
    const observer = new IntersectionObserver((seen) => {
      if (seen.some((e) => e.isIntersecting) && more && !loading && cursor) load(cursor, false);
    });
    observer.observe(target);
    return () => observer.disconnect();
  }, [cursor, more, loading, load]);
  return (
    <section aria-labelledby="timeline-heading">
      <h2 id="timeline-heading" style={{ marginBottom: "1rem" }}>
        Timeline
      </h2>
      <ol className="cs-timeline" data-testid="timeline">
        {entries.map((entry) => (
          <li key={entry.eventId} data-testid="timeline-entry">
            <Tag size="sm" type="cool-gray">
              {words(entry.kind)}
            </Tag>{" "}
            {entry.summary} <span className="cs-muted">· {instant(entry.occurredAt)} · {entry.actorId}</span>
          </li>
        ))}
      </ol>
      <div ref={end} aria-hidden="true" style={{ height: "1px" }} />
      {loading ? <InlineLoading description="Loading more" /> : null}
      {!more && entries.length > 0 ? <p className="cs-muted">The beginning of this customer's history.</p> : null}
    </section>
  );
}
