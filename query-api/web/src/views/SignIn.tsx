import { useEffect, useRef, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { Button, Form, InlineNotification, Loading, Stack, TextArea, Tile } from "@carbon/react";
import { appConfig, type AppConfig } from "../api/config";
import { finishSignIn, startSignIn } from "../api/oidc";
import { sessionFromToken, type Session } from "../api/session";

type SignedIn = (session: Session, returnTo: string) => void;

export function SignIn({ onSignedIn }: { onSignedIn: SignedIn }) {
  const [params] = useSearchParams();
  // Empty: the user's own landing page (a CSM's "today", the others' portfolio).
  const returnTo = params.get("returnTo") || "";
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [config, setConfig] = useState<AppConfig | null>(null);
  useEffect(() => {
    appConfig().then(setConfig, () => setConfig({ commandUrl: "", oidc: null }));
  }, []);
  // A ready-made sign-in link carries the token in the fragment, which never reaches a server.
  useEffect(() => {
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    const linked = fragment.get("token");
    if (linked) {
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
      try {
        onSignedIn(sessionFromToken(linked), returnTo);
      } catch (e) {
        setError((e as Error).message);
      }
    }
  }, [onSignedIn, returnTo]);
  const submit = (event: React.FormEvent) => {
    event.preventDefault();
    try {
      onSignedIn(sessionFromToken(token), returnTo);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <main id="main-content" className="cs-content" style={{ maxWidth: "40rem", margin: "0 auto" }}>
      <h1 style={{ margin: "2rem 0" }}>Sign in to cstrack</h1>
      <Stack gap={6}>
        {config?.oidc ? (
          <Tile>
            <h2 style={{ fontSize: "1.25rem", marginBottom: "1rem" }}>With your organisation</h2>
            <Button
              onClick={() => startSignIn(config.oidc!, returnTo).catch((e) => setError((e as Error).message))}
              data-testid="oidc-sign-in"
            >
              Sign in with single sign-on
            </Button>
          </Tile>
        ) : null}
        <Tile>
          <Form onSubmit={submit} aria-labelledby="token-heading">
            <Stack gap={5}>
              <h2 id="token-heading" style={{ fontSize: "1.25rem" }}>
                With a bearer token
              </h2>
              <TextArea
                id="token"
                labelText="Bearer token"
                helperText="Development: mint one with `command-service token --role csm --user dana`."
                rows={4}
                value={token}
                onChange={(e) => setToken(e.target.value)}
                invalid={Boolean(error)}
                invalidText={error ?? undefined}
              />
              <Button type="submit" disabled={!token.trim()}>
                Sign in
              </Button>
            </Stack>
          </Form>
        </Tile>
      </Stack>
    </main>
  );
}

export function Callback({ onSignedIn }: { onSignedIn: SignedIn }) {
  const [error, setError] = useState<string | null>(null);
  const started = useRef(false);
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    (async () => {
      const config = await appConfig();
      if (!config.oidc) throw new Error("single sign-on is not configured");
      const { token, returnTo } = await finishSignIn(config.oidc, new URLSearchParams(window.location.search));
      onSignedIn(sessionFromToken(token), returnTo);
    })().catch((e) => setError((e as Error).message));
  }, [onSignedIn]);
  return (
    <main id="main-content" className="cs-content">
      <h1>Signing in</h1>
      {error ? (
        <InlineNotification kind="error" title="Sign-in failed" subtitle={error} hideCloseButton />
      ) : (
        <Loading withOverlay={false} description="Completing the sign-in" />
      )}
      {error ? <a href="/app/sign-in">Try again</a> : null}
    </main>
  );
}
