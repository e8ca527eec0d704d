// The web client in Debian's Chromium, driven by Playwright, against a whole cstrack system that
// tests/tests/web.rs starts and describes in CSTRACK_E2E. Every figure is checked against the
// GraphQL API's own answer; axe-core checks each view for WCAG 2.1 AA; a screenshot of each view
// is kept in the artifacts folder.

import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { launch } from "./chromium.mjs";

const env = JSON.parse(process.env.CSTRACK_E2E ?? "null");
if (!env) throw new Error("CSTRACK_E2E is not set: run this suite through `cargo nextest run -p tests --test web`");
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(env.artifacts, { recursive: true });

const app = (path) => `${env.appUrl}/app${path}`;
const asOf = env.asOf;

/** The same grouping the client shows decimals with (display only): cents below a thousand. */
function money(decimal) {
  const negative = decimal.startsWith("-");
  const [digits, fraction = ""] = decimal.replace(/^[-+]/, "").split(".");
  let whole = digits.replace(/^0+(?=\d)/, "");
  let cents = "";
  if (whole.length > 3) {
    if (fraction >= "5") whole = (BigInt(whole) + 1n).toString();
  } else if (fraction.length) {
    cents = `.${fraction.padEnd(2, "0").slice(0, 2)}`;
  }
  return `${negative ? "−" : ""}$${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}${cents}`;
}

