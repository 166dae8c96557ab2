/**
 * One load-generator process of the MQTT ingest bench (forked by bench/mqtt-ingest.ts): a slice of
 * the device fleet, each device a raw socket speaking the few packets of mqtt-ingest-wire.ts.
 * Every message is the push JSON of spec §4 on `devices/{id}/telemetry`, QoS 1, username = id,
 * password = token, with a msgId and a `seq` value so the bench can check what reached the output.
 *
 * A message belongs to its device until PUBACKed: on a lost connection the unacknowledged ones are
 * sent again after the reconnect (same msgId: the gateway stores them once).
 *
 * Commands arrive over IPC (`LoadCommand`), answers go back as `LoadReply`.
 */
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { DISCONNECT, encodeConnect, encodePublish, LatencyHistogram, PacketReader, PINGREQ } from "./mqtt-ingest-wire.js";

export interface LoadInit {
  host: string;
  port: number;
  /** device ids `${prefix}${i}` for i in [from, to) */
  prefix: string;
  from: number;
  to: number;
  token: string;
  /** loopback source address for this process's sockets (spreads ephemeral ports over addresses) */
  localAddress?: string;
  /** values per message (the first is `seq`) */
  values: number;
  /** messages per PUBLISH (a JSON array when > 1) */
  messagesPerPublish: number;
}

export type LoadCommand =
  | { cmd: "init"; init: LoadInit }
  /** connects every device not connected (at most `concurrency` handshakes at once) */
  | { cmd: "connect"; concurrency: number }
  /** open loop: each device publishes `hz` times a second, phases spread evenly */
  | { cmd: "rate"; hz: number }
  /** closed loop: each device keeps `window` publishes unacknowledged */
  | { cmd: "closed"; window: number }
  /** no new messages; answers once nothing is unacknowledged (or after timeoutMs) */
  | { cmd: "stop"; timeoutMs: number }
  | { cmd: "stats"; reset: boolean }
  /** every socket reset at once (RST, as a radio link lost); each device reconnects by itself */
  | { cmd: "storm"; concurrency: number }
  /** every device's acknowledged seqs */
  | { cmd: "acked" }
  /** whether acknowledged seqs are kept for `acked` (off for throughput runs: millions of them) */
  | { cmd: "track"; on: boolean }
  | { cmd: "close" };

export interface LoadStats {
  connected: number;
  published: number;
  acked: number;
  valuesAcked: number;
  hist: number[];
  /** CONNACKs with a refusal code */
  refused: number;
  /** connections closed before their CONNACK */
  cut: number;
  /** established connections that closed (a storm's own resets included) */
  dropped: number;
  unacked: number;
}

export type LoadReply =
  | { ev: "ready" }
  | { ev: "connected"; connected: number; ms: number }
  | { ev: "stopped"; unacked: number }
  | { ev: "stats"; stats: LoadStats }
  | { ev: "storm"; ms: number; connected: number }
  | { ev: "acked"; acked: Record<string, number[]> }
  | { ev: "closed" };

interface Msg { seq: number; payload: Buffer; t0: number }

const KEEPALIVE_SEC = 60;
const CONNECT_TIMEOUT_MS = 10_000;

let init: LoadInit;
let topicOf: (id: string) => Buffer;
const hist = new LatencyHistogram();
let published = 0, acked = 0, valuesAcked = 0, refused = 0, dropped = 0, cut = 0;
let producing: "off" | "rate" | "closed" = "off";
let window = 1;
let trackAcked = false;
let connectWaiters: (() => void)[] = [];
let handshakes = 0;
let maxHandshakes = 500;
const waitingToConnect: Device[] = [];

function send(r: LoadReply): void { process.send!(r); }

class Device {
  sock: Socket | undefined;
  connected = false;
  wanted = false;
  attempts = 0;
  reader = new PacketReader();
  nextPid = 1;
  seq = 0;
  inflight = new Map<number, Msg>();
  queue: Msg[] = [];
  ackedSeqs: number[] = [];
  lastSend = 0;
  readonly topic: Buffer;
  readonly conn: Buffer;
  constructor(readonly id: string) {
    this.topic = topicOf(id);
    this.conn = encodeConnect(id, id, init.token, KEEPALIVE_SEC);
  }

  /** Queued for a handshake slot; reconnects with backoff after a refusal or a drop. */
  want(): void {
    this.wanted = true;
    if (!this.connected && this.sock === undefined) waitingToConnect.push(this);
    pump();
  }

