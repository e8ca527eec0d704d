// Settings › Connectors (admins and managers read; admins ask for a sync): each connector,
// whether this installation configures it, its latest runs with what they read, applied and
// skipped (and why), the cursors it resumes from, and a "Sync now".

import { useCallback, useEffect, useState } from "react";
import { useQuery } from "urql";
import { Button, InlineLoading, InlineNotification, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag, Tile } from "@carbon/react";
import { graphql } from "../../gql";
import type { SettingsConnectorsQuery } from "../../gql/graphql";
import { useSession } from "../../App";
import { CommandError, command, read } from "../../api/commands";
import { Pager, Table } from "../../components";
import { count, when } from "../../format";
import { Refused } from "./common";

const RUNS = graphql(`
  query SettingsConnectors {
    connectors {
      name
      runs {
        runId
        startedAt
        finishedAt
        status
        recordsRead
        applied
        unchanged
        skipped
        ignored
        pushed
        events
        waitedMs
        error
        skippedRecords {
          object
          recordId
          code
          field
          message
        }
      }
      cursors {
        stream
        cursor
        updatedAt
      }
    }
  }
`);

interface Configured {
  name: string;
  label: string;
  configured: boolean;
  interval_seconds: number | null;
  setting: string;
}

const STATUS_TAG: Record<string, "green" | "red" | "blue"> = { succeeded: "green", failed: "red", running: "blue" };

export function Connectors() {
  const session = useSession();
  const [{ data, error }, refetch] = useQuery({ query: RUNS, requestPolicy: "cache-and-network" });
  const [configured, setConfigured] = useState<Configured[] | null>(null);
  const [failure, setFailure] = useState<CommandError | null>(null);
  useEffect(() => {
    read<{ connectors: Configured[] }>(session, "/api/v1/connectors")
      .then((answer) => setConfigured(answer.connectors))
      .catch((e) => setFailure(CommandError.from(e)));
  }, [session]);
  const refresh = useCallback(() => refetch({ requestPolicy: "network-only" }), [refetch]);
  if (error) return <InlineNotification kind="error" title="The connectors' runs could not be read" subtitle={error.message} hideCloseButton lowContrast />;
  if (failure && !configured) return <Refused error={failure} />;
  if (!data || !configured) return <InlineLoading description="Reading the connectors" />;
  return (
    <div style={{ maxWidth: "72rem" }}>
      <p className="cs-muted" style={{ margin: "1rem 0" }}>
        Connectors bring customers, contacts, health scores, e-mail, meetings and work items from other systems, as the same commands a person would send. A
        record that cannot be applied is skipped with its reason and never half-applied.
      </p>
      {configured.map((connector) => (
        <ConnectorPanel
          key={connector.name}
          connector={connector}
          state={data.connectors.find((c) => c.name === connector.name) ?? null}
          mayRun={session.role === "admin"}
          onRequested={() => window.setTimeout(refresh, 1500)}
        />
      ))}
    </div>
  );
}

/** One connector's runs and cursors, as the query answers them. */
type Runs = SettingsConnectorsQuery["connectors"][number];

const SKIPS_PAGE = 10;

