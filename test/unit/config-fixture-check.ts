/**
 * The check every invalid-config fixture gets: `NAME.yaml` is refused with exactly the problems its
 * `NAME.expect` lists (one per line; ` ... ` separates fragments that must appear in order), and
 * `floorgate validate` prints the same lines on stderr, nothing on stdout, exit 1, no stack trace.
 */
import { expect } from "vitest";
import { readFileSync } from "node:fs";
import { loadConfig, formatProblem } from "../../src/config/load.js";
import { runValidate } from "../../src/config/cli.js";
import type { ConfigModel } from "../../src/config/model.js";

function matches(line: string, expectation: string): boolean {
  let from = 0;
  for (const [i, fragment] of expectation.split(" ... ").entries()) {
    const at = line.indexOf(i === 0 ? `:${fragment}` : fragment, from);
    if (at < 0) return false;
    from = at + fragment.length;
  }
  return true;
}

export function checkCase<D, O>(file: string, model: ConfigModel<D, O>): void {
  const expected = readFileSync(file.replace(/\.yaml$/, ".expect"), "utf8").split("\n").filter((l) => l.trim() !== "");
  // An empty environment: the corpus's ${env:…} references are meant to be missing.
  const result = loadConfig(file, {}, model);
  expect(result.ok).toBe(false);
  if (result.ok) return;
  const lines = result.problems.map((p) => formatProblem(file, p));
  const unmatched = [...lines];
  for (const e of expected) {
    const i = unmatched.findIndex((l) => matches(l, e));
    expect(i, `expected a problem like\n  ${e}\ngot\n  ${lines.join("\n  ")}`).toBeGreaterThanOrEqual(0);
    unmatched.splice(i, 1);
  }
  expect(unmatched, "problems reported but not expected").toEqual([]);

  // The CLI face of the same result: exit 1, one line per problem, no stack trace.
  const out = runValidate(file, {}, model);
  expect(out.code).toBe(1);
  expect(out.stdout).toBe("");
  const printed = out.stderr.trimEnd().split("\n");
  expect(printed).toEqual(lines);
  for (const l of printed) {
    expect(l).toMatch(/^.+\.yaml:\d+:\d+: /);
    expect(l).not.toMatch(/\n|^\s+at |Error:/);
  }
}
