/**
 * A node-opcua server for the OPC UA benchmark, run as a child process (its CPU is not the
 * measured client's): `node bench/opcua-server.js <variables> <periodMs>` serves Double variables
 * `ns=1;s=v<i>` (i = 0 … variables-1) that all change every periodMs, prints `port <n>` when it
 * accepts connections and then `offered <changes> <cpuSeconds>` every second. SIGTERM stops it.
 *
 * Why it is built this way (the first version offered only ~33–37k of the 100k changes/s asked
 * for, at one saturated core):
 * - **Event-driven, not sampled.** The variables' MinimumSamplingInterval is 0 and the server
 *   advertises MinSupportedSampleRate 0, so a client asking for samplingInterval 0 gets every
 *   change pushed from the variable's `value_changed` event. A sampled item (interval > 0) costs a
 *   timer slot, a setImmediate and a read per item per interval whether the value changed or not,
 *   and sampling at the change period itself aliases: timer jitter makes some samples see the same
 *   value twice (no notification) and some see two changes at once (one lost).
 * - **No per-write machinery.** setValueFromSource coerces and verifies the Variant twice, clones
 *   the old DataValue, compares and clones again before it emits. Here each variable is bound to a
 *   DataValue of our own (`timestamped_get`, so Reads and initial values see it); a change sets its
 *   value and timestamps in place and emits `value_changed` with it, which is what node-opcua's own
 *   touchValue does. The monitored item clones what it queues, so the in-place update is safe.
 * - **Catch-up ticks.** On a loaded machine a 100 ms timer fires late; each tick applies every
 *   period that has passed (at most 5, so a stall does not burst past the items' queues), so the
 *   offered rate holds while the process gets CPU at all, and `offered` counts what was really
 *   offered so the bench reports it rather than assuming it.
 * - **Bigger publish messages.** node-opcua caps a NotificationMessage at 1,000 notifications
 *   (Subscription.maxNotificationPerPublishHighLimit); 100k/s would need 100 Publish round trips a
 *   second per session. The cap is raised to 10,000 here (a client asking for
 *   maxNotificationsPerPublish 0 gets the server's maximum).
 */
import { DataType, DataValue, OPCUAServer, StatusCodes, Subscription, Variant, nodesets, setErrorLogger, setWarningLogger, type UAVariable } from "node-opcua";

setWarningLogger(() => undefined);
setErrorLogger(() => undefined);

const count = Number(process.argv[2] ?? 10_000);
const periodMs = Number(process.argv[3] ?? 100);
const MAX_CATCH_UP = 5;

(Subscription as unknown as { maxNotificationPerPublishHighLimit: number }).maxNotificationPerPublishHighLimit = 10_000;
const server = new OPCUAServer({
  port: 0, host: "127.0.0.1", hostname: "127.0.0.1", nodeset_filename: [nodesets.standard],
  maxConnectionsPerEndpoint: 20, maxAllowedSessionNumber: 20,
  serverCapabilities: { minSupportedSampleRate: 0, maxMonitoredItemsPerSubscription: 100_000, maxMonitoredItems: 1_000_000 },
});
await server.initialize();
const as = server.engine.addressSpace!;
const ns = as.getOwnNamespace();
const folder = ns.addFolder(as.rootFolder.objects, { browseName: "Bench" });
const vars: UAVariable[] = [];
const values: DataValue[] = [];
const t0 = new Date();
for (let i = 0; i < count; i++) {
  const v = ns.addVariable({ organizedBy: folder, browseName: `v${i}`, nodeId: `s=v${i}`, dataType: "Double", minimumSamplingInterval: 0, accessLevel: "CurrentRead", userAccessLevel: "CurrentRead" });
  const dv = new DataValue({ value: new Variant({ dataType: DataType.Double, value: i / 1e6 }), statusCode: StatusCodes.Good, sourceTimestamp: t0, serverTimestamp: t0 });
  values.push(dv);
  v.bindVariable({ timestamped_get: () => dv }, true);
  vars.push(v);
}

let n = 0;
let offered = 0;
const start = Date.now();
function change(): void {
  n++;
  const now = new Date();
  for (let i = 0; i < vars.length; i++) {
    const dv = values[i]!;
    (dv.value as Variant).value = n + i / 1e6;
    dv.sourceTimestamp = now;
    dv.serverTimestamp = now;
    vars[i]!.emit("value_changed", dv);
  }
  offered += vars.length;
}
const timer = setInterval(() => {
  const due = Math.floor((Date.now() - start) / periodMs);
  if (due - n > MAX_CATCH_UP) n = due - MAX_CATCH_UP; // periods skipped, not offered
  while (n < due) change();
}, periodMs);
await server.start();
process.stdout.write(`port ${server.endpoints[0]!.port}\n`);
const report = setInterval(() => {
  const c = process.cpuUsage();
  process.stdout.write(`offered ${offered} ${((c.user + c.system) / 1e6).toFixed(3)}\n`);
}, 1000);
process.on("SIGTERM", () => { clearInterval(timer); clearInterval(report); void server.shutdown(0).then(() => process.exit(0)); });
