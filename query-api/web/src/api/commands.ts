// The REST commands, sent with the user's bearer token. A refusal keeps the API's code,
// message and the fields it names, so forms can show each reason on its field.

import { appConfig } from "./config";
import type { Session } from "./session";

export class CommandError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, unknown>,
  ) {
    super(message);
  }

  /** Any failure as a CommandError (one thrown by a request stays as it is). */
  static from(error: unknown): CommandError {
    return error instanceof CommandError ? error : new CommandError(0, "error", String(error), {});
  }

  /** The reason the API gave for `field`, when it gave one as text. */
  field(name: string): string | undefined {
    const reason = this.fields[name];
    return typeof reason === "string" ? reason : undefined;
  }
}

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * Sends a request to the command API and reads its JSON answer; a refusal is a CommandError
 * (code "unreachable" when the network failed). A write carries `idempotencyKey`, or a fresh one.
 */
export async function send<T>(session: Session, method: Method, path: string, body?: unknown, idempotencyKey?: string): Promise<T> {
  const { commandUrl } = await appConfig();
  const headers: Record<string, string> = { authorization: `Bearer ${session.token}` };
  let payload: BodyInit | undefined;
  if (body instanceof FormData) {
    payload = body;
  } else if (body instanceof File) {
    // A file sent as the body itself, typed and named as it is.
    headers["content-type"] = body.type || "application/octet-stream";
    headers["x-file-name"] = body.name.replace(/[^\x20-\x7e]/g, "_");
    headers["idempotency-key"] = idempotencyKey ?? crypto.randomUUID();
    payload = body;
  } else if (method !== "GET") {
    headers["content-type"] = "application/json";
    // Every write carries a key: a retry of this very request (the outbox's) can never append twice.
    headers["idempotency-key"] = idempotencyKey ?? crypto.randomUUID();
    payload = JSON.stringify(body ?? {});
  }
  let response: Response;
  try {
    response = await fetch(`${commandUrl}${path}`, { method, headers, body: payload });
  } catch {
    throw new CommandError(0, "unreachable", "The command service could not be reached.", {});
  }
  const text = await response.text();
  let answer: Record<string, unknown> = {};
  try {
    answer = text ? JSON.parse(text) : {};
  } catch {
    answer = {};
  }
  if (!response.ok) {
    const error = answer.error;
    const code = typeof error === "string" ? error : ((error as { code?: string })?.code ?? `http_${response.status}`);
    const message =
      (answer.message as string) ?? ((error as { message?: string })?.message ?? `The command was refused (${response.status}).`);
    throw new CommandError(response.status, code, message, (answer.fields as Record<string, unknown>) ?? {});
  }
  return answer as T;
}

export function command<T = Record<string, unknown>>(
  session: Session,
  method: "POST" | "PUT" | "PATCH" | "DELETE",
  path: string,
  body?: unknown,
): Promise<T> {
  return send<T>(session, method, path, body);
}

/** Reads a resource of the command API (imports, settings). */
export function read<T>(session: Session, path: string): Promise<T> {
  return send<T>(session, "GET", path);
}

/** Sends a multipart form (a file upload) to the command API. */
export function upload<T>(session: Session, path: string, form: FormData): Promise<T> {
  return send<T>(session, "POST", path, form);
}

/** Sends a file as the request's body (the deck template). */
export function putFile<T>(session: Session, path: string, file: File): Promise<T> {
  return send<T>(session, "PUT", path, file);
}

/**
 * Downloads a file the APIs make (an export, a deck, an errors workbook) with the user's token,
 * and hands it to the browser under the name the server gives. `onCommandApi`: the path is the
 * command API's, else the query API's (this page's origin).
 */
export async function download(session: Session, path: string, onCommandApi = false): Promise<string> {
  const base = onCommandApi ? (await appConfig()).commandUrl : "";
  let response: Response;
  try {
    response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${session.token}` } });
  } catch {
    throw new CommandError(0, "unreachable", "The service could not be reached.", {});
  }
  if (!response.ok) {
    let answer: Record<string, unknown> = {};
    try {
      answer = await response.json();
    } catch {
      answer = {};
    }
    const error = answer.error as { code?: string; message?: string } | string | undefined;
    const code = typeof error === "string" ? error : (error?.code ?? `http_${response.status}`);
    const message =
      (answer.message as string) ?? (typeof error === "object" ? error?.message : undefined) ?? `The download failed (${response.status}).`;
    throw new CommandError(response.status, code, message, {});
  }
  const disposition = response.headers.get("content-disposition") ?? "";
  const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? path.split("?")[0].split("/").pop() ?? "download";
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}
