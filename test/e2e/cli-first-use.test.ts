/**
 * What a new user meets first, through the real built CLI (`bin/floorgate` as a child process):
 * `--version`, `help`, an unknown command, a missing config file, a taken port (`run`, `demo`,
 * `simulate`), and `simulate` serving the tags of a config's Modbus TCP devices — read back with
 * modbus-serial's client and by `floorgate probe`, and checked against what simulate says it serves.
 * The CLI runs from dist/: `npm run build` first.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ModbusRTU from "modbus-serial";

// modbus-serial is CommonJS: under NodeNext the default import is module.exports, whose `default`
// is the client class (as in bench/modbus.ts).
const ModbusClient = ModbusRTU.default;
type ModbusClient = InstanceType<typeof ModbusRTU.default>;
import { parse } from "yaml";
import { decodeRegisters, tagWidth } from "../../drivers/modbus/decode.js";
import { parseConfigText } from "../../src/config/load.js";
import type { ModbusDeviceConfig, ModbusTagConfig } from "../../drivers/modbus/config.js";
import { runCli, type CliOutcome } from "../helpers/gateway-process.js";
import { freePort, listenLoopback } from "../helpers/ports.js";

const ROOT = join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "bin", "floorgate");
const SAMPLE = join(ROOT, "drivers", "modbus", "sample.yaml");
const STACK = /\n\s+at .+:\d+:\d+/;


function cli(args: string[]): Promise<CliOutcome> {
  return runCli(args, { cwd: ROOT, env: { FLOORGATE_LOG_LEVEL: "warn" } });
}

/** A long-running CLI command, resolved once `ready` appears in its stdout; fails fast if it exits first. */
async function startCli(args: string[], ready: string, ms = 20_000): Promise<{ child: ChildProcess; out: () => string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => { out += d.toString(); });
  child.stderr!.on("data", (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(" ")}: not ready within ${ms} ms:\n${out}`)), ms);
    const check = (): void => { if (out.includes(ready)) { clearTimeout(timer); resolve(); } };
    child.stdout!.on("data", check);
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`${args.join(" ")} exited with ${code} before it was ready:\n${out}`)); });
  });
  return {
    child,
    out: () => out,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const hung = setTimeout(() => child.kill("SIGKILL"), 10_000);
      const code = await exited;
      clearTimeout(hung);
      return code;
    },
  };
}

/** Holds a real listener on a free loopback port until `close`. */
async function takePort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server: Server = createServer();
  const port = await listenLoopback(server);
  return { port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("floorgate CLI: first use", () => {
  let dir: string;
  let version: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-cli-first-"));
    version = (JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
  });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it("--version, -v and version print the package version, exit 0", async () => {
    for (const args of [["--version"], ["-v"], ["version"]]) {
      const r = await cli(args);
      expect(r, args.join(" ")).toMatchObject({ code: 0, stderr: "" });
      expect(r.stdout).toBe(`floorgate ${version}\n`);
    }
  });

  it("help, --help and -h print usage naming every command, exit 0", async () => {
    for (const args of [["help"], ["--help"], ["-h"]]) {
      const r = await cli(args);
      expect(r.code, args.join(" ")).toBe(0);
      for (const cmd of ["run --config", "validate --config", "demo", "simulate --config", "probe --config", "journal inspect --config", "schema", "version", "help"]) {
        expect(r.stdout, `${args.join(" ")} lists ${cmd}`).toContain(`floorgate ${cmd}`);
      }
    }
  });

  it("an unknown command says so and shows the usage, exit 1; no command at all too", async () => {
    const r = await cli(["frobnicate"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown command "frobnicate"');
    expect(r.stderr).toContain("floorgate validate --config FILE");
    const none = await cli([]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("floorgate run --config FILE");
  });

  it("a missing config file is one plain sentence, exit 1, for every command that reads one", async () => {
    // The words come from the config loader (src/config/load.ts), the same for every command.
    for (const cmd of [["validate"], ["run"], ["simulate"], ["probe"], ["journal", "inspect"]]) {
      const r = await cli([...cmd, "--config", "nope.yaml"]);
      expect(r.code, cmd.join(" ")).toBe(1);
      expect(r.stderr, cmd.join(" ")).toMatch(/^nope\.yaml: cannot read the config file: no such file\n/);
      expect(r.stderr, cmd.join(" ")).not.toContain("ENOENT");
      expect(r.stderr, cmd.join(" ")).not.toMatch(STACK);
    }
  });

  it("run on a taken port: exit 2 (spec §3), no stack, and the message says to change http.listen", async () => {
    const taken = await takePort();
    try {
      const f = join(dir, "taken.yaml");
      await writeFile(f, `gateway: { id: t, group: g, dataDir: ./taken-data }\nhttp: { listen: "127.0.0.1:${taken.port}" }\n`);
      const r = await cli(["run", "--config", f]);
      expect(r.code).toBe(2);
      expect(r.stdout + r.stderr).toContain(`127.0.0.1:${taken.port} is already in use`);
      expect(r.stdout + r.stderr).toContain(`change http.listen in ${f}`);
      expect(r.stdout + r.stderr).not.toMatch(STACK);
    } finally {
      await taken.close();
    }
  });

  it("demo on a taken port: exit 2, no stack, and the message suggests --port", async () => {
    const taken = await takePort();
    try {
      const r = await cli(["demo", "--port", String(taken.port), "--devices", "1"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`127.0.0.1:${taken.port} is already in use`);
      expect(r.stderr).toContain("--port N");
      expect(r.stderr).not.toMatch(STACK);
    } finally {
      await taken.close();
    }
  });

  it("simulate on a taken port: exit 2, no stack, and the message names the device's port in the config", async () => {
    const taken = await takePort();
    try {
      const f = join(dir, "sim-taken.yaml");
      await writeFile(f, `gateway: { id: t, group: g }
devices:
  - { id: m1, driver: modbus, connection: { transport: tcp, host: 127.0.0.1, port: ${taken.port}, unitId: 1 }, tags: [{ name: a, area: holding, address: 0, type: uint16 }] }
`);
      const r = await cli(["simulate", "--config", f]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("EADDRINUSE");
      expect(r.stderr).toContain(`change that device's port in ${f}`);
      expect(r.stderr).not.toMatch(STACK);
    } finally {
      await taken.close();
    }
  });
});

