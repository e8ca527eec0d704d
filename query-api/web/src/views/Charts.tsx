// Charts, loaded apart from the rest of the client (they are its largest part).
import { Alignments, DonutChart, GaugeChart, GaugeTypes, LineChart, ScaleTypes, SimpleBarChart, StackedBarChart, Statuses } from "@carbon/charts-react";
import "@carbon/charts-react/styles.css";
import { periodWords } from "../format";

export interface HealthPointView {
  bucket: string;
  score: number;
  colour: string;
  measuredInBucket: boolean;
  lineage: {
    eventId: string;
    source: string;
    actorId: string;
    actorRole: string;
    reason?: string | null;
    measuredAt: string;
    recordedAt: string;
  };
}

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** The health trend; hovering a point shows the event behind it (its lineage). */
export function HealthChart({ points }: { points: HealthPointView[] }) {
  const byBucket = new Map(points.map((p) => [p.bucket, p]));
  return (
    <LineChart
      data={points.map((p) => ({ group: "Health", date: p.bucket, value: p.score }))}
      options={{
        title: "Health score",
        height: "280px",
        axes: {
          bottom: { mapsTo: "date", scaleType: ScaleTypes.TIME, title: "Week" },
          left: { mapsTo: "value", domain: [0, 100], title: "Score" },
        },
        legend: { enabled: false },
        tooltip: {
          customHTML: (data: Array<{ date: Date | string }>) => {
            const first = data?.[0];
            if (!first) return "";
            const bucket = new Date(first.date).toISOString().slice(0, 10);
            const point = byBucket.get(bucket);
            if (!point) return "";
            const l = point.lineage;
            return `<div class="cs-lineage" data-testid="lineage"><strong>${bucket}: ${point.score.toFixed(1)} (${escape(
              point.colour.toLowerCase(),
            )})</strong><br/>${point.measuredInBucket ? "measured this week" : "carried forward"}<br/>source ${escape(l.source)} by ${escape(
              l.actorId,
            )} (${escape(l.actorRole)})${l.reason ? `<br/>reason: ${escape(l.reason)}` : ""}<br/>measured ${escape(
              l.measuredAt.slice(0, 16),
            )}, recorded ${escape(l.recordedAt.slice(0, 16))}<br/>event ${escape(l.eventId)}</div>`;
          },
        },
        accessibility: { svgAriaLabel: "Health score over time" },
      }}
    />
  );
}

/** Engagement score per period. */
export function EngagementChart({ periods }: { periods: Array<{ period: string; score: number }> }) {
  return (
    <LineChart
      data={periods.map((p) => ({ group: "Engagement", key: p.period, value: p.score }))}
      options={{
        title: "Engagement score",
        height: "280px",
        axes: {
          bottom: { mapsTo: "key", scaleType: ScaleTypes.LABELS, title: "Period" },
          left: { mapsTo: "value", domain: [0, 100], title: "Score" },
        },
        legend: { enabled: false },
        accessibility: { svgAriaLabel: "Engagement score per period" },
      }}
    />
  );
}

// ---- The portfolio's charts (the dashboard) -------------------------------------------------

/** Health colours as people say them, and as the charts paint them (Carbon's support colours). */
export const COLOUR_WORDS: Record<string, string> = { GREEN: "Green", YELLOW: "Yellow", RED: "Red", NONE: "No score" };
const COLOUR_SCALE = { Green: "#24a148", Yellow: "#f1c21b", Red: "#da1e28", "No score": "#8d8d8d" };
const TIER_WORDS: Record<string, string> = { ENTERPRISE: "Enterprise", MID_MARKET: "Mid-market", SMB: "SMB" };

/** An axis amount in short words: $950, $12K, $3.4M. */
export function shortMoney(value: number): string {
  const abs = Math.abs(value);
  const [n, unit] = abs >= 1e9 ? [value / 1e9, "B"] : abs >= 1e6 ? [value / 1e6, "M"] : abs >= 1e3 ? [value / 1e3, "K"] : [value, ""];
  const digits = Math.abs(n) >= 100 || unit === "" ? 0 : 1;
  return `$${n.toFixed(digits).replace(/\.0$/, "")}${unit}`;
}

export interface Slice {
  colour?: string | null;
  accounts: number;
  arr: string;
}

