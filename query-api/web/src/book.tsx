// "My book" or "the whole portfolio": which accounts a portfolio view covers. A CSM starts on
// their own book, everyone else on the whole portfolio; the choice is kept in the address
// (`book=mine|all`). A user's book is the CSM they said they are in Settings › My
// notifications (the identity provider's user is not a CSM record by itself).

import { useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { ContentSwitcher, Switch } from "@carbon/react";
import { useSession } from "./App";
import { CommandError, read } from "./api/commands";
import { can, type Session } from "./api/session";
import { useUrlParams } from "./hooks";
import { setTimeZone } from "./format";

/** What the book and the clock need of the user's notification preferences. */
interface Own {
  csm_id: string | null;
  time_zone: string | null;
}

const said = new Map<string, Promise<Own>>();

/** The user's own preferences, read once per sign-in (kept on the device for offline use). */
function ownPreferences(session: Session): Promise<Own> {
  let known = said.get(session.token);
  if (!known) {
    const keptKey = `cstrack-own:${session.user}`;
    const none: Own = { csm_id: null, time_zone: null };
    known = read<Partial<Own>>(session, "/api/v1/notification-preferences")
      .then((preferences) => ({ csm_id: preferences.csm_id ?? null, time_zone: preferences.time_zone ?? null }))
      .catch((error: unknown) => {
        if (error instanceof CommandError && (error.status === 404 || error.status === 403)) return none;
        said.delete(session.token);
        if (error instanceof CommandError && error.code === "unreachable") {
          const kept = localStorage.getItem(keptKey);
          return kept ? (JSON.parse(kept) as Own) : none;
        }
        throw error;
      })
      .then((own) => {
        localStorage.setItem(keptKey, JSON.stringify(own));
        return own;
      });
    said.set(session.token, known);
  }
  return known;
}

/** The CSM the signed-in user said they are. */
function ownCsm(session: Session): Promise<string | null> {
  return ownPreferences(session).then((own) => own.csm_id);
}

/** Forgets what the user said they are (after they change it in the settings). */
export function forgetOwnCsm(session: Session) {
  said.delete(session.token);
}

/**
 * Shows times in the user's chosen time zone: the one kept on the device at once, then the
 * one the preferences say. Answers the zone, so the caller re-renders when it changes.
 */
export function useOwnTimeZone(session: Session): string | null {
  const [zone, setZone] = useState<string | null>(() => {
    const kept = localStorage.getItem(`cstrack-own:${session.user}`);
    const zone = kept ? ((JSON.parse(kept) as Own).time_zone ?? null) : null;
    setTimeZone(zone);
    return zone;
  });
  useEffect(() => {
    if (session.role === "partner") return;
    ownPreferences(session)
      .then((own) => {
        setTimeZone(own.time_zone);
        setZone(own.time_zone);
      })
      .catch(() => undefined);
  }, [session]);
  return zone;
}

export interface Book {
  /** Whether "my book" is chosen. */
  mine: boolean;
  /** The CSM whose book the view covers; null for the whole portfolio. */
  csmId: string | null;
  /** The user's own CSM, null when they have not said, undefined while it is read. */
  own: string | null | undefined;
  /** Whether the view may query (the user's CSM is known, or not needed). */
  ready: boolean;
  choose: (mine: boolean) => void;
}

export function useBook(): Book {
  const session = useSession();
  const { params, set } = useUrlParams();
  const portfolio = can.portfolio(session.role);
  const [own, setOwn] = useState<string | null | undefined>(portfolio ? undefined : null);
  useEffect(() => {
    if (!portfolio) return;
    ownCsm(session)
      .then(setOwn)
      .catch(() => setOwn(null));
  }, [session, portfolio]);
  const chosen = params.get("book") ?? (session.role === "csm" ? "mine" : "all");
  const mine = portfolio && chosen === "mine";
  return {
    mine,
    csmId: mine ? (own ?? null) : null,
    own,
    ready: !mine || own !== undefined,
    choose: (next) => set("book", next ? "mine" : "all"),
  };
}

/** The switch a portfolio view shows above its figures. */
export function BookSwitch({ book }: { book: Book }) {
  const session = useSession();
  if (!can.portfolio(session.role)) return null;
  return (
    <div className="cs-book" data-testid="book-switch">
      <ContentSwitcher size="sm" selectedIndex={book.mine ? 0 : 1} onChange={({ index }) => book.choose(index === 0)} style={{ maxWidth: "20rem" }}>
        <Switch name="mine" text="My book" />
        <Switch name="all" text="Whole portfolio" />
      </ContentSwitcher>
      {book.mine && book.own === null ? (
        <p className="cs-hint" data-testid="book-hint">
          <strong>Which CSM are you?</strong> Say so in <Link to="/settings">Settings › My notifications</Link> to see your own book; the whole portfolio
          is shown meanwhile.
        </p>
      ) : null}
    </div>
  );
}