/** Reads one tag with modbus-serial's client: the value as the gateway would see it after scale and offset. */
async function readTag(client: ModbusClient, tag: ModbusTagConfig, unitId: number): Promise<unknown> {
  client.setID(tag.unitId ?? unitId);
  if (tag.area === "coil") return (await client.readCoils(tag.address, 1)).data[0];
  if (tag.area === "discrete") return (await client.readDiscreteInputs(tag.address, 1)).data[0];
  const width = tagWidth(tag);
  const r = tag.area === "holding" ? await client.readHoldingRegisters(tag.address, width) : await client.readInputRegisters(tag.address, width);
  const d = decodeRegisters(tag, r.buffer, 0);
  expect(d.quality, tag.name).toBe("good");
  return typeof d.value === "number" ? d.value * tag.scale + tag.offset : d.value;
}

/** Every tag of `devices` holds what `floorgate simulate` says it serves (its "Values:" line). */
async function checkServed(devices: readonly ModbusDeviceConfig[], portOf: (d: ModbusDeviceConfig) => number, shadowed: ReadonlySet<string> = new Set()): Promise<number> {
  let checked = 0;
  for (const d of devices) {
    if (d.connection.transport !== "tcp") continue;
    const client = new ModbusClient();
    await client.connectTCP("127.0.0.1", { port: portOf(d) });
    client.setTimeout(2_000);
    try {
      for (const tag of d.tags) {
        if (shadowed.has(`${d.id}.${tag.name}`)) continue;
        const v = await readTag(client, tag, d.connection.unitId);
        if (tag.type === "string") expect(v, `${d.id}.${tag.name}`).toBe(tag.writable ? "" : d.id.toUpperCase().slice(0, tagWidth(tag) * 2));
        else if (tag.type === "bool" || tag.area === "coil" || tag.area === "discrete") expect(typeof v, `${d.id}.${tag.name}`).toBe("boolean");
        else if (tag.writable) expect(v, `${d.id}.${tag.name}`).toBe(tag.offset);
        else if (["int32", "uint32", "int64", "uint64"].includes(tag.type)) expect(v as number, `${d.id}.${tag.name}`).toBeGreaterThanOrEqual(1000 * tag.scale + tag.offset);
        else {
          expect(v as number, `${d.id}.${tag.name}`).toBeGreaterThanOrEqual(25 - Math.abs(tag.scale));
          expect(v as number, `${d.id}.${tag.name}`).toBeLessThanOrEqual(75 + Math.abs(tag.scale));
        }
        checked++;
      }
      const lamp = d.tags.find((t) => t.area === "coil" && t.writable);
      if (lamp) {
        client.setID(lamp.unitId ?? d.connection.unitId);
        await client.writeCoil(lamp.address, true);
        expect((await client.readCoils(lamp.address, 1)).data[0], `${d.id}.${lamp.name} after a write`).toBe(true);
      }
    } finally {
      await new Promise<void>((r) => client.close(() => r()));
    }
  }
  return checked;
}