  open(): void {
    handshakes++;
    let handshaking = true;
    const endHandshake = () => { if (handshaking) { handshaking = false; handshakes--; pump(); } };
    const sock = connect({ host: init.host, port: init.port, localAddress: init.localAddress, noDelay: true });
    this.sock = sock;
    const timer = setTimeout(() => sock.destroy(), CONNECT_TIMEOUT_MS);
    sock.on("connect", () => sock.write(this.conn));
    sock.on("data", (chunk: Buffer) => {
      try {
        this.reader.push(chunk, (p) => {
          if (p.type === "puback") this.onPuback(p.packetId);
          else if (p.type === "connack") {
            clearTimeout(timer);
            endHandshake();
            if (p.returnCode !== 0) { refused++; sock.destroy(); return; }
            this.connected = true;
            this.attempts = 0;
            this.flush();
            if (connectedCount() === devices.length) for (const w of connectWaiters.splice(0)) w();
          }
        });
      } catch { sock.destroy(); }
    });
    sock.on("error", () => undefined);
    sock.on("close", () => {
      clearTimeout(timer);
      if (this.connected) dropped++;
      else if (handshaking) cut++; // closed before any CONNACK (e.g. a connection cap or rate at accept)
      endHandshake();
      this.connected = false;
      this.sock = undefined;
      this.reader = new PacketReader();
      // unacknowledged messages go first on the next connection, in seq order
      if (this.inflight.size > 0) {
        this.queue = [...this.inflight.values(), ...this.queue].sort((a, b) => a.seq - b.seq);
        this.inflight.clear();
      }
      if (this.wanted) {
        this.attempts++;
        const backoff = Math.min(5_000, 100 * 2 ** Math.min(this.attempts, 6)) * (0.5 + Math.random());
        setTimeout(() => { if (this.wanted && this.sock === undefined) { waitingToConnect.push(this); pump(); } }, backoff).unref();
      }
    });
  }

  onPuback(pid: number): void {
    const m = this.inflight.get(pid);
    if (m === undefined) return;
    this.inflight.delete(pid);
    hist.record((performance.now() - m.t0) * 1000);
    acked++;
    valuesAcked += init.values * init.messagesPerPublish;
    if (trackAcked) this.ackedSeqs.push(m.seq);
    if (producing === "closed") this.produce();
    else this.flush();
    if (stopWaiter !== undefined && totalUnacked() === 0) stopWaiter();
  }

  /** a new message into the queue, sent at once when connected */
  produce(): void {
    const seq = ++this.seq;
    this.queue.push({ seq, payload: payloadFor(this.id, seq), t0: 0 });
    this.flush();
  }

  flush(): void {
    const sock = this.sock;
    if (!this.connected || sock === undefined) return;
    const limit = producing === "closed" ? window : 1_000;
    while (this.queue.length > 0 && this.inflight.size < limit) {
      const m = this.queue.shift()!;
      let pid = this.nextPid;
      while (this.inflight.has(pid)) pid = pid === 65535 ? 1 : pid + 1;
      this.nextPid = pid === 65535 ? 1 : pid + 1;
      m.t0 = performance.now();
      this.inflight.set(pid, m);
      sock.write(encodePublish(this.topic, m.payload, 1, pid));
      published++;
      this.lastSend = m.t0;
    }
  }
}

let devices: Device[] = [];
let stopWaiter: (() => void) | undefined;

function connectedCount(): number {
  let n = 0;
  for (const d of devices) if (d.connected) n++;
  return n;
}
function totalUnacked(): number {
  let n = 0;
  for (const d of devices) n += d.inflight.size + d.queue.length;
  return n;
}

function pump(): void {
  while (handshakes < maxHandshakes && waitingToConnect.length > 0) {
    const d = waitingToConnect.shift()!;
    if (d.sock === undefined && d.wanted) d.open();
  }
}

/** ts rendered once per 10 ms: the generator's CPU belongs to the gateway under test */
let tsCache = "";
let tsAt = 0;
function isoNow(): string {
  const now = Date.now();
  if (now - tsAt >= 10) { tsAt = now; tsCache = new Date(now).toISOString(); }
  return tsCache;
}

