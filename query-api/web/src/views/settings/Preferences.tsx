// My notifications: where alerts reach the user besides the app (e-mail, Slack), which ones, how
// often, and the user's time zone (docs/NOTIFICATIONS.md).

import { useEffect, useState } from "react";
import { useQuery } from "urql";
import {
  Button,
  Checkbox,
  ComboBox,
  Form,
  FormGroup,
  InlineLoading,
  InlineNotification,
  RadioButton,
  RadioButtonGroup,
  Select,
  SelectItem,
  TextInput,
} from "@carbon/react";
import { graphql } from "../../gql";
import { useSession } from "../../App";
import { CommandError, command, read } from "../../api/commands";
import { DEVICE_ZONE, setTimeZone, when } from "../../format";
import { forgetOwnCsm } from "../../book";
import { ALERT_KINDS, Refused } from "./common";

/** The fields of the preferences form that show their own refusal. */
const SHOWN_ON_FIELDS = ["email", "slack_user_id", "slack_channel", "csm_id", "team", "time_zone"];

/** The time zones the browser knows, by name. */
const ZONES: string[] = (() => {
  const known = (Intl as unknown as { supportedValuesOf?: (key: string) => string[] }).supportedValuesOf?.("timeZone") ?? [];
  return [...new Set(["UTC", DEVICE_ZONE, ...known])].sort();
})();

interface StoredPreferences {
  csm_id: string | null;
  team: string | null;
  email: string | null;
  slack_user_id: string | null;
  slack_channel: string | null;
  kinds: string[];
  channels: string[];
  mode: "immediate" | "digest" | null;
  time_zone: string | null;
  updated_at?: string;
}

const CSMS = graphql(`
  query SettingsCsms {
    csmWorkload {
      csms {
        csmId
        name
      }
    }
  }
`);