function modbusDevices(text: string, file: string): ModbusDeviceConfig[] {
  const r = parseConfigText(text, file, {});
  if (!r.ok) throw new Error(`${file} does not validate:\n${r.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`).join("\n")}`);
  return r.config.devices.filter((d): d is ModbusDeviceConfig => d.driver === "modbus");
}

describe("floorgate simulate", () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), "floorgate-sim-")); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it("serves drivers/modbus/sample.yaml as the driver README says: every tag readable, holding what simulate claims", async () => {
    const text = await readFile(SAMPLE, "utf8");
    const devices = modbusDevices(text, SAMPLE);
    expect(devices.length).toBeGreaterThan(0);
    // The file names its own ports: they must be free here, or the test cannot say anything.
    for (const d of devices) {
      if (d.connection.transport !== "tcp") continue;
      const port = d.connection.port;
      const probe = createServer();
      await new Promise<void>((resolve, reject) => {
        probe.once("error", (e) => reject(new Error(`port ${port} of sample.yaml is taken on this machine: ${e.message}`)));
        probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
      });
    }
    const sim = await startCli(["simulate", "--config", SAMPLE], "Ctrl-C stops the simulators.");
    try {
      for (const d of devices) expect(sim.out()).toContain(`simulated ${d.id} on `);
      expect(sim.out()).toContain("Values: strings hold the device id in capitals");
      const checked = await checkServed(devices, (d) => (d.connection as { port: number }).port);
      expect(checked).toBe(devices.reduce((n, d) => n + d.tags.length, 0));
    } finally {
      expect(await sim.stop()).toBe(0);
    }
  });

  it("serves any config: several unit ids behind one port, per-tag unit ids, byte orders, scale; probe reads every tag good", async () => {
    const port = await freePort();
    const port2 = await freePort();
    const f = join(dir, "plant.yaml");
    await writeFile(f, `gateway: { id: plant, group: g }
