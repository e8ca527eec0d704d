// Settings › Rules: the coverage standards, engagement weights and workload hours in force, and
// what a change would do to today's reports before it is saved. The preview recomputes the
// reports under the proposed rules (the queries' `rules` argument) and stores nothing; saving
// appends one Rules event per changed tier or weight set (admins only).

import { useMemo, useState } from "react";
import { useQuery } from "urql";
import { Button, InlineLoading, InlineNotification, NumberInput, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@carbon/react";
import { graphql } from "../../gql";
import type { RulesInput, Tier } from "../../gql/graphql";
import { useSession } from "../../App";
import { CommandError, command } from "../../api/commands";
import { Table } from "../../components";
import { count, one, pct, when } from "../../format";
import { Refused } from "./common";

const RULES = graphql(`
  query RulesInForce {
    rules {
      version
      changedAt
      changedBy
      standards {
        tier
        maxDaysBetweenContact
        expectedTouchesPerMonth
        minMeetingsPerQuarter
        stakeholderBreadth
        hoursPerMonth
      }
      weights {
        email
        response
        meeting
        quality
        breadth
        recency
      }
    }
  }
`);

const PREVIEW = graphql(`
  query RulesPreview($rules: RulesInput) {
    coverageReport(rules: $rules) {
      rulesVersion
      summary {
        accounts
        wellCovered
        underCovered
        overCovered
        averageScore
      }
    }
    engagementMetrics(rules: $rules) {
      averageScore
      distribution {
        category
        customers
      }
    }
    csmWorkload(rules: $rules) {
      averageUtilizationPct
      csms {
        csmId
        utilizationPct
      }
    }
  }
`);

type Standard = {
  tier: Tier;
  maxDaysBetweenContact: number;
  expectedTouchesPerMonth: number;
  minMeetingsPerQuarter: number;
  stakeholderBreadth: number;
  hoursPerMonth: number;
};
type Weights = { email: number; response: number; meeting: number; quality: number; breadth: number; recency: number };

const TIER_WORDS: Record<Tier, string> = { ENTERPRISE: "Enterprise", MID_MARKET: "Mid-market", SMB: "SMB" };
/** The tier as the command API names it. */
const REST_TIER: Record<Tier, string> = { ENTERPRISE: "Enterprise", MID_MARKET: "MidMarket", SMB: "SMB" };

const STANDARD_FIELDS: Array<[keyof Omit<Standard, "tier">, string, number, number, number]> = [
  // field, label, min, max, step
  ["maxDaysBetweenContact", "Most days between contacts", 1, 365, 1],
  ["expectedTouchesPerMonth", "Touches expected a month", 1, 100, 1],
  ["minMeetingsPerQuarter", "Meetings a quarter, at least", 1, 100, 1],
  ["stakeholderBreadth", "Stakeholders to reach", 1, 100, 1],
  ["hoursPerMonth", "CSM hours an account needs a month", 0.01, 744, 0.5],
];

const WEIGHT_FIELDS: Array<[keyof Weights, string]> = [
  ["email", "E-mail volume"],
  ["response", "Response rate"],
  ["meeting", "Meetings"],
  ["quality", "Interaction quality"],
  ["breadth", "Stakeholder breadth"],
  ["recency", "Recency"],
];

/** The six weights alone (a query's answer also carries its type name). */
const weightsOf = (w: Weights): Weights => ({ email: w.email, response: w.response, meeting: w.meeting, quality: w.quality, breadth: w.breadth, recency: w.recency });

/** A proposal as the queries' `rules` argument; hours are part of it too. */
function asInput(standards: Standard[], weights: Weights): RulesInput {
  return {
    weights: weightsOf(weights),
    standards: standards.map(({ tier, maxDaysBetweenContact, expectedTouchesPerMonth, minMeetingsPerQuarter, stakeholderBreadth }) => ({
      tier,
      maxDaysBetweenContact,
      expectedTouchesPerMonth,
      minMeetingsPerQuarter,
      stakeholderBreadth,
    })),
    hours: standards.map(({ tier, hoursPerMonth }) => ({ tier, hoursPerMonth })),
  };
}

const sameStandard = (a: Standard, b: Standard) => STANDARD_FIELDS.every(([field]) => a[field] === b[field]);
const sameWeights = (a: Weights, b: Weights) => WEIGHT_FIELDS.every(([field]) => a[field] === b[field]);
/** Weights as whole percentages on screen, fractions in the API; rounding keeps 0.15 at 15. */
const toPct = (weight: number) => Math.round(weight * 10000) / 100;

export function Rules() {
  const session = useSession();
  const admin = session.role === "admin";
  const [{ data, error: readError }, reread] = useQuery({ query: RULES, requestPolicy: "network-only" });
  const inForce = data?.rules;
  const [standards, setStandards] = useState<Standard[] | null>(null);
  const [weights, setWeights] = useState<Weights | null>(null);
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null; saved: string | null }>({ busy: false, error: null, saved: null });
  if (readError) return <InlineNotification kind="error" title="The rules could not be read" subtitle={readError.message} hideCloseButton lowContrast />;
  if (!inForce) return <InlineLoading description="Reading the rules in force" />;
  const shownStandards = standards ?? inForce.standards;
  const shownWeights = weights ?? inForce.weights;
  const weightSum = WEIGHT_FIELDS.reduce((sum, [field]) => sum + toPct(shownWeights[field]), 0);
  const weightsAddUp = Math.abs(weightSum - 100) < 1e-6;
  const changedStandards = shownStandards.filter((s) => !sameStandard(s, inForce.standards.find((f) => f.tier === s.tier)!));
  const weightsChanged = !sameWeights(shownWeights, inForce.weights);
  const changed = changedStandards.length > 0 || weightsChanged;

  const setStandard = (tier: Tier, field: keyof Omit<Standard, "tier">, value: number) => {
    setStandards(shownStandards.map((s) => (s.tier === tier ? { ...s, [field]: value } : s)));
    setState({ busy: false, error: null, saved: null });
  };
  const setWeight = (field: keyof Weights, percent: number) => {
    setWeights({ ...shownWeights, [field]: Math.round(percent * 100) / 10000 });
    setState({ busy: false, error: null, saved: null });
  };
  const save = async () => {
    setState({ busy: true, error: null, saved: null });
    const said: string[] = [];
    try {
      // One event per change, in this order; a refusal stops here and says what was saved.
      for (const s of changedStandards) {
        const before = inForce.standards.find((f) => f.tier === s.tier)!;
        if (STANDARD_FIELDS.slice(0, 4).some(([field]) => s[field] !== before[field])) {
          await command(session, "PUT", "/api/v1/rules/coverage-standards", {
            tier: REST_TIER[s.tier],
            max_days_between_contact: s.maxDaysBetweenContact,
            expected_touches_per_month: s.expectedTouchesPerMonth,
            min_meetings_per_quarter: s.minMeetingsPerQuarter,
            stakeholder_breadth: s.stakeholderBreadth,
          });
          said.push(`${TIER_WORDS[s.tier]} standards`);
        }
        if (s.hoursPerMonth !== before.hoursPerMonth) {
          await command(session, "PUT", "/api/v1/rules/workload-hours", { tier: REST_TIER[s.tier], hours_per_month: s.hoursPerMonth });
          said.push(`${TIER_WORDS[s.tier]} hours`);
        }
      }
      if (weightsChanged) {
        await command(session, "PUT", "/api/v1/rules/engagement-weights", weightsOf(shownWeights));
        said.push("engagement weights");
      }
      setStandards(null);
      setWeights(null);
      reread({ requestPolicy: "network-only" });
      setState({ busy: false, error: null, saved: `Saved: ${said.join(", ")}. Reports use the new rules from now on.` });
    } catch (error) {
      reread({ requestPolicy: "network-only" });
      setState({ busy: false, error: CommandError.from(error), saved: said.length ? `Saved before the refusal: ${said.join(", ")}.` : null });
    }
  };

  return (
    <div style={{ maxWidth: "64rem" }}>
      <p className="cs-muted" style={{ margin: "1rem 0" }}>
        {inForce.version === "0" ? "The built-in rules are in force; no one has changed them." : `In force since ${when(inForce.changedAt)}${inForce.changedBy ? `, set by ${inForce.changedBy}` : ""}.`}{" "}
        {admin ? "Change a figure to see what it would do to today's reports before you save it." : "Only an administrator may change them; you may try a change and see what it would do."}
      </p>
      <section aria-labelledby="standards-heading">
        <h2 id="standards-heading">Coverage standards and workload, by tier</h2>
        <Table size="md" aria-labelledby="standards-heading">
          <TableHead>
            <TableRow>
              <TableHeader>Rule</TableHeader>
              {shownStandards.map((s) => (
                <TableHeader key={s.tier}>{TIER_WORDS[s.tier]}</TableHeader>
              ))}
            </TableRow>
          </TableHead>
          <TableBody>
            {STANDARD_FIELDS.map(([field, label, min, max, step]) => (
              <TableRow key={field}>
                <TableCell>{label}</TableCell>
                {shownStandards.map((s) => (
                  <TableCell key={s.tier}>
                    <NumberInput
                      id={`rule-${s.tier}-${field}`}
                      label={<span className="cs-visually-hidden">{`${label}, ${TIER_WORDS[s.tier]}`}</span>}
                      hideSteppers
                      size="sm"
                      min={min}
                      max={max}
                      step={step}
                      value={s[field]}
                      onChange={(_, { value }) => {
                        const n = Number(value);
                        if (Number.isFinite(n)) setStandard(s.tier, field, n);
                      }}
                    />
                  </TableCell>
                ))}
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </section>
      <section aria-labelledby="weights-heading" style={{ marginTop: "2rem" }}>
        <h2 id="weights-heading">Engagement score weights</h2>
        <p className="cs-muted">Each part's share of the engagement score, in percent; together they make 100.</p>
        <div className="cs-weights">
          {WEIGHT_FIELDS.map(([field, label]) => (
            <NumberInput
              key={field}
              id={`weight-${field}`}
              label={`${label} (%)`}
              hideSteppers
              min={0}
              max={100}
              step={1}
              value={toPct(shownWeights[field])}
              onChange={(_, { value }) => {
                const n = Number(value);
                if (Number.isFinite(n)) setWeight(field, n);
              }}
            />
          ))}
        </div>
        <p data-testid="weights-sum" className={weightsAddUp ? "cs-muted" : "cs-error-text"} role="status">
          Together: {Math.round(weightSum * 100) / 100}%{weightsAddUp ? "" : " (they must make 100%)"}
        </p>
      </section>
      {changed && weightsAddUp ? <Preview proposal={asInput(shownStandards, shownWeights)} /> : null}
      {state.error ? <Refused error={state.error} /> : null}
      {state.saved ? <InlineNotification kind={state.error ? "warning" : "success"} title={state.saved} hideCloseButton lowContrast role="status" /> : null}
      <div className="cs-toolbar" style={{ marginTop: "1rem" }}>
        {admin ? (
          <Button onClick={save} disabled={!changed || !weightsAddUp || state.busy}>
            {state.busy ? "Saving…" : "Save the new rules"}
          </Button>
        ) : null}
        <Button
          kind="secondary"
          disabled={!changed || state.busy}
          onClick={() => {
            setStandards(null);
            setWeights(null);
            setState({ busy: false, error: null, saved: null });
          }}
        >
          Put back the rules in force
        </Button>
      </div>
    </div>
  );
}

/** Today's reports under the rules in force beside the same reports under the proposal. */
function Preview({ proposal }: { proposal: RulesInput }) {
  // The proposal as text keys the query, so typing a figure re-runs it once per distinct proposal.
  const key = JSON.stringify(proposal);
  const variables = useMemo(() => ({ rules: JSON.parse(key) as RulesInput }), [key]);
  const [{ data: now }] = useQuery({ query: PREVIEW, variables: { rules: null } });
  const [{ data: then, fetching, error }] = useQuery({ query: PREVIEW, variables });
  if (error) return <Refused error={new CommandError(400, "preview", error.graphQLErrors[0]?.message ?? error.message, {})} />;
  if (!now || !then) return <InlineLoading description={fetching ? "Recomputing today's reports under the new rules" : "Reading today's reports"} />;
  const atRisk = (d: typeof now) => d.engagementMetrics.distribution.find((c) => c.category === "AT_RISK")?.customers ?? 0;
  const overloaded = (d: typeof now) => d.csmWorkload.csms.filter((c) => c.utilizationPct > 100).length;
  const rows: Array<[string, string, string, string]> = [
    ["Under-covered accounts", String(now.coverageReport.summary.underCovered), String(then.coverageReport.summary.underCovered), "preview-under"],
    ["Well-covered accounts", String(now.coverageReport.summary.wellCovered), String(then.coverageReport.summary.wellCovered), "preview-well"],
    ["Over-covered accounts", String(now.coverageReport.summary.overCovered), String(then.coverageReport.summary.overCovered), "preview-over"],
    ["Average coverage score", one(now.coverageReport.summary.averageScore), one(then.coverageReport.summary.averageScore), "preview-coverage-score"],
    ["Average engagement score", one(now.engagementMetrics.averageScore), one(then.engagementMetrics.averageScore), "preview-engagement-score"],
    ["Accounts whose engagement is at risk", String(atRisk(now)), String(atRisk(then)), "preview-at-risk"],
    ["Average CSM utilization", pct(now.csmWorkload.averageUtilizationPct), pct(then.csmWorkload.averageUtilizationPct), "preview-utilization"],
    ["CSMs over capacity", String(overloaded(now)), String(overloaded(then)), "preview-overloaded"],
  ];
  return (
    <section aria-labelledby="preview-heading" style={{ marginTop: "2rem" }}>
      <h2 id="preview-heading">What the change would do today</h2>
      <p className="cs-muted">
        Today's reports over {count(now.coverageReport.summary.accounts, "account", "accounts")}, recomputed under the proposed rules. Nothing is
        saved until you save.
      </p>
      <Table size="sm" aria-labelledby="preview-heading">
        <TableHead>
          <TableRow>
            <TableHeader>Figure</TableHeader>
            <TableHeader>Under the rules in force</TableHeader>
            <TableHeader>Under the proposal</TableHeader>
          </TableRow>
        </TableHead>
        <TableBody>
          {rows.map(([label, before, after, testId]) => (
            <TableRow key={testId} data-testid={testId}>
              <TableCell>{label}</TableCell>
              <TableCell>{before}</TableCell>
              <TableCell>
                {after}
                {after !== before ? <strong className="cs-changed"> (changed)</strong> : null}
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
    </section>
  );
}
