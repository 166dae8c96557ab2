/**
 * npm run soak -- --minutes N [--seed S] [--out FILE] [--faults a,b,…]
 *
 * Random faults under mixed load, then one question: did every acknowledged sample arrive at the
 * cloud consumer, or was it counted as dropped? The plant: Mosquitto (the cloud, with persistence so
 * its own SIGKILL does not lose the consumer's session), Modbus TCP simulators polled by the
 * gateway, HTTP devices pushing with msgIds, the gateway as a process with its dataDir on a tmpfs
 * the soak mounts, and a consumer with a persistent session. Faults, one at a time at random gaps:
 * broker SIGKILL/restart, broker SIGSTOP/SIGCONT, gateway SIGKILL/restart, disk full, Modbus
 * simulator restart. At the end: faults stop, load stops, the journal drains, SIGTERM, the books.
 * Exit 0 only when lost = 0 and the gateway exited 0 on SIGTERM. Needs root (mount) and a build.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { http } from "../test/helpers/gateway-process.js";
import { startMosquitto, type MosquittoBroker } from "../test/helpers/mosquitto.js";
import { freePort } from "../test/helpers/ports.js";
import { Consumer } from "./soak-consumer.js";
import { FAULT_KINDS, parseKinds, runFaults, seeded, type FaultActions, type FaultKind, type FaultRecord } from "./soak-faults.js";
import { Pusher, sleep } from "./soak-load.js";
import { fillDisk, gatewayConfig, GatewayProc, GATEWAY_ID, mountTmpfs, PUSH_TOKEN, removeQuietly, startPlc, type SoakPlc, type Tmpfs } from "./soak-plant.js";
import { DropBook, formatSummary, type MissingSample, type SoakSummary } from "./soak-report.js";

export interface SoakOptions {
  minutes: number;
  seed: number;
  faults: FaultKind[];
  out?: string;
  gapMinS: number;
  gapMaxS: number;
  holdMaxS: number;
  maxFaults: number;
  modbusDevices: number;
  pushDevices: number;
  pushIntervalMs: number;
  journalMax: string;
  tmpfsSize: string;
  drainS: number;
  quiet: boolean;
}

export function parseArgs(argv: readonly string[]): SoakOptions {
  const o: SoakOptions = {
    minutes: 5, seed: Date.now() % 1_000_000, faults: [...FAULT_KINDS], gapMinS: 10, gapMaxS: 40, holdMaxS: 3600, maxFaults: Infinity,
    modbusDevices: 20, pushDevices: 20, pushIntervalMs: 500, journalMax: "32MiB", tmpfsSize: "64m", drainS: 120, quiet: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    const num = (): number => {
      const x = Number(v());
      if (!Number.isFinite(x) || x < 0) throw new Error(`${a} needs a non-negative number`);
      return x;
    };
    switch (a) {
      case "--minutes": o.minutes = num(); break;
      case "--seed": o.seed = num(); break;
      case "--out": o.out = v(); break;
      case "--faults": o.faults = parseKinds(v()); break;
      case "--gap": {
        const m = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(v());
        if (!m) throw new Error("--gap wants MIN-MAX seconds, e.g. 10-40");
        o.gapMinS = Number(m[1]); o.gapMaxS = Number(m[2]);
        break;
      }
      case "--hold-max": o.holdMaxS = num(); break;
      case "--max-faults": o.maxFaults = num(); break;
      case "--modbus-devices": o.modbusDevices = num(); break;
      case "--push-devices": o.pushDevices = num(); break;
      case "--push-interval": o.pushIntervalMs = num(); break;
      case "--journal-max": o.journalMax = v(); break;
      case "--tmpfs": o.tmpfsSize = v(); break;
      case "--drain": o.drainS = num(); break;
      case "--quiet": o.quiet = true; break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  return o;
}

interface Health { outputs?: Record<string, { lag?: number; cursor?: number }>; journal?: { writable?: boolean } }

async function health(base: string): Promise<Health | null> {
  const r = await http("GET", `${base}/healthz`).catch(() => null);
  if (!r) return null;
  try { return JSON.parse(r.body) as Health; } catch { return null; }
}

/** Things to undo, newest first, whatever way the soak ends (also on Ctrl-C). */
const undo: (() => Promise<void>)[] = [];
/** The work dir (gateway log, config) is kept when the soak fails, for the post-mortem. */
let workDir = "";
let keepWork = false;
async function cleanup(): Promise<void> {
  while (undo.length) await undo.pop()!().catch((err: unknown) => process.stderr.write(`soak cleanup: ${(err as Error).message}\n`));
}

