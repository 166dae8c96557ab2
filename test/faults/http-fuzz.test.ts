// Pass line (field note "HTTP ingest fuzz"): 1,200 generated bad requests (bad JSON, wrong types,
// bad tags, oversized and chunked bodies, bad or missing tokens, unknown devices and routes, raw
// malformed HTTP) each get exactly their 4xx, never a 5xx, each counted once as a reject; nothing is
// stored and the server keeps serving. (The "repeated msgId stored once" half of the note is
// test/http/server.test.ts and idempotency-restart.test.ts.)
import http from "node:http";
import net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/core/logger.js";
import { DEVICE_ID_RE, TAG_NAME_RE } from "../../src/core/sample.js";
import { createHttpServer, type HttpServer } from "../../src/http/server.js";
import { createIngest } from "../../src/ingest/ingest.js";
import type { Metrics } from "../../src/runtime/status/metrics.js";
import { newMetrics } from "../ingest/helpers.js";
import { makeConfig, MemorySink, request, StatusStub, type Req } from "../http/helpers.js";

/**
 * Generated bad requests, each paired with the 4xx the contract gives it. The server must answer
 * exactly that (never a 5xx), count each refusal once, and keep serving.
 */
const MAX = 2048;
const SENSOR = { Authorization: "Bearer sensor-token" };
const log = createLogger({ level: "silent" });

interface Case { name: string; req?: Req; raw?: string; expect: number }

let srv: HttpServer;
let port: number;
let metrics: Metrics;
const sink = new MemorySink();
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  const config = makeConfig({ maxPayloadBytes: MAX, ratePerDevice: 0 });
  metrics = newMetrics();
  srv = createHttpServer({ config, status: new StatusStub(), metrics, ingest: createIngest(config.ingest, sink, metrics), log });
  port = (await srv.listen("127.0.0.1", 0)).port;
});

afterAll(async () => {
  agent.destroy();
  await srv?.close(1000);
  process.off("unhandledRejection", onUnhandled);
  expect(unhandled).toEqual([]);
});

const deviceId = fc.stringMatching(/^sensor-[A-Za-z0-9_-]{1,20}$/);
const goodTag = fc.stringMatching(/^[A-Za-z0-9_.-]{1,30}$/);
const goodValue = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.string({ maxLength: 20 }), fc.constant(null));
const goodMsg = fc.record({ values: fc.dictionary(goodTag, goodValue, { minKeys: 1, maxKeys: 4 }) });
const fits = (s: string) => Buffer.byteLength(s) <= MAX;
const ingestPost = (id: string, body: string | Buffer | Buffer[], headers: Record<string, string | number> = SENSOR): Req =>
  ({ method: "POST", path: `/api/v1/ingest/${id}`, headers, body, agent });
const isJson = (s: string) => { try { JSON.parse(s); return true; } catch { return false; } };

const badJson: fc.Arbitrary<Case> = fc.tuple(deviceId, fc.oneof(
  fc.string({ maxLength: 200 }).filter((s) => !isJson(s)),
  goodMsg.map((m) => JSON.stringify(m).slice(0, -1)),
  fc.constantFrom("{", "[", '{"values":{"a":1},}', "{'values':{}}", "\u0000", "NaN", '{"values":{"a":01}}'),
)).filter(([, b]) => fits(b)).map(([id, b]) => ({ name: "bad json", req: ingestPost(id, b), expect: 400 }));

const notAMessage = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== "object" || v === null),
  fc.constant([]),
  fc.record({ values: fc.oneof(fc.array(fc.integer()), fc.string(), fc.integer(), fc.constant(null), fc.boolean(), fc.constant({})) }),
  fc.record({ values: fc.dictionary(goodTag, fc.oneof(fc.array(fc.jsonValue(), { minLength: 0, maxLength: 2 }), fc.dictionary(fc.string(), fc.integer())), { minKeys: 1, maxKeys: 3 }) }),
  fc.record({ msgId: fc.oneof(fc.integer(), fc.constant(""), fc.string({ minLength: 129, maxLength: 200 }), fc.constant(null)), values: fc.constant({ a: 1 }) }),
  fc.record({ ts: fc.oneof(fc.integer(), fc.string({ maxLength: 30 }), fc.constantFrom("2026-02-30T00:00:00Z", "2026-11-21T08:00:00", "2026-11-21 08:00:00Z")), values: fc.constant({ a: 1 }) }),
  fc.record({ values: fc.constant({ a: 1 }), extra: fc.jsonValue({ maxDepth: 1 }) }),
  fc.record({ values: fc.constant({ s: "x".repeat(1025) }) }),
);
const wrongTypes: fc.Arbitrary<Case> = fc.tuple(deviceId, notAMessage, fc.boolean())
  .map(([id, m, inArray]) => [id, JSON.stringify(inArray ? [{ values: { ok: 1 } }, m] : m)] as const)
  .filter(([, b]) => fits(b))
  .map(([id, b]) => ({ name: "wrong types", req: ingestPost(id, b), expect: 400 }));

