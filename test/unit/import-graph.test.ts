import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The folder-level import graph of src/** and drivers/**: no two top-level folders import each
 * other, directly or round a longer loop, and src/core imports nothing outside itself. Every
 * import counts, `import type` and re-exports included: a type-only loop still means neither
 * folder can be understood (or moved) without the other.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith(".ts") && !name.endsWith(".test.ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** `src/runtime/state/x.ts` → `src/runtime`; `drivers/modbus/x.ts` → `drivers/modbus`. */
function folderOf(file: string): string | undefined {
  const parts = relative(ROOT, file).split(sep);
  if ((parts[0] === "src" || parts[0] === "drivers") && parts.length >= 3) return `${parts[0]}/${parts[1]}`;
  return undefined;
}

/** Relative module specifiers of every import, export-from and dynamic import in `text`. */
export function importSpecifiers(text: string): string[] {
  // Comments could hold example imports: strip them first (strings with `//` inside are rare
  // enough in import lines that this simple pass is fine).
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
  const out: string[] = [];
  const re = /(?:^|[;\s])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
  for (let m = re.exec(code); m; m = re.exec(code)) out.push((m[1] ?? m[2])!);
  return out;
}

interface Edge { from: string; to: string; file: string; spec: string }

function folderEdges(): Edge[] {
  const files = [...tsFiles(join(ROOT, "src")), ...tsFiles(join(ROOT, "drivers"))];
  const edges: Edge[] = [];
  for (const file of files) {
    const from = folderOf(file);
    if (!from) continue;
    for (const spec of importSpecifiers(readFileSync(file, "utf8"))) {
      if (!spec.startsWith(".")) continue;
      const to = folderOf(resolve(dirname(file), spec));
      if (to && to !== from) edges.push({ from, to, file: relative(ROOT, file), spec });
    }
  }
  return edges;
}

/** Every elementary loop is not needed: one loop per strongly connected component is enough to name it. */
function findCycle(edges: Edge[]): string[] | undefined {
  const next = new Map<string, Set<string>>();
  for (const e of edges) {
    if (!next.has(e.from)) next.set(e.from, new Set());
    next.get(e.from)!.add(e.to);
  }
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    state.set(n, "open");
    stack.push(n);
    for (const m of next.get(n) ?? []) {
      if (state.get(m) === "open") return [...stack.slice(stack.indexOf(m)), m];
      if (state.get(m) === undefined) {
        const c = visit(m);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, "done");
    return undefined;
  };
  for (const n of [...next.keys()].sort()) {
    if (state.get(n) === undefined) {
      const c = visit(n);
      if (c) return c;
    }
  }
  return undefined;
}

describe("import graph", () => {
  const edges = folderEdges();

  it("reads the imports of the tree (guards the parser: an empty graph would pass anything)", () => {
    expect(edges.some((e) => e.from === "src/runtime" && e.to === "src/journal")).toBe(true);
    expect(edges.some((e) => e.from === "drivers/modbus" && e.to === "src/core")).toBe(true);
    expect(importSpecifiers(`import type { A } from "../a.js";\nexport * from "./b.js";\nimport {\n  c,\n  d,\n} from "../c.js";\nconst x = await import("./d.js");`))
      .toEqual(["../a.js", "./b.js", "../c.js", "./d.js"]);
  });

  it("no top-level folder imports itself round a loop", () => {
    const cycle = findCycle(edges);
    const witness = cycle?.slice(0, -1).map((f, i) => {
      const e = edges.find((x) => x.from === f && x.to === cycle[i + 1]);
      return `${f} → ${cycle[i + 1]} (${e?.file} imports ${e?.spec})`;
    });
    expect(witness ?? []).toEqual([]);
  });

  it("src/core imports nothing outside src/core", () => {
    expect(edges.filter((e) => e.from === "src/core").map((e) => `${e.file} imports ${e.spec}`)).toEqual([]);
  });
});
