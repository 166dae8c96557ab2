#!/usr/bin/env node
// Refreshes test/durations.json, the seconds each test file took, from vitest JSON reports.
// vitest.config.ts starts the longest files first with it: on a fresh clone vitest has no timing
// cache and starts the largest files first, which left the 140 s OPC UA restart loop to start
// three minutes in and run alone at the end.
//
//   npx vitest run --reporter=json --outputFile=/tmp/suite-times.json [FILES]
//   node scripts/test-durations.mjs /tmp/suite-times.json [more reports...]
//
// Files a report does not name keep their figure; several reports of one file are averaged.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "test", "durations.json");

const reports = process.argv.slice(2);
if (reports.length === 0) {
  console.error("usage: node scripts/test-durations.mjs REPORT.json [REPORT.json...]");
  process.exit(1);
}
/** @type {Record<string, number>} */
const table = JSON.parse(readFileSync(OUT, "utf8"));
/** @type {Map<string, number[]>} */
const seen = new Map();
for (const report of reports) {
  const { testResults } = JSON.parse(readFileSync(report, "utf8"));
  for (const r of testResults) {
    const file = relative(ROOT, r.name).split("\\").join("/");
    seen.set(file, [...(seen.get(file) ?? []), (r.endTime - r.startTime) / 1000]);
  }
}
for (const [file, s] of seen) table[file] = Math.round((s.reduce((a, b) => a + b, 0) / s.length) * 10) / 10;
const sorted = Object.fromEntries(Object.entries(table).sort(([fa, a], [fb, b]) => b - a || (fa < fb ? -1 : 1)));
writeFileSync(OUT, `${JSON.stringify(sorted, null, 1)}\n`);
console.log(`test-durations: ${seen.size} files updated, ${Object.keys(sorted).length} in ${relative(ROOT, OUT)}`);
