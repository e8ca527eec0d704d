// A customer's custom fields as a form: one input per field, by section, in definition order,
// each field shown only while its condition holds. The 360 edits a customer's values with it;
// Settings › Custom fields shows the same form as a preview of a definition before it is saved.

import { useState } from "react";
import { graphql } from "./gql";
import { Button, Checkbox, DatePicker, DatePickerInput, FormGroup, InlineNotification, MultiSelect, NumberInput, Select, SelectItem, TextArea, TextInput } from "@carbon/react";

export interface FieldDefinitionView {
  key: string;
  label: string;
  section: string;
  fieldType: string;
  options: string[];
  required: boolean;
  default?: unknown;
  editable: boolean;
  condition?: { field: string; equals: unknown } | null;
}

export type FieldValues = Record<string, unknown>;

/** The definitions the caller may see, in order: what the form, the 360 and the settings read. */
export const FIELD_DEFINITIONS = graphql(`
  query FieldDefinitions {
    customFieldDefinitions {
      key
      label
      section
      fieldType
      options
      required
      default
      visibleTo
      editableBy
      editable
      condition {
        field
        equals
      }
    }
  }
`);

/** The field types, as a person reads them. */
export const FIELD_TYPE_WORDS: Record<string, string> = {
  text: "Text",
  long_text: "Long text",
  number: "Number",
  currency: "Amount of money",
  percent: "Percentage",
  date: "Date",
  single_select: "One choice from a list",
  multi_select: "Several choices from a list",
  checkbox: "Yes or no",
  url: "Web address",
  email: "E-mail address",
  user: "A user",
};

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Whether a field is shown for these values: no condition, or its controlling field holds the value. */
export function shown(field: FieldDefinitionView, values: FieldValues, all: FieldDefinitionView[]): boolean {
  if (!field.condition) return true;
  const controlling = all.find((f) => f.key === field.condition!.field);
  if (!controlling || !shown(controlling, values, all)) return false;
  const value = values[controlling.key] ?? controlling.default ?? null;
  return Array.isArray(value) ? value.some((v) => same(v, field.condition!.equals)) : same(value, field.condition!.equals);
}

/** A condition in words: "shown when Segment is “Public sector”". */
export function conditionWords(field: FieldDefinitionView, all: FieldDefinitionView[]): string {
  if (!field.condition) return "always shown";
  const controlling = all.find((f) => f.key === field.condition!.field);
  const equals = field.condition.equals;
  const value = typeof equals === "boolean" ? (equals ? "yes" : "no") : `“${String(equals)}”`;
  return `shown when ${controlling?.label ?? field.condition.field} is ${value}`;
}

/**
 * The form. `onSave` gets only the values that changed (null clears one); without it the form is
 * a preview and cannot be sent.
 */
export function CustomFieldsForm({
  fields,
  initial,
  onSave,
  idPrefix = "cf",
  error,
}: {
  fields: FieldDefinitionView[];
  initial: FieldValues;
  onSave?: (changed: FieldValues) => Promise<void>;
  idPrefix?: string;
  error?: { message: string; field: (name: string) => string | undefined } | null;
}) {
  const [values, setValues] = useState<FieldValues>(initial);
  const [busy, setBusy] = useState(false);
  const sections = [...new Set(fields.map((f) => f.section))];
  const set = (key: string, value: unknown) => setValues({ ...values, [key]: value });
  const changed = Object.fromEntries(
    Object.entries(values)
      .filter(([key, value]) => !same(value, initial[key] ?? null))
      .map(([key, value]) => [key, value === "" ? null : value]),
  );
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    if (!onSave) return;
    setBusy(true);
    try {
      await onSave(changed);
    } finally {
      setBusy(false);
    }
  };
  const fieldError = (key: string) => error?.field(`values.${key}`) ?? error?.field(key);
  return (
    <form onSubmit={submit} className="cs-form" aria-label={onSave ? "Custom fields" : "Preview of the custom-field form"}>
      {sections.map((section) => (
        <FormGroup key={section} legendText={section}>
          {fields
            .filter((f) => f.section === section && shown(f, values, fields))
            .map((field) => (
              <FieldInput
                key={field.key}
                id={`${idPrefix}-${field.key}`}
                field={field}
                value={values[field.key] ?? null}
                onChange={(value) => set(field.key, value)}
                invalidText={fieldError(field.key)}
              />
            ))}
        </FormGroup>
      ))}
      {error && !fields.some((f) => fieldError(f.key)) ? (
        <InlineNotification kind="error" title="Refused" subtitle={error.message} hideCloseButton lowContrast role="alert" />
      ) : null}
      {onSave ? (
        <Button type="submit" disabled={busy || Object.keys(changed).length === 0}>
          {busy ? "Saving…" : "Save the fields"}
        </Button>
      ) : null}
    </form>
  );
}

