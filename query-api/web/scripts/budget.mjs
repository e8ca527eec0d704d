// The JavaScript budget, checked after every build: what a first visit downloads (the entry
// chunk and what it imports statically) and the whole client, both gzipped.
import { readFileSync, readdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";

const ENTRY_BUDGET = 200 * 1024; // first load, gzipped
const TOTAL_BUDGET = 480 * 1024; // every chunk, gzipped (the charts and settings load on demand)

const dist = new URL("../dist/", import.meta.url).pathname;
const html = readFileSync(join(dist, "index.html"), "utf8");
const gz = (file) => gzipSync(readFileSync(join(dist, file))).length;
const entry = [...html.matchAll(/(?:src|href)="\/app\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
const all = readdirSync(join(dist, "assets")).filter((f) => f.endsWith(".js")).map((f) => `assets/${f}`);
const entryBytes = entry.reduce((sum, f) => sum + gz(f), 0);
const totalBytes = all.reduce((sum, f) => sum + gz(f), 0);
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`JavaScript, gzipped: first load ${kib(entryBytes)} (budget ${kib(ENTRY_BUDGET)}), all ${all.length} chunks ${kib(totalBytes)} (budget ${kib(TOTAL_BUDGET)})`);
if (entryBytes > ENTRY_BUDGET || totalBytes > TOTAL_BUDGET) {
  console.error("the JavaScript budget is exceeded");
  process.exit(1);
}
