// Display only: the API computes every figure; these put its answers into words.

/**
 * A decimal amount as the API sends it ("1234567.50"), grouped by thousands, never through a
 * float: cents below a thousand, whole dollars (rounded half up) from a thousand on.
 */
export function money(decimal: string | null | undefined): string {
  if (decimal == null) return "—";
  const negative = decimal.startsWith("-");
  const [digits, fraction = ""] = decimal.replace(/^[-+]/, "").split(".");
  let whole = digits.replace(/^0+(?=\d)/, "");
  let cents = "";
  if (whole.length > 3) {
    if (fraction >= "5") whole = (BigInt(whole) + 1n).toString();
  } else if (fraction.length) {
    cents = `.${fraction.padEnd(2, "0").slice(0, 2)}`;
  }
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "−" : ""}$${grouped}${cents}`;
}

/** A signed change of an amount. */
export function moneyChange(decimal: string): string {
  return decimal.startsWith("-") ? money(decimal) : `+${money(decimal)}`;
}

/** A score or percentage the API reports with one decimal. */
export function one(value: number | null | undefined): string {
  return value == null ? "—" : value.toFixed(1);
}

export function pct(value: number | null | undefined): string {
  return value == null ? "—" : `${value.toFixed(1)}%`;
}

export function day(value: string | null | undefined): string {
  return value ? value.slice(0, 10) : "—";
}

export function instant(value: string | null | undefined): string {
  return value ? value.replace("T", " ").replace(/\.\d+/, "").replace(/(Z|\+00:00)$/, " UTC") : "—";
}

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/** An engagement period as the API names it ("30d", "2026-11", "2026-Q4"), in words. */
export function periodWords(label: string): string {
  const rolling = /^(\d+)d$/.exec(label);
  if (rolling) return `the last ${rolling[1]} days`;
  const quarter = /^(\d{4})-Q([1-4])$/.exec(label);
  if (quarter) return `Q${quarter[2]} ${quarter[1]}`;
  const month = /^(\d{4})-(\d{2})$/.exec(label);
  if (month) return `${MONTHS[Number(month[2]) - 1]} ${month[1]}`;
  return label;
}

/** "1 row", "3 rows": a count with the word that agrees with it. */
export function count(n: number, one: string, many: string): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

/** The device's own time zone (an IANA name). */
export const DEVICE_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** The zone times are shown in when the user chose one other than the device's. */
let chosenZone: string | undefined;

/** Shows times in `zone` (the user's preference) from now on; null: the device's own. */
export function setTimeZone(zone: string | null | undefined) {
  chosenZone = zone && zone !== DEVICE_ZONE ? zone : undefined;
}

/** The zone times are shown in. */
export function timeZone(): string {
  return chosenZone ?? DEVICE_ZONE;
}

/**
 * An instant in the user's time zone, to the minute ("7 Dec 2026, 09:58"); with the zone's
 * name when it is not the device's ("7 Dec 2026, 09:58 CET").
 */
export function when(value: string | null | undefined): string {
  if (!value) return "—";
  const instant = new Date(value);
  if (Number.isNaN(instant.getTime())) return value;
  return new Intl.DateTimeFormat("en-GB", {
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZone: chosenZone,
    timeZoneName: chosenZone ? "short" : undefined,
  }).format(instant);
}

export function words(value: string): string {
  return value.toLowerCase().replace(/_/g, " ");
}

export const colourTag = {
  GREEN: "green",
  YELLOW: "warm-gray",
  RED: "red",
} as const;

export const statusTag = {
  UNDER_COVERED: "red",
  WELL_COVERED: "green",
  OVER_COVERED: "purple",
} as const;

/** What a coverage gap means, in words. */
export const GAP_WORDS: Record<string, string> = {
  CONTACT: "too long since the last contact",
  TOUCHES: "too few touches this month",
  MEETINGS: "too few meetings this quarter",
  STAKEHOLDERS: "too few stakeholders reached",
};

/** A use case's status as a tag colour: done is green, under way blue, not started grey. */
export const USE_CASE_TAG: Record<string, "green" | "teal" | "blue" | "gray"> = {
  optimized: "green",
  implemented: "teal",
  in_progress: "blue",
  not_started: "gray",
};
