/**
 * `floorgate simulate` for OPC UA: the driver descriptor's `simulator` (drivers/opcua/plugin.ts
 * adds `simulator: opcuaSimulator`). Every OPC UA device whose endpoint host is this machine is
 * served by a simulated oven (simulator.ts) on its endpoint's port and path, with a variable for
 * every NodeId its tags name; devices sharing a port share one server. The server module (and so
 * the server half of node-opcua) is imported by `start` only: driver threads load this file.
 */
import type { DriverSimulator, SimulatorRun } from "../../src/core/plugin.js";
import { isLoopback } from "../../src/core/net.js";
import type { OpcuaDeviceConfig } from "./config.js";
import type { ExtraNode, OpcuaSimulator } from "./simulator.js";

/** host, port and path of an `opc.tcp://` endpoint; undefined when it is not one. */
export function endpointParts(endpoint: string): { host: string; port: number; path: string } | undefined {
  try {
    const u = new URL(endpoint);
    if (u.protocol !== "opc.tcp:" || u.hostname === "") return undefined;
    const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
    return { host, port: u.port === "" ? 4840 : Number(u.port), path: u.pathname === "/" ? "" : u.pathname };
  } catch {
    return undefined;
  }
}

interface Group {
  bind: string;
  hostnames: string[];
  port: number;
  path: string;
  devices: OpcuaDeviceConfig[];
  extra: ExtraNode[];
  users: Map<string, string>;
}

/** The accepted devices grouped by port: one simulated server each. */
export function simulatedServers(devices: readonly OpcuaDeviceConfig[]): Group[] {
  const byPort = new Map<number, Group>();
  for (const d of devices) {
    const e = endpointParts(d.connection.endpoint);
    if (!e) continue;
    // "localhost" listens on 127.0.0.1, as the Modbus simulator does; the URL keeps its name.
    const bind = e.host === "localhost" ? "127.0.0.1" : e.host;
    let g = byPort.get(e.port);
    if (!g) { g = { bind, hostnames: [], port: e.port, path: e.path, devices: [], extra: [], users: new Map() }; byPort.set(e.port, g); }
    if (!g.hostnames.includes(e.host)) g.hostnames.push(e.host);
    g.devices.push(d);
    for (const t of d.tags) g.extra.push({ nodeId: t.nodeId, name: t.name, ...(t.unit === undefined ? {} : { unit: t.unit }), writable: t.writable });
    if (d.connection.username !== undefined) g.users.set(d.connection.username, d.connection.password ?? "");
  }
  return [...byPort.values()];
}

export const opcuaSimulator: DriverSimulator<OpcuaDeviceConfig> = {
  serves: "OPC UA server on this machine",
  where: "endpoint host 127.0.0.1, ::1 or localhost",
  accepts: (d) => {
    const e = endpointParts(d.connection.endpoint);
    return e !== undefined && isLoopback(e.host);
  },
  start: async (devices, opts): Promise<SimulatorRun> => {
    const { startOpcuaSimulator, SIMULATED_OPCUA_VALUES } = await import("./simulator.js");
    const started: OpcuaSimulator[] = [];
    const served: string[] = [];
    const notes: string[] = [];
    try {
      for (const g of simulatedServers(devices)) {
        const sim = await startOpcuaSimulator({ workDir: opts?.workDir, host: g.bind, hostnames: g.hostnames, port: g.port, resourcePath: g.path, extra: g.extra, users: g.users });
        started.push(sim);
        for (const d of g.devices) {
          const missing = d.tags.filter((t) => sim.unserved.includes(t.nodeId)).length;
          served.push(`simulated ${d.id} on ${sim.endpointUrl} (OPC UA oven, ${d.tags.length - missing} of ${d.tags.length} NodeIds served)`);
        }
        if (sim.unserved.length > 0) notes.push(`not served on port ${g.port} (namespace 0 has no such node): ${sim.unserved.join(", ")}`);
        const paths = new Set(g.devices.map((d) => endpointParts(d.connection.endpoint)!.path));
        if (paths.size > 1) notes.push(`port ${g.port} serves one path (${g.path || "/"}); devices there name ${[...paths].map((p) => p || "/").join(", ")}`);
      }
    } catch (err) {
      await Promise.all(started.map((s) => s.stop()));
      throw err;
    }
    notes.push(`OPC UA values: ${SIMULATED_OPCUA_VALUES}`);
    return { served, notes, stop: async () => { await Promise.all(started.map((s) => s.stop())); } };
  },
};
