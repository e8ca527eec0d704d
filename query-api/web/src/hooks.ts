import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { useSubscription } from "urql";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { reconnected } from "./api/client";
import { graphql } from "./gql";

/**
 * The page's choices kept in its address: `set(name, value)` sets one (an empty value removes
 * it), so a link shows the same page; `push` adds a history entry instead of replacing it.
 */
export function useUrlParams() {
  const [params, setParams] = useSearchParams();
  // react-router hands a functional update the parameters of the last render, so two changes
  // made before the page renders again would lose the first: changes start from the latest one.
  const latest = useRef(params);
  latest.current = params;
  const set = useCallback(
    (name: string, value: string | null, push = false) => {
      const next = new URLSearchParams(latest.current);
      if (value) next.set(name, value);
      else next.delete(name);
      latest.current = next;
      setParams(next, { replace: !push });
    },
    [setParams],
  );
  /** Sets several at once (empty values remove them). */
  const setAll = useCallback(
    (changes: Record<string, string | null>) => {
      const next = new URLSearchParams(latest.current);
      for (const [name, value] of Object.entries(changes)) {
        if (value) next.set(name, value);
        else next.delete(name);
      }
      latest.current = next;
      setParams(next, { replace: true });
    },
    [setParams],
  );
  /** Replaces them all (a saved view chosen). */
  const replace = useCallback((query: string) => setParams(new URLSearchParams(query), { replace: false }), [setParams]);
  return { params, set, setAll, replace };
}

/** The day a report is about (`asOf`) and what the system knew (`knownAt`), kept in the URL. */
export function useTimeTravel() {
  const { params, set } = useUrlParams();
  const asOf = params.get("asOf") || null;
  const knownAt = params.get("knownAt") || null;
  return useMemo(() => ({ asOf, knownAt, set }), [asOf, knownAt, set]);
}

/**
 * Runs `refresh` (at most every 250 ms) whenever the subscription reports a change, and when the
 * live connection returns after a drop.
 */
export function useLive<Data, Variables extends Record<string, unknown>>(
  query: TypedDocumentNode<Data, Variables>,
  variables: Variables,
  refresh: () => void,
  pause = false,
) {
  const latest = useRef(refresh);
  latest.current = refresh;
  const timer = useRef<number | undefined>(undefined);
  const [result] = useSubscription({ query, variables, pause });
  useEffect(() => {
    if (!result.data) return;
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => latest.current(), 250);
  }, [result.data]);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  useEffect(() => {
    if (pause) return;
    const again = () => latest.current();
    reconnected.addEventListener("reconnected", again);
    return () => reconnected.removeEventListener("reconnected", again);
  }, [pause]);
}

const PORTFOLIO_CHANGED = graphql(`
  subscription PortfolioChanged {
    portfolioChanged {
      customerId
      eventType
    }
  }
`);

/** Runs `refresh` when any customer the user may see changes: what portfolio screens listen to. */
export function usePortfolioLive(refresh: () => void, pause = false) {
  useLive(PORTFOLIO_CHANGED, {}, refresh, pause);
}

/**
 * Reads a query again until a command shows in it: the read models apply a command a moment
 * after the command API accepts it. `expect(check)` starts waiting; `check(data)` says whether
 * the change is there. Gives up after 10 s (the list then shows what it has).
 */
export function useReadBack<Data>(data: Data | undefined, refresh: () => void) {
  const [awaited, setAwaited] = useState<{ check: (data: Data) => boolean; tries: number } | null>(null);
  useEffect(() => {
    if (!awaited || data === undefined) return;
    if (awaited.check(data) || awaited.tries >= 40) {
      setAwaited(null);
      return;
    }
    const timer = window.setTimeout(() => {
      refresh();
      setAwaited({ ...awaited, tries: awaited.tries + 1 });
    }, 250);
    return () => window.clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [awaited, data]);
  return useCallback((check: (data: Data) => boolean) => setAwaited({ check, tries: 0 }), []);
}
