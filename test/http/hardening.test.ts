import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/core/logger.js";
import { createHttpServer, isLoopbackHost, type HttpLimits, type HttpServer } from "../../src/http/server.js";
import { createIngest } from "../../src/ingest/ingest.js";
import type { Metrics } from "../../src/runtime/status/metrics.js";
import { counterValue, newMetrics } from "../ingest/helpers.js";
import { json, makeConfig, MemorySink, request, StatusStub } from "./helpers.js";

const log = createLogger({ level: "silent" });

interface Started { srv: HttpServer; port: number; metrics: Metrics }
const started: HttpServer[] = [];

async function start(opts: { operatorTokens?: string[]; limits?: Partial<HttpLimits>; host?: string } = {}): Promise<Started> {
  const config = makeConfig({}, opts.operatorTokens ?? []);
  const metrics = newMetrics();
  const srv = createHttpServer({ config, status: new StatusStub(), metrics, ingest: createIngest(config.ingest, new MemorySink(), metrics), log, limits: opts.limits });
  started.push(srv);
  const { port } = await srv.listen(opts.host ?? "127.0.0.1", 0);
  return { srv, port, metrics };
}

afterAll(async () => {
  await Promise.all(started.map((s) => s.close(500)));
});

/** A raw request (exact bytes, exact Host); resolves with everything the server sent until it closed or answered. */
function raw(port: number, text: string): Promise<{ status: number; head: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(text));
    let buf = "";
    const done = () => {
      const [head = "", body = ""] = buf.split("\r\n\r\n");
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body });
    };
    s.on("data", (d) => {
      buf += d.toString();
      const len = /content-length: (\d+)/i.exec(buf)?.[1];
      const at = buf.indexOf("\r\n\r\n");
      if (len !== undefined && at >= 0 && buf.length >= at + 4 + Number(len)) { s.destroy(); done(); }
    });
    s.on("close", done);
    s.on("error", reject);
  });
}

/** Holds a connection open; `closed` resolves with when the server closed it (ms since open) and what it sent. */
function hold(port: number, trickle?: string, everyMs = 200) {
  const t0 = performance.now();
  const s = net.connect(port, "127.0.0.1");
  let got = "";
  s.on("data", (d) => { got += d.toString(); });
  s.on("error", () => undefined);
  let i = 0;
  const timer = trickle === undefined ? undefined : setInterval(() => {
    if (!s.destroyed && s.writable) s.write(trickle[i++ % trickle.length]!);
  }, everyMs);
  const closed = new Promise<{ ms: number; got: string }>((resolve) => s.on("close", () => {
    if (timer) clearInterval(timer);
    resolve({ ms: performance.now() - t0, got });
  }));
  const connected = new Promise<void>((r) => s.once("connect", () => r()));
  return { socket: s, closed, connected, stop: () => { if (timer) clearInterval(timer); s.destroy(); } };
}

describe("slowloris and connection floods", () => {
  const holders: { stop(): void }[] = [];
  afterEach(() => { for (const h of holders.splice(0)) h.stop(); });

  it("a client sending its headers a byte at a time is cut off at the header timeout; a normal client is served meanwhile", async () => {
    const { port, metrics } = await start({ limits: { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 } });
    const slow = hold(port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + "a".repeat(500), 100);
    const idle = hold(port); // connects and never sends a byte
    holders.push(slow, idle);
    await Promise.all([slow.connected, idle.connected]);
    // Served while the two hold their connections.
    for (let i = 0; i < 5; i++) expect((await request(port, { path: "/healthz" })).status).toBe(200);
    const [s, d] = await Promise.all([slow.closed, idle.closed]);
    // headers timeout (1 s) + Node's check interval (250 ms here) + scheduling slack on a loaded box
    for (const c of [s, d]) {
      expect(c.ms).toBeGreaterThanOrEqual(900);
      expect(c.ms).toBeLessThan(3_000);
    }
    expect(s.got).toMatch(/^HTTP\/1\.1 408/);
    expect(await counterValue(metrics.ingestRejects, { reason: "timeout" })).toBe(2);
    expect((await request(port, { path: "/healthz" })).status).toBe(200);
  });

  it("a request whose body trickles in is cut off at the request timeout", async () => {
    const { port } = await start({ limits: { headersTimeoutMs: 500, requestTimeoutMs: 1_000 } });
    const c = hold(port);
    holders.push(c);
    await c.connected;
    c.socket.write("POST /api/v1/ingest/agv-17 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer agv-token\r\nContent-Length: 1000\r\n\r\n");
    const timer = setInterval(() => { if (c.socket.writable) c.socket.write(" "); }, 100);
    const closed = await c.closed;
    clearInterval(timer);
    expect(closed.ms).toBeGreaterThanOrEqual(900);
    expect(closed.ms).toBeLessThan(3_000);
  });

  it("past maxConnections a new connection is closed at once and counted; room again once one ends", async () => {
    const { port, metrics } = await start({ limits: { maxConnections: 4 } });
    const open = Array.from({ length: 4 }, () => hold(port));
    holders.push(...open);
    await Promise.all(open.map((h) => h.connected));
    // The server may count a connection only once it has accepted it: wait until all four are in.
    await expect.poll(async () => {
      const extra = hold(port);
      holders.push(extra);
      const r = await Promise.race([extra.closed, new Promise<undefined>((ok) => setTimeout(() => ok(undefined), 300))]);
      return r !== undefined && r.got === "";
    }, { timeout: 5_000, interval: 50 }).toBe(true);
    expect(await counterValue(metrics.ingestRejects, { reason: "connection_limit" })).toBeGreaterThanOrEqual(1);
    for (const h of holders.splice(0)) h.stop();
    await expect.poll(async () => (await request(port, { path: "/healthz", agent: false }).catch(() => ({ status: 0 }))).status, { timeout: 5_000, interval: 50 }).toBe(200);
  });
});

