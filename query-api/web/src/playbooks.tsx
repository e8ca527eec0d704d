// Playbooks on a customer's 360 (docs/WEB.md, "Playbooks"): start one with a reason, follow each
// run's steps (each a task of the account, completed as tasks are), move a step's due day (the
// later steps move with it), end a run by hand, and read why a run started and why it ended.

import { useState } from "react";
import { useQuery } from "urql";
import { Button, Form, InlineNotification, Modal, ProgressBar, Select, SelectItem, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag, TextArea, TextInput, Tile } from "@carbon/react";
import { graphql } from "./gql";
import { useSession } from "./App";
import { command, CommandError } from "./api/commands";
import { day, when, words } from "./format";
import { TaskActions } from "./forms";
import { Table } from "./components";

export const PLAYBOOKS = graphql(`
  query Playbooks {
    playbooks {
      playbookId
      version
      name
      description
      trigger
      triggerDays
      triggerText
      autoStart
      exitWhenNotAtRisk
      shipped
      savedAt
      steps {
        title
        description
        owner
        anchor
        offsetDays
        dueText
        kind
        priority
        template
      }
    }
  }
`);

export const PLAYBOOK_RUNS = graphql(`
  query PlaybookRuns($customerId: UUID, $status: RunStatus, $offset: Int!, $first: Int!) {
    playbookRuns(customerId: $customerId, status: $status, offset: $offset, first: $first) {
      totalCount
      items {
        runId
        playbookName
        playbookVersion
        customerId
        customerName
        trigger
        why
        startedByName
        startedBy
        startedAt
        status
        endedWhy
        endedAt
        stepsDone
        stepCount
        steps {
          index
          title
          description
          taskId
          assigneeId
          assigneeName
          dueDate
          dueText
          status
          outcome
          closedAt
        }
        moves {
          fromStep
          days
          reason
          movedBy
          at
        }
      }
    }
  }
`);

export const RUN_STATUS_WORDS: Record<string, string> = {
  OPEN: "in progress",
  COMPLETED: "completed",
  EXITED: "ended: no longer at risk",
  CANCELLED: "ended early",
};

export const RUN_STATUS_TAG: Record<string, "blue" | "green" | "teal" | "warm-gray"> = {
  OPEN: "blue",
  COMPLETED: "green",
  EXITED: "teal",
  CANCELLED: "warm-gray",
};

const OWNER_WORDS: Record<string, string> = { csm: "the account's CSM", manager: "the CSM's manager", starter: "whoever starts it" };

export function ownerWords(owner: string): string {
  return OWNER_WORDS[owner] ?? words(owner);
}

function todayValue(): string {
  const now = new Date();
  return `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}-${String(now.getDate()).padStart(2, "0")}`;
}

function Refusal({ error }: { error: CommandError | null }) {
  if (!error) return null;
  const fields = Object.values(error.fields).filter((v) => typeof v === "string");
  return <InlineNotification kind="error" title="Refused" subtitle={fields.length ? fields.join("; ") : error.message} hideCloseButton lowContrast role="alert" />;
}

/** Starts a playbook on the customer, with why. */
export function StartPlaybook({ customerId, onDone }: { customerId: string; onDone: () => void }) {
  const session = useSession();
  const [{ data }] = useQuery({ query: PLAYBOOKS });
  const [playbookId, setPlaybookId] = useState("");
  const [reason, setReason] = useState("");
  const [error, setError] = useState<CommandError | null>(null);
  const playbooks = data?.playbooks ?? [];
  const chosen = playbooks.find((p) => p.playbookId === playbookId);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      await command(session, "POST", `/api/v1/customers/${customerId}/playbook-runs`, { playbook_id: playbookId, reason: reason.trim(), start: todayValue() });
      setPlaybookId("");
      setReason("");
      onDone();
    } catch (e) {
      setError(CommandError.from(e));
    }
  };
  return (
    <Form onSubmit={submit} className="cs-form" aria-label="Start a playbook">
      <Select id="playbook-choice" labelText="Playbook" value={playbookId} onChange={(e) => setPlaybookId(e.target.value)}>
        <SelectItem value="" text="Choose a playbook" />
        {playbooks.map((p) => (
          <SelectItem key={p.playbookId} value={p.playbookId} text={p.name} />
        ))}
      </Select>
      {chosen ? (
        <div className="cs-muted" data-testid="playbook-preview">
          <p>{chosen.description}</p>
          <ol style={{ marginLeft: "1.25rem", listStyle: "decimal" }}>
            {chosen.steps.map((s, i) => (
              <li key={i}>
                {s.title}: {ownerWords(s.owner)}, due {s.dueText}
              </li>
            ))}
          </ol>
        </div>
      ) : null}
      <TextInput id="playbook-reason" labelText="Why start it" placeholder="Health dropped to 35 after the outage" value={reason} onChange={(e) => setReason(e.target.value)} />
      <Refusal error={error} />
      <Button type="submit" disabled={!playbookId || !reason.trim()}>
        Start the playbook
      </Button>
    </Form>
  );
}

