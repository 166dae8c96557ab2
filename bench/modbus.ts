/**
 * Modbus figures: requests/s and registers/s through the driver's own line (framing, transaction
 * check, reply check, decoding) against a pymodbus server, and a bare modbus-serial read loop
 * against the same server in the same run. Both keep one request in flight on one connection.
 */
import ModbusRTU from "modbus-serial";
import { Line } from "../drivers/modbus/line.js";
import { readPdu } from "../drivers/modbus/frame.js";
import { decodeRegisters } from "../drivers/modbus/decode.js";
import { startPymodbus } from "../test/helpers/modbus-servers.js";


async function loopFor(ms: number, step: () => Promise<void>): Promise<{ requests: number; seconds: number }> {
  // short warm-up so neither side pays for JIT or connection setup in the figure
  for (let i = 0; i < 50; i++) await step();
  const t0 = performance.now();
  let requests = 0;
  while (performance.now() - t0 < ms) { await step(); requests++; }
  return { requests, seconds: (performance.now() - t0) / 1000 };
}

/** requests/s of the driver's line and of bare modbus-serial reading `regs` registers per request */
async function compare(port: number, regs: number, ms: number): Promise<{ ours: number; bare: number }> {
  const line = new Line({ kind: "tcp", host: "127.0.0.1", port }, { reconnectMaxMs: 1000 });
  const client = { count: () => {} };
  const tag = { name: "x", area: "holding" as const, type: "uint16" as const, byteOrder: "ABCD" as const };
  // modbus-serial is CommonJS: under NodeNext the default import is module.exports, whose
  // `default` is the client class (modbus-serial sets module.exports.default to itself)
  const bareClient = new ModbusRTU.default();
  await bareClient.connectTCP("127.0.0.1", { port });
  bareClient.setID(1);
  bareClient.setTimeout(1000);
  let sink = 0;
  const ours = { requests: 0, seconds: 0 };
  const bare = { requests: 0, seconds: 0 };
  // alternate short rounds so a busy neighbour on the machine hurts both sides alike
  const rounds = 6;
  for (let i = 0; i < rounds; i++) {
    const a = await loopFor(ms / rounds, async () => {
      const r = await line.request(1, readPdu(3, 0, regs), 1000, client);
      if (r.kind !== "data") throw new Error("bench read failed");
      for (let k = 0; k < regs; k++) sink += decodeRegisters(tag, r.data, k).value as number;
    });
    const b = await loopFor(ms / rounds, async () => {
      const r = await bareClient.readHoldingRegisters(0, regs);
      for (const v of r.data) sink += v;
    });
    ours.requests += a.requests; ours.seconds += a.seconds;
    bare.requests += b.requests; bare.seconds += b.seconds;
  }
  line.close();
  await new Promise<void>((r) => bareClient.close(() => r()));
  if (sink < 0) throw new Error("unreachable");
  return { ours: ours.requests / ours.seconds, bare: bare.requests / bare.seconds };
}

export async function benchModbus(opts: { durationMs?: number } = {}): Promise<Record<string, number>> {
  const ms = opts.durationMs ?? 3000;
  const holding: Record<number, number> = {};
  for (let i = 0; i < 100; i++) holding[i] = i * 3;
  const server = await startPymodbus({ holding });
  try {
    const out: Record<string, number> = {};
    for (const regs of [100, 2]) {
      const r = await compare(server.port, regs, ms);
      const suffix = regs === 100 ? "" : `_${regs}regs`;
      out[`modbus_driver_requests_per_s${suffix}`] = Math.round(r.ours);
      out[`modbus_driver_registers_per_s${suffix}`] = Math.round(r.ours * regs);
      out[`modbus_bare_modbus_serial_requests_per_s${suffix}`] = Math.round(r.bare);
      out[`modbus_bare_modbus_serial_registers_per_s${suffix}`] = Math.round(r.bare * regs);
      out[`modbus_driver_to_bare_ratio${suffix}`] = Math.round((r.ours / r.bare) * 100) / 100;
    }
    return out;
  } finally {
    await server.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  benchModbus().then((r) => { console.log(JSON.stringify(r, null, 2)); }, (e: unknown) => { console.error(e); process.exit(1); });
}
