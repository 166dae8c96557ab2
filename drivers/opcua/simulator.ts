/**
 * A simulated OPC UA machine on node-opcua's OPCUAServer, for `floorgate simulate`, `floorgate
 * demo`, the tests and the benchmark: an oven in namespace 2 (`urn:floorgate:sim:oven`) plus, on
 * request, a generated variable for any other NodeId a config names.
 *
 * The oven (every NodeId `ns=2;s=Oven.…`):
 *
 *  NodeId                        type     unit  what
 *  Oven.State                    String   -     Idle → Heating → Baking → Cooling → Idle
 *  Oven.StateCode                Int32    -     0 Idle, 1 Heating, 2 Baking, 3 Cooling
 *  Oven.Setpoint                 Double   degC  writable (0-300); the zones heat towards it
 *  Oven.Zone1..3.Temperature     Double   degC  first-order lag towards setpoint (+ zone offset) or 25 degC, with noise
 *  Oven.Zone1..3.HeaterPower     Double   %     what the heater of the zone draws
 *  Oven.PartCount                UInt32   -     counts up by one at the end of every bake
 *  Oven.Running                  Boolean  -     true while Heating or Baking
 *
 * Analog values carry EngineeringUnits (EUInformation) and an EURange, as AnalogItemType nodes.
 * Server certificates go to a temporary PKI folder removed on stop; any client certificate is
 * accepted (it is a simulator), every security mode and the contract's policies are offered.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DataType,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAServer,
  SecurityPolicy,
  makeEUInformation,
  nodesets,
  setDebugLogger,
  setErrorLogger,
  setWarningLogger,
  standardUnits,
  type AddressSpace,
  type Namespace,
  type UAVariable,
} from "node-opcua";
import { quietNodeOpcua } from "./logging.js";

// node-opcua prints warnings (e.g. [NODE-OPCUA-W27] about PKCS#1 v1.5 on Node 20) and client
// disconnects on the console: a simulator's console is for its own lines. With no OPC UA device
// running in this process, logging.ts drops them; in `floorgate demo` they reach the device's log.
quietNodeOpcua({ setWarningLogger, setErrorLogger, setDebugLogger });

export const OVEN_NAMESPACE = "urn:floorgate:sim:oven";

/** A variable a config asks for that the oven does not have. */
export interface ExtraNode {
  /** as written in the config: `ns=3;s=Line.Speed`, `nsu=urn:x;i=7`, `i=2258` */
  nodeId: string;
  /** the tag's name: its browse name, and a hint for the type (see SIMULATED_OPCUA_VALUES) */
  name: string;
  unit?: string;
  writable?: boolean;
}

export interface OpcuaSimulatorOptions {
  /** where its scratch folder (certificates) is made and removed on stop; default the OS temp directory */
  workDir?: string | undefined;
  /** address to listen on; default 127.0.0.1 */
  host?: string;
  /** host name in the endpoint URLs the server announces; default `host` */
  hostnames?: string[];
  /** 0 (default) picks a free port */
  port?: number;
  /** e.g. `/UA/Oven`; default none */
  resourcePath?: string;
  /** value update period; default 500 ms */
  tickMs?: number;
  extra?: readonly ExtraNode[];
  /** username → password accepted besides anonymous */
  users?: ReadonlyMap<string, string>;
}

export interface OpcuaSimulator {
  port: number;
  /** `opc.tcp://host:port[/path]` */
  endpointUrl: string;
  /** NodeIds of `extra` that are served (by the oven, a standard node or a generated variable) */
  served: string[];
  /** NodeIds of `extra` that could not be (a namespace-0 node the standard nodeset lacks) */
  unserved: string[];
  /** the oven's state now (tests) */
  ovenState(): string;
  stop(): Promise<void>;
}

