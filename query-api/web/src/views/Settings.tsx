// Settings: each user's notification preferences; for admins and managers the rules with their
// what-if preview, the CSMs and their capacity, custom fields, connectors, the deck template and
// the webhooks that carry alerts and events to other systems (docs/WEB.md).

import { useCallback, useEffect, useState } from "react";
import { useQuery } from "urql";
import { useSearchParams } from "react-router-dom";
import {
  Button,
  Checkbox,
  Form,
  FormGroup,
  InlineLoading,
  InlineNotification,
  Modal,
  RadioButton,
  RadioButtonGroup,
  Select,
  SelectItem,
  Tab,
  TabList,
  TabPanel,
  TabPanels,
  Tabs,
  TableBody,
  TableCell,
  TableHead,
  TableHeader,
  TableRow,
  Tag,
  TextInput,
} from "@carbon/react";
import { graphql } from "../gql";
import { useSession } from "../App";
import { CommandError, command, read } from "../api/commands";
import { Pager, Table } from "../components";
import { count, when } from "../format";
import { Refused } from "./settings/common";
import { forgetOwnCsm } from "../book";
import { Rules } from "./settings/Rules";
import { Team } from "./settings/Team";
import { CustomFields } from "./settings/CustomFields";
import { Connectors } from "./settings/Connectors";
import { DeckTemplate } from "./settings/DeckTemplate";

/** The alert kinds, as a person reads them. */
const ALERT_KINDS: Array<[string, string]> = [
  ["coverage_urgent", "an account's coverage turns urgent"],
  ["engagement_at_risk", "an account's engagement is at risk"],
  ["health_red", "a health score turns red"],
  ["task_overdue", "a task is overdue"],
  ["renewal_window", "a renewal comes within its window"],
  ["partner_report_submitted", "a partner submits a status report"],
];

/** The settings tabs, each for the roles that may use it (the API enforces the same rules). */
const TABS: Array<{ label: string; show: (role: string) => boolean; Panel: () => React.ReactElement }> = [
  { label: "My notifications", show: () => true, Panel: Preferences },
  { label: "Rules", show: (role) => role === "admin" || role === "manager", Panel: Rules },
  { label: "CSMs", show: (role) => role === "admin" || role === "manager", Panel: Team },
  { label: "Custom fields", show: () => true, Panel: CustomFields },
  { label: "Connectors", show: (role) => role === "admin" || role === "manager", Panel: Connectors },
  { label: "Deck template", show: (role) => role === "admin", Panel: DeckTemplate },
  { label: "Webhooks", show: (role) => role === "admin", Panel: Webhooks },
];

export default function Settings() {
  const session = useSession();
  const tabs = TABS.filter((tab) => tab.show(session.role));
  const [params, setParams] = useSearchParams();
  const chosen = Math.max(0, tabs.findIndex((tab) => slug(tab.label) === params.get("tab")));
  return (
    <>
      <h1 style={{ marginBottom: "1.5rem" }}>Settings</h1>
      <Tabs
        selectedIndex={chosen}
        onChange={({ selectedIndex }) => {
          // The tab is kept in the address, so a setting can be linked to and survives a reload.
          const next = new URLSearchParams(params);
          next.set("tab", slug(tabs[selectedIndex].label));
          setParams(next, { replace: true });
        }}
      >
        <TabList aria-label="Settings" contained>
          {tabs.map((tab) => (
            <Tab key={tab.label}>{tab.label}</Tab>
          ))}
        </TabList>
        <TabPanels>
          {tabs.map((tab, index) => (
            <TabPanel key={tab.label}>{index === chosen ? <tab.Panel /> : null}</TabPanel>
          ))}
        </TabPanels>
      </Tabs>
    </>
  );
}

const slug = (label: string) => label.toLowerCase().replace(/[^a-z]+/g, "-");

/** The fields of the preferences form that show their own refusal. */
const SHOWN_ON_FIELDS = ["email", "slack_user_id", "slack_channel", "csm_id", "team"];

interface StoredPreferences {
  csm_id: string | null;
  team: string | null;
  email: string | null;
  slack_user_id: string | null;
  slack_channel: string | null;
  kinds: string[];
  channels: string[];
  mode: "immediate" | "digest" | null;
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

function Preferences() {
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
          return { csm_id: null, team: null, email: null, slack_user_id: null, slack_channel: null, kinds: [], channels: [], mode: "immediate" } as StoredPreferences;
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
      });
      setStored(answer);
      forgetOwnCsm(session);
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

