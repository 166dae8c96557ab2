import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document } from "yaml";
import type { ConfigProblem } from "./types.js";
import { substituteEnv } from "./env.js";
import { formatPath, pointer } from "../core/config-paths.js";

/** A 1-based position in the source text. */
export interface Pos {
  line: number;
  col: number;
}

/**
 * The config as plain data plus where each part came from. Maps are keyed by JSON pointer (the form
 * ajv reports), so any problem found later can be located in the source.
 */
export interface ConfigSource {
  /** Plain JSON-like data; maps are null-prototype objects so a `__proto__` key is just a key. */
  data: unknown;
  /** Position of each value node (for a key with no value, the key's position). */
  valuePos: Map<string, Pos>;
  /** Position of each map key, keyed by the pointer of its value. */
  keyPos: Map<string, Pos>;
  /** Pointers whose string value came, in whole or in part, from `${env:…}`; never echoed. */
  fromEnv: Map<string, string[]>;
  /** Pointers whose unquoted scalar was exactly one `${env:NAME}`: may be coerced to a number/boolean. */
  wholeEnv: Set<string>;
}

export type SourceResult = { ok: true; source: ConfigSource; problems: ConfigProblem[] } | { ok: false; problems: ConfigProblem[] };

/**
 * Bounds that keep a hostile file (alias bombs, deep nesting) from hurting the process. Every node
 * costs a position entry (~200 bytes while validating), so the caps are also a memory bound.
 * 20 M nodes holds the largest file MAX_CONFIG_BYTES admits (a 2,000-device × 100-tag plant is
 * ~1.3 M nodes).
 */
export const MAX_NODES = 20_000_000;
/**
 * Nodes reached through aliases. Real configs reuse a tag list for many devices (`tags: *press`
 * for 2,000 devices of 100 tags is ~1.2 M nodes through aliases); a bomb reuses billions. 1.5 M
 * admits that plant and stops a bomb after a few seconds and a few hundred MB.
 */
export const MAX_ALIAS_NODES = 1_500_000;
const MAX_DEPTH = 64;

/**
 * Parses YAML text into data with positions and `${env:NAME}` substituted in string values.
 * YAML syntax errors stop here (nothing sensible can be validated after them); env problems are
 * returned beside the data so the caller can report them together with every other problem.
 */
