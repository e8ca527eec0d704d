// The import wizard: choose what the file holds, drop it, check and change the suggested
// mapping, read the preview row by row, commit it, and undo any committed import from its
// history, with what the undo kept and why. Every step is the command API's import flow.

import { useCallback, useEffect, useMemo, useState } from "react";
import { Link } from "react-router-dom";
import { useUrlParams } from "../hooks";
import { useQuery } from "urql";
import {
  Button,
  FileUploaderDropContainer,
  InlineLoading,
  InlineNotification,
  Modal,
  Select,
  SelectItem,
  TableBody,
  TableCell,
  TableHead,
  TableHeader,
  TableRow,
  Tag,
} from "@carbon/react";
import { graphql } from "../gql";
import { useSession } from "../App";
import { CommandError, command, download, read, upload } from "../api/commands";
import { Pager, Table } from "../components";
import { count, when } from "../format";

type Kind = "customers" | "stakeholders" | "activities" | "health_scores" | "custom_fields";

/** What each kind of file holds, as a person says it. */
const KINDS: Array<{ kind: Kind; label: string; hint: string }> = [
  { kind: "customers", label: "Customers", hint: "one row per account: onboards new ones, updates those whose Salesforce id exists" },
  { kind: "stakeholders", label: "Stakeholders", hint: "people at each customer, matched by e-mail, else by name" },
  { kind: "activities", label: "Activities", hint: "calls, meetings and e-mails, one per row" },
  { kind: "health_scores", label: "Health scores", hint: "a score per customer and day" },
  { kind: "custom_fields", label: "Custom field values", hint: "values of your custom fields, per customer" },
];

const kindLabel = (kind: string) => KINDS.find((k) => k.kind === kind)?.label ?? kind;

interface Target {
  key: string;
  label: string;
  required: boolean;
}

interface RowOutcome {
  row: number;
  action: "create" | "update" | "unchanged" | "error";
  customer_id: string | null;
  changes: Array<{ field: string; old: unknown; new: unknown }>;
  errors: Array<{ column: string | null; code: string; message: string }>;
}

interface Counts {
  rows: number;
  create: number;
  update: number;
  unchanged: number;
  error: number;
}

/** An import being prepared: its preview (or why there is none yet). */
interface Preview {
  import_id: string;
  kind: string;
  file_name?: string;
  status: string;
  headers: string[];
  ignored_sheets?: string[];
  targets: Target[];
  mapping: Record<string, string>;
  counts?: Counts;
  rows?: RowOutcome[];
  errors_download?: string;
  error?: string;
  field?: string;
  message?: string;
}

interface UndoResult {
  retracted: Record<string, number>;
  restored: Array<{ customer_id?: string; field: string; value: unknown }>;
  kept: Array<{ customer_id?: string; field?: string; reason: string }>;
}

/** An import as its history lists it. */
interface Summary {
  import_id: string;
  kind: string;
  file_name: string;
  status: "uploaded" | "committed" | "undone";
  rows: number;
  counts: Counts | null;
  events: number | null;
  created_by: string;
  created_at: string;
  committed_by: string | null;
  committed_at: string | null;
  undone_by: string | null;
  undone_at: string | null;
  undo: UndoResult | null;
}

const STATUS_WORDS: Record<Summary["status"], string> = {
  uploaded: "previewed, not committed",
  committed: "committed",
  undone: "undone",
};

const STATUS_TAG: Record<Summary["status"], "gray" | "green" | "warm-gray"> = {
  uploaded: "gray",
  committed: "green",
  undone: "warm-gray",
};

const ACTION_WORDS: Record<RowOutcome["action"], string> = {
  create: "creates",
  update: "updates",
  unchanged: "changes nothing",
  error: "has errors",
};

