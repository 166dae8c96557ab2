/**
 * A node-opcua server for the OPC UA benchmark, run as a child process (its CPU is not the
 * measured client's): `tsx bench/opcua-server.ts <variables> <periodMs>` serves Double variables
 * `ns=1;s=v<i>` (i = 0 … variables-1) that all change every periodMs, and prints `port <n>` when
 * it accepts connections. SIGTERM stops it.
 */
import { DataType, OPCUAServer, nodesets, setErrorLogger, setWarningLogger, type UAVariable } from "node-opcua";

setWarningLogger(() => undefined);
setErrorLogger(() => undefined);

const count = Number(process.argv[2] ?? 10_000);
const periodMs = Number(process.argv[3] ?? 100);
const server = new OPCUAServer({ port: 0, host: "127.0.0.1", hostname: "127.0.0.1", nodeset_filename: [nodesets.standard], maxConnectionsPerEndpoint: 20, maxAllowedSessionNumber: 20 });
await server.initialize();
const as = server.engine.addressSpace!;
const ns = as.getOwnNamespace();
const folder = ns.addFolder(as.rootFolder.objects, { browseName: "Bench" });
const vars: UAVariable[] = [];
for (let i = 0; i < count; i++) {
  vars.push(ns.addVariable({ organizedBy: folder, browseName: `v${i}`, nodeId: `s=v${i}`, dataType: "Double", minimumSamplingInterval: 50, accessLevel: "CurrentRead", userAccessLevel: "CurrentRead" }));
}
let n = 0;
const timer = setInterval(() => {
  n++;
  for (let i = 0; i < vars.length; i++) vars[i]!.setValueFromSource({ dataType: DataType.Double, value: n + i / 1e6 });
}, periodMs);
await server.start();
process.stdout.write(`port ${server.endpoints[0]!.port}\n`);
process.on("SIGTERM", () => { clearInterval(timer); void server.shutdown(0).then(() => process.exit(0)); });