function ConnectorPanel({ connector, state, mayRun, onRequested }: { connector: Configured; state: Runs | null; mayRun: boolean; onRequested: () => void }) {
  const session = useSession();
  const [opened, setOpened] = useState<string | null>(null);
  const [skipOffset, setSkipOffset] = useState(0);
  const [sync, setSync] = useState<{ busy: boolean; error: CommandError | null; requested: boolean }>({ busy: false, error: null, requested: false });
  const last = state?.runs[0] ?? null;
  const run = state?.runs.find((r) => r.runId === opened) ?? null;
  return (
    <Tile className="cs-section" data-testid={`connector-${connector.name}`} style={{ marginBottom: "1rem" }}>
      <div className="cs-toolbar" style={{ justifyContent: "space-between" }}>
        <h2>
          {connector.label}{" "}
          {connector.configured ? (
            <Tag type="green" size="sm">
              configured
            </Tag>
          ) : (
            <Tag type="gray" size="sm">
              not configured
            </Tag>
          )}
        </h2>
        {mayRun && connector.configured ? (
          <Button
            size="sm"
            kind="tertiary"
            disabled={sync.busy}
            onClick={async () => {
              setSync({ busy: true, error: null, requested: false });
              try {
                await command(session, "POST", `/api/v1/connectors/${connector.name}/sync`);
                setSync({ busy: false, error: null, requested: true });
                onRequested();
              } catch (e) {
                setSync({ busy: false, error: CommandError.from(e), requested: false });
              }
            }}
          >
            Sync now
          </Button>
        ) : null}
      </div>
      <p className="cs-muted">
        {connector.configured
          ? `Syncs every ${Math.round((connector.interval_seconds ?? 0) / 60)} minutes.`
          : `Set ${connector.setting} (docs/CONNECTORS.md) on the command service to turn it on.`}{" "}
        {last ? `Last run ${when(last.startedAt)}: ${last.status}.` : "It has never run."}
      </p>
      {sync.requested ? <InlineNotification kind="info" title="A sync was asked for; it appears below when it starts." hideCloseButton lowContrast role="status" /> : null}
      {sync.error ? <Refused error={sync.error} /> : null}
      {state && state.runs.length ? (
        <Table size="sm" aria-label={`${connector.label}: latest runs`}>
          <TableHead>
            <TableRow>
              <TableHeader>Started</TableHeader>
              <TableHeader>Outcome</TableHeader>
              <TableHeader>Read</TableHeader>
              <TableHeader>Applied</TableHeader>
              <TableHeader>Unchanged</TableHeader>
              <TableHeader>Skipped</TableHeader>
              <TableHeader>Events</TableHeader>
            </TableRow>
          </TableHead>
          <TableBody>
            {state.runs.map((r) => (
              <TableRow key={r.runId} data-testid="connector-run">
                <TableCell>{when(r.startedAt)}</TableCell>
                <TableCell>
                  <Tag type={STATUS_TAG[r.status] ?? "gray"} size="sm">
                    {r.status}
                  </Tag>
                  {r.error ? <div className="cs-muted">{r.error}</div> : null}
                  {r.waitedMs > 0 ? <div className="cs-muted">waited {Math.round(r.waitedMs / 1000)} s on the vendor</div> : null}
                </TableCell>
                <TableCell>{r.recordsRead}</TableCell>
                <TableCell>{r.applied}</TableCell>
                <TableCell>{r.unchanged}</TableCell>
                <TableCell>
                  {r.skipped > 0 ? (
                    <Button
                      kind="ghost"
                      size="sm"
                      onClick={() => {
                        setOpened(opened === r.runId ? null : r.runId);
                        setSkipOffset(0);
                      }}
                    >
                      {count(r.skipped, "record", "records")}: why
                    </Button>
                  ) : (
                    "none"
                  )}
                </TableCell>
                <TableCell>{r.events}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      ) : null}
      {run ? (
        <section aria-label="Skipped records" style={{ marginTop: "1rem" }}>
          <h3>Skipped in the run of {when(run.startedAt)}</h3>
          <Table size="sm" aria-label="Skipped records">
            <TableHead>
              <TableRow>
                <TableHeader>Record</TableHeader>
                <TableHeader>Field</TableHeader>
                <TableHeader>Why</TableHeader>
              </TableRow>
            </TableHead>
            <TableBody>
              {run.skippedRecords.slice(skipOffset, skipOffset + SKIPS_PAGE).map((skip) => (
                <TableRow key={`${skip.object}/${skip.recordId}/${skip.code}`} data-testid="skipped-record">
                  <TableCell>
                    {skip.object} {skip.recordId}
                  </TableCell>
                  <TableCell>{skip.field ?? "—"}</TableCell>
                  <TableCell>{skip.message}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          <Pager label="skipped records" offset={skipOffset} size={SKIPS_PAGE} total={run.skippedRecords.length} onChange={setSkipOffset} />
          {run.skipped > run.skippedRecords.length ? <p className="cs-muted">The run keeps the reasons of its first {run.skippedRecords.length} skipped records.</p> : null}
        </section>
      ) : null}
      {state && state.cursors.length ? (
        <p className="cs-muted" style={{ marginTop: "0.5rem" }}>
          Resumes from: {state.cursors.map((c) => `${c.stream} (moved ${when(c.updatedAt)})`).join("; ")}
        </p>
      ) : null}
    </Tile>
  );
}
