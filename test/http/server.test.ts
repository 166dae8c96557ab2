import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FloorgateError } from "../../src/core/errors.js";
import { createLogger } from "../../src/core/logger.js";
import type { SampleValue } from "../../src/core/sample.js";
import { createHttpServer, type HttpServer } from "../../src/http/server.js";
import { createIngest } from "../../src/ingest/ingest.js";
import type { Metrics } from "../../src/runtime/status/metrics.js";
import { counterValue, newMetrics } from "../ingest/helpers.js";
import { json, makeConfig, MemorySink, request, StatusStub } from "./helpers.js";

const OP = { Authorization: "Bearer op-secret" };
const AGV = { Authorization: "Bearer agv-token" };
const SENSOR = { Authorization: "Bearer sensor-token" };
const log = createLogger({ level: "silent" });

let srv: HttpServer;
let port: number;
let metrics: Metrics;
const sink = new MemorySink();
const status = new StatusStub();
const writes: { device: string; tag: string; value: SampleValue }[] = [];
let writeError: unknown;
let noIngest: HttpServer;
let noIngestPort: number;
let mqttSideIngest: ReturnType<typeof createIngest>;
let sensorN = 0;
const nextSensor = () => `sensor-${++sensorN}`;

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  const config = makeConfig();
  metrics = newMetrics();
  const ingest = createIngest(config.ingest, sink, metrics, Date.now, { log });
  srv = createHttpServer({
    config, status, metrics, ingest, log,
    async write(device, tag, value) {
      if (writeError) throw writeError;
      writes.push({ device, tag, value });
    },
  });
  port = (await srv.listen("127.0.0.1", 0)).port;
  const cfg2 = makeConfig({ http: false }, []);
  mqttSideIngest = createIngest(cfg2.ingest, sink, newMetrics());
  noIngest = createHttpServer({ config: cfg2, status, metrics: newMetrics(), ingest: mqttSideIngest, log });
  noIngestPort = (await noIngest.listen("127.0.0.1", 0)).port;
});

afterAll(async () => {
  await srv?.close(1000);
  await noIngest?.close(1000);
  process.off("unhandledRejection", onUnhandled);
  expect(unhandled).toEqual([]);
});

describe("health and metrics (no operator token needed)", () => {
  it("GET /healthz: 200 with status, devices, outputs, journal; 503 once the journal cannot accept", async () => {
    const r = await request(port, { path: "/healthz" });
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^application\/json/);
    expect(Object.keys(r.json()).sort()).toEqual(["devices", "journal", "outputs", "status"]);
    expect(r.json().status).toBe("ok");
    status.journalAccepting = false;
    try {
      const d = await request(port, { path: "/healthz" });
      expect(d.status).toBe(503);
      expect(d.json()).toMatchObject({ status: "degraded", journal: { writable: false } });
    } finally {
      status.journalAccepting = true;
    }
    const head = await request(port, { method: "HEAD", path: "/healthz" });
    expect(head.status).toBe(200);
    expect(head.text).toBe("");
  });

  it("GET /metrics: Prometheus text with the floorgate_ names and counted rejects", async () => {
    await request(port, { path: "/nope" });
    const r = await request(port, { path: "/metrics" });
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.text).toContain("# TYPE floorgate_ingest_rejects_total counter");
    expect(r.text).toMatch(/floorgate_ingest_rejects_total\{reason="not_found"\} [1-9]/);
    expect(r.text).toContain("floorgate_journal_bytes");
  });
});

