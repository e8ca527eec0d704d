// The churn-risk score in words: a tag for lists and the explanation for the 360, factor by
// factor with the events behind each (docs/DOMAIN.md section 12).

import { useQuery } from "urql";
import { TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from "@carbon/react";
import { graphql } from "./gql";
import type { RiskBand, RiskFactorKind } from "./gql/graphql";
import { Pending, Problem, Table } from "./components";
import { day, one } from "./format";

export const BAND_WORDS: Record<RiskBand, string> = { HIGH: "high", WATCH: "watch", LOW: "low" };
const BAND_TAG: Record<RiskBand, "red" | "warm-gray" | "green"> = { HIGH: "red", WATCH: "warm-gray", LOW: "green" };

export function RiskTag({ risk }: { risk: { score: number; band: RiskBand } | null | undefined }) {
  if (!risk) return <span className="cs-muted">—</span>;
  return (
    <Tag size="sm" type={BAND_TAG[risk.band]} title={`Churn-risk score ${one(risk.score)} of 100: ${BAND_WORDS[risk.band]} risk`}>
      {one(risk.score)} {BAND_WORDS[risk.band]}
    </Tag>
  );
}

const CHURN_RISK = graphql(`
  query ChurnRisk($id: UUID!, $asOf: Date, $knownAt: DateTime) {
    customer(id: $id) {
      customerId
      churnRisk(asOf: $asOf, knownAt: $knownAt) {
        asOf
        score
        band
        highFrom
        watchFrom
        rulesVersion
        factors {
          factor
          label
          finding
          weight
          severity
          points
          evidence {
            eventId
            occurredAt
            description
          }
        }
      }
    }
  }
`);

/** What a factor reads when no single event is behind it. */
const NO_EVENT: Partial<Record<RiskFactorKind, string>> = {
  ENGAGEMENT: "the period's activities",
  ENGAGEMENT_TREND: "the two periods' activities",
  RENEWAL: "the renewal date on the profile",
};

/** The score of the day shown and how every factor made it. */
export function ChurnRiskPanel({ customerId, asOf, knownAt }: { customerId: string; asOf: string | null; knownAt: string | null }) {
  const [{ data, fetching, error }] = useQuery({ query: CHURN_RISK, variables: { id: customerId, asOf, knownAt } });
  const risk = data?.customer?.churnRisk;
  return (
    <section className="cs-section" aria-labelledby="risk-heading" data-testid="churn-risk">
      <h2 id="risk-heading">Churn risk</h2>
      <Problem error={error} />
      <Pending fetching={fetching} hasData={Boolean(data)} />
      {data && !risk ? <p className="cs-muted">The customer had not been onboarded by then.</p> : null}
      {risk ? (
        <>
          <p data-testid="churn-risk-summary">
            <RiskTag risk={risk} /> <strong>{one(risk.score)}</strong> of 100 on {day(risk.asOf)}: {BAND_WORDS[risk.band]} risk. High from {one(risk.highFrom)}, watch from{" "}
            {one(risk.watchFrom)}.{" "}
            <span className="cs-muted">
              {risk.rulesVersion.startsWith("what-if") ? "What-if rules." : risk.rulesVersion === "0" ? "Default rules." : `Rules version ${risk.rulesVersion}.`} Each factor adds its
              weight times how strongly it applies (0 to 1).
            </span>
          </p>
          <Table aria-label="Churn-risk factors" size="sm">
            <TableHead>
              <TableRow>
                <TableHeader>Factor</TableHeader>
                <TableHeader>What the record shows</TableHeader>
                <TableHeader>Points</TableHeader>
                <TableHeader>Behind it</TableHeader>
              </TableRow>
            </TableHead>
            <TableBody>
              {risk.factors.map((f) => (
                <TableRow key={f.label} data-testid="risk-factor">
                  <TableCell>{f.label}</TableCell>
                  <TableCell>{f.finding}</TableCell>
                  <TableCell>
                    <strong>{one(f.points)}</strong> <span className="cs-muted">of {one(f.weight)}</span>
                  </TableCell>
                  <TableCell>
                    {f.evidence.length === 0 ? (
                      <span className="cs-muted">{NO_EVENT[f.factor] ?? (f.severity == null ? "no data" : "nothing open")}</span>
                    ) : (
                      <ul>
                        {f.evidence.map((e) => (
                          <li key={e.eventId + e.description}>
                            {e.description}, {day(e.occurredAt)}{" "}
                            <span className="cs-muted" title={`event ${e.eventId}`}>
                              · event …{e.eventId.slice(-8)}
                            </span>
                          </li>
                        ))}
                      </ul>
                    )}
                  </TableCell>
                </TableRow>
              ))}
            </TableBody>
          </Table>
        </>
      ) : null}
    </section>
  );
}
