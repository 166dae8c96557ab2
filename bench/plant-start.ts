/**
 * How long a plant of identical presses takes to validate and to start: N presses × `tags` holding
 * registers, written two ways — every device spelled out ("expanded", what plants generate today)
 * and with one device template ("template", `templates:` + `devices[].template`).
 *
 * For each form and N it reports:
 * - the file's size;
 * - config load + validate in this process, split into the loader's stages (YAML with positions,
 *   schema, templates, semantic checks, build);
 * - the real daemon (`bin/floorgate run`): ms from spawn to /healthz answering, and to every device
 *   having answered its first poll (`GET /api/v1/devices`: every device online with a lastSampleTs).
 *
 * The presses are served by bench/modbus-sim-server.ts (a child process, one port per `--per-port`
 * presses, each press its own unit id). Ports are shared only because of the open-files limit: the
 * simulator needs two descriptors per port and the gateway one per connection.
 *
 *   node dist/bench/plant-start.js [--devices 2000,4000,10000] [--tags 100] [--form expanded,template]
 *        [--per-port N] [--no-start] [--no-load] [--cpu-prof DIR] [--keep]
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { startSim, tagLines, waitFor, type Sim } from "./modbus-scale.js";
import { freePort } from "../test/helpers/ports.js";
import { topFunctions } from "./modbus-scale-profile.js";
import { readSource } from "../src/config/source.js";
import { validateStructure } from "../src/config/validate.js";
import { checkSemantics } from "../src/config/semantic.js";
import { buildConfig } from "../src/config/build.js";
import { applyTemplates } from "../src/config/templates.js";
import { builtModel } from "../src/config/model.js";

const HERE = import.meta.dirname;
/** bin/floorgate from dist/bench or from bench/ (tsx) */
const BIN = join(HERE, HERE.includes("/dist/") ? "../.." : "..", "bin", "floorgate");
/** the flags of bin/floorgate's shebang, so the bench runs what operators run */
const NODE_FLAGS = ["--max-semi-space-size=16", "--no-allocation-site-pretenuring"];

export type Form = "expanded" | "template";

export interface PlantOptions {
  devices: number;
  tags: number;
  /** simulator ports; press i uses port ports[floor(i / perPort)] and unit id (i % perPort) + 1 */
  ports: readonly number[];
  perPort: number;
  httpPort: number;
  pollMs?: number;
}

/** The plant's config text in one of the two forms; the same presses either way. */
export function plantYaml(form: Form, o: PlantOptions): string {
  const pollMs = o.pollMs ?? 1000;
  const parts = [
    "gateway: { id: plant-start, group: bench, dataDir: ./data }\n",
    `http: { listen: "127.0.0.1:${o.httpPort}" }\n`,
    "journal: { maxBytes: 2GiB }\n",
  ];
  const tags = tagLines(o.tags);
  const conn = (i: number): string => `host: 127.0.0.1, port: ${o.ports[Math.floor(i / o.perPort)]}, unitId: ${(i % o.perPort) + 1}`;
  if (form === "template") {
    parts.push(`templates:\n  press:\n    driver: modbus\n    connection: { transport: tcp, timeoutMs: 1000 }\n    pollMs: ${pollMs}\n    tags:\n${tags}\n`);
    parts.push("devices:\n");
    for (let i = 0; i < o.devices; i++) parts.push(`  - { id: p${i}, template: press, connection: { ${conn(i)} } }\n`);
  } else {
    parts.push("devices:\n");
    for (let i = 0; i < o.devices; i++) {
      parts.push(`  - id: p${i}\n    driver: modbus\n    connection: { transport: tcp, ${conn(i)}, timeoutMs: 1000 }\n    pollMs: ${pollMs}\n    tags:\n${tags}\n`);
    }
  }
  return parts.join("");
}

