// Settings › Custom fields (admins define; everyone else reads what they may see): the fields in
// force by section and in order, defining and changing one with a live preview of the form a
// CSM will fill in on the 360, moving one up or down, and retiring one (its values stay in the
// history).

import { useState } from "react";
import { useQuery } from "urql";
import {
  Button,
  Checkbox,
  Form,
  FormGroup,
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
  TextArea,
  TextInput,
} from "@carbon/react";
import { useSession } from "../../App";
import { CommandError, command } from "../../api/commands";
import { Table } from "../../components";
import { CustomFieldsForm, FIELD_DEFINITIONS, FIELD_TYPE_WORDS, conditionWords, type FieldDefinitionView } from "../../fieldsForm";
import { Refused } from "./common";


const ROLES: Array<[string, string]> = [
  ["admin", "Administrators"],
  ["manager", "Managers"],
  ["csm", "CSMs"],
  ["partner", "Partners"],
  ["readonly", "Read-only users"],
  ["auditor", "Auditors"],
];
const EDITING_ROLES = ROLES.slice(0, 4);
const roleWords = (roles: string[]) =>
  roles.length === ROLES.length ? "everyone" : roles.map((r) => ROLES.find(([k]) => k === r)?.[1].toLowerCase() ?? r).join(", ") || "no one";

type Definition = FieldDefinitionView & { visibleTo: string[]; editableBy: string[] };

interface Draft {
  key: string;
  label: string;
  section: string;
  fieldType: string;
  options: string;
  required: boolean;
  defaultValue: string;
  visibleTo: string[];
  editableBy: string[];
  conditionField: string;
  conditionEquals: string;
}

const EMPTY: Draft = {
  key: "",
  label: "",
  section: "General",
  fieldType: "text",
  options: "",
  required: false,
  defaultValue: "",
  visibleTo: ROLES.map(([r]) => r),
  editableBy: ["admin", "manager", "csm"],
  conditionField: "",
  conditionEquals: "",
};

/** A key from a label: "Renewal owner" → "renewal_owner". */
const keyOf = (label: string) =>
  label
    .toLowerCase()
    .normalize("NFD")
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^[^a-z]+|_+$/g, "")
    .slice(0, 63);

const isSelect = (type: string) => type === "single_select" || type === "multi_select";

/** The typed value of a text the admin typed, for the field's type (a default or a condition's value). */
function typed(type: string, text: string): unknown {
  const t = text.trim();
  if (t === "") return null;
  if (type === "checkbox") return t === "yes" || t === "true";
  if (type === "number" || type === "percent") return Number.isFinite(Number(t)) ? Number(t) : t;
  if (type === "multi_select") return t.split(",").map((s) => s.trim()).filter(Boolean);
  return t;
}

