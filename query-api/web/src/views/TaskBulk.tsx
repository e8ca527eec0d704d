// Bulk task actions: the selected tasks reassigned, rescheduled (to a day, or moved by some days)
// or completed with one outcome, in one command (all or none; docs/DOMAIN.md "Bulk task actions").

import { useState } from "react";
import { Button, Modal, NumberInput, RadioButton, RadioButtonGroup, TextArea, TextInput } from "@carbon/react";
import { useSession } from "../App";
import { CommandError, command } from "../api/commands";
import { count } from "../format";

export interface SelectedTask {
  title: string;
  dueDate: string;
}

type Action = "reassign" | "reschedule" | "complete";

/** What a task should read once the action has been applied, to read the list back until it does. */
export type Expected = (task: { taskId: string; assigneeId: string; dueDate: string } | undefined, before: SelectedTask) => boolean;

export function TaskBulk({ selected, onDone }: { selected: Map<string, SelectedTask>; onDone: (expected: Expected | null) => void }) {
  const [action, setAction] = useState<Action | null>(null);
  if (selected.size === 0) return <span className="cs-muted">Select tasks to reassign, reschedule or complete them together.</span>;
  return (
    <>
      <span data-testid="tasks-selected">{count(selected.size, "task", "tasks")} selected:</span>
      <Button kind="tertiary" size="md" onClick={() => setAction("reassign")}>
        Reassign
      </Button>
      <Button kind="tertiary" size="md" onClick={() => setAction("reschedule")}>
        Reschedule
      </Button>
      <Button kind="tertiary" size="md" onClick={() => setAction("complete")}>
        Complete
      </Button>
      {action ? (
        <BulkDialog
          action={action}
          selected={selected}
          onClose={(expected) => {
            setAction(null);
            if (expected) onDone(expected);
          }}
        />
      ) : null}
    </>
  );
}

const HEADINGS: Record<Action, string> = { reassign: "Reassign", reschedule: "Reschedule", complete: "Complete" };

function BulkDialog({ action, selected, onClose }: { action: Action; selected: Map<string, SelectedTask>; onClose: (expected: Expected | null) => void }) {
  const session = useSession();
  const [assignee, setAssignee] = useState("");
  const [reason, setReason] = useState("");
  const [how, setHow] = useState<"to" | "shift">("shift");
  const [day, setDay] = useState("");
  const [days, setDays] = useState(7);
  const [outcome, setOutcome] = useState("");
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null }>({ busy: false, error: null });
  const ready =
    action === "reassign" ? Boolean(assignee.trim()) : action === "complete" ? Boolean(outcome.trim()) : how === "to" ? Boolean(day) : days !== 0;
  const submit = async () => {
    const body =
      action === "reassign"
        ? { reassign: { assignee_id: assignee.trim(), reason: reason.trim() || null } }
        : action === "complete"
          ? { complete: { outcome: outcome.trim() } }
          : how === "to"
            ? { reschedule_to: { due_date: day } }
            : { shift: { days } };
    setState({ busy: true, error: null });
    try {
      await command(session, "POST", "/api/v1/tasks/bulk", { task_ids: [...selected.keys()], action: body });
      const shifted = (due: string) => {
        const date = new Date(`${due}T12:00:00Z`);
        date.setUTCDate(date.getUTCDate() + days);
        return date.toISOString().slice(0, 10);
      };
      onClose((task, before) =>
        action === "reassign"
          ? task?.assigneeId === assignee.trim()
          : action === "complete"
            ? task === undefined
            : task === undefined || task.dueDate === (how === "to" ? day : shifted(before.dueDate)),
      );
    } catch (e) {
      setState({ busy: false, error: CommandError.from(e) });
    }
  };
  const names = [...selected.values()].map((t) => t.title);
  return (
    <Modal
      open
      modalHeading={`${HEADINGS[action]} ${count(selected.size, "task", "tasks")}`}
      primaryButtonText={state.busy ? "Working…" : HEADINGS[action]}
      primaryButtonDisabled={state.busy || !ready}
      secondaryButtonText="Cancel"
      onRequestClose={() => onClose(null)}
      onRequestSubmit={() => void submit()}
    >
      <p style={{ marginBottom: "1rem" }}>
        {names.slice(0, 10).join("; ")}
        {names.length > 10 ? ` and ${names.length - 10} more` : ""}. All change together, or none.
      </p>
      {action === "reassign" ? (
        <>
          <TextInput id="bulk-assignee" labelText="Give them to (user id)" value={assignee} onChange={(e) => setAssignee(e.target.value)} />
          <TextInput id="bulk-reason" labelText="Why (optional)" value={reason} onChange={(e) => setReason(e.target.value)} />
        </>
      ) : null}
      {action === "reschedule" ? (
        <>
          <RadioButtonGroup legendText="How" name="bulk-how" valueSelected={how} onChange={(value) => setHow(value as "to" | "shift")}>
            <RadioButton id="bulk-shift" value="shift" labelText="Move each due date by some days" />
            <RadioButton id="bulk-to" value="to" labelText="Set every due date to one day" />
          </RadioButtonGroup>
          {how === "shift" ? (
            <NumberInput id="bulk-days" label="Days (negative: earlier)" min={-365} max={365} value={days} onChange={(_, { value }) => setDays(Number(value))} />
          ) : (
            <TextInput id="bulk-day" type="date" labelText="Due on" value={day} onChange={(e) => setDay(e.target.value)} />
          )}
        </>
      ) : null}
      {action === "complete" ? <TextArea id="bulk-outcome" labelText="What came of them (kept with each task)" value={outcome} onChange={(e) => setOutcome(e.target.value)} /> : null}
      {state.error ? (
        <p role="alert" className="cs-error-text" style={{ marginTop: "1rem" }}>
          {state.error.message}
        </p>
      ) : null}
    </Modal>
  );
}
