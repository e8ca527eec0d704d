// The GraphQL client: queries over HTTP, subscriptions over a WebSocket (graphql-transport-ws)
// authenticated in connection_init with the same bearer token.

import { Client, cacheExchange, fetchExchange, subscriptionExchange } from "urql";
import { createClient as createWsClient } from "graphql-ws";
import type { Session } from "./session";
import { servedFrom } from "../offline";

/**
 * Fired when the live connection comes back after a drop: changes committed meanwhile were not
 * pushed, so every live view reads again.
 */
export const reconnected = new EventTarget();

export function graphqlClient(session: Session, onAuthFailure: () => void): Client {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  let connections = 0;
  const ws = createWsClient({
    url: `${scheme}://${window.location.host}/graphql/ws`,
    connectionParams: { Authorization: `Bearer ${session.token}` },
    lazy: true,
    retryAttempts: Infinity,
    // A refused token (1002) is final; anything else (a restart, a dropped network) is retried.
    shouldRetry: (event) => !(event instanceof CloseEvent && event.code === 1002),
    on: {
      connected: () => {
        connections += 1;
        if (connections > 1) reconnected.dispatchEvent(new Event("reconnected"));
      },
    },
  });
  return new Client({
    url: "/graphql",
    requestPolicy: "cache-and-network",
    // The query API takes GraphQL over POST only (its limits read the body before parsing).
    preferGetMethod: false,
    fetchOptions: () => ({ headers: { authorization: `Bearer ${session.token}` } }),
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      if (response.status === 401) onAuthFailure();
      // The service worker's kept answer, when the network is down: the page says so.
      servedFrom(response.headers.get("x-cstrack-offline"));
      return response;
    },
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || "" };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
}