export default function Imports() {
  const session = useSession();
  const { params, set } = useUrlParams();
  const open = params.get("import");
  const [history, setHistory] = useState<Summary[] | null>(null);
  const [historyError, setHistoryError] = useState<CommandError | null>(null);
  const refresh = useCallback(() => {
    read<{ imports: Summary[] }>(session, "/api/v1/imports")
      .then((answer) => {
        setHistory(answer.imports);
        setHistoryError(null);
      })
      .catch((error) => setHistoryError(CommandError.from(error)));
  }, [session]);
  useEffect(refresh, [refresh]);
  const show = (importId: string | null) => set("import", importId, true);
  return (
    <>
      <h1 style={{ marginBottom: "0.5rem" }}>Imports</h1>
      <p className="cs-muted" style={{ marginBottom: "1.5rem", maxWidth: "48rem" }}>
        Bring your book in from the spreadsheets you keep. Nothing is written until you commit, and any committed import can be
        undone later: what was changed since stays, and the undo says what it kept.
      </p>
      {open ? (
        <ImportDetail importId={open} onClose={() => show(null)} onChanged={refresh} />
      ) : (
        <NewImport
          onUploaded={(preview) => {
            refresh();
            show(preview.import_id);
          }}
        />
      )}
      <h2 style={{ margin: "2rem 0 1rem" }}>History</h2>
      {historyError ? (
        <InlineNotification kind="error" title="The history could not be read" subtitle={historyError.message} hideCloseButton lowContrast />
      ) : null}
      {history ? <History imports={history} onOpen={show} /> : <InlineLoading description="Reading the history" />}
    </>
  );
}

