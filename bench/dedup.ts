/**
 * `npm run bench -- dedup`: memory and CPU of the msgId idempotency window (src/ingest/dedup.ts,
 * "window") against a plain `Map<string, number>` of `device\nmsgId` → time, in the same run.
 *
 * A simulated fleet on an injected clock: every device sends one message a second with msgIds like
 * `agv-17-000123`, and 1 % of them are retried 5 s later (the duplicate answer).
 * - Memory: each structure in a child process of its own (`--expose-gc`), `DEVICES` (default
 *   10,000) devices for 10 simulated minutes, the window full: heap + external bytes after a full
 *   GC, minus the same before, divided by the entries held. Then 2.5 more simulated minutes, timed
 *   (the steady state, expiry included).
 * - CPU: the structures side by side in one process (1,000 devices, 10 minutes to fill), then rounds of
 *   30 simulated seconds each, alternating: CPU ns per message (claim + settle, or has + set),
 *   GC included.
 *   The machine may be loaded: only the ratios within one run mean much.
 *
 * Memory is measured again with UUID-shaped msgIds (no trailing counter) and with batch-shaped ones
 * (`agv-17-12-3`: a batch counter and the index in the batch, the counter in the middle); the
 * alternating CPU rounds are run for both counter shapes.
 *
 * `FLOORGATE_BENCH_DEDUP_BASE=/path/to/other/dist/src/ingest/dedup.js` adds that build's
 * MsgIdDedup as "base" (children and alternating rounds): a before/after in one run. (Session 9's
 * before/after, the per-minute-bucket window against this one, is in its closing note.)
 *
 * Run: `node dist/bench/dedup.js` (or through bench/run.ts). Child mode: `dedup.js child NAME DEVICES [uuid]`.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { MsgIdDedup } from "../src/ingest/dedup.js";

const WINDOW_MS = 600_000;
const START = Date.parse("2026-12-02T06:00:00.000Z");

/** One structure under test, driven by the simulated clock `clock.now`. */
interface Subject {
  /** true when stored (fresh), false when answered as a duplicate */
  push(device: string, msgId: string): boolean;
  size(): number;
}

const clock = { now: START };

/** The MsgIdDedup interface both builds share, as far as the bench uses it. */
type DedupCtor = new (clock: () => number, opts: { maxPerDevice: number; maxTotal: number }) => Pick<MsgIdDedup, "claim" | "size">;
const basePath = process.env.FLOORGATE_BENCH_DEDUP_BASE;
const Base: DedupCtor | undefined = basePath ? ((await import(basePath)) as { MsgIdDedup: DedupCtor }).MsgIdDedup : undefined;

function dedupSubject(Ctor: DedupCtor): Subject {
  const d = new Ctor(() => clock.now, { maxPerDevice: 1e9, maxTotal: 1e9 });
  return {
    push(device, msgId) {
      const c = d.claim(device, msgId);
      if (c.kind !== "fresh") return false;
      c.done(true);
      return true;
    },
    size: () => d.size(),
  };
}

const makers: Record<string, () => Subject> = {
  map: () => {
    // The simplest exact window: insertion order is time order, so expiry takes from the front.
    const m = new Map<string, number>();
    let last = 0;
    return {
      push(device, msgId) {
        const now = clock.now;
        if (now !== last) {
          last = now;
          for (const [k, t] of m) {
            if (t + WINDOW_MS > now) break;
            m.delete(k);
          }
        }
        const key = `${device}\n${msgId}`;
        if (m.has(key)) return false;
        m.set(key, now);
        return true;
      },
      size: () => m.size,
    };
  },
  window: () => dedupSubject(MsgIdDedup),
  ...(Base ? { base: () => dedupSubject(Base) } : {}),
};

const deviceIds = (n: number): string[] => Array.from({ length: n }, (_, i) => `agv-${i}`);

type IdStyle = "counter" | "uuid" | "multi";
let idStyle: IdStyle = "counter";

/** A UUID-shaped msgId, the same for the same (device, second): what a device without a counter sends. */
function uuidOf(device: number, sec: number): string {
  const hex = (x: number) => (x >>> 0).toString(16).padStart(8, "0");
  let h = Math.imul(device + 1, 0x9e3779b1) ^ Math.imul(sec + 1, 0x85ebca6b);
  const a = hex((h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d)));
  const b = hex((h = Math.imul(h ^ (h >>> 12), 0x297a2d39)));
  const c = hex((h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d)));
  const d = hex(Math.imul(h ^ (h >>> 13), 0x297a2d39));
  return `${a}-${b.slice(0, 4)}-4${b.slice(5)}-a${c.slice(1, 4)}-${c.slice(4)}${d}`;
}

/** Flat strings, as JSON.parse makes them from a push body (a template literal makes a rope). */
const idOf = (devices: string[], i: number, sec: number): string =>
  JSON.parse(`"${idStyle === "uuid" ? uuidOf(i, sec) : idStyle === "multi" ? `${devices[i]!}-${Math.floor(sec / 10)}-${sec % 10}` : `${devices[i]!}-${String(sec).padStart(6, "0")}`}"`) as string;

/** The msgIds of simulated second `sec`: one per device, plus 1 % retries of second `sec - 5`. */
function secondOf(devices: string[], sec: number): { dev: string[]; ids: string[] } {
  const dev: string[] = [];
  const ids: string[] = [];
  for (let i = 0; i < devices.length; i++) {
    dev.push(devices[i]!);
    ids.push(idOf(devices, i, sec));
    if (sec >= 5 && i % 100 === sec % 100) {
      dev.push(devices[i]!);
      ids.push(idOf(devices, i, sec - 5));
    }
  }
  return { dev, ids };
}

