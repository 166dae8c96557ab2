/**
 * The user documentation keeps up with the code:
 * - every stable error code (the `ErrorCode` union in src/core/errors.ts) has its entry in
 *   docs/errors.md, and so has every reason label the daemon counts: drop reasons, HTTP and ingest
 *   refusal reasons, dedup eviction reasons, driver events — collected from the source itself, so
 *   a new one added anywhere fails here until it is documented;
 * - every relative link in README.md and docs/*.md points at a file that exists, and a link with
 *   `#anchor` into a Markdown file at one of its headings.
 * Each source pattern must find something: a pattern that silently stopped matching after a
 * refactor would let undocumented reasons through, so that fails too.
 */
import { describe, expect, it } from "vitest";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = join(import.meta.dirname, "..", "..");
const read = (p: string): string => readFileSync(join(ROOT, p), "utf8");

/** Every .ts file under the shipped source folders, as [path relative to ROOT, text]. */
function sources(): [string, string][] {
  const out: [string, string][] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      // block comments out: their prose may quote words that are no reasons
      else if (e.name.endsWith(".ts")) out.push([p, read(p).replace(/\/\*[\s\S]*?\*\//g, "")]);
    }
  };
  walk("src");
  walk("drivers");
  return out;
}

const LITERAL = /"([a-z][a-z0-9_]*)"/g;
const literals = (text: string): string[] => [...text.matchAll(LITERAL)].map((m) => m[1]!);

/**
 * Literals captured by `pattern` (its group 1) across the source; fails when it matches nothing,
 * naming the pattern, so a refactor that moves the code updates this test instead of hiding reasons.
 */
function collect(label: string, pattern: RegExp, where: [string, string][] = sources()): Set<string> {
  const found = new Set<string>();
  for (const [, text] of where) for (const m of text.matchAll(pattern)) for (const l of literals(m[1]!)) found.add(l);
  expect(found.size, `the source pattern for ${label} (${pattern}) matched nothing: update docs.test.ts`).toBeGreaterThan(0);
  return found;
}

/** The section of docs/errors.md under the `## ` heading that starts with `title`. */
function section(doc: string, title: string): string {
  const start = doc.indexOf(`\n## ${title}`);
  expect(start, `docs/errors.md has a section "## ${title}"`).toBeGreaterThanOrEqual(0);
  const end = doc.indexOf("\n## ", start + 4);
  return doc.slice(start, end < 0 ? undefined : end);
}

/** `### \`name\`` headings of a section (a suffix such as " (ingest)" allowed). */
function headings(text: string): Set<string> {
  return new Set([...text.matchAll(/^### `([A-Za-z0-9_]+)`/gm)].map((m) => m[1]!));
}

describe("docs/errors.md, the error-code catalogue", () => {
  const doc = read("docs/errors.md");

  it("has an entry for every code of the ErrorCode union in src/core/errors.ts", () => {
    const code = read("src/core/errors.ts").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    const union = /export type ErrorCode =([^;]+);/.exec(code);
    expect(union, "src/core/errors.ts declares `export type ErrorCode = … ;`").not.toBeNull();
    const codes = [...union![1]!.matchAll(/"([A-Z][A-Z0-9_]*)"/g)].map((m) => m[1]!);
    expect(codes.length).toBeGreaterThan(10);
    const documented = headings(section(doc, "Error codes in logs and messages"));
    for (const c of codes) expect(documented, `docs/errors.md: ### \`${c}\``).toContain(c);
    for (const c of documented) expect(codes, `docs/errors.md documents ${c}, which src/core/errors.ts does not have`).toContain(c);
  });

  it("documents every code the CLI prints itself and every exit code", () => {
    for (const code of [0, 1, 2]) expect(section(doc, "Exit codes")).toMatch(new RegExp(`^\\| ${code} \\|`, "m"));
  });

  it("has an entry for every drop reason counted in floorgate_drops_total", () => {
    const reasons = new Set([
      // literal reasons at the counter
      ...collect("literal drop reasons", /drops\.inc\(\s*\{\s*reason:\s*("[a-z_]+")/g),
      // the journal's segment drops: `kind: "dropped-oldest"; reason: "drop_oldest" | "disk_full"`
      ...collect("journal segment drop reasons", /kind: "dropped-oldest";\s*reason:\s*((?:"[a-z_]+"\s*\|?\s*)+)/g),
      // samples lost with a driver thread: `OnLost = (reason: "driver_thread_failed" | "driver_stopped", …)`
      ...collect("driver-thread loss reasons", /OnLost = \(reason:\s*((?:"[a-z_]+"\s*\|?\s*)+)/g),
      // polled samples the journal refused: `const reason = … ? "journal_full" : … : "journal_io"`
      ...collect("refused-poll reasons", /const reason = ([^;\n]*\?[^;\n]*);/g,
        sources().filter(([, t]) => /drops\.inc\(/.test(t))),
    ]);
    const documented = headings(section(doc, "Drop reasons"));
    for (const r of reasons) expect(documented, `docs/errors.md, Drop reasons: ### \`${r}\``).toContain(r);
  });

  it("has an entry for every refusal reason counted in floorgate_ingest_rejects_total", () => {
    const reasons = new Set([
      ...collect("HttpRejectReason", /type HttpRejectReason =([^;]+);/g),
      ...collect("IngestRejectReason", /type IngestRejectReason =([^;]+);/g),
      ...collect("MqttRejectReason", /type MqttRejectReason =([^;]+);/g),
      ...collect("literal refusal reasons", /ingestRejects\.inc\(\s*\{\s*reason:\s*("[a-z_]+")/g),
    ]);
    const documented = headings(section(doc, "HTTP and ingest refusals"));
    for (const r of reasons) expect(documented, `docs/errors.md, HTTP and ingest refusals: ### \`${r}\``).toContain(r);
  });

  it("has an entry for every dedup eviction reason", () => {
    const reasons = collect("dedup eviction reasons", /onEvict\?\(reason:\s*((?:"[a-z_]+"\s*\|?\s*)+)/g);
    const documented = headings(section(doc, "Dedup evictions"));
    for (const r of reasons) expect(documented, `docs/errors.md, Dedup evictions: ### \`${r}\``).toContain(r);
  });

  it("lists every driver event counted in floorgate_driver_events_total", () => {
    const events = new Set([
      ...collect("driver events counted by drivers", /\.count\(("[a-z_]+")/g),
      ...collect("driver events relayed from threads", /t: "count",[^}]*event: ("[a-z_]+")/g),
    ]);
    const table = section(doc, "Driver events");
    for (const e of events) expect(table, `docs/errors.md, Driver events: | \`${e}\` |`).toContain(`| \`${e}\` |`);
  });
});

/** GitHub's heading anchors: lower case, punctuation but `-` and `_` removed, spaces to `-`, repeats numbered. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of stripCode(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = m[1]!.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

/** Markdown without fenced code blocks (links there are examples, not links). */
function stripCode(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
}

describe("links in README.md and docs/", () => {
  const files = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

  it("covers the pages the docs index promises", () => {
    for (const f of ["configuration.md", "http-api.md", "live.md", "mqtt.md", "guarantees.md", "errors.md", "README.md"]) {
      expect(files).toContain(`docs/${f}`);
    }
  });

  for (const file of files) {
    it(`${file}: every relative link points at an existing file (and heading)`, () => {
      const text = stripCode(read(file)).replace(/`[^`\n]*`/g, (code) => (/\]\(/.test(code) ? "" : code));
      const links = [...text.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
      // the two indexes surely link: a parser that found nothing there would be broken
      if (file.endsWith("README.md")) expect(links.length, `${file} has links`).toBeGreaterThan(0);
      for (const link of links) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(link)) continue; // http:, https:, mailto:
        const [path, anchor] = link.split("#") as [string, string | undefined];
        const target = path === "" ? join(ROOT, file) : resolve(dirname(join(ROOT, file)), path);
        expect(relative(ROOT, target).startsWith(".."), `${file}: ${link} leaves the repository (readers of a clone cannot follow it)`).toBe(false);
        expect(existsSync(target), `${file}: ${link} → ${relative(ROOT, target)} does not exist`).toBe(true);
        if (anchor !== undefined && target.endsWith(".md") && statSync(target).isFile()) {
          expect(anchors(readFileSync(target, "utf8")), `${file}: ${link}: no heading #${anchor} in ${relative(ROOT, target)}`).toContain(anchor);
        }
      }
    });
  }
});
