/**
 * The driver conformance suite against the Modbus driver: over TCP with modbus-serial's ServerTCP
 * (stopped and started again on the same port for the reconnect case), and over RTU on a socat
 * pty pair with the RTU responder of test/helpers (taken off the line for the reconnect case).
 * Servers start once per file; a silent TCP server (accepts, never answers) serves the timeout case.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Duplex } from "node:stream";
import ModbusRTU from "modbus-serial";
import { createModbusDriver } from "../../drivers/modbus/index.js";
import type { ModbusConnection, ModbusDeviceConfig } from "../../drivers/modbus/config.js";
import type { DeviceConfig } from "../../src/config/types.js";
import { attachRtuResponder, waitForPort } from "../helpers/modbus-servers.js";
import { freePort, startSilentServer } from "../helpers/ports.js";
import { driverConformance, type ConformanceFixture } from "./driver-conformance.js";

const driver = (cfg: DeviceConfig) => createModbusDriver(cfg as ModbusDeviceConfig);

/** Short timeouts: a lost server shows within a second or two, a returned one within reconnectMaxMs + a poll. */
function modbusDevice(id: string, connection: ModbusConnection): ModbusDeviceConfig {
  return {
    id, driver: "modbus", disabled: false, reconnectMaxMs: 500, pollMs: 100, maxGap: 8, tagByTag: false, maxTimeouts: 2,
    connection,
    tags: [
      { name: "speed", area: "holding", address: 0, type: "uint16", byteOrder: "ABCD", scale: 1, offset: 0, writable: false },
      { name: "temp", area: "input", address: 1, type: "int16", byteOrder: "ABCD", scale: 1, offset: 0, writable: false },
      { name: "run", area: "coil", address: 2, type: "bool", byteOrder: "ABCD", scale: 1, offset: 0, writable: false },
    ],
  };
}

// ---- TCP: modbus-serial ServerTCP ----

type ServerTcp = InstanceType<typeof ModbusRTU.ServerTCP> & { socks: Map<net.Socket, number> };

function tcpFixture(): ConformanceFixture {
  let port = 0;
  let server: ServerTcp | undefined;
  let silent: { port: number; stop(): Promise<void> } | undefined;
  const vector = {
    getHoldingRegister: (a: number) => 100 + a,
    getInputRegister: (a: number) => 200 + a,
    getCoil: (a: number) => a % 2 === 0,
    getDiscreteInput: () => false,
    setRegister: () => undefined,
    setCoil: () => undefined,
  };
  const up = async (): Promise<void> => {
    const s = new ModbusRTU.ServerTCP(vector, { host: "127.0.0.1", port, unitID: 255 }) as ServerTcp;
    s.on("socketError", () => undefined);
    await new Promise<void>((resolve, reject) => {
      s.once("initialized", () => resolve());
      s.once("serverError", reject);
    });
    server = s;
  };
  const down = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };
  return {
    async start() {
      port = await freePort();
      await up();
      await waitForPort(port, 5000, "(ServerTCP)");
      // waitForPort's probe connection: gone from the server's side before the suite counts.
      for (let i = 0; i < 100 && (server?.socks.size ?? 0) > 0; i++) await new Promise((r) => setTimeout(r, 20));
      silent = await startSilentServer();
    },
    async stop() {
      await down();
      await silent?.stop();
    },
    breakServer: down,
    async restore() {
      if (!server) await up();
    },
    device: (id) => modbusDevice(id, { transport: "tcp", host: "127.0.0.1", port, unitId: 1, timeoutMs: 200 }),
    silentDevice: (id) => modbusDevice(id, { transport: "tcp", host: "127.0.0.1", port: silent!.port, unitId: 1, timeoutMs: 200 }),
    openConnections: () => server?.socks.size ?? 0,
    timing: { lossMs: 5_000, returnMs: 5_000 },
  };
}

driverConformance("modbus over TCP (modbus-serial ServerTCP)", driver, tcpFixture());

// ---- RTU: a socat pty pair, our RTU responder on the far end ----

interface SerialPortLike extends Duplex { open(cb: (err: Error | null) => void): void; close(cb?: (err: Error | null) => void): void }
const req = createRequire(createRequire(import.meta.url).resolve("modbus-serial"));
const { SerialPort } = req("serialport") as { SerialPort: new (o: Record<string, unknown>) => SerialPortLike };

function rtuFixture(): ConformanceFixture {
  let dir = "";
  let socat: ChildProcess | undefined;
  let plc: SerialPortLike | undefined;
  let devEnd = "";
  /** false while the "server" is away: requests reaching the far end are dropped unanswered */
  let answering = true;
  return {
    async start() {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "fg-conf-rtu-"));
      devEnd = path.join(dir, "gateway");
      const plcEnd = path.join(dir, "plc");
      const proc = spawn("socat", ["-d", "-d", `pty,raw,echo=0,link=${devEnd}`, `pty,raw,echo=0,link=${plcEnd}`], { stdio: ["ignore", "ignore", "pipe"] });
      socat = proc;
      let err = "";
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`socat not ready: ${err}`)), 5000);
        proc.once("error", (e) => { clearTimeout(t); reject(e); });
        proc.once("exit", (c) => { clearTimeout(t); reject(new Error(`socat exited ${c}: ${err}`)); });
        proc.stderr!.on("data", (d: Buffer) => {
          err += d.toString();
          if (/starting data transfer loop/.test(err)) { clearTimeout(t); resolve(); }
        });
      });
      const port = new SerialPort({ path: plcEnd, baudRate: 115200, autoOpen: false });
      await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
      plc = port;
      // The responder sees the line through a gate: closed, requests vanish as on a dead bus.
      const gate = new Duplex({
        read() {},
        write(chunk: Buffer, _enc, cb) { port.write(chunk); cb(); },
      });
      port.on("data", (d: Buffer) => { if (answering) gate.push(d); });
      attachRtuResponder(gate, new Set([1]), { register: (_u, _a, addr) => 100 + addr, delayMs: 1 });
    },
    async stop() {
      if (plc) await new Promise<void>((r) => plc!.close(() => r()));
      socat?.kill("SIGTERM");
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
    async breakServer() { answering = false; },
    async restore() { answering = true; },
    device: (id) => modbusDevice(id, { transport: "rtu", path: devEnd, baudRate: 115200, dataBits: 8, parity: "none", stopBits: 1, unitId: 1, timeoutMs: 200 }),
    // Unit 9 is on the line but never answers (no device with that id on the bus).
    silentDevice: (id) => modbusDevice(id, { transport: "rtu", path: devEnd, baudRate: 115200, dataBits: 8, parity: "none", stopBits: 1, unitId: 9, timeoutMs: 200 }),
    timing: { lossMs: 5_000, returnMs: 5_000 },
  };
}

driverConformance("modbus over RTU (socat pty pair)", driver, rtuFixture());
