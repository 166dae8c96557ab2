import { describe, it, expect } from "vitest";
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.js";
import { checkCase } from "./config-fixture-check.js";
import type { ConfigModel } from "../../src/config/model.js";
import { builtModel } from "../../src/config/model.js";
import { plannedModel } from "./config-planned.js";

/**
 * The invalid-config corpus: `NN-name.yaml` beside `NN-name.expect`. Each expect line describes one
 * problem as `LINE:COL: PATH: MESSAGE` fragments separated by ` ... ` (all must appear, in order,
 * in one reported line). The file must produce exactly as many problems as it has expect lines: every
 * error is reported, and nothing is reported twice or as noise.
 *
 * `invalid/` runs against this build's config; `planned/` against the build plus the planned
 * plugins whose config rules are written (OPC UA, Influx, Sparkplug B, ingest.mqtt: see
 * config-planned.ts), so those rules stay tested while the build refuses them.
 */
const dir = join(import.meta.dirname, "../fixtures/configs/invalid");
const cases = readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort();
const plannedDir = join(import.meta.dirname, "../fixtures/configs/planned");
const plannedCases = readdirSync(plannedDir).filter((f) => f.endsWith(".yaml")).sort();


describe("invalid config corpus", () => {
  it("has at least 35 cases, each with an expectation", () => {
    expect(cases.length).toBeGreaterThanOrEqual(35);
    for (const c of cases) expect(existsSync(join(dir, c.replace(/\.yaml$/, ".expect"))), c).toBe(true);
  });

  for (const c of cases) it(c, () => checkCase(join(dir, c), builtModel()));
});

describe("invalid config corpus, planned plugins composed in", () => {
  it("has its cases, each with an expectation", () => {
    // OPC UA's cases moved back to invalid/ when the driver was built, ingest.mqtt's when its listener was
    expect(plannedCases.length).toBeGreaterThanOrEqual(7);
    for (const c of plannedCases) expect(existsSync(join(plannedDir, c.replace(/\.yaml$/, ".expect"))), c).toBe(true);
  });

  for (const c of plannedCases) {
    it(c, () => {
      const file = join(plannedDir, c);
      checkCase(file, plannedModel);
      // This build refuses the same file, and names what is not built in it.
      const built = loadConfig(file, {});
      expect(built.ok).toBe(false);
      if (/driver: opcua|type: influx|format: sparkplug-b|^ {2}mqtt:/m.test(readFileSync(file, "utf8")) && !built.ok) {
        expect(built.problems.some((p) => p.message.includes("is not built into this version")), JSON.stringify(built.problems)).toBe(true);
      }
    });
  }
});

