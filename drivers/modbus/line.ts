/**
 * A "line" is one physical connection (a TCP socket to a device or gateway, or one serial port)
 * shared by every device and unit id behind it. It owns the byte stream, the framing and a FIFO
 * queue with exactly ONE request in flight, and it owns reconnecting.
 *
 * Why our own framing instead of modbus-serial's client: modbus-serial's TCP port numbers
 * transactions modulo 256 and keeps a table of the last 256 transactions per client, so a reply
 * that arrives 256 requests late is handed to the wrong request, and every client costs memory
 * (yaacov/node-modbus-serial #31, #229; field notes). Its ports also stay "Port Not Open" after a
 * device reboot unless the caller rebuilds the client. Here MBAP transaction ids are 16-bit and a
 * reply is accepted only for the one request in flight, so a late reply is always discarded. We
 * keep modbus-serial for what it does well: its dependency `serialport` opens the serial port
 * (RTU framing with CRC16 is ours, shared with rtu-over-tcp), and its ServerTCP runs the simulator.
 */
import net from "node:net";
import { createRequire } from "node:module";
import type { Duplex } from "node:stream";
import { Backoff } from "../../src/core/backoff.js";
import { FloorgateError, describeError } from "../../src/core/errors.js";
import { checkReply, mbapFrame, rtuFrame, scanRtuReply, type ReplyCheck } from "./frame.js";

export type LineSpec =
  | { kind: "tcp" | "rtu-over-tcp"; host: string; port: number }
  | { kind: "rtu"; path: string; baudRate: number; parity: "none" | "even" | "odd"; dataBits: 7 | 8; stopBits: 1 | 2 };

/** Who asked: lets the line attribute protocol events (late replies) to a device's counters. */
export interface LineClient {
  count(event: string, n?: number): void;
}

export interface LineOptions {
  /** longest wait between two connection attempts */
  reconnectMaxMs: number;
  /** Consecutive timeouts with no reply at all before a TCP connection is presumed half-open and recycled. */
  recycleAfterTimeouts?: number;
}

interface Job {
  unitId: number;
  pdu: Buffer;
  timeoutMs: number;
  client: LineClient;
  resolve: (r: ReplyCheck) => void;
  reject: (e: FloorgateError) => void;
  tid: number;
  timer?: NodeJS.Timeout;
}

export function lineKey(spec: LineSpec): string {
  return spec.kind === "rtu" ? `rtu:${spec.path}` : `${spec.kind}://${spec.host}:${spec.port}`;
}

interface SerialPortLike extends Duplex {
  open(cb: (err: Error | null) => void): void;
  close(cb?: (err: Error | null) => void): void;
  isOpen: boolean;
}
type SerialPortCtor = new (opts: Record<string, unknown>) => SerialPortLike;

let serialCtor: SerialPortCtor | undefined;
/** The `serialport` that modbus-serial depends on, resolved from modbus-serial's own location. */
function loadSerialPort(): SerialPortCtor {
  if (!serialCtor) {
    const fromModbusSerial = createRequire(createRequire(import.meta.url).resolve("modbus-serial"));
    serialCtor = (fromModbusSerial("serialport") as { SerialPort: SerialPortCtor }).SerialPort;
  }
  return serialCtor;
}

/** The empty receive buffer: shared, never written (a reply replaces it). */
const EMPTY = Buffer.alloc(0);

