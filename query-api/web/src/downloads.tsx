// Download buttons for the reports and lists: the workbook, the CSV and, where one exists, the
// deck, built by the query API with the screen's own filters and day, as the signed-in user.

import { useState } from "react";
import { Button, Checkbox, FormGroup, InlineLoading, InlineNotification, MenuButton, MenuItem, Modal } from "@carbon/react";
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

/** The portfolio deck's sections, as the export names them and as people read them. */
const SECTIONS: Array<[string, string]> = [
  ["summary", "Executive summary"],
  ["coverage", "Coverage"],
  ["engagement", "Engagement"],
  ["renewals", "Renewals in the next 90 days"],
  ["at-risk", "At-risk accounts"],
];

/** "Portfolio deck…": the sections chosen before the deck is built. */
export function PortfolioDeck({ asOf, knownAt }: { asOf: string | null; knownAt?: string | null }) {
  const session = useSession();
  const [open, setOpen] = useState(false);
  const [chosen, setChosen] = useState<string[]>(SECTIONS.map(([name]) => name));
  const [state, setState] = useState<{ busy: boolean; error: string | null }>({ busy: false, error: null });
  if (knownAt) return null;
  const build = async () => {
    setState({ busy: true, error: null });
    const query = new URLSearchParams();
    if (asOf) query.set("asOf", asOf);
    query.set("sections", chosen.join(","));
    try {
      await download(session, `/export/portfolio.pptx?${query}`);
      setState({ busy: false, error: null });
      setOpen(false);
    } catch (error) {
      setState({ busy: false, error: CommandError.from(error).message });
    }
  };
  return (
    <>
      <Button kind="tertiary" size="md" onClick={() => setOpen(true)} data-testid="portfolio-deck">
        Portfolio deck…
      </Button>
      <Modal
        open={open}
        modalHeading="The portfolio deck"
        primaryButtonText={state.busy ? "Building…" : "Build the deck (.pptx)"}
        primaryButtonDisabled={state.busy || chosen.length === 0}
        secondaryButtonText="Cancel"
        onRequestClose={() => setOpen(false)}
        onRequestSubmit={build}
      >
        <FormGroup legendText="Sections (a title slide always opens it)">
          {SECTIONS.map(([name, label]) => (
            <Checkbox
              key={name}
              id={`deck-section-${name}`}
              labelText={label}
              checked={chosen.includes(name)}
              onChange={(_, { checked }) => setChosen(checked ? SECTIONS.map(([n]) => n).filter((n) => n === name || chosen.includes(n)) : chosen.filter((n) => n !== name))}
            />
          ))}
        </FormGroup>
        {state.error ? <p role="alert" className="cs-error-text">{state.error}</p> : null}
      </Modal>
    </>
  );
}
