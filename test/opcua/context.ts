/**
 * Shared pieces of the OPC UA tests: a device config with test timings, and a recording
 * DriverContext that resolves waits on driver calls (no fixed sleeps).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { OpcuaDeviceConfig, OpcuaTagConfig } from "../../drivers/opcua/config.js";
import type { DriverContext } from "../../src/core/driver.js";
import { createLogger, type Logger } from "../../src/core/logger.js";
import { SampleColumns } from "../../src/core/sample-columns.js";
import type { DeviceState, Sample } from "../../src/core/sample.js";

export function tag(name: string, nodeId: string, extra: Partial<OpcuaTagConfig> = {}): OpcuaTagConfig {
  return { name, nodeId, scale: 1, offset: 0, writable: false, deadbandType: "absolute", ...extra };
}

/** A fresh PKI folder per call unless one is given. */
export function opcuaDevice(id: string, endpoint: string, over: Partial<OpcuaDeviceConfig> = {}): OpcuaDeviceConfig {
  return {
    id, driver: "opcua", disabled: false, reconnectMaxMs: 1_000,
    connection: { endpoint, securityMode: "None", securityPolicy: "None" },
    mode: "subscribe", samplingMs: 100, pollMs: 200, queueSize: 10, timeoutMs: 2_000,
    pkiDir: over.pkiDir ?? join(mkdtempSync(join(tmpdir(), "floorgate-opcua-cli-")), "pki"),
    tags: [tag("counter", "ns=1;s=Counter"), tag("temp", "ns=1;s=Temperature")],
    ...over,
  };
}

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
