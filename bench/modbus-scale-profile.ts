/**
 * Reads a V8 `.cpuprofile` (written by `node --cpu-prof`) and sums self time per function, so the
 * bench can name what limits the gateway without opening DevTools.
 */
import { readFile } from "node:fs/promises";

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction { name: string; where: string; selfPct: number }

/** Top `n` functions by self time, as percentages of all samples (idle included, so it reads as "% of wall time"). */
export async function topFunctions(file: string, n = 20): Promise<{ top: HotFunction[]; idlePct: number; gcPct: number }> {
  const prof = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map<number, CpuProfileNode>(prof.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const node = byId.get(prof.samples[i]!);
    const dt = prof.timeDeltas[i] ?? 0;
    if (!node || dt < 0) continue;
    total += dt;
    const f = node.callFrame;
    const url = f.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, "$1/");
    const key = `${f.functionName || "(anonymous)"}\t${url ? `${url}:${f.lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const pct = (k: string): number => (total ? (100 * (self.get(k) ?? 0)) / total : 0);
  const top = [...self.entries()]
    .filter(([k]) => !k.startsWith("(idle)") && !k.startsWith("(program)"))
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k]) => {
      const [name, where] = k.split("\t");
      return { name: name!, where: where ?? "", selfPct: Math.round(pct(k) * 10) / 10 };
    });
  return { top, idlePct: Math.round(pct("(idle)\t") * 10) / 10, gcPct: Math.round(pct("(garbage collector)\t") * 10) / 10 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) { console.error("usage: modbus-scale-profile FILE.cpuprofile [N]"); process.exit(1); }
  topFunctions(file, Number(process.argv[3] ?? 25)).then((r) => {
    console.log(`idle ${r.idlePct}%  gc ${r.gcPct}%`);
    for (const f of r.top) console.log(`${f.selfPct.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`);
  }, (e: unknown) => { console.error(e); process.exit(1); });
}
