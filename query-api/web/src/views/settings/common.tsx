// What the settings tabs share.
import { InlineNotification } from "@carbon/react";
import type { CommandError } from "../../api/commands";

/** A refusal of the command API, in its own words. */
export function Refused({ error }: { error: CommandError }) {
  return <InlineNotification kind="error" title="Refused" subtitle={error.message} hideCloseButton lowContrast role="alert" />;
}
