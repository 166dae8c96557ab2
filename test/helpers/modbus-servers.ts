/**
 * Real Modbus servers for the driver's tests and bench:
 * - `startPymodbus`: the independent pymodbus 3.0 TCP server (Debian python3-pymodbus);
 * - `startServerTcp`: modbus-serial's ServerTCP, in process;
 * - `startFaultServer`: a small Modbus TCP server of our own whose every reply can be delayed,
 *   dropped or turned into an exception, and which can be restarted on the same port;
 * - `attachRtuResponder`: the same model answering RTU frames on any byte stream (a socat pty).
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Duplex } from "node:stream";
import ModbusRTU from "modbus-serial";
import { crc16, mbapFrame } from "../../drivers/modbus/frame.js";
import { onMbapRequests } from "./mbap.js";
import { freePort } from "./ports.js";

export type Area = "holding" | "input" | "coil" | "discrete";

/** Register/bit images by area, sparse; missing addresses read as `fill(area, address)`. */
export interface RegisterImage {
  holding?: Record<number, number>;
  input?: Record<number, number>;
  coil?: Record<number, number>;
  discrete?: Record<number, number>;
}

/** One free-port helper for every server: ports.ts (re-exported for the callers that import it from here). */
export { freePort };

/** Resolves once a TCP connect to `port` succeeds; rejects loudly after `ms`. */
export async function waitForPort(port: number, ms = 10_000, describe = ""): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: "127.0.0.1", port });
      s.once("connect", () => { s.destroy(); resolve(true); });
      s.once("error", () => { s.destroy(); resolve(false); });
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`server on port ${port} never became ready ${describe}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RunningServer {
  port: number;
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** The script sits beside this file in the source tree; from a build under dist/ look back into it. */
function pymodbusScript(): string {
  const candidates = [path.join(here, "pymodbus_server.py"), path.join(here, "../../../test/helpers/pymodbus_server.py"), path.resolve("test/helpers/pymodbus_server.py")];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error(`pymodbus_server.py not found (looked in ${candidates.join(", ")})`);
  return found;
}

/** Starts the pymodbus server with `image`; holding/input 0..size-1 exist, the rest answer exception 2. */
export async function startPymodbus(image: RegisterImage, size = 1000): Promise<RunningServer & { proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn("/usr/bin/python3", [pymodbusScript(), String(port), JSON.stringify({ size, ...image })], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  await Promise.race([
    waitForPort(port, 15_000, "(pymodbus)"),
    exited.then(() => { throw new Error(`pymodbus server exited: ${stderr}`); }),
  ]);
  return {
    port, proc,
    stop: async () => {
      if (proc.exitCode === null) { proc.kill("SIGTERM"); await exited; }
    },
  };
}

/** Starts modbus-serial's ServerTCP serving `image` for every unit id; addresses ≥ size answer exception 2. */
export async function startServerTcp(image: RegisterImage, size = 1000): Promise<RunningServer & { image: Required<RegisterImage> }> {
  const port = await freePort();
  const img: Required<RegisterImage> = { holding: { ...image.holding }, input: { ...image.input }, coil: { ...image.coil }, discrete: { ...image.discrete } };
  const check = (addr: number): void => {
    if (addr >= size) throw Object.assign(new Error("illegal address"), { modbusErrorCode: 2 });
  };
  const vector = {
    getHoldingRegister: (a: number) => { check(a); return img.holding[a] ?? 0; },
    getInputRegister: (a: number) => { check(a); return img.input[a] ?? 0; },
    getCoil: (a: number) => { check(a); return (img.coil[a] ?? 0) !== 0; },
    getDiscreteInput: (a: number) => { check(a); return (img.discrete[a] ?? 0) !== 0; },
    setRegister: (a: number, v: number) => { check(a); img.holding[a] = v; },
    setCoil: (a: number, v: boolean) => { check(a); img.coil[a] = v ? 1 : 0; },
  };
  const server = new ModbusRTU.ServerTCP(vector, { host: "127.0.0.1", port, unitID: 255 });
  server.on("socketError", () => {});
  await waitForPort(port, 5000, "(ServerTCP)");
  return { port, image: img, stop: () => new Promise<void>((r) => server.close(() => r())) };
}

/** What the fault server does with one request. */
export type Behaviour = "answer" | "silent" | { lateMs: number } | { exception: number };

export interface FaultRequest {
  unitId: number;
  fc: number;
  start: number;
  count: number;
  /** 1-based count of requests seen by this server */
  n: number;
}

export interface FaultServerOptions {
  /** register value at an address; default: the address itself (so a mismatch is detectable) */
  register?: (unitId: number, area: Area, address: number) => number;
  behave?: (req: FaultRequest) => Behaviour;
  port?: number;
}

/** Shared request model: answers one PDU for a unit, or returns an exception code. */
export function answerPdu(
  pdu: Buffer, unitId: number, register: (unitId: number, area: Area, address: number) => number,
  writes: Map<string, number>,
): Buffer {
  const fc = pdu[0]!;
  const exc = (code: number): Buffer => Buffer.from([fc | 0x80, code]);
  if (pdu.length < 5) return exc(3);
  const start = pdu.readUInt16BE(1);
  const count = pdu.readUInt16BE(3);
  const value = (area: Area, a: number): number => writes.get(`${unitId}/${area}/${a}`) ?? register(unitId, area, a);
  switch (fc) {
    case 1: case 2: {
      if (count < 1 || count > 2000) return exc(3);
      const area: Area = fc === 1 ? "coil" : "discrete";
      const bytes = Math.ceil(count / 8);
      const out = Buffer.alloc(2 + bytes);
      out[0] = fc; out[1] = bytes;
      for (let i = 0; i < count; i++) if (value(area, start + i)) out[2 + (i >> 3)]! |= 1 << (i & 7);
      return out;
    }
    case 3: case 4: {
      if (count < 1 || count > 125) return exc(3);
      const area: Area = fc === 3 ? "holding" : "input";
      const out = Buffer.alloc(2 + count * 2);
      out[0] = fc; out[1] = count * 2;
      for (let i = 0; i < count; i++) {
        const v = value(area, start + i);
        if (v < 0) return exc(2);
        out.writeUInt16BE(v & 0xffff, 2 + i * 2);
      }
      return out;
    }
    case 5: writes.set(`${unitId}/coil/${start}`, count === 0xff00 ? 1 : 0); return Buffer.from(pdu.subarray(0, 5));
    case 6: writes.set(`${unitId}/holding/${start}`, count); return Buffer.from(pdu.subarray(0, 5));
    case 16: {
      for (let i = 0; i < count; i++) writes.set(`${unitId}/holding/${start + i}`, pdu.readUInt16BE(6 + i * 2));
      return Buffer.from(pdu.subarray(0, 5));
    }
    default: return exc(1);
  }
}

export interface FaultServer extends RunningServer {
  /** requests received so far */
  readonly requests: number;
  /** sockets currently open on the server side */
  readonly openSockets: number;
  /** values written by clients, keyed `unit/area/address` */
  readonly writes: Map<string, number>;
  /** stop listening and drop every connection, then listen again on the same port */
  restart(): Promise<void>;
  setBehaviour(b: (req: FaultRequest) => Behaviour): void;
}

/** Our own Modbus TCP server with per-request fault injection. */
export async function startFaultServer(opts: FaultServerOptions = {}): Promise<FaultServer> {
  const register = opts.register ?? ((_u, _a, addr) => addr);
  let behave = opts.behave ?? (() => "answer" as Behaviour);
  const writes = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let n = 0;
  const port = opts.port ?? (await freePort());
  let server: net.Server;

  const onConnection = (sock: net.Socket): void => {
    sockets.add(sock);
    sock.setNoDelay(true);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    onMbapRequests(sock, ({ tid, unitId, pdu }) => {
      const req: FaultRequest = { unitId, fc: pdu[0]!, start: pdu.readUInt16BE(1), count: pdu.readUInt16BE(3), n: ++n };
      const b = behave(req);
      if (b === "silent") return;
      const replyPdu = typeof b === "object" && "exception" in b ? Buffer.from([pdu[0]! | 0x80, b.exception]) : answerPdu(pdu, unitId, register, writes);
      const frame = mbapFrame(tid, unitId, replyPdu);
      if (typeof b === "object" && "lateMs" in b) {
        const t = setTimeout(() => { timers.delete(t); if (!sock.destroyed) sock.write(frame); }, b.lateMs);
        timers.add(t);
      } else {
        sock.write(frame);
      }
    });
  };

  const listen = (): Promise<void> => new Promise((resolve, reject) => {
    server = net.createServer(onConnection);
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const close = (): Promise<void> => new Promise((resolve) => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
  await listen();
  return {
    port,
    get requests() { return n; },
    get openSockets() { return sockets.size; },
    writes,
    setBehaviour: (b) => { behave = b; },
    restart: async () => { await close(); await listen(); },
    stop: close,
  };
}

/**
 * Answers RTU requests arriving on `stream` for the unit ids in `units` (others stay silent, as on
 * a real bus). `delayMs` models a device's turnaround.
 */
export function attachRtuResponder(
  stream: Duplex, units: Set<number>, opts: { register?: (unitId: number, area: Area, address: number) => number; delayMs?: number } = {},
): { readonly requests: number } {
  const register = opts.register ?? ((_u, _a, addr) => addr);
  const writes = new Map<string, number>();
  let rx: Buffer = Buffer.alloc(0);
  let n = 0;
  stream.on("data", (chunk: Buffer) => {
    rx = rx.length ? Buffer.concat([rx, chunk]) : chunk;
    while (rx.length >= 8) {
      const fc = rx[1]!;
      const len = fc === 15 || fc === 16 ? 9 + (rx[6] ?? 0) : 8;
      if (rx.length < len) return;
      if (crc16(rx, 0, len - 2) !== rx.readUInt16LE(len - 2)) { rx = rx.subarray(1); continue; }
      const unitId = rx[0]!;
      const pdu = Buffer.from(rx.subarray(1, len - 2));
      rx = rx.subarray(len);
      n++;
      if (!units.has(unitId)) continue;
      const reply = answerPdu(pdu, unitId, register, writes);
      const frame = Buffer.alloc(reply.length + 3);
      frame[0] = unitId;
      reply.copy(frame, 1);
      frame.writeUInt16LE(crc16(frame, 0, reply.length + 1), reply.length + 1);
      if (opts.delayMs) setTimeout(() => stream.write(frame), opts.delayMs); else stream.write(frame);
    }
  });
  return { get requests() { return n; } };
}