/**
 * Every socket of every line reads into this one buffer (net's `onread`): a read is handled
 * synchronously and anything kept is copied, so one buffer serves all connections. Why: with
 * 'data' events Node allocates a buffer per read and runs the stream machinery around it, which
 * at 2,000 replies a second was a few percent of the gateway's CPU.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

export class Line {
  readonly key: string;
  private stream?: Duplex;
  private opening?: Promise<Duplex>;
  private readonly queue: Job[] = [];
  private current?: Job;
  private rx: Buffer = EMPTY;
  private tid = Math.floor(Math.random() * 0x10000);
  private readonly backoff: Backoff;
  /**
   * performance.now() ms, like `quietUntil`: waits are measured on the monotonic clock, since the
   * wall clock of an edge box may step (NTP) and a reconnect must not wait out the step.
   */
  private nextAttemptAt = 0;
  private lastError = "";
  /**
   * The message of the last failed connect or lost connection. Requests made while waiting for the
   * next attempt fail with this same text: a changing one ("next attempt in 412 ms") made every
   * poll of a dead device a new bad reason, journaled per tag and logged as a state change.
   */
  private lastFailure = "";
  private closed = false;
  private silentTimeouts = 0;
  /** RTU only: after a timeout, bytes keep being discarded until the line has been quiet this long. */
  private quietUntil = 0;
  private lastTimedOut?: LineClient;
  /** connections opened over the line's life, for tests and metrics */
  connects = 0;

  constructor(readonly spec: LineSpec, private readonly opts: LineOptions) {
    this.key = lineKey(spec);
    this.backoff = new Backoff({ initialMs: 50, maxMs: opts.reconnectMaxMs });
  }

  get isOpen(): boolean {
    return this.stream !== undefined;
  }

  /**
   * Queues one request; resolves with the checked reply (data or Modbus exception). Rejects with
   * DRIVER_TIMEOUT, DRIVER_TRANSPORT (cannot connect, connection lost, or waiting to reconnect),
   * DRIVER_PROTOCOL (a reply that answers the request wrongly) or ABORTED (line closed).
   */
  request(unitId: number, pdu: Buffer, timeoutMs: number, client: LineClient): Promise<ReplyCheck> {
    if (this.closed) return Promise.reject(new FloorgateError("ABORTED", "line closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ unitId, pdu, timeoutMs, client, resolve, reject, tid: 0 });
      if (!this.current) void this.pump();
    });
  }

  /** Closes the connection and fails every queued request with ABORTED. */
  close(): void {
    this.closed = true;
    const err = new FloorgateError("ABORTED", "line closed");
    for (const j of this.queue.splice(0)) j.reject(err);
    if (this.current) this.finish(this.current, undefined, err);
    this.teardown();
  }

  private async pump(): Promise<void> {
    while (!this.current && this.queue.length && !this.closed) {
      const job = this.queue.shift()!;
      this.current = job;
      let stream: Duplex;
      if (this.stream !== undefined && (this.quietUntil === 0 || this.quietUntil <= performance.now())) {
        // The usual request: connection open, no quiet time to keep. No await, so no extra turn
        // of the microtask queue between the poll and its write.
        stream = this.stream;
      } else {
        try {
          stream = await this.ensureOpen(job.timeoutMs);
          const wait = this.quietUntil - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        } catch (err) {
          this.finish(job, undefined, err instanceof FloorgateError ? err : new FloorgateError("DRIVER_TRANSPORT", describeError(err), { cause: err }));
          continue;
        }
        if (this.current !== job) continue; // closed meanwhile
      }
      this.rx = EMPTY;
      let frame: Buffer;
      if (this.spec.kind === "tcp") {
        this.tid = (this.tid + 1) & 0xffff;
        job.tid = this.tid;
        frame = mbapFrame(job.tid, job.unitId, job.pdu);
      } else {
        frame = rtuFrame(job.unitId, job.pdu);
      }
      job.timer = setTimeout(() => this.onTimeout(job), job.timeoutMs);
      stream.write(frame);
      return; // the reply, the timeout or a transport error continues the pump
    }
  }

  private finish(job: Job, result: ReplyCheck | undefined, err?: FloorgateError): void {
    if (job.timer) clearTimeout(job.timer);
    if (this.current === job) this.current = undefined;
    if (err) job.reject(err); else job.resolve(result!);
    if (!this.current && this.queue.length) queueMicrotask(() => void this.pump());
  }

  private onTimeout(job: Job): void {
    if (this.current !== job) return;
    job.client.count("timeout");
    this.lastTimedOut = job.client;
    this.silentTimeouts++;
    if (this.spec.kind !== "tcp") {
      // No transaction id on RTU: hold the next request until a late reply has had time to pass.
      this.quietUntil = performance.now() + this.guardMs(job.timeoutMs);
    }
    const err = new FloorgateError("DRIVER_TIMEOUT", `no reply from unit ${job.unitId} within ${job.timeoutMs} ms`);
    if (this.spec.kind !== "rtu" && this.silentTimeouts >= (this.opts.recycleAfterTimeouts ?? 3)) {
      // Nothing at all came back for a while: the socket may be half-open (peer rebooted). Recycle.
      this.silentTimeouts = 0;
      this.teardown();
    }
    this.finish(job, undefined, err);
  }

  /**
   * RTU quiet time after a timeout: long enough for a reply already on the wire to drain (and be
   * dropped), short enough that neighbours on the bus lose at most ~5 % of a timeout.
   */
  private guardMs(timeoutMs: number): number {
    const charMs = this.spec.kind === "rtu" ? (11 * 1000) / this.spec.baudRate : 0;
    return Math.min(20, Math.max(2, Math.ceil(3.5 * charMs), Math.round(timeoutMs * 0.05)));
  }

  private async ensureOpen(timeoutMs: number): Promise<Duplex> {
    if (this.stream) return this.stream;
    if (this.opening) return this.opening;
    let wait = this.nextAttemptAt - performance.now();
    if (wait > 0 && wait <= timeoutMs) {
      // The next attempt is due within this request's own timeout: wait for it rather than fail.
      await new Promise((r) => setTimeout(r, wait));
      if (this.closed) throw new FloorgateError("ABORTED", "line closed");
      if (this.stream) return this.stream;
      if (this.opening) return this.opening;
      wait = this.nextAttemptAt - performance.now();
    }
    if (wait > 0) {
      throw new FloorgateError("DRIVER_TRANSPORT", this.lastFailure || `connection to ${this.key} closed: ${this.lastError || "disconnected"}`);
    }
    this.opening = this.open(timeoutMs).then(
      (s) => { this.opening = undefined; return s; },
      (err: unknown) => {
        this.opening = undefined;
        this.lastError = describeError(err);
        this.nextAttemptAt = performance.now() + this.backoff.next();
        this.lastFailure = `cannot connect to ${this.key}: ${this.lastError}`;
        throw new FloorgateError("DRIVER_TRANSPORT", this.lastFailure, { cause: err });
      });
    return this.opening;
  }

  private open(timeoutMs: number): Promise<Duplex> {
    return new Promise<Duplex>((resolve, reject) => {
      if (this.spec.kind === "rtu") {
        const Ctor = loadSerialPort();
        const port = new Ctor({
          path: this.spec.path, baudRate: this.spec.baudRate, parity: this.spec.parity,
          dataBits: this.spec.dataBits, stopBits: this.spec.stopBits, autoOpen: false,
        });
        port.on("error", () => { /* reported through open() or 'close' */ });
        port.open((err) => {
          if (err) { port.destroy(); return reject(err); }
          if (this.closed) { port.destroy(); return reject(new FloorgateError("ABORTED", "line closed")); }
          this.attach(port);
          resolve(port);
        });
        return;
      }
      // Reads land in one shared buffer (see READ_BUFFER) instead of a fresh allocation per read
      // behind a 'data' event.
      const sock = net.connect({
        host: this.spec.host, port: this.spec.port,
        onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => { this.onSocketRead(sock, buf, n); return true; } },
      });
      const timer = setTimeout(() => { sock.destroy(); reject(new Error(`connect timed out after ${timeoutMs} ms`)); }, Math.max(timeoutMs, 1000));
      sock.once("error", (err) => { clearTimeout(timer); sock.destroy(); reject(err); });
      sock.once("connect", () => {
        clearTimeout(timer);
        sock.removeAllListeners("error");
        if (this.closed) { sock.destroy(); return reject(new FloorgateError("ABORTED", "line closed")); }
        sock.setNoDelay(true);
        sock.setKeepAlive(true, 10_000);
        this.attach(sock);
        resolve(sock);
      });
    });
  }

  private attach(stream: Duplex): void {
    this.stream = stream;
    this.connects++;
    this.lastFailure = "";
    this.rx = EMPTY;
    // Sockets deliver through `onread` (onSocketRead); serial ports through 'data'.
    if (!(stream instanceof net.Socket)) stream.on("data", (chunk: Buffer) => this.onData(stream, chunk));
    stream.on("error", (err) => { this.lastError = describeError(err); });
    stream.on("close", () => this.onClose(stream));
  }

  private onClose(stream: Duplex): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.nextAttemptAt = performance.now() + this.backoff.next();
    this.lastFailure = `connection to ${this.key} lost${this.lastError ? `: ${this.lastError}` : ""}`;
    const job = this.current;
    if (job && job.timer) this.finish(job, undefined, new FloorgateError("DRIVER_TRANSPORT", this.lastFailure));
  }

  /** Destroys the stream; queued requests reconnect (subject to backoff). */
  private teardown(): void {
    const s = this.stream;
    if (!s) return;
    this.stream = undefined;
    this.nextAttemptAt = performance.now() + this.backoff.next();
    s.removeAllListeners("data");
    s.on("error", () => {});
    const port = s as Partial<SerialPortLike>;
    if (typeof port.close === "function" && port.isOpen) port.close(() => s.destroy());
    else s.destroy();
  }

  /**
   * A socket read into READ_BUFFER. The bytes are only valid until the next read, so whatever the
   * line keeps past this call (a partial frame) is copied; replies are copied where they are cut.
   */
  private onSocketRead(sock: net.Socket, buf: Uint8Array, n: number): void {
    this.onData(sock, Buffer.from(buf.buffer, buf.byteOffset, n));
    if (this.rx.length > 0 && this.rx.buffer === READ_BUFFER.buffer) this.rx = Buffer.from(this.rx);
  }

  private onData(stream: Duplex, chunk: Buffer): void {
    if (this.stream !== stream) return;
    const job = this.current;
    if (this.spec.kind !== "tcp") {
      if (!job || !job.timer) {
        // Nothing in flight: a late or unsolicited reply. Drop it, and keep the line quiet a bit longer.
        if (this.quietUntil > 0) this.quietUntil = Math.max(this.quietUntil, performance.now() + this.guardMs(0));
        this.lastTimedOut?.count("late_reply");
        return;
      }
      this.rx = this.rx.length ? Buffer.concat([this.rx, chunk]) : chunk;
      for (;;) {
        const r = scanRtuReply(this.rx, job.unitId, job.pdu);
        if (r.kind === "need") return;
        if (r.kind === "skip") { this.rx = this.rx.subarray(1); if (!this.rx.length) return; continue; }
        this.rx = EMPTY;
        // A copy: the chunk may be a view of the shared socket read buffer.
        this.gotReply(job, Buffer.from(r.pdu));
        return;
      }
    }
    this.rx = this.rx.length ? Buffer.concat([this.rx, chunk]) : chunk;
    while (this.rx.length >= 7) {
      const pid = this.rx.readUInt16BE(2);
      const len = this.rx.readUInt16BE(4);
      if (pid !== 0 || len < 2 || len > 254) {
        // The stream is out of step; nothing after this point can be trusted. Start over.
        (job?.client ?? this.lastTimedOut)?.count("protocol_error");
        this.lastError = `malformed MBAP header (protocol ${pid}, length ${len})`;
        if (job && job.timer) this.finish(job, undefined, new FloorgateError("DRIVER_PROTOCOL", this.lastError));
        this.teardown();
        return;
      }
      if (this.rx.length < 6 + len) return;
      const tid = this.rx.readUInt16BE(0);
      const unit = this.rx[6]!;
      const pdu = Buffer.from(this.rx.subarray(7, 6 + len));
      // Not an empty view: kept until the next reply (a poll period), it would outlive V8's young
      // generation, ~100 B per reply promoted and left for a full GC.
      this.rx = this.rx.length > 6 + len ? this.rx.subarray(6 + len) : EMPTY;
      const cur = this.current;
      if (!cur || !cur.timer || tid !== cur.tid) {
        this.lastTimedOut?.count("late_reply");
        continue;
      }
      if (unit !== cur.unitId) {
        cur.client.count("protocol_error");
        this.finish(cur, undefined, new FloorgateError("DRIVER_PROTOCOL", `reply from unit ${unit} to a request for unit ${cur.unitId}`));
        continue;
      }
      this.gotReply(cur, pdu);
    }
  }

  private gotReply(job: Job, pdu: Buffer): void {
    this.silentTimeouts = 0;
    this.backoff.reset();
    const check = checkReply(job.pdu, pdu);
    if (check.kind === "mismatch") {
      job.client.count("protocol_error");
      this.finish(job, undefined, new FloorgateError("DRIVER_PROTOCOL", `reply does not answer the request: ${check.why}`));
      return;
    }
    this.finish(job, check);
  }
}

interface Shared { line: Line; refs: number }
const registry = new Map<string, Shared>();

/**
 * Returns the shared line for `spec`, creating it on first use: devices behind one gateway or on
 * one serial port get the same queue. Call the returned release exactly once.
 */
export function acquireLine(spec: LineSpec, opts: LineOptions): { line: Line; release: () => void } {
  const key = lineKey(spec);
  let shared = registry.get(key);
  if (!shared) {
    shared = { line: new Line(spec, opts), refs: 0 };
    registry.set(key, shared);
  }
  shared.refs++;
  const s = shared;
  let released = false;
  return {
    line: s.line,
    release: () => {
      if (released) return;
      released = true;
      if (--s.refs === 0) {
        registry.delete(key);
        s.line.close();
      }
    },
  };
}

/** Lines currently open (for leak checks in tests and for metrics). */
export function openLineCount(): number {
  return registry.size;
}