type Run = NonNullable<ReturnType<typeof useRuns>["runs"]>[number];

function useRuns(customerId: string) {
  const [{ data, fetching }, refetch] = useQuery({ query: PLAYBOOK_RUNS, variables: { customerId, offset: 0, first: 50 } });
  return { runs: data?.playbookRuns.items, total: data?.playbookRuns.totalCount ?? 0, fetching, refetch };
}

/** Moves a step's due day; the later open steps move by as many days. */
function MoveStep({ run, index, onClose, onDone }: { run: Run; index: number; onClose: () => void; onDone: () => void }) {
  const session = useSession();
  const step = run.steps[index];
  const [due, setDue] = useState(step.dueDate);
  const [reason, setReason] = useState("");
  const [error, setError] = useState<CommandError | null>(null);
  const later = run.steps.filter((s) => s.index > index && (s.status === "pending" || s.status === "in_progress")).length;
  const submit = async () => {
    setError(null);
    try {
      await command(session, "POST", `/api/v1/playbook-runs/${run.runId}/move`, { step: index, due_date: due, reason: reason.trim() });
      onDone();
      onClose();
    } catch (e) {
      setError(CommandError.from(e));
    }
  };
  return (
    <Modal
      open
      modalHeading={`Move “${step.title}”`}
      primaryButtonText="Move"
      primaryButtonDisabled={!reason.trim() || due === step.dueDate}
      secondaryButtonText="Cancel"
      onRequestClose={onClose}
      onRequestSubmit={submit}
    >
      <p style={{ marginBottom: "1rem" }}>
        It is due {day(step.dueDate)}.{" "}
        {later ? `The ${later === 1 ? "open step after it moves" : `${later} open steps after it move`} by as many days.` : "No open step comes after it."}
      </p>
      <TextInput id={`move-due-${index}`} type="date" labelText="New due day" value={due} onChange={(e) => setDue(e.target.value)} />
      <TextArea id={`move-reason-${index}`} labelText="Why" rows={2} value={reason} onChange={(e) => setReason(e.target.value)} />
      <Refusal error={error} />
    </Modal>
  );
}

/** Ends a run by hand, with why; its open steps are cancelled. */
function EndRun({ run, onClose, onDone }: { run: Run; onClose: () => void; onDone: () => void }) {
  const session = useSession();
  const [reason, setReason] = useState("");
  const [error, setError] = useState<CommandError | null>(null);
  const submit = async () => {
    setError(null);
    try {
      await command(session, "POST", `/api/v1/playbook-runs/${run.runId}/cancel`, { reason: reason.trim() });
      onDone();
      onClose();
    } catch (e) {
      setError(CommandError.from(e));
    }
  };
  return (
    <Modal
      open
      danger
      modalHeading={`End “${run.playbookName}” early`}
      primaryButtonText="End the run"
      primaryButtonDisabled={!reason.trim()}
      secondaryButtonText="Keep it"
      onRequestClose={onClose}
      onRequestSubmit={submit}
    >
      <p style={{ marginBottom: "1rem" }}>Its {run.stepCount - run.stepsDone} open steps are cancelled with your reason.</p>
      <TextArea id={`end-reason-${run.runId}`} labelText="Why end it" rows={2} value={reason} onChange={(e) => setReason(e.target.value)} />
      <Refusal error={error} />
    </Modal>
  );
}