async function gql(token, query, variables = {}) {
  const response = await fetch(env.graphqlUrl, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const answer = await response.json();
  assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  return answer.data;
}

let browser;
before(async () => {
  browser = await launch(env.chromium);
});
after(async () => {
  await browser?.close();
});

/** A day as `YYYY-MM-DD` in the browser's (and this process's) calendar. */
function isoDay(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** A fresh browser context (its own session storage), signed in with `token`. */
async function signedIn(token, { width = 1280, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  context.setDefaultTimeout(15000);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  await page.goto(app("/sign-in"));
  await page.locator("#token").fill(token);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByTestId("signed-in-as").waitFor({ state: "attached" });
  return { context, page, problems };
}

/** No serious or critical WCAG 2.1 A/AA violation on the page as it stands; a screenshot kept. */
async function accessible(page, name) {
  await page.screenshot({ path: join(env.artifacts, `${name}.png`) });
  // Evaluated through the browser's debugging protocol, which the page's content policy (no
  // inline script) does not govern: the page is checked under its real policy.
  await page.evaluate(AXE);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")})`),
    [],
    `${name}: axe-core found serious violations`,
  );
}

const SUMMARY = `query ($asOf: Date, $me: String!) {
  executiveSummary(asOf: $asOf) { current { customers totalArr arrAtRisk renewals { days customers arr } } previousQuarter { renewals { days customers arr } } arrChange }
  coverageReport(asOf: $asOf) { summary { accounts underCovered } gaps { customerId } }
  tasks(filter: { assigneeId: $me, overdue: true }) { nodes { title } }
}`;

describe("a CSM", () => {
  let session;
  /** The instant just before the live test's activity, and the touches the page showed then. */
  let knownBefore;
  before(async () => {
    session = await signedIn(env.tokens.csm);
  });
  after(async () => {
    await session.context.close();
  });
  // What the page showed when each test ended, and what the browser complained of.
  afterEach(async (t) => {
    const name = t.name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60);
    await session.page.screenshot({ path: join(env.artifacts, `end-${name}.png`), fullPage: true }).catch(() => {});
    if (session.problems.length) console.log(`browser errors during "${t.name}":\n${session.problems.join("\n")}`);
    session.problems.length = 0;
  });

  test("signs in and sees the dashboard's figures exactly as the API computes them", async () => {
    const { page } = session;
    await page.goto(app(`/?asOf=${asOf}`));
    const expected = await gql(env.tokens.csm, SUMMARY, { asOf, me: "dana" });
    const current = expected.executiveSummary.current;
    await page.getByTestId("kpi-accounts-value").waitFor();
    assert.equal(await page.getByTestId("kpi-accounts-value").innerText(), String(current.customers));
    assert.equal(await page.getByTestId("kpi-arr-value").innerText(), money(current.totalArr));
    assert.equal(await page.getByTestId("kpi-arr-at-risk-value").innerText(), money(current.arrAtRisk));
    const coverage = expected.coverageReport.summary;
    assert.equal(await page.getByTestId("kpi-under-covered-value").innerText(), `${coverage.underCovered} of ${coverage.accounts}`);
    const escaped = (text) => text.replace(/[$.]/g, "\\$&");
    for (const window of current.renewals) {
      const row = page.getByTestId(`renewals-${window.days}`);
      // Beside the previous quarter's end, as the API counts it.
      const before = expected.executiveSummary.previousQuarter.renewals.find((w) => w.days === window.days);
      assert.match(
        await row.innerText(),
        new RegExp(`${window.customers}\\s+${escaped(money(window.arr))}\\s+${before.customers} · ${escaped(money(before.arr))}`),
      );
    }
    assert.deepEqual(
      expected.tasks.nodes.map((t) => t.title),
      ["Send the renewal quote"],
    );
    await page.getByRole("link", { name: "Send the renewal quote", exact: true }).waitFor();
    assert.equal(current.customers, 4);
    await accessible(page, "dashboard");
  });

  test("reads the dashboard's charts, each with its figures as a table", async () => {
    const { page } = session;
    await page.goto(app(`/?asOf=${asOf}`));
    await page.getByTestId("chart-health-donut").locator("summary").waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid^="chart-"] svg[aria-label]').length >= 6);
    const expected = await gql(
      env.tokens.csm,
      `query ($asOf: Date, $from: Date!, $to: Date!) {
        executiveSummary(asOf: $asOf) { current { colours { colour accounts arr } } }
        coverageReport(asOf: $asOf) { summary { accounts underCovered } }
        renewalPipeline(from: $from, to: $to) { month accounts arr }
      }`,
      { asOf, from: `${asOf.slice(0, 7)}-01`, to: isoDay(new Date(Number(asOf.slice(0, 4)), Number(asOf.slice(5, 7)) - 1 + 12, 0)) },
    );
    const words = { GREEN: "Green", YELLOW: "Yellow", RED: "Red" };
    const table = async (id) => {
      const figure = page.getByTestId(`chart-${id}`);
      await figure.locator("summary").click();
      return figure.locator("tbody tr").evaluateAll((rows) => rows.map((r) => [...r.children].map((c) => c.textContent.trim())));
    };
    assert.deepEqual(
      await table("health-donut"),
      expected.executiveSummary.current.colours.map((c) => [words[c.colour] ?? "No score", String(c.accounts), money(c.arr)]),
    );
    const { accounts, underCovered } = expected.coverageReport.summary;
    assert.deepEqual(await table("coverage-gauge"), [[String(accounts), `${(Math.round(((accounts - underCovered) / accounts) * 1000) / 10).toFixed(1)}%`, String(underCovered)]]);
    const pipeline = await table("renewal-pipeline");
    assert.deepEqual(
      pipeline.map((r) => [r[1], r[2]]),
      expected.renewalPipeline.map((m) => [String(m.accounts), money(m.arr)]),
    );
    assert.equal(pipeline.length, 12, "a year of months, empty ones too");
    assert.ok(expected.renewalPipeline.reduce((n, m) => n + m.accounts, 0) >= 2, "the fixture's renewals are in the pipeline");
    // Engagement month by month: the API's average for each of the six months to the day.
    const month = asOf.slice(0, 7);
    const engagement = await gql(env.tokens.csm, `query ($p: String!, $a: Date!) { engagementMetrics(period: $p, asOf: $a) { customers averageScore } }`, { p: month, a: asOf });
    await page.getByTestId("chart-engagement-trend").locator("summary").waitFor();
    const months = await table("engagement-trend");
    assert.equal(months.length, 6);
    assert.deepEqual(months[5].slice(1, 3), [String(engagement.engagementMetrics.customers), engagement.engagementMetrics.averageScore.toFixed(1)]);
    await page.mouse.move(0, 0);
    await accessible(page, "dashboard-charts");
  });

  test("reads the renewals of the next 90 days with their risk", async () => {
    const { page } = session;
    await page.goto(app("/renewals?window=90"));
    await page.getByTestId("renewal-row").first().waitFor();
    const today = new Date();
    const end = new Date(today);
    end.setDate(today.getDate() + 90);
    const expected = await gql(
      env.tokens.csm,
      `query ($from: Date!, $to: Date!) { renewals(from: $from, to: $to, first: 50) { nodes { name csmName arr } } }`,
      { from: isoDay(today), to: isoDay(end) },
    );
    const rows = await page.getByTestId("renewal-row").evaluateAll((rows) => rows.map((r) => [...r.children].slice(0, 3).map((c) => c.textContent.trim())));
    assert.deepEqual(rows, expected.renewals.nodes.map((r) => [r.name, r.csmName, money(r.arr)]));
    assert.deepEqual(rows.map((r) => r[0]), ["Globex", "Initech"]);
    assert.equal(await page.getByTestId("renewals-count-value").innerText(), "2");
    assert.match(await page.getByTestId("renewal-row").filter({ hasText: "Globex" }).innerText(), /at risk|watch|healthy|no health score/);
    await accessible(page, "renewals");
  });

  test("reads the at-risk report with each account's reasons", async () => {
    const { page } = session;
    await page.goto(app(`/at-risk?asOf=${asOf}`));
    await page.getByTestId("at-risk-total-value").waitFor();
    const expected = await gql(
      env.tokens.csm,
      `query ($asOf: Date) { atRiskReport(asOf: $asOf) { total red yellow arr accounts { coverage { name healthColour gapAreas } healthReason } } }`,
      { asOf },
    );
    const report = expected.atRiskReport;
    assert.equal(await page.getByTestId("at-risk-total-value").innerText(), String(report.total));
    assert.equal(await page.getByTestId("at-risk-arr-value").innerText(), money(report.arr));
    const names = await page.getByTestId("at-risk-row").locator("td:first-child a").allInnerTexts();
    assert.deepEqual(names, report.accounts.map((a) => a.coverage.name));
    assert.ok(names.includes("Globex"), "Globex's red score puts it on the report");
    await accessible(page, "at-risk");
  });

  test("sees the open dashboard follow a command without a reload", async () => {
    const { page } = session;
    await page.goto(app(`/?asOf=${asOf}`));
    await page.getByTestId("colour-RED").waitFor();
    const reds = async () => Number((await page.getByTestId("colour-RED").locator("td").nth(1).innerText()).trim());
    const before = await reds();
    await page.evaluate(() => {
      window.__stayed = true;
    });
    const sent = Date.now();
    const response = await fetch(`${env.commandUrl}/api/v1/customers/${env.customers.umbrella}/health-scores`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.tokens.admin}`, "content-type": "application/json" },
      body: JSON.stringify({ score: 20, source: "gainsight" }),
    });
    assert.ok(response.ok, await response.text());
    await page.waitForFunction(
      (n) => Number(document.querySelector('[data-testid="colour-RED"] td:nth-child(2)')?.textContent) === n,
      before + 1,
    );
    console.log(`dashboard updated ${Date.now() - sent} ms after the command was sent`);
    const expected = await gql(env.tokens.csm, SUMMARY, { asOf, me: "dana" });
    await page.waitForFunction(
      (text) => document.querySelector('[data-testid="kpi-arr-at-risk-value"]')?.textContent === text,
      money(expected.executiveSummary.current.arrAtRisk),
    );
    assert.equal(await page.evaluate(() => window.__stayed), true, "the page did not reload");
  });

  test("reads the portfolio as the system knew it, from a rebuilt snapshot", async () => {
    const { page } = session;
    await page.goto(app(`/?asOf=${asOf}`));
    await page.getByTestId("kpi-accounts-value").waitFor();
    assert.equal(await page.getByTestId("kpi-accounts-value").innerText(), "4");
    await page.locator("#known-at-snapshot").selectOption("before-umbrella");
    await page.waitForFunction(() => document.querySelector('[data-testid="kpi-accounts-value"]')?.textContent === "3");
    assert.match(page.url(), /knownAt=before-umbrella/);
    const known = await gql(
      env.tokens.csm,
      `query ($asOf: Date) { snapshot(name: "before-umbrella") { executiveSummary(asOf: $asOf) { current { totalArr } } coverageReport(asOf: $asOf) { rulesVersion } } }`,
      { asOf },
    );
    assert.equal(await page.getByTestId("kpi-arr-value").innerText(), money(known.snapshot.executiveSummary.current.totalArr));
    for (const view of ["coverage", "engagement", "workload"]) {
      await page.goto(app(`/${view}?asOf=${asOf}&knownAt=before-umbrella`));
      await page.getByTestId("rules-version").waitFor();
      assert.equal(await page.locator("#known-at-snapshot").inputValue(), "before-umbrella");
    }
    assert.equal(await page.getByTestId("utilization-bar").count(), 2);
  });

  test("reads the coverage report with its gap list and filters", async () => {
    const { page } = session;
    await page.goto(app(`/coverage?asOf=${asOf}`));
    await page.getByTestId("coverage-accounts-value").waitFor();
    const expected = await gql(env.tokens.csm, SUMMARY, { asOf, me: "dana" });
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-testid="gap-row"]').length === n,
      expected.coverageReport.gaps.length,
    );
    await page.locator("#filter-tier").selectOption("SMB");
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="coverage-account"]').length === 2);
    await page.getByTestId("rules-version").waitFor();
    await accessible(page, "coverage");
  });

  test("reads engagement and workload", async () => {
    const { page } = session;
    await page.goto(app(`/engagement?asOf=${asOf}`));
    await page.getByTestId("engagement-customers-value").waitFor();
    await accessible(page, "engagement");
    // A period is picked from words, never typed: the quarter of the report's day.
    const quarter = `${asOf.slice(0, 4)}-Q${Math.floor((Number(asOf.slice(5, 7)) - 1) / 3) + 1}`;
    const options = await page.locator("#period-choice option").allInnerTexts();
    assert.ok(options.includes(`Q${quarter.slice(-1)} ${asOf.slice(0, 4)} (so far)`), options.join(", "));
    await page.locator("#period-choice").selectOption(quarter);
    const expected = await gql(env.tokens.csm, `query ($asOf: Date, $p: String) { engagementMetrics(asOf: $asOf, period: $p) { customers averageScore } }`, { asOf, p: quarter });
    await page.getByTestId("engagement-customers").filter({ hasText: `Customers, Q${quarter.slice(-1)} ${asOf.slice(0, 4)}` }).waitFor();
    assert.equal(await page.getByTestId("engagement-customers-value").innerText(), String(expected.engagementMetrics.customers));
    assert.match(page.url(), new RegExp(`period=${quarter}`));
    // The customer's own engagement breakdown and coverage gaps, on the 360.
    await page.goto(app(`/customers/${env.customers.acme}?asOf=${asOf}`));
    const acme = await gql(
      env.tokens.csm,
      `query ($c: UUID!, $asOf: Date) { customerEngagement(customerId: $c, asOf: $asOf) { emailsSent emailsReceived meetingsHeld } accountCoverage(customerId: $c, asOf: $asOf) { priority } }`,
      { c: env.customers.acme, asOf },
    );
    const breakdown = await page.getByTestId("engagement-breakdown").innerText();
    const e = acme.customerEngagement;
    assert.match(breakdown, new RegExp(`E-mails sent · received\\s+${e.emailsSent} · ${e.emailsReceived}`));
    assert.match(breakdown, new RegExp(`Meetings · calls · QBRs\\s+${e.meetingsHeld} ·`));
    assert.match(await page.getByTestId("coverage-summary").innerText(), new RegExp(`^Priority ${acme.accountCoverage.priority.toLowerCase()}`));
    await page.goto(app(`/workload?asOf=${asOf}`));
    await page.getByTestId("utilization-bar").first().waitFor();
    assert.equal(await page.getByTestId("utilization-bar").count(), 2);
    await accessible(page, "workload");
  });

  test("logs an activity and sees timeline, engagement and coverage change live", async () => {
    const { page } = session;
    await page.goto(app(`/customers/${env.customers.acme}?asOf=${asOf}`));
    await page.getByTestId("customer-name").waitFor();
    const touches = () => page.getByTestId("coverage-touches").locator("td").nth(1).innerText();
    const before = Number(await touches());
    const engagementBefore = await page.getByTestId("customer-engagement-value").innerText();
    await accessible(page, "customer");
    await page.getByRole("tab", { name: "Trends" }).click();
    await page.locator(".cds--chart-holder svg").first().waitFor();
    // A health point's lineage on hover: the event behind it, its source and who recorded it.
    await page.locator(".cds--chart-holder circle.dot").first().hover({ force: true });
    const lineage = page.getByTestId("lineage").first();
    await lineage.waitFor();
    assert.match(await lineage.innerText(), /source gainsight by test-admin \(admin\)[\s\S]*event [0-9a-f-]{36}/);
    await page.getByRole("tab", { name: "Log and record" }).click();
    await page.evaluate(() => {
      window.__stayed = true;
    });
    await page.locator("#activity-kind").selectOption("meeting");
    await page.locator("#activity-subject").fill("Roadmap review with the executive sponsor");
    await page.locator("#activity-participants").click();
    await page.getByRole("option", { name: "Priya Natarajan" }).click();
    await page.keyboard.press("Escape");
    knownBefore = { at: new Date().toISOString(), touches: before };
    const sent = Date.now();
    await page.getByRole("button", { name: "Log activity" }).click();
    await page.getByText("Activity logged").waitFor();
    await page.waitForFunction(
      (n) => Number(document.querySelector('[data-testid="coverage-touches"] td:nth-child(2)')?.textContent) === n,
      before + 1,
      { timeout: 15000 },
    );
    const seen = Date.now() - sent;
    console.log(`coverage updated ${seen} ms after the command was sent`);
    await page.waitForFunction(
      (old) => document.querySelector('[data-testid="customer-engagement-value"]')?.textContent !== old,
      engagementBefore,
      { timeout: 15000 },
    );
    await page.getByRole("tab", { name: "Timeline" }).click();
    await page.getByTestId("timeline").getByText("Roadmap review with the executive sponsor").waitFor({ timeout: 15000 });
    // The next page of the timeline arrives as its end scrolls into view.
    assert.equal(await page.getByTestId("timeline-entry").count(), 20);
    await page.getByTestId("timeline-entry").last().scrollIntoViewIfNeeded();
    await page.getByTestId("timeline-entry").nth(20).waitFor();
    await page.getByText("The beginning of this customer's history.").scrollIntoViewIfNeeded();
    await page.getByText("The beginning of this customer's history.").waitFor();
    assert.equal(await page.evaluate(() => window.__stayed), true, "the page did not reload");
    await page.setViewportSize({ width: 1280, height: 1300 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await accessible(page, "customer-timeline");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test("reads the customer as the system knew it before the activity", async () => {
    const { page } = session;
    await page.goto(app(`/customers/${env.customers.acme}?asOf=${asOf}&knownAt=${encodeURIComponent(knownBefore.at)}`));
    await page.getByTestId("customer-name").waitFor();
    await page.waitForFunction(
      (n) => Number(document.querySelector('[data-testid="coverage-touches"] td:nth-child(2)')?.textContent) === n,
      knownBefore.touches,
    );
    assert.equal(await page.locator("#known-at").inputValue(), knownBefore.at.slice(0, 16));
  });

  test("creates a task and completes it from the customer page", async () => {
    const { page } = session;
    await page.goto(app(`/customers/${env.customers.acme}`));
    await page.getByRole("tab", { name: "Tasks" }).click();
    await page.locator("#task-title").fill("Prepare the QBR deck");
    await page.locator("#task-kind").selectOption("qbr_prep");
    await page.locator("#task-due").fill("2031-01-15");
    await page.getByRole("button", { name: "Create task" }).click();
    const task = page.getByTestId("customer-task").filter({ hasText: "Prepare the QBR deck" });
    await task.waitFor();
    await task.getByRole("button", { name: "Complete" }).click();
    // What came of it is asked for, and kept.
    const dialog = page.getByRole("dialog", { name: "Complete “Prepare the QBR deck”" });
    assert.ok(await dialog.getByRole("button", { name: "Complete the task" }).isDisabled());
    await dialog.getByLabel("What came of it").fill("Deck sent; QBR booked for the 20th");
    await dialog.getByRole("button", { name: "Complete the task" }).click();
    await task.waitFor({ state: "detached" });
    const answer = await gql(env.tokens.csm, `query ($c: UUID) { tasks(filter: { customerId: $c, state: CLOSED }) { nodes { title status outcome } } }`, {
      c: env.customers.acme,
    });
    assert.deepEqual(answer.tasks.nodes, [{ title: "Prepare the QBR deck", status: "completed", outcome: "Deck sent; QBR booked for the 20th" }]);
  });

  test("sees a refused command's reason on the field it names", async () => {
    const { page } = session;
    await page.goto(app(`/customers/${env.customers.acme}`));
    await page.getByRole("tab", { name: "Log and record" }).click();
    await page.locator("#health-score").fill("40");
    await page.getByRole("button", { name: "Record score" }).click();
    const reason = page.locator("#health-reason");
    await page.waitForFunction(() => document.querySelector("#health-reason")?.getAttribute("aria-invalid") === "true");
    assert.equal(await reason.getAttribute("aria-invalid"), "true");
    await page.getByText("a manual health score needs a reason").first().waitFor();
    await accessible(page, "validation-error");
  });

  test("acknowledges an alert from the inbox", async () => {
    const { page } = session;
    await page.goto(app("/alerts"));
    const red = page.getByTestId("alert-row").filter({ hasText: "Globex: health turned red" });
    await red.waitFor();
    const alertId = await red.getAttribute("data-alert-id");
    await accessible(page, "alerts");
    await red.getByRole("button", { name: "Acknowledge" }).click();
    // The inbox shows open alerts: the acknowledged one leaves it once the projector commits.
    await page.locator(`[data-alert-id="${alertId}"]`).waitFor({ state: "detached" });
    const answer = await gql(env.tokens.csm, `query ($c: UUID) { alerts(customerId: $c, kind: "health_red") { nodes { alertId acknowledgedBy } } }`, {
      c: env.customers.globex,
    });
    assert.deepEqual(answer.alerts.nodes, [{ alertId, acknowledgedBy: "dana" }]);
  });

  test("filters the alerts and pages through them with their total", async () => {
    const { page } = session;
    await page.goto(app("/alerts"));
    await page.getByTestId("alerts-total").waitFor();
    const every = await gql(env.tokens.csm, `{ alerts(acknowledged: false) { totalCount } }`);
    assert.match(await page.getByTestId("alerts-total").innerText(), new RegExp(`of ${every.alerts.totalCount} alerts?$`));
    await page.locator("#alerts-kind").selectOption("renewal_window");
    const renewals = await gql(env.tokens.csm, `{ alerts(acknowledged: false, kind: "renewal_window") { totalCount nodes { customerName } } }`);
    await page.waitForFunction(
      (n) => document.querySelector('[data-testid="alerts-total"]')?.textContent?.endsWith(`of ${n} alert${n === 1 ? "" : "s"}`),
      renewals.alerts.totalCount,
    );
    assert.deepEqual(await page.getByTestId("alert-row").locator("td:nth-child(2)").allInnerTexts(), renewals.alerts.nodes.map((a) => a.customerName));
    assert.match(page.url(), /kind=renewal_window/);
    // One customer, found by name.
    await page.locator("#alerts-customer").fill("Glob");
    await page.getByRole("option", { name: "Globex" }).click();
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="alert-row"] td:nth-child(2)')].every((c) => c.textContent === "Globex"));
    assert.equal(await page.getByTestId("alert-row").count(), 1);
    await accessible(page, "alerts-filtered");
  });

  test("creates a task for a customer from the task list and sees it with its customer", async () => {
    const { page } = session;
    await page.goto(app("/tasks"));
    await page.getByTestId("tasks-total").waitFor();
    await page.getByRole("button", { name: "New task" }).click();
    await page.locator("#new-task-customer").fill("Glob");
    await page.getByRole("option", { name: "Globex" }).click();
    await page.locator("#task-title").fill("Confirm the renewal terms");
    await page.locator("#task-due").fill("2031-02-01");
    await page.getByRole("button", { name: "Create task" }).click();
    await page.getByRole("status").filter({ hasText: "Task created" }).waitFor();
    await page.keyboard.press("Escape");
    const row = page.getByTestId("task-row").filter({ hasText: "Confirm the renewal terms" });
    await row.waitFor();
    assert.match(await row.innerText(), /Confirm the renewal terms\s+Globex\s+follow up\s+medium\s+me/);
    const mine = await gql(env.tokens.csm, `{ tasks(filter: { assigneeId: "dana" }) { totalCount } }`);
    assert.match(await page.getByTestId("tasks-total").innerText(), new RegExp(`of ${mine.tasks.totalCount} tasks?$`));
  });

  test("works through tasks with the keyboard", async () => {
    const { page } = session;
    await page.goto(app("/tasks"));
    await page.getByTestId("task-row").first().waitFor();
    await accessible(page, "tasks");
    // The skip link is the first stop and takes the focus to the view.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to main content");
    const row = page.getByTestId("task-row").filter({ hasText: "Send the renewal quote" });
    await row.getByRole("button", { name: "Start" }).focus();
    await page.keyboard.press("Enter");
    await row.getByText("in progress").waitFor({ timeout: 15000 });
  });

  test("has a layout that works at phone width", async () => {
    const phone = await signedIn(env.tokens.csm, { width: 390, height: 844 });
    await phone.page.goto(app(`/?asOf=${asOf}`));
    await phone.page.getByTestId("kpi-arr-value").waitFor();
    const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
    await phone.page.getByRole("button", { name: "Open menu" }).click();
    await phone.page.getByRole("link", { name: "Coverage", exact: true }).click();
    await phone.page.getByTestId("coverage-accounts-value").waitFor();
    await accessible(phone.page, "phone-coverage");
    // Lists are cards, each value under its column's name; buttons are big enough to touch.
    await phone.page.goto(app("/customers?book=all"));
    await phone.page.getByTestId("customer-row").first().waitFor();
    const card = await phone.page.getByTestId("customer-row").first().evaluate((row) => ({
      display: getComputedStyle(row).display,
      label: getComputedStyle(row.children[2], "::before").content,
      width: row.getBoundingClientRect().width,
    }));
    assert.equal(card.display, "block");
    assert.equal(card.label, '"Tier"');
    assert.ok(card.width > 300, `a card ${card.width}px wide`);
    assert.ok((await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)) <= 0, "the list fits the phone");
    const small = await phone.page.evaluate(() =>
      [...document.querySelectorAll("button")]
        .filter((b) => b.offsetParent !== null)
        .map((b) => [b.textContent?.trim() || b.getAttribute("aria-label"), Math.round(b.getBoundingClientRect().height)])
        .filter(([, height]) => height < 44),
    );
    assert.deepEqual(small, [], "buttons smaller than 44 px");
    await accessible(phone.page, "phone-customers");
    await phone.context.close();
  });

  test("says which CSM they are and reads their own book, or the whole portfolio", async () => {
    const { page } = session;
    // Until they say, a CSM is told how, and sees the whole portfolio.
    await page.goto(app(`/?asOf=${asOf}`));
    await page.getByText("Which CSM are you?").waitFor();
    const team = await gql(env.tokens.csm, `{ csmWorkload { csms { csmId name } } }`);
    const dana = team.csmWorkload.csms.find((c) => c.name === "Dana Whitfield");
    await page.goto(app("/settings"));
    await page.locator("#pref-csm").selectOption(dana.csmId);
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "Saved" }).waitFor();
    // Their book: the dashboard's figures are the API's for that CSM.
    await page.goto(app(`/?asOf=${asOf}`));
    await page.getByRole("heading", { name: "My book" }).waitFor();
    const mine = await gql(env.tokens.csm, `query ($asOf: Date, $c: UUID) { executiveSummary(asOf: $asOf, csmId: $c) { current { customers totalArr } } }`, {
      asOf,
      c: dana.csmId,
    });
    assert.equal(await page.getByTestId("kpi-accounts-value").innerText(), String(mine.executiveSummary.current.customers));
    assert.equal(await page.getByTestId("kpi-arr-value").innerText(), money(mine.executiveSummary.current.totalArr));
    assert.equal(mine.executiveSummary.current.customers, 2, "Acme Corp and Globex are Dana's");
    await accessible(page, "dashboard-my-book");
    // The customer list starts on the same book.
    await page.goto(app("/customers"));
    await page.getByTestId("customers-total").filter({ hasText: "of 2 customers" }).waitFor();
    // The whole portfolio, kept in the address.
    await page.goto(app(`/?asOf=${asOf}`));
    await page.getByTestId("book-switch").getByRole("tab", { name: "Whole portfolio" }).click();
    await page.getByRole("heading", { name: "Portfolio", exact: true }).waitFor();
    await page.getByTestId("kpi-accounts-value").filter({ hasText: /^4$/ }).waitFor();
    assert.match(page.url(), /book=all/);
  });

  test("makes a repeating reminder and sees it fire, snoozes one until a reply and sees the reply end it", async () => {
    const { page } = session;
    await page.goto(app("/reminders"));
    await page.getByRole("heading", { name: "Reminders", exact: true }).waitFor();
    // A daily reminder from this very minute (in the zone the form names) fires at once.
    await page.getByRole("button", { name: "New reminder" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.locator("#reminder-title").fill("Review the pipeline");
    await dialog.getByText("Repeating", { exact: true }).click();
    await dialog.locator("#reminder-freq").selectOption("DAILY");
    const zone = (await dialog.locator("label[for=reminder-time]").innerText()).match(/\((.+)\)/)[1];
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat("en-GB", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
        .formatToParts(new Date())
        .map((p) => [p.type, p.value]),
    );
    await dialog.locator("#reminder-day").fill(`${parts.year}-${parts.month}-${parts.day}`);
    await dialog.locator("#reminder-time").fill(`${parts.hour}:${parts.minute}`);
    await dialog.locator("#reminder-ends").selectOption("count");
    await dialog.locator("#reminder-count").fill("5");
    assert.equal(await dialog.getByTestId("reminder-rule-words").innerText(), "every day, 5 times");
    await dialog.getByRole("button", { name: "Save the reminder" }).click();
    await dialog.waitFor({ state: "detached" });
    const fired = page.getByTestId("reminder-row").filter({ hasText: "Review the pipeline" });
    for (let tries = 0; !(await fired.count()) && tries < 30; tries++) {
      await page.waitForTimeout(500);
      await page.reload();
      await page.getByRole("heading", { name: "Reminders", exact: true }).waitFor();
    }
    await fired.getByText(/^Recurring reminder \(FREQ=DAILY;COUNT=5\) due /).waitFor();
    // The next one is still to come, tomorrow at the same time.
    await page.getByTestId("upcoming-row").filter({ hasText: "every day, 5 times" }).waitFor();
    await fired.getByRole("button", { name: "Complete" }).click();
    await fired.getByRole("button", { name: "Complete: done" }).waitFor();

    // A reminder about Acme Corp from its 360, snoozed until the customer replies.
    await page.goto(app(`/customers/${env.customers.acme}`));
    await page.getByTestId("customer-reminders").getByRole("button", { name: "Remind me" }).click();
    const about = page.getByRole("dialog");
    await about.locator("#reminder-title").fill("Chase the signed order form");
    const now = new Date();
    const local = Object.fromEntries(
      new Intl.DateTimeFormat("en-GB", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
        .formatToParts(now)
        .map((p) => [p.type, p.value]),
    );
    await about.locator("#reminder-day").fill(`${local.year}-${local.month}-${local.day}`);
    await about.locator("#reminder-time").fill(`${local.hour}:${local.minute}`);
    await about.getByRole("button", { name: "Save the reminder" }).click();
    await about.waitFor({ state: "detached" });
    const due = page.getByTestId("customer-reminders").getByText("Chase the signed order form");
    for (let tries = 0; !(await due.count()) && tries < 30; tries++) {
      await page.waitForTimeout(500);
      await page.reload();
      await page.getByTestId("customer-reminders").waitFor();
    }
    await page.goto(app(`/reminders?customer=${env.customers.acme}`));
    const chase = page.getByTestId("reminder-row").filter({ hasText: "Chase the signed order form" });
    await chase.getByRole("button", { name: "Snooze" }).click();
    const snooze = page.getByRole("dialog");
    await snooze.getByText("Until the customer replies", { exact: true }).click();
    await snooze.locator("#snooze-reason").fill("Waiting for their procurement team");
    await snooze.getByRole("button", { name: "Snooze", exact: true }).click();
    await snooze.waitFor({ state: "detached" });
    await page.locator("#reminders-status").selectOption("SNOOZED");
    await page
      .getByTestId("reminder-row")
      .filter({ hasText: "Chase the signed order form" })
      .getByTestId("reminder-snooze")
      .filter({ hasText: "until the customer replies: Waiting for their procurement team" })
      .waitFor();
    await accessible(page, "reminders-snoozed");
    // The customer replies; the snooze ends, and the reminder remembers why it slept and woke.
    const reply = await fetch(`${env.commandUrl}/api/v1/customers/${env.customers.acme}/activities`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.tokens.admin}`, "content-type": "application/json" },
      body: JSON.stringify({ kind: "email", direction: "inbound", occurred_at: new Date().toISOString(), participants: [], subject: "Re: order form" }),
    });
    assert.equal(reply.status, 201, await reply.text());
    // The scheduler wakes it within a second or two; a loaded machine (the suite runs beside
    // this browser) may take longer. Asked of the API, so a row still on screen from the
    // snoozed list is not taken for it.
    const open = async () =>
      (await gql(env.tokens.csm, `{ reminders(status: OPEN, first: 50) { nodes { title } } }`)).reminders.nodes.some((r) => r.title === "Chase the signed order form");
    for (let tries = 0; !(await open()) && tries < 120; tries++) await page.waitForTimeout(500);
    assert.ok(await open(), "the reply woke the reminder");
    await page.locator("#reminders-status").selectOption("OPEN");
    await page.reload();
    await page.getByRole("heading", { name: "Reminders", exact: true }).waitFor();
    const woke = page.getByTestId("reminder-row").filter({ hasText: "Chase the signed order form" });
    await woke.waitFor();
    await woke.locator("summary").click();
    const history = await woke.getByTestId("reminder-history").innerText();
    assert.match(history, /snoozed by dana: Waiting for their procurement team/);
    assert.match(history, /woke: The customer replied: Re: order form \(email\)\./);
  });

  test("a rule reminds them once of a silent account and says why", async () => {
    const { page } = session;
    const put = (rules) =>
      fetch(`${env.commandUrl}/api/v1/rules/reminders`, {
        method: "PUT",
        headers: { authorization: `Bearer ${env.tokens.admin}`, "content-type": "application/json" },
        body: JSON.stringify({ rules }),
      });
    // Every rule as it stands, with "no contact" switched as asked.
    const standing = (await gql(env.tokens.admin, `{ rules { reminders { id title kind days score enabled } } }`)).rules.reminders;
    const rule = (enabled) =>
      standing.map((r) => ({
        id: r.id,
        title: r.title,
        condition: r.days != null ? { kind: r.kind, days: r.days } : r.score != null ? { kind: r.kind, score: r.score } : { kind: r.kind },
        enabled: r.id === "no-contact" ? enabled : r.enabled,
      }));
    assert.equal((await put(rule(true))).status, 200);
    try {
      await page.goto(app("/reminders"));
      const silent = page.getByTestId("reminder-row").filter({ hasText: "No contact in 14 days" }).filter({ hasText: "Globex" });
      for (let tries = 0; !(await silent.count()) && tries < 30; tries++) {
        await page.waitForTimeout(500);
        await page.reload();
        await page.getByRole("heading", { name: "Reminders", exact: true }).waitFor();
      }
      await silent.getByText(/^No contact with Globex since onboarding 200 days ago \(the rule says 14\)\.$/).waitFor();
      await silent.getByRole("link", { name: /^onboarded on \d{4}-\d{2}-\d{2}, no contact since$/ }).waitFor();
      await accessible(page, "reminders-rule");
      // Once: the checks that follow find it fired already.
      await page.waitForTimeout(2500);
      const listed = await gql(
        env.tokens.csm,
        `query ($c: UUID) { reminders(customerId: $c) { totalCount nodes { ruleId rulesVersion } } }`,
        { c: env.customers.globex },
      );
      assert.equal(listed.reminders.nodes.filter((n) => n.ruleId === "no-contact").length, 1);
    } finally {
      assert.equal((await put(rule(false))).status, 200);
    }
  });

  test("lands on today after signing in and sees why each thing is there, riskiest first", async () => {
    const fresh = await signedIn(env.tokens.csm);
    try {
      const { page } = fresh;
      await page.waitForURL(/\/app\/today$/);
      await page.getByRole("heading", { name: "Today", exact: true }).waitFor();
      const expected = (await gql(env.tokens.csm, `{ today(first: 50) { totalCount items { kind reason customerName riskScore } } }`)).today;
      assert.ok(
        expected.items.some((i) => i.kind === "NEXT_TOUCH" && i.customerName === "Globex" && /^Contact overdue by \d+ days: no contact since onboarding/.test(i.reason)),
        JSON.stringify(expected.items),
      );
      assert.ok(expected.items.some((i) => i.kind === "ALERT" && i.customerName === "Globex"));
      const scores = expected.items.map((i) => i.riskScore ?? -1);
      assert.deepEqual(scores, [...scores].sort((a, b) => b - a), "ranked by churn risk first");
      await page.getByTestId("today-row").first().waitFor();
      assert.deepEqual(await page.getByTestId("today-reason").allInnerTexts(), expected.items.map((i) => i.reason));
      const things = expected.totalCount === 1 ? "1 thing needs you" : `${expected.totalCount} things need you`;
      assert.match(await page.getByTestId("today-summary").innerText(), new RegExp(`: ${things}, on Dana Whitfield's accounts`));
      await page.mouse.move(0, 0);
      await accessible(page, "today");
    } finally {
      await fresh.context.close();
    }
  });

  test("starts a playbook from a red account, moves a step and completes its steps", async () => {
    const { page } = session;
    await page.goto(app(`/customers/${env.customers.globex}`));
    await page.getByRole("heading", { name: "Playbooks", exact: true }).waitFor();
    await page.getByRole("button", { name: "Start a playbook" }).click();
    await page.locator("#playbook-choice").selectOption({ label: "At-risk recovery" });
    await page.getByTestId("playbook-preview").filter({ hasText: "Call the champion to hear what changed: the account's CSM, due 2 days after the previous step" }).waitFor();
    await page.locator("#playbook-reason").fill("Health fell to 30 after the outage");
    await page.getByRole("button", { name: "Start the playbook" }).click();
    const run = page.getByTestId("playbook-run").filter({ hasText: "At-risk recovery" }).filter({ hasText: "in progress" });
    await run.filter({ hasText: "0 of 5 steps done" }).waitFor();
    assert.match(await run.innerText(), /Health fell to 30 after the outage/);
    const steps = run.getByTestId("run-step");
    assert.equal(await steps.count(), 5);
    const dueOf = async (index) => (await steps.nth(index).getByTestId("run-step-due").innerText()).trim();
    const shift = (text, days) => isoDay(new Date(Date.parse(`${text}T12:00:00Z`) + days * 86_400_000));
    // Moving the second step three days later moves the later ones with it.
    const [second, third] = [await dueOf(1), await dueOf(2)];
    await steps.nth(1).getByRole("button", { name: "Move" }).click();
    const move = page.getByRole("dialog", { name: "Move “Call the champion to hear what changed”" });
    await move.getByText("The 3 open steps after it move by as many days.").waitFor();
    await move.locator("#move-due-1").fill(shift(second, 3));
    await move.locator("#move-reason-1").fill("The champion is away this week");
    await move.getByRole("button", { name: "Move" }).click();
    await run.getByTestId("run-moves").filter({ hasText: "Step 2 and later moved 3 days later" }).waitFor();
    for (let tries = 0; tries < 40 && (await dueOf(2)) !== shift(third, 3); tries++) await page.waitForTimeout(250);
    assert.equal(await dueOf(2), shift(third, 3));
    await page.mouse.move(0, 0);
    await accessible(page, "customer-playbook-run");
    // Each step completed as a task, with what came of it; the run then completes by itself.
    const card = page.getByTestId("playbook-run").filter({ hasText: "At-risk recovery" });
    for (let done = 0; done < 5; done++) {
      const open = card.getByTestId("run-step").filter({ has: page.getByRole("button", { name: "Complete", exact: true }) });
      const title = (await open.first().locator("strong").innerText()).trim();
      await card.getByTestId("run-step").filter({ hasText: title }).getByRole("button", { name: "Complete", exact: true }).click();
      const dialog = page.getByRole("dialog", { name: `Complete “${title}”` });
      await dialog.getByLabel("What came of it").fill(`Done: ${title}`);
      await dialog.getByRole("button", { name: "Complete the task" }).click();
      await dialog.waitFor({ state: "detached" });
      await card.filter({ hasText: `${done + 1} of 5 steps done` }).waitFor();
    }
    const completed = page.getByTestId("playbook-run").filter({ hasText: "At-risk recovery" }).filter({ hasText: "All 5 steps are closed" });
    for (let tries = 0; tries < 30 && !(await completed.count()); tries++) {
      await page.waitForTimeout(500);
      if (tries % 4 === 3) await page.reload();
    }
    await completed.getByTestId("run-status").filter({ hasText: "completed" }).waitFor();
    // The report counts it.
    await page.goto(app("/playbooks"));
    const row = page.getByTestId("playbook-report-row").filter({ hasText: "At-risk recovery" });
    await row.waitFor();
    const cells = await row.locator("td").allInnerTexts();
    assert.deepEqual(cells.slice(0, 7), ["At-risk recovery", "1", "0", "1", "0", "0", "100.0%"]);
    await page.mouse.move(0, 0);
    await accessible(page, "playbooks-report");
  });
});

