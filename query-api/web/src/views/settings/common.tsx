// What the settings tabs share.
import { InlineNotification } from "@carbon/react";
import type { CommandError } from "../../api/commands";

/** A refusal of the command API, in its own words. */
export function Refused({ error }: { error: CommandError }) {
  return <InlineNotification kind="error" title="Refused" subtitle={error.message} hideCloseButton lowContrast role="alert" />;
}

/** The alert kinds, as a person reads them. */
export const ALERT_KINDS: Array<[string, string]> = [
  ["coverage_urgent", "an account's coverage turns urgent"],
  ["engagement_at_risk", "an account's engagement is at risk"],
  ["health_red", "a health score turns red"],
  ["task_overdue", "a task is overdue"],
  ["renewal_window", "a renewal comes within its window"],
  ["partner_report_submitted", "a partner submits a status report"],
  ["churn_risk_high", "an account's churn risk turns high"],
];
