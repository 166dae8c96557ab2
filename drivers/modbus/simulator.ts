/**
 * Simulated Modbus TCP presses for `floorgate simulate` and `floorgate demo`, served by
 * modbus-serial's ServerTCP (one server, i.e. one port, per press). The register map matches
 * `drivers/modbus/sample.yaml`; values move over time so dashboards have something to show.
 *
 *  area      address  type     order  tag
 *  holding   0-1      float32  ABCD   spindle_rpm
 *  holding   2        int16    -      temp_c      (×10: scale 0.1)
 *  holding   3        int16    -      oil_temp_c  (×10: scale 0.1)
 *  input     10-11    uint32   CDAB   part_count
 *  holding   20-23    float64  DCBA   energy_kwh
 *  holding   30-37    string   ABCD   model       (8 registers)
 *  holding   40       bits     -      running (bit 0), fault (bit 1)
 *  discrete  3        bool     -      door_open
 *  coil      0        bool     -      lamp        (writable)
 */
import net from "node:net";
import ModbusRTU from "modbus-serial";

export interface ModbusSimulatorOptions {
  /** how many presses; default 3 */
  presses?: number;
  /** port of the first press, the others follow; 0 (default) picks free ports */
  basePort?: number;
  host?: string;
  /** value update period; default 200 ms */
  tickMs?: number;
}

export interface ModbusSimulator {
  /** one port per press, in order press-1, press-2, … */
  ports: number[];
  stop(): Promise<void>;
}

interface Press {
  holding: Uint16Array;
  input: Uint16Array;
  coils: Uint8Array;
  discrete: Uint8Array;
  parts: number;
  energy: number;
}

const SIZE = 100;

function putWords(dst: Uint16Array, at: number, bytes: Buffer): void {
  for (let i = 0; i < bytes.length; i += 2) dst[at + i / 2] = bytes.readUInt16BE(i);
}

function update(p: Press, n: number, t: number): void {
  const phase = t / 1000 + n * 1.7;
  const running = Math.sin(phase / 20) > -0.6;
  const rpm = running ? 1450 + 120 * Math.sin(phase / 3) + 5 * Math.sin(phase * 7) : 0;
  const b4 = Buffer.alloc(4);
  b4.writeFloatBE(rpm); // ABCD
  putWords(p.holding, 0, b4);
  p.holding[2] = Math.round((62 + 8 * Math.sin(phase / 30) + n) * 10) & 0xffff;
  p.holding[3] = Math.round((41 + 3 * Math.sin(phase / 45)) * 10) & 0xffff;
  if (running && Math.random() < 0.3) p.parts = (p.parts + 1) >>> 0;
  p.input[10] = p.parts & 0xffff; // CDAB: low word first
  p.input[11] = p.parts >>> 16;
  p.energy += rpm / 1e6;
  const b8 = Buffer.alloc(8);
  b8.writeDoubleLE(p.energy); // DCBA: fully little-endian, i.e. the big-endian bytes reversed
  putWords(p.holding, 20, b8);
  p.holding[40] = (running ? 1 : 0) | (p.holding[40]! & 2);
  p.discrete[3] = Math.sin(phase / 11) > 0.85 ? 1 : 0;
}

function newPress(n: number): Press {
  const p: Press = { holding: new Uint16Array(SIZE), input: new Uint16Array(SIZE), coils: new Uint8Array(SIZE), discrete: new Uint8Array(SIZE), parts: 1000 * n, energy: 500 * n };
  putWords(p.holding, 30, Buffer.from(`PRESS-${n}`.padEnd(16, "\0"), "latin1"));
  update(p, n, Date.now());
  return p;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, host, () => { const { port } = s.address() as net.AddressInfo; s.close(() => resolve(port)); });
  });
}

function illegal(addr: number): void {
  if (addr < 0 || addr >= SIZE) throw Object.assign(new Error("illegal data address"), { modbusErrorCode: 2 });
}

/** Starts the presses; resolves once every port accepts connections. */
export async function startModbusSimulator(opts: ModbusSimulatorOptions = {}): Promise<ModbusSimulator> {
  const count = opts.presses ?? 3;
  const host = opts.host ?? "127.0.0.1";
  const presses = Array.from({ length: count }, (_, i) => newPress(i + 1));
  const servers: InstanceType<typeof ModbusRTU.ServerTCP>[] = [];
  const ports: number[] = [];
  for (const [i, p] of presses.entries()) {
    const port = opts.basePort ? opts.basePort + i : await freePort(host);
    const vector = {
      getHoldingRegister: (a: number) => { illegal(a); return p.holding[a]!; },
      getInputRegister: (a: number) => { illegal(a); return p.input[a]!; },
      getCoil: (a: number) => { illegal(a); return p.coils[a] === 1; },
      getDiscreteInput: (a: number) => { illegal(a); return p.discrete[a] === 1; },
      setCoil: (a: number, v: boolean) => { illegal(a); p.coils[a] = v ? 1 : 0; },
      setRegister: (a: number, v: number) => { illegal(a); p.holding[a] = v; },
    };
    const server = new ModbusRTU.ServerTCP(vector, { host, port, unitID: 255 });
    server.on("socketError", () => {});
    await new Promise<void>((resolve, reject) => {
      server.once("initialized", () => resolve());
      server.once("serverError", (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))));
    });
    servers.push(server);
    ports.push(port);
  }
  const timer = setInterval(() => { const t = Date.now(); presses.forEach((p, i) => update(p, i + 1, t)); }, opts.tickMs ?? 200);
  timer.unref();
  return {
    ports,
    stop: async () => {
      clearInterval(timer);
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