function payloadFor(id: string, seq: number): Buffer {
  const ts = isoNow();
  const one = (k: number): string => {
    let v = `"seq":${seq}`;
    for (let i = 1; i < init.values; i++) v += `,"v${i}":${((seq * 7 + i * 13 + k) % 1000) / 10}`;
    return `{"msgId":"${id}-${seq}-${k}","ts":"${ts}","values":{${v}}}`;
  };
  if (init.messagesPerPublish === 1) return Buffer.from(one(0));
  const parts: string[] = [];
  for (let k = 0; k < init.messagesPerPublish; k++) parts.push(one(k));
  return Buffer.from(`[${parts.join(",")}]`);
}

/** Open loop at `hz` per device: a 10 ms tick serves every phase slot that came due since the last. */
let rateTimer: NodeJS.Timeout | undefined;
function startRate(hz: number): void {
  stopRate();
  producing = "rate";
  const periodMs = 1000 / hz;
  const slots = Math.max(1, Math.round(periodMs / 10));
  const t0 = performance.now();
  let served = 0; // slot-steps served so far
  rateTimer = setInterval(() => {
    const due = Math.floor((performance.now() - t0) / (periodMs / slots));
    for (; served < due; served++) {
      const slot = served % slots;
      for (let i = slot; i < devices.length; i += slots) devices[i]!.produce();
    }
  }, 10);
}
function stopRate(): void {
  if (rateTimer !== undefined) clearInterval(rateTimer);
  rateTimer = undefined;
}

/** keepalive: a PINGREQ for every connected device idle for a third of the keepalive */
setInterval(() => {
  const now = performance.now();
  for (const d of devices) {
    if (d.connected && d.sock !== undefined && now - d.lastSend > (KEEPALIVE_SEC * 1000) / 3) {
      d.sock.write(PINGREQ);
      d.lastSend = now;
    }
  }
}, 5_000).unref();

function stats(reset: boolean): LoadStats {
  const s: LoadStats = { connected: connectedCount(), published, acked, valuesAcked, hist: [...hist.counts], refused, cut, dropped, unacked: totalUnacked() };
  if (reset) { hist.reset(); published = 0; acked = 0; valuesAcked = 0; }
  return s;
}

function connectAll(): Promise<void> {
  return new Promise((resolve) => {
    if (connectedCount() === devices.length) { resolve(); return; }
    connectWaiters.push(resolve);
    for (const d of devices) if (!d.connected) d.want();
  });
}

process.on("message", (m: LoadCommand) => {
  void (async () => {
    switch (m.cmd) {
      case "init": {
        init = m.init;
        topicOf = (id) => Buffer.from(`devices/${id}/telemetry`);
        devices = [];
        for (let i = init.from; i < init.to; i++) devices.push(new Device(`${init.prefix}${i}`));
        send({ ev: "ready" });
        break;
      }
      case "connect": {
        maxHandshakes = m.concurrency;
        const t0 = performance.now();
        await connectAll();
        send({ ev: "connected", connected: connectedCount(), ms: performance.now() - t0 });
        break;
      }
      case "rate":
        startRate(m.hz);
        break;
      case "closed":
        stopRate();
        producing = "closed";
        window = m.window;
        for (const d of devices) for (let i = d.queue.length + d.inflight.size; i < window; i++) d.produce();
        break;
      case "stop": {
        stopRate();
        producing = "off";
        if (totalUnacked() > 0) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, m.timeoutMs);
            stopWaiter = () => { clearTimeout(t); resolve(); };
          });
          stopWaiter = undefined;
        }
        send({ ev: "stopped", unacked: totalUnacked() });
        break;
      }
      case "stats":
        send({ ev: "stats", stats: stats(m.reset) });
        break;
      case "storm": {
        maxHandshakes = m.concurrency;
        const t0 = performance.now();
        const back = new Promise<void>((resolve) => connectWaiters.push(resolve));
        for (const d of devices) d.sock?.resetAndDestroy();
        await back;
        send({ ev: "storm", ms: performance.now() - t0, connected: connectedCount() });
        break;
      }
      case "acked": {
        const out: Record<string, number[]> = {};
        for (const d of devices) out[d.id] = d.ackedSeqs;
        send({ ev: "acked", acked: out });
        break;
      }
      case "track":
        trackAcked = m.on;
        break;
      case "close":
        stopRate();
        for (const d of devices) {
          d.wanted = false;
          if (d.sock !== undefined) { d.sock.end(DISCONNECT); }
        }
        send({ ev: "closed" });
        setTimeout(() => process.exit(0), 500).unref();
        break;
    }
  })();
});
// the bench process is gone (crashed or killed): so is this generator, with its sockets
process.on("disconnect", () => process.exit(0));