export async function runSoak(o: SoakOptions): Promise<SoakSummary> {
  const t0 = Date.now();
  const say = (line: string): void => { if (!o.quiet) process.stdout.write(`[soak ${((Date.now() - t0) / 1000).toFixed(1).padStart(7)} s] ${line}\n`); };
  const loadRandom = seeded(o.seed ^ 0x5bd1e995);
  const work = await mkdtemp(join(tmpdir(), "floorgate-soak-"));
  workDir = work;
  undo.push(() => (keepWork ? Promise.resolve() : removeQuietly(work)));
  const disk: Tmpfs = await mountTmpfs(join(work, "disk"), o.tmpfsSize);
  undo.push(() => disk.unmount());
  const filler = join(disk.dir, "filler");
  say(`seed ${o.seed}, ${o.minutes} min, faults ${o.faults.join(",") || "none"}; work dir ${work}, tmpfs ${o.tmpfsSize}, journal ${o.journalMax}`);

  const mosqDir = join(work, "mosquitto");
  await mkdir(mosqDir);
  const broker: MosquittoBroker = await startMosquitto({
    extraConfig: [
      "max_queued_messages 0", "max_queued_bytes 0", "max_inflight_messages 0",
      "persistence true", `persistence_location ${mosqDir}/`, "autosave_interval 1",
    ],
  });
  undo.push(() => { broker.resume(); return broker.dispose(); });
  const consumer = new Consumer(broker.url, `floorgate/${GATEWAY_ID}/+/telemetry`, "soak-consumer", t0);
  await consumer.start();
  undo.push(() => consumer.close());
  // A clean restart makes Mosquitto save the consumer's session now, not at the first autosave,
  // and proves that persistence works: the consumer must find its session again.
  await broker.restart();
  for (let i = 0; consumer.stats.connects < 2; i++) {
    if (i > 100) throw new Error("the consumer did not reconnect to the restarted broker within 10 s");
    await sleep(100);
  }
  if (consumer.stats.sessionLost.length > 0) throw new Error("mosquitto did not keep the consumer's session across a restart: persistence is not working");

  const plcs: SoakPlc[] = [];
  undo.push(async () => { for (const p of plcs) await p.server.stop().catch(() => {}); });
  for (let i = 0; i < o.modbusDevices; i++) plcs.push(await startPlc(`plc-${i}`, 200 + 50 * Math.floor(loadRandom() * 7)));

  const configFile = join(work, "floorgate.yaml");
  const port = await freePort();
  await writeFile(configFile, gatewayConfig({ dataDir: join(disk.dir, "data"), httpPort: port, brokerUrl: broker.url, journalMax: o.journalMax, plcs }));
  const gw = new GatewayProc(configFile, port, join(work, "gateway.log"));
  undo.push(() => gw.kill());
  await gw.start();
  say(`gateway up on ${gw.base}; ${plcs.length} Modbus devices, ${o.pushDevices} push devices; broker ${broker.url}`);

  const drops = new DropBook();
  let scraping = true;
  const scraper = (async () => {
    while (scraping) {
      if (gw.alive) await drops.scrape(gw.base, () => gw.incarnation);
      await sleep(1000);
    }
  })();

  const loadStop = { now: false, giveUpAt: 0 };
  const pushers = Array.from({ length: o.pushDevices }, (_, i) => new Pusher(`push-${i}`, PUSH_TOKEN, () => gw.base,
    { messagesPerBody: 5, valuesPerMessage: 10, intervalMs: o.pushIntervalMs, random: loadRandom }, t0));
  let loadError: Error | null = null;
  const pushing = pushers.map((p) => p.run(loadStop).catch((err: Error) => { loadError ??= err; }));

  const actions: FaultActions = {
    async inject(kind, random) {
      switch (kind) {
        case "broker-kill": await broker.kill(); return "mosquitto SIGKILLed";
        case "broker-stop": broker.pause(); return "mosquitto SIGSTOPped";
        case "gateway-kill": await gw.kill(); return `gateway (start ${gw.incarnation}) SIGKILLed`;
        case "disk-full": return `tmpfs filled (${((await fillDisk(filler)) / 2 ** 20).toFixed(1)} MiB filler)`;
        case "modbus-restart": {
          const up = plcs.filter((p) => p.up);
          const p = up[Math.floor(random() * up.length)];
          if (!p) return "no Modbus device to restart";
          await p.stop();
          return `${p.id} stopped`;
        }
      }
    },
    async heal(kind) {
      switch (kind) {
        case "broker-kill": await broker.start(); return "mosquitto restarted";
        case "broker-stop": broker.resume(); return "mosquitto SIGCONTed";
        case "gateway-kill": await gw.start(); return `gateway restarted (start ${gw.incarnation})`;
        case "disk-full": {
          await rm(filler, { force: true });
          const t = Date.now();
          while (Date.now() - t < 10_000) {
            if ((await health(gw.base))?.journal?.writable === true) return `filler removed; journal writable after ${Date.now() - t} ms`;
            await sleep(100);
          }
          return "filler removed; journal STILL NOT WRITABLE 10 s later";
        }
        case "modbus-restart": {
          const down = plcs.filter((p) => !p.up);
          for (const p of down) await p.start();
          return `${down.map((p) => p.id).join(",")} listening again`;
        }
      }
    },
  };
  const faultStop = { now: false };
  const faulting = runFaults(o.faults, { gapMinMs: o.gapMinS * 1000, gapMaxMs: o.gapMaxS * 1000, holdMaxMs: o.holdMaxS * 1000, maxFaults: o.maxFaults },
    seeded(o.seed), actions, faultStop, t0, say);
  faulting.catch(() => {}); // awaited below; an early failure must not surface as unhandled meanwhile

  // The soak's duration, cut short if the fault schedule fails.
  const failed = faulting.then(() => false, () => true);
  const endAt = t0 + o.minutes * 60_000;
  let lastReport = Date.now();
  while (Date.now() < endAt && loadError === null && !(await Promise.race([failed, sleep(250).then(() => false)]))) {
    if (Date.now() - lastReport >= 30_000) {
      lastReport = Date.now();
      const acked = pushers.reduce((n, p) => n + p.ackedSamples, 0);
      say(`acknowledged ${acked} push samples, consumer ${consumer.stats.samples} samples in ${consumer.stats.messages} messages`);
    }
  }
  faultStop.now = true;
  const faults: FaultRecord[] = await faulting;
  say(`faults stopped after ${faults.length}; stopping the load`);

  const drainStart = Date.now();
  loadStop.now = true;
  loadStop.giveUpAt = Date.now() + 30_000;
  await Promise.all(pushing);
  for (const p of plcs) if (p.up) await p.stop();

  const missing = (examples?: MissingSample[]): number => {
    let n = 0;
    for (const p of pushers) {
      const got = consumer.push.get(p.id);
      for (const v of p.ackedValues()) {
        if ((got?.get(v) ?? 0) > 0) continue;
        n++;
        const a = examples && examples.length < 50 ? p.ackOf(v) : undefined;
        if (examples && a && examples[examples.length - 1]?.msgId !== a.msgId) {
          examples.push({ device: p.id, value: v, msgId: a?.msgId ?? "?", ackedAtS: (a?.ackedAtMs ?? 0) / 1000, attempts: a?.attempts ?? 0 });
        }
      }
    }
    return n;
  };
  let drainTimedOut = true;
  while (Date.now() - drainStart < o.drainS * 1000) {
    const out = (await health(gw.base))?.outputs?.cloud;
    if (out?.lag === 0 && typeof out.cursor === "number" && consumer.highestBatch >= out.cursor) { drainTimedOut = false; break; }
    await sleep(250);
  }
  const drainS = (Date.now() - drainStart) / 1000;
  say(`drain ${drainTimedOut ? "TIMED OUT" : "done"} in ${drainS.toFixed(1)} s; SIGTERM to the gateway`);
  scraping = false;
  await scraper;
  await drops.scrape(gw.base, () => gw.incarnation);
  const exit = await gw.stop();
  await sleep(500); // anything the gateway flushed while stopping reaches the consumer

  const examples: MissingSample[] = [];
  const httpMissing = missing(examples);
  const dropTotals = drops.totals(gw.loggedDrops);
  let postJournal = 0;
  let beforeJournal = 0;
  for (const [k, v] of dropTotals) if (k.endsWith("|")) beforeJournal += v; else postJournal += v;
  const lost = Math.max(0, httpMissing - postJournal);
  const dupes = (m: Map<string, { size: number; get(v: number): number }>): { distinct: number; extra: number } => {
    let distinct = 0;
    let extra = 0;
    for (const c of m.values()) for (let v = 0; v < c.size; v++) { const n = c.get(v); if (n > 0) { distinct++; extra += n - 1; } }
    return { distinct, extra };
  };
  const pushSeen = dupes(consumer.push);
  const plcSeen = dupes(consumer.modbus);
  const acknowledged = pushers.reduce((n, p) => n + p.ackedSamples, 0);
  const served = plcs.reduce((n, p) => n + p.samplesServed, 0);
  const answers: Record<string, number> = {};
  for (const p of pushers) for (const [k, v] of p.statuses) answers[k] = (answers[k] ?? 0) + v;
  const byKind: Record<string, number> = {};
  for (const f of faults) byKind[f.kind] = (byKind[f.kind] ?? 0) + 1;
  const failures: string[] = [];
  if (lost > 0) failures.push(`${lost} acknowledged samples lost`);
  if (exit.code !== 0) failures.push(`gateway exit ${exit.code ?? exit.signal} on SIGTERM`);
  const faultError = await faulting.then(() => null, (err: Error) => err.message);
  if (faultError) failures.push(faultError);
  if (loadError) failures.push((loadError as Error).message);

  return {
    ok: failures.length === 0, failures, seed: o.seed, minutes: o.minutes, durationS: (Date.now() - t0) / 1000, faultsEnabled: o.faults,
    faults: { total: faults.length, byKind, list: faults },
    gateway: { incarnations: gw.incarnation, exit, errorLogLines: gw.errorLines, drainTimedOut, drainS },
    http: {
      devices: pushers.length, bodiesAcknowledged: pushers.reduce((n, p) => n + p.ackedBodies, 0), acknowledged,
      delivered: pushSeen.distinct, duplicates: pushSeen.extra, missing: httpMissing,
      unacknowledgedGivenUp: pushers.reduce((n, p) => n + p.givenUp, 0), answers,
    },
    modbus: {
      devices: plcs.length, requestsAnswered: plcs.reduce((n, p) => n + p.answered, 0), samplesServed: served,
      delivered: plcSeen.distinct, duplicates: plcSeen.extra, notDelivered: served - plcSeen.distinct,
      // post-journal drops not needed to explain the missing pushes are taken as Modbus samples
      unexplained: served - plcSeen.distinct - beforeJournal - Math.max(0, postJournal - httpMissing),
      notGood: consumer.stats.modbusNotGood, misattributed: consumer.stats.modbusMisattributed,
    },
    consumer: {
      messages: consumer.stats.messages, samples: consumer.stats.samples, replayedMessages: consumer.stats.replayedMessages,
      connects: consumer.stats.connects, sessionLostAtS: consumer.stats.sessionLost.map((s) => s.atMs / 1000), foreign: consumer.stats.foreign,
    },
    drops: { byReasonOutput: Object.fromEntries(dropTotals), postJournal, beforeJournal },
    lost, missingExamples: examples,
  };
}

