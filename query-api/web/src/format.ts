// Display only: the API computes every figure; these put its answers into words.

/** A decimal amount as the API sends it ("1234567.50"), grouped by thousands, never through a float. */
export function money(decimal: string | null | undefined): string {
  if (decimal == null) return "—";
  const negative = decimal.startsWith("-");
  const [whole, fraction = ""] = decimal.replace(/^[-+]/, "").split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const cents = fraction.length ? `.${fraction.padEnd(2, "0").slice(0, 2)}` : "";
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