/** What the generated variables hold, for `floorgate simulate` and the docs. */
export const SIMULATED_OPCUA_VALUES =
  "the oven (ns=2;s=Oven.*) runs Idle → Heating → Baking → Cooling with zone temperatures following Oven.Setpoint (writable); " +
  "any other NodeId gets a variable by its tag's name: …count/total/parts → UInt32 counting up by one a second from 1000; " +
  "…state/status/mode/name/model/recipe → String; …running/alarm/fault/open/on/enabled/active/ready → Boolean toggling every 5-30 s; " +
  "writable tags → a writable Double (0 at start); anything else → Double swinging between 25 and 75.";

// node-opcua makes a variable writable unless told otherwise
const READ_ONLY = { accessLevel: "CurrentRead", userAccessLevel: "CurrentRead" };
const READ_WRITE = { accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite" };

const STATES = ["Idle", "Heating", "Baking", "Cooling"] as const;
type OvenState = (typeof STATES)[number];
const ZONES = 3;
const ZONE_OFFSET = [0, 4, -3];
const AMBIENT = 25;

interface Oven {
  state: OvenState;
  since: number;
  temps: number[];
  parts: number;
}

/** The oven's next state after `dtS` seconds; pure so that the timing is testable and obvious. */
function step(o: Oven, setpoint: number, now: number, dtS: number): number[] {
  const inState = (now - o.since) / 1000;
  const avg = o.temps.reduce((a, b) => a + b, 0) / o.temps.length;
  const go = (s: OvenState): void => { o.state = s; o.since = now; };
  if (o.state === "Idle" && inState >= 5) go("Heating");
  else if (o.state === "Heating" && avg >= setpoint - 5) go("Baking");
  else if (o.state === "Baking" && inState >= 15) { o.parts = (o.parts + 1) >>> 0; go("Cooling"); }
  else if (o.state === "Cooling" && avg <= 60) go("Idle");
  const heating = o.state === "Heating" || o.state === "Baking";
  const power: number[] = [];
  o.temps = o.temps.map((t, z) => {
    const target = heating ? setpoint + ZONE_OFFSET[z]! : AMBIENT;
    const tau = heating ? 6 : 10; // seconds: a brisk oven, so a demo shows a full cycle in about a minute
    power.push(heating ? Math.max(0, Math.min(100, (target - t) * 4 + 30)) : 0);
    return t + (target - t) * (1 - Math.exp(-dtS / tau)) + (Math.random() - 0.5) * 0.4;
  });
  return power;
}

type Kind = "counter" | "string" | "bool" | "setpoint" | "wave";

function kindOf(n: ExtraNode): Kind {
  if (n.writable) return "setpoint";
  const name = n.name.toLowerCase();
  if (/(count|total|parts)/.test(name)) return "counter";
  if (/(state|status|mode|name|model|recipe)/.test(name)) return "string";
  if (/(^|[_.-])(running|alarm|fault|open|on|enabled|active|ready)($|[_.-])/.test(name)) return "bool";
  return "wave";
}

function seedOf(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0) / 2 ** 32;
}

const NODE_ID = /^(?:(?:ns=(\d+)|nsu=([^;]+));)?([isgb])=(.+)$/;

/** The namespace a NodeId lives in, registering simulated ones up to its index; undefined for ns=0. */
function namespaceFor(as: AddressSpace, nodeId: string): { ns: Namespace; id: string } | undefined {
  const m = NODE_ID.exec(nodeId);
  if (!m) return undefined;
  let index: number;
  if (m[2] !== undefined) {
    index = as.getNamespaceIndex(m[2]);
    if (index < 0) index = as.registerNamespace(m[2]).index;
  } else {
    index = m[1] === undefined ? 0 : Number(m[1]);
  }
  if (index === 0) return undefined;
  while (as.getNamespaceArray().length <= index) as.registerNamespace(`urn:floorgate:sim:ns${as.getNamespaceArray().length}`);
  return { ns: as.getNamespace(index) as Namespace, id: `ns=${index};${m[3]}=${m[4]}` };
}

