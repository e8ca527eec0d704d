// The header's offline marker: "Offline" with when what is shown was fetched, and the commands
// kept on this device, waiting to be sent (or refused once sent, with the API's reason).

import { Button, Tag, Toggletip, ToggletipButton, ToggletipContent } from "@carbon/react";
import type { Session } from "../api/session";
import { dismiss, flush, useOffline } from "../offline";
import { count, when } from "../format";

export function OfflineIndicator({ session }: { session: Session }) {
  const state = useOffline(session);
  const pending = state.outbox.filter((i) => !i.refused);
  const refused = state.outbox.filter((i) => i.refused);
  if (state.online && !state.servedAt && state.outbox.length === 0) return null;
  return (
    <span className="cs-offline" data-testid="offline">
      {!state.online || state.servedAt ? (
        <Tag type="warm-gray" size="sm" data-testid="offline-marker">
          {state.online ? "Showing kept answers" : "Offline"}
          {state.servedAt ? `, as of ${when(state.servedAt)}` : ""}
        </Tag>
      ) : null}
      {state.outbox.length ? (
        <Toggletip align="bottom-right">
          <ToggletipButton label="Changes waiting to be sent">
            <Tag type={refused.length ? "red" : "blue"} size="sm" data-testid="outbox">
              {state.sending ? "Sending…" : pending.length ? `${count(pending.length, "change", "changes")} to send` : `${count(refused.length, "change", "changes")} refused`}
            </Tag>
          </ToggletipButton>
          <ToggletipContent>
            <ul className="cs-plain-list">
              {state.outbox.map((item) => (
                <li key={item.key}>
                  {item.label} <span className="cs-muted">({when(item.queuedAt)})</span>
                  {item.refused ? (
                    <>
                      : refused, {item.refused}{" "}
                      <Button kind="ghost" size="sm" onClick={() => dismiss(session, item.key)}>
                        Dismiss
                      </Button>
                    </>
                  ) : null}
                </li>
              ))}
            </ul>
            {pending.length && state.online ? (
              <Button size="sm" onClick={() => void flush(session)}>
                Send now
              </Button>
            ) : null}
          </ToggletipContent>
        </Toggletip>
      ) : null}
    </span>
  );
}
