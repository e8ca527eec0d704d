// First-load timings of the web client in Debian's Chromium, each in a new browser context (an
// empty HTTP cache, as a first visit), beside the floor of the same step: the client's static
// files alone (the sign-in page, which asks the API nothing). Run by
// `cargo run --release -p tests --bin read-bench -- --web-runs 10`, which passes CSTRACK_FIRST_LOAD.

import { launch } from "./chromium.mjs";

const env = JSON.parse(process.env.CSTRACK_FIRST_LOAD ?? "null");
if (!env) throw new Error("CSTRACK_FIRST_LOAD is not set: run through read-bench --web-runs");

const browser = await launch(env.chromium);

/** Milliseconds from navigation to `selector` visible, in a fresh context signed in (or not). */
async function load(path, selector, signedIn) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  if (signedIn) {
    await context.addInitScript((token) => sessionStorage.setItem("cstrack.session", token), env.token);
  }
  const page = await context.newPage();
  page.setDefaultTimeout(60000);
  const started = performance.now();
  await page.goto(`${env.appUrl}/app${path}`);
  await page.locator(selector).first().waitFor();
  const elapsed = performance.now() - started;
  await context.close();
  return elapsed;
}

const steps = [
  ["static files only: the sign-in page (floor)", "/sign-in", "#token", false],
  ["dashboard", `/?asOf=${env.asOf}`, '[data-testid="kpi-accounts-value"]', true],
  ["coverage report", `/coverage?asOf=${env.asOf}`, '[data-testid="gap-row"], [data-testid="coverage-accounts-value"]', true],
  ["customers list (first page)", "/customers", '[data-testid="customer-row"]', true],
  ["customer 360", `/customers/${env.customerId}`, '[data-testid="customer-name"]', true],
];

const rows = [];
for (const [name, path, selector, signedIn] of steps) {
  await load(path, selector, signedIn); // warm the server side once
  const times = [];
  for (let run = 0; run < env.runs; run++) times.push(await load(path, selector, signedIn));
  times.sort((a, b) => a - b);
  const p50 = times[Math.ceil(times.length / 2) - 1];
  rows.push({ name, p50, max: times[times.length - 1] });
}
await browser.close();
const floor = rows[0].p50;
console.log("| first load (new browser context) | p50 | max | p50 / floor |");
console.log("|---|---|---|---|");
for (const row of rows) {
  console.log(`| ${row.name} | ${row.p50.toFixed(0)} ms | ${row.max.toFixed(0)} ms | ${(row.p50 / floor).toFixed(2)} |`);
}
