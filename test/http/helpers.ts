import http from "node:http";
import type { GatewayConfig, IngestConfig } from "../../src/config/types.js";
import type { Sample } from "../../src/core/sample.js";
import type { SampleColumns } from "../../src/core/sample-columns.js";
import type { IngestSink } from "../../src/ingest/ingest.js";
import type { HealthReport, StatusView, TagValue, DeviceInfo } from "../../src/core/status.js";

export function makeConfig(ingest: Partial<IngestConfig> = {}, operatorTokens: string[] = ["op-secret"]): GatewayConfig {
  return {
    gateway: { id: "test-edge", group: "g", dataDir: "/nonexistent", driverThreads: 0 },
    http: { listen: "127.0.0.1:0", host: "127.0.0.1", port: 0, operatorTokens, allowedOrigins: [] },
    journal: { maxBytes: 1 << 30, overflow: "reject", fsync: "batch", fsyncIntervalMs: 50 },
    devices: [{
      id: "press-1", driver: "modbus", reconnectMaxMs: 10_000, disabled: false,
      connection: { transport: "tcp", host: "127.0.0.1", port: 1, unitId: 1, timeoutMs: 100 },
      pollMs: 1000, maxGap: 8, tagByTag: false, maxTimeouts: 3,
      tags: [
        { name: "lamp", area: "coil", address: 0, type: "bool", byteOrder: "ABCD", scale: 1, offset: 0, writable: true },
        { name: "rpm", area: "holding", address: 0, type: "float32", byteOrder: "ABCD", scale: 1, offset: 0, writable: false },
      ],
    }],
    ingest: {
      http: true, maxPayloadBytes: 4096, ratePerDevice: 20, maxDevices: 20_000,
      devices: [{ id: "agv-17", token: "agv-token" }, { id: "sensor-*", token: "sensor-token" }],
      ...ingest,
    },
    outputs: [],
  };
}

/** A StatusView stand-in: the real one belongs to the runtime; here only its shape matters. */
export class StatusStub implements StatusView {
  journalAccepting = true;
  gatewayId() { return "test-edge"; }
  health(): HealthReport {
    return {
      status: this.journalAccepting ? "ok" : "degraded",
      journalAccepting: this.journalAccepting,
      devices: { "press-1": { state: "online", error: null } },
      outputs: {},
      journal: { bytes: 0, maxBytes: 1, records: 0, segments: 1, oldestPos: 0, newestPos: 0, appended: 0, dropped: 0, tornRecords: 0, corruptRecords: 0, rejected: 0, writable: this.journalAccepting, unwritable: this.journalAccepting ? null : "disk full (ENOSPC)", failed: false, full: false },
    };
  }
  devices(): DeviceInfo[] {
    return [{ id: "press-1", driver: "modbus", state: "online", error: null, lastSampleTs: null, counters: { polls: 3 } }];
  }
  tags(device: string): TagValue[] | undefined {
    return device === "press-1" ? [{ tag: "rpm", value: 1200, quality: "good", ts: "2026-11-21T08:00:00.000Z", unit: "rpm" }] : undefined;
  }
}

/** In-memory sink that resolves after a tick; `hold` keeps pushes pending until released. */
export class MemorySink implements IngestSink {
  stored: Sample[] = [];
  hold = false;
  failWith: unknown = undefined;
  pushes = 0;
  private held: (() => void)[] = [];
  private waiters: (() => void)[] = [];
  push(_device: string, cols: SampleColumns): Promise<void> {
    const samples = cols.toSamples();
    this.pushes++;
    for (const w of this.waiters.splice(0)) w();
    if (this.failWith !== undefined) { const e = this.failWith; return new Promise((_, rej) => setImmediate(() => rej(e))); }
    return new Promise((resolve) => {
      const done = () => { this.stored.push(...samples); resolve(); };
      if (this.hold) this.held.push(done);
      else setImmediate(done);
    });
  }
  /** Resolves at the next push call (or at once if one is held already). */
  nextPush(): Promise<void> {
    return new Promise((r) => this.waiters.push(r));
  }
  heldCount() { return this.held.length; }
  releaseAll() { for (const d of this.held.splice(0)) d(); }
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json(): any;
  socketReused: boolean;
}

export interface Req {
  method?: string;
  path: string;
  headers?: Record<string, string | number>;
  /** a Buffer/string is sent with Content-Length; an array of chunks is sent chunked */
  body?: string | Buffer | Buffer[];
  agent?: http.Agent | false;
}

/**
 * One HTTP exchange. Resolves when the answer is complete; write errors after the answer began
 * (the server stopped reading a too-large body) are expected and ignored.
 */
export function request(port: number, r: Req): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const headers: Record<string, string | number> = { ...r.headers };
    if (typeof r.body === "string" || Buffer.isBuffer(r.body)) headers["Content-Length"] ??= Buffer.byteLength(r.body);
    const req = http.request({ host: "127.0.0.1", port, method: r.method ?? "GET", path: r.path, headers, agent: r.agent }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text), socketReused: req.reusedSocket });
      });
    });
    req.on("error", (err) => { if (!answered) reject(err); });
    if (Array.isArray(r.body)) {
      (async () => {
        for (const c of r.body as Buffer[]) {
          if (answered || req.destroyed) break;
          if (!req.write(c)) await new Promise<void>((ok) => { req.once("drain", ok); req.once("close", ok); });
        }
        req.end();
      })().catch(() => undefined);
    } else req.end(r.body);
  });
}

export const json = (v: unknown) => JSON.stringify(v);
