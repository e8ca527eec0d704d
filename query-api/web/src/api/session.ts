// The signed-in user: the bearer token and what it says (role, user, partner), kept for the
// browser tab's session only.

export type Role = "admin" | "manager" | "csm" | "partner" | "readonly" | "auditor";

export interface Session {
  token: string;
  user: string;
  role: Role;
  partnerId: string | null;
  expiresAt: number;
}

const KEY = "cstrack.session";
const ROLES: Role[] = ["admin", "manager", "csm", "partner", "readonly", "auditor"];

/** Reads a JWT's claims without verifying it: the APIs verify every request. */
export function sessionFromToken(token: string): Session {
  const parts = token.trim().split(".");
  if (parts.length !== 3) throw new Error("a bearer token has three dot-separated parts");
  let claims: Record<string, unknown>;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    claims = JSON.parse(decodeURIComponent(escape(json)));
  } catch {
    throw new Error("the token's claims are not readable");
  }
  const role = claims.role as Role;
  if (!ROLES.includes(role)) throw new Error("the token names no cstrack role");
  if (typeof claims.sub !== "string" || !claims.sub) throw new Error("the token names no user");
  const expiresAt = typeof claims.exp === "number" ? claims.exp * 1000 : 0;
  if (expiresAt && expiresAt < Date.now()) throw new Error("the token has expired");
  return {
    token: token.trim(),
    user: claims.sub,
    role,
    partnerId: typeof claims.partner_id === "string" ? claims.partner_id : null,
    expiresAt,
  };
}

export function loadSession(): Session | null {
  const stored = sessionStorage.getItem(KEY);
  if (!stored) return null;
  try {
    const session = sessionFromToken(stored);
    return session;
  } catch {
    sessionStorage.removeItem(KEY);
    return null;
  }
}

export function saveSession(session: Session) {
  sessionStorage.setItem(KEY, session.token);
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

/** What each role may open. */
export const can = {
  portfolio: (role: Role) => role !== "partner",
  history: (role: Role) => role === "auditor",
  /** Tasks (a partner's included). */
  write: (role: Role) => role !== "readonly" && role !== "auditor",
  /** Activities, health scores, acknowledging alerts: the CS team's own records. */
  record: (role: Role) => role === "admin" || role === "manager" || role === "csm",
  partnerReports: (role: Role) => role !== "auditor",
};