describe("a partner", () => {
  test("sees only its customers and submits a status report", async () => {
    const { page, context } = await signedIn(env.tokens.partner);
    await page.waitForURL(/\/app\/customers/);
    await page.getByTestId("customer-row").first().waitFor();
    const names = await page.getByTestId("customer-row").locator("td:first-child").allInnerTexts();
    assert.deepEqual(names, env.partnerCustomers);
    assert.equal(await page.getByTestId("customers-total").innerText(), `1 to ${names.length} of ${names.length} customer${names.length === 1 ? "" : "s"}`);
    assert.equal(await page.getByRole("link", { name: "Dashboard" }).count(), 0);
    await accessible(page, "partner-customers");
    await page.getByRole("link", { name: "Partner reports" }).click();
    await page.getByRole("button", { name: "Draft a report" }).click();
    // The customer is found by name among its own.
    await page.locator("#report-customer").fill("Init");
    await page.getByRole("option", { name: "Initech" }).click();
    await page.locator("#report-period-start").fill("2026-10-01");
    await page.locator("#report-period-end").fill("2026-10-31");
    await page.locator("#report-summary").fill("Integration live for the EMEA team");
    await page.getByRole("button", { name: "Save draft" }).click();
    const row = page.getByTestId("report-row").filter({ hasText: "Integration live for the EMEA team" });
    await row.filter({ hasText: "Initech" }).waitFor();
    // The draft is changed (only what changed is sent), read whole, then submitted.
    await row.getByRole("button", { name: "Change" }).click();
    await page.locator("#report-edit-planned").fill("Roll out to the APAC team in November");
    await page.getByRole("button", { name: "Save the changes" }).click();
    await row.getByRole("button", { name: "Read" }).click();
    await page.getByTestId("report-sections").filter({ hasText: "Roll out to the APAC team in November" }).waitFor({ timeout: 15000 });
    await page.mouse.move(0, 0);
    await accessible(page, "partner-report-read");
    await page.getByRole("dialog").getByRole("button", { name: /close/i }).click();
    await page.getByRole("dialog").waitFor({ state: "hidden" });
    await row.getByRole("button", { name: "Submit" }).click();
    await row.getByTestId("report-status").getByText(/^submitted/).waitFor({ timeout: 15000 });
    assert.equal(await row.getByRole("button", { name: "Change" }).count(), 0, "a submitted report no longer changes");
    assert.match(await page.getByTestId("reports-total").innerText(), /^1 to \d+ of \d+ reports?$/);
    await page.mouse.move(0, 0);
    await accessible(page, "partner-reports");
    // The alerts of its own customers, and of no other.
    await page.getByRole("link", { name: "Alerts" }).click();
    await page.getByTestId("alerts-total").or(page.getByText("No alerts.")).first().waitFor();
    const customers = await page.getByTestId("alert-row").locator("td:nth-child(2)").allInnerTexts();
    assert.ok(customers.every((name) => env.partnerCustomers.includes(name)), `a partner saw ${customers}`);
    const theirs = await gql(env.tokens.partner, `{ alerts(acknowledged: false) { totalCount } }`);
    assert.equal(customers.length, theirs.alerts.totalCount);
    assert.ok(theirs.alerts.totalCount >= 1, "Initech's renewal is coming");
    await accessible(page, "partner-alerts");
    await context.close();
  });
});