const badTags: fc.Arbitrary<Case> = fc.tuple(deviceId, fc.string({ maxLength: 140 }).filter((t) => !TAG_NAME_RE.test(t)), goodValue)
  .map(([id, tag, v]) => [id, JSON.stringify({ values: { [tag]: v } })] as const)
  .filter(([, b]) => fits(b))
  .map(([id, b]) => ({ name: "bad tag", req: ingestPost(id, b), expect: 400 }));

const nonFinite: fc.Arbitrary<Case> = fc.tuple(deviceId, fc.constantFrom("1e999", "-1e400", "9".repeat(400)))
  .map(([id, n]) => ({ name: "non-finite", req: ingestPost(id, `{"values":{"a":${n}}}`), expect: 400 }));

const huge: fc.Arbitrary<Case> = fc.tuple(deviceId, fc.integer({ min: MAX + 1, max: 40_000 }), fc.boolean())
  .map(([id, size, chunked]) => {
    const buf = Buffer.alloc(size, 0x20);
    const body = chunked ? Array.from({ length: Math.ceil(size / 1000) }, (_, i) => buf.subarray(i * 1000, (i + 1) * 1000)) : buf;
    return { name: chunked ? "huge chunked" : "huge", req: ingestPost(id, body), expect: 413 };
  });

const validBody = goodMsg.map((m) => JSON.stringify(m)).filter(fits);
const tokenHeader = (t: string) => ({ Authorization: `Bearer ${t}` });
const badToken = fc.stringMatching(/^[A-Za-z0-9._~+/=-]{1,60}$/).filter((t) => t !== "sensor-token" && t !== "agv-token");
const tokens: fc.Arbitrary<Case> = fc.tuple(deviceId, validBody, fc.oneof(
  fc.constant({ h: {}, expect: 401 }),
  badToken.map((t) => ({ h: tokenHeader(t), expect: 401 })),
  fc.constantFrom({ h: { Authorization: "Basic c2Vuc29yLXRva2Vu" }, expect: 401 }, { h: { Authorization: "Bearer" }, expect: 401 }, { h: { Authorization: "" }, expect: 401 }),
  fc.constant({ h: tokenHeader("agv-token"), expect: 403 }),
)).map(([id, b, t]) => ({ name: `token ${t.expect}`, req: ingestPost(id, b, t.h), expect: t.expect }));

const unknownDevice: fc.Arbitrary<Case> = fc.tuple(
  fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/).filter((id) => id !== "agv-17" && !id.startsWith("sensor-")),
  validBody, fc.boolean(),
).map(([id, b, withOther]) => ({ name: "unknown device", req: ingestPost(id, b, withOther ? SENSOR : { Authorization: "Bearer not-a-token" }), expect: withOther ? 403 : 401 }));