/** The loader's stages timed one by one (what `parseConfigText` runs), in ms. */
export function loadStages(file: string): Record<string, number> {
  const t = [performance.now()];
  const lap = (): number => { t.push(performance.now()); return Math.round(t[t.length - 1]! - t[t.length - 2]!); };
  const model = builtModel();
  const text = readFileSync(file, "utf8");
  const read = readSource(text, {});
  const yamlMs = lap();
  if (!read.ok) throw new Error(`bench: ${read.problems[0]?.message}`);
  const structure = validateStructure(read.source, model);
  const schemaMs = lap();
  const tpl = applyTemplates(read.source, structure, dirname(resolve(file)), model);
  const templatesMs = lap();
  const semantic = tpl.annotate(checkSemantics(tpl.source, dirname(resolve(file)), model));
  const semanticMs = lap();
  const problems = [...tpl.problems, ...semantic].filter((p) => p.severity !== "warning");
  if (problems.length > 0) throw new Error(`bench: the generated config is invalid: ${problems.slice(0, 3).map((p) => `${p.line}: ${p.path}: ${p.message}`).join("; ")}`);
  const config = buildConfig(tpl.buildData(), dirname(resolve(file)), model);
  const buildMs = lap();
  if (config.devices.length === 0) throw new Error("bench: no devices built");
  return { yamlMs, schemaMs, templatesMs, semanticMs, buildMs, totalMs: Math.round(t[t.length - 1]! - t[0]!) };
}

interface DeviceRow { id: string; state: string; lastSampleTs: string | null }

/**
 * Starts `floorgate run` on the file and measures, from the spawn: /healthz answering, and every
 * device having delivered its first poll. Stops the daemon (SIGTERM) before returning.
 */
async function startOnce(file: string, httpPort: number, devices: number, cpuProfDir?: string): Promise<Record<string, number>> {
  const dir = dirname(file);
  const logFd = openSync(join(dir, "gateway.log"), "w");
  const prof = cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", join(dir, "prof")] : [];
  const t0 = performance.now();
  const gw = spawn(process.execPath, [...NODE_FLAGS, ...prof, BIN, "run", "--config", file], {
    cwd: dir, stdio: ["ignore", logFd, logFd], env: { ...process.env, FLOORGATE_LOG_LEVEL: "warn" },
  });
  closeSync(logFd);
  const exited = new Promise<number | null>((r) => gw.once("exit", (c) => r(c)));
  const died = exited.then((c) => { throw new Error(`gateway exited with ${c}; see ${join(dir, "gateway.log")}:\n${readFileSync(join(dir, "gateway.log"), "utf8").slice(0, 2000)}`); });
  const base = `http://127.0.0.1:${httpPort}`;
  try {
    await Promise.race([waitFor(async () => (await fetch(`${base}/healthz`).then((r) => r.status, () => 0)) !== 0, 600_000, "gateway /healthz"), died]);
    const listenMs = performance.now() - t0;
    let online = 0;
    let polled = 0;
    let firstOnlineMs = 0;
    await Promise.race([waitFor(async () => {
      const body = await fetch(`${base}/api/v1/devices`).then((r) => r.json() as Promise<{ devices: DeviceRow[] }>, () => ({ devices: [] }));
      online = body.devices.filter((d) => d.state === "online").length;
      polled = body.devices.filter((d) => d.lastSampleTs !== null).length;
      if (online > 0 && firstOnlineMs === 0) firstOnlineMs = performance.now() - t0;
      // a large device list is not free to render: ask less often, so the bench does not slow the start it measures
      if (polled < devices) await new Promise((r) => setTimeout(r, devices >= 4000 ? 400 : 100));
      return polled >= devices && online >= devices;
    }, 600_000, "every device polled"), died]);
    const allPolledMs = performance.now() - t0;
    return { listen_ms: Math.round(listenMs), first_device_online_ms: Math.round(firstOnlineMs), all_devices_polled_ms: Math.round(allPolledMs) };
  } finally {
    void died.catch(() => {});
    if (gw.exitCode === null) {
      const kill = setTimeout(() => gw.kill("SIGKILL"), 30_000);
      gw.kill("SIGTERM");
      await exited;
      clearTimeout(kill);
    }
    if (cpuProfDir) {
      await mkdir(cpuProfDir, { recursive: true });
      for (const f of (await readdir(join(dir, "prof")).catch(() => [] as string[])).filter((x) => x.endsWith(".cpuprofile"))) {
        const dest = join(cpuProfDir, `plant-start-${devices}-${f}`);
        await copyFile(join(dir, "prof", f), dest);
        const top = await topFunctions(dest, 25);
        process.stderr.write(`CPU profile ${dest} (start, then the stop): idle ${top.idlePct}%, gc ${top.gcPct}%\n`);
        for (const x of top.top) process.stderr.write(`  ${x.selfPct.toFixed(1).padStart(5)}%  ${x.name}  ${x.where}\n`);
      }
    }
  }
}