interface Webhook {
  webhook_id: string;
  url: string;
  kinds: string[];
  description: string;
  created_by: string;
  created_at: string;
}

interface Delivery {
  delivery_id: string;
  kind: string;
  status: string;
  attempts: number;
  last_error: string | null;
  created_at: string;
  delivered_at: string | null;
  log: Array<{ attempt: number; at: string; succeeded: boolean; status_code: number | null; error: string | null; duration_ms: number | null }>;
}

const kindWords = (kind: string) => {
  if (kind === "alert.*") return "every alert";
  if (kind === "event.*") return "every event";
  const [group, name] = kind.split(".");
  if (group === "alert") return ALERT_KINDS.find(([k]) => k === name)?.[1] ?? name.replace(/_/g, " ");
  return `${name} events`;
};

function Webhooks() {
  const session = useSession();
  const [hooks, setHooks] = useState<Webhook[] | null>(null);
  const [error, setError] = useState<CommandError | null>(null);
  const [opened, setOpened] = useState<Webhook | null>(null);
  const [removing, setRemoving] = useState<Webhook | null>(null);
  const refresh = useCallback(() => {
    read<{ webhooks: Webhook[] }>(session, "/api/v1/webhooks")
      .then((answer) => setHooks(answer.webhooks))
      .catch((e) => setError(CommandError.from(e)));
  }, [session]);
  useEffect(refresh, [refresh]);
  return (
    <>
      <p className="cs-muted" style={{ margin: "1rem 0", maxWidth: "48rem" }}>
        A webhook sends alerts and events to another system as signed JSON (the secret is shown once, when it is added). Only public addresses
        are called.
      </p>
      <NewWebhook onAdded={refresh} />
      {error ? <Refused error={error} /> : null}
      <h2 style={{ margin: "2rem 0 1rem" }}>In use</h2>
      {hooks === null ? (
        <InlineLoading description="Reading the webhooks" />
      ) : hooks.length === 0 ? (
        <p className="cs-muted">No webhook yet.</p>
      ) : (
        <Table size="md" aria-label="Webhooks">
          <TableHead>
            <TableRow>
              <TableHeader>Address</TableHeader>
              <TableHeader>Sends</TableHeader>
              <TableHeader>Added</TableHeader>
              <TableHeader>
                <span className="cs-visually-hidden">Actions</span>
              </TableHeader>
            </TableRow>
          </TableHead>
          <TableBody>
            {hooks.map((hook) => (
              <TableRow key={hook.webhook_id} data-testid="webhook-row">
                <TableCell>
                  {hook.url}
                  {hook.description ? <div className="cs-muted">{hook.description}</div> : null}
                </TableCell>
                <TableCell>{hook.kinds.map(kindWords).join("; ")}</TableCell>
                <TableCell>
                  {when(hook.created_at)} <span className="cs-muted">by {hook.created_by}</span>
                </TableCell>
                <TableCell>
                  <Button kind="ghost" size="sm" onClick={() => setOpened(hook)}>
                    Deliveries
                  </Button>
                  <Button kind="ghost" size="sm" onClick={() => setRemoving(hook)}>
                    Stop
                  </Button>
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
      {opened ? <Deliveries hook={opened} onClose={() => setOpened(null)} /> : null}
      <Modal
        open={removing !== null}
        danger
        modalHeading={`Stop sending to ${removing?.url ?? ""}?`}
        primaryButtonText="Stop the webhook"
        secondaryButtonText="Keep it"
        onRequestClose={() => setRemoving(null)}
        onRequestSubmit={async () => {
          const hook = removing;
          setRemoving(null);
          if (!hook) return;
          try {
            await command(session, "DELETE", `/api/v1/webhooks/${hook.webhook_id}`);
            refresh();
          } catch (e) {
            setError(CommandError.from(e));
          }
        }}
      >
        <p>Nothing more is sent to it; its delivery log stays.</p>
      </Modal>
    </>
  );
}

function NewWebhook({ onAdded }: { onAdded: () => void }) {
  const session = useSession();
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [what, setWhat] = useState<"alerts" | "events" | "both">("alerts");
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null; secret: string | null }>({ busy: false, error: null, secret: null });
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setState({ busy: true, error: null, secret: null });
    const kinds = what === "alerts" ? ["alert.*"] : what === "events" ? ["event.*"] : ["alert.*", "event.*"];
    try {
      const answer = await command<{ secret?: string }>(session, "POST", "/api/v1/webhooks", { url: url.trim(), kinds, description: description.trim() });
      setState({ busy: false, error: null, secret: answer.secret ?? null });
      setUrl("");
      setDescription("");
      onAdded();
    } catch (e) {
      setState({ busy: false, error: CommandError.from(e), secret: null });
    }
  };
  return (
    <Form onSubmit={submit} className="cs-form" aria-label="Add a webhook" style={{ maxWidth: "40rem" }}>
      <TextInput
        id="webhook-url"
        labelText="Address (https://…)"
        value={url}
        onChange={(e) => setUrl(e.target.value)}
        invalid={Boolean(state.error?.field("url"))}
        invalidText={state.error?.field("url")}
      />
      <TextInput id="webhook-description" labelText="What it is for (optional)" value={description} onChange={(e) => setDescription(e.target.value)} />
      <Select id="webhook-kinds" labelText="Send" value={what} onChange={(e) => setWhat(e.target.value as typeof what)}>
        <SelectItem value="alerts" text="every alert" />
        <SelectItem value="events" text="every event" />
        <SelectItem value="both" text="every alert and every event" />
      </Select>
      {state.error && !state.error.field("url") ? <Refused error={state.error} /> : null}
      {state.secret ? (
        <InlineNotification kind="success" title="Added. Its signing secret, shown this once:" subtitle={state.secret} hideCloseButton lowContrast role="status" />
      ) : null}
      <Button type="submit" disabled={state.busy || !url.trim()}>
        {state.busy ? "Adding…" : "Add the webhook"}
      </Button>
    </Form>
  );
}

const PAGE = 20;

function Deliveries({ hook, onClose }: { hook: Webhook; onClose: () => void }) {
  const session = useSession();
  const [deliveries, setDeliveries] = useState<Delivery[] | null>(null);
  const [error, setError] = useState<CommandError | null>(null);
  const [offset, setOffset] = useState(0);
  useEffect(() => {
    read<{ deliveries: Delivery[] }>(session, `/api/v1/webhooks/${hook.webhook_id}/deliveries`)
      .then((answer) => setDeliveries(answer.deliveries))
      .catch((e) => setError(CommandError.from(e)));
  }, [session, hook]);
  return (
    <section aria-labelledby="deliveries-title" style={{ marginTop: "2rem" }}>
      <div className="cs-toolbar" style={{ justifyContent: "space-between" }}>
        <h2 id="deliveries-title">Deliveries to {hook.url}</h2>
        <Button kind="ghost" size="sm" onClick={onClose}>
          Close
        </Button>
      </div>
      {error ? <Refused error={error} /> : null}
      {deliveries === null ? (
        <InlineLoading description="Reading the deliveries" />
      ) : deliveries.length === 0 ? (
        <p className="cs-muted">Nothing sent yet.</p>
      ) : (
        <>
          <Table size="sm" aria-label="Deliveries">
            <TableHead>
              <TableRow>
                <TableHeader>Raised</TableHeader>
                <TableHeader>What</TableHeader>
                <TableHeader>Outcome</TableHeader>
                <TableHeader>Attempts</TableHeader>
              </TableRow>
            </TableHead>
            <TableBody>
              {deliveries.slice(offset, offset + PAGE).map((delivery) => (
                <TableRow key={delivery.delivery_id}>
                  <TableCell>{when(delivery.created_at)}</TableCell>
                  <TableCell>{delivery.kind.replace(/_/g, " ")}</TableCell>
                  <TableCell>
                    <Tag type={delivery.status === "delivered" ? "green" : delivery.status === "failed" ? "red" : "gray"} size="sm">
                      {delivery.status.replace(/_/g, " ")}
                    </Tag>
                    {delivery.delivered_at ? ` ${when(delivery.delivered_at)}` : ""}
                    {delivery.last_error ? <div className="cs-muted">{delivery.last_error}</div> : null}
                  </TableCell>
                  <TableCell>
                    {count(delivery.attempts, "attempt", "attempts")}
                    <ul className="cs-plain-list cs-muted">
                      {delivery.log.map((attempt) => (
                        <li key={attempt.attempt}>
                          {when(attempt.at)}: {attempt.succeeded ? "answered" : "failed"}
                          {attempt.status_code ? ` ${attempt.status_code}` : ""}
                          {attempt.error ? ` (${attempt.error})` : ""}
                          {attempt.duration_ms != null ? ` in ${attempt.duration_ms} ms` : ""}
                        </li>
                      ))}
                    </ul>
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
          <Pager label="deliveries" offset={offset} size={PAGE} total={deliveries.length} onChange={setOffset} />
          {deliveries.length >= 200 ? <p className="cs-muted">The newest 200 deliveries are listed.</p> : null}
        </>
      )}
    </section>
  );
}