async function main(): Promise<number> {
  let o: SoakOptions;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`soak: ${(err as Error).message}\n`);
    return 1;
  }
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`soak: ${sig}, cleaning up\n`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Whatever escapes must still unmount the tmpfs and stop the gateway and broker.
  const onEscape = (err: unknown): void => {
    process.stderr.write(`soak: unexpected ${(err as Error).stack ?? String(err)}\n`);
    keepWork = workDir !== "";
    void cleanup().finally(() => process.exit(2));
  };
  process.on("unhandledRejection", onEscape);
  process.on("uncaughtException", onEscape);
  try {
    const summary = await runSoak(o);
    keepWork = !summary.ok;
    process.stdout.write(`\n${formatSummary(summary)}\n`);
    if (keepWork) process.stdout.write(`gateway log and config kept in ${workDir}\n`);
    if (o.out) await writeFile(o.out, JSON.stringify(summary, null, 2) + "\n");
    return summary.ok ? 0 : 1;
  } catch (err) {
    keepWork = workDir !== "";
    process.stderr.write(`soak failed: ${(err as Error).stack ?? String(err)}\n${keepWork ? `gateway log and config kept in ${workDir}\n` : ""}`);
    return 2;
  } finally {
    await cleanup();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  void main().then((code) => process.exit(code));
}
