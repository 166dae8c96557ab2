/**
 * Where the gateway's time goes in the OPC UA bench: a `.cpuprofile` summed by package (node-opcua's
 * packages, the gateway's own folders, Node internals, GC) and its hottest functions, as lines to
 * print, for the bench's measuring window only (startup would otherwise dominate: loading
 * node-opcua and parsing a 100,000-tag config). `node dist/bench/opcua-profile.js FILE.cpuprofile
 * [FROM_S TO_S]` prints the same for any profile.
 */
import { readFile } from "node:fs/promises";

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** Seconds since the profile started: only samples in [fromS, toS) count (the bench's measuring window). */
export interface ProfileWindow { fromS: number; toS: number }

/** The bucket a frame's self time goes to: an npm package, a gateway folder, `node:…`, or V8's own. */
function bucketOf(url: string, fn: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0]}`;
  const own = /\/(src\/[^/]+|drivers\/[^/]+|bench)\//.exec(url);
  if (own) return own[1]!;
  return url ? "other" : fn; // (garbage collector), (idle), (program), native builtins
}

export async function profileSummary(file: string, window?: ProfileWindow, nFunctions = 15, nBuckets = 15): Promise<string[]> {
  const prof = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const buckets = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  let at = 0; // µs since the profile started
  prof.samples.forEach((id, i) => {
    const dt = prof.timeDeltas[i] ?? 0;
    at += dt;
    const n = byId.get(id);
    if (!n || dt < 0) return;
    if (window && (at < window.fromS * 1e6 || at >= window.toS * 1e6)) return;
    total += dt;
    const f = n.callFrame;
    const k = bucketOf(f.url, f.functionName);
    buckets.set(k, (buckets.get(k) ?? 0) + dt);
    if (k !== "(idle)") {
      const fn = `${f.functionName || "(anonymous)"}  ${f.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, "$1/")}${f.url ? `:${f.lineNumber + 1}` : ""}`;
      fns.set(fn, (fns.get(fn) ?? 0) + dt);
    }
  });
  const busy = total - (buckets.get("(idle)") ?? 0);
  const pct = (v: number): string => ((100 * v) / Math.max(1, busy)).toFixed(1).padStart(5);
  const lines = [`${window ? `${window.fromS.toFixed(0)}–${window.toS.toFixed(0)} s after start: ` : ""}busy ${((100 * busy) / Math.max(1, total)).toFixed(1)} % of the profiled wall time; self time by package, % of busy:`];
  for (const [k, v] of [...buckets].filter(([k]) => k !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, nBuckets)) lines.push(`  ${pct(v)} %  ${k}`);
  lines.push("hottest functions, self time, % of busy:");
  for (const [k, v] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, nFunctions)) lines.push(`  ${pct(v)} %  ${k}`);
  return lines;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) { console.error("usage: opcua-profile FILE.cpuprofile [FROM_S TO_S]"); process.exit(1); }
  const window = process.argv[4] ? { fromS: Number(process.argv[3]), toS: Number(process.argv[4]) } : undefined;
  profileSummary(file, window, 25, 25).then((lines) => { for (const l of lines) console.log(l); }, (e: unknown) => { console.error(e); process.exit(1); });
}