function NewImport({ onUploaded }: { onUploaded: (preview: Preview) => void }) {
  const session = useSession();
  const [kind, setKind] = useState<Kind>("customers");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<CommandError | null>(null);
  const send = async (file: File) => {
    setBusy(true);
    setError(null);
    const form = new FormData();
    form.append("kind", kind);
    form.append("file", file, file.name);
    try {
      onUploaded(await upload<Preview>(session, "/api/v1/imports", form));
    } catch (e) {
      setError(CommandError.from(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="new-import" className="cs-panel">
      <h2 id="new-import" style={{ marginBottom: "1rem" }}>
        New import
      </h2>
      <div style={{ maxWidth: "24rem" }}>
        <Select id="import-kind" labelText="The file holds" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
          {KINDS.map((k) => (
            <SelectItem key={k.kind} value={k.kind} text={k.label} />
          ))}
        </Select>
      </div>
      <p className="cs-muted" style={{ margin: "0.5rem 0 1rem" }}>
        {KINDS.find((k) => k.kind === kind)?.hint}. An Excel workbook (.xlsx) or a CSV file, up to 20 MB and 10,000 rows.
      </p>
      <FileUploaderDropContainer
        id="import-file"
        accept={[".xlsx", ".csv"]}
        labelText="Drag a workbook or CSV file here, or click to choose one"
        disabled={busy}
        onAddFiles={(_event: unknown, { addedFiles }: { addedFiles: File[] }) => {
          const file = addedFiles[0];
          if (file) void send(file);
        }}
      />
      {busy ? <InlineLoading description="Reading the file and planning each row" /> : null}
      {error ? (
        <InlineNotification
          kind="error"
          title="The file was not taken"
          subtitle={`${error.field("file") ?? error.message}`}
          hideCloseButton
          lowContrast
          role="alert"
        />
      ) : null}
    </section>
  );
}

const PAGE = 25;

function ImportDetail({ importId, onClose, onChanged }: { importId: string; onClose: () => void; onChanged: () => void }) {
  const session = useSession();
  const [answer, setAnswer] = useState<Preview | Summary | null>(null);
  const [error, setError] = useState<CommandError | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  useEffect(() => {
    setAnswer(null);
    read<Preview | Summary>(session, `/api/v1/imports/${importId}`)
      .then(setAnswer)
      .catch((e) => setError(CommandError.from(e)));
  }, [session, importId]);
  const act = async (label: string, action: () => Promise<Preview | Summary>) => {
    setBusy(label);
    setError(null);
    try {
      setAnswer(await action());
      onChanged();
    } catch (e) {
      setError(CommandError.from(e));
    } finally {
      setBusy(null);
    }
  };
  if (!answer)
    return error ? (
      <InlineNotification kind="error" title="The import could not be read" subtitle={error.message} hideCloseButton lowContrast />
    ) : (
      <InlineLoading description="Reading the import" />
    );
  const preview = "targets" in answer ? answer : null;
  return (
    <section aria-labelledby="import-title" className="cs-panel">
      <div className="cs-toolbar" style={{ justifyContent: "space-between" }}>
        <h2 id="import-title">
          {answer.file_name ?? "The file"} <span className="cs-muted">({kindLabel(answer.kind)})</span>
        </h2>
        <Button kind="ghost" size="sm" onClick={onClose}>
          New import
        </Button>
      </div>
      {error ? (
        <InlineNotification
          kind="error"
          title={error.code === "import_has_errors" ? "Nothing was written" : "Refused"}
          subtitle={error.message}
          hideCloseButton
          lowContrast
          role="alert"
        />
      ) : null}
      {preview ? (
        <PreviewSteps
          preview={preview}
          busy={busy}
          onRemap={(mapping) => act("mapping", () => command<Preview>(session, "PUT", `/api/v1/imports/${importId}/mapping`, { mapping }))}
          onCommit={() => act("commit", () => command<Summary>(session, "POST", `/api/v1/imports/${importId}/commit`))}
          onErrors={() => download(session, preview.errors_download ?? `/api/v1/imports/${importId}/errors.xlsx`, true).catch((e) => setError(CommandError.from(e)))}
        />
      ) : (
        <Outcome summary={answer as Summary} busy={busy} onUndo={() => act("undo", () => command<Summary>(session, "POST", `/api/v1/imports/${importId}/undo`))} />
      )}
    </section>
  );
}

function PreviewSteps({
  preview,
  busy,
  onRemap,
  onCommit,
  onErrors,
}: {
  preview: Preview;
  busy: string | null;
  onRemap: (mapping: Record<string, string>) => void;
  onCommit: () => void;
  onErrors: () => void;
}) {
  const [mapping, setMapping] = useState<Record<string, string>>(preview.mapping ?? {});
  useEffect(() => setMapping(preview.mapping ?? {}), [preview]);
  const changed = JSON.stringify(mapping) !== JSON.stringify(preview.mapping ?? {});
  const counts = preview.counts;
  return (
    <>
      <h3 style={{ margin: "1.5rem 0 0.5rem" }}>1. Columns</h3>
      <p className="cs-muted" style={{ marginBottom: "1rem" }}>
        Each field is read from the column suggested by its header; change any of them, then apply.
        {preview.ignored_sheets?.length ? ` Sheets left out (another header row): ${preview.ignored_sheets.join(", ")}.` : ""}
      </p>
      <div className="cs-mapping">
        {preview.targets.map((target) => (
          <Select
            key={target.key}
            id={`map-${target.key}`}
            labelText={`${target.label}${target.required ? " (required)" : ""}`}
            value={mapping[target.key] ?? ""}
            invalid={preview.error === "mapping_incomplete" && preview.field === target.key}
            invalidText={preview.field === target.key ? preview.message : undefined}
            onChange={(e) => {
              const next = { ...mapping };
              if (e.target.value) next[target.key] = e.target.value;
              else delete next[target.key];
              setMapping(next);
            }}
          >
            <SelectItem value="" text="not in this file" />
            {preview.headers.map((header) => (
              <SelectItem key={header} value={header} text={header} />
            ))}
          </Select>
        ))}
      </div>
      <Button kind="secondary" size="md" disabled={!changed || busy !== null} onClick={() => onRemap(mapping)} style={{ marginTop: "1rem" }}>
        {busy === "mapping" ? "Applying…" : "Apply these columns"}
      </Button>
      {preview.error === "mapping_incomplete" ? (
        <InlineNotification kind="warning" title="Choose a column for every required field" subtitle={preview.message} hideCloseButton lowContrast />
      ) : null}
      {counts && preview.rows ? (
        <>
          <h3 style={{ margin: "2rem 0 0.5rem" }}>2. What each row does</h3>
          <div className="cs-toolbar" data-testid="import-counts">
            <Tag type="blue">{count(counts.create, "row creates", "rows create")}</Tag>
            <Tag type="teal">{count(counts.update, "row updates", "rows update")}</Tag>
            <Tag type="gray">{count(counts.unchanged, "row changes nothing", "rows change nothing")}</Tag>
            <Tag type={counts.error ? "red" : "gray"}>{count(counts.error, "row has errors", "rows have errors")}</Tag>
          </div>
          <Rows rows={preview.rows} kind={preview.kind} />
          <h3 style={{ margin: "2rem 0 0.5rem" }}>3. Commit</h3>
          {counts.error ? (
            <p style={{ marginBottom: "1rem" }}>
              Fix the rows with errors in your spreadsheet and upload it again; the workbook below holds just those rows, each with its
              reason.
            </p>
          ) : (
            <p style={{ marginBottom: "1rem" }}>All {count(counts.rows, "row is", "rows are")} written in one go, or none.</p>
          )}
          <div className="cs-toolbar">
            <Button kind="primary" disabled={counts.error > 0 || busy !== null} onClick={onCommit}>
              {busy === "commit" ? "Committing…" : `Commit ${count(counts.rows, "row", "rows")}`}
            </Button>
            {counts.error ? (
              <Button kind="tertiary" onClick={onErrors}>
                Download the rows with errors (.xlsx)
              </Button>
            ) : null}
          </div>
        </>
      ) : null}
    </>
  );
}

const CUSTOMER_NAME = graphql(`
  query ImportCustomerName($id: UUID!) {
    customer(id: $id) {
      customerId
      name
    }
  }
`);

/** A customer named by id in an import's answer, by name (and a link) when it still exists. */
function CustomerName({ id, gone }: { id: string | null | undefined; gone: string }) {
  const [{ data, fetching }] = useQuery({ query: CUSTOMER_NAME, variables: { id: id ?? "" }, pause: !id });
  if (!id) return <>{gone}</>;
  if (fetching) return <span className="cs-muted">…</span>;
  const customer = data?.customer;
  return customer ? <Link to={`/customers/${customer.customerId}`}>{customer.name}</Link> : <>{gone}</>;
}

function shown(value: unknown): string {
  if (value === null || value === undefined || value === "") return "empty";
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

const fieldWords = (field: string) => field.replace(/^cf\./, "").replace(/_/g, " ");

function Rows({ rows, kind }: { rows: RowOutcome[]; kind: string }) {
  const [only, setOnly] = useState<"all" | RowOutcome["action"]>(() => (rows.some((row) => row.action === "error") ? "error" : "all"));
  const [offset, setOffset] = useState(0);
  const chosen = useMemo(() => (only === "all" ? rows : rows.filter((row) => row.action === only)), [rows, only]);
  useEffect(() => setOffset(0), [only, rows]);
  const page = chosen.slice(offset, offset + PAGE);
  return (
    <>
      <div style={{ maxWidth: "16rem", margin: "1rem 0" }}>
        <Select id="import-rows-shown" labelText="Show" value={only} onChange={(e) => setOnly(e.target.value as typeof only)}>
          <SelectItem value="all" text="every row" />
          <SelectItem value="error" text="rows with errors" />
          <SelectItem value="create" text="rows that create" />
          <SelectItem value="update" text="rows that update" />
          <SelectItem value="unchanged" text="rows that change nothing" />
        </Select>
      </div>
      <Table size="md" aria-label="What each row does">
        <TableHead>
          <TableRow>
            <TableHeader>Row</TableHeader>
            <TableHeader>Customer</TableHeader>
            <TableHeader>The row</TableHeader>
            <TableHeader>Details</TableHeader>
          </TableRow>
        </TableHead>
        <TableBody>
          {page.map((row) => (
            <TableRow key={row.row} data-testid={`import-row-${row.row}`}>
              <TableCell>{row.row}</TableCell>
              <TableCell>
                <CustomerName id={row.action === "create" && kind === "customers" ? null : row.customer_id} gone={row.action === "create" ? "a new customer" : "—"} />
              </TableCell>
              <TableCell>
                <Tag type={row.action === "error" ? "red" : row.action === "create" ? "blue" : row.action === "update" ? "teal" : "gray"} size="sm">
                  {ACTION_WORDS[row.action]}
                </Tag>
              </TableCell>
              <TableCell>
                {row.errors.length ? (
                  <ul className="cs-plain-list">
                    {row.errors.map((error, index) => (
                      <li key={index}>
                        {error.column ? <strong>{error.column}: </strong> : null}
                        {error.message}
                      </li>
                    ))}
                  </ul>
                ) : row.changes.length ? (
                  <ul className="cs-plain-list">
                    {row.changes.map((change) => (
                      <li key={change.field}>
                        {fieldWords(change.field)}: {shown(change.old)} → {shown(change.new)}
                      </li>
                    ))}
                  </ul>
                ) : (
                  <span className="cs-muted">{row.action === "create" ? "added as it stands" : "—"}</span>
                )}
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
      <Pager label="rows" offset={offset} size={PAGE} total={chosen.length} onChange={setOffset} />
    </>
  );
}

function Outcome({ summary, busy, onUndo }: { summary: Summary; busy: string | null; onUndo: () => void }) {
  const [confirming, setConfirming] = useState(false);
  return (
    <>
      <p style={{ margin: "1rem 0" }} data-testid="import-outcome">
        <Tag type={STATUS_TAG[summary.status]}>{STATUS_WORDS[summary.status]}</Tag>{" "}
        {summary.status !== "uploaded" && summary.counts
          ? `${count(summary.counts.create, "row created", "rows created")}, ${count(summary.counts.update, "updated", "updated")}, ${count(
              summary.events ?? 0,
              "event",
              "events",
            )} written by ${summary.committed_by} on ${when(summary.committed_at)}.`
          : null}
      </p>
      {summary.status === "committed" ? (
        <>
          <Button kind="danger--tertiary" disabled={busy !== null} onClick={() => setConfirming(true)}>
            {busy === "undo" ? "Undoing…" : "Undo this import"}
          </Button>
          <Modal
            open={confirming}
            danger
            modalHeading={`Undo ${summary.file_name}?`}
            primaryButtonText="Undo the import"
            secondaryButtonText="Keep it"
            onRequestClose={() => setConfirming(false)}
            onRequestSubmit={() => {
              setConfirming(false);
              onUndo();
            }}
          >
            <p>
              What the import created is retracted and what it changed goes back to its earlier value. Changes made since the import stay;
              the undo lists them.
            </p>
          </Modal>
        </>
      ) : null}
      {summary.undo ? <UndoReport summary={summary} /> : null}
    </>
  );
}

function UndoReport({ summary }: { summary: Summary }) {
  const undo = summary.undo!;
  const retracted = Object.entries(undo.retracted).filter(([, n]) => n > 0);
  return (
    <div data-testid="undo-report" style={{ marginTop: "1rem" }}>
      <p>
        Undone by {summary.undone_by} on {when(summary.undone_at)}:{" "}
        {retracted.length ? retracted.map(([what, n]) => `${n} ${fieldWords(what)} retracted`).join(", ") : "nothing retracted"}
        {undo.restored.length ? `, ${count(undo.restored.length, "field set back", "fields set back")}` : ""}.
      </p>
      {undo.kept.length ? (
        <>
          <h3 style={{ margin: "1rem 0 0.5rem" }}>Kept, because they changed after the import</h3>
          <Table size="sm" aria-label="What the undo kept">
            <TableHead>
              <TableRow>
                <TableHeader>Customer</TableHeader>
                <TableHeader>Field</TableHeader>
                <TableHeader>Why it stays</TableHeader>
              </TableRow>
            </TableHead>
            <TableBody>
              {undo.kept.map((kept, index) => (
                <TableRow key={index} data-testid="undo-kept">
                  <TableCell>
                    <CustomerName id={kept.customer_id} gone="a customer no longer listed" />
                  </TableCell>
                  <TableCell>{kept.field ? fieldWords(kept.field) : "—"}</TableCell>
                  <TableCell>{kept.reason}</TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </>
      ) : null}
    </div>
  );
}

function History({ imports, onOpen }: { imports: Summary[]; onOpen: (id: string) => void }) {
  const [offset, setOffset] = useState(0);
  if (!imports.length) return <p className="cs-muted">No import yet.</p>;
  return (
    <>
      <Table size="md" aria-label="Import history">
        <TableHead>
          <TableRow>
            <TableHeader>File</TableHeader>
            <TableHeader>Holds</TableHeader>
            <TableHeader>Uploaded</TableHeader>
            <TableHeader>Rows</TableHeader>
            <TableHeader>Status</TableHeader>
            <TableHeader>
              <span className="cs-visually-hidden">Open</span>
            </TableHeader>
          </TableRow>
        </TableHead>
        <TableBody>
          {imports.slice(offset, offset + PAGE).map((item) => (
            <TableRow key={item.import_id} data-testid="import-history-row">
              <TableCell>{item.file_name}</TableCell>
              <TableCell>{kindLabel(item.kind)}</TableCell>
              <TableCell>
                {when(item.created_at)} <span className="cs-muted">by {item.created_by}</span>
              </TableCell>
              <TableCell>{item.rows.toLocaleString()}</TableCell>
              <TableCell>
                <Tag type={STATUS_TAG[item.status]} size="sm">
                  {STATUS_WORDS[item.status]}
                </Tag>
                {item.undo?.kept.length ? <span className="cs-muted"> ({count(item.undo.kept.length, "change kept", "changes kept")})</span> : null}
              </TableCell>
              <TableCell>
                <Button kind="ghost" size="sm" onClick={() => onOpen(item.import_id)}>
                  {item.status === "uploaded" ? "Continue" : item.status === "committed" ? "Open or undo" : "Open"}
                </Button>
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
      <Pager label="imports" offset={offset} size={PAGE} total={imports.length} onChange={setOffset} />
      {imports.length >= 200 ? <p className="cs-muted">The newest 200 imports are listed.</p> : null}
    </>
  );
}
