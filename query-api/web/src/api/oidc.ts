// Signing in with an OpenID Connect issuer: the authorization-code flow with PKCE (S256), as a
// public client. The verifier and state live in the tab's session storage between the redirect
// out and the redirect back to /app/callback.

import type { OidcConfig } from "./config";

const PENDING = "cstrack.oidc";

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

function base64url(bytes: Uint8Array): string {
  let text = "";
  bytes.forEach((byte) => (text += String.fromCharCode(byte)));
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomText(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function discover(oidc: OidcConfig): Promise<Discovery> {
  const response = await fetch(`${oidc.issuer}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`the issuer's discovery document answered ${response.status}`);
  return response.json();
}

function redirectUri(): string {
  return `${window.location.origin}/app/callback`;
}

/** Sends the browser to the issuer's sign-in page. */
export async function startSignIn(oidc: OidcConfig, returnTo: string): Promise<void> {
  const discovery = await discover(oidc);
  const verifier = randomText(48);
  const state = randomText(16);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, returnTo }));
  const url = new URL(discovery.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: oidc.clientId,
    redirect_uri: redirectUri(),
    scope: "openid profile",
    state,
    code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: "S256",
  }).toString();
  window.location.assign(url.toString());
}

/** Completes the flow on /app/callback: the access token, and where the user was going. */
export async function finishSignIn(oidc: OidcConfig, query: URLSearchParams): Promise<{ token: string; returnTo: string }> {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null") as
    | { verifier: string; state: string; returnTo: string }
    | null;
  sessionStorage.removeItem(PENDING);
  if (query.get("error")) throw new Error(`the issuer refused: ${query.get("error_description") ?? query.get("error")}`);
  if (!pending || query.get("state") !== pending.state) throw new Error("this sign-in was not started here (state mismatch)");
  const code = query.get("code");
  if (!code) throw new Error("the issuer sent no authorization code");
  const discovery = await discover(oidc);
  const response = await fetch(discovery.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri(),
      client_id: oidc.clientId,
      code_verifier: pending.verifier,
    }).toString(),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || typeof answer.access_token !== "string") {
    throw new Error(`the token exchange failed: ${answer.error_description ?? answer.error ?? response.status}`);
  }
  return { token: answer.access_token, returnTo: pending.returnTo || "" };
}
