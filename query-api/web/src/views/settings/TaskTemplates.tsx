// Settings › Task templates (admins and managers): what a task and its subtasks look like, due a
// number of days after the day the template is used. Saving an existing one makes a new version;
// retiring one takes it off the 360's list (the tasks made from it stay).

import { useState } from "react";
import { useQuery } from "urql";
import { Button, Form, NumberInput, Select, SelectItem, TableBody, TableCell, TableHead, TableHeader, TableRow, TextArea, TextInput } from "@carbon/react";
import { useSession } from "../../App";
import { CommandError, command } from "../../api/commands";
import { Table } from "../../components";
import { when, words } from "../../format";
import { CommandButton } from "../../forms";
import { TASK_TEMPLATES } from "../../taskTemplates";
import { Refused } from "./common";

/** Subtasks as lines of "title | days". */
function parseSubtasks(text: string): Array<{ title: string; due_offset_days: number }> {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [title, days] = line.split("|").map((part) => part.trim());
      return { title, due_offset_days: Number(days ?? 0) || 0 };
    });
}

interface Editing {
  templateId: string | null;
  name: string;
  title: string;
  description: string;
  kind: string;
  priority: string;
  due: number;
  subtasks: string;
}

const EMPTY: Editing = { templateId: null, name: "", title: "", description: "", kind: "onboarding", priority: "medium", due: 7, subtasks: "" };

export function TaskTemplates() {
  const session = useSession();
  const [{ data }, refetch] = useQuery({ query: TASK_TEMPLATES });
  const [editing, setEditing] = useState<Editing>(EMPTY);
  const [error, setError] = useState<CommandError | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const set = (patch: Partial<Editing>) => setEditing({ ...editing, ...patch });
  const refresh = () => refetch({ requestPolicy: "network-only" });
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setError(null);
    const body = {
      name: editing.name,
      title: editing.title,
      description: editing.description,
      kind: editing.kind,
      priority: editing.priority,
      due_offset_days: editing.due,
      subtasks: parseSubtasks(editing.subtasks),
    };
    try {
      if (editing.templateId) await command(session, "PUT", `/api/v1/task-templates/${editing.templateId}`, body);
      else await command(session, "POST", "/api/v1/task-templates", body);
      setSaved(`Saved "${editing.name}"`);
      setEditing(EMPTY);
      refresh();
    } catch (e) {
      setError(CommandError.from(e));
    }
  };
  const templates = data?.taskTemplates ?? [];
  return (
    <section aria-labelledby="templates-heading">
      <h2 id="templates-heading">Task templates</h2>
      {templates.length ? (
        <Table size="md" aria-labelledby="templates-heading">
          <TableHead>
            <TableRow>
              <TableHeader>Template</TableHeader>
              <TableHeader>Task</TableHeader>
              <TableHeader>Subtasks</TableHeader>
              <TableHeader>Version</TableHeader>
              <TableHeader>
                <span className="cs-visually-hidden">Actions</span>
              </TableHeader>
            </TableRow>
          </TableHead>
          <TableBody>
            {templates.map((t) => (
              <TableRow key={t.templateId} data-testid="task-template">
                <TableCell>{t.name}</TableCell>
                <TableCell>
                  {t.title} <span className="cs-muted">({words(t.kind)}, {t.priority}, due day {t.dueOffsetDays})</span>
                </TableCell>
                <TableCell>{t.subtasks.map((s) => `${s.title} (day ${s.dueOffsetDays})`).join(", ") || "—"}</TableCell>
                <TableCell>
                  {t.version}, {when(t.savedAt)}
                </TableCell>
                <TableCell>
                  <div className="cs-toolbar">
                    <Button
                      size="sm"
                      kind="ghost"
                      onClick={() =>
                        setEditing({
                          templateId: t.templateId,
                          name: t.name,
                          title: t.title,
                          description: t.description,
                          kind: t.kind,
                          priority: t.priority,
                          due: t.dueOffsetDays,
                          subtasks: t.subtasks.map((s) => `${s.title} | ${s.dueOffsetDays}`).join("\n"),
                        })
                      }
                    >
                      Edit {t.name}
                    </Button>
                    <CommandButton label={`Retire ${t.name}`} kind="ghost" path={`/api/v1/task-templates/${t.templateId}/retire`} body={{}} onDone={refresh} />
                  </div>
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      ) : (
        <p className="cs-muted">No template yet.</p>
      )}
      <Form onSubmit={submit} className="cs-form" aria-label={editing.templateId ? `Edit ${editing.name}` : "New task template"} style={{ marginTop: "1.5rem" }}>
        <h3>{editing.templateId ? `A new version of "${editing.name}"` : "New template"}</h3>
        <TextInput id="template-name" labelText="Template name" value={editing.name} onChange={(e) => set({ name: e.target.value })} invalidText={error?.field("name")} invalid={Boolean(error?.field("name"))} />
        <TextInput id="template-title" labelText="Task title" value={editing.title} onChange={(e) => set({ title: e.target.value })} invalidText={error?.field("title")} invalid={Boolean(error?.field("title"))} />
        <TextArea id="template-description" labelText="Description" rows={2} value={editing.description} onChange={(e) => set({ description: e.target.value })} />
        <div className="cs-toolbar">
          <Select id="template-kind" labelText="Kind" value={editing.kind} onChange={(e) => set({ kind: e.target.value })}>
            {["follow_up", "qbr_prep", "escalation", "onboarding", "renewal", "general"].map((k) => (
              <SelectItem key={k} value={k} text={k.replace("_", " ")} />
            ))}
          </Select>
          <Select id="template-priority" labelText="Priority" value={editing.priority} onChange={(e) => set({ priority: e.target.value })}>
            {["low", "medium", "high", "urgent"].map((p) => (
              <SelectItem key={p} value={p} text={p} />
            ))}
          </Select>
          <NumberInput id="template-due" label="Due, days after the start" min={0} max={3650} value={editing.due} onChange={(_, { value }) => set({ due: Number(value) || 0 })} />
        </div>
        <TextArea
          id="template-subtasks"
          labelText='Subtasks, one a line: "title | days after the start"'
          rows={3}
          value={editing.subtasks}
          onChange={(e) => set({ subtasks: e.target.value })}
        />
        {error ? <Refused error={error} /> : null}
        {saved ? <p role="status">{saved}</p> : null}
        <div className="cs-toolbar">
          <Button type="submit">{editing.templateId ? "Save a new version" : "Save the template"}</Button>
          {editing.templateId ? (
            <Button kind="secondary" onClick={() => setEditing(EMPTY)}>
              Cancel
            </Button>
          ) : null}
        </div>
      </Form>
    </section>
  );
}
