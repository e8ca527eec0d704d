// The web client's service worker (docs/WEB.md, "Installable and offline").
//
// - The shell (the page and its built assets) is kept as it is fetched, so the client opens
//   without a network. Built assets are named by their content and never change: cache first.
//   The page and its config: network first, the kept copy when offline.
// - GraphQL answers are network first. Each answer is kept under the caller's token and the
//   exact query, so what a user has read (the customer list, tasks, a customer they opened) is
//   readable offline by that user only; an answer served from the kept copy carries the header
//   `x-cstrack-offline` with the time it was fetched, and the page says so.
// - Signing out clears every kept answer (the page posts "forget").

const SHELL = "cstrack-shell-v1";
const ANSWERS = "cstrack-answers-v1";
// Answers kept at most (the oldest go first), checked every few writes rather than on each.
const KEPT_ANSWERS = 300;
let writes = 0;

async function trim() {
  const cache = await caches.open(ANSWERS);
  const keys = await cache.keys();
  await Promise.all(keys.slice(0, Math.max(0, keys.length - KEPT_ANSWERS)).map((key) => cache.delete(key)));
}

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n !== SHELL && n !== ANSWERS).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("message", (event) => {
  if (event.data === "forget") event.waitUntil(caches.delete(ANSWERS));
});

async function digest(text) {
  const bytes = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function cacheFirst(request) {
  const kept = await caches.match(request, { cacheName: SHELL });
  if (kept) return kept;
  const response = await fetch(request);
  if (response.ok) (await caches.open(SHELL)).put(request, response.clone());
  return response;
}

async function networkFirst(request, key) {
  try {
    const response = await fetch(request);
    if (response.ok) (await caches.open(SHELL)).put(key, response.clone());
    return response;
  } catch (error) {
    const kept = await caches.match(key, { cacheName: SHELL });
    if (kept) return kept;
    throw error;
  }
}

async function graphql(request) {
  const body = await request.clone().text();
  const key = new Request(`/app/__answers/${await digest(`${request.headers.get("authorization") ?? ""}\n${body}`)}`);
  try {
    const response = await fetch(request);
    if (response.ok) {
      const copy = response.clone();
      const text = await copy.text();
      const headers = new Headers(copy.headers);
      headers.set("x-cstrack-fetched-at", new Date().toISOString());
      // Kept beside the answer's way back, not before it.
      void caches
        .open(ANSWERS)
        .then((cache) => cache.put(key, new Response(text, { status: 200, headers })))
        .then(() => {
          writes += 1;
          return writes % 25 === 0 ? trim() : undefined;
        });
    }
    return response;
  } catch (error) {
    const kept = await caches.match(key, { cacheName: ANSWERS });
    if (!kept) throw error;
    const headers = new Headers(kept.headers);
    headers.set("x-cstrack-offline", kept.headers.get("x-cstrack-fetched-at") ?? "");
    return new Response(await kept.text(), { status: 200, headers });
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method === "POST" && url.pathname === "/graphql") {
    event.respondWith(graphql(request));
    return;
  }
  if (request.method !== "GET") return;
  if (url.pathname.startsWith("/app/assets/")) {
    event.respondWith(cacheFirst(request));
  } else if (request.mode === "navigate" && url.pathname.startsWith("/app")) {
    // Every client-side route is the same page.
    event.respondWith(networkFirst(request, new Request("/app/")));
  } else if (url.pathname.startsWith("/app/") && !url.pathname.startsWith("/app/__answers/")) {
    event.respondWith(networkFirst(request, request));
  }
});
