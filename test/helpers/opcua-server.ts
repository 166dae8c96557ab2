/**
 * A real node-opcua server for tests, on a loopback port, with variables the test controls:
 *   ns=1;s=Counter      UInt32, +1 every `tickMs`
 *   ns=1;s=Temperature  Double AnalogDataItem (EngineeringUnits °C, EURange -100..500), changes every tick
 *   ns=1;s=Setpoint     Double, writable
 *   ns=1;s=Level        Int16, writable
 *   ns=1;s=Running      Boolean, writable
 *   ns=1;s=Name         String
 *   ns=1;s=Quality      Double whose StatusCode the test sets (`setStatus`)
 *   ns=1;s=Array        Double[3]
 *   ns=1;s=Pressure     Double AnalogDataItem (EngineeringUnits bar, EURange 0..1000), 500 until the
 *                       test `set`s it; MinimumSamplingInterval 0 (an item asking 0 gets every change)
 *   ns=1;s=Big          Int64, writable (values as node-opcua holds them: [high, low] 32-bit words)
 *   ns=1;s=UBig         UInt64, writable (idem)
 * `stop`/`start` keep the port, the PKI (so the server certificate) and the values: a restart
 * as a PLC does it. Optional security: SignAndEncrypt/Basic256Sha256 only, with a user manager.
 * Start it once per test file (a start loads the standard nodeset: about a second).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DataType, MessageSecurityMode, OPCUACertificateManager, OPCUAServer, SecurityPolicy, StatusCode, StatusCodes,
  Variant, VariantArrayType, nodesets, setWarningLogger, setErrorLogger, standardUnits, type Namespace, type UAVariable,
} from "node-opcua";
import { freePort } from "./ports.js";

export interface OpcuaServerOptions {
  port?: number;
  /** Only SignAndEncrypt with Basic256Sha256, and only these users (anonymous refused). */
  secure?: { users: { username: string; password: string }[] };
  /** Value change period of Counter and Temperature; default 100 ms. */
  tickMs?: number;
}

export interface OpcuaTestServer {
  readonly port: number;
  readonly endpoint: string;
  /** The server's PKI folder; its own certificate is `<pkiDir>/own/certs/certificate.pem`. */
  readonly pkiDir: string;
  /** Latest values written by clients or set by the test. */
  value(name: string): unknown;
  /** The DataType of the Variant a client last wrote to `name` (a writable variable), if any. */
  writtenType(name: string): DataType | undefined;
  set(name: string, value: unknown): void;
  /** Sets the StatusCode served by ns=1;s=Quality. */
  setStatus(code: StatusCode): void;
  /** Sessions and subscriptions the server engine holds now. */
  sessionCount(): number;
  subscriptionCount(): number;
  /** The sessions the server holds now (an orphan of a network cut included until it times out). */
  sessions(): { id: string; name: string; subscriptions: number }[];
  /** Terminates every subscription on the server behind its clients' backs (as a server under load may); returns how many. */
  dropSubscriptions(): number;
  readonly running: boolean;
  start(): Promise<void>;
  /** Shuts down at once: sessions and channels die, as in a PLC restart. */
  stop(): Promise<void>;
  dispose(): Promise<void>;
}

let quieted = false;
/** node-opcua prints to the console; tests keep their output readable. */
function quiet(): void {
  if (quieted) return;
  quieted = true;
  setWarningLogger(() => undefined);
  setErrorLogger(() => undefined);
}