export interface PlantRunOptions {
  devices: number;
  tags?: number;
  forms?: Form[];
  perPort?: number;
  load?: boolean;
  start?: boolean;
  cpuProfDir?: string;
  keep?: boolean;
}

/** One plant size, each form: rows of figures. Every child it starts is stopped before it returns. */
export async function benchPlantStart(o: PlantRunOptions): Promise<Record<string, number | string>[]> {
  const tags = o.tags ?? 100;
  // two descriptors per simulator port and one per gateway connection, under a 20,000 soft limit
  const perPort = o.perPort ?? Math.max(1, Math.ceil(o.devices / 4000));
  const nPorts = Math.ceil(o.devices / perPort);
  const dir = await mkdtemp(join(tmpdir(), "floorgate-plant-start-"));
  let sim: Sim | undefined;
  const rows: Record<string, number | string>[] = [];
  try {
    if (o.start !== false) sim = await startSim(nPorts, 1, 1000);
    const ports = sim?.ports ?? Array.from({ length: nPorts }, (_, i) => 20000 + i);
    for (const form of o.forms ?? ["expanded", "template"]) {
      const httpPort = await freePort();
      const sub = join(dir, form);
      await mkdir(sub);
      const file = join(sub, "floorgate.yaml");
      await writeFile(file, plantYaml(form, { devices: o.devices, tags, ports, perPort, httpPort }));
      const row: Record<string, number | string> = { form, devices: o.devices, tags, per_port: perPort, file_bytes: statSync(file).size };
      if (o.load !== false) {
        for (const [k, v] of Object.entries(loadStages(file))) row[`load_${k.replace(/Ms$/, "_ms")}`] = v;
      }
      if (o.start !== false) Object.assign(row, await startOnce(file, httpPort, o.devices, o.cpuProfDir));
      process.stderr.write(`[plant-start] ${JSON.stringify(row)}\n`);
      rows.push(row);
    }
    return rows;
  } finally {
    await sim?.stop();
    if (o.keep) process.stderr.write(`[plant-start] files kept in ${dir}\n`);
    else await rm(dir, { recursive: true, force: true });
  }
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const main = async (): Promise<void> => {
    const sizes = (argValue("devices") ?? "2000").split(",").map(Number);
    const forms = (argValue("form") ?? "expanded,template").split(",") as Form[];
    const rows: Record<string, number | string>[] = [];
    for (const devices of sizes) {
      rows.push(...await benchPlantStart({
        devices, forms, tags: argValue("tags") === undefined ? undefined : Number(argValue("tags")),
        perPort: argValue("per-port") === undefined ? undefined : Number(argValue("per-port")),
        load: !process.argv.includes("--no-load"), start: !process.argv.includes("--no-start"),
        cpuProfDir: argValue("cpu-prof"), keep: process.argv.includes("--keep"),
      }));
    }
    console.table(rows);
    console.log(JSON.stringify(rows));
  };
  main().catch((e: unknown) => { console.error(e); process.exit(1); });
}
