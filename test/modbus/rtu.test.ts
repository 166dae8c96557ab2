/**
 * Modbus RTU over a real serial line: a socat pty pair, our RTU responder on one end answering
 * unit ids 1 and 2, unit 3 silent; three devices share the other end (one serial port, one queue).
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Duplex } from "node:stream";
import { createModbusDriver } from "../../drivers/modbus/index.js";
import { attachRtuResponder } from "../helpers/modbus-servers.js";
import { makeContext, makeDevice } from "./context.js";
import type { ModbusConnection } from "../../drivers/modbus/config.js";

interface SerialPortLike extends Duplex { close(cb?: (err: Error | null) => void): void }
const req = createRequire(createRequire(import.meta.url).resolve("modbus-serial"));
const { SerialPort } = req("serialport") as { SerialPort: new (o: Record<string, unknown>) => SerialPortLike };

let dir: string;
let socat: ChildProcess;
let devEnd: string;
let plcPort: SerialPortLike;
let responder: { readonly requests: number };

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "fg-rtu-"));
  devEnd = path.join(dir, "gateway");
  const plcEnd = path.join(dir, "plc");
  socat = spawn("socat", ["-d", "-d", `pty,raw,echo=0,link=${devEnd}`, `pty,raw,echo=0,link=${plcEnd}`], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  socat.stderr!.on("data", (d: Buffer) => { err += d.toString(); });
  // ready when socat says so (both ptys exist)
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`socat not ready: ${err}`)), 5000);
    socat.once("exit", (c) => { clearTimeout(t); reject(new Error(`socat exited ${c}: ${err}`)); });
    socat.stderr!.on("data", () => { if (/starting data transfer loop/.test(err)) { clearTimeout(t); resolve(); } });
  });
  plcPort = new SerialPort({ path: plcEnd, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => (plcPort as unknown as { open(cb: (e: Error | null) => void): void }).open((e) => (e ? reject(e) : resolve())));
  responder = attachRtuResponder(plcPort, new Set([1, 2]), { register: (u, _a, addr) => u * 1000 + addr, delayMs: 2 });
});

afterAll(async () => {
  await new Promise<void>((r) => plcPort.close(() => r()));
  socat.kill("SIGTERM");
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("RTU over a socat pty pair", () => {
  it("serialport's native bindings load", async () => {
    const bindings = req("@serialport/bindings-cpp") as { autoDetect(): { list(): Promise<unknown[]> } };
    expect(Array.isArray(await bindings.autoDetect().list())).toBe(true);
  });

  it("three unit ids on one line, one silent: the others keep their poll rate within timeout + 10 %", async () => {
    const pollMs = 200;
    const timeoutMs = 100;
    const conn = (unitId: number): ModbusConnection =>
      ({ transport: "rtu", path: devEnd, baudRate: 115200, parity: "none", dataBits: 8, stopBits: 1, unitId, timeoutMs });
    const mk = (id: string, unitId: number) => makeDevice(id, conn(unitId), [
      { name: "a", area: "holding", address: 3, type: "uint16" },
      { name: "f", area: "input", address: 10, type: "uint32", byteOrder: "CDAB" },
    ], { pollMs, reconnectMaxMs: 1000 });
    const devs = [mk("rtu-1", 1), mk("rtu-2", 2), mk("rtu-3", 3)];
    const ctxs = devs.map(() => makeContext());
    const runs = devs.map((d, i) => createModbusDriver(d).run(ctxs[i]!));
    await ctxs[2]!.waitCount("demoted", 1, 3000);
    // polls already queued behind the silent unit's first timeouts finish late; measure from the next tick on
    const t0 = (await ctxs[0]!.waitFor(() => true, 2000, ctxs[0]!.samples.length)).ts + 1;
    await ctxs[0]!.waitFor((s) => s.ts > t0 + 3000, 5000, ctxs[0]!.samples.length);
    for (const [i, c] of ctxs.entries()) { c.controller.abort(); await runs[i]; }

    for (const [i, c] of ctxs.slice(0, 2).entries()) {
      const unit = i + 1;
      const a = c.samples.filter((s) => s.tag === "a" && s.ts >= t0);
      expect(a.filter((s) => !(s.quality === "good" && s.value === unit * 1000 + 3)).map((s) => `${s.quality} ${String(s.value)} ${s.reason}`)).toEqual([]);
      // uint32 CDAB from registers 10 (low word) and 11 (high word)
      expect(c.samples.find((s) => s.tag === "f")?.value).toBe((unit * 1000 + 11) * 65536 + unit * 1000 + 10);
      const gaps = a.slice(1).map((s, k) => s.ts - a[k]!.ts);
      if (process.env.FG_DEBUG) console.log(unit, gaps.join(","), JSON.stringify([...c.counts]));
      expect(Math.max(...gaps)).toBeLessThanOrEqual(pollMs + timeoutMs * 1.1 + 10);
      expect(a.length).toBeGreaterThanOrEqual(13); // ≈ 15 polls in 3 s
      expect(c.state).toBe("online");
    }
    expect(ctxs[2]!.state).toBe("offline");
    expect(responder.requests).toBeGreaterThan(50);
  });
});