describe("an auditor", () => {
  test("opens a customer's history and sees it verified", async () => {
    const { page, context } = await signedIn(env.tokens.auditor);
    await page.getByRole("link", { name: "History (audit)" }).click();
    await page.locator("#history-search").fill("Acme");
    await page.getByRole("button", { name: "Acme Corp" }).click();
    await page.getByTestId("verification").getByText("Verified").waitFor();
    const answer = await gql(env.tokens.auditor, `query ($c: UUID!) { verifyCustomerHistory(customerId: $c) { events intact } }`, {
      c: env.customers.acme,
    });
    assert.equal(answer.verifyCustomerHistory.intact, true);
    assert.equal(await page.getByTestId("history-event").count(), Math.min(answer.verifyCustomerHistory.events, 100));
    await accessible(page, "history");
    await context.close();
  });
});

describe("anyone", () => {
  test("is sent to sign in, and the sign-in page is accessible", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${env.appUrl}/`);
    await page.waitForURL(/\/app\/sign-in/);
    await page.locator("#token").fill("not-a-token");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByText("a bearer token has three dot-separated parts").waitFor();
    await accessible(page, "sign-in");
    await context.close();
  });
});

describe("single sign-on", () => {
  test("signs in through the issuer with the authorization code and PKCE", async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(15000);
    const page = await context.newPage();
    await page.goto(`${env.ssoAppUrl}/app/coverage?asOf=${asOf}`);
    await page.waitForURL(/\/app\/sign-in/);
    await page.getByTestId("oidc-sign-in").click();
    // The issuer's own page, on its own origin, with the PKCE challenge in the request.
    await page.waitForURL((url) => url.pathname === "/authorize" && url.searchParams.get("code_challenge_method") === "S256");
    await page.getByRole("button", { name: "Continue as Dana Whitfield (csm)" }).click();
    // Back through /app/callback to where the user was going, with the issuer's token.
    await page.getByTestId("coverage-accounts-value").waitFor();
    assert.equal(new URL(page.url()).pathname, "/app/coverage");
    // By name: Dana said which CSM she is in her settings (a test above).
    await page.getByTestId("signed-in-as").filter({ hasText: /^Dana Whitfield \(CSM\)$/ }).waitFor();
    assert.equal(await page.getByTestId("coverage-accounts-value").innerText(), "4");
    await context.close();
  });

  test("refuses a callback it did not start", async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(15000);
    const page = await context.newPage();
    await page.goto(`${env.ssoAppUrl}/app/callback?code=stolen&state=forged`);
    await page.getByText("this sign-in was not started here (state mismatch)").waitFor();
    await accessible(page, "sign-in-refused");
    await context.close();
  });
});

describe("the live protocol", () => {
  /** Opens a graphql-transport-ws socket from the app's page and keeps what arrives on `window.__live`. */
  async function open(page, token) {
    return page.evaluate(
      ({ token }) =>
        new Promise((resolve) => {
          const live = { messages: [], closed: null };
          window.__live = live;
          const socket = new WebSocket(`ws://${location.host}/graphql/ws`, "graphql-transport-ws");
          live.socket = socket;
          socket.onopen = () => socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${token}` } }));
          socket.onmessage = (event) => {
            const message = JSON.parse(event.data);
            live.messages.push(message);
            if (message.type === "connection_ack") resolve("ack");
          };
          socket.onclose = (event) => {
            live.closed = { code: event.code, reason: event.reason };
            resolve(`closed ${event.code} ${event.reason}`);
          };
        }),
      { token },
    );
  }

  async function subscribe(page, id, query, variables = {}) {
    await page.evaluate(({ id, query, variables }) => window.__live.socket.send(JSON.stringify({ id, type: "subscribe", payload: { query, variables } })), {
      id,
      query,
      variables,
    });
  }

  async function logActivity(customerId) {
    const response = await fetch(`${env.commandUrl}/api/v1/customers/${customerId}/activities`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.tokens.admin}`, "content-type": "application/json" },
      body: JSON.stringify({ kind: "call", direction: "outbound", occurred_at: new Date().toISOString(), duration_minutes: 10 }),
    });
    assert.equal(response.status, 201, await response.text());
  }

  test("refuses a socket whose connection_init carries no valid token", async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(app("/sign-in"));
    const outcome = await open(page, "forged.token.value");
    assert.match(outcome, /^closed 1002 .*invalid/);
    await page.context().close();
  });

  test("closes a socket that never sends connection_init", async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(app("/sign-in"));
    const started = Date.now();
    const outcome = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const socket = new WebSocket(`ws://${location.host}/graphql/ws`, "graphql-transport-ws");
          socket.onclose = (event) => resolve(event.code);
        }),
    );
    const waited = Date.now() - started;
    assert.ok(waited >= 9000 && waited < 20000, `closed after ${waited} ms (code ${outcome})`);
    await page.context().close();
  });

  test("gives a partner only its customers' changes", async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(app("/sign-in"));
    assert.equal(await open(page, env.tokens.partner), "ack");
    // Another organisation's customer: refused as if it did not exist.
    await subscribe(page, "theirs", "subscription ($c: UUID!) { customerChanged(customerId: $c) { customerId } }", { c: env.customers.umbrella });
    await page.waitForFunction(() => window.__live.messages.some((m) => m.id === "theirs"));
    const refusal = await page.evaluate(() => window.__live.messages.find((m) => m.id === "theirs"));
    assert.equal(refusal.type, "next", JSON.stringify(refusal));
    assert.equal(refusal.payload.data, null);
    assert.equal(refusal.payload.errors[0].extensions.code, "NOT_FOUND");
    // The portfolio feed: a change to its customer arrives, one to another customer does not.
    await subscribe(page, "mine", "subscription { portfolioChanged { customerId eventType } }");
    await new Promise((resolve) => setTimeout(resolve, 300));
    await logActivity(env.customers.umbrella);
    await logActivity(env.customers.initech);
    await page.waitForFunction(
      (initech) => window.__live.messages.some((m) => m.id === "mine" && m.payload?.data?.portfolioChanged?.customerId === initech),
      env.customers.initech,
    );
    // Both projectors have committed the other change by now or soon after: wait, then look.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const seen = await page.evaluate(() => window.__live.messages.filter((m) => m.id === "mine").map((m) => m.payload.data.portfolioChanged));
    assert.ok(seen.length >= 1);
    assert.deepEqual([...new Set(seen.map((c) => c.customerId))], [env.customers.initech]);
    assert.ok(seen.every((c) => c.eventType === "ActivityLogged"));
    await page.context().close();
  });
});

/** Reads a workbook with openpyxl: each sheet's rows as values, dates as ISO text. */
function openpyxl(path) {
  const script = `
import json, sys, datetime, openpyxl
book = openpyxl.load_workbook(sys.argv[1])
def cell(v):
    return v.isoformat() if isinstance(v, (datetime.date, datetime.datetime)) else v
print(json.dumps({name: [[cell(v) for v in row] for row in book[name].iter_rows(values_only=True)] for name in book.sheetnames}))
`;
  return JSON.parse(execFileSync("python3", ["-c", script, path], { encoding: "utf8" }));
}

/** The names of a zip's entries. */
function zipEntries(path) {
  const script = "import json, sys, zipfile; print(json.dumps(zipfile.ZipFile(sys.argv[1]).namelist()))";
  return JSON.parse(execFileSync("python3", ["-c", script, path], { encoding: "utf8" }));
}

/** The first text of each slide of a deck (its title), in slide order. */
function slideTitles(path) {
  const script = `
import json, re, sys, zipfile
deck = zipfile.ZipFile(sys.argv[1])
slides = sorted((n for n in deck.namelist() if re.fullmatch(r"ppt/slides/slide[0-9]+\\.xml", n)), key=lambda n: int(re.findall(r"[0-9]+", n)[0]))
print(json.dumps([(re.findall(r"<a:t>([^<]*)</a:t>", deck.read(n).decode()) or [""])[0] for n in slides]))
`;
  return JSON.parse(execFileSync("python3", ["-c", script, path], { encoding: "utf8" }));
}

/** Writes a workbook with openpyxl from rows of values. */
function workbook(path, rows) {
  const script = `
import json, sys, openpyxl
book = openpyxl.Workbook()
for row in json.loads(sys.argv[2]):
    book.active.append(row)
book.save(sys.argv[1])
`;
  execFileSync("python3", ["-c", script, path, JSON.stringify(rows)]);
}

/** Clicks a download in the page's Download menu and keeps the file among the artifacts. */
async function downloaded(page, item) {
  await page.getByTestId("downloads").click();
  const [file] = await Promise.all([page.waitForEvent("download"), page.getByRole("menuitem", { name: item }).click()]);
  const path = join(env.artifacts, file.suggestedFilename());
  await file.saveAs(path);
  await page.getByTestId("download-saved").waitFor();
  return { path, name: file.suggestedFilename() };
}