/**
 * Runs simulated seconds [from, to) against `s`; returns the CPU time (user + system: on a loaded
 * machine wall time mostly measures the other processes) spent in the structure, and the messages.
 */
function run(s: Subject, devices: string[], from: number, to: number): { ns: number; ops: number; dups: number } {
  let ns = 0;
  let ops = 0;
  let dups = 0;
  // msgIds are made before timing, 30 s at a time: CPU accounting is coarse (kernel ticks)
  for (let chunk = from; chunk < to; chunk += 30) {
    const secs: { at: number; dev: string[]; ids: string[] }[] = [];
    for (let sec = chunk; sec < Math.min(to, chunk + 30); sec++) secs.push({ at: START + sec * 1000, ...secondOf(devices, sec) });
    const t0 = process.cpuUsage();
    for (const { at, dev, ids } of secs) {
      clock.now = at;
      for (let i = 0; i < ids.length; i++) if (!s.push(dev[i]!, ids[i]!)) dups++;
      ops += ids.length;
    }
    const t = process.cpuUsage(t0);
    ns += (t.user + t.system) * 1000;
  }
  return { ns, ops, dups };
}

function usedBytes(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** Child: one structure, its window filled, measured. Prints one JSON line. */
function child(name: string, n: number, style: IdStyle): void {
  idStyle = style;
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run the child with --expose-gc");
  const devices = deviceIds(n);
  gc();
  gc();
  const before = usedBytes();
  const s = makers[name]!();
  const fill = run(s, devices, 0, 600);
  gc();
  gc();
  const entries = s.size();
  const held = usedBytes() - before;
  const steady = run(s, devices, 600, 750);
  gc();
  gc();
  // at 12.5 minutes less a second: the most a generation-based window holds (1.25 × the window)
  const entriesLate = s.size();
  const heldLate = usedBytes() - before;
  if (steady.dups !== steady.ops - devices.length * 150) throw new Error(`${name}: ${steady.dups} duplicates, expected ${steady.ops - devices.length * 150}`);
  process.stdout.write(`${JSON.stringify({ name, entries, held, entriesLate, heldLate, fillNs: fill.ns / fill.ops, steadyNs: steady.ns / steady.ops })}\n`);
}

interface ChildFigures { entries: number; held: number; entriesLate: number; heldLate: number; fillNs: number; steadyNs: number }

function runChild(name: string, n: number, style: IdStyle): Promise<ChildFigures> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--expose-gc", "--max-old-space-size=6000", fileURLToPath(import.meta.url), "child", name, String(n), style], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (b: Buffer) => { out += b.toString(); });
    p.on("error", reject);
    p.on("exit", (code) => {
      if (code !== 0) reject(new Error(`dedup bench child ${name} exited with ${code}`));
      else resolve(JSON.parse(out.trim()) as ChildFigures);
    });
  });
}

export async function benchDedup(opts: { devices?: number; rounds?: number } = {}): Promise<Record<string, number>> {
  const n = opts.devices ?? 10_000;
  const out: Record<string, number> = {};
  const runs: [string, IdStyle][] = [["map", "counter"], ["window", "counter"], ["window", "uuid"], ["window", "multi"]];
  if (Base) runs.push(["base", "counter"], ["base", "multi"]);
  for (const [name, style] of runs) {
    const r = await runChild(name, n, style);
    const label = style === "uuid" ? `${name} (UUID msgIds)` : style === "multi" ? `${name} (batch msgIds agv-17-12-3)` : name;
    out[`${label}: entries held after 10 min, ${n} devices at 1 msg/s`] = r.entries;
    out[`${label}: MB held (heap + external)`] = Math.round(r.held / 1e6);
    out[`${label}: bytes per entry`] = Math.round(r.held / r.entries);
    out[`${label}: entries held at 12.5 min (steady state, most)`] = r.entriesLate;
    out[`${label}: MB held then`] = Math.round(r.heldLate / 1e6);
    out[`${label}: CPU ns per message, filling`] = Math.round(r.fillNs);
    out[`${label}: CPU ns per message, steady (own process)`] = Math.round(r.steadyNs);
  }
  // CPU side by side: 1,000 devices each, alternating rounds in this process, per msgId shape.
  const devices = deviceIds(1_000);
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;
  for (const style of ["counter", "multi"] as const) {
    idStyle = style;
    const subjects = Object.keys(makers).map((name) => ({ name, s: makers[name]!(), ns: [] as number[] }));
    for (const x of subjects) run(x.s, devices, 0, 600);
    let sec = 600;
    for (let round = 0; round < (opts.rounds ?? 5); round++) {
      for (const x of subjects) {
        const r = run(x.s, devices, sec, sec + 30);
        x.ns.push(r.ns / r.ops);
      }
      sec += 30;
    }
    const tag = style === "multi" ? " (batch msgIds)" : "";
    for (const x of subjects) out[`${x.name}${tag}: CPU ns per message, steady, alternating rounds (median)`] = Math.round(median(x.ns));
  }
  idStyle = "counter";
  return out;
}

if (process.argv[2] === "child") child(process.argv[3]!, Number(process.argv[4]), process.argv[5] === "uuid" || process.argv[5] === "multi" ? process.argv[5] : "counter");
else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  benchDedup().then((f) => { for (const [k, v] of Object.entries(f)) process.stdout.write(`${k}  ${v.toLocaleString("en-US")}\n`); },
    (err: unknown) => { console.error(err); process.exit(1); });
}