/** One field's input, as its type asks. */
export function FieldInput({
  id,
  field,
  value,
  onChange,
  invalidText,
}: {
  id: string;
  field: FieldDefinitionView;
  value: unknown;
  onChange: (value: unknown) => void;
  invalidText?: string;
}) {
  const label = `${field.label}${field.required ? " (required)" : ""}`;
  const common = { id, disabled: !field.editable, invalid: Boolean(invalidText), invalidText };
  const helper = field.editable ? undefined : "Your role may not change it";
  switch (field.fieldType) {
    case "long_text":
      return <TextArea {...common} labelText={label} helperText={helper} value={(value as string) ?? ""} onChange={(e) => onChange(e.target.value)} rows={3} />;
    case "number":
    case "percent":
      return (
        <NumberInput
          {...common}
          label={field.fieldType === "percent" ? `${label} (%)` : label}
          helperText={helper}
          hideSteppers
          allowEmpty
          value={(value as number | null) ?? ""}
          onChange={(_, { value: v }) => onChange(v === "" || v === undefined ? null : Number(v))}
        />
      );
    case "currency":
      return (
        <TextInput
          {...common}
          labelText={`${label} ($)`}
          helperText={helper}
          inputMode="decimal"
          value={value == null ? "" : String(value)}
          onChange={(e) => onChange(e.target.value.trim() === "" ? null : e.target.value.trim())}
        />
      );
    case "date":
      return (
        <DatePicker datePickerType="single" dateFormat="Y-m-d" value={(value as string) ?? ""} onChange={(dates) => onChange(dates[0] ? isoDay(dates[0]) : null)}>
          <DatePickerInput {...common} labelText={label} helperText={helper ?? "YYYY-MM-DD"} placeholder="yyyy-mm-dd" />
        </DatePicker>
      );
    case "single_select":
      return (
        <Select {...common} labelText={label} helperText={helper} value={(value as string) ?? ""} onChange={(e) => onChange(e.target.value || null)}>
          <SelectItem value="" text="—" />
          {field.options.map((option) => (
            <SelectItem key={option} value={option} text={option} />
          ))}
        </Select>
      );
    case "multi_select":
      return (
        <MultiSelect
          {...common}
          titleText={label}
          label="Choose"
          helperText={helper}
          items={field.options}
          itemToString={(item) => item ?? ""}
          initialSelectedItems={(value as string[]) ?? []}
          onChange={({ selectedItems }) => onChange(selectedItems && selectedItems.length ? selectedItems : null)}
        />
      );
    case "checkbox":
      return <Checkbox id={id} disabled={!field.editable} labelText={label} checked={value === true} onChange={(_, { checked }) => onChange(checked)} />;
    default:
      return (
        <TextInput
          {...common}
          labelText={label}
          helperText={helper}
          type={field.fieldType === "email" ? "email" : field.fieldType === "url" ? "url" : "text"}
          value={(value as string) ?? ""}
          onChange={(e) => onChange(e.target.value)}
        />
      );
  }
}

function isoDay(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