describe("an admin", () => {
  let session;
  before(async () => {
    session = await signedIn(env.tokens.admin);
  });
  after(async () => {
    await session.context.close();
  });
  afterEach(async (t) => {
    const name = t.name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60);
    await session.page.screenshot({ path: join(env.artifacts, `end-${name}.png`), fullPage: true }).catch(() => {});
    if (session.problems.length) console.log(`browser errors during "${t.name}":\n${session.problems.join("\n")}`);
    session.problems.length = 0;
  });

  test("imports a workbook through the wizard, fixes its errors and undoes it", async () => {
    const { page } = session;
    const header = ["Account Name", "SFDC ID", "Tier", "Annual Recurring Revenue", "CSM", "Contract Start", "Renewal Date"];
    const first = join(env.artifacts, "move-in.xlsx");
    workbook(first, [
      header,
      ["Hooli", "0015g00000HooliAAA", "Enterprise", 1200000, "Dana Whitfield", "2026-01-15", "2027-01-15"],
      ["Pied Piper", "0015g00000PiperAAA", "SMB", "lots", "Dana Whitfield", "2026-02-01", "2027-02-01"],
    ]);
    await page.goto(app("/imports"));
    await page.locator("#import-kind").selectOption("customers");
    await page.locator('input[type="file"]').setInputFiles(first);
    await page.getByTestId("import-counts").waitFor();
    // The suggested columns, the counts and each row's reason, in words.
    assert.equal(await page.locator("#map-arr").inputValue(), "Annual Recurring Revenue");
    assert.match(await page.getByTestId("import-counts").innerText(), /1 row creates[\s\S]*1 row has errors/);
    assert.match(await page.getByTestId("import-row-3").innerText(), /has errors[\s\S]*Annual Recurring Revenue: arr: "lots" is not an amount/);
    assert.ok(await page.getByRole("button", { name: "Commit 2 rows" }).isDisabled());
    await accessible(page, "imports-preview");
    // The rows with errors come back as a workbook, each with its reason.
    const [errors] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download the rows with errors (.xlsx)" }).click(),
    ]);
    const errorsPath = join(env.artifacts, "move-in-errors.xlsx");
    await errors.saveAs(errorsPath);
    const errorBook = openpyxl(errorsPath);
    const errorRows = errorBook[Object.keys(errorBook).find((name) => name !== "About") ?? ""] ?? [];
    assert.equal(errorRows.filter((r) => r.includes("Pied Piper")).length, 1, JSON.stringify(errorBook));
    assert.ok(errorRows.find((r) => r.includes("Pied Piper")).some((v) => String(v).includes("is not an amount")), JSON.stringify(errorRows));

    // The fixed file commits; the new customers are in the API with the file's figures.
    const fixed = join(env.artifacts, "move-in-fixed.xlsx");
    workbook(fixed, [
      header,
      ["Hooli", "0015g00000HooliAAA", "Enterprise", 1200000, "Dana Whitfield", "2026-01-15", "2027-01-15"],
      ["Pied Piper", "0015g00000PiperAAA", "SMB", 18000.5, "Dana Whitfield", "2026-02-01", "2027-02-01"],
    ]);
    await page.getByRole("button", { name: "New import" }).click();
    await page.locator('input[type="file"]').setInputFiles(fixed);
    await page.getByTestId("import-counts").waitFor();
    assert.match(await page.getByTestId("import-counts").innerText(), /2 rows create[\s\S]*0 rows have errors/);
    await page.getByRole("button", { name: "Commit 2 rows" }).click();
    await page.getByTestId("import-outcome").waitFor();
    assert.match(await page.getByTestId("import-outcome").innerText(), /committed\s+2 rows created, 0 updated, 2 events written by test-admin/);
    const FIND = `query ($s: String) { customers(filter: { search: $s }) { nodes { name arr tier csm { name } } } }`;
    const found = async (wanted) => {
      // The read models follow the commit within moments.
      for (let attempt = 0; attempt < 50; attempt += 1) {
        const nodes = (await gql(env.tokens.admin, FIND, { s: "Pied Piper" })).customers.nodes;
        if (nodes.length === wanted) return nodes;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.fail(`Pied Piper was not listed ${wanted} time(s)`);
    };
    assert.deepEqual(await found(1), [{ name: "Pied Piper", arr: "18000.50", tier: "SMB", csm: { name: "Dana Whitfield" } }]);

    // The history lists it; its undo retracts both, and the page says so.
    await page.reload();
    const row = page.getByTestId("import-history-row").filter({ hasText: "move-in-fixed.xlsx" });
    assert.match(await row.innerText(), /Customers[\s\S]*by test-admin[\s\S]*2[\s\S]*committed/);
    await row.getByRole("button", { name: "Open or undo" }).click();
    await page.getByRole("button", { name: "Undo this import" }).click();
    await page.getByRole("button", { name: "Undo the import" }).click();
    await page.getByTestId("undo-report").waitFor();
    assert.match(await page.getByTestId("undo-report").innerText(), /Undone by test-admin on .*: 2 customers retracted/);
    assert.deepEqual(await found(0), []);
    // Checked at rest, not under the pointer's hover.
    await page.mouse.move(0, 0);
    await accessible(page, "imports-undone");
  });

  test("sets notification preferences and manages a webhook in the settings", async () => {
    const { page } = session;
    await page.goto(app("/settings"));
    await page.locator("#channel-slack").check({ force: true });
    await page.locator("#pref-slack-user").fill("nope");
    await page.locator("#kind-health_red").check({ force: true });
    await page.getByRole("button", { name: "Save", exact: true }).click();
    // The API's reason, on the field it names.
    assert.equal(
      await page.locator("#pref-slack-user-error-msg").innerText(),
      "a Slack member id is U or W then capitals and digits",
    );
    await page.locator("#pref-slack-user").fill("U012ABCDEF");
    // The time zone, found by typing part of its name.
    await page.locator("#pref-time-zone").fill("Asia/Tok");
    await page.getByRole("option", { name: "Asia/Tokyo" }).click();
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await page.getByRole("status").filter({ hasText: "Saved" }).waitFor();
    const stored = await (
      await fetch(`${env.commandUrl}/api/v1/notification-preferences`, { headers: { authorization: `Bearer ${env.tokens.admin}` } })
    ).json();
    assert.deepEqual([stored.channels, stored.slack_user_id, stored.kinds, stored.time_zone], [["slack"], "U012ABCDEF", ["health_red"], "Asia/Tokyo"]);
    await page.reload();
    assert.ok(await page.locator("#kind-health_red").isChecked());
    // Times are shown in the chosen zone, named (this browser runs elsewhere).
    assert.match(await page.locator(".cs-form .cs-muted").first().innerText(), /Last changed \d+ \w{3} \d{4}, \d\d:\d\d GMT\+9\./);
    await page.mouse.move(0, 0);
    await accessible(page, "settings-notifications");

    await page.getByRole("tab", { name: "Webhooks" }).click();
    await page.locator("#webhook-url").fill("http://169.254.169.254/latest");
    await page.getByRole("button", { name: "Add the webhook" }).click();
    await page.getByText(/cstrack calls no such address/).waitFor();
    await page.locator("#webhook-url").fill("http://127.0.0.1:9/cstrack");
    await page.locator("#webhook-description").fill("The data warehouse");
    await page.getByRole("button", { name: "Add the webhook" }).click();
    await page.getByText("Added. Its signing secret, shown this once:").waitFor();
    const row = page.getByTestId("webhook-row").filter({ hasText: "http://127.0.0.1:9/cstrack" });
    assert.match(await row.innerText(), /The data warehouse[\s\S]*every alert[\s\S]*by test-admin/);
    await row.getByRole("button", { name: "Deliveries" }).click();
    await page.getByRole("heading", { name: "Deliveries to http://127.0.0.1:9/cstrack" }).waitFor();
    await page.getByText("Nothing sent yet.").waitFor();
    // A test delivery: nothing listens on port 9, so its first attempt fails, and says why.
    await row.getByRole("button", { name: "Send a test" }).click();
    const delivery = page.getByRole("table", { name: "Deliveries" }).getByRole("row").filter({ hasText: "a test delivery" });
    await delivery.filter({ hasText: "retrying" }).waitFor();
    assert.match(await delivery.innerText(), /\d+ attempts?[\s\S]*failed \(error sending request/);
    await page.mouse.move(0, 0);
    await accessible(page, "settings-webhooks");
    await row.getByRole("button", { name: "Stop" }).click();
    await page.getByRole("button", { name: "Stop the webhook" }).click();
    await row.waitFor({ state: "detached" });
    const live = await (await fetch(`${env.commandUrl}/api/v1/webhooks`, { headers: { authorization: `Bearer ${env.tokens.admin}` } })).json();
    assert.ok(!live.webhooks.some((hook) => hook.url === "http://127.0.0.1:9/cstrack"));
    // Back to this browser's own zone for the tests that follow.
    const restored = await fetch(`${env.commandUrl}/api/v1/notification-preferences`, {
      method: "PUT",
      headers: { authorization: `Bearer ${env.tokens.admin}`, "content-type": "application/json" },
      body: JSON.stringify({ time_zone: "UTC" }),
    });
    assert.equal(restored.status, 200);
  });

  test("sees the team's tasks with their assignees by name", async () => {
    const { page } = session;
    await page.goto(app("/tasks"));
    // A manager or admin lands on the team's tasks; Dana said which CSM she is, so she is named.
    const row = page.getByTestId("task-row").filter({ hasText: "Confirm the renewal terms" });
    await row.waitFor();
    assert.match(await row.innerText(), /Globex\s+follow up\s+medium\s+Dana Whitfield/);
    const named = await gql(env.tokens.admin, `{ tasks(filter: { assigneeId: "dana" }, first: 1) { nodes { assigneeName } } }`);
    assert.equal(named.tasks.nodes[0].assigneeName, "Dana Whitfield");
    await page.getByTestId("signed-in-as").filter({ hasText: /^test-admin \(admin\)$/ }).waitFor();
  });

  test("hands selected customers to another CSM and sees the workload follow", async () => {
    const { page } = session;
    const before = await gql(env.tokens.admin, `{ csmWorkload { csms { name accounts } } }`);
    const accounts = (name) => before.csmWorkload.csms.find((c) => c.name === name).accounts;
    await page.goto(app("/customers"));
    const umbrella = page.getByTestId("customer-row").filter({ hasText: "Umbrella" });
    await umbrella.waitFor();
    await umbrella.getByLabel("Select Umbrella").check({ force: true });
    await page.getByTestId("csm-batch").click();
    await page.locator("#csm-batch-choice").selectOption({ label: "Dana Whitfield" });
    await page.locator("#csm-batch-reason").fill("Omar is on leave");
    await page.mouse.move(0, 0);
    await accessible(page, "customers-reassign");
    await page.getByRole("dialog").getByRole("button", { name: "Reassign", exact: true }).click();
    await umbrella.filter({ hasText: "Dana Whitfield" }).waitFor();
    const after = await gql(env.tokens.admin, `{ csmWorkload { csms { name accounts } } }`);
    const now = (name) => after.csmWorkload.csms.find((c) => c.name === name).accounts;
    assert.deepEqual([now("Dana Whitfield"), now("Omar Haddad")], [accounts("Dana Whitfield") + 1, accounts("Omar Haddad") - 1]);
    // Handed back for the tests that follow.
    const omar = (await gql(env.tokens.admin, `{ csms { csmId name } }`)).csms.find((c) => c.name === "Omar Haddad");
    const back = await fetch(`${env.commandUrl}/api/v1/csms/${omar.csmId}/customers`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.tokens.admin}`, "content-type": "application/json" },
      body: JSON.stringify({ customer_ids: [env.customers.umbrella], reason: "Omar is back" }),
    });
    assert.equal(back.status, 200);
  });

  test("records a health score on selected customers after previewing what changes for each", async () => {
    const { page } = session;
    const before = await gql(env.tokens.admin, `{ customers(first: 50) { nodes { name health { score } } } }`);
    const now = (name) => {
      const score = before.customers.nodes.find((c) => c.name === name).health?.score;
      return score == null ? "no score" : String(score);
    };
    await page.goto(app("/customers"));
    for (const name of ["Initech", "Umbrella"]) {
      const row = page.getByTestId("customer-row").filter({ hasText: name });
      await row.waitFor();
      await row.getByLabel(`Select ${name}`).check({ force: true });
    }
    await page.getByTestId("batch-change").click();
    const dialog = page.getByRole("dialog", { name: "Change 2 customers" });
    await dialog.locator("#batch-action").selectOption("record_health");
    await dialog.locator("#batch-score").fill("70");
    await dialog.locator("#batch-reason").fill("Executive review");
    await dialog.getByRole("button", { name: "Preview the change" }).click();
    await dialog.getByTestId("batch-preview-summary").filter({ hasText: "2 customers change; 0 already have it." }).waitFor();
    const rows = await dialog.getByTestId("batch-preview-row").evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    assert.deepEqual(
      rows.sort(),
      [
        ["Initech", now("Initech"), "70", "yes"],
        ["Umbrella", now("Umbrella"), "70", "yes"],
      ].sort(),
    );
    await page.mouse.move(0, 0);
    await accessible(page, "customers-batch-preview");
    await dialog.getByRole("button", { name: "Apply to 2 customers" }).click();
    await page.getByRole("status").filter({ hasText: "2 customers changed; the others already had it." }).waitFor();
    let after;
    for (let tries = 0; tries < 40; tries++) {
      after = await gql(env.tokens.admin, `{ customers(first: 50) { nodes { name health { score } } } }`);
      if (["Initech", "Umbrella"].every((n) => after.customers.nodes.find((c) => c.name === n).health?.score === 70)) break;
      await page.waitForTimeout(250);
    }
    for (const name of ["Initech", "Umbrella"]) assert.equal(after.customers.nodes.find((c) => c.name === name).health?.score, 70);
  });

  test("reschedules and reassigns selected tasks together", async () => {
    const { page } = session;
    await page.goto(app("/tasks?view=Team"));
    const row = page.getByTestId("task-row").filter({ hasText: "Confirm the renewal terms" });
    await row.waitFor();
    await row.getByLabel("Select Confirm the renewal terms").check({ force: true });
    await page.getByTestId("tasks-selected").filter({ hasText: "1 task selected" }).waitFor();
    await page.getByRole("button", { name: "Reschedule", exact: true }).click();
    await page.locator("#bulk-days").fill("7");
    await page.mouse.move(0, 0);
    await accessible(page, "tasks-bulk");
    await page.getByRole("dialog").getByRole("button", { name: "Reschedule", exact: true }).click();
    await row.filter({ hasText: "2031-02-08" }).waitFor();
    await row.getByLabel("Select Confirm the renewal terms").check({ force: true });
    await page.getByRole("button", { name: "Reassign", exact: true }).click();
    await page.locator("#bulk-assignee").fill("omar");
    await page.locator("#bulk-reason").fill("Dana is on leave");
    await page.getByRole("dialog").getByRole("button", { name: "Reassign", exact: true }).click();
    await row.filter({ hasText: /omar\s*2031-02-08/ }).waitFor();
    const moved = await gql(env.tokens.admin, `{ tasks(filter: { assigneeId: "omar" }) { nodes { title dueDate } } }`);
    assert.deepEqual(moved.tasks.nodes.filter((t) => t.title === "Confirm the renewal terms"), [{ title: "Confirm the renewal terms", dueDate: "2031-02-08" }]);
  });

  test("registers a partner, invites, activates and deactivates its user, and assigns customers in bulk", async () => {
    const { page } = session;
    await page.goto(app("/settings?tab=partners"));
    await page.locator("#partner-name").fill("Fabrikam Partners");
    await page.getByRole("button", { name: "Register", exact: true }).click();
    const partner = page.getByTestId("partner").filter({ hasText: "Fabrikam Partners" });
    await partner.waitFor();
    assert.match(await partner.innerText(), /No user invited yet\./);
    await partner.getByRole("button", { name: "Invite a user" }).click();
    await page.locator("#invite-name").fill("Lee Park");
    await page.locator("#invite-email").fill("not an address");
    await page.getByRole("button", { name: "Invite", exact: true }).click();
    await page.locator("#invite-email-error-msg").waitFor();
    await page.locator("#invite-email").fill("lee@fabrikam.example");
    await page.getByRole("button", { name: "Invite", exact: true }).click();
    const lee = partner.getByTestId("partner-user").filter({ hasText: "Lee Park" });
    await lee.filter({ hasText: "invited" }).waitFor();
    await lee.getByRole("button", { name: "Activate", exact: true }).click();
    await lee.filter({ hasText: "active" }).getByRole("button", { name: "Deactivate" }).waitFor();
    await lee.getByRole("button", { name: "Deactivate" }).click();
    await page.locator("#deactivate-reason").fill("Left Fabrikam");
    await page.getByRole("button", { name: "Deactivate", exact: true }).last().click();
    await lee.filter({ hasText: /deactivated\s*Left Fabrikam/ }).waitFor();

    // Customers found by name, ticked, and assigned at once.
    await partner.getByRole("button", { name: "Assign customers" }).click();
    await page.locator("#assign-search").fill("umbrel");
    await page.getByTestId("assign-found").filter({ hasText: "1 match" }).waitFor();
    await page.getByText("Umbrella", { exact: true }).click();
    assert.equal(await page.getByTestId("assign-chosen").innerText(), "Chosen: Umbrella");
    await page.mouse.move(0, 0);
    await accessible(page, "settings-partners-assign");
    await page.getByRole("button", { name: "Assign 1 customer" }).click();
    await partner.getByTestId("partner-customers").filter({ hasText: "1 customer" }).waitFor();
    const listed = await gql(env.tokens.admin, `{ partners { name customerCount users { name status reason } } }`);
    assert.deepEqual(listed.partners.find((p) => p.name === "Fabrikam Partners"), {
      name: "Fabrikam Partners",
      customerCount: 1,
      users: [{ name: "Lee Park", status: "DEACTIVATED", reason: "Left Fabrikam" }],
    });
    await accessible(page, "settings-partners");
    // The count opens the customer list filtered to the partner.
    await partner.getByTestId("partner-customers").click();
    await page.getByTestId("customers-total").filter({ hasText: "1 to 1 of 1 customer" }).waitFor();
    assert.deepEqual(await page.getByTestId("customer-row").locator("td:nth-child(2)").allInnerTexts(), ["Umbrella"]);
    const fabrikam = (await gql(env.tokens.admin, `{ partners { partnerId name } }`)).partners.find((p) => p.name === "Fabrikam Partners");
    assert.equal(await page.locator("#customers-partner").inputValue(), fabrikam.partnerId);
  });

  test("changes a rule after seeing what it would do to today's reports", async () => {
    const { page } = session;
    const before = await gql(env.tokens.admin, `{ rules { version standards { tier maxDaysBetweenContact } } }`);
    await page.goto(app("/settings?tab=rules"));
    await page.locator("#rule-ENTERPRISE-maxDaysBetweenContact").fill("3");
    await page.getByRole("heading", { name: "What the change would do today" }).waitFor();
    // The preview is the API's own recomputation under the proposal.
    const full = await gql(
      env.tokens.admin,
      `query ($rules: RulesInput) { now: coverageReport { summary { underCovered } } then: coverageReport(rules: $rules) { summary { underCovered } } }`,
      { rules: { standards: (await gql(env.tokens.admin, `{ rules { standards { tier maxDaysBetweenContact expectedTouchesPerMonth minMeetingsPerQuarter stakeholderBreadth } } }`)).rules.standards.map((s) => ({ ...s, maxDaysBetweenContact: s.tier === "ENTERPRISE" ? 3 : s.maxDaysBetweenContact })) } },
    );
    await page.waitForFunction(
      (expected) => document.querySelector('[data-testid="preview-under"]')?.textContent?.includes(expected),
      `${full.now.summary.underCovered}${full.then.summary.underCovered}`,
    );
    // More hours an enterprise account needs: utilization rises in the preview.
    await page.locator("#rule-ENTERPRISE-hoursPerMonth").fill("40");
    await page.getByTestId("preview-utilization").filter({ hasText: "(changed)" }).waitFor();
    // Weights must make 100 %: the sum says so and saving waits.
    await page.locator("#weight-email").fill("50");
    assert.match(await page.getByTestId("weights-sum").innerText(), /they must make 100%/);
    assert.ok(await page.getByRole("button", { name: "Save the new rules" }).isDisabled());
    await page.getByRole("button", { name: "Put back the rules in force" }).click();
    await page.locator("#rule-ENTERPRISE-maxDaysBetweenContact").fill("3");
    await page.mouse.move(0, 0);
    await accessible(page, "settings-rules-preview");
    await page.getByRole("button", { name: "Save the new rules" }).click();
    await page.getByRole("status").filter({ hasText: "Saved: Enterprise standards" }).waitFor();
    const after = await gql(env.tokens.admin, `{ rules { version changedBy standards { tier maxDaysBetweenContact } } }`);
    assert.notEqual(after.rules.version, before.rules.version);
    assert.equal(after.rules.changedBy, "test-admin");
    assert.equal(after.rules.standards[0].maxDaysBetweenContact, 3);
    // Put the standard back for the tests that follow.
    const enterprise = (await gql(env.tokens.admin, `{ rules { standards { tier expectedTouchesPerMonth minMeetingsPerQuarter stakeholderBreadth } } }`)).rules.standards[0];
    const restored = await fetch(`${env.commandUrl}/api/v1/rules/coverage-standards`, {
      method: "PUT",
      headers: { authorization: `Bearer ${env.tokens.admin}`, "content-type": "application/json" },
      body: JSON.stringify({
        tier: "Enterprise",
        max_days_between_contact: before.rules.standards[0].maxDaysBetweenContact,
        expected_touches_per_month: enterprise.expectedTouchesPerMonth,
        min_meetings_per_quarter: enterprise.minMeetingsPerQuarter,
        stakeholder_breadth: enterprise.stakeholderBreadth,
      }),
    });
    assert.equal(restored.status, 200);
  });

  test("defines a custom field with a preview of the form, orders it and sets it on the 360", async () => {
    const { page } = session;
    await page.goto(app("/settings?tab=custom-fields"));
    await page.getByRole("button", { name: "Define a field" }).click();
    await page.locator("#field-label").fill("Renewal risk owner");
    assert.equal(await page.locator("#field-key").inputValue(), "renewal_risk_owner");
    await page.locator("#field-section").fill("Renewal");
    await page.locator("#field-type").selectOption("single_select");
    await page.locator("#field-options").fill("Sales\nCustomer success\nPartner");
    // The preview is the form the 360 shows, with the new field in its section.
    const preview = page.getByRole("form", { name: "Preview of the custom-field form" });
    await preview.getByRole("group", { name: "Renewal" }).waitFor();
    assert.deepEqual(
      await preview.locator("#preview-renewal_risk_owner option").allInnerTexts(),
      ["—", "Sales", "Customer success", "Partner"],
    );
    await page.mouse.move(0, 0);
    await accessible(page, "settings-custom-field-preview");
    await page.getByRole("button", { name: "Define the field" }).click();
    const row = page.getByTestId("field-row").filter({ hasText: "Renewal risk owner" });
    await row.waitFor();
    // Moved to the top: the definitions come back in that order.
    const count = await page.getByTestId("field-row").count();
    for (let i = 1; i < count; i += 1) {
      await row.getByRole("button", { name: "Move Renewal risk owner up" }).click();
      await page.waitForFunction(
        (n) => [...document.querySelectorAll('[data-testid="field-row"]')].findIndex((r) => r.textContent.includes("Renewal risk owner")) === n,
        count - 1 - i,
      );
    }
    const keys = await gql(env.tokens.admin, `{ customFieldDefinitions { key } }`);
    assert.equal(keys.customFieldDefinitions[0].key, "renewal_risk_owner");
    // Set on the 360 and shown there.
    await page.goto(app(`/customers/${env.customers.acme}`));
    await page.getByRole("tab", { name: "Log and record" }).click();
    await page.locator("#cf-renewal_risk_owner").selectOption("Customer success");
    await page.getByRole("button", { name: "Save the fields" }).click();
    await page.getByRole("status").filter({ hasText: "Saved" }).waitFor();
    // Read back once the projector has applied it.
    let stored;
    for (let tries = 0; tries < 50; tries += 1) {
      stored = (await gql(env.tokens.admin, `query ($id: UUID!) { customer(id: $id) { customFields { key display } } }`, { id: env.customers.acme })).customer.customFields.find(
        (f) => f.key === "renewal_risk_owner",
      );
      if (stored?.display) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(stored, { key: "renewal_risk_owner", display: "Customer success" });
    await page.getByRole("tab", { name: "Overview" }).click();
    await page.locator("dd", { hasText: /^Customer success$/ }).waitFor();
  });

  test("saves a task template, makes a customer's tasks from it on the 360, and repeats a monthly check-in", async () => {
    const { page } = session;
    await page.goto(app("/settings?tab=task-templates"));
    await page.locator("#template-name").fill("Renewal kick-off");
    await page.locator("#template-title").fill("Open the renewal");
    await page.locator("#template-kind").selectOption("renewal");
    await page.locator("#template-due").fill("14");
    await page.locator("#template-subtasks").fill("Pull the usage report | 3\nBook the sponsor call | 7");
    await page.getByRole("button", { name: "Save the template" }).click();
    await page.getByTestId("task-template").filter({ hasText: "Renewal kick-off" }).waitFor();
    await accessible(page, "settings-task-templates");
    // On Umbrella's 360: the task and its subtasks, due from the day chosen.
    await page.goto(app(`/customers/${env.customers.umbrella}`));
    await page.getByRole("tab", { name: "Tasks" }).click();
    await page.locator("#template-choice").selectOption({ label: "Renewal kick-off" });
    await page.getByTestId("template-preview").filter({ hasText: "Pull the usage report (day 3)" }).waitFor();
    await page.locator("#template-assignee").fill("omar");
    await page.locator("#template-start").fill("2027-03-01");
    await page.getByRole("button", { name: "Make the tasks" }).click();
    await page.getByRole("status").filter({ hasText: 'Made "Open the renewal" and 2 subtasks' }).waitFor();
    const tasksOf = async () =>
      (await gql(env.tokens.admin, `query ($c: UUID) { tasks(filter: { customerId: $c }, first: 50) { nodes { title dueDate assigneeId } } }`, { c: env.customers.umbrella })).tasks.nodes;
    let made = [];
    for (let tries = 0; tries < 40 && made.length < 3; tries++) {
      made = (await tasksOf()).filter((t) => t.assigneeId === "omar");
      if (made.length < 3) await page.waitForTimeout(250);
    }
    assert.deepEqual(
      made.map((t) => [t.title, t.dueDate]).sort(),
      [
        ["Book the sponsor call", "2027-03-08"],
        ["Open the renewal", "2027-03-15"],
        ["Pull the usage report", "2027-03-04"],
      ],
    );
    // A monthly check-in from the 1st of this month: this month's task is made at once.
    const now = new Date();
    const pad = (n) => String(n).padStart(2, "0");
    const monthStart = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-01`;
    const due = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-06`;
    await page.locator("#recurring-title").fill("Monthly check-in");
    await page.locator("#recurring-assignee").fill("omar");
    await page.locator("#recurring-starts").fill(monthStart);
    await page.getByRole("button", { name: "Repeat the task" }).click();
    await page.getByTestId("recurring-task").filter({ hasText: "Monthly check-in" }).filter({ hasText: "every month on day 1" }).waitFor();
    let checkIn;
    for (let tries = 0; tries < 60 && !checkIn; tries++) {
      checkIn = (await tasksOf()).find((t) => t.title === "Monthly check-in");
      if (!checkIn) await page.waitForTimeout(250);
    }
    assert.equal(checkIn?.dueDate, due);
    await page.mouse.move(0, 0);
    await accessible(page, "customer-recurring-tasks");
  });

  test("edits a shipped playbook's steps, saved as a new version", async () => {
    const { page } = session;
    await page.goto(app("/settings?tab=playbooks"));
    const onboarding = page.getByTestId("playbook").filter({ hasText: "Onboarding" });
    await onboarding.filter({ hasText: "as shipped" }).waitFor();
    await onboarding.getByRole("button", { name: "Edit Onboarding" }).click();
    const form = page.getByRole("form", { name: "Edit Onboarding" });
    await form.getByRole("button", { name: "Add a step" }).click();
    await form.locator("#step-4-title").fill("Send the welcome survey");
    await form.locator("#step-4-offset").fill("2");
    await form.locator("#step-4-template").fill("Hello {customer}, how is it going so far? {csm}");
    await page.mouse.move(0, 0);
    await accessible(page, "settings-playbook-editor");
    await form.getByRole("button", { name: "Save a new version" }).click();
    await page.getByRole("status").filter({ hasText: 'Saved "Onboarding"' }).waitFor();
    const saved = page.getByTestId("playbook").filter({ hasText: "Onboarding" });
    await saved.filter({ hasText: "version 1" }).filter({ hasText: "starts by hand only" }).waitFor();
    await saved.getByText("Send the welcome survey").waitFor();
    const listed = (await gql(env.tokens.admin, `{ playbooks { name version autoStart steps { title dueText } } }`)).playbooks.find((p) => p.name === "Onboarding");
    assert.equal(listed.version, 1);
    assert.equal(listed.autoStart, false);
    assert.deepEqual(listed.steps.at(-1), { title: "Send the welcome survey", dueText: "2 days after the previous step" });
  });

  test("registers a CSM and changes their capacity", async () => {
    const { page } = session;
    await page.goto(app("/settings?tab=csms"));
    await page.locator("#csm-name").fill("Robin Vale");
    await page.locator("#csm-email").fill("robin.vale@example.com");
    await page.locator("#csm-team").fill("West");
    await page.getByRole("button", { name: "Register the CSM" }).click();
    await page.getByRole("status").filter({ hasText: "Robin Vale is registered." }).waitFor();
    const row = page.getByTestId("csm-row").filter({ hasText: "Robin Vale" });
    await row.waitFor();
    await row.getByRole("button", { name: "Change capacity" }).click();
    await page.locator("#capacity-hours").fill("80");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await page.waitForFunction(() =>
      [...document.querySelectorAll('[data-testid="csm-row"]')].some((r) => r.textContent.includes("Robin Vale") && r.textContent.includes("80 h")),
    );
    const csms = await gql(env.tokens.admin, `{ csms { name team monthlyCapacityHours } }`);
    assert.deepEqual(csms.csms.find((c) => c.name === "Robin Vale"), { name: "Robin Vale", team: "West", monthlyCapacityHours: 80 });
    await accessible(page, "settings-csms");
  });

  test("sees the connectors and puts a deck template in place", async () => {
    const { page } = session;
    await page.goto(app("/settings?tab=connectors"));
    await page.getByTestId("connector-salesforce").waitFor();
    assert.match(await page.getByTestId("connector-salesforce").innerText(), /Salesforce\s+not configured[\s\S]*CSTRACK_SALESFORCE_TOKEN_URL/);
    assert.equal(await page.getByRole("button", { name: "Sync now" }).count(), 0, "nothing configured, nothing to sync");
    await accessible(page, "settings-connectors");

    // A deck the service built is a template it accepts.
    const deck = await fetch(`${env.appUrl}/export/portfolio.pptx`, { headers: { authorization: `Bearer ${env.tokens.admin}` } });
    assert.equal(deck.status, 200);
    const path = join(env.artifacts, "our-template.pptx");
    writeFileSync(path, Buffer.from(await deck.arrayBuffer()));
    await page.goto(app("/settings?tab=deck-template"));
    assert.equal(await page.getByTestId("deck-template-in-use").innerText(), "In use: the built-in template.");
    await page.locator('input[type="file"]').setInputFiles(path);
    await page.getByRole("status").filter({ hasText: "our-template.pptx is the deck template now" }).waitFor();
    assert.match(await page.getByTestId("deck-template-in-use").innerText(), /^In use: our-template\.pptx \(\d+ KB\), uploaded .+ by test-admin\.$/);
    await accessible(page, "settings-deck-template");
    await page.getByRole("button", { name: "Go back to the built-in template" }).click();
    await page.getByRole("button", { name: "Use the built-in template" }).click();
    await page.getByTestId("deck-template-in-use").filter({ hasText: "In use: the built-in template." }).waitFor();
  });

  test("sorts and filters the customer list and sees its total", async () => {
    const { page } = session;
    await page.goto(app("/customers"));
    await page.getByTestId("customers-total").waitFor();
    const all = await gql(env.tokens.admin, `{ customers(first: 50) { totalCount nodes { name } } }`);
    assert.match(await page.getByTestId("customers-total").innerText(), new RegExp(`^1 to ${all.customers.nodes.length} of ${all.customers.totalCount} customers$`));
    await page.locator("#customers-tier").selectOption("MID_MARKET");
    await page.locator("#customers-sort").selectOption("ARR_DESC");
    const expected = await gql(env.tokens.admin, `{ customers(filter: { tier: MID_MARKET }, sort: ARR_DESC, first: 50) { totalCount nodes { name } } }`);
    await page.waitForFunction(
      (total) => document.querySelector('[data-testid="customers-total"]')?.textContent?.endsWith(`of ${total} customer${total === 1 ? "" : "s"}`),
      expected.customers.totalCount,
    );
    const names = await page.getByTestId("customer-row").locator("td:nth-child(2)").allInnerTexts();
    assert.deepEqual(names, expected.customers.nodes.map((c) => c.name));
    // The choice is in the address, so a link shows the same list.
    assert.match(page.url(), /tier=MID_MARKET/);
    assert.match(page.url(), /sort=ARR_DESC/);
    await accessible(page, "customers-filtered");
  });

  test("chooses custom-field columns, filters by risk, NPS and a custom field, saves the view and reloads it", async () => {
    const { page } = session;
    await page.goto(app("/customers"));
    await page.getByTestId("customers-total").waitFor();
    // A custom-field column of the user's choice (the field defined in the settings test).
    await page.locator("#customers-columns").click();
    await page.getByRole("listbox", { name: "Custom-field columns" }).getByRole("option", { name: "Renewal risk owner" }).click();
    await page.keyboard.press("Escape");
    await page.getByRole("columnheader", { name: "Renewal risk owner" }).waitFor();
    const acme = page.getByTestId("customer-row").filter({ hasText: "Acme Corp" });
    assert.equal(await acme.getByTestId("column-renewal_risk_owner").innerText(), "Customer success");
    // Filtered by that field's value, then by risk: the list is the API's answer.
    await page.locator("#customers-cf").selectOption("renewal_risk_owner");
    await page.locator("#customers-cf-value").selectOption("Customer success");
    await page.getByTestId("customers-total").filter({ hasText: "1 to 1 of 1 customer" }).waitFor();
    await page.locator("#customers-cf").selectOption("");
    await page.locator("#customers-risk").selectOption("at-risk");
    const risky = await gql(env.tokens.admin, `{ customers(filter: { atRisk: true }) { totalCount nodes { name } } }`);
    await page.waitForFunction(
      (total) => document.querySelector('[data-testid="customers-total"]')?.textContent?.endsWith(`of ${total} customer${total === 1 ? "" : "s"}`),
      risky.customers.totalCount,
    );
    assert.deepEqual(await page.getByTestId("customer-row").locator("td:nth-child(2)").allInnerTexts(), risky.customers.nodes.map((c) => c.name));
    await page.locator("#customers-nps").selectOption("NO_ANSWER");
    await page.locator("#customers-sort").selectOption("HEALTH_ASC");
    const expected = await gql(env.tokens.admin, `{ customers(filter: { atRisk: true, npsCategory: NO_ANSWER }, sort: HEALTH_ASC) { totalCount nodes { name } } }`);
    await page.waitForFunction(
      (names) => JSON.stringify([...document.querySelectorAll('[data-testid="customer-row"] td:nth-child(2)')].map((td) => td.textContent)) === JSON.stringify(names),
      expected.customers.nodes.map((c) => c.name),
    );
    // Saved under a name, shared with the team, and chosen again after a reload.
    const sorted = (url) => [...new URL(url).searchParams.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    const chosen = sorted(page.url());
    await page.getByRole("button", { name: "Save this view" }).click();
    await page.locator("#view-name").fill("At risk, no NPS yet");
    await page.locator("#view-shared").check({ force: true });
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await page.locator("#customers-view option", { hasText: "At risk, no NPS yet (shared by me)" }).waitFor({ state: "attached" });
    await page.goto(app("/customers"));
    await page.getByTestId("customers-total").waitFor();
    await page.locator("#customers-view").selectOption({ label: "At risk, no NPS yet (shared by me)" });
    await page.getByRole("columnheader", { name: "Renewal risk owner" }).waitFor();
    assert.deepEqual(sorted(page.url()), chosen);
    // The view's filters are applied from the address as the page reads it back.
    await page.waitForFunction(
      () => document.querySelector("#customers-risk")?.value === "at-risk" && document.querySelector("#customers-nps")?.value === "NO_ANSWER",
    );
    await page.waitForFunction(
      (names) => JSON.stringify([...document.querySelectorAll('[data-testid="customer-row"] td:nth-child(2)')].map((td) => td.textContent)) === JSON.stringify(names),
      expected.customers.nodes.map((c) => c.name),
    );
    await page.mouse.move(0, 0);
    await accessible(page, "customers-saved-view");
    // A CSM of the team sees the shared view.
    const views = await (await fetch(`${env.commandUrl}/api/v1/saved-views`, { headers: { authorization: `Bearer ${env.tokens.csm}` } })).json();
    assert.deepEqual(views.views.map((v) => [v.name, v.mine, v.shared]), [["At risk, no NPS yet", false, true]]);
  });

  test("sees which accounts' next touch is overdue or due this week, and why", async () => {
    const { page } = session;
    const expected = await gql(
      env.tokens.admin,
      `{ overdue: customers(filter: { nextTouch: OVERDUE }, sort: NEXT_TOUCH) { totalCount nodes { name nextTouch { daysUntil lastContactDate } } }
         soon: customers(filter: { nextTouch: NEXT_7_DAYS }, sort: NEXT_TOUCH) { totalCount nodes { name nextTouch { daysUntil } } } }`,
    );
    assert.ok(expected.overdue.totalCount >= 1, "the fixture has accounts never contacted");
    await page.goto(app("/touches"));
    const overdue = page.getByTestId("touches-overdue");
    await overdue.getByTestId("touches-overdue-total").filter({ hasText: `of ${expected.overdue.totalCount} account` }).waitFor();
    const rows = await overdue.getByTestId("touch-row").evaluateAll((trs) => trs.map((tr) => [tr.children[0].textContent, tr.children[4].textContent, tr.children[5].textContent]));
    assert.deepEqual(
      rows.map((r) => [r[0], r[1]]),
      expected.overdue.nodes.map((c) => [c.name, `overdue by ${-c.nextTouch.daysUntil} day${c.nextTouch.daysUntil === -1 ? "" : "s"}`]),
    );
    // Why: the last contact (or none since onboarding) and the tier's standard.
    const first = expected.overdue.nodes[0];
    assert.match(rows[0][2], first.nextTouch.lastContactDate ? /^last contact \d{4}-\d\d-\d\d; its tier asks for a contact at least every \d+ days$/ : /^no contact yet since onboarding; its tier asks for a contact at least every \d+ days$/);
    const soon = page.getByTestId("touches-next_7_days");
    await soon.getByTestId("touches-next_7_days-total").waitFor();
    assert.deepEqual(await soon.getByTestId("touch-row").locator("td:first-child").allInnerTexts(), expected.soon.nodes.map((c) => c.name));
    await page.mouse.move(0, 0);
    await accessible(page, "next-touches");
    // The customer list filters by it, and the 360 says it.
    await page.goto(app("/customers?touch=OVERDUE&sort=NEXT_TOUCH"));
    await page.getByTestId("customers-total").filter({ hasText: `of ${expected.overdue.totalCount} customer` }).waitFor();
    assert.deepEqual(await page.getByTestId("customer-row").locator("td:nth-child(2)").allInnerTexts(), expected.overdue.nodes.map((c) => c.name));
    await page.getByRole("link", { name: first.name, exact: true }).click();
    await page.getByTestId("customer-next-touch").filter({ hasText: `overdue by ${-first.nextTouch.daysUntil} day` }).waitFor();
  });

  test("orders customers by churn risk, opens the riskiest one's explanation and backtests a change of weights", async () => {
    const { page } = session;
    const expected = await gql(
      env.tokens.admin,
      `{ customers(sort: RISK_DESC, first: 50) { totalCount nodes { customerId name risk { score band } } } }`,
    );
    await page.goto(app("/customers?sort=RISK_DESC"));
    await page.getByTestId("customers-total").filter({ hasText: `of ${expected.customers.totalCount} customer` }).waitFor();
    const shown = await page.getByTestId("customer-row").evaluateAll((trs) => trs.map((tr) => [tr.querySelector("td:nth-child(2)").textContent, tr.querySelector('[data-testid="column-churn-risk"]').textContent]));
    const bands = { HIGH: "high", WATCH: "watch", LOW: "low" };
    assert.deepEqual(
      shown,
      expected.customers.nodes.map((c) => [c.name, c.risk ? `${c.risk.score.toFixed(1)} ${bands[c.risk.band]}` : "—"]),
    );
    // The riskiest account's explanation: its factors add up to its score, each with why.
    const riskiest = expected.customers.nodes[0];
    await page.getByRole("link", { name: riskiest.name, exact: true }).click();
    await page.getByTestId("customer-churn-risk").filter({ hasText: riskiest.risk.score.toFixed(1) }).waitFor();
    const summary = page.getByTestId("churn-risk-summary");
    await summary.filter({ hasText: `${riskiest.risk.score.toFixed(1)} of 100` }).waitFor();
    const explained = await gql(
      env.tokens.admin,
      `query ($id: UUID!) { customer(id: $id) { churnRisk { score factors { label finding points evidence { description } } } } }`,
      { id: riskiest.customerId },
    );
    const factors = explained.customer.churnRisk.factors;
    const rows = await page.getByTestId("risk-factor").evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    assert.deepEqual(
      rows.map((r) => [r[0], r[1]]),
      factors.map((f) => [f.label, f.finding]),
    );
    assert.ok(Math.abs(factors.reduce((n, f) => n + f.points, 0) - explained.customer.churnRisk.score) < 0.1 * factors.length);
    const cited = factors.find((f) => f.evidence.length > 0);
    assert.ok(cited, "some factor names the events behind it");
    assert.ok(rows[factors.indexOf(cited)][3].includes(cited.evidence[0].description), rows[factors.indexOf(cited)][3]);
    await page.mouse.move(0, 0);
    await accessible(page, "churn-risk-explained");
    // Settings: the backtest of the weights in force, then of a change, before saving it.
    const backtest = await gql(env.tokens.admin, `{ churnRiskBacktest { churned renewed horizons { daysBefore cases flagged } } }`);
    await page.goto(app("/settings?tab=churn-risk"));
    const horizons = page.getByTestId("backtest-horizon");
    await horizons.first().waitFor();
    assert.deepEqual(
      await horizons.evaluateAll((trs) => trs.map((tr) => [tr.children[0].textContent, tr.children[1].textContent, tr.children[3].textContent])),
      backtest.churnRiskBacktest.horizons.map((h) => [String(h.daysBefore), String(h.cases), String(h.flagged)]),
    );
    await page.locator("#risk-weight-nps").fill("30");
    assert.match(await page.getByTestId("risk-weights-sum").innerText(), /they must make 100/);
    assert.ok(await page.getByRole("button", { name: "Save the churn-risk rules" }).isDisabled());
    await page.locator("#risk-weight-health").fill("0");
    await page.getByTestId("risk-weights-sum").filter({ hasText: "Together: 100 points" }).waitFor();
    await page.locator("#risk-high-from").fill("40");
    await page.getByText("Figures after an arrow are under your change").waitFor();
    await page.mouse.move(0, 0);
    await accessible(page, "settings-churn-risk");
    await page.getByRole("button", { name: "Save the churn-risk rules" }).click();
    await page.getByRole("status").filter({ hasText: "Saved." }).waitFor();
    const after = await gql(env.tokens.admin, `{ rules { risk { weights { nps health } highFrom } } }`);
    assert.deepEqual(after.rules.risk, { weights: { nps: 30, health: 0 }, highFrom: 40 });
    // Put the defaults back for the tests that follow.
    const restored = await fetch(`${env.commandUrl}/api/v1/rules/churn-risk`, {
      method: "PUT",
      headers: { authorization: `Bearer ${env.tokens.admin}`, "content-type": "application/json" },
      body: JSON.stringify({
        weights: { health: 20, health_trend: 10, engagement: 15, engagement_trend: 5, coverage: 10, contact: 10, nps: 10, issues: 5, escalations: 5, renewal: 5, adoption: 5 },
        high_from: 50,
        watch_from: 30,
      }),
    });
    assert.equal(restored.status, 200);
  });

  test("pins accounts to my focus from the list and the 360 and reads them back as a view", async () => {
    const { page } = session;
    const listed = await gql(env.tokens.admin, `{ customers(first: 3) { nodes { customerId name } } }`);
    const [first, second] = listed.customers.nodes;
    await page.goto(app("/customers"));
    await page.getByRole("button", { name: `Pin ${first.name} to my focus` }).click();
    await page.getByRole("button", { name: `Unpin ${first.name} from my focus` }).waitFor();
    await page.getByRole("link", { name: second.name, exact: true }).click();
    await page.getByRole("button", { name: `Pin ${second.name} to my focus` }).click();
    await page.getByRole("button", { name: `Unpin ${second.name} from my focus` }).waitFor();
    // "My focus" in the menu is the list of the pinned accounts.
    await page.getByRole("link", { name: "My focus", exact: true }).click();
    await page.getByTestId("customers-total").filter({ hasText: "of 2 customers" }).waitFor();
    const names = await page.getByTestId("customer-row").locator("td:nth-child(2) a").allInnerTexts();
    assert.deepEqual(names, [first.name, second.name].sort((a, b) => a.localeCompare(b, undefined, { sensitivity: "base" })));
    assert.ok(await page.locator("#customers-focus").isChecked());
    await page.mouse.move(0, 0);
    await accessible(page, "my-focus");
    // Unpinned from the list, it leaves the view.
    await page.getByRole("button", { name: `Unpin ${first.name} from my focus` }).click();
    await page.getByTestId("customers-total").filter({ hasText: "of 1 customer" }).waitFor();
    const pins = await gql(env.tokens.admin, `{ customers(filter: { pinned: true }) { nodes { name } } }`);
    assert.deepEqual(pins.customers.nodes, [{ name: second.name }]);
    await page.getByRole("button", { name: `Unpin ${second.name} from my focus` }).click();
    await page.getByTestId("customers-total").filter({ hasText: "No customer matches." }).waitFor();
  });

  test("downloads each report with the screen's filters and opens it", async () => {
    const { page } = session;
    // Coverage, filtered to one tier: the workbook says so and lists that tier's accounts.
    await page.goto(app("/coverage"));
    await page.locator("#filter-tier").selectOption("SMB");
    await page.getByTestId("downloads").waitFor();
    const coverage = await downloaded(page, "Excel workbook (.xlsx)");
    const sheets = openpyxl(coverage.path);
    const about = Object.fromEntries(sheets.About.filter((r) => r[0]).map((r) => [r[0], r[1]]));
    assert.equal(about.Filters, "tier=SMB");
    const expected = await gql(env.tokens.admin, `{ coverageReport(tier: SMB) { summary { accounts } } }`);
    assert.equal(sheets.Accounts.length - 1, expected.coverageReport.summary.accounts);
    // Every other screen's download opens as what it says it is.
    for (const [path, item, check] of [
      ["/engagement", "CSV file (.csv)", (text) => assert.match(text, /^\uFEFF?[^\r\n]+\r\n/)],
      ["/workload", "Excel workbook (.xlsx)", (_, path) => assert.ok(openpyxl(path).CSMs.length > 1)],
      ["/customers", "Excel workbook (.xlsx)", (_, path) => assert.ok(openpyxl(path).Customers.some((r) => r[0] === "Acme Corp"))],
      ["/tasks", "Excel workbook (.xlsx)", (_, path) => assert.ok(openpyxl(path).Tasks.length >= 1)],
      [`/customers/${env.customers.acme}`, "Customer summary deck (.pptx)", (text) => assert.ok(text.startsWith("PK"))],
    ]) {
      await page.goto(app(path));
      await page.getByTestId("downloads").waitFor();
      const file = await downloaded(page, item);
      check(readFileSync(file.path, "latin1"), file.path);
    }
    await page.goto(app("/coverage"));
    await page.getByTestId("downloads").click();
    await accessible(page, "downloads-menu");
  });

  test("builds the portfolio deck of the sections chosen, and a batch of customer decks", async () => {
    const { page } = session;
    await page.goto(app("/"));
    await page.getByTestId("portfolio-deck").click();
    const sections = page.getByRole("dialog", { name: "The portfolio deck" });
    await sections.getByText("Coverage", { exact: true }).click();
    await sections.getByText("Engagement", { exact: true }).click();
    await accessible(page, "deck-sections");
    const [deck] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Build the deck (.pptx)" }).click()]);
    const path = join(env.artifacts, "portfolio-sections.pptx");
    await deck.saveAs(path);
    const titles = slideTitles(path);
    assert.equal(titles[0], "Portfolio review");
    assert.ok(titles.includes("Executive summary"), titles.join(" | "));
    assert.ok(titles.some((t) => t.startsWith("At-risk accounts")), titles.join(" | "));
    assert.ok(!titles.some((t) => t === "Coverage" || t.startsWith("Engagement")), titles.join(" | "));
    // Two customers chosen on the list: one deck each, in one zip, named after them.
    await page.goto(app("/customers?book=all"));
    await page.getByTestId("customer-row").first().waitFor();
    await page.getByLabel("Select Acme Corp").check({ force: true });
    await page.getByLabel("Select Globex").check({ force: true });
    const [batch] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Decks for 2 customers (.zip)" }).click()]);
    const zip = join(env.artifacts, "customer-decks.zip");
    await batch.saveAs(zip);
    assert.deepEqual(zipEntries(zip).sort(), ["Acme Corp.pptx", "Globex.pptx"]);
  });
});

describe("offline", () => {
  let opened;
  afterEach(async () => {
    await opened?.page.screenshot({ path: join(env.artifacts, "end-offline.png"), fullPage: true }).catch(() => {});
    if (opened?.problems.length) console.log(`browser errors offline:\n${opened.problems.join("\n")}`);
  });
  test("installs, reads what was fetched without a network, and sends an activity logged offline once", async () => {
    opened = await signedIn(env.tokens.csm);
    const { context, page } = opened;
    const manifest = await (await fetch(`${env.appUrl}/app/manifest.webmanifest`)).json();
    assert.equal(manifest.start_url, "/app/");
    assert.ok(manifest.icons.some((i) => i.sizes === "512x512" && i.type === "image/png"));
    // The first visit installs the service worker; from then on it keeps what is fetched.
    await page.goto(app("/customers"));
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
    await page.reload();
    await page.waitForFunction(() => Boolean(navigator.serviceWorker.controller));
    await page.getByTestId("customer-row").first().waitFor();
    const online = await page.getByTestId("customer-row").locator("td:nth-child(2)").allInnerTexts();
    await page.goto(app(`/customers/${env.customers.acme}`));
    await page.getByRole("tab", { name: "Log and record" }).click();
    await page.locator("#activity-subject").waitFor();

    await context.setOffline(true);
    // The list as last fetched, marked as such.
    await page.goto(app("/customers"));
    await page.getByTestId("customer-row").first().waitFor();
    assert.deepEqual(await page.getByTestId("customer-row").locator("td:nth-child(2)").allInnerTexts(), online);
    assert.match(await page.getByTestId("offline-marker").innerText(), /^Offline, as of \d/);
    await accessible(page, "offline-customers");
    // An activity logged offline waits on the device.
    await page.goto(app(`/customers/${env.customers.acme}`));
    await page.getByRole("tab", { name: "Log and record" }).click();
    await page.locator("#activity-kind").selectOption("call");
    await page.locator("#activity-subject").fill("Offline call about the renewal");
    await page.getByRole("button", { name: "Log activity" }).click();
    await page.getByRole("status").filter({ hasText: "Saved on this device" }).waitFor();
    assert.equal(await page.getByTestId("outbox").innerText(), "1 change to send");
    const kept = JSON.parse(await page.evaluate(() => localStorage.getItem("cstrack-outbox:dana")));
    assert.equal(kept.length, 1);

    // Back online: it is sent with its key, once.
    await context.setOffline(false);
    await page.getByTestId("outbox").waitFor({ state: "detached", timeout: 15000 });
    const logged = async () =>
      (
        await gql(env.tokens.csm, `query ($c: UUID!) { customerTimeline(customerId: $c, first: 100) { nodes { summary } } }`, { c: env.customers.acme })
      ).customerTimeline.nodes.filter((n) => n.summary.includes("Offline call about the renewal")).length;
    for (let tries = 0; tries < 50 && (await logged()) === 0; tries += 1) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await logged(), 1);
    // A retry with the same key (an answer lost on the way back) appends nothing.
    const again = await fetch(`${env.commandUrl}${kept[0].path}`, {
      method: kept[0].method,
      headers: { authorization: `Bearer ${env.tokens.csm}`, "content-type": "application/json", "idempotency-key": kept[0].key },
      body: JSON.stringify(kept[0].body),
    });
    assert.ok(again.ok, `the retry answered ${again.status}`);
    assert.equal(again.headers.get("idempotent-replayed"), "true");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await logged(), 1);
    await context.close();
  });
});