const wrongMethod: fc.Arbitrary<Case> = fc.tuple(
  fc.constantFrom("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
  fc.constantFrom("/api/v1/ingest/sensor-1", "/api/v1/devices/press-1/tags/lamp/write"),
).map(([method, path]) => ({ name: "method", req: { method, path, headers: SENSOR, agent }, expect: 405 }))
  .chain((c) => fc.constantFrom(c, { name: "method", req: { method: "POST", path: "/healthz", body: "{}", agent }, expect: 405 }, { name: "method", req: { method: "PUT", path: "/api/v1/devices", agent }, expect: 405 }));

const safeSeg = fc.stringMatching(/^[A-Za-z0-9._~-]{1,12}$/);
const weirdPaths: fc.Arbitrary<Case> = fc.oneof(
  // a device id that percent-decodes to something that is not an id
  fc.string({ minLength: 1, maxLength: 80, unit: "grapheme" }).filter((s) => !DEVICE_ID_RE.test(s))
    .map((s) => ({ name: "bad id", req: ingestPost(encodeURIComponent(s), '{"values":{"a":1}}'), expect: 400 })),
  fc.constantFrom("%", "%zz", "%E0%A4%A", "a%", "%C0", "%FF%FE")
    .map((s) => ({ name: "bad encoding", req: ingestPost(s, '{"values":{"a":1}}'), expect: 400 })),
  fc.array(safeSeg, { minLength: 1, maxLength: 5 }).filter((segs) => !["healthz", "metrics", "api"].includes(segs[0]!))
    .map((segs) => ({ name: "unknown route", req: { path: `/${segs.join("/")}`, agent }, expect: 404 })),
  fc.constantFrom("/api/v1/ingest/", "/api/v1/ingest", "/api/v1/ingest/sensor-1/", "/api/v1/ingest/sensor-1/x", "/api/v1/ingest/../healthz",
    "/api/v2/ingest/sensor-1", "//api/v1/ingest/sensor-1", "/api/v1/./ingest/sensor-1", "/API/V1/INGEST/sensor-1")
    .map((path) => ({ name: "near-miss path", req: { method: "POST", path, headers: SENSOR, body: '{"values":{"a":1}}', agent }, expect: 404 })),
  badToken.map((t) => ({ name: "operator token", req: { path: "/api/v1/devices", headers: tokenHeader(t), agent }, expect: 401 })),
);

const rawGarbage: fc.Arbitrary<Case> = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9 ]{1,30}$/).map((s) => `${s}\r\n\r\n`),
  fc.constantFrom("GET /healthz HTTP/9.9\r\n\r\n", "POST /api/v1/ingest/sensor-1 HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    "POST /api/v1/ingest/sensor-1 HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "GET / HTTP/1.1\r\nBad Header\r\n\r\n", `GET /healthz HTTP/1.1\r\nX: ${"a".repeat(20_000)}\r\n\r\n`),
).map((raw) => ({ name: "raw", raw, expect: raw.includes("a".repeat(20_000)) ? 431 : 400 }));

const anyBad: fc.Arbitrary<Case> = fc.oneof(
  { arbitrary: badJson, weight: 3 }, { arbitrary: wrongTypes, weight: 4 }, { arbitrary: badTags, weight: 2 },
  { arbitrary: nonFinite, weight: 1 }, { arbitrary: huge, weight: 2 }, { arbitrary: tokens, weight: 3 },
  { arbitrary: unknownDevice, weight: 2 }, { arbitrary: wrongMethod, weight: 2 }, { arbitrary: weirdPaths, weight: 3 },
  { arbitrary: rawGarbage, weight: 1 },
);

function rawExchange(raw: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(raw));
    let buf = "";
    const done = () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`no HTTP answer to ${JSON.stringify(raw.slice(0, 60))}: ${JSON.stringify(buf.slice(0, 100))}`));
    };
    s.on("data", (d) => { buf += d.toString(); });
    s.on("close", done);
    s.on("error", () => undefined);
    s.setTimeout(5000, () => s.destroy());
  });
}

async function totalRejects(): Promise<number> {
  return (await metrics.ingestRejects.get()).values.reduce((a, v) => a + v.value, 0);
}

describe("HTTP fuzz", () => {
  it("1,200 generated bad requests each get their 4xx, never a 5xx, each counted once; the server stays up", async () => {
    const before = await totalRejects();
    const seen = new Map<string, number>();
    let runs = 0;
    await fc.assert(fc.asyncProperty(anyBad, async (c) => {
      runs++;
      seen.set(c.name, (seen.get(c.name) ?? 0) + 1);
      const status = c.raw !== undefined ? await rawExchange(c.raw) : (await request(port, c.req!)).status;
      expect(status, c.name).toBeLessThan(500);
      expect(status, c.name).toBe(c.expect);
    }), { numRuns: 1200 });
    expect(runs).toBeGreaterThanOrEqual(1200);
    expect(await totalRejects() - before).toBe(runs);
    expect(sink.stored).toEqual([]);
    // every family was exercised
    for (const name of ["bad json", "wrong types", "bad tag", "huge", "huge chunked", "token 401", "token 403", "unknown device", "method", "bad id", "unknown route", "raw"]) {
      expect(seen.get(name) ?? 0, name).toBeGreaterThan(10);
    }

    const ok = await request(port, { method: "POST", path: "/api/v1/ingest/sensor-after", headers: SENSOR, body: JSON.stringify({ msgId: "m", values: { a: 1 } }), agent });
    expect(ok.status).toBe(202);
    expect(sink.stored).toEqual([expect.objectContaining({ device: "sensor-after", tag: "a", value: 1 })]);
    expect((await request(port, { path: "/healthz" })).status).toBe(200);
  });
});
