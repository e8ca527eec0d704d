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

const said = new Map<string, Promise<string | null>>();

/** The CSM the signed-in user said they are, read once per sign-in. */
function ownCsm(session: Session): Promise<string | null> {
  let known = said.get(session.token);
  if (!known) {
    // Kept on the device too, so an offline page narrows to the same book it did online.
    const keptKey = `cstrack-own-csm:${session.user}`;
    known = read<{ csm_id: string | null }>(session, "/api/v1/notification-preferences")
      .then((preferences) => preferences.csm_id ?? null)
      .catch((error: unknown) => {
        if (error instanceof CommandError && error.status === 404) return null;
        said.delete(session.token);
        if (error instanceof CommandError && error.code === "unreachable") return localStorage.getItem(keptKey);
        throw error;
      })
      .then((csm) => {
        if (csm) localStorage.setItem(keptKey, csm);
        else localStorage.removeItem(keptKey);
        return csm;
      });
    said.set(session.token, known);
  }
  return known;
}

/** Forgets what the user said they are (after they change it in the settings). */
export function forgetOwnCsm(session: Session) {
  said.delete(session.token);
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
