/**
 * The gateway daemon for the scale bench, for configs the config loader cannot hold.
 *
 * Why it exists: `floorgate run` refuses configs over 4 MiB or 500,000 YAML nodes (20,000 through
 * aliases) — src/config/load.ts and src/config/source.ts — and 2,000 devices × 100 tags is ~1.8 M
 * nodes (~9 MB) spelled out. So this launcher validates a config with ONE template Modbus device
 * through the real loader, then clones that device once per simulator port (sharing its interned tag
 * list, as the loader does for a file of identical devices) and runs exactly what `floorgate run` runs:
 * Gateway.start, the same logger, SIGTERM → stopWithin.
 *
 *   node dist/bench/modbus-scale-gateway.js CONFIG.yaml PORTS.json
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeHeapSnapshot } from "node:v8";
import { PerformanceObserver, constants as perfConstants, monitorEventLoopDelay } from "node:perf_hooks";
import { loadOrExplain, stopWithin, untilSignal } from "../src/cli/run.js";
import type { DeviceConfig, GatewayConfig } from "../src/config/types.js";
import { createLogger } from "../src/core/logger.js";
import { describeError } from "../src/core/errors.js";
import { Gateway } from "../src/runtime/gateway.js";

/** The config with its single template device replaced by one clone per port (ids d0, d1, …). */
export function expandDevices(config: GatewayConfig, ports: readonly number[]): GatewayConfig {
  const tmpl = config.devices[0];
  if (!tmpl || tmpl.driver !== "modbus" || tmpl.connection.transport === "rtu") {
    throw new Error("the template config needs one Modbus TCP device first");
  }
  // What the config builder gives for devices with identical tags: one shared (interned) tag
  // list, a device object and connection of their own.
  const devices: DeviceConfig[] = ports.map((port, i) => ({ ...tmpl, id: `d${i}`, connection: { ...tmpl.connection, port } }));
  return { ...config, devices };
}

async function main(): Promise<number> {
  const [file, portsFile] = process.argv.slice(2);
  if (!file || !portsFile) {
    process.stderr.write("usage: modbus-scale-gateway CONFIG.yaml PORTS.json\n");
    return 1;
  }
  const ports = JSON.parse(readFileSync(portsFile, "utf8")) as number[];
  const config = expandDevices(loadOrExplain(file), ports);
  const log = createLogger({ pretty: false });
  let gw: Gateway;
  try {
    gw = await Gateway.start(config, log);
  } catch (err) {
    log.fatal({ err: describeError(err) }, "floorgate cannot start");
    return 2;
  }
  const stopStats = process.env.FLOORGATE_BENCH_STATS === "1" ? printStats(gw) : undefined;
  // FLOORGATE_BENCH_HEAPSNAPSHOT=DIR: SIGUSR2 writes a heap snapshot there (what holds the RSS).
  const snapDir = process.env.FLOORGATE_BENCH_HEAPSNAPSHOT;
  if (snapDir) {
    process.on("SIGUSR2", () => {
      const file = writeHeapSnapshot(join(snapDir, `gateway-${Date.now()}.heapsnapshot`));
      process.stderr.write(`bench-heapsnapshot ${file}\n`);
    });
  }
  const profFile = process.env.FLOORGATE_BENCH_HEAPPROF;
  if (profFile) void promotedAllocations(profFile);
  await untilSignal();
  stopStats?.();
  return stopWithin(gw, log);
}

/**
 * FLOORGATE_BENCH_HEAPPROF=FILE: which code allocates what V8 promotes. The sampling heap profiler
 * keeps a sample until its object is collected; started right after a major GC and stopped 6 s
 * later (before the next one), its young garbage has been scavenged away and what remains is live
 * data plus promoted-then-dead objects: the old-generation churn, by allocation stack.
 */
async function promotedAllocations(file: string): Promise<void> {
  const { Session } = await import("node:inspector/promises");
  const { writeFileSync } = await import("node:fs");
  await new Promise((r) => setTimeout(r, 12_000));
  await new Promise<void>((resolve) => {
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = ((e as unknown as { detail?: { kind?: number } }).detail)?.kind;
        if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) { obs.disconnect(); resolve(); return; }
      }
    });
    obs.observe({ entryTypes: ["gc"] });
  });
  const s = new Session();
  s.connect();
  await s.post("HeapProfiler.startSampling", { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.FLOORGATE_BENCH_HEAPPROF_ALL === "1" } as never);
  await new Promise((r) => setTimeout(r, 10_000));
  const { profile } = await s.post("HeapProfiler.stopSampling");
  writeFileSync(file, JSON.stringify(profile));
  process.stderr.write(`bench-heapprof ${file}\n`);
  s.disconnect();
}

/**
 * Every 5 s to stderr (the gateway log): heap and RSS split, and event-loop delay — what tells a
 * GC- or burst-bound gateway from a CPU-bound one when poll jitter is high.
 */
function printStats(gw: Gateway): () => void {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const mib = (b: number): string => (b / 2 ** 20).toFixed(0);
  // GC time by kind: promotion (objects outliving the young generation) shows as major GCs
  const gc = { minorMs: 0, minor: 0, majorMs: 0, major: 0, majorMax: 0 };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = ((e as unknown as { detail?: { kind?: number } }).detail)?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) { gc.minor++; gc.minorMs += e.duration; }
      else { gc.major++; gc.majorMs += e.duration; gc.majorMax = Math.max(gc.majorMax, e.duration); }
    }
  });
  obs.observe({ entryTypes: ["gc"] });
  let threadDelays: { labels: Record<string, string | number | undefined>; value: number }[] = [];
  const t = setInterval(() => {
    void gw.metrics.driverThreadLoopDelay.get().then((g) => { threadDelays = g.values; });
    const m = process.memoryUsage();
    const tl = threadDelays.map((x) => `${String(x.labels.stat)}[${String(x.labels.thread)}] ${(x.value * 1000).toFixed(1)}`).join(" ");
    process.stderr.write(`bench-stats at ${Date.now()} rss ${mib(m.rss)} heapUsed ${mib(m.heapUsed)} heapTotal ${mib(m.heapTotal)} external ${mib(m.external)} arrayBuffers ${mib(m.arrayBuffers)} MiB; loop delay p50 ${(h.percentile(50) / 1e6).toFixed(1)} p99 ${(h.percentile(99) / 1e6).toFixed(1)} max ${(h.max / 1e6).toFixed(1)} ms; gc minor ${gc.minor}/${gc.minorMs.toFixed(0)} ms major ${gc.major}/${gc.majorMs.toFixed(0)} ms (longest ${gc.majorMax.toFixed(0)})${tl ? `; driver threads loop delay ${tl} ms` : ""}\n`);
    h.reset();
    gc.minor = gc.minorMs = gc.major = gc.majorMs = gc.majorMax = 0;
  }, 5000);
  t.unref();
  return () => { clearInterval(t); h.disable(); obs.disconnect(); };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`modbus-scale-gateway: ${describeError(err)}\n`);
    process.exit(2);
  });
}
