// Webhooks: the URLs alerts and events are sent to as signed JSON, each with its delivery log
// and a test delivery (docs/NOTIFICATIONS.md).

import { useCallback, useEffect, useState } from "react";
import {
  Button,
  Form,
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
  TextInput,
} from "@carbon/react";
import { useSession } from "../../App";
import { CommandError, command, read } from "../../api/commands";
import { Pager, Table } from "../../components";
import { count, when } from "../../format";
import { ALERT_KINDS, Refused } from "./common";

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

export function Webhooks() {
  const session = useSession();
  const [hooks, setHooks] = useState<Webhook[] | null>(null);
  const [error, setError] = useState<CommandError | null>(null);
  const [opened, setOpened] = useState<Webhook | null>(null);
  const [removing, setRemoving] = useState<Webhook | null>(null);
  const [tested, setTested] = useState(0);
  const test = async (hook: Webhook) => {
    setError(null);
    try {
      await command(session, "POST", `/api/v1/webhooks/${hook.webhook_id}/test`);
      setOpened(hook);
      setTested((n) => n + 1);
    } catch (e) {
      setError(CommandError.from(e));
    }
  };
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
                  <Button kind="ghost" size="sm" onClick={() => void test(hook)}>
                    Send a test
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
      {opened ? <Deliveries hook={opened} tested={tested} onClose={() => setOpened(null)} /> : null}
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

/** What a delivery carried, in words: "a test", "alert: a health score turns red", "CustomerOnboarded event". */
function deliveryWords(kind: string): string {
  if (kind === "webhook.test") return "a test delivery";
  if (kind.startsWith("alert.")) return `alert: ${kindWords(kind)}`;
  if (kind.startsWith("event.")) return kindWords(kind).replace(/ events$/, " event");
  return kind.replace(/_/g, " ");
}

/** How often the log is read again while a delivery is still being tried. */
const PENDING_POLL_MS = 2000;

function Deliveries({ hook, tested, onClose }: { hook: Webhook; tested: number; onClose: () => void }) {
  const session = useSession();
  const [deliveries, setDeliveries] = useState<Delivery[] | null>(null);
  const [error, setError] = useState<CommandError | null>(null);
  const [offset, setOffset] = useState(0);
  const [readAgain, setReadAgain] = useState(0);
  useEffect(() => {
    read<{ deliveries: Delivery[] }>(session, `/api/v1/webhooks/${hook.webhook_id}/deliveries`)
      .then((answer) => setDeliveries(answer.deliveries))
      .catch((e) => setError(CommandError.from(e)));
  }, [session, hook, tested, readAgain]);
  // A test (or any delivery) still pending is read again until it is delivered or fails.
  const pending = deliveries?.some((delivery) => delivery.status === "pending") ?? false;
  useEffect(() => {
    if (!pending) return;
    const timer = window.setTimeout(() => setReadAgain((n) => n + 1), PENDING_POLL_MS);
    return () => window.clearTimeout(timer);
  }, [pending, deliveries]);
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
                  <TableCell>{deliveryWords(delivery.kind)}</TableCell>
                  <TableCell>
                    <Tag type={delivery.status === "delivered" ? "green" : delivery.status === "failed" ? "red" : "gray"} size="sm">
                      {delivery.status === "pending" && delivery.attempts > 0 ? "retrying" : delivery.status === "pending" ? "sending" : delivery.status}
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