describe("Host check on a loopback listener without operator tokens (DNS rebinding)", () => {
  const get = (port: number, path: string, host: string, extra = "") => raw(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`);

  it("answers loopback names with the listener's port; refuses any other Host with 403 on every route, counted", async () => {
    const { port, metrics } = await start();
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `127.3.2.1:${port}`, `[::1]:${port}`]) {
      expect((await get(port, "/healthz", host)).status, host).toBe(200);
    }
    const bad = [`evil.example:${port}`, "evil.example", `localhost:${port + 1}`, "localhost", `10.0.0.1:${port}`, `127.0.0.1.evil.example:${port}`, `[::2]:${port}`, `localhost.:${port}`];
    for (const host of bad) {
      for (const path of ["/", "/healthz", "/metrics", "/api/v1/devices", "/dashboard.js"]) {
        const r = await get(port, path, host);
        expect(r.status, `${host} ${path}`).toBe(403);
        expect(JSON.parse(r.body).error).toContain("DNS rebinding");
      }
    }
    const push = await raw(port, `POST /api/v1/ingest/agv-17 HTTP/1.1\r\nHost: evil.example:${port}\r\nAuthorization: Bearer agv-token\r\nContent-Length: 15\r\nConnection: close\r\n\r\n${json({ values: { a: 1 } })}`);
    expect(push.status).toBe(403);
    expect(await counterValue(metrics.ingestRejects, { reason: "bad_host" })).toBe(bad.length * 5 + 1);
  });

  it("with operator tokens the Host is not checked (the tokens protect the routes)", async () => {
    const { port } = await start({ operatorTokens: ["op-secret"] });
    expect((await get(port, "/healthz", `evil.example:${port}`)).status).toBe(200);
    expect((await get(port, "/api/v1/devices", `evil.example:${port}`)).status).toBe(401);
    expect((await get(port, "/api/v1/devices", `evil.example:${port}`, "Authorization: Bearer op-secret\r\n")).status).toBe(200);
  });

  it("isLoopbackHost: names, addresses and ports", () => {
    expect(isLoopbackHost("localhost:8080", 8080)).toBe(true);
    expect(isLoopbackHost("127.0.0.1:8080", 8080)).toBe(true);
    expect(isLoopbackHost("[::1]:8080", 8080)).toBe(true);
    expect(isLoopbackHost("localhost", 80)).toBe(true);
    expect(isLoopbackHost("localhost", 8080)).toBe(false);
    expect(isLoopbackHost("[::1]", 8080)).toBe(false);
    expect(isLoopbackHost("[::1]x:8080", 8080)).toBe(false);
    expect(isLoopbackHost("127.0.0.1:08080", 8080)).toBe(true);
    expect(isLoopbackHost("127.0.0.1:+8080", 8080)).toBe(false);
    expect(isLoopbackHost("127.1:8080", 8080)).toBe(false);
    expect(isLoopbackHost("128.0.0.1:8080", 8080)).toBe(false);
    expect(isLoopbackHost("evil.localhost:8080", 8080)).toBe(false);
    expect(isLoopbackHost("", 8080)).toBe(false);
  });
});

describe("dashboard headers", () => {
  let port: number;
  beforeAll(async () => {
    ({ port } = await start({ operatorTokens: ["op-secret"] }));
  });

  const expectPageHeaders = (headers: Record<string, string | string[] | undefined>) => {
    const csp = String(headers["content-security-policy"]);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).not.toContain("unsafe-eval");
    expect(headers["x-frame-options"]).toBe("DENY");
    expect(headers["x-content-type-options"]).toBe("nosniff");
    expect(headers["referrer-policy"]).toBe("no-referrer");
  };
  /** Everything the policy above would block: an inline script, a style element or attribute, an inline handler. */
  const expectNoInline = (html: string) => {
    for (const m of html.matchAll(/<script\b([^>]*)>/gi)) expect(m[1], "inline <script>").toMatch(/\bsrc=/);
    expect(html).not.toMatch(/<style\b/i);
    expect(html).not.toMatch(/\sstyle\s*=/i);
    expect(html).not.toMatch(/\son[a-z]+\s*=/i);
  };

  it("the dashboard and the sign-in page send CSP, X-Frame-Options, nosniff and no-referrer, with nothing inline", async () => {
    const page = await request(port, { path: "/", headers: { Authorization: "Bearer op-secret" } });
    expect(page.status).toBe(200);
    expectPageHeaders(page.headers);
    expectNoInline(page.text);
    expect(page.text).toContain('<script src="/dashboard.js"');
    const login = await request(port, { path: "/" });
    expect(login.status).toBe(401);
    expectPageHeaders(login.headers);
    expectNoInline(login.text);
  });

  it("the script and styles are served without a token (a <script src> cannot send one), with their types", async () => {
    const js = await request(port, { path: "/dashboard.js" });
    expect(js.status).toBe(200);
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(js.headers["x-content-type-options"]).toBe("nosniff");
    expect(js.text).toContain("sessionStorage");
    const css = await request(port, { path: "/dashboard.css" });
    expect(css.status).toBe(200);
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    expect((await request(port, { path: "/index.html" })).status).toBe(404);
    expect((await request(port, { path: "/dashboard.js/../index.html" })).status).toBe(404);
  });
});
