// Settings › Playbooks (admins and managers): each playbook's steps (who owns each, when it is due
// and from what, the note or e-mail to send), what starts it by itself (off until turned on), and
// whether it ends once the account is no longer at risk. The three shipped playbooks are edited
// like any other; every save is a new version, and a run keeps the version it started with.

import { useState } from "react";
import { useQuery } from "urql";
import { Button, Checkbox, Form, NumberInput, Select, SelectItem, TextArea, TextInput, Tile } from "@carbon/react";
import { useSession } from "../../App";
import { CommandError, command } from "../../api/commands";
import { when, words } from "../../format";
import { CommandButton } from "../../forms";
import { ownerWords, PLAYBOOKS } from "../../playbooks";
import { Refused } from "./common";

interface Step {
  title: string;
  description: string;
  owner: string;
  anchor: string;
  offset_days: number;
  kind: string;
  priority: string;
  template: string;
}

interface Editing {
  playbookId: string | null;
  name: string;
  description: string;
  trigger: string;
  days: number;
  autoStart: boolean;
  exit: boolean;
  steps: Step[];
}

const NEW_STEP: Step = { title: "", description: "", owner: "csm", anchor: "previous_step", offset_days: 7, kind: "follow_up", priority: "medium", template: "" };
const EMPTY: Editing = { playbookId: null, name: "", description: "", trigger: "manual", days: 120, autoStart: false, exit: false, steps: [{ ...NEW_STEP, anchor: "start", offset_days: 0 }] };

const TRIGGERS: Array<[string, string]> = [
  ["manual", "Only by hand"],
  ["health_red", "Health turns red"],
  ["churn_risk_high", "Churn risk turns high"],
  ["renewal_within", "Renewal within N days"],
  ["onboarding", "A customer is onboarded"],
];

const ANCHORS: Array<[string, string]> = [
  ["start", "the start"],
  ["previous_step", "the previous step"],
  ["renewal_date", "the renewal date"],
  ["contract_start", "the contract start"],
];

function StepEditor({ step, index, count, onChange, onMove, onRemove }: { step: Step; index: number; count: number; onChange: (s: Step) => void; onMove: (by: number) => void; onRemove: () => void }) {
  const set = (patch: Partial<Step>) => onChange({ ...step, ...patch });
  const id = `step-${index}`;
  return (
    <Tile style={{ marginBottom: "0.75rem" }} data-testid="playbook-step-editor">
      <h4 style={{ marginBottom: "0.5rem" }}>Step {index + 1}</h4>
      <TextInput id={`${id}-title`} labelText="What to do" value={step.title} onChange={(e) => set({ title: e.target.value })} />
      <div className="cs-toolbar">
        <Select id={`${id}-owner`} labelText="Owner" value={step.owner} onChange={(e) => set({ owner: e.target.value })}>
          {["csm", "manager", "starter"].map((o) => (
            <SelectItem key={o} value={o} text={ownerWords(o)} />
          ))}
        </Select>
        <NumberInput id={`${id}-offset`} label="Due, days after (negative: before)" min={-3650} max={3650} value={step.offset_days} onChange={(_, { value }) => set({ offset_days: Number(value) || 0 })} />
        <Select id={`${id}-anchor`} labelText="Counting from" value={step.anchor} onChange={(e) => set({ anchor: e.target.value })}>
          {ANCHORS.map(([value, text]) => (
            <SelectItem key={value} value={value} text={text} />
          ))}
        </Select>
        <Select id={`${id}-kind`} labelText="Kind" value={step.kind} onChange={(e) => set({ kind: e.target.value })}>
          {["follow_up", "qbr_prep", "escalation", "onboarding", "renewal", "general"].map((k) => (
            <SelectItem key={k} value={k} text={words(k)} />
          ))}
        </Select>
        <Select id={`${id}-priority`} labelText="Priority" value={step.priority} onChange={(e) => set({ priority: e.target.value })}>
          {["low", "medium", "high", "urgent"].map((p) => (
            <SelectItem key={p} value={p} text={p} />
          ))}
        </Select>
      </div>
      <TextArea
        id={`${id}-template`}
        labelText="Note or e-mail to send (optional)"
        helperText="{customer}, {csm} and {renewal_date} are filled in when the run starts; the text goes into the step's task."
        rows={2}
        value={step.template}
        onChange={(e) => set({ template: e.target.value })}
      />
      <div className="cs-toolbar">
        <Button size="sm" kind="ghost" disabled={index === 0} onClick={() => onMove(-1)}>
          Up
        </Button>
        <Button size="sm" kind="ghost" disabled={index === count - 1} onClick={() => onMove(1)}>
          Down
        </Button>
        <Button size="sm" kind="danger--ghost" disabled={count === 1} onClick={onRemove}>
          Remove step {index + 1}
        </Button>
      </div>
    </Tile>
  );
}

