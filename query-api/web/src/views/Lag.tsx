import { useSubscription } from "urql";
import { Tag } from "@carbon/react";
import { graphql } from "../gql";

const LAG = graphql(`
  subscription ProjectorLag {
    projectorLag {
      projector
      lagEvents
      lagSeconds
      deadLettered
    }
  }
`);

/** How far the read models are behind the store, live. */
export function LagIndicator() {
  const [{ data }] = useSubscription({ query: LAG });
  if (!data) return null;
  const behind = Math.max(...data.projectorLag.map((p) => p.lagEvents));
  const dead = data.projectorLag.reduce((sum, p) => sum + p.deadLettered, 0);
  const seconds = Math.max(...data.projectorLag.map((p) => p.lagSeconds));
  const label =
    behind === 0
      ? "Up to date"
      : seconds < 1
        ? "Updating…"
        : `Updating, ${seconds < 60 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`} behind`;
  const why = dead > 0 ? `${dead} change${dead === 1 ? "" : "s"} could not be applied and ${dead === 1 ? "is" : "are"} set aside for operations to replay` : behind ? `${behind} recorded change${behind === 1 ? "" : "s"} not yet in the reports` : undefined;
  return (
    <Tag type={dead > 0 ? "red" : behind === 0 ? "green" : "warm-gray"} size="sm" data-testid="projector-lag" className="cs-header-lag" style={{ alignSelf: "center" }} title={why}>
      {label}
    </Tag>
  );
}