export function readSource(text: string, env: NodeJS.ProcessEnv): SourceResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const at = (offset: number): Pos => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, col: p.col };
  };

  const problems: ConfigProblem[] = [];
  // Duplicate keys are independent of each other: all are reported. After the first syntax error
  // the parser's view is off, and what follows is mostly echo of it: that one is reported, with a count.
  for (const e of doc.errors.filter((x) => x.code === "DUPLICATE_KEY")) {
    const p = at(e.pos[0]);
    problems.push({ path: "", line: p.line, col: p.col, message: `duplicate key${keyAt(text, e.pos[0])}: a key may appear only once in a map` });
  }
  const syntax = [...doc.errors.filter((x) => x.code !== "DUPLICATE_KEY"), ...doc.warnings];
  const first = syntax[0];
  if (first) {
    const p = at(first.pos[0]);
    const lineText = text.split("\n")[p.line - 1] ?? "";
    const hint = lineText.includes("${env:") ? "; inside { } or [ ] a ${env:…} reference must be quoted" : "";
    const more = syntax.length > 1 ? ` (and ${syntax.length - 1} more YAML errors after it, likely caused by this one)` : "";
    const what = first.code === "MULTIPLE_DOCS" ? "the file holds several YAML documents (---); a config is one document" : firstLine(first.message);
    problems.push({ path: "", line: p.line, col: p.col, message: `YAML syntax error: ${what}${hint}${more}` });
  }
  if (problems.length > 0) return { ok: false, problems: problems.sort((a, b) => a.line - b.line || a.col - b.col) };
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    return { ok: false, problems: [{ path: "", line: 1, col: 1, message: "the file is empty; it needs at least a gateway section with id and group" }] };
  }

  const source: ConfigSource = { data: null, valuePos: new Map(), keyPos: new Map(), fromEnv: new Map(), wholeEnv: new Set() };
  let nodes = 0;
  let aliasNodes = 0;
  let stopped = false;
  /**
   * Each alias node's target, looked up once: `resolve` searches the document for the anchor, and
   * an alias bomb meets the same few alias nodes a million times (13 s to refuse a 10-line bomb).
   */
  const resolved = new Map<object, unknown>();

  const walk = (node: unknown, ptr: string, segs: (string | number)[], depth: number, fallback: Pos, viaAlias = false): unknown => {
    if (stopped) return null;
    if (++nodes > MAX_NODES || depth > MAX_DEPTH || (viaAlias && ++aliasNodes > MAX_ALIAS_NODES)) {
      stopped = true;
      problems.push({ path: formatPath(segs), ...fallback, message: `the document is too large or too deeply nested (over ${MAX_NODES} nodes, ${MAX_ALIAS_NODES} nodes through aliases, or ${MAX_DEPTH} levels)` });
      return null;
    }
    if (node === null || node === undefined) {
      source.valuePos.set(ptr, fallback);
      return null;
    }
    if (isAlias(node)) {
      const here = rangeStart(node, at) ?? fallback;
      let target = resolved.get(node);
      if (target === undefined && !resolved.has(node)) {
        target = node.resolve(doc as Document);
        resolved.set(node, target);
      }
      if (target === undefined) {
        problems.push({ path: formatPath(segs), ...here, message: `unknown anchor *${node.source}` });
        source.valuePos.set(ptr, here);
        return null;
      }
      const value = walk(target, ptr, segs, depth + 1, here, true);
      source.valuePos.set(ptr, here);
      return value;
    }
    // Inside an alias every node is reported where the alias is used: cheaper (no position lookup
    // per expanded node) and the line that actually put the value here.
    const pos = viaAlias ? fallback : rangeStart(node, at) ?? fallback;
    source.valuePos.set(ptr, pos);
    if (isMap(node)) {
      const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      for (const pair of node.items) {
        const keyNode = pair.key;
        const keyPos = viaAlias ? pos : rangeStart(keyNode, at) ?? pos;
        if (!isScalar(keyNode) || (typeof keyNode.value !== "string" && typeof keyNode.value !== "number" && typeof keyNode.value !== "boolean")) {
          problems.push({ path: formatPath(segs), ...keyPos, message: "map keys must be plain strings" });
          continue;
        }
        const key = String(keyNode.value);
        const childPtr = `${ptr}/${pointer(key)}`;
        source.keyPos.set(childPtr, keyPos);
        out[key] = walk(pair.value, childPtr, [...segs, key], depth + 1, keyPos, viaAlias);
      }
      return out;
    }
    if (isSeq(node)) {
      return node.items.map((item, i) => walk(item, `${ptr}/${i}`, [...segs, i], depth + 1, pos, viaAlias));
    }
    if (isScalar(node)) {
      const v = node.value;
      if (typeof v !== "string") return v;
      const sub = substituteEnv(v, env);
      if (sub.names.length === 0 && sub.problems.length === 0) return v;
      for (const message of sub.problems) problems.push({ path: formatPath(segs), ...pos, message });
      if (sub.names.length > 0) source.fromEnv.set(ptr, sub.names);
      if (sub.whole && node.type === "PLAIN") source.wholeEnv.add(ptr);
      return sub.value;
    }
    problems.push({ path: formatPath(segs), ...pos, message: "unsupported YAML node" });
    return null;
  };

  source.data = walk(doc.contents, "", [], 0, { line: 1, col: 1 });
  return { ok: true, source, problems };
}

function rangeStart(node: unknown, at: (offset: number) => Pos): Pos | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? at(range[0]) : undefined;
}

/** The key text starting at `offset`, for a duplicate-key message (yaml points at its first character only). */
function keyAt(text: string, offset: number): string {
  const m = /^("[^"\n]*"|'[^'\n]*'|[^:,{}[\]\n]+?)\s*:/.exec(text.slice(offset, offset + 200));
  return m ? ` ${m[1]!.startsWith("\"") || m[1]!.startsWith("'") ? m[1] : JSON.stringify(m[1])}` : "";
}

function firstLine(message: string): string {
  const line = message.split("\n")[0] ?? message;
  return line.replace(/ at line \d+, column \d+:?$/, "");
}
