/**
 * The soak's fault schedule: one fault at a time, at random gaps, each held for a random while and
 * then healed. Kinds are drawn from a shuffled bag (every enabled kind once per round), so a short
 * run still sees each kind. Everything random comes from one seeded generator: the same seed gives
 * the same kinds, gaps and holds (the moments they hit the load still vary with the machine).
 */
export const FAULT_KINDS = ["broker-kill", "broker-stop", "gateway-kill", "disk-full", "modbus-restart"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Hold ranges in ms per kind, before `holdMaxMs` caps them. */
const HOLD: Record<FaultKind, [number, number]> = {
  "broker-kill": [1000, 15_000],
  "broker-stop": [1000, 15_000],
  "gateway-kill": [0, 3000],
  "disk-full": [2000, 10_000],
  "modbus-restart": [500, 8000],
};

export interface FaultRecord {
  kind: FaultKind;
  /** ms since the soak started */
  atMs: number;
  holdMs: number;
  healedAtMs: number;
  detail: string;
}

/** What each fault does to the plant; `inject` returns a detail for the log. */
export interface FaultActions {
  inject(kind: FaultKind, random: () => number): Promise<string>;
  heal(kind: FaultKind): Promise<string>;
}

export interface FaultTiming {
  gapMinMs: number;
  gapMaxMs: number;
  holdMaxMs: number;
  /** stop injecting after this many faults (a short run can then pin its exact schedule) */
  maxFaults?: number;
}

/** mulberry32: small, fast, good enough to draw a schedule from a seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export function parseKinds(list: string): FaultKind[] {
  const kinds = list.split(",").map((s) => s.trim()).filter(Boolean);
  for (const k of kinds) if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new Error(`unknown fault "${k}" (known: ${FAULT_KINDS.join(", ")})`);
  return kinds as FaultKind[];
}

/** Sleeps `ms`, or less once `stop.now` is set (checked every 100 ms). */
async function nap(ms: number, stop: { now: boolean }): Promise<void> {
  const until = Date.now() + ms;
  while (!stop.now && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(100, until - Date.now())));
}

/**
 * Runs faults until `stop.now`; a fault in progress when it is set is healed at once. Resolves with
 * every fault injected. An action that throws ends the schedule with that error (after trying to heal).
 */
export async function runFaults(
  kinds: readonly FaultKind[], timing: FaultTiming, random: () => number, actions: FaultActions,
  stop: { now: boolean }, t0: number, log: (line: string) => void,
): Promise<FaultRecord[]> {
  const done: FaultRecord[] = [];
  let bag: FaultKind[] = [];
  const between = (lo: number, hi: number): number => Math.round(lo + random() * (hi - lo));
  while (kinds.length > 0 && done.length < (timing.maxFaults ?? Infinity)) {
    await nap(between(timing.gapMinMs, timing.gapMaxMs), stop);
    if (stop.now) break;
    if (bag.length === 0) {
      bag = [...kinds];
      for (let i = bag.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [bag[i], bag[j]] = [bag[j]!, bag[i]!];
      }
    }
    const kind = bag.pop()!;
    const [lo, hi] = HOLD[kind];
    const holdMs = Math.min(between(lo, hi), timing.holdMaxMs);
    const atMs = Date.now() - t0;
    let detail: string;
    try {
      detail = await actions.inject(kind, random);
    } catch (err) {
      await actions.heal(kind).catch(() => {});
      throw new Error(`fault ${kind} could not be injected: ${(err as Error).message}`, { cause: err });
    }
    log(`fault ${kind} at ${(atMs / 1000).toFixed(1)} s: ${detail}; holding ${holdMs} ms`);
    await nap(holdMs, stop);
    const healed = await actions.heal(kind);
    const healedAtMs = Date.now() - t0;
    log(`fault ${kind} healed at ${(healedAtMs / 1000).toFixed(1)} s${healed ? `: ${healed}` : ""}`);
    done.push({ kind, atMs, holdMs: healedAtMs - atMs, healedAtMs, detail: healed ? `${detail}; ${healed}` : detail });
  }
  return done;
}