/** One run: why it started, its progress, its steps and why it ended. */
export function RunCard({ run, writable, onDone, showCustomer = false }: { run: Run; writable: boolean; onDone: () => void; showCustomer?: boolean }) {
  const [moving, setMoving] = useState<number | null>(null);
  const [ending, setEnding] = useState(false);
  const open = run.status === "OPEN";
  return (
    <Tile style={{ marginBottom: "1rem" }} data-testid="playbook-run">
      <div className="cs-toolbar" style={{ justifyContent: "space-between" }}>
        <h3 style={{ fontSize: "1rem" }}>
          {run.playbookName}
          {showCustomer ? ` · ${run.customerName}` : ""}{" "}
          <span className="cs-muted" style={{ fontWeight: 400 }}>
            (version {run.playbookVersion === 0 ? "as shipped" : run.playbookVersion})
          </span>
        </h3>
        <Tag type={RUN_STATUS_TAG[run.status]} size="sm" data-testid="run-status">
          {RUN_STATUS_WORDS[run.status]}
        </Tag>
      </div>
      <p className="cs-muted">
        Started {when(run.startedAt)} by {run.startedByName ?? run.startedBy}: {run.why}
      </p>
      <ProgressBar
        label={`${run.stepsDone} of ${run.stepCount} steps done`}
        value={run.stepsDone}
        max={run.stepCount}
        size="small"
        status={run.status === "COMPLETED" ? "finished" : "active"}
        hideLabel={false}
      />
      <Table size="sm" aria-label={`Steps of ${run.playbookName}`}>
        <TableHead>
          <TableRow>
            <TableHeader>Step</TableHeader>
            <TableHeader>Owner</TableHeader>
            <TableHeader>Due</TableHeader>
            <TableHeader>Status</TableHeader>
            {writable && open ? (
              <TableHeader>
                <span className="cs-visually-hidden">Actions</span>
              </TableHeader>
            ) : null}
          </TableRow>
        </TableHead>
        <TableBody>
          {run.steps.map((s) => {
            const stepOpen = s.status === "pending" || s.status === "in_progress";
            return (
              <TableRow key={s.taskId} data-testid="run-step">
                <TableCell>
                  {s.index + 1}. <strong>{s.title}</strong>
                </TableCell>
                <TableCell>{s.assigneeName ?? s.assigneeId}</TableCell>
                <TableCell>
                  <span data-testid="run-step-due">{day(s.dueDate)}</span>
                  <div className="cs-muted">{s.dueText}</div>
                </TableCell>
                <TableCell>
                  {words(s.status)}
                  {s.outcome ? <div className="cs-muted">{s.outcome}</div> : null}
                </TableCell>
                {writable && open ? (
                  <TableCell>
                    {stepOpen ? (
                      <div className="cs-toolbar">
                        <TaskActions customerId={run.customerId} taskId={s.taskId} status={s.status} title={s.title} onDone={onDone} />
                        <Button kind="ghost" size="sm" onClick={() => setMoving(s.index)}>
                          Move
                        </Button>
                      </div>
                    ) : null}
                  </TableCell>
                ) : null}
              </TableRow>
            );
          })}
        </TableBody>
      </Table>
      {run.moves.length ? (
        <p className="cs-muted" data-testid="run-moves">
          {run.moves.map((m) => `Step ${m.fromStep + 1} and later moved ${m.days > 0 ? `${m.days} days later` : `${-m.days} days earlier`} on ${when(m.at)}: ${m.reason}`).join(" · ")}
        </p>
      ) : null}
      {run.endedWhy ? (
        <p data-testid="run-ended">
          Ended {run.endedAt ? when(run.endedAt) : ""}: {run.endedWhy}
        </p>
      ) : null}
      {writable && open ? (
        <Button kind="ghost" size="sm" onClick={() => setEnding(true)}>
          End early
        </Button>
      ) : null}
      {moving != null ? <MoveStep run={run} index={moving} onClose={() => setMoving(null)} onDone={onDone} /> : null}
      {ending ? <EndRun run={run} onClose={() => setEnding(false)} onDone={onDone} /> : null}
    </Tile>
  );
}

/** The customer's playbook runs and the form that starts one. */
export function CustomerPlaybooks({ customerId, writable }: { customerId: string; writable: boolean }) {
  const { runs, total, refetch } = useRuns(customerId);
  const [starting, setStarting] = useState(false);
  const refresh = () => {
    refetch({ requestPolicy: "network-only" });
    window.setTimeout(() => refetch({ requestPolicy: "network-only" }), 800);
    window.setTimeout(() => refetch({ requestPolicy: "network-only" }), 2500);
  };
  return (
    <section className="cs-section" aria-labelledby="playbooks-heading" style={{ marginTop: "1.5rem" }}>
      <div className="cs-toolbar" style={{ justifyContent: "space-between" }}>
        <h2 id="playbooks-heading">Playbooks</h2>
        {writable ? (
          <Button kind="tertiary" size="sm" onClick={() => setStarting(!starting)}>
            {starting ? "Close" : "Start a playbook"}
          </Button>
        ) : null}
      </div>
      {starting ? (
        <StartPlaybook
          customerId={customerId}
          onDone={() => {
            setStarting(false);
            refresh();
          }}
        />
      ) : null}
      {runs && runs.length ? (
        <>
          {runs.map((run) => (
            <RunCard key={run.runId} run={run} writable={writable} onDone={refresh} />
          ))}
          {total > runs.length ? <p className="cs-muted">The 50 latest of {total} runs.</p> : null}
        </>
      ) : (
        <p className="cs-muted">No playbook has run on this account.</p>
      )}
    </section>
  );
}

