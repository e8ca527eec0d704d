// Download buttons for the reports and lists: the workbook, the CSV and, where one exists, the
// deck, built by the query API with the screen's own filters and day, as the signed-in user.

import { useState } from "react";
import { InlineLoading, InlineNotification, MenuButton, MenuItem } from "@carbon/react";
import { useSession } from "./App";
import { CommandError, download } from "./api/commands";

export type Format = "xlsx" | "csv" | "pptx";

const FORMAT_WORDS: Record<Format, string> = {
  xlsx: "Excel workbook (.xlsx)",
  csv: "CSV file (.csv)",
  pptx: "PowerPoint deck (.pptx)",
};

export interface DownloadChoice {
  /** The export's path under /export, without the extension ("coverage", "customer"). */
  report: string;
  format: Format;
  /** A label other than the format's own (e.g. "Customer summary deck"). */
  label?: string;
  /** Parameters of this choice alone, beside the menu's. */
  params?: Params;
}

type Params = Record<string, string | number | boolean | null | undefined>;

/**
 * A "Download" menu. `params` are the screen's filters as the export takes them; empty ones
 * are left out. A screen showing what the system knew at an earlier instant (a snapshot) cannot
 * be exported: exports read the live read models, and the menu says so instead.
 */
export function Downloads({
  choices,
  params,
  knownAt,
  label = "Download",
}: {
  choices: DownloadChoice[];
  params: Params;
  knownAt?: string | null;
  label?: string;
}) {
  const session = useSession();
  const [busy, setBusy] = useState<string | null>(null);
  const [outcome, setOutcome] = useState<{ error?: CommandError; saved?: string } | null>(null);
  if (knownAt) {
    return (
      <p className="cs-muted cs-downloads" data-testid="downloads-unavailable">
        Downloads show today&apos;s knowledge: clear &ldquo;what the system knew&rdquo; to download.
      </p>
    );
  }
  const take = async (choice: DownloadChoice) => {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries({ ...params, ...choice.params })) {
      if (value !== null && value !== undefined && value !== "") query.set(name, String(value));
    }
    const path = `/export/${choice.report}.${choice.format}${query.size ? `?${query}` : ""}`;
    setBusy(choice.label ?? FORMAT_WORDS[choice.format]);
    setOutcome(null);
    try {
      setOutcome({ saved: await download(session, path) });
    } catch (error) {
      setOutcome({ error: CommandError.from(error) });
    } finally {
      setBusy(null);
    }
  };
  return (
    <div className="cs-downloads">
      <MenuButton label={label} kind="tertiary" size="md" menuAlignment="bottom-end" data-testid="downloads">
        {choices.map((choice) => (
          <MenuItem
            key={`${choice.report}.${choice.format}`}
            label={choice.label ?? FORMAT_WORDS[choice.format]}
            onClick={() => void take(choice)}
          />
        ))}
      </MenuButton>
      {busy ? <InlineLoading description={`Building the ${busy}`} /> : null}
      {outcome?.saved ? (
        <span className="cs-muted" role="status" data-testid="download-saved">
          Saved {outcome.saved}
        </span>
      ) : null}
      {outcome?.error ? (
        <InlineNotification kind="error" title="The download failed" subtitle={outcome.error.message} hideCloseButton lowContrast role="alert" />
      ) : null}
    </div>
  );
}

/** The workbook and the CSV of one report. */
export const sheets = (report: string): DownloadChoice[] => [
  { report, format: "xlsx" },
  { report, format: "csv" },
];
