// Charts, loaded apart from the rest of the client (they are its largest part).
import { LineChart, ScaleTypes } from "@carbon/charts-react";
import "@carbon/charts-react/styles.css";

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
