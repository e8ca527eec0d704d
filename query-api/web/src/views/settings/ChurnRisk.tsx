// Settings › Churn risk: the factors' weights and the bands in force, a backtest of any change
// against the team's own churns and renewals before it is saved, and saving (admins only). The
// backtest recomputes every case under the proposed rules (the query's `rules` argument) and
// stores nothing (docs/DOMAIN.md section 12).

import { useState } from "react";
import { Link } from "react-router-dom";
import { useQuery } from "urql";
import { Button, InlineLoading, InlineNotification, NumberInput, Select, SelectItem, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@carbon/react";
import { graphql } from "../../gql";
import type { RiskRulesInput, RiskWeightsInput } from "../../gql/graphql";
import { useSession } from "../../App";
import { CommandError, command } from "../../api/commands";
import { Pager, Table } from "../../components";
import { count, day, one, pct } from "../../format";
import { FIELD_DEFINITIONS, type FieldDefinitionView } from "../../fieldsForm";
import { RiskTag } from "../../risk";
import { Refused } from "./common";

const RISK_RULES = graphql(`
  query RiskRulesInForce {
    rules {
      version
      risk {
        weights {
          health
          healthTrend
          engagement
          engagementTrend
          coverage
          contact
          nps
          issues
          escalations
          renewal
          adoption
        }
        custom {
          key
          weight
          equals
          atLeast
          atMost
        }
        highFrom
        watchFrom
      }
    }
  }
`);

const BACKTEST = graphql(`
  query RiskBacktest($rules: RulesInput) {
    churnRiskBacktest(rules: $rules) {
      rulesVersion
      churned
      renewed
      horizons {
        daysBefore
        cases
        churned
        flagged
        truePositives
        precision
        recall
        lift
        watchOrHighPrecision
        watchOrHighRecall
      }
      cases {
        customerId
        name
        outcome
        outcomeOn
        scores {
          daysBefore
          score
          band
        }
      }
    }
  }
`);

const FACTORS: Array<[keyof RiskWeightsInput, string, string]> = [
  ["health", "Health score", "100 minus the latest score, as a share"],
  ["healthTrend", "Health trend", "a fall of 20 points in 30 days is full"],
  ["engagement", "Engagement", "100 minus the 30-day engagement score, as a share"],
  ["engagementTrend", "Engagement trend", "a fall of 20 points is full"],
  ["coverage", "Coverage", "urgent is full, needs attention half"],
  ["contact", "Days since contact", "full at twice the tier's maximum days"],
  ["nps", "NPS", "a detractor is full, a passive half"],
  ["issues", "Open issues", "a critical issue is full, high ¾, medium ½, low ¼"],
  ["escalations", "Open escalations", "any open escalation is full"],
  ["renewal", "Renewal proximity", "full on the renewal date, none 120 days out"],
  ["adoption", "Adoption", "the stage and the share of use cases not live"],
];

type Custom = { key: string; weight: number; equals?: unknown; atLeast?: number | null; atMost?: number | null };
type Proposal = { weights: RiskWeightsInput; custom: Custom[]; highFrom: number; watchFrom: number };

const weightsOf = (w: RiskWeightsInput): RiskWeightsInput => Object.fromEntries(FACTORS.map(([field]) => [field, w[field]])) as RiskWeightsInput;
const asInput = (p: Proposal): RiskRulesInput => ({
  weights: weightsOf(p.weights),
  custom: p.custom.map((c) => ({ key: c.key, weight: c.weight, equals: c.equals ?? null, atLeast: c.atLeast ?? null, atMost: c.atMost ?? null })),
  highFrom: p.highFrom,
  watchFrom: p.watchFrom,
});
const same = (a: Proposal, b: Proposal) => JSON.stringify(asInput(a)) === JSON.stringify(asInput(b));

export function ChurnRisk() {
  const session = useSession();
  const admin = session.role === "admin";
  const [{ data, error: readError }, reread] = useQuery({ query: RISK_RULES, requestPolicy: "network-only" });
  const [{ data: fields }] = useQuery({ query: FIELD_DEFINITIONS });
  const [proposal, setProposal] = useState<Proposal | null>(null);
  const [state, setState] = useState<{ busy: boolean; error: CommandError | null; saved: string | null }>({ busy: false, error: null, saved: null });
  if (readError) return <InlineNotification kind="error" title="The rules could not be read" subtitle={readError.message} hideCloseButton lowContrast />;
  const risk = data?.rules.risk;
  if (!risk) return <InlineLoading description="Reading the rules in force" />;
  const inForce: Proposal = { weights: risk.weights, custom: risk.custom as Custom[], highFrom: risk.highFrom, watchFrom: risk.watchFrom };
  const shown = proposal ?? inForce;
  const sum = FACTORS.reduce((total, [field]) => total + shown.weights[field], 0) + shown.custom.reduce((total, c) => total + c.weight, 0);
  const addsUp = Math.abs(sum - 100) < 1e-6;
  const bandsOk = shown.watchFrom > 0 && shown.watchFrom < shown.highFrom && shown.highFrom <= 100;
  const changed = !same(shown, inForce);
  const definitions = ((fields?.customFieldDefinitions ?? []) as FieldDefinitionView[]).filter((d) => ["boolean", "select", "number", "currency"].includes(d.fieldType));
  const edit = (next: Proposal) => {
    setProposal(next);
    setState({ busy: false, error: null, saved: null });
  };
  const save = async () => {
    setState({ busy: true, error: null, saved: null });
    try {
      const input = asInput(shown);
      await command(session, "PUT", "/api/v1/rules/churn-risk", {
        weights: Object.fromEntries(FACTORS.map(([field]) => [snake(field), input.weights[field]])),
        custom: shown.custom.map((c) => ({ key: c.key, weight: c.weight, ...(c.equals != null ? { equals: c.equals } : {}), ...(c.atLeast != null ? { at_least: c.atLeast } : {}), ...(c.atMost != null ? { at_most: c.atMost } : {}) })),
        high_from: shown.highFrom,
        watch_from: shown.watchFrom,
      });
      setProposal(null);
      reread({ requestPolicy: "network-only" });
      setState({ busy: false, error: null, saved: "Saved. Every score uses the new weights from now on; past days are recomputed under them too." });
    } catch (error) {
      setState({ busy: false, error: CommandError.from(error), saved: null });
    }
  };
  return (
    <div style={{ maxWidth: "72rem" }}>
      <p className="cs-muted" style={{ margin: "1rem 0" }}>
        An account's churn risk is 0 to 100, higher is riskier: each factor adds its weight times how strongly it applies that day (0 to 1). Weights are points and make 100 together.{" "}
        {admin ? "Try a change and backtest it against your own churns and renewals before you save it." : "Only an administrator may change them; you may try a change and backtest it."}
      </p>
      <section aria-labelledby="risk-weights-heading">
        <h2 id="risk-weights-heading">Factors and their weights</h2>
        <Table size="sm" aria-labelledby="risk-weights-heading">
          <TableHead>
            <TableRow>
              <TableHeader>Factor</TableHeader>
              <TableHeader>Full severity when</TableHeader>
              <TableHeader>Points</TableHeader>
            </TableRow>
          </TableHead>
          <TableBody>
            {FACTORS.map(([field, label, rule]) => (
              <TableRow key={field}>
                <TableCell>{label}</TableCell>
                <TableCell className="cs-muted">{rule}</TableCell>
                <TableCell>
                  <NumberInput
                    id={`risk-weight-${field}`}
                    label={<span className="cs-visually-hidden">{`${label}, points`}</span>}
                    hideSteppers
                    size="sm"
                    min={0}
                    max={100}
                    step={1}
                    value={shown.weights[field]}
                    onChange={(_, { value }) => {
                      const n = Number(value);
                      if (Number.isFinite(n)) edit({ ...shown, weights: { ...shown.weights, [field]: n } });
                    }}
                  />
                </TableCell>
              </TableRow>
            ))}
            {shown.custom.map((c, index) => {
              const definition = definitions.find((d) => d.key === c.key);
              return (
                <TableRow key={c.key} data-testid="custom-risk-factor">
                  <TableCell>{definition?.label ?? c.key} (custom field)</TableCell>
                  <TableCell className="cs-muted">
                    {c.equals != null ? `the value is ${c.equals === true ? "yes" : c.equals === false ? "no" : String(c.equals)}` : `the number is ${c.atLeast != null ? `at least ${c.atLeast}` : ""}${c.atMost != null ? ` at most ${c.atMost}` : ""}`}{" "}
                    <Button kind="ghost" size="sm" onClick={() => edit({ ...shown, custom: shown.custom.filter((_, i) => i !== index) })}>
                      Remove
                    </Button>
                  </TableCell>
                  <TableCell>
                    <NumberInput
                      id={`risk-weight-custom-${c.key}`}
                      label={<span className="cs-visually-hidden">{`${definition?.label ?? c.key}, points`}</span>}
                      hideSteppers
                      size="sm"
                      min={0}
                      max={100}
                      step={1}
                      value={c.weight}
                      onChange={(_, { value }) => {
                        const n = Number(value);
                        if (Number.isFinite(n)) edit({ ...shown, custom: shown.custom.map((x, i) => (i === index ? { ...x, weight: n } : x)) });
                      }}
                    />
                  </TableCell>
                </TableRow>
              );
            })}
          </TableBody>
        </Table>
        <p data-testid="risk-weights-sum" className={addsUp ? "cs-muted" : "cs-error-text"} role="status">
          Together: {Math.round(sum * 100) / 100} points{addsUp ? "" : " (they must make 100)"}
        </p>
        <AddCustomFactor definitions={definitions.filter((d) => !shown.custom.some((c) => c.key === d.key))} onAdd={(c) => edit({ ...shown, custom: [...shown.custom, c] })} />
      </section>
      <section aria-labelledby="risk-bands-heading" style={{ marginTop: "1.5rem" }}>
        <h2 id="risk-bands-heading">Bands</h2>
        <div className="cs-toolbar">
          <NumberInput id="risk-high-from" label="High from" hideSteppers min={1} max={100} step={1} value={shown.highFrom} onChange={(_, { value }) => Number.isFinite(Number(value)) && edit({ ...shown, highFrom: Number(value) })} />
          <NumberInput id="risk-watch-from" label="Watch from" hideSteppers min={1} max={100} step={1} value={shown.watchFrom} onChange={(_, { value }) => Number.isFinite(Number(value)) && edit({ ...shown, watchFrom: Number(value) })} />
        </div>
        {bandsOk ? null : <p className="cs-error-text">Watch starts above 0 and below high; high is at most 100.</p>}
      </section>
      {state.error ? <Refused error={state.error} /> : null}
      {state.saved ? <InlineNotification kind="success" title={state.saved} hideCloseButton lowContrast role="status" /> : null}
      <div className="cs-toolbar" style={{ marginTop: "1rem" }}>
        {admin ? (
          <Button onClick={save} disabled={!changed || !addsUp || !bandsOk || state.busy}>
            {state.busy ? "Saving…" : "Save the churn-risk rules"}
          </Button>
        ) : null}
        <Button kind="secondary" disabled={!changed || state.busy} onClick={() => edit(inForce)}>
          Put back the rules in force
        </Button>
      </div>
      <Backtest proposal={changed && addsUp && bandsOk ? asInput(shown) : null} />
    </div>
  );
}

const snake = (field: string) => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function AddCustomFactor({ definitions, onAdd }: { definitions: FieldDefinitionView[]; onAdd: (c: Custom) => void }) {
  const [key, setKey] = useState("");
  const [match, setMatch] = useState("");
  const definition = definitions.find((d) => d.key === key);
  if (definitions.length === 0) return null;
  const numeric = definition && (definition.fieldType === "number" || definition.fieldType === "currency");
  const choices: Array<[string, string]> = definition?.fieldType === "boolean" ? [["true", "yes"], ["false", "no"]] : (definition?.options ?? []).map((o) => [JSON.stringify(o), o]);
  return (
    <div className="cs-toolbar" role="group" aria-label="Add a custom field as a factor">
      <Select id="risk-custom-field" labelText="Add a custom field as a factor" value={key} onChange={(e) => { setKey(e.target.value); setMatch(""); }}>
        <SelectItem value="" text="Choose a field" />
        {definitions.map((d) => (
          <SelectItem key={d.key} value={d.key} text={d.label} />
        ))}
      </Select>
      {definition && numeric ? (
        <NumberInput id="risk-custom-at-least" label="Risk when at least" hideSteppers value={match} onChange={(_, { value }) => setMatch(String(value))} />
      ) : definition ? (
        <Select id="risk-custom-equals" labelText="Risk when the value is" value={match} onChange={(e) => setMatch(e.target.value)}>
          <SelectItem value="" text="Choose a value" />
          {choices.map(([value, text]) => (
            <SelectItem key={value} value={value} text={text} />
          ))}
        </Select>
      ) : null}
      <Button
        kind="tertiary"
        disabled={!definition || match === ""}
        onClick={() => {
          onAdd(numeric ? { key, weight: 0, atLeast: Number(match) } : { key, weight: 0, equals: JSON.parse(match) });
          setKey("");
          setMatch("");
        }}
      >
        Add with 0 points
      </Button>
    </div>
  );
}

const ratio = (value: number | null | undefined) => (value == null ? "—" : pct(value * 100));

/** The backtest under the rules in force and, when there is one, under the proposal. */
function Backtest({ proposal }: { proposal: RiskRulesInput | null }) {
  const [{ data: now, error }] = useQuery({ query: BACKTEST, variables: { rules: null } });
  const [{ data: then, fetching }] = useQuery({ query: BACKTEST, variables: { rules: { risk: proposal } }, pause: !proposal });
  const [offset, setOffset] = useState(0);
  const shown = (proposal ? then : now)?.churnRiskBacktest;
  const base = now?.churnRiskBacktest;
  return (
    <section aria-labelledby="backtest-heading" style={{ marginTop: "2rem" }} data-testid="risk-backtest">
      <h2 id="backtest-heading">Backtest against your history</h2>
      {error ? <InlineNotification kind="error" title="The backtest could not run" subtitle={error.message} hideCloseButton lowContrast /> : null}
      {!base ? <InlineLoading description="Scoring every churn and renewal in the store" /> : null}
      {base ? (
        <>
          <p className="cs-muted">
            {count(base.churned, "churn", "churns")} and {count(base.renewed, "renewal", "renewals")} in the store, each scored 30, 60 and 90 days before it. Precision: of the accounts in the high band, the
            share that churned. Recall: of the accounts that churned, the share the high band caught. Lift: how much likelier a high-band account churned than any account.
          </p>
          {base.churned === 0 || base.renewed === 0 ? <p className="cs-muted">With {base.churned === 0 ? "no churn" : "no renewal"} on record, precision and recall say little yet.</p> : null}
          {proposal && fetching ? <InlineLoading description="Backtesting the change" /> : null}
          <Table size="sm" aria-label="Backtest by horizon">
            <TableHead>
              <TableRow>
                <TableHeader>Days before</TableHeader>
                <TableHeader>Cases</TableHeader>
                <TableHeader>Churned</TableHeader>
                <TableHeader>In the high band</TableHeader>
                <TableHeader>Precision</TableHeader>
                <TableHeader>Recall</TableHeader>
                <TableHeader>Lift</TableHeader>
                <TableHeader>High or watch: precision, recall</TableHeader>
              </TableRow>
            </TableHead>
            <TableBody>
              {base.horizons.map((h, index) => {
                const p = proposal ? then?.churnRiskBacktest.horizons[index] : null;
                const pair = (a: string, b: string | null) => (p && b !== null && b !== a ? `${a} → ${b}` : a);
                return (
                  <TableRow key={h.daysBefore} data-testid="backtest-horizon">
                    <TableCell>{h.daysBefore}</TableCell>
                    <TableCell>{h.cases}</TableCell>
                    <TableCell>{h.churned}</TableCell>
                    <TableCell>{pair(String(h.flagged), p ? String(p.flagged) : null)}</TableCell>
                    <TableCell>{pair(ratio(h.precision), p ? ratio(p.precision) : null)}</TableCell>
                    <TableCell>{pair(ratio(h.recall), p ? ratio(p.recall) : null)}</TableCell>
                    <TableCell>{pair(h.lift == null ? "—" : one(h.lift), p ? (p.lift == null ? "—" : one(p.lift)) : null)}</TableCell>
                    <TableCell>
                      {pair(`${ratio(h.watchOrHighPrecision)}, ${ratio(h.watchOrHighRecall)}`, p ? `${ratio(p.watchOrHighPrecision)}, ${ratio(p.watchOrHighRecall)}` : null)}
                    </TableCell>
                  </TableRow>
                );
              })}
            </TableBody>
          </Table>
          {proposal ? <p className="cs-muted">Figures after an arrow are under your change; the rest are the same under both.</p> : null}
          {shown && shown.cases.length > 0 ? (
            <>
              <h3 style={{ marginTop: "1.5rem" }}>The cases{proposal ? ", under your change" : ""}</h3>
              <Table size="sm" aria-label="Backtest cases">
                <TableHead>
                  <TableRow>
                    <TableHeader>Customer</TableHeader>
                    <TableHeader>Outcome</TableHeader>
                    {shown.cases[0].scores.map((s) => (
                      <TableHeader key={s.daysBefore}>{s.daysBefore} days before</TableHeader>
                    ))}
                  </TableRow>
                </TableHead>
                <TableBody>
                  {shown.cases.slice(offset, offset + 25).map((c) => (
                    <TableRow key={c.customerId + c.outcomeOn} data-testid="backtest-case">
                      <TableCell>
                        <Link to={`/customers/${c.customerId}`}>{c.name}</Link>
                      </TableCell>
                      <TableCell>
                        {c.outcome === "CHURNED" ? "churned" : "renewed"} {day(c.outcomeOn)}
                      </TableCell>
                      {c.scores.map((s) => (
                        <TableCell key={s.daysBefore}>{s.score == null || !s.band ? <span className="cs-muted">not yet a customer</span> : <RiskTag risk={{ score: s.score, band: s.band }} />}</TableCell>
                      ))}
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
              <Pager label="Backtest cases" offset={offset} size={25} total={shown.cases.length} onChange={setOffset} />
            </>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
