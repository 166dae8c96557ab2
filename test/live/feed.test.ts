import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../helpers/ports.js";
import { startServerTcp } from "../helpers/modbus-servers.js";
import { http, metric, startGateway, writeConfig, type GatewayProcess } from "../helpers/gateway-process.js";
import { LiveClient, refusedWith, type LiveFrame } from "./live-client.js";

/**
 * The `/live` feed end to end (spec §5): the built daemon as a process, a real Modbus server and
 * HTTP pushes feeding it, `ws` clients reading it.
 */
const OPERATOR_TOKEN = "op-live-7d3a91c4";
const WRONG_TOKEN = "op-live-wrong-55e0b2";
const DEVICE_TOKEN = "dev-live-2f8c19";
const ALLOWED = "https://hmi.plant.local";

describe("/live feed", () => {
  let gw: GatewayProcess;
  let dir: string;
  let modbus: Awaited<ReturnType<typeof startServerTcp>>;
  let url: string;
  const open: LiveClient[] = [];
  const client = async (path = "/live", headers: Record<string, string> = { authorization: `Bearer ${OPERATOR_TOKEN}` }): Promise<LiveClient> => {
    const c = await LiveClient.open(`ws://127.0.0.1:${gw.port}${path}`, { headers });
    open.push(c);
    return c;
  };
  const push = async (device: string, body: unknown): Promise<void> => {
    const r = await http("POST", `${gw.base}/api/v1/ingest/${device}`, { body: JSON.stringify(body), headers: { authorization: `Bearer ${DEVICE_TOKEN}`, "content-type": "application/json" } });
    expect(r.status, r.body).toBe(202);
  };
  const metrics = async (): Promise<string> => (await http("GET", `${gw.base}/metrics`)).body;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-live-"));
    modbus = await startServerTcp({ holding: { 0: 1200, 1: 55 } });
    const port = await freePort();
    const file = await writeConfig(dir, `
gateway: { id: live-test, group: test, dataDir: "${dir}/data" }
http:
  listen: "127.0.0.1:${port}"
  operatorTokens: ["\${env:OP_TOKEN}"]
  allowedOrigins: ["${ALLOWED}"]
journal: { fsyncIntervalMs: 5 }
ingest:
  ratePerDevice: 100000
  devices: [{ id: "agv-*", token: "\${env:DEV_TOKEN}" }]
devices:
  - id: press-1
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${modbus.port}, unitId: 1, timeoutMs: 300 }
    pollMs: 100
    reconnectMaxMs: 500
    tags:
      - { name: rpm, area: holding, address: 0, type: uint16, unit: rpm }
      - { name: temp_c, area: holding, address: 1, type: int16 }
`);
    gw = await startGateway(file, port, { OP_TOKEN: OPERATOR_TOKEN, DEV_TOKEN: DEVICE_TOKEN, FLOORGATE_LOG_LEVEL: "debug" });
    url = `ws://127.0.0.1:${port}/live`;
  });

  afterAll(async () => {
    for (const c of open) c.close();
    await gw?.kill();
    await modbus?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("says hello, answers a subscribe with a snapshot, then sends conflated samples at most every 100 ms", async () => {
    await push("agv-1", { values: { battery_pct: 81.5, loaded: true } });
    const c = await client();
    const hello = await c.next((f) => f.type === "hello");
    expect(hello.frame).toEqual({ type: "hello", gateway: "live-test", protocol: 1 });
    c.send({ type: "subscribe" });
    const snap = await c.next((f) => f.type === "snapshot", { what: "snapshot" });
    // no samples before the snapshot
    expect(c.frames.slice(0, snap.index).some((f) => f.frame.type === "samples")).toBe(false);
    const devices = snap.frame.devices as { id: string; state: string; tags: { tag: string; value: unknown }[] }[];
    expect(devices.map((d) => d.id).sort()).toEqual(expect.arrayContaining(["agv-1", "press-1"]));
    const agv = devices.find((d) => d.id === "agv-1")!;
    expect(agv.state).toBe("online");
    expect(agv.tags).toEqual(expect.arrayContaining([expect.objectContaining({ tag: "battery_pct", value: 81.5, quality: "good" })]));

    // Ten values of one tag in one push: the feed sends the newest, once per frame.
    const from = c.frames.length;
    await push("agv-1", Array.from({ length: 10 }, (_, i) => ({ ts: new Date(Date.now() - 1000 + i).toISOString(), values: { battery_pct: 70 + i } })));
    const got = await c.next((f) => f.type === "samples" && (f.samples as { device: string; tag: string; value: unknown }[]).some((s) => s.device === "agv-1" && s.value === 79), { from, what: "battery_pct 79" });
    const inFrame = (got.frame.samples as { device: string; tag: string }[]).filter((s) => s.device === "agv-1" && s.tag === "battery_pct");
    expect(inFrame).toHaveLength(1);
    expect(c.samples(from).filter((s) => s.device === "agv-1" && s.tag === "battery_pct").map((s) => s.value)).not.toContain(71);

    // The Modbus device polls every 100 ms: over ~1.5 s its values flow, in ≤ 1 frame per 100 ms.
    const t0 = Date.now();
    const start = c.frames.length;
    await c.next((f) => f.type === "samples", { from: start, what: "samples" });
    await new Promise<void>((resolve) => { const check = (): void => { if (Date.now() - t0 >= 1500) resolve(); else setImmediate(check); }; check(); });
    const frames = c.frames.slice(start).filter((f) => f.frame.type === "samples");
    expect(frames.length).toBeGreaterThan(2);
    expect(frames.length).toBeLessThanOrEqual(Math.ceil((Date.now() - t0) / 100) + 2);
    expect(c.samples(start).some((s) => s.device === "press-1" && s.tag === "rpm" && s.value === 1200)).toBe(true);
  });

  it("filters by device and tag globs, snapshot and samples alike", async () => {
    await push("agv-12", { values: { battery_pct: 40, x_m: 1 } });
    await push("agv-2", { values: { battery_pct: 30, x_m: 2 } });
    const c = await client();
    c.send({ type: "subscribe", devices: ["agv-1*"], tags: ["bat*"] });
    const snap = await c.next((f) => f.type === "snapshot");
    const devices = snap.frame.devices as { id: string; tags: { tag: string }[] }[];
    expect(devices.map((d) => d.id).sort()).toEqual(["agv-1", "agv-12"]);
    for (const d of devices) expect(d.tags.map((t) => t.tag)).toEqual(["battery_pct"]);
    const from = c.frames.length;
    await push("agv-2", { values: { battery_pct: 31, x_m: 3 } });
    await push("agv-12", { values: { battery_pct: 41, x_m: 4 } });
    await c.next((f) => f.type === "samples" && (f.samples as { value: unknown }[]).some((s) => s.value === 41), { from, what: "agv-12 battery 41" });
    for (const s of c.samples(from)) {
      expect(s.device).toMatch(/^agv-1/);
      expect(s.tag).toBe("battery_pct");
    }
    // A new subscribe replaces the old one and gets a fresh snapshot.
    c.send({ type: "subscribe", devices: ["press-*"] });
    const snap2 = await c.next((f) => f.type === "snapshot", { from: snap.index + 1 });
    expect((snap2.frame.devices as { id: string }[]).map((d) => d.id)).toEqual(["press-1"]);
  });

  it("sends a device event when a device goes offline, and health every second", async () => {
    const c = await client();
    c.send({ type: "subscribe", devices: ["press-1"] });
    await c.next((f) => f.type === "snapshot");
    const h1 = await c.next((f) => f.type === "health");
    const h2 = await c.next((f) => f.type === "health", { from: h1.index + 1 });
    expect(h2.at - h1.at).toBeGreaterThan(500);
    expect(h1.frame).toMatchObject({ status: expect.any(String), outputs: {}, journal: expect.objectContaining({ bytes: expect.any(Number), records: expect.any(Number) }) });
    const from = c.frames.length;
    await modbus.stop();
    const ev = await c.next((f) => f.type === "device" && f.id === "press-1", { from, what: "device event for press-1", timeoutMs: 20_000 });
    expect(["offline", "error"]).toContain(ev.frame.state);
    expect(typeof ev.frame.error).toBe("string");
    // only the subscribed device's events
    expect(c.frames.slice(from).every((f) => f.frame.type !== "device" || f.frame.id === "press-1")).toBe(true);
  });

  it("refuses the upgrade with 401 without a token or with an unknown one (header and ?token=)", async () => {
    expect(await refusedWith(url)).toBe(401);
    expect(await refusedWith(url, { headers: { authorization: `Bearer ${WRONG_TOKEN}` } })).toBe(401);
    expect(await refusedWith(`${url}?token=${WRONG_TOKEN}`)).toBe(401);
    const q = await client(`/live?token=${encodeURIComponent(OPERATOR_TOKEN)}`, {});
    await q.next((f) => f.type === "hello");
    expect(metric(await metrics(), "floorgate_live_refused_total", { reason: "unauthorized" })).toBeGreaterThanOrEqual(3);
  });

  it("refuses a foreign Origin with 403 and accepts its own and an allowed one", async () => {
    const auth = { authorization: `Bearer ${OPERATOR_TOKEN}` };
    expect(await refusedWith(url, { headers: { ...auth, origin: "https://evil.example" } })).toBe(403);
    expect(await refusedWith(url, { headers: { ...auth, origin: "null" } })).toBe(403);
    expect(await refusedWith(url, { headers: { ...auth, origin: `http://127.0.0.1:${gw.port + 1}` } })).toBe(403);
    for (const origin of [ALLOWED, `http://127.0.0.1:${gw.port}`]) {
      const c = await client("/live", { ...auth, origin });
      await c.next((f) => f.type === "hello");
    }
    expect(metric(await metrics(), "floorgate_live_refused_total", { reason: "forbidden_origin" })).toBeGreaterThanOrEqual(3);
  });

  it("closes a client frame over 64 KiB with 1009 and keeps serving", async () => {
    const c = await client();
    await c.next((f) => f.type === "hello");
    const other = await client();
    other.send({ type: "subscribe", devices: ["agv-1"] });
    await other.next((f) => f.type === "snapshot");
    c.send({ type: "subscribe", devices: ["x".repeat(64 * 1024)] });
    expect((await c.closed).code).toBe(1009);
    // just under the limit is a frame like any other (refused as a bad subscribe, not too large)
    const d = await client();
    d.send(JSON.stringify({ type: "subscribe", devices: [] }).padEnd(64 * 1024, " "));
    await d.next((f) => f.type === "snapshot");
    const from = other.frames.length;
    await push("agv-1", { values: { battery_pct: 12.5 } });
    await other.next((f) => f.type === "samples" && (f.samples as { value: unknown }[]).some((s) => s.value === 12.5), { from });
    expect(metric(await metrics(), "floorgate_live_closes_total", { reason: "too_large" })).toBe(1);
  });

  it("answers a malformed frame with a clear error and closes only that socket; the daemon stays up", async () => {
    const bystander = await client();
    bystander.send({ type: "subscribe", devices: ["agv-1"] });
    await bystander.next((f) => f.type === "snapshot");

    for (const [text, reason] of [["{not json", "invalid_json"], ['{"type":"unsubscribe"}', "unknown_type"], ['{"type":"subscribe","devices":"press-*"}', "invalid_subscribe"]] as const) {
      const c = await client();
      c.send(text);
      const err = await c.next((f) => f.type === "error");
      expect(err.frame).toMatchObject({ code: "LIVE_BAD_FRAME", reason, error: expect.any(String) });
      expect((err.frame as LiveFrame & { error: string }).error.length).toBeGreaterThan(10);
      expect((await c.closed).code).toBe(1008);
    }

    // Not even valid WebSocket: an unmasked client frame with a reserved opcode, on a raw socket.
    const raw = connect(gw.port, "127.0.0.1");
    raw.on("error", () => {});
    raw.write(`GET /live HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${OPERATOR_TOKEN}\r\n\r\n`);
    let got = "";
    raw.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      if (got.includes("\r\n\r\n") && !got.includes("#sent")) {
        got += "#sent";
        raw.write(Buffer.from([0x83, 0x02, 0x41, 0x42]));
      }
    });
    await new Promise<void>((resolve) => raw.once("close", () => resolve()));
    expect(got).toContain("101 Switching Protocols");

    expect((await http("GET", `${gw.base}/healthz`)).status).toBe(200);
    expect(gw.child.exitCode).toBeNull();
    const from = bystander.frames.length;
    await push("agv-1", { values: { battery_pct: 66.25 } });
    await bystander.next((f) => f.type === "samples" && (f.samples as { value: unknown }[]).some((s) => s.value === 66.25), { from });
    const m = await metrics();
    expect(metric(m, "floorgate_live_rejected_frames_total", { reason: "invalid_json" })).toBe(1);
    expect(metric(m, "floorgate_live_rejected_frames_total", { reason: "protocol_error" })).toBe(1);
    expect(metric(m, "floorgate_live_closes_total", { reason: "bad_frame" })).toBe(3);
  });

  it("answers ping, counts clients and frames in /metrics, and never logs a token", async () => {
    const c = await client();
    c.send({ type: "ping" });
    await c.next((f) => f.type === "pong");
    const m = await metrics();
    expect(metric(m, "floorgate_live_clients")).toBeGreaterThanOrEqual(1);
    expect(metric(m, "floorgate_live_frames_sent_total", { type: "samples" })).toBeGreaterThan(0);
    expect(metric(m, "floorgate_live_frames_sent_total", { type: "snapshot" })).toBeGreaterThan(0);
    expect(m).not.toMatch(/floorgate_live_[a-z_]+\{[^}]*(tag|device)=/);
    for (const x of open) x.close();
    const { code } = await gw.stop();
    expect(code).toBe(0);
    const logs = gw.output.join("");
    expect(logs).toContain('"part":"live"');
    for (const secret of [OPERATOR_TOKEN, WRONG_TOKEN, DEVICE_TOKEN]) expect(logs).not.toContain(secret);
  });
});