devices:
  - id: meter-1
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${port}, unitId: 3, timeoutMs: 2000 }
    tags:
      - { name: power_kw, area: holding, address: 1000, type: float32, byteOrder: CDAB, unit: kW }
      - { name: energy_wh, area: input, address: 3000, type: uint64, byteOrder: DCBA, scale: 0.001, unit: kWh }
      - { name: volts, area: input, address: 10, type: int16, byteOrder: BADC, scale: 0.1, offset: -5 }
      - { name: serial, area: holding, address: 2000, type: string, length: 3, byteOrder: BADC }
      - { name: alarm, area: holding, address: 5, type: bool, bit: 15 }
      - { name: drive_rpm, area: holding, address: 0, type: float64, unitId: 4 }
      - { name: power_w1, area: holding, address: 1000, type: uint16 }
      - { name: power_w2, area: holding, address: 1001, type: uint16 }
  - id: meter-2
    driver: modbus
    connection: { transport: tcp, host: localhost, port: ${port}, unitId: 7 }
    tags:
      - { name: setpoint, area: holding, address: 0, type: int32, writable: true }
      - { name: trip, area: discrete, address: 9, type: bool }
  - id: remote
    driver: modbus
    connection: { transport: tcp, host: 10.255.0.1, port: 502, unitId: 1 }
    tags: [{ name: a, area: holding, address: 0, type: uint16 }]
  - id: press-9
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${port2}, unitId: 1 }
    tags: [{ name: count, area: input, address: 0, type: uint32 }]
`);
    const devices = modbusDevices(await readFile(f, "utf8"), f);
    const sim = await startCli(["simulate", "--config", f], "Ctrl-C stops the simulators.");
    try {
      expect(sim.out()).toContain(`simulated meter-1 on 127.0.0.1:${port} (unit 3, 4, 8 tags)`);
      expect(sim.out()).toContain(`simulated meter-2 on 127.0.0.1:${port} (unit 7, 2 tags)`);
      expect(sim.out()).toContain("not simulated (not a Modbus TCP device on this machine): remote");
      const local = devices.filter((d) => d.id !== "remote");
      const checked = await checkServed(local, (d) => (d.connection as { port: number }).port, new Set(["meter-1.power_w1", "meter-1.power_w2"]));
      expect(checked).toBe(9);
      // an unknown unit id behind the simulated gateway answers exception 11, as a real TCP gateway would
      const client = new ModbusClient();
      await client.connectTCP("127.0.0.1", { port });
      client.setTimeout(2_000);
      client.setID(99);
      await expect(client.readHoldingRegisters(0, 1)).rejects.toMatchObject({ modbusCode: 11 });
      // two uint16 tags over a float32's registers read that float's words (one owner per register),
      // as the README's byte-order worked example needs
      client.setID(3);
      const words = await client.readHoldingRegisters(1000, 2);
      const float = Buffer.from([...words.buffer.subarray(2, 4), ...words.buffer.subarray(0, 2)]).readFloatBE(0); // CDAB
      expect(float).toBeGreaterThanOrEqual(25);
      expect(float).toBeLessThanOrEqual(75);
      await new Promise<void>((r) => client.close(() => r()));
      // the driver itself, through `floorgate probe`, reads every local tag with good quality
      const probeFile = join(dir, "probe.yaml");
      const cfg = parse(await readFile(f, "utf8")) as { devices: { id: string }[] };
      cfg.devices = cfg.devices.filter((d) => d.id !== "remote");
      await writeFile(probeFile, JSON.stringify(cfg));
      const probe = await cli(["probe", "--config", probeFile]);
      expect(probe.code, probe.stdout + probe.stderr).toBe(0);
      const rows = probe.stdout.trim().split("\n").slice(1);
      expect(rows).toHaveLength(11);
      for (const row of rows) expect(row, row).toMatch(/\sgood\b/);
    } finally {
      expect(await sim.stop()).toBe(0);
    }
  });

  it("a config without a local Modbus TCP device: exit 1 with the reason", async () => {
    const f = join(dir, "none.yaml");
    await writeFile(f, "gateway: { id: t, group: g }\n");
    const r = await cli(["simulate", "--config", f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no Modbus TCP device on this machine");
  });
});