export function Playbooks() {
  const session = useSession();
  const [{ data }, refetch] = useQuery({ query: PLAYBOOKS });
  const [editing, setEditing] = useState<Editing | null>(null);
  const [error, setError] = useState<CommandError | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const refresh = () => refetch({ requestPolicy: "network-only" });
  const playbooks = data?.playbooks ?? [];
  const set = (patch: Partial<Editing>) => editing && setEditing({ ...editing, ...patch });
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    if (!editing) return;
    setError(null);
    const body = {
      name: editing.name,
      description: editing.description,
      trigger: editing.trigger === "renewal_within" ? { kind: "renewal_within", days: editing.days } : { kind: editing.trigger },
      auto_start: editing.trigger !== "manual" && editing.autoStart,
      exit_when_not_at_risk: editing.exit,
      steps: editing.steps,
    };
    try {
      if (editing.playbookId) await command(session, "PUT", `/api/v1/playbooks/${editing.playbookId}`, body);
      else await command(session, "POST", "/api/v1/playbooks", body);
      setSaved(`Saved "${editing.name}"`);
      setEditing(null);
      refresh();
    } catch (e) {
      setError(CommandError.from(e));
    }
  };
  return (
    <section aria-labelledby="playbooks-settings-heading">
      <h2 id="playbooks-settings-heading">Playbooks</h2>
      <p className="cs-muted" style={{ marginBottom: "1rem" }}>
        A playbook is an ordered list of steps; started on an account, each step becomes a task. A playbook whose start is on starts by itself when its trigger happens, once for each occasion
        and never while a run of it is open on the account.
      </p>
      {playbooks.map((p) => (
        <Tile key={p.playbookId} style={{ marginBottom: "1rem" }} data-testid="playbook">
          <div className="cs-toolbar" style={{ justifyContent: "space-between" }}>
            <h3 style={{ fontSize: "1rem" }}>{p.name}</h3>
            <span className="cs-muted">
              {p.version === 0 ? "as shipped" : `version ${p.version}, ${when(p.savedAt)}`}
            </span>
          </div>
          <p>{p.description}</p>
          <p className="cs-muted">
            {p.triggerText}: {p.trigger === "manual" ? "started by hand" : p.autoStart ? "starts by itself" : "starts by hand only (turn on its start to let the trigger start it)"}
            {p.exitWhenNotAtRisk ? "; ends once the account is no longer at risk" : ""}
          </p>
          <ol style={{ margin: "0.5rem 0 0.5rem 1.25rem", listStyle: "decimal" }}>
            {p.steps.map((s, i) => (
              <li key={i}>
                {s.title} <span className="cs-muted">({ownerWords(s.owner)}, due {s.dueText})</span>
              </li>
            ))}
          </ol>
          <div className="cs-toolbar">
            <Button
              size="sm"
              kind="ghost"
              onClick={() => {
                setSaved(null);
                setEditing({
                  playbookId: p.playbookId,
                  name: p.name,
                  description: p.description,
                  trigger: p.trigger,
                  days: p.triggerDays ?? 120,
                  autoStart: p.autoStart,
                  exit: p.exitWhenNotAtRisk,
                  steps: p.steps.map((s) => ({ title: s.title, description: s.description, owner: s.owner, anchor: s.anchor, offset_days: s.offsetDays, kind: s.kind, priority: s.priority, template: s.template })),
                });
              }}
            >
              Edit {p.name}
            </Button>
            <CommandButton label={`Retire ${p.name}`} kind="ghost" path={`/api/v1/playbooks/${p.playbookId}/retire`} body={{}} onDone={refresh} />
          </div>
        </Tile>
      ))}
      {saved ? <p role="status">{saved}</p> : null}
      {editing ? (
        <Form onSubmit={submit} className="cs-form" aria-label={editing.playbookId ? `Edit ${editing.name}` : "New playbook"} style={{ marginTop: "1.5rem" }}>
          <h3>{editing.playbookId ? `A new version of "${editing.name}"` : "New playbook"}</h3>
          <TextInput id="playbook-name" labelText="Name" value={editing.name} onChange={(e) => set({ name: e.target.value })} invalid={Boolean(error?.field("name"))} invalidText={error?.field("name")} />
          <TextArea id="playbook-description" labelText="What it is for" rows={2} value={editing.description} onChange={(e) => set({ description: e.target.value })} />
          <div className="cs-toolbar">
            <Select id="playbook-trigger" labelText="Trigger" value={editing.trigger} onChange={(e) => set({ trigger: e.target.value })}>
              {TRIGGERS.map(([value, text]) => (
                <SelectItem key={value} value={value} text={text} />
              ))}
            </Select>
            {editing.trigger === "renewal_within" ? (
              <NumberInput id="playbook-days" label="Days before the renewal" min={1} max={730} value={editing.days} onChange={(_, { value }) => set({ days: Number(value) || 1 })} />
            ) : null}
          </div>
          <Checkbox id="playbook-auto" labelText="The trigger starts it by itself" disabled={editing.trigger === "manual"} checked={editing.autoStart && editing.trigger !== "manual"} onChange={(_, { checked }) => set({ autoStart: checked })} />
          <Checkbox id="playbook-exit" labelText="End it once the account is no longer at risk (a health score of 70 or more)" checked={editing.exit} onChange={(_, { checked }) => set({ exit: checked })} />
          {editing.steps.map((step, index) => (
            <StepEditor
              key={index}
              step={step}
              index={index}
              count={editing.steps.length}
              onChange={(s) => set({ steps: editing.steps.map((old, i) => (i === index ? s : old)) })}
              onMove={(by) => {
                const steps = [...editing.steps];
                const [moved] = steps.splice(index, 1);
                steps.splice(index + by, 0, moved);
                set({ steps });
              }}
              onRemove={() => set({ steps: editing.steps.filter((_, i) => i !== index) })}
            />
          ))}
          <Button kind="tertiary" size="sm" onClick={() => set({ steps: [...editing.steps, { ...NEW_STEP }] })} disabled={editing.steps.length >= 30}>
            Add a step
          </Button>
          {error ? <Refused error={error} /> : null}
          <div className="cs-toolbar">
            <Button type="submit">{editing.playbookId ? "Save a new version" : "Save the playbook"}</Button>
            <Button kind="secondary" onClick={() => setEditing(null)}>
              Cancel
            </Button>
          </div>
        </Form>
      ) : (
        <Button kind="tertiary" onClick={() => (setSaved(null), setEditing(EMPTY))}>
          New playbook
        </Button>
      )}
    </section>
  );
}
