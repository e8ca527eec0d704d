// Settings › Deck template (admins): the PowerPoint template every deck is built on, uploading the
// team's own (checked by building a trial deck on it before it is kept) and going back to the
// built-in one.

import { useCallback, useEffect, useState } from "react";
import { Button, FileUploaderDropContainer, InlineLoading, InlineNotification, Modal } from "@carbon/react";
import { useSession } from "../../App";
import { CommandError, command, putFile, read } from "../../api/commands";
import { when } from "../../format";
import { Refused } from "./common";

interface Template {
  file_name: string;
  uploaded_by: string;
  uploaded_at: string;
  bytes: number;
}

const PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation";

export function DeckTemplate() {
  const session = useSession();
  const [template, setTemplate] = useState<Template | null | undefined>(undefined);
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null; done: string | null }>({ busy: false, error: null, done: null });
  const [resetting, setResetting] = useState(false);
  const refresh = useCallback(() => {
    read<{ template: Template | null }>(session, "/api/v1/deck-template")
      .then((answer) => setTemplate(answer.template))
      .catch((e) => setState({ busy: false, error: CommandError.from(e), done: null }));
  }, [session]);
  useEffect(refresh, [refresh]);
  const send = async (file: File) => {
    setState({ busy: true, error: null, done: null });
    try {
      await putFile(session, "/api/v1/deck-template", file.type ? file : new File([file], file.name, { type: PPTX }));
      setState({ busy: false, error: null, done: `${file.name} is the deck template now: every deck from here on is built on it.` });
      refresh();
    } catch (e) {
      setState({ busy: false, error: CommandError.from(e), done: null });
    }
  };
  if (template === undefined) return state.error ? <Refused error={state.error} /> : <InlineLoading description="Reading the deck template" />;
  return (
    <div style={{ maxWidth: "48rem" }}>
      <p className="cs-muted" style={{ margin: "1rem 0" }}>
        Decks (the portfolio deck, customer decks) are built on this template: its slide master, theme colours and fonts. A template is tried by building a
        deck on it before it is kept.
      </p>
      <p data-testid="deck-template-in-use">
        {template
          ? `In use: ${template.file_name} (${Math.max(1, Math.round(template.bytes / 1024))} KB), uploaded ${when(template.uploaded_at)} by ${template.uploaded_by}.`
          : "In use: the built-in template."}
      </p>
      <FileUploaderDropContainer
        labelText={state.busy ? "Trying the template…" : "Drop a .pptx template here or click to choose one"}
        accept={[".pptx"]}
        disabled={state.busy}
        onAddFiles={(_event, { addedFiles }) => {
          const file = addedFiles[0];
          if (file) void send(file);
        }}
      />
      {state.error ? <Refused error={state.error} /> : null}
      {state.done ? <InlineNotification kind="success" title={state.done} hideCloseButton lowContrast role="status" /> : null}
      {template ? (
        <Button kind="danger--tertiary" style={{ marginTop: "1rem" }} onClick={() => setResetting(true)}>
          Go back to the built-in template
        </Button>
      ) : null}
      <Modal
        open={resetting}
        danger
        modalHeading="Go back to the built-in template?"
        primaryButtonText="Use the built-in template"
        secondaryButtonText="Keep this one"
        onRequestClose={() => setResetting(false)}
        onRequestSubmit={async () => {
          setResetting(false);
          try {
            await command(session, "DELETE", "/api/v1/deck-template");
            setState({ busy: false, error: null, done: "Decks are built on the built-in template again." });
            refresh();
          } catch (e) {
            setState({ busy: false, error: CommandError.from(e), done: null });
          }
        }}
      >
        <p>The uploaded template is removed; you can upload it again later.</p>
      </Modal>
    </div>
  );
}