/** A chart with its figures as a table beneath, for screen readers and for reading exact values. */
function Figure({ id, title, children, table }: { id: string; title: string; children: React.ReactNode; table: { head: string[]; rows: Array<Array<string | number>> } }) {
  return (
    <figure className="cs-chart" data-testid={`chart-${id}`} aria-labelledby={`chart-${id}-title`}>
      <figcaption id={`chart-${id}-title`} className="cs-chart-title">
        {title}
      </figcaption>
      {children}
      <details className="cs-chart-table">
        <summary>The figures as a table</summary>
        <table className="cs-plain-table">
          <thead>
            <tr>
              {table.head.map((h) => (
                <th key={h} scope="col">
                  {h}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {table.rows.map((row) => (
              <tr key={String(row[0])}>
                {row.map((cell, i) => (i === 0 ? <th key={i} scope="row">{cell}</th> : <td key={i}>{cell}</td>))}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}

const colourName = (slice: Slice) => COLOUR_WORDS[slice.colour ?? "NONE"];

/** How many accounts are green, yellow, red or without a score. */
export function HealthDonut({ slices, money }: { slices: Slice[]; money: (d: string) => string }) {
  const total = slices.reduce((n, s) => n + s.accounts, 0);
  return (
    <Figure id="health-donut" title="Accounts by health" table={{ head: ["Health", "Accounts", "ARR"], rows: slices.map((s) => [colourName(s), s.accounts, money(s.arr)]) }}>
      <DonutChart
        data={slices.map((s) => ({ group: colourName(s), value: s.accounts }))}
        options={{
          height: "240px",
          resizable: true,
          donut: { center: { label: total === 1 ? "account" : "accounts" }, alignment: Alignments.CENTER },
          color: { scale: COLOUR_SCALE },
          legend: { alignment: Alignments.CENTER },
          toolbar: { enabled: false },
          accessibility: { svgAriaLabel: "Accounts by health colour" },
        }}
      />
    </Figure>
  );
}

/** ARR by health colour. */
export function ArrByHealth({ slices, money }: { slices: Slice[]; money: (d: string) => string }) {
  return (
    <Figure id="arr-by-health" title="ARR by health" table={{ head: ["Health", "ARR", "Accounts"], rows: slices.map((s) => [colourName(s), money(s.arr), s.accounts]) }}>
      <SimpleBarChart
        data={slices.map((s) => ({ group: colourName(s), value: Number(s.arr) }))}
        options={{
          height: "240px",
          axes: {
            left: { mapsTo: "group", scaleType: ScaleTypes.LABELS },
            bottom: { mapsTo: "value", ticks: { formatter: (v: number | Date) => shortMoney(Number(v)) } },
          },
          color: { scale: COLOUR_SCALE },
          legend: { enabled: false },
          toolbar: { enabled: false },
          tooltip: { valueFormatter: (v: unknown) => (typeof v === "number" ? shortMoney(v) : String(v)) },
          accessibility: { svgAriaLabel: "ARR by health colour" },
        }}
      />
    </Figure>
  );
}

/** ARR by tier (from the CSMs' books: every account has a CSM). */
export function ArrByTier({ tiers, money }: { tiers: Array<{ tier: string; accounts: number; arr: string }>; money: (d: string) => string }) {
  return (
    <Figure id="arr-by-tier" title="ARR by tier" table={{ head: ["Tier", "ARR", "Accounts"], rows: tiers.map((t) => [TIER_WORDS[t.tier] ?? t.tier, money(t.arr), t.accounts]) }}>
      <SimpleBarChart
        data={tiers.map((t) => ({ group: TIER_WORDS[t.tier] ?? t.tier, value: Number(t.arr) }))}
        options={{
          height: "240px",
          axes: {
            left: { mapsTo: "group", scaleType: ScaleTypes.LABELS },
            bottom: { mapsTo: "value", ticks: { formatter: (v: number | Date) => shortMoney(Number(v)) } },
          },
          color: { scale: { Enterprise: "#0f62fe", "Mid-market": "#4589ff", SMB: "#a6c8ff" } },
          legend: { enabled: false },
          toolbar: { enabled: false },
          tooltip: { valueFormatter: (v: unknown) => (typeof v === "number" ? shortMoney(v) : String(v)) },
          accessibility: { svgAriaLabel: "ARR by tier" },
        }}
      />
    </Figure>
  );
}

const MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const monthWords = (month: string) => `${MONTH_NAMES[Number(month.slice(5, 7)) - 1]} ${month.slice(0, 4)}`;

/** The renewal pipeline: ARR renewing each month, stacked by health colour. */
export function RenewalPipeline({ months, money }: { months: Array<{ month: string; accounts: number; arr: string; colours: Slice[] }>; money: (d: string) => string }) {
  return (
    <Figure
      id="renewal-pipeline"
      title="ARR renewing each month, by health"
      table={{
        head: ["Month", "Accounts", "ARR", "Green", "Yellow", "Red", "No score"],
        rows: months.map((m) => [monthWords(m.month), m.accounts, money(m.arr), ...m.colours.map((c) => (c.accounts ? `${c.accounts} · ${money(c.arr)}` : "—"))]),
      }}
    >
      <StackedBarChart
        data={months.flatMap((m) => m.colours.map((c) => ({ group: colourName(c), key: monthWords(m.month), value: Number(c.arr) })))}
        options={{
          height: "280px",
          axes: {
            bottom: { mapsTo: "key", scaleType: ScaleTypes.LABELS },
            left: { mapsTo: "value", stacked: true, ticks: { formatter: (v: number | Date) => shortMoney(Number(v)) } },
          },
          color: { scale: COLOUR_SCALE },
          toolbar: { enabled: false },
          tooltip: { valueFormatter: (v: unknown) => (typeof v === "number" ? shortMoney(v) : String(v)) },
          accessibility: { svgAriaLabel: "ARR renewing each month by health colour" },
        }}
      />
    </Figure>
  );
}

/** The share of accounts covered to their tier's standard, as a gauge. */
export function CoverageGauge({ accounts, underCovered }: { accounts: number; underCovered: number }) {
  const covered = accounts ? Math.round(((accounts - underCovered) / accounts) * 1000) / 10 : 0;
  return (
    <Figure id="coverage-gauge" title="Accounts covered to standard" table={{ head: ["Accounts", "Covered to standard", "Under-covered"], rows: [[accounts, `${covered.toFixed(1)}%`, underCovered]] }}>
      <GaugeChart
        data={[
          { group: "value", value: covered },
          { group: "delta", value: 0 },
        ]}
        options={{
          height: "200px",
          resizable: true,
          gauge: { type: GaugeTypes.SEMI, status: covered >= 80 ? Statuses.SUCCESS : covered >= 60 ? Statuses.WARNING : Statuses.DANGER, showPercentageSymbol: true, deltaArrow: { enabled: false } },
          toolbar: { enabled: false },
          accessibility: { svgAriaLabel: "Share of accounts covered to standard" },
        }}
      />
    </Figure>
  );
}

/** Accounts of each health colour week by week. */
export function PortfolioHealthTrend({ buckets }: { buckets: Array<{ bucket: string; colours: Slice[] }> }) {
  return (
    <Figure
      id="health-trend"
      title="Accounts by health, week by week"
      table={{
        head: ["Week of", "Green", "Yellow", "Red", "No score"],
        rows: buckets.map((b) => [b.bucket, ...["GREEN", "YELLOW", "RED", null].map((c) => b.colours.find((s) => (s.colour ?? null) === c)?.accounts ?? 0)]),
      }}
    >
      <LineChart
        data={buckets.flatMap((b) => b.colours.map((s) => ({ group: colourName(s), date: b.bucket, value: s.accounts })))}
        options={{
          height: "280px",
          axes: {
            bottom: { mapsTo: "date", scaleType: ScaleTypes.TIME },
            left: { mapsTo: "value", title: "Accounts" },
          },
          color: { scale: COLOUR_SCALE },
          toolbar: { enabled: false },
          accessibility: { svgAriaLabel: "Accounts by health colour week by week" },
        }}
      />
    </Figure>
  );
}

/** The portfolio's average engagement score month by month, with the accounts at risk each month. */
export function EngagementTrend({
  months,
}: {
  months: Array<{ period: string; asOf: string; customers: number; averageScore: number; distribution: Array<{ category: string; customers: number }> }>;
}) {
  const atRisk = (m: (typeof months)[number]) => m.distribution.find((d) => d.category === "AT_RISK")?.customers ?? 0;
  const label = (m: (typeof months)[number]) => `${periodWords(m.period)}${m.asOf.slice(0, 7) === m.period && !m.asOf.endsWith(lastDay(m.period)) ? " (so far)" : ""}`;
  return (
    <Figure
      id="engagement-trend"
      title="Average engagement score, month by month"
      table={{
        head: ["Month", "Accounts", "Average score", "At risk"],
        rows: months.map((m) => [label(m), m.customers, m.averageScore.toFixed(1), atRisk(m)]),
      }}
    >
      <LineChart
        data={months.map((m) => ({ group: "Average score", date: `${m.period}-01`, value: m.averageScore }))}
        options={{
          height: "280px",
          axes: {
            bottom: { mapsTo: "date", scaleType: ScaleTypes.TIME },
            left: { mapsTo: "value", title: "Score (0 to 100)", domain: [0, 100] },
          },
          legend: { enabled: false },
          toolbar: { enabled: false },
          accessibility: { svgAriaLabel: "Average engagement score month by month" },
        }}
      />
    </Figure>
  );
}

/** The last day of a month `YYYY-MM`, as two digits. */
function lastDay(month: string): string {
  const [year, number] = month.split("-").map(Number);
  return String(new Date(year, number, 0).getDate()).padStart(2, "0");
}