describe("operator auth", () => {
  it("401 JSON without or with a wrong token on /api/v1 routes; 200 with it", async () => {
    for (const headers of [{} as Record<string, string>, { Authorization: "Bearer wrong" }, { Authorization: "Basic b3A6c2VjcmV0" }, { Authorization: "Bearer agv-token" }]) {
      for (const path of ["/api/v1/devices", "/api/v1/devices/press-1/tags"]) {
        const r = await request(port, { path, headers });
        expect(r.status, `${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(r.json()).toHaveProperty("error");
        expect(r.headers["www-authenticate"]).toBe("Bearer");
      }
    }
    const w = await request(port, { method: "POST", path: "/api/v1/devices/press-1/tags/lamp/write", body: json({ value: true }) });
    expect(w.status).toBe(401);
    expect(writes).toEqual([]);
    expect((await request(port, { path: "/api/v1/devices", headers: { Authorization: "bearer op-secret" } })).status).toBe(200);
  });

  it("GET /: asks for a token without one, serves the dashboard with a Bearer header or ?token=", async () => {
    const no = await request(port, { path: "/" });
    expect(no.status).toBe(401);
    expect(no.headers["content-type"]).toMatch(/^text\/html/);
    expect(no.text).toContain('name="token"');
    expect((await request(port, { path: "/?token=wrong" })).status).toBe(401);
    const q = await request(port, { path: "/?token=op-secret" });
    expect(q.status).toBe(200);
    expect(q.headers["content-type"]).toMatch(/^text\/html/);
    expect(q.headers["referrer-policy"]).toBe("no-referrer");
    expect(q.text).toMatch(/<html/i);
    expect((await request(port, { path: "/", headers: OP })).status).toBe(200);
  });

  it("without configured operator tokens the operator routes are open", async () => {
    const r = await request(noIngestPort, { path: "/api/v1/devices" });
    expect(r.status).toBe(200);
    expect((await request(noIngestPort, { path: "/" })).status).toBe(200);
  });
});

describe("devices API", () => {
  it("lists configured devices and every device that has pushed", async () => {
    const id = nextSensor();
    expect((await request(port, { method: "POST", path: `/api/v1/ingest/${id}`, headers: SENSOR, body: json({ values: { t: 1 } }) })).status).toBe(202);
    const r = await request(port, { path: "/api/v1/devices", headers: OP });
    expect(r.status).toBe(200);
    const devs = r.json().devices as { id: string; driver: string; state: string; counters: Record<string, number>; lastSampleTs: string | null }[];
    expect(devs.find((d) => d.id === "press-1")).toMatchObject({ driver: "modbus", state: "online", counters: { polls: 3 } });
    const pushed = devs.find((d) => d.id === id)!;
    expect(pushed).toMatchObject({ driver: "ingest", state: "online", error: null, counters: { pushes: 1, samples: 1 } });
    expect(Date.parse(pushed.lastSampleTs!)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("tags of a device; a pushed-only device has an empty list; 404 JSON for unknown ones", async () => {
    const r = await request(port, { path: "/api/v1/devices/press-1/tags", headers: OP });
    expect(r.json()).toEqual({ device: "press-1", tags: [{ tag: "rpm", value: 1200, quality: "good", ts: "2026-11-21T08:00:00.000Z", unit: "rpm" }] });
    const id = nextSensor();
    await request(port, { method: "POST", path: `/api/v1/ingest/${id}`, headers: SENSOR, body: json({ values: { t: 1 } }) });
    expect((await request(port, { path: `/api/v1/devices/${id}/tags`, headers: OP })).json()).toEqual({ device: id, tags: [] });
    const u = await request(port, { path: "/api/v1/devices/ghost/tags", headers: OP });
    expect(u.status).toBe(404);
    expect(u.json().error).toContain("ghost");
  });
});

describe("device push", () => {
  const push = (id: string, body: unknown, headers: Record<string, string> = SENSOR) =>
    request(port, { method: "POST", path: `/api/v1/ingest/${id}`, headers: { "Content-Type": "application/json", ...headers }, body: typeof body === "string" ? body : json(body) });

  it("answers 202 only after the sink has made the samples durable", async () => {
    sink.hold = true;
    try {
      const pushed = sink.nextPush();
      let answered = false;
      const p = push("agv-17", { msgId: "hold-1", values: { battery_pct: 81.5 } }, AGV).then((r) => { answered = true; return r; });
      await pushed;
      // A full round trip on another connection: the server had every chance to answer meanwhile.
      expect((await request(port, { path: "/healthz", agent: false })).status).toBe(200);
      expect(answered).toBe(false);
      expect(sink.heldCount()).toBe(1);
      sink.releaseAll();
      const r = await p;
      expect(r.status).toBe(202);
      expect(r.json()).toEqual({ status: "accepted", messages: 1, samples: 1, duplicates: 0 });
      expect(sink.stored.at(-1)).toMatchObject({ device: "agv-17", tag: "battery_pct", value: 81.5, quality: "good" });
    } finally {
      sink.hold = false;
      sink.releaseAll();
    }
  });

  it("400 with every problem and its path", async () => {
    const r = await push(nextSensor(), [{ values: { x_m: "a".repeat(1025) } }, { ts: "soon", values: {} }]);
    expect(r.status).toBe(400);
    expect(r.json()).toEqual({
      error: "invalid push body",
      problems: [
        { path: "[0].values.x_m", message: "string longer than 1024 characters (1025)" },
        { path: "[1].ts", message: expect.stringContaining("RFC 3339") },
        { path: "[1].values", message: "at least one value is required" },
      ],
    });
    expect((await push(nextSensor(), "{not json")).json().problems[0].path).toBe("");
  });

  it("401 without or with an unknown token, 403 with another device's token", async () => {
    const before = await counterValue(metrics.ingestRejects, { reason: "unauthorized" });
    expect((await push("agv-17", { values: { a: 1 } }, {})).status).toBe(401);
    expect((await push("agv-17", { values: { a: 1 } }, { Authorization: "Bearer nope" })).status).toBe(401);
    expect((await push("ghost", { values: { a: 1 } }, { Authorization: "Bearer nope" })).status).toBe(401);
    expect(await counterValue(metrics.ingestRejects, { reason: "unauthorized" })).toBe(before + 3);
    const f = await push("agv-17", { values: { a: 1 } }, SENSOR);
    expect(f.status).toBe(403);
    expect(f.json().error).toContain("agv-17");
    expect((await push("ghost", { values: { a: 1 } }, AGV)).status).toBe(403);
    expect((await push("bad%20id", { values: { a: 1 } })).status).toBe(400);
  });

  it("413 over maxPayloadBytes, by Content-Length or while streaming; the server keeps serving", async () => {
    const big = Buffer.alloc(4097, 0x20);
    const a = await request(port, { method: "POST", path: `/api/v1/ingest/${nextSensor()}`, headers: SENSOR, body: big });
    expect(a.status).toBe(413);
    expect(a.json().error).toContain("4096");
    // chunked, no Content-Length: refused at the first byte over the limit
    const chunks = Array.from({ length: 64 }, () => Buffer.alloc(1024, 0x20));
    const b = await request(port, { method: "POST", path: `/api/v1/ingest/${nextSensor()}`, headers: SENSOR, body: chunks });
    expect(b.status).toBe(413);
    // a huge declared body is refused without reading it
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const c = await request(port, { method: "POST", path: `/api/v1/ingest/${nextSensor()}`, headers: { ...SENSOR, "Content-Length": 50_000_000 }, body: [Buffer.alloc(1000)], agent });
    expect(c.status).toBe(413);
    agent.destroy();
    expect(await counterValue(metrics.ingestRejects, { reason: "too_large" })).toBeGreaterThanOrEqual(3);
    expect((await push(nextSensor(), { values: { a: 1 } })).status).toBe(202);
  });

  it("a small leftover body after a refusal keeps the keep-alive connection usable", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const r1 = await request(port, { method: "POST", path: "/api/v1/ingest/agv-17", headers: { Authorization: "Bearer nope" }, body: json({ values: { a: 1 } }), agent });
    expect(r1.status).toBe(401);
    const r2 = await request(port, { method: "POST", path: `/api/v1/ingest/${nextSensor()}`, headers: SENSOR, body: json({ values: { a: 1 } }), agent });
    expect(r2.status).toBe(202);
    expect(r2.socketReused).toBe(true);
    agent.destroy();
  });

  it("429 with an integer Retry-After over ratePerDevice", async () => {
    const id = nextSensor();
    const t0 = performance.now();
    const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => push(id, { values: { i } })));
    // burst 20 plus what refilled at 20/s while the requests were under way (a loaded CI box is slow)
    const allowed = 20 + Math.ceil(((performance.now() - t0) / 1000) * 20);
    const codes = rs.map((r) => r.status);
    expect(new Set(codes)).toEqual(new Set([202, 429]));
    expect(codes.filter((c) => c === 202).length).toBeGreaterThanOrEqual(20);
    expect(codes.filter((c) => c === 202).length).toBeLessThanOrEqual(allowed);
    const limited = rs.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    for (const r of limited) {
      expect(r.headers["retry-after"]).toMatch(/^[1-9]\d*$/);
      expect(r.json().error).toContain("20 messages/s");
    }
    // another device is not affected
    expect((await push(nextSensor(), { values: { a: 1 } })).status).toBe(202);
  });

  it("503 when the journal is full (and for any other sink failure); the retry is stored", async () => {
    const id = nextSensor();
    sink.failWith = new FloorgateError("JOURNAL_FULL", "cap reached");
    try {
      const r = await push(id, { msgId: "j1", values: { a: 1 } });
      expect(r.status).toBe(503);
      expect(r.json()).toEqual({ error: "journal full: retry later" });
      expect(r.headers["retry-after"]).toMatch(/^\d+$/);
      sink.failWith = new Error("EIO");
      expect((await push(id, { msgId: "j1", values: { a: 1 } })).status).toBe(503);
    } finally {
      sink.failWith = undefined;
    }
    const ok = await push(id, { msgId: "j1", values: { a: 1 } });
    expect(ok.json()).toMatchObject({ samples: 1, duplicates: 0 });
    expect(await counterValue(metrics.ingestRejects, { reason: "journal_full" })).toBeGreaterThanOrEqual(1);
  });

  it("a repeated msgId is acknowledged and stored once, even when sent concurrently", async () => {
    const id = nextSensor();
    const before = sink.stored.filter((s) => s.device === id).length;
    const rs = await Promise.all(Array.from({ length: 5 }, () => push(id, { msgId: "same", values: { v: 7 } })));
    expect(rs.map((r) => r.status)).toEqual([202, 202, 202, 202, 202]);
    const again = await push(id, [{ msgId: "same", values: { v: 7 } }, { msgId: "new", values: { v: 8 } }]);
    expect(again.json()).toEqual({ status: "accepted", messages: 2, samples: 1, duplicates: 1 });
    expect(sink.stored.filter((s) => s.device === id).length - before).toBe(2);
    expect(await counterValue(metrics.ingestDuplicates, { device: id })).toBe(5);
  });

  it("a device clock more than 5 minutes off is replaced by gateway time and counted", async () => {
    const id = nextSensor();
    const t0 = Date.now();
    const r = await push(id, [{ ts: "2001-01-01T00:00:00Z", values: { far: 1 } }, { ts: new Date(t0 - 60_000).toISOString(), values: { near: 1 } }]);
    expect(r.status).toBe(202);
    const far = sink.stored.find((s) => s.device === id && s.tag === "far")!;
    const near = sink.stored.find((s) => s.device === id && s.tag === "near")!;
    expect(far.ts).toBeGreaterThanOrEqual(t0);
    expect(far.ts).toBeLessThanOrEqual(Date.now());
    expect(near.ts).toBe(t0 - 60_000);
    expect(await counterValue(metrics.ingestClockSkew, { device: id })).toBe(1);
  });

  it("ingest.http: false → 404, yet devices pushing another way (MQTT) are still listed", async () => {
    const r = await request(noIngestPort, { method: "POST", path: "/api/v1/ingest/agv-17", headers: AGV, body: json({ values: { a: 1 } }) });
    expect(r.status).toBe(404);
    expect((await mqttSideIngest.handle("agv-17", "agv-token", Buffer.from(json({ values: { a: 1 } })))).status).toBe(202);
    const list = (await request(noIngestPort, { path: "/api/v1/devices" })).json().devices as { id: string }[];
    expect(list.map((d) => d.id)).toEqual(["press-1", "agv-17"]);
  });

  it("many pushes on one keep-alive connection", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const id = nextSensor();
    let reused = 0;
    for (let i = 0; i < 15; i++) {
      const r = await request(port, { method: "POST", path: `/api/v1/ingest/${id}`, headers: SENSOR, body: json({ values: { i } }), agent });
      expect(r.status).toBe(202);
      if (r.socketReused) reused++;
    }
    expect(reused).toBe(14);
    agent.destroy();
  });
});

describe("Expect: 100-continue", () => {
  /** Sends headers only; the body goes out on `100 Continue`, as curl does for bodies over 1 KiB. */
  const expectContinue = (headers: Record<string, string>, body: string) => new Promise<{ status: number; continued: boolean; text: string }>((resolve, reject) => {
    let continued = false;
    const req = http.request({ host: "127.0.0.1", port, method: "POST", path: `/api/v1/ingest/${nextSensor()}`, agent: false,
      headers: { ...headers, Expect: "100-continue", "Content-Length": Buffer.byteLength(body) } }, (res) => {
      let text = "";
      res.on("data", (d) => { text += d; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, continued, text }));
    });
    req.on("continue", () => { continued = true; req.end(body); });
    req.on("error", reject);
    req.flushHeaders();
  });

  it("a refused push is answered before the body is sent; an admitted one gets 100 Continue, then 202", async () => {
    const bad = await expectContinue({ Authorization: "Bearer nope" }, json({ values: { a: 1 } }));
    expect(bad).toMatchObject({ status: 401, continued: false });
    const big = await expectContinue(SENSOR, " ".repeat(5000));
    expect(big).toMatchObject({ status: 413, continued: false });
    const ok = await expectContinue(SENSOR, json({ values: { a: 1 } }));
    expect(ok).toMatchObject({ status: 202, continued: true });
  });
});

describe("write-back", () => {
  const write = (path: string, body: string, headers: Record<string, string> = OP) => request(port, { method: "POST", path, headers, body });

  it("writes a writable tag and answers 200", async () => {
    const r = await write("/api/v1/devices/press-1/tags/lamp/write", json({ value: true }));
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ status: "written", device: "press-1", tag: "lamp", value: true });
    expect(writes.at(-1)).toEqual({ device: "press-1", tag: "lamp", value: true });
  });

  it("404 unknown device or tag, 403 a tag that is not writable, 400 a bad body", async () => {
    expect((await write("/api/v1/devices/ghost/tags/lamp/write", json({ value: 1 }))).status).toBe(404);
    expect((await write("/api/v1/devices/press-1/tags/ghost/write", json({ value: 1 }))).status).toBe(404);
    const f = await write("/api/v1/devices/press-1/tags/rpm/write", json({ value: 1 }));
    expect(f.status).toBe(403);
    expect(f.json().error).toContain("not writable");
    const b = await write("/api/v1/devices/press-1/tags/lamp/write", json({ value: [1], extra: 2 }));
    expect(b.status).toBe(400);
    expect(b.json().problems.map((p: { path: string }) => p.path)).toEqual(["extra"]);
    expect((await write("/api/v1/devices/press-1/tags/lamp/write", "{")).status).toBe(400);
    expect((await write("/api/v1/devices/press-1/tags/lamp/write", json({}))).status).toBe(400);
    expect((await write("/api/v1/devices/press-1/tags/lamp/write", json({ value: { a: 1 } }))).status).toBe(400);
    const big = await request(port, { method: "POST", path: "/api/v1/devices/press-1/tags/lamp/write", headers: OP, body: Buffer.alloc(65 * 1024, 0x20) });
    expect(big.status).toBe(413);
  });

  it("is refused (403) while no operator token is configured", async () => {
    const r = await request(noIngestPort, { method: "POST", path: "/api/v1/devices/press-1/tags/lamp/write", body: json({ value: true }) });
    expect(r.status).toBe(403);
    expect(r.json().error).toContain("operatorTokens");
  });

  it("maps driver failures: WRITE_REFUSED → 400, DRIVER_TIMEOUT → 504, others → 502", async () => {
    const cases: [unknown, number][] = [
      [new FloorgateError("WRITE_REFUSED", "coil 0 refused"), 400],
      [new FloorgateError("DRIVER_TIMEOUT", "no answer in 1000 ms"), 504],
      [new FloorgateError("DRIVER_TRANSPORT", "socket closed"), 502],
      [new Error("weird"), 502],
    ];
    try {
      for (const [err, code] of cases) {
        writeError = err;
        const r = await write("/api/v1/devices/press-1/tags/lamp/write", json({ value: false }));
        expect(r.status).toBe(code);
        expect(typeof r.json().error).toBe("string");
      }
    } finally {
      writeError = undefined;
    }
  });
});

describe("lifecycle", () => {
  it("listen on a taken port rejects PORT_IN_USE; close() of a server never started resolves", async () => {
    const other = createHttpServer({ config: makeConfig(), status, metrics: newMetrics(), log });
    await expect(other.listen("127.0.0.1", port)).rejects.toMatchObject({ code: "PORT_IN_USE" });
    await other.close();
    expect((await request(port, { path: "/healthz" })).status).toBe(200);
  });
});

describe("routing", () => {
  it("404 JSON for unknown routes, 405 with Allow for wrong methods", async () => {
    for (const path of ["/nope", "/api/v1", "/api/v1/devices/", "/api/v1/ingest", "/api/v1/ingest/a/b", "/healthz/x", "/api/v1/../healthz"]) {
      const r = await request(port, { path, headers: OP });
      expect(r.status, path).toBe(404);
      expect(r.json()).toHaveProperty("error");
    }
    const m = await request(port, { method: "DELETE", path: "/api/v1/devices", headers: OP });
    expect(m.status).toBe(405);
    expect(m.headers.allow).toBe("GET, HEAD");
    const g = await request(port, { method: "GET", path: "/api/v1/ingest/agv-17", headers: AGV });
    expect(g.status).toBe(405);
    expect(g.headers.allow).toBe("POST");
    expect((await request(port, { path: "/api/v1/devices/%E0%A4%A/tags", headers: OP })).status).toBe(400);
    expect(await counterValue(metrics.ingestRejects, { reason: "method" })).toBeGreaterThanOrEqual(2);
  });

  it("a malformed request line gets a JSON 400 and the server stays up", async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, "127.0.0.1", () => s.write("GARBAGE\r\n\r\n"));
      let buf = "";
      s.on("data", (d) => { buf += d.toString(); });
      s.on("end", () => resolve(buf));
      s.on("close", () => resolve(buf));
      s.on("error", reject);
    });
    expect(text).toMatch(/^HTTP\/1\.1 400/);
    expect(text).toContain('{"error":"malformed request: bad request"}');
    expect((await request(port, { path: "/healthz" })).status).toBe(200);
  });
});
