// The customer list's custom fields: which ones show as columns (the user's choice, kept in the
// address and so in saved views), and a filter on one field, its control fitting the field's
// type: a choice for lists and yes/no fields, "contains" for text, a range for numbers and dates.

import { MultiSelect, Select, SelectItem, TextInput } from "@carbon/react";
import type { FieldDefinitionView } from "../fieldsForm";
import type { CustomFieldFilter as Filter } from "../gql/graphql";

const TEXT_TYPES = ["text", "long_text", "url", "email", "user"];
const RANGE_TYPES = ["number", "currency", "percent", "date"];

/** The filter the address describes (`cf`, `cfv`, `cfmin`, `cfmax`), as the API takes it. */
export function customFieldFilter(definitions: FieldDefinitionView[], params: URLSearchParams): Filter | null {
  const definition = definitions.find((d) => d.key === params.get("cf"));
  if (!definition) return null;
  const value = params.get("cfv") ?? "";
  const min = params.get("cfmin") ?? "";
  const max = params.get("cfmax") ?? "";
  const typed = (text: string) => (definition.fieldType === "date" || definition.fieldType === "currency" ? text : Number(text));
  if (RANGE_TYPES.includes(definition.fieldType)) {
    if (!min && !max) return null;
    return { key: definition.key, min: min ? typed(min) : null, max: max ? typed(max) : null };
  }
  if (!value) return null;
  if (definition.fieldType === "checkbox") return { key: definition.key, equals: value === "yes" };
  if (TEXT_TYPES.includes(definition.fieldType)) return { key: definition.key, contains: value };
  return { key: definition.key, equals: value };
}

export function ColumnChooser({ definitions, chosen, onChange }: { definitions: FieldDefinitionView[]; chosen: string[]; onChange: (keys: string[]) => void }) {
  if (definitions.length === 0) return null;
  return (
    <MultiSelect
      id="customers-columns"
      titleText="Custom-field columns"
      label={chosen.length ? `${chosen.length} shown` : "Choose columns"}
      items={definitions}
      itemToString={(item) => item?.label ?? ""}
      selectedItems={definitions.filter((d) => chosen.includes(d.key))}
      onChange={({ selectedItems }) => onChange((selectedItems ?? []).map((d) => d.key))}
      sortItems={(items) => [...items]}
    />
  );
}

export function CustomFieldFilter({
  definitions,
  params,
  choose,
}: {
  definitions: FieldDefinitionView[];
  params: URLSearchParams;
  choose: (changes: Record<string, string>) => void;
}) {
  if (definitions.length === 0) return null;
  const definition = definitions.find((d) => d.key === params.get("cf")) ?? null;
  return (
    <>
      <Select id="customers-cf" labelText="Custom field" value={definition?.key ?? ""} onChange={(e) => choose({ cf: e.target.value, cfv: "", cfmin: "", cfmax: "" })}>
        <SelectItem value="" text="No custom-field filter" />
        {definitions.map((d) => (
          <SelectItem key={d.key} value={d.key} text={d.label} />
        ))}
      </Select>
      {definition ? <ValueControl definition={definition} params={params} choose={choose} /> : null}
    </>
  );
}

function ValueControl({ definition, params, choose }: { definition: FieldDefinitionView; params: URLSearchParams; choose: (changes: Record<string, string>) => void }) {
  const value = params.get("cfv") ?? "";
  if (definition.fieldType === "single_select" || definition.fieldType === "multi_select") {
    return (
      <Select id="customers-cf-value" labelText={definition.fieldType === "multi_select" ? `${definition.label} includes` : `${definition.label} is`} value={value} onChange={(e) => choose({ cfv: e.target.value })}>
        <SelectItem value="" text="any value" />
        {definition.options.map((option) => (
          <SelectItem key={option} value={option} text={option} />
        ))}
      </Select>
    );
  }
  if (definition.fieldType === "checkbox") {
    return (
      <Select id="customers-cf-value" labelText={definition.label} value={value} onChange={(e) => choose({ cfv: e.target.value })}>
        <SelectItem value="" text="either" />
        <SelectItem value="yes" text="yes" />
        <SelectItem value="no" text="no" />
      </Select>
    );
  }
  if (RANGE_TYPES.includes(definition.fieldType)) {
    const type = definition.fieldType === "date" ? "date" : "number";
    return (
      <>
        <TextInput id="customers-cf-min" type={type} labelText={`${definition.label} from`} value={params.get("cfmin") ?? ""} onChange={(e) => choose({ cfmin: e.target.value })} />
        <TextInput id="customers-cf-max" type={type} labelText={`${definition.label} to`} value={params.get("cfmax") ?? ""} onChange={(e) => choose({ cfmax: e.target.value })} />
      </>
    );
  }
  return <TextInput id="customers-cf-value" labelText={`${definition.label} contains`} value={value} onChange={(e) => choose({ cfv: e.target.value })} />;
}
