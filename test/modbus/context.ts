/**
 * A real DriverContext for driving the Modbus driver in tests: emit collects samples, setState
 * records transitions (ignoring repeats, as the runtime does), count tallies events.
 */
import { SampleColumns } from "../../src/core/sample-columns.js";
import type { DriverContext } from "../../src/core/driver.js";
import { createLogger } from "../../src/core/logger.js";
import type { DeviceState, Sample } from "../../src/core/sample.js";
import type { ModbusConnection, ModbusDeviceConfig, ModbusTagConfig } from "../../drivers/modbus/config.js";

export interface TestContext extends DriverContext {
  samples: Sample[];
  states: { state: DeviceState; error: string | null; at: number }[];
  counts: Map<string, number>;
  controller: AbortController;
  /** resolves when a sample matching `pred` arrives (or rejects after `ms`) */
  waitFor(pred: (s: Sample) => boolean, ms?: number, from?: number): Promise<Sample>;
  waitState(state: DeviceState, ms?: number, from?: number): Promise<number>;
  /** resolves once `count(event)` reached `n` */
  waitCount(event: string, n?: number, ms?: number): Promise<number>;
  readonly state: DeviceState | undefined;
}

export function makeContext(): TestContext {
  const controller = new AbortController();
  const samples: Sample[] = [];
  const states: TestContext["states"] = [];
  const counts = new Map<string, number>();
  const waiters = new Set<() => void>();
  const poke = (): void => { for (const w of [...waiters]) w(); };
  const waitUntil = <T>(probe: () => T | undefined, ms: number, what: string): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const v = probe();
        if (v !== undefined) { clearTimeout(t); waiters.delete(check); resolve(v); }
      };
      const t = setTimeout(() => { waiters.delete(check); reject(new Error(`timed out waiting for ${what}`)); }, ms);
      waiters.add(check);
      check();
    });
  const ctx: TestContext = {
    signal: controller.signal,
    controller,
    log: createLogger({ level: "silent" }),
    samples, states, counts,
    async emit(batch) { samples.push(...(batch instanceof SampleColumns ? batch.toSamples() : batch)); poke(); },
    setState(state, error) {
      const last = states[states.length - 1];
      if (last && last.state === state && last.error === (error ?? null)) return;
      states.push({ state, error: error ?? null, at: Date.now() });
      poke();
    },
    count(event, n = 1) { counts.set(event, (counts.get(event) ?? 0) + n); poke(); },
    waitCount(event, n = 1, ms = 5000) {
      return waitUntil(() => ((counts.get(event) ?? 0) >= n ? counts.get(event) : undefined), ms, `count ${event} ≥ ${n}`);
    },
    waitFor(pred, ms = 5000, from = 0) {
      return waitUntil(() => samples.slice(from).find(pred), ms, "sample");
    },
    waitState(state, ms = 5000, from = 0) {
      return waitUntil(() => {
        const i = states.findIndex((s, idx) => idx >= from && s.state === state);
        return i >= 0 ? i : undefined;
      }, ms, `state ${state}`);
    },
    get state() { return states[states.length - 1]?.state; },
  };
  return ctx;
}

type TagInput = Partial<ModbusTagConfig> & Pick<ModbusTagConfig, "name" | "area" | "address" | "type">;

/** A device config with the loader's defaults applied. */
export function makeDevice(
  id: string, connection: ModbusConnection, tags: TagInput[], extra: Partial<ModbusDeviceConfig> = {},
): ModbusDeviceConfig {
  return {
    id, driver: "modbus", disabled: false, reconnectMaxMs: 10_000, pollMs: 1000, maxGap: 8, tagByTag: false, maxTimeouts: 3,
    connection,
    tags: tags.map((t) => ({ byteOrder: "ABCD", scale: 1, offset: 0, writable: false, ...t })),
    ...extra,
  };
}

export function tcp(port: number, unitId = 1, timeoutMs = 500): ModbusConnection {
  return { transport: "tcp", host: "127.0.0.1", port, unitId, timeoutMs };
}