/** Starts the server; resolves once it accepts connections. */
export async function startOpcuaSimulator(opts: OpcuaSimulatorOptions = {}): Promise<OpcuaSimulator> {
  const host = opts.host ?? "127.0.0.1";
  const hostnames = opts.hostnames && opts.hostnames.length > 0 ? opts.hostnames : [host];
  const pki = await mkdtemp(join(opts.workDir ?? tmpdir(), "floorgate-opcua-sim-"));
  const users = opts.users ?? new Map<string, string>();
  let server: OPCUAServer | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const certificates = new OPCUACertificateManager({ rootFolder: join(pki, "pki"), automaticallyAcceptUnknownCertificate: true });
    server = new OPCUAServer({
      host,
      hostname: hostnames[0],
      alternateHostname: hostnames.slice(1),
      port: opts.port ?? 0,
      ...(opts.resourcePath ? { resourcePath: opts.resourcePath } : {}),
      serverCertificateManager: certificates,
      nodeset_filename: [nodesets.standard],
      securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
      securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes128_Sha256_RsaOaep, SecurityPolicy.Aes256_Sha256_RsaPss],
      allowAnonymous: true,
      userManager: { isValidUser: (u: string, p: string) => users.get(u) === p },
      buildInfo: { productName: "Floorgate simulated oven", manufacturerName: "Floorgate" },
    });
    await server.initialize();
    const as = server.engine.addressSpace!;
    const ovenNs = as.registerNamespace(OVEN_NAMESPACE);
    const objects = as.rootFolder.objects;
    const ovenObj = ovenNs.addObject({ organizedBy: objects, browseName: "Oven", nodeId: "s=Oven" });
    const analog = (parent: typeof ovenObj, name: string, id: string, unit: typeof standardUnits.percent, range: [number, number], writable = false): UAVariable =>
      ovenNs.addAnalogDataItem({
        componentOf: parent, browseName: name, nodeId: `s=${id}`, dataType: "Double",
        engineeringUnitsRange: { low: range[0], high: range[1] }, engineeringUnits: unit,
        ...(writable ? READ_WRITE : READ_ONLY),
      });
    const plain = (name: string, id: string, dataType: string): UAVariable =>
      ovenNs.addVariable({ componentOf: ovenObj, browseName: name, nodeId: `s=${id}`, dataType, ...READ_ONLY });
    const state = plain("State", "Oven.State", "String");
    const stateCode = plain("StateCode", "Oven.StateCode", "Int32");
    const setpoint = analog(ovenObj, "Setpoint", "Oven.Setpoint", standardUnits.degree_celsius, [0, 300], true);
    setpoint.setValueFromSource({ dataType: DataType.Double, value: 180 });
    const zones = Array.from({ length: ZONES }, (_, z) => {
      const zone = ovenNs.addObject({ componentOf: ovenObj, browseName: `Zone${z + 1}`, nodeId: `s=Oven.Zone${z + 1}` });
      return {
        temp: analog(zone, "Temperature", `Oven.Zone${z + 1}.Temperature`, standardUnits.degree_celsius, [0, 350]),
        power: analog(zone, "HeaterPower", `Oven.Zone${z + 1}.HeaterPower`, standardUnits.percent, [0, 100]),
      };
    });
    const partCount = plain("PartCount", "Oven.PartCount", "UInt32");
    const running = plain("Running", "Oven.Running", "Boolean");
    const oven: Oven = { state: "Idle", since: Date.now(), temps: ZONE_OFFSET.map(() => AMBIENT), parts: 1000 };

    // Variables for the config's other NodeIds.
    const served: string[] = [];
    const unserved: string[] = [];
    const generated: { v: UAVariable; kind: Kind; seed: number }[] = [];
    let folder: ReturnType<typeof ovenNs.addFolder> | undefined;
    const seen = new Set<string>();
    for (const n of opts.extra ?? []) {
      if (seen.has(n.nodeId)) continue;
      seen.add(n.nodeId);
      const where = namespaceFor(as, n.nodeId);
      if (!where) {
        (as.findNode(n.nodeId) ? served : unserved).push(n.nodeId);
        continue;
      }
      if (as.findNode(where.id)) { served.push(n.nodeId); continue; }
      folder ??= ovenNs.addFolder(objects, { browseName: "Simulated", nodeId: "s=Simulated" });
      const kind = kindOf(n);
      const dataType = kind === "counter" ? "UInt32" : kind === "string" ? "String" : kind === "bool" ? "Boolean" : "Double";
      const common = { organizedBy: folder, browseName: n.name, nodeId: where.id, dataType };
      const rw = kind === "setpoint" ? READ_WRITE : READ_ONLY;
      const v = dataType === "Double" && n.unit !== undefined
        ? where.ns.addAnalogDataItem({ ...common, ...rw, engineeringUnitsRange: { low: 0, high: 100 }, engineeringUnits: makeEUInformation(n.unit, n.unit, n.unit) })
        : where.ns.addVariable({ ...common, ...rw });
      generated.push({ v, kind, seed: seedOf(n.nodeId) });
      served.push(n.nodeId);
    }

    const t0 = Date.now();
    let last = t0;
    const tick = (): void => {
      const now = Date.now();
      const sp = Number(setpoint.readValue().value.value);
      const power = step(oven, Number.isFinite(sp) ? sp : 180, now, (now - last) / 1000);
      last = now;
      state.setValueFromSource({ dataType: DataType.String, value: oven.state });
      stateCode.setValueFromSource({ dataType: DataType.Int32, value: STATES.indexOf(oven.state) });
      zones.forEach((z, i) => {
        z.temp.setValueFromSource({ dataType: DataType.Double, value: Math.round(oven.temps[i]! * 100) / 100 });
        z.power.setValueFromSource({ dataType: DataType.Double, value: Math.round(power[i]! * 10) / 10 });
      });
      partCount.setValueFromSource({ dataType: DataType.UInt32, value: oven.parts });
      running.setValueFromSource({ dataType: DataType.Boolean, value: oven.state === "Heating" || oven.state === "Baking" });
      const s = (now - t0) / 1000;
      for (const g of generated) {
        if (g.kind === "counter") g.v.setValueFromSource({ dataType: DataType.UInt32, value: 1000 + Math.floor(s) });
        else if (g.kind === "bool") g.v.setValueFromSource({ dataType: DataType.Boolean, value: Math.sin((2 * Math.PI * s) / (10 + 50 * g.seed) + g.seed * 7) > 0 });
        else if (g.kind === "wave") g.v.setValueFromSource({ dataType: DataType.Double, value: 50 + 25 * Math.sin((2 * Math.PI * s) / (20 + 40 * g.seed) + g.seed * 11) });
      }
    };
    for (const g of generated) {
      if (g.kind === "string") g.v.setValueFromSource({ dataType: DataType.String, value: g.v.browseName.name!.toUpperCase() });
      if (g.kind === "setpoint") g.v.setValueFromSource({ dataType: DataType.Double, value: 0 });
    }
    tick();
    timer = setInterval(tick, opts.tickMs ?? 500);
    timer.unref();
    await server.start();
    const port = server.endpoints[0]!.port;
    const started = server;
    return {
      port,
      endpointUrl: `opc.tcp://${hostnames[0]!.includes(":") ? `[${hostnames[0]}]` : hostnames[0]}:${port}${opts.resourcePath ? `/${opts.resourcePath.replace(/^\/+/, "")}` : ""}`,
      served,
      unserved,
      ovenState: () => oven.state,
      stop: async () => {
        clearInterval(timer);
        await started.shutdown(0);
        await rm(pki, { recursive: true, force: true });
      },
    };
  } catch (err) {
    clearInterval(timer);
    await server?.shutdown(0).catch(() => undefined);
    await rm(pki, { recursive: true, force: true });
    throw err;
  }
}
