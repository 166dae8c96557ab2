import { resolve } from "node:path";
import type { BuildContext, DeviceCommon, RawObject } from "../core/plugin.js";
import type { GatewayConfigOf, IngestConfig, IngestDeviceConfig } from "./types.js";
import type { ConfigModel } from "./model.js";
import { parseHostPort } from "../core/net.js";
import { parseSize } from "../core/sizes.js";
import { listOf as arr, objOf as obj, or } from "../core/config-kit.js";

/** Defaults of spec §2 for the core sections, in one place (each plugin keeps its own). */
export const DEFAULTS = {
  dataDir: "./data",
  httpListen: "127.0.0.1:8080",
  journal: { maxBytes: 1024 ** 3, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 50 },
  reconnectMaxMs: 10_000,
  ingest: { maxPayloadBytes: 262_144, ratePerDevice: 200, maxDevices: 20_000, dedupMaxEntries: 8_000_000 },
} as const;

/**
 * Builds the typed config with every default applied. Only called on data that passed the schema
 * and the semantic checks, so it trusts shapes; paths become absolute against `baseDir`. Devices
 * and outputs are built by their plugin's builder (one builder per load: see `ConfigPart.builder`).
 */
export function buildConfig<D, O>(data: unknown, baseDir: string, model: ConfigModel<D, O>): GatewayConfigOf<D, O> {
  const root = obj(data);
  const gw = obj(root.gateway);
  const gatewayId = gw.id as string;
  const dataDir = resolve(baseDir, or<string>(gw.dataDir, DEFAULTS.dataDir));
  const ctx: BuildContext = { baseDir, gatewayId, dataDir };

  const http = obj(root.http);
  const listen = or<string>(http.listen, DEFAULTS.httpListen);
  const hp = parseHostPort(listen);
  if (typeof hp === "string") throw new Error(`unchecked listen address ${listen}`);

  const deviceBuilder = buildersOf(model.parts.drivers, ctx, "driver");
  const buildDevice = (d: RawObject): D => {
    const name = d.driver as string;
    const common: DeviceCommon = { id: d.id as string, driver: name, reconnectMaxMs: or(d.reconnectMaxMs, DEFAULTS.reconnectMaxMs), disabled: or(d.disabled, false) };
    return deviceBuilder(name)(d, common) as D;
  };
  const outputBuilder = buildersOf(model.parts.outputs, ctx, "output type");
  const buildOutput = (o: RawObject): O => {
    const type = o.type as string;
    return outputBuilder(type)(o, { type, name: or<string>(o.name, type) }) as O;
  };

  const journal = obj(root.journal);
  const devices = arr(root.devices).map((d) => buildDevice(obj(d)));
  const ingest = buildIngest(root.ingest, model, ctx);
  return {
    gateway: {
      id: gatewayId, group: gw.group as string, dataDir,
      driverThreads: or<number>(gw.driverThreads, defaultDriverThreads(devices.length, ingest, model)),
    },
    http: {
      listen,
      host: hp.host,
      port: hp.port,
      operatorTokens: arr(http.operatorTokens) as string[],
      allowedOrigins: (arr(http.allowedOrigins) as string[]).map((o) => o.replace(/\/$/, "")),
    },
    journal: {
      maxBytes: journal.maxBytes === undefined ? DEFAULTS.journal.maxBytes : (parseSize(journal.maxBytes) as number),
      overflow: or(journal.overflow, DEFAULTS.journal.overflow),
      fsync: or(journal.fsync, DEFAULTS.journal.fsync),
      fsyncIntervalMs: or(journal.fsyncIntervalMs, DEFAULTS.journal.fsyncIntervalMs),
    },
    devices,
    ingest,
    outputs: arr(root.outputs).map((o) => buildOutput(obj(o))),
  };
}

/**
 * Polled devices beside a device listener (`ingest.mqtt`) get a driver thread unless the config says
 * otherwise: a fleet of thousands of sockets reconnecting together competes with the pollers for the
 * main thread's turns, and on a busy two-core box that alone pushed poll jitter p99 from tens of ms
 * to 160–700 ms (a thread of their own held it under 100 ms). Without a listener the main thread
 * polls best: no second heap, no hop between threads.
 */
function defaultDriverThreads(polled: number, ingest: IngestConfig, model: ConfigModel<unknown, unknown>): number {
  if (polled === 0) return 0;
  const listening = (model.parts.ingestListeners ?? []).some((l) => (ingest as unknown as Record<string, unknown>)[l.key] !== undefined);
  return listening ? 1 : 0;
}

function buildIngest(raw: unknown, model: ConfigModel<unknown, unknown>, ctx: BuildContext): IngestConfig {
  const present = raw !== undefined;
  const i = obj(raw);
  const out: IngestConfig = {
    http: or(i.http, present),
    maxPayloadBytes: i.maxPayloadBytes === undefined ? DEFAULTS.ingest.maxPayloadBytes : (parseSize(i.maxPayloadBytes) as number),
    ratePerDevice: or(i.ratePerDevice, DEFAULTS.ingest.ratePerDevice),
    maxDevices: or(i.maxDevices, DEFAULTS.ingest.maxDevices),
    dedupMaxEntries: or(i.dedupMaxEntries, DEFAULTS.ingest.dedupMaxEntries),
    devices: arr(i.devices).map((raw) => {
      const d = obj(raw);
      const dev: IngestDeviceConfig = { id: d.id as string };
      if (d.token !== undefined) dev.token = d.token as string;
      if (d.tokenHash !== undefined) dev.tokenHash = (d.tokenHash as string).toLowerCase();
      return dev;
    }),
  };
  for (const l of model.parts.ingestListeners ?? []) {
    const v = l.build(i[l.key], ctx);
    if (v !== undefined) (out as unknown as Record<string, unknown>)[l.key] = v;
  }
  return out;
}

/**
 * Each plugin's builder for one load, made on first use: a builder may keep state across the items
 * of one file (shared tag lists), so it is made once per load and plugin, never per item.
 */
function buildersOf<Common>(
  parts: readonly { name: string; builder(ctx: BuildContext): (raw: RawObject, common: Common) => unknown }[],
  ctx: BuildContext,
  what: string,
): (name: string) => (raw: RawObject, common: Common) => unknown {
  const made = new Map<string, (raw: RawObject, common: Common) => unknown>();
  return (name) => {
    let b = made.get(name);
    if (!b) {
      const part = parts.find((p) => p.name === name);
      if (!part) throw new Error(`unchecked ${what} ${name}`);
      b = part.builder(ctx);
      made.set(name, b);
    }
    return b;
  };
}
