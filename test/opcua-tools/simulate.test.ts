/**
 * `floorgate simulate` for OPC UA devices: the opcua descriptor's simulator hook
 * (drivers/opcua/simulate.ts) serves every NodeId a config's local OPC UA devices name, plus the
 * oven, read back with a plain node-opcua client; devices elsewhere are not accepted; a taken port
 * is an error the CLI can explain; and the CLI serves a mixed config through the descriptor.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AttributeIds, DataType, OPCUAClient, StatusCodes, UserTokenType, type ClientSession } from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { opcuaSimulator, simulatedServers } from "../../drivers/opcua/simulate.js";
import type { OpcuaDeviceConfig } from "../../drivers/opcua/config.js";
import { findDriver } from "../../src/plugins/drivers.js";
import { listenHint } from "../../src/cli/run.js";
import { freePort } from "../helpers/ports.js";
import { parsePlanned } from "../unit/config-planned.js";

function opcuaDevices(yaml: string): OpcuaDeviceConfig[] {
  const r = parsePlanned(yaml, "sim.yaml", { OVEN_PASS: "pw-1" });
  if (!r.ok) throw new Error(r.problems.map((p) => `${p.path}: ${p.message}`).join("\n"));
  return r.config.devices.filter((d): d is OpcuaDeviceConfig => d.driver === "opcua");
}

async function session(url: string, user?: { userName: string; password: string }): Promise<{ s: ClientSession; close: () => Promise<void> }> {
  const client = OPCUAClient.create({ endpointMustExist: false, connectionStrategy: { maxRetry: 0 } });
  await client.connect(url);
  const s = await client.createSession(user ? { type: UserTokenType.UserName, ...user } : undefined);
  return { s, close: async () => { await s.close(); await client.disconnect(); } };
}

const config = (port: number): string => `gateway: { id: gw, group: g }
devices:
  - id: oven-1
    driver: opcua
    connection: { endpoint: "opc.tcp://127.0.0.1:${port}/UA/Oven" }
    tags:
      - { name: zone1_temp, nodeId: "ns=2;s=Oven.Zone1.Temperature" }
      - { name: state, nodeId: "ns=2;s=Oven.State" }
      - { name: setpoint, nodeId: "ns=2;s=Oven.Setpoint", writable: true }
  - id: line-4
    driver: opcua
    connection: { endpoint: "opc.tcp://localhost:${port}/UA/Oven", securityMode: None, username: op, password: "\${env:OVEN_PASS}" }
    tags:
      - { name: speed, nodeId: "ns=3;s=Line4.Speed", unit: m/min }
      - { name: part_count, nodeId: "ns=3;i=1001" }
      - { name: recipe_name, nodeId: "nsu=urn:acme:line;s=Recipe" }
      - { name: door_open, nodeId: "ns=5;s=Door.Open" }
      - { name: trim, nodeId: "ns=3;s=Line4.Trim", writable: true }
      - { name: server_time, nodeId: "i=2258" }
  - id: remote
    driver: opcua
    connection: { endpoint: "opc.tcp://10.255.0.1:4840" }
    tags: [{ name: a, nodeId: "ns=2;s=A" }]
  - { id: press, driver: modbus, connection: { transport: tcp, host: 127.0.0.1, port: 5020, unitId: 1 }, tags: [{ name: a, area: holding, address: 0, type: uint16 }] }
`;

describe("simulated OPC UA devices", () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), "floorgate-opcua-sim-")); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it("serves every NodeId of the local devices and the oven; the setpoint and writable tags take writes", async () => {
    const port = await freePort();
    const devices = opcuaDevices(config(port));
    const local = devices.filter((d) => opcuaSimulator.accepts(d));
    expect(local.map((d) => d.id)).toEqual(["oven-1", "line-4"]);
    expect(simulatedServers(local)).toHaveLength(1); // one port, one server
    const run = await opcuaSimulator.start(local);
    try {
      expect(run.served).toEqual([
        `simulated oven-1 on opc.tcp://127.0.0.1:${port}/UA/Oven (OPC UA oven, 3 of 3 NodeIds served)`,
        `simulated line-4 on opc.tcp://127.0.0.1:${port}/UA/Oven (OPC UA oven, 6 of 6 NodeIds served)`,
      ]);
      expect(run.notes.join("\n")).toContain("OPC UA values: the oven");
      // the device's own endpoint name (localhost) and its user both work
      const c = await session(`opc.tcp://localhost:${port}/UA/Oven`, { userName: "op", password: "pw-1" });
      try {
        // node-opcua's client takes no `nsu=` NodeId strings: look the namespace's index up first
        const [nsArray] = await c.s.read([{ nodeId: "i=2255", attributeId: AttributeIds.Value }]);
        const acme = (nsArray!.value.value as string[]).indexOf("urn:acme:line");
        expect(acme).toBeGreaterThan(2);
        const ids = [...devices[0]!.tags, ...devices[1]!.tags].map((t) => t.nodeId.replace("nsu=urn:acme:line", `ns=${acme}`));
        const values = await c.s.read(ids.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })));
        const v = (id: string): unknown => values[ids.indexOf(id)]!.value.value;
        values.forEach((dv, i) => expect(dv.statusCode, ids[i]).toBe(StatusCodes.Good));
        expect(v("ns=2;s=Oven.Zone1.Temperature") as number).toBeGreaterThan(15);
        expect(["Idle", "Heating", "Baking", "Cooling"]).toContain(v("ns=2;s=Oven.State"));
        expect(values[ids.indexOf("ns=3;s=Line4.Speed")]!.value.dataType).toBe(DataType.Double);
        expect(v("ns=3;s=Line4.Speed") as number).toBeGreaterThanOrEqual(25);
        expect(v("ns=3;s=Line4.Speed") as number).toBeLessThanOrEqual(75);
        expect(v("ns=3;i=1001") as number).toBeGreaterThanOrEqual(1000);
        expect(v(`ns=${acme};s=Recipe`)).toBe("RECIPE_NAME");
        expect(typeof v("ns=5;s=Door.Open")).toBe("boolean");
        expect(v("i=2258")).toBeInstanceOf(Date);
        // writes: the oven's setpoint and a writable generated tag; a read-only one refuses
        const w = await c.s.write([
          { nodeId: "ns=2;s=Oven.Setpoint", attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Double, value: 150 } } },
          { nodeId: "ns=3;s=Line4.Trim", attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Double, value: 2.5 } } },
          { nodeId: "ns=3;s=Line4.Speed", attributeId: AttributeIds.Value, value: { value: { dataType: DataType.Double, value: 1 } } },
        ]);
        expect(w.map((s) => s.name)).toEqual(["Good", "Good", "BadNotWritable"]);
        const back = await c.s.read([{ nodeId: "ns=2;s=Oven.Setpoint", attributeId: AttributeIds.Value }, { nodeId: "ns=3;s=Line4.Trim", attributeId: AttributeIds.Value }]);
        expect(back.map((d) => d.value.value)).toEqual([150, 2.5]);
      } finally {
        await c.close();
      }
      // a wrong password is refused
      await expect(session(`opc.tcp://127.0.0.1:${port}/UA/Oven`, { userName: "op", password: "nope" })).rejects.toThrow();
    } finally {
      await run.stop();
    }
  }, 20_000);

  it("a taken port: start rejects with a cause the CLI turns into its port hint, and leaves nothing listening", async () => {
    const taken = createServer();
    const port = await new Promise<number>((resolve) => taken.listen(0, "127.0.0.1", () => resolve((taken.address() as { port: number }).port)));
    try {
      const devices = opcuaDevices(config(port)).filter((d) => opcuaSimulator.accepts(d));
      const err = await opcuaSimulator.start(devices).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(listenHint(err, "change it")).toContain("another program");
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  }, 20_000);

  // The CLI loads configs with the build's drivers: `driver: opcua` validates once the driver is
  // registered (merge of the opcua-driver branch, with `simulator: opcuaSimulator` in its descriptor).
  it("`floorgate simulate` serves the config's OPC UA devices next to Modbus", async () => {
    expect(findDriver("opcua")?.simulator, "drivers/opcua/plugin.ts must carry `simulator: opcuaSimulator`").toBeDefined();
    const port = await freePort();
    const mbPort = await freePort();
    const f = join(dir, "mixed.yaml");
    await writeFile(f, config(port).replace("port: 5020", `port: ${mbPort}`));
    const child = spawn(process.execPath, [join(import.meta.dirname, "..", "..", "bin", "floorgate"), "simulate", "--config", f], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, OVEN_PASS: "pw-1" } });
    let out = "";
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => { out += d.toString(); if (out.includes("Ctrl-C stops the simulators.")) resolve(); });
        child.once("exit", (code) => reject(new Error(`simulate exited ${code}: ${out}`)));
      });
      expect(out).toContain(`simulated press on 127.0.0.1:${mbPort}`);
      expect(out).toContain(`simulated oven-1 on opc.tcp://127.0.0.1:${port}/UA/Oven`);
      expect(out).toContain("not simulated (not an OPC UA server on this machine): remote");
      expect(out).not.toContain("NODE-OPCUA");
      const c = await session(`opc.tcp://127.0.0.1:${port}/UA/Oven`);
      const [dv] = await c.s.read([{ nodeId: "ns=3;s=Line4.Speed", attributeId: AttributeIds.Value }]);
      expect(dv!.statusCode).toBe(StatusCodes.Good);
      await c.close();
    } finally {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
  }, 30_000);
});
