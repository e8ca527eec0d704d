// The REST commands, sent with the user's bearer token. A refusal keeps the API's code,
// message and the fields it names, so forms can show each reason on its field.

import { appConfig } from "./config";
import type { Session } from "./session";

export class CommandError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, string>,
  ) {
    super(message);
  }
}

export async function command<T = Record<string, unknown>>(
  session: Session,
  method: "POST" | "PUT" | "PATCH" | "DELETE",
  path: string,
  body?: unknown,
): Promise<T> {
  const { commandUrl } = await appConfig();
  let response: Response;
  try {
    response = await fetch(`${commandUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${session.token}`,
        "content-type": "application/json",
        "idempotency-key": crypto.randomUUID(),
      },
      body: JSON.stringify(body ?? {}),
    });
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
    throw new CommandError(response.status, code, message, (answer.fields as Record<string, string>) ?? {});
  }
  return answer as T;
}
