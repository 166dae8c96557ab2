/**
 * A DriverContext as the runtime gives one, recording what a driver does: samples, state changes
 * (with when), counted events; `until` resolves as soon as a driver call makes its probe hold (no
 * fixed sleeps) and rejects after `ms` naming what it waited for and the states so far.
 */
import type { DriverContext } from "../../src/core/driver.js";
import { createLogger, type Logger } from "../../src/core/logger.js";
import { SampleColumns } from "../../src/core/sample-columns.js";
import type { DeviceState, Sample } from "../../src/core/sample.js";

export interface Recorder extends DriverContext {
  controller: AbortController;
  samples: Sample[];
  states: { state: DeviceState; error: string | null; at: number }[];
  counts: Map<string, number>;
  until(probe: () => boolean, ms: number, what: string): Promise<void>;
}

export function recorder(log: Logger = createLogger({ level: "silent" })): Recorder {
  const controller = new AbortController();
  const waiters = new Set<() => void>();
  const poke = (): void => { for (const w of [...waiters]) w(); };
  const r: Recorder = {
    controller, signal: controller.signal, log, samples: [], states: [], counts: new Map(),
    emit(batch) {
      r.samples.push(...(batch instanceof SampleColumns ? batch.toSamples() : batch.map((s) => ({ ...s }))));
      poke();
      return Promise.resolve();
    },
    setState(state, error) {
      const last = r.states.at(-1);
      if (last?.state === state && last.error === (error ?? null)) return;
      r.states.push({ state, error: error ?? null, at: Date.now() });
      poke();
    },
    count(event, n = 1) { r.counts.set(event, (r.counts.get(event) ?? 0) + n); poke(); },
    until(probe, ms, what) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!probe()) return;
          clearTimeout(t); waiters.delete(check); resolve();
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${ms} ms waiting for ${what}; states: ${r.states.map((s) => `${s.state}${s.error ? ` (${s.error})` : ""}`).join(" → ")}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
  };
  return r;
}