export async function startOpcuaServer(opts: OpcuaServerOptions = {}): Promise<OpcuaTestServer> {
  quiet();
  const port = opts.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), "floorgate-opcua-srv-"));
  const pkiDir = join(dir, "pki");
  const tickMs = opts.tickMs ?? 100;
  const values = new Map<string, unknown>([
    ["Counter", 0], ["Temperature", 20.5], ["Setpoint", 180], ["Level", 7], ["Running", true], ["Name", "oven-1"], ["Quality", 1.5],
    ["Pressure", 500], ["Big", [0, 0]], ["UBig", [0, 0]],
  ]);
  /** the DataType of the last Variant a client wrote, per variable */
  const written = new Map<string, DataType>();
  let status: StatusCode = StatusCodes.UncertainLastUsableValue;
  let server: OPCUAServer | undefined;
  let timer: NodeJS.Timeout | undefined;
  const vars = new Map<string, UAVariable>();

  const push = (name: string): void => {
    const v = vars.get(name);
    const dt = { Counter: DataType.UInt32, Temperature: DataType.Double, Pressure: DataType.Double }[name as "Counter"];
    if (v && dt !== undefined) v.setValueFromSource(new Variant({ dataType: dt, value: values.get(name) }), StatusCodes.Good);
  };

  const pushQuality = (): void => {
    vars.get("Quality")?.setValueFromSource(new Variant({ dataType: DataType.Double, value: values.get("Quality") }), status);
  };

  const build = (ns: Namespace, objects: Parameters<Namespace["addObject"]>[0]["organizedBy"]): void => {
    const device = ns.addObject({ organizedBy: objects, browseName: "Oven" });
    const rw = (name: string, dataType: DataType, writable: boolean): void => {
      const v = ns.addVariable({
        componentOf: device, browseName: name, nodeId: `s=${name}`, dataType: DataType[dataType],
        accessLevel: writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
        userAccessLevel: writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
        value: {
          // Scalar said: node-opcua cannot tell an Int64's [high, low] from an array by itself
          get: () => new Variant({ dataType, arrayType: VariantArrayType.Scalar, value: values.get(name) }),
          set: (variant: Variant) => { values.set(name, variant.value); written.set(name, variant.dataType); return StatusCodes.Good; },
        },
      });
      vars.set(name, v);
    };
    const counter = ns.addVariable({ componentOf: device, browseName: "Counter", nodeId: "s=Counter", dataType: "UInt32", value: new Variant({ dataType: DataType.UInt32, value: values.get("Counter") }) });
    vars.set("Counter", counter);
    const temp = ns.addAnalogDataItem({
      componentOf: device, browseName: "Temperature", nodeId: "s=Temperature", dataType: "Double",
      engineeringUnits: standardUnits.degree_celsius, engineeringUnitsRange: { low: -100, high: 500 },
      value: new Variant({ dataType: DataType.Double, value: values.get("Temperature") }),
    });
    vars.set("Temperature", temp);
    rw("Setpoint", DataType.Double, true);
    rw("Level", DataType.Int16, true);
    rw("Running", DataType.Boolean, true);
    rw("Name", DataType.String, false);
    rw("Big", DataType.Int64, true);
    rw("UBig", DataType.UInt64, true);
    const pressure = ns.addAnalogDataItem({
      componentOf: device, browseName: "Pressure", nodeId: "s=Pressure", dataType: "Double", minimumSamplingInterval: 0,
      engineeringUnits: standardUnits.bar, engineeringUnitsRange: { low: 0, high: 1000 },
      value: new Variant({ dataType: DataType.Double, value: values.get("Pressure") }),
    });
    vars.set("Pressure", pressure);
    const q = ns.addVariable({ componentOf: device, browseName: "Quality", nodeId: "s=Quality", dataType: "Double" });
    vars.set("Quality", q);
    pushQuality();
    ns.addVariable({
      componentOf: device, browseName: "Array", nodeId: "s=Array", dataType: "Double", valueRank: 1, arrayDimensions: [3],
      value: new Variant({ dataType: DataType.Double, arrayType: VariantArrayType.Array, value: new Float64Array([1, 2.5, 3]) }),
    });
  };

  const start = async (): Promise<void> => {
    if (server) return;
    const cm = new OPCUACertificateManager({ rootFolder: pkiDir, automaticallyAcceptUnknownCertificate: true, disableFileWatchers: true });
    await cm.initialize();
    const s = new OPCUAServer({
      port,
      hostname: "127.0.0.1",
      nodeset_filename: [nodesets.standard],
      serverCertificateManager: cm,
      serverInfo: { applicationUri: `urn:floorgate-test-server-${port}`, applicationName: { text: "floorgate test server" } },
      ...(opts.secure
        ? {
          securityModes: [MessageSecurityMode.SignAndEncrypt],
          securityPolicies: [SecurityPolicy.Basic256Sha256],
          allowAnonymous: false,
          userManager: { isValidUser: (u: string, p: string) => opts.secure!.users.some((x) => x.username === u && x.password === p) },
        }
        : { securityModes: [MessageSecurityMode.None], securityPolicies: [SecurityPolicy.None], allowAnonymous: true }),
    });
    await s.initialize();
    const ns = s.engine.addressSpace!.getOwnNamespace();
    build(ns, s.engine.addressSpace!.rootFolder.objects);
    await s.start();
    server = s;
    timer = setInterval(() => {
      values.set("Counter", (values.get("Counter") as number) + 1);
      values.set("Temperature", Math.round((20 + 5 * Math.sin(Date.now() / 1000)) * 1000) / 1000);
      push("Counter");
      push("Temperature");
    }, tickMs);
  };

  const stop = async (): Promise<void> => {
    const s = server;
    if (!s) return;
    server = undefined;
    if (timer) clearInterval(timer);
    vars.clear();
    await s.shutdown(0);
    await s.serverCertificateManager.dispose().catch(() => undefined);
  };

  await start();
  return {
    port,
    endpoint: `opc.tcp://127.0.0.1:${port}`,
    pkiDir,
    value: (name) => values.get(name),
    writtenType: (name) => written.get(name),
    set: (name, value) => { values.set(name, value); push(name); },
    setStatus: (code) => { status = code; pushQuality(); },
    sessionCount: () => server?.engine.currentSessionCount ?? 0,
    subscriptionCount: () => server?.engine.currentSubscriptionCount ?? 0,
    sessions: () => (server?.engine.getSessions() ?? []).map((sess) => ({
      id: sess.nodeId.toString(), name: String(sess.sessionName), subscriptions: sess.currentSubscriptionCount,
    })),
    dropSubscriptions: () => {
      let n = 0;
      for (const sess of server?.engine.getSessions() ?? []) {
        for (const sub of [...sess.publishEngine.subscriptions]) { sub.terminate(); n++; }
      }
      return n;
    },
    get running() { return server !== undefined; },
    start,
    stop,
    dispose: async () => { await stop(); await rm(dir, { recursive: true, force: true }); },
  };
}
