/**
 * Where the gateway's time goes in the OPC UA bench: a `.cpuprofile` summed by package (node-opcua's
 * packages, the gateway's own folders, Node internals, GC) and its hottest functions, as lines to
 * print. `node dist/bench/opcua-profile.js FILE.cpuprofile` prints the same for any profile.
 */
import { readFile } from "node:fs/promises";
import { topFunctions } from "./modbus-scale-profile.js";

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string } }[];
  samples: number[];
  timeDeltas: number[];
}

/** The bucket a frame's self time goes to: an npm package, a gateway folder, `node:…`, or V8's own. */
function bucketOf(url: string, fn: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith("node:")) return `node:${url.slice(5).split("/")[0]}`;
  const own = /\/(src\/[^/]+|drivers\/[^/]+|bench)\//.exec(url);
  if (own) return own[1]!;
  return url ? "other" : fn; // (garbage collector), (idle), (program), native builtins
}

export async function profileSummary(file: string, nFunctions = 15, nBuckets = 15): Promise<string[]> {
  const prof = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const buckets = new Map<string, number>();
  let total = 0;
  prof.samples.forEach((id, i) => {
    const n = byId.get(id);
    const dt = prof.timeDeltas[i] ?? 0;
    if (!n || dt < 0) return;
    total += dt;
    const k = bucketOf(n.callFrame.url, n.callFrame.functionName);
    buckets.set(k, (buckets.get(k) ?? 0) + dt);
  });
  const busy = total - (buckets.get("(idle)") ?? 0);
  const lines = [`busy ${((100 * busy) / total).toFixed(1)} % of the profiled wall time; self time by package, % of busy:`];
  for (const [k, v] of [...buckets].filter(([k]) => k !== "(idle)").sort((a, b) => b[1] - a[1]).slice(0, nBuckets)) {
    lines.push(`  ${((100 * v) / busy).toFixed(1).padStart(5)} %  ${k}`);
  }
  const { top } = await topFunctions(file, nFunctions);
  lines.push("hottest functions, self time, % of wall time:");
  for (const f of top) lines.push(`  ${f.selfPct.toFixed(1).padStart(5)} %  ${f.name}  ${f.where}`);
  return lines;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) { console.error("usage: opcua-profile FILE.cpuprofile"); process.exit(1); }
  profileSummary(file, 25, 25).then((lines) => { for (const l of lines) console.log(l); }, (e: unknown) => { console.error(e); process.exit(1); });
}
