// Working without a network (docs/WEB.md, "Installable and offline").
//
// - Whether the browser is online, and whether what the page shows was served from the service
//   worker's kept answers (and when those were fetched).
// - The outbox: activity logs and task completions made offline wait here (per user, in local
//   storage) with the Idempotency-Key they were first sent with, and are sent again, with that
//   same key, when the network comes back. The command API appends a command once per key, so a
//   retry that crosses a lost answer can never append twice.

import { useEffect, useState } from "react";
import { CommandError, send } from "./api/commands";
import type { Session } from "./api/session";

export interface Waiting {
  key: string;
  method: "POST" | "PUT" | "PATCH";
  path: string;
  body: unknown;
  /** What it is, in words ("Meeting with Acme Corp"). */
  label: string;
  queuedAt: string;
  /** The API's refusal, once it refused it (kept to be read, never sent again). */
  refused?: string;
}

const changed = new EventTarget();
let offlineSince: string | null = null;

const storeKey = (session: Session) => `cstrack-outbox:${session.user}`;

export function waiting(session: Session): Waiting[] {
  try {
    return JSON.parse(localStorage.getItem(storeKey(session)) ?? "[]") as Waiting[];
  } catch {
    return [];
  }
}

function keep(session: Session, items: Waiting[]) {
  localStorage.setItem(storeKey(session), JSON.stringify(items));
  changed.dispatchEvent(new Event("changed"));
}

/** Records that an answer came from the kept copy fetched at `at` (or, with null, from the network). */
export function servedFrom(at: string | null) {
  if (offlineSince === at) return;
  offlineSince = at;
  changed.dispatchEvent(new Event("changed"));
}

/**
 * Sends a command, or, when the network is down, keeps it in the outbox to send later with the
 * same Idempotency-Key. Answers whether it was sent now.
 */
export async function sendOrKeep(session: Session, method: Waiting["method"], path: string, body: unknown, label: string): Promise<"sent" | "kept"> {
  const key = crypto.randomUUID();
  try {
    await send(session, method, path, body, key);
    return "sent";
  } catch (error) {
    if (error instanceof CommandError && error.code === "unreachable") {
      keep(session, [...waiting(session), { key, method, path, body, label, queuedAt: new Date().toISOString() }]);
      return "kept";
    }
    throw error;
  }
}

let flushing = false;

/** Sends what waits, oldest first, each with its own key; stops at the first network failure. */
export async function flush(session: Session): Promise<void> {
  if (flushing) return;
  flushing = true;
  changed.dispatchEvent(new Event("changed"));
  try {
    for (const item of waiting(session).filter((i) => !i.refused)) {
      try {
        await send(session, item.method, item.path, item.body, item.key);
        keep(
          session,
          waiting(session).filter((i) => i.key !== item.key),
        );
      } catch (error) {
        if (error instanceof CommandError && error.code === "unreachable") break;
        const reason = error instanceof CommandError ? error.message : String(error);
        keep(
          session,
          waiting(session).map((i) => (i.key === item.key ? { ...i, refused: reason } : i)),
        );
      }
    }
  } finally {
    flushing = false;
    changed.dispatchEvent(new Event("changed"));
  }
}

/** Drops a refused item the user has read. */
export function dismiss(session: Session, key: string) {
  keep(
    session,
    waiting(session).filter((i) => i.key !== key),
  );
}

export interface OfflineState {
  online: boolean;
  /** When the answers on screen were fetched, if they came from the kept copy. */
  servedAt: string | null;
  outbox: Waiting[];
  sending: boolean;
}

/** The offline state, and sending the outbox whenever the network comes back. */
export function useOffline(session: Session): OfflineState {
  const read = (): OfflineState => ({ online: navigator.onLine, servedAt: offlineSince, outbox: waiting(session), sending: flushing });
  const [state, setState] = useState<OfflineState>(read);
  useEffect(() => {
    const refresh = () => setState(read());
    const back = () => {
      refresh();
      void flush(session);
    };
    changed.addEventListener("changed", refresh);
    window.addEventListener("online", back);
    window.addEventListener("offline", refresh);
    if (navigator.onLine && waiting(session).some((i) => !i.refused)) void flush(session);
    return () => {
      changed.removeEventListener("changed", refresh);
      window.removeEventListener("online", back);
      window.removeEventListener("offline", refresh);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [session]);
  return state;
}

/** Registers the service worker (where the browser has them) and forgets kept answers on sign-out. */
export function registerServiceWorker() {
  if (!("serviceWorker" in navigator) || import.meta.env.DEV) return;
  navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch((error) => console.warn("the service worker did not register", error));
}

export function forgetKeptAnswers() {
  navigator.serviceWorker?.controller?.postMessage("forget");
}
