// Settings › Reminder rules: the conditions that remind an account's CSM on their own ("no
// contact in 14 days", "health below 50", "engagement at risk", "task overdue by 3 days"), each
// on or off with its threshold. Saving appends one Rules event with every rule (admins only);
// the version it makes is named on every firing (docs/DOMAIN.md section 13).

import { useEffect, useState } from "react";
import { useQuery } from "urql";
import { Button, InlineNotification, NumberInput, TableBody, TableCell, TableHead, TableHeader, TableRow, Toggle } from "@carbon/react";
import { graphql } from "../../gql";
import { useSession } from "../../App";
import { CommandError, command } from "../../api/commands";
import { Table } from "../../components";
import { when } from "../../format";
import { Refused } from "./common";

const REMINDER_RULES = graphql(`
  query ReminderRules {
    rules {
      version
      changedAt
      changedBy
      reminders {
        id
        title
        kind
        days
        score
        enabled
      }
    }
  }
`);

interface RuleRow {
  id: string;
  title: string;
  kind: string;
  days?: number | null;
  score?: number | null;
  enabled: boolean;
}

const CONDITION_WORDS: Record<string, string> = {
  no_contact: "no contact (other than a note) for this many days",
  health_below: "the latest health score is below",
  engagement_at_risk: "the 30-day engagement score is below 40",
  task_overdue: "an open task is overdue by this many days",
};

function condition(rule: RuleRow) {
  switch (rule.kind) {
    case "no_contact":
    case "task_overdue":
      return { kind: rule.kind, days: rule.days };
    case "health_below":
      return { kind: rule.kind, score: rule.score };
    default:
      return { kind: rule.kind };
  }
}

export function ReminderRules() {
  const session = useSession();
  const admin = session.role === "admin";
  const [{ data }, refetch] = useQuery({ query: REMINDER_RULES });
  const [rows, setRows] = useState<RuleRow[]>([]);
  const [error, setError] = useState<CommandError | null>(null);
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    if (data) setRows(data.rules.reminders.map((rule) => ({ ...rule })));
  }, [data]);
  const change = (index: number, patch: Partial<RuleRow>) => {
    setSaved(false);
    setRows(rows.map((row, at) => (at === index ? { ...row, ...patch } : row)));
  };
  const save = async () => {
    setError(null);
    try {
      await command(session, "PUT", "/api/v1/rules/reminders", {
        rules: rows.map((rule) => ({ id: rule.id, title: rule.title, condition: condition(rule), enabled: rule.enabled })),
      });
      setSaved(true);
      refetch({ requestPolicy: "network-only" });
    } catch (e) {
      setError(CommandError.from(e));
    }
  };
  if (!data) return <p className="cs-muted">Reading the rules…</p>;
  return (
    <section aria-labelledby="reminder-rules-heading">
      <h2 id="reminder-rules-heading">Reminder rules</h2>
      <p className="cs-muted">
        Each rule reminds the account&apos;s CSM once for each time its condition starts to hold (a new silence, a new fall below the score, each overdue task), and says why.
        Rules version {data.rules.version}
        {data.rules.changedAt ? `, changed ${when(data.rules.changedAt)} by ${data.rules.changedBy ?? "someone"}` : ", the defaults"}.
      </p>
      <Table size="md" aria-labelledby="reminder-rules-heading">
        <TableHead>
          <TableRow>
            <TableHeader>Rule</TableHeader>
            <TableHeader>Fires when</TableHeader>
            <TableHeader>Threshold</TableHeader>
            <TableHeader>On</TableHeader>
          </TableRow>
        </TableHead>
        <TableBody>
          {rows.map((rule, index) => (
            <TableRow key={rule.id} data-testid="reminder-rule">
              <TableCell>{rule.title}</TableCell>
              <TableCell>{CONDITION_WORDS[rule.kind] ?? rule.kind}</TableCell>
              <TableCell>
                {rule.days != null ? (
                  <NumberInput
                    id={`rule-${rule.id}-days`}
                    label={`Days for ${rule.title}`}
                    hideLabel
                    min={1}
                    max={365}
                    value={rule.days}
                    disabled={!admin}
                    onChange={(_, { value }) => change(index, { days: Number(value) || 1 })}
                  />
                ) : rule.score != null ? (
                  <NumberInput
                    id={`rule-${rule.id}-score`}
                    label={`Score for ${rule.title}`}
                    hideLabel
                    min={1}
                    max={100}
                    value={rule.score}
                    disabled={!admin}
                    onChange={(_, { value }) => change(index, { score: Number(value) || 1 })}
                  />
                ) : (
                  "—"
                )}
              </TableCell>
              <TableCell>
                <Toggle
                  id={`rule-${rule.id}-on`}
                  labelText={`${rule.title} on`}
                  hideLabel
                  labelA="Off"
                  labelB="On"
                  toggled={rule.enabled}
                  disabled={!admin}
                  onToggle={(on) => change(index, { enabled: on })}
                />
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
      {error ? <Refused error={error} /> : null}
      {saved ? <InlineNotification kind="success" title="Saved: the rules apply from the next check" hideCloseButton lowContrast role="status" /> : null}
      {admin ? (
        <Button style={{ marginTop: "1rem" }} onClick={save}>
          Save the reminder rules
        </Button>
      ) : (
        <p className="cs-muted">Only admins change the rules.</p>
      )}
    </section>
  );
}