function asText(value: unknown): string {
  if (value == null) return "";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

function draftOf(definition: Definition): Draft {
  return {
    key: definition.key,
    label: definition.label,
    section: definition.section,
    fieldType: definition.fieldType,
    options: definition.options.join("\n"),
    required: definition.required,
    defaultValue: asText(definition.default),
    visibleTo: definition.visibleTo,
    editableBy: definition.editableBy,
    conditionField: definition.condition?.field ?? "",
    conditionEquals: asText(definition.condition?.equals),
  };
}

function definitionOf(draft: Draft, all: Definition[]): Definition {
  const controlling = all.find((f) => f.key === draft.conditionField);
  return {
    key: draft.key || keyOf(draft.label) || "new_field",
    label: draft.label || "New field",
    section: draft.section.trim() || "General",
    fieldType: draft.fieldType,
    options: isSelect(draft.fieldType) ? draft.options.split("\n").map((s) => s.trim()).filter(Boolean) : [],
    required: draft.required,
    default: typed(draft.fieldType, draft.defaultValue),
    editable: true,
    visibleTo: draft.visibleTo,
    editableBy: draft.editableBy,
    condition: draft.conditionField && controlling ? { field: draft.conditionField, equals: typed(controlling.fieldType === "multi_select" ? "text" : controlling.fieldType, draft.conditionEquals) } : null,
  };
}

export function CustomFields() {
  const session = useSession();
  const admin = session.role === "admin";
  const [{ data, error }, refetch] = useQuery({ query: FIELD_DEFINITIONS, requestPolicy: "cache-and-network" });
  const [editing, setEditing] = useState<{ draft: Draft; isNew: boolean } | null>(null);
  const [retiring, setRetiring] = useState<Definition | null>(null);
  const [failure, setFailure] = useState<CommandError | null>(null);
  const refresh = () => refetch({ requestPolicy: "network-only" });
  if (error) return <InlineNotification kind="error" title="The custom fields could not be read" subtitle={error.message} hideCloseButton lowContrast />;
  if (!data) return <InlineLoading description="Reading the custom fields" />;
  const fields = data.customFieldDefinitions as Definition[];
  const move = async (index: number, by: -1 | 1) => {
    const keys = fields.map((f) => f.key);
    [keys[index], keys[index + by]] = [keys[index + by], keys[index]];
    try {
      setFailure(null);
      await command(session, "PUT", "/api/v1/custom-field-order", { keys });
      refresh();
    } catch (e) {
      setFailure(CommandError.from(e));
    }
  };
  return (
    <div style={{ maxWidth: "72rem" }}>
      <p className="cs-muted" style={{ margin: "1rem 0" }}>
        Custom fields add a team's own facts to every customer: they appear on the 360 in their section and order, can be columns of the customer list,
        and are imported and exported like the built-in fields. {admin ? "" : "Only an administrator may define them."}
      </p>
      {admin && !editing ? (
        <Button onClick={() => setEditing({ draft: EMPTY, isNew: true })} style={{ marginBottom: "1rem" }}>
          Define a field
        </Button>
      ) : null}
      {editing ? (
        <FieldEditor
          key={editing.draft.key || "new"}
          initial={editing.draft}
          isNew={editing.isNew}
          others={fields.filter((f) => f.key !== editing.draft.key)}
          all={fields}
          onDone={(saved) => {
            setEditing(null);
            if (saved) refresh();
          }}
        />
      ) : null}
      {failure ? <Refused error={failure} /> : null}
      {fields.length === 0 ? (
        <p className="cs-muted">No custom field yet.</p>
      ) : (
        <Table size="md" aria-label="Custom fields">
          <TableHead>
            <TableRow>
              <TableHeader>Field</TableHeader>
              <TableHeader>Section</TableHeader>
              <TableHeader>Kind</TableHeader>
              <TableHeader>Who sees it · who changes it</TableHeader>
              <TableHeader>When</TableHeader>
              {admin ? (
                <TableHeader>
                  <span className="cs-visually-hidden">Actions</span>
                </TableHeader>
              ) : null}
            </TableRow>
          </TableHead>
          <TableBody>
            {fields.map((field, index) => (
              <TableRow key={field.key} data-testid="field-row">
                <TableCell>
                  {field.label} {field.required ? <Tag size="sm">required</Tag> : null}
                  <div className="cs-muted">{field.key}</div>
                </TableCell>
                <TableCell>{field.section}</TableCell>
                <TableCell>
                  {FIELD_TYPE_WORDS[field.fieldType] ?? field.fieldType}
                  {field.options.length ? <div className="cs-muted">{field.options.join(", ")}</div> : null}
                  {field.default != null ? <div className="cs-muted">default {asText(field.default)}</div> : null}
                </TableCell>
                <TableCell>
                  {roleWords(field.visibleTo)} · {roleWords(field.editableBy)}
                </TableCell>
                <TableCell>{conditionWords(field, fields)}</TableCell>
                {admin ? (
                  <TableCell>
                    <Button kind="ghost" size="sm" onClick={() => setEditing({ draft: draftOf(field), isNew: false })}>
                      Change
                    </Button>
                    <Button kind="ghost" size="sm" disabled={index === 0} onClick={() => move(index, -1)} aria-label={`Move ${field.label} up`}>
                      Up
                    </Button>
                    <Button kind="ghost" size="sm" disabled={index === fields.length - 1} onClick={() => move(index, 1)} aria-label={`Move ${field.label} down`}>
                      Down
                    </Button>
                    <Button kind="ghost" size="sm" onClick={() => setRetiring(field)}>
                      Retire
                    </Button>
                  </TableCell>
                ) : null}
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
      <Modal
        open={retiring !== null}
        danger
        modalHeading={`Retire “${retiring?.label ?? ""}”?`}
        primaryButtonText="Retire the field"
        secondaryButtonText="Keep it"
        onRequestClose={() => setRetiring(null)}
        onRequestSubmit={async () => {
          const field = retiring;
          setRetiring(null);
          if (!field) return;
          try {
            setFailure(null);
            await command(session, "POST", `/api/v1/custom-fields/${field.key}/retire`);
            refresh();
          } catch (e) {
            setFailure(CommandError.from(e));
          }
        }}
      >
        <p>It leaves the 360, the forms and the list. The values customers had stay in their history; its key cannot be used again.</p>
      </Modal>
    </div>
  );
}

function FieldEditor({
  initial,
  isNew,
  others,
  all,
  onDone,
}: {
  initial: Draft;
  isNew: boolean;
  others: Definition[];
  all: Definition[];
  onDone: (saved: boolean) => void;
}) {
  const session = useSession();
  const [draft, setDraft] = useState<Draft>(initial);
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null }>({ busy: false, error: null });
  const set = (patch: Partial<Draft>) => setDraft({ ...draft, ...patch });
  const toggle = (list: string[], item: string, on: boolean) => (on ? [...new Set([...list, item])] : list.filter((x) => x !== item));
  const definition = definitionOf(draft, all);
  const preview = isNew ? [...all, definition] : all.map((f) => (f.key === definition.key ? definition : f));
  const invalid = (name: string) => ({ invalid: Boolean(state.error?.field(name)), invalidText: state.error?.field(name) });
  const save = async (event: React.FormEvent) => {
    event.preventDefault();
    setState({ busy: true, error: null });
    const body = {
      key: definition.key,
      label: draft.label.trim(),
      section: definition.section,
      field_type: definition.fieldType,
      options: definition.options,
      required: definition.required,
      default: definition.default,
      visible_to: definition.visibleTo,
      editable_by: definition.editableBy,
      condition: definition.condition,
    };
    try {
      if (isNew) await command(session, "POST", "/api/v1/custom-fields", body);
      else await command(session, "PUT", `/api/v1/custom-fields/${definition.key}`, body);
      onDone(true);
    } catch (e) {
      setState({ busy: false, error: CommandError.from(e) });
    }
  };
  const shownOnFields = ["key", "label", "section", "field_type", "options", "default", "visible_to", "editable_by", "condition", "condition.field", "condition.equals"];
  return (
    <section className="cs-section cs-two" aria-label={isNew ? "Define a field" : `Change ${initial.label}`} style={{ marginBottom: "2rem" }}>
      <Form onSubmit={save} className="cs-form" aria-label={isNew ? "Define a field" : `Change ${initial.label}`}>
        <h2>{isNew ? "A new field" : `Change “${initial.label}”`}</h2>
        <TextInput id="field-label" labelText="Label" value={draft.label} onChange={(e) => set({ label: e.target.value, key: isNew ? keyOf(e.target.value) : draft.key })} {...invalid("label")} />
        <TextInput
          id="field-key"
          labelText="Key (in imports, exports and the API)"
          helperText={isNew ? "Lower-case letters, digits and _; it cannot change later" : "A key never changes"}
          value={draft.key}
          disabled={!isNew}
          onChange={(e) => set({ key: e.target.value })}
          {...invalid("key")}
        />
        <TextInput id="field-section" labelText="Section" value={draft.section} onChange={(e) => set({ section: e.target.value })} {...invalid("section")} />
        <Select id="field-type" labelText="Kind" value={draft.fieldType} disabled={!isNew} onChange={(e) => set({ fieldType: e.target.value })} {...invalid("field_type")}>
          {Object.entries(FIELD_TYPE_WORDS).map(([type, label]) => (
            <SelectItem key={type} value={type} text={label} />
          ))}
        </Select>
        {isSelect(draft.fieldType) ? (
          <TextArea id="field-options" labelText="Choices, one a line" rows={4} value={draft.options} onChange={(e) => set({ options: e.target.value })} {...invalid("options")} />
        ) : null}
        <TextInput
          id="field-default"
          labelText="Default (optional)"
          helperText={draft.fieldType === "checkbox" ? "yes or no" : draft.fieldType === "multi_select" ? "choices separated by commas" : "what a customer without a value shows"}
          value={draft.defaultValue}
          onChange={(e) => set({ defaultValue: e.target.value })}
          {...invalid("default")}
        />
        <Checkbox id="field-required" labelText="Required" checked={draft.required} onChange={(_, { checked }) => set({ required: checked })} />
        <FormGroup legendText="Who sees it">
          {ROLES.map(([role, label]) => (
            <Checkbox key={role} id={`visible-${role}`} labelText={label} checked={draft.visibleTo.includes(role)} onChange={(_, { checked }) => set({ visibleTo: toggle(draft.visibleTo, role, checked) })} />
          ))}
        </FormGroup>
        <FormGroup legendText="Who changes it">
          {EDITING_ROLES.map(([role, label]) => (
            <Checkbox key={role} id={`editable-${role}`} labelText={label} checked={draft.editableBy.includes(role)} onChange={(_, { checked }) => set({ editableBy: toggle(draft.editableBy, role, checked) })} />
          ))}
        </FormGroup>
        <Select id="field-condition" labelText="Show it only when" value={draft.conditionField} onChange={(e) => set({ conditionField: e.target.value })} {...invalid("condition")}>
          <SelectItem value="" text="always" />
          {others.map((f) => (
            <SelectItem key={f.key} value={f.key} text={f.label} />
          ))}
        </Select>
        {draft.conditionField ? (
          (() => {
            const controlling = others.find((f) => f.key === draft.conditionField);
            return controlling && controlling.options.length ? (
              <Select id="field-condition-equals" labelText={`${controlling.label} is`} value={draft.conditionEquals} onChange={(e) => set({ conditionEquals: e.target.value })}>
                <SelectItem value="" text="choose" />
                {controlling.options.map((o) => (
                  <SelectItem key={o} value={o} text={o} />
                ))}
              </Select>
            ) : (
              <TextInput
                id="field-condition-equals"
                labelText={`${controlling?.label ?? "It"} is`}
                helperText={controlling?.fieldType === "checkbox" ? "yes or no" : undefined}
                value={draft.conditionEquals}
                onChange={(e) => set({ conditionEquals: e.target.value })}
              />
            );
          })()
        ) : null}
        {state.error && !shownOnFields.some((f) => state.error?.field(f)) ? <Refused error={state.error} /> : null}
        {state.error?.field("condition.field") || state.error?.field("condition.equals") ? (
          <Refused error={new CommandError(422, "condition", (state.error.field("condition.field") ?? state.error.field("condition.equals"))!, {})} />
        ) : null}
        <div className="cs-toolbar">
          <Button type="submit" disabled={state.busy || !draft.label.trim()}>
            {state.busy ? "Saving…" : isNew ? "Define the field" : "Save the change"}
          </Button>
          <Button kind="secondary" onClick={() => onDone(false)}>
            Cancel
          </Button>
        </div>
      </Form>
      <div aria-label="Preview">
        <h2>The form on the 360, with this field</h2>
        <p className="cs-muted">Try it: conditions show and hide fields as you fill it in. Nothing here is saved.</p>
        <CustomFieldsForm key={JSON.stringify(definition)} fields={preview} initial={{}} idPrefix="preview" />
      </div>
    </section>
  );
}