export function Preferences() {
  const session = useSession();
  const [stored, setStored] = useState<StoredPreferences | null>(null);
  const [form, setForm] = useState<StoredPreferences | null>(null);
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null; saved: boolean }>({ busy: false, error: null, saved: false });
  const [{ data: csms }] = useQuery({ query: CSMS });
  useEffect(() => {
    read<StoredPreferences>(session, "/api/v1/notification-preferences")
      .catch((error: unknown) => {
        // None set yet: in-app alerts only.
        if (error instanceof CommandError && error.status === 404) {
          return { csm_id: null, team: null, email: null, slack_user_id: null, slack_channel: null, kinds: [], channels: [], mode: "immediate", time_zone: null } as StoredPreferences;
        }
        throw error;
      })
      .then((preferences) => {
        setStored(preferences);
        setForm(preferences);
      })
      .catch((error) => setState({ busy: false, error: CommandError.from(error), saved: false }));
  }, [session]);
  if (!form) return state.error ? <Refused error={state.error} /> : <InlineLoading description="Reading your preferences" />;
  const set = (patch: Partial<StoredPreferences>) => {
    setForm({ ...form, ...patch });
    setState({ ...state, saved: false });
  };
  const toggle = (list: string[], item: string, on: boolean) => (on ? [...new Set([...list, item])] : list.filter((x) => x !== item));
  const invalid = (name: string) => ({ invalid: Boolean(state.error?.field(name)), invalidText: state.error?.field(name) });
  const save = async (event: React.FormEvent) => {
    event.preventDefault();
    setState({ busy: true, error: null, saved: false });
    const blank = (value: string | null) => (value && value.trim() ? value.trim() : null);
    try {
      const answer = await command<StoredPreferences>(session, "PUT", "/api/v1/notification-preferences", {
        csm_id: form.csm_id || null,
        team: blank(form.team),
        email: blank(form.email),
        slack_user_id: blank(form.slack_user_id),
        slack_channel: blank(form.slack_channel),
        kinds: form.kinds,
        channels: form.channels,
        mode: form.mode ?? "immediate",
        time_zone: form.time_zone ?? DEVICE_ZONE,
      });
      setStored(answer);
      forgetOwnCsm(session);
      setTimeZone(answer.time_zone);
      setState({ busy: false, error: null, saved: true });
    } catch (error) {
      setState({ busy: false, error: CommandError.from(error), saved: false });
    }
  };
  return (
    <Form onSubmit={save} className="cs-form" aria-label="My notifications" style={{ maxWidth: "40rem" }}>
      <p className="cs-muted">
        Alerts always appear in the app. Choose where else they reach you, and which ones.
        {stored?.updated_at ? ` Last changed ${when(stored.updated_at)}.` : ""}
      </p>
      <FormGroup legendText="Also send alerts by">
        <Checkbox
          id="channel-email"
          labelText="E-mail"
          checked={form.channels.includes("email")}
          onChange={(_, { checked }) => set({ channels: toggle(form.channels, "email", checked) })}
        />
        <Checkbox
          id="channel-slack"
          labelText="Slack"
          checked={form.channels.includes("slack")}
          onChange={(_, { checked }) => set({ channels: toggle(form.channels, "slack", checked) })}
        />
      </FormGroup>
      <TextInput id="pref-email" labelText="E-mail address" value={form.email ?? ""} onChange={(e) => set({ email: e.target.value })} {...invalid("email")} />
      <TextInput
        id="pref-slack-user"
        labelText="Slack member id (for direct messages)"
        helperText="In Slack: your profile, ⋮, Copy member ID (U…)"
        value={form.slack_user_id ?? ""}
        onChange={(e) => set({ slack_user_id: e.target.value })}
        {...invalid("slack_user_id")}
      />
      <TextInput
        id="pref-slack-channel"
        labelText="Or a Slack channel id"
        helperText="Posts to the channel instead of direct messages (C…)"
        value={form.slack_channel ?? ""}
        onChange={(e) => set({ slack_channel: e.target.value })}
        {...invalid("slack_channel")}
      />
      <RadioButtonGroup
        legendText="How often"
        name="pref-mode"
        valueSelected={form.mode ?? "immediate"}
        onChange={(value) => set({ mode: value as "immediate" | "digest" })}
      >
        <RadioButton id="mode-immediate" value="immediate" labelText="As each alert is raised" />
        <RadioButton id="mode-digest" value="digest" labelText="One e-mail a day (Slack stays immediate)" />
      </RadioButtonGroup>
      <ComboBox
        id="pref-time-zone"
        titleText="My time zone"
        helperText={`Dates and times are shown in it, and the daily e-mail comes at the digest hour (08:00 unless set otherwise) of your day. This device is on ${DEVICE_ZONE}.`}
        items={ZONES}
        selectedItem={form.time_zone ?? DEVICE_ZONE}
        onChange={({ selectedItem }) => set({ time_zone: selectedItem ?? null })}
        shouldFilterItem={({ item, inputValue }) => !inputValue || item.toLowerCase().includes(inputValue.toLowerCase())}
        {...invalid("time_zone")}
      />
      <FormGroup legendText="Which alerts (none chosen: all of them)">
        {ALERT_KINDS.map(([kind, label]) => (
          <Checkbox
            key={kind}
            id={`kind-${kind}`}
            labelText={label}
            checked={form.kinds.includes(kind)}
            onChange={(_, { checked }) => set({ kinds: toggle(form.kinds, kind, checked) })}
          />
        ))}
      </FormGroup>
      {session.role === "csm" ? (
        <Select id="pref-csm" labelText="I am the CSM" value={form.csm_id ?? ""} onChange={(e) => set({ csm_id: e.target.value || null })} {...invalid("csm_id")}>
          <SelectItem value="" text="choose yourself, to get your customers' alerts" />
          {(csms?.csmWorkload.csms ?? []).map((csm) => (
            <SelectItem key={csm.csmId} value={csm.csmId} text={csm.name ?? "a CSM without a name"} />
          ))}
        </Select>
      ) : null}
      {session.role === "manager" ? (
        <TextInput
          id="pref-team"
          labelText="My team (empty: every team)"
          value={form.team ?? ""}
          onChange={(e) => set({ team: e.target.value })}
          {...invalid("team")}
        />
      ) : null}
      {state.error && !SHOWN_ON_FIELDS.some((name) => state.error?.field(name)) ? <Refused error={state.error} /> : null}
      {state.saved ? <InlineNotification kind="success" title="Saved" hideCloseButton lowContrast role="status" /> : null}
      <Button type="submit" disabled={state.busy}>
        {state.busy ? "Saving…" : "Save"}
      </Button>
    </Form>
  );
}

