// Saved views of a list screen: its filters, order and columns (the address query) kept on the
// server under a name, private or shared with the team; choosing one shows the list as saved.

import { useCallback, useEffect, useState } from "react";
import { Button, Checkbox, InlineNotification, Modal, Select, SelectItem, TextInput } from "@carbon/react";
import { useSession } from "../App";
import { CommandError, command, read } from "../api/commands";

interface SavedView {
  view_id: string;
  name: string;
  screen: string;
  params: string;
  shared: boolean;
  owner: string;
  mine: boolean;
}

/** The address query as a saved view keeps it: sorted, without the page's cursor. */
export function viewParams(params: URLSearchParams, leaveOut: string[] = []): string {
  const kept = [...params.entries()].filter(([name, value]) => value && !leaveOut.includes(name));
  kept.sort(([a], [b]) => a.localeCompare(b));
  return new URLSearchParams(kept).toString();
}

export function SavedViews({ screen, params, onChoose }: { screen: string; params: string; onChoose: (params: string) => void }) {
  const session = useSession();
  const [views, setViews] = useState<SavedView[] | null>(null);
  const [error, setError] = useState<CommandError | null>(null);
  const [saving, setSaving] = useState(false);
  const [removing, setRemoving] = useState<SavedView | null>(null);
  const refresh = useCallback(() => {
    read<{ views: SavedView[] }>(session, "/api/v1/saved-views")
      .then((answer) => setViews(answer.views.filter((view) => view.screen === screen)))
      .catch((e) => setError(CommandError.from(e)));
  }, [session, screen]);
  useEffect(refresh, [refresh]);
  const current = views?.find((view) => view.params === params) ?? null;
  return (
    <div className="cs-toolbar" role="group" aria-label="Saved views" style={{ alignItems: "flex-end" }}>
      <div style={{ flex: "0 1 28rem" }}>
      <Select
        id={`${screen}-view`}
        labelText="View"
        value={current?.view_id ?? ""}
        onChange={(e) => {
          const view = views?.find((v) => v.view_id === e.target.value);
          onChoose(view ? view.params : "");
        }}
      >
        <SelectItem value="" text={current ? "Everything (no filter)" : params ? "Unsaved filters" : "Everything (no filter)"} />
        {(views ?? []).map((view) => (
          <SelectItem key={view.view_id} value={view.view_id} text={view.mine ? (view.shared ? `${view.name} (shared by me)` : view.name) : `${view.name} (shared by ${view.owner})`} />
        ))}
      </Select>
      </div>
      {!current && params ? (
        <Button kind="ghost" size="md" onClick={() => setSaving(true)}>
          Save this view
        </Button>
      ) : null}
      {current && (current.mine || session.role === "admin") ? (
        <Button kind="ghost" size="md" onClick={() => setRemoving(current)}>
          Remove this view
        </Button>
      ) : null}
      {error ? <InlineNotification kind="error" title="Saved views" subtitle={error.message} hideCloseButton lowContrast role="alert" /> : null}
      {saving ? (
        <SaveView
          screen={screen}
          params={params}
          onClose={(saved) => {
            setSaving(false);
            if (saved) refresh();
          }}
        />
      ) : null}
      <Modal
        open={removing !== null}
        danger
        modalHeading={`Remove the view "${removing?.name ?? ""}"?`}
        primaryButtonText="Remove"
        secondaryButtonText="Keep it"
        onRequestClose={() => setRemoving(null)}
        onRequestSubmit={async () => {
          const view = removing;
          setRemoving(null);
          if (!view) return;
          try {
            await command(session, "DELETE", `/api/v1/saved-views/${view.view_id}`);
            refresh();
          } catch (e) {
            setError(CommandError.from(e));
          }
        }}
      >
        <p>{removing?.shared ? "The team no longer sees it either." : "Only the view goes; the customers stay as they are."}</p>
      </Modal>
    </div>
  );
}

function SaveView({ screen, params, onClose }: { screen: string; params: string; onClose: (saved: boolean) => void }) {
  const session = useSession();
  const [name, setName] = useState("");
  const [shared, setShared] = useState(false);
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null }>({ busy: false, error: null });
  return (
    <Modal
      open
      modalHeading="Save this view"
      primaryButtonText={state.busy ? "Saving…" : "Save"}
      primaryButtonDisabled={state.busy || !name.trim()}
      secondaryButtonText="Cancel"
      onRequestClose={() => onClose(false)}
      onRequestSubmit={async () => {
        setState({ busy: true, error: null });
        try {
          await command(session, "POST", "/api/v1/saved-views", { name: name.trim(), screen, params, shared });
          onClose(true);
        } catch (e) {
          setState({ busy: false, error: CommandError.from(e) });
        }
      }}
    >
      <p className="cs-muted" style={{ marginBottom: "1rem" }}>
        The filters, order and columns on screen are kept under this name.
      </p>
      <TextInput
        id="view-name"
        labelText="Name"
        value={name}
        onChange={(e) => setName(e.target.value)}
        invalid={Boolean(state.error?.field("name"))}
        invalidText={state.error?.field("name")}
      />
      <Checkbox
        id="view-shared"
        labelText={session.role === "partner" ? "Share with my organisation's users" : "Share with the team"}
        checked={shared}
        onChange={(_, { checked }) => setShared(checked)}
      />
      {state.error && !state.error.field("name") ? (
        <InlineNotification kind="error" title="Not saved" subtitle={state.error.message} hideCloseButton lowContrast role="alert" />
      ) : null}
    </Modal>
  );
}
