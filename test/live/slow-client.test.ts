import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Socket } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfigText } from "../../src/config/load.js";
import { createLogger } from "../../src/core/logger.js";
import { Gateway } from "../../src/runtime/gateway.js";
import { http, metric } from "../helpers/gateway-process.js";
import { LiveClient } from "./live-client.js";

const TOKEN = "dev-live-slow-41aa";
/** a value of 1,000 characters: 400 tags of it make a ~430 KB samples frame */
const BIG = "x".repeat(1000);

/**
 * The outbound cap, conflation, 1013 and the heartbeat, with the knobs shortened through
 * GatewayOptions (cap 64 KiB, 1013 after 2 s over it; a ping every 200 ms on a second gateway). The gateway runs
 * in-process with its real HTTP listener; clients are `ws` clients over loopback TCP.
 */
describe("/live: slow clients and heartbeat", () => {
  let dir: string;
  let gw: Gateway;
  /** a second gateway with a 200 ms heartbeat (on the first one a stalled client must live until its 1013) */
  let hb: Gateway;
  let base: string;
  let url: string;
  const open: LiveClient[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-live-slow-"));
    const config = (id: string, sub: string) => {
      const r = parseConfigText(`
gateway: { id: ${id}, group: test, dataDir: "${join(dir, sub)}" }
http: { listen: "127.0.0.1:0" }
journal: { fsyncIntervalMs: 5 }
ingest:
  ratePerDevice: 100000
  maxPayloadBytes: 4MiB
  devices: [{ id: "*", token: "${TOKEN}" }]
`, join(dir, "floorgate.yaml"), {});
      if (!r.ok) throw new Error(r.problems.map((p) => p.message).join("\n"));
      return r.config;
    };
    gw = await Gateway.start(config("live-slow", "a"), createLogger({ level: "silent" }), {
      pushSilenceMs: 600, pushSweepMs: 50,
      live: { maxBufferedBytes: 64 * 1024, slowCloseMs: 2_000, closeGraceMs: 20_000 },
    });
    hb = await Gateway.start(config("live-hb", "b"), createLogger({ level: "silent" }), { live: { heartbeatMs: 200 } });
    base = `http://127.0.0.1:${gw.httpPort}`;
    url = `ws://127.0.0.1:${gw.httpPort}/live`;
  });

  afterAll(async () => {
    for (const c of open) c.close();
    await gw?.stop();
    await hb?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const client = async (opts: { autoPong?: boolean } = {}, to = url): Promise<LiveClient> => {
    const c = await LiveClient.open(to, opts);
    open.push(c);
    return c;
  };
  const push = async (device: string, values: Record<string, unknown>): Promise<void> => {
    const r = await http("POST", `${base}/api/v1/ingest/${device}`, { body: JSON.stringify({ values }), headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" } });
    expect(r.status, r.body).toBe(202);
  };
  const metrics = async (): Promise<string> => (await http("GET", `${base}/metrics`)).body;
  const bigValues = (seq: number): Record<string, unknown> => {
    const v: Record<string, unknown> = { seq };
    for (let i = 0; i < 400; i++) v[`blob${i}`] = BIG;
    return v;
  };
  const socketOf = (c: LiveClient): Socket => (c.ws as unknown as { _socket: Socket })._socket;
  /** Pushes big values until `done()` holds, one push at a time. */
  const flood = async (done: () => Promise<boolean>, from: number): Promise<number> => {
    let seq = from;
    while (!(await done())) await push("bulk", bigValues(++seq));
    return seq;
  };

  it("holds a client that stops reading, sends it conflated values once it reads again, and closes one that stays over its cap with 1013, while another client's latency is unaffected", async () => {
    const slow = await client();
    slow.send({ type: "subscribe", devices: ["bulk"] });
    await slow.next((f) => f.type === "snapshot");
    const fast = await client();
    fast.send({ type: "subscribe", devices: ["probe"] });
    await fast.next((f) => f.type === "snapshot");

    // 1. It stops reading: once the kernel buffers are full it goes over its cap and is held.
    socketOf(slow).pause();
    const held0 = metric(await metrics(), "floorgate_live_held_total");
    let seq = await flood(async () => metric(await metrics(), "floorgate_live_held_total") > held0, 0);
    // While held, ten more rounds of values: conflated, not queued.
    const heldFrom = seq;
    for (let i = 0; i < 10; i++) await push("bulk", { seq: ++seq });
    const last = seq;
    // It reads again before the 2 s are up: it gets the newest value, and not every one in between.
    socketOf(slow).resume();
    await slow.next((f) => f.type === "samples" && (f.samples as { tag: string; value: unknown }[]).some((s) => s.tag === "seq" && s.value === last), { what: `seq ${last}` });
    const seen = slow.samples().filter((s) => s.tag === "seq" && (s.value as number) > heldFrom).map((s) => s.value);
    expect(seen).toContain(last);
    expect(seen.length).toBeLessThan(last - heldFrom);

    // 2. It stops reading for good: closed with 1013 after 2 s over its cap. Meanwhile another
    // client's push-to-arrival latency is measured.
    socketOf(slow).pause();
    const tStall = Date.now();
    const latencies: number[] = [];
    let probe = 0;
    const measure = async (): Promise<void> => {
      const v = ++probe;
      const from = fast.frames.length;
      await push("probe", { v });
      const t0 = Date.now();
      const got = await fast.next((f) => f.type === "samples" && (f.samples as { value: unknown }[]).some((s) => s.value === v), { from, what: `probe ${v}` });
      latencies.push(got.at - t0);
    };
    seq = await flood(async () => {
      await measure();
      return metric(await metrics(), "floorgate_live_closes_total", { reason: "slow" }) >= 1;
    }, seq);
    // The close frame waits behind what it did not read: reading again (within the close
    // handshake's grace), it finds 1013 at the end.
    console.log(`live slow-client test: 1013 decided ${Date.now() - tStall} ms after the client stopped reading`);
    socketOf(slow).resume();
    expect((await slow.closed).code).toBe(1013);
    latencies.sort((a, b) => a - b);
    const p50 = latencies[Math.floor(latencies.length / 2)]!;
    // 100 ms conflation interval plus scheduling on a shared two-core machine
    console.log(`live slow-client test: other client's push→arrival latency while one is stalled, ms: p50 ${p50}, max ${latencies.at(-1)} (${latencies.length} probes)`);
    expect(p50, `latencies ${latencies.join(",")}`).toBeLessThan(250);
    expect(fast.ws.readyState).toBe(1);
    expect(metric(await metrics(), "floorgate_live_closes_total", { reason: "slow" })).toBe(1);
  });

  it("closes a client that answers no pings (heartbeat) and keeps one that does", async () => {
    const hbUrl = `ws://127.0.0.1:${hb.httpPort}/live`;
    const mute = await client({ autoPong: false }, hbUrl);
    const live = await client({}, hbUrl);
    await mute.next((f) => f.type === "hello");
    const { code } = await mute.closed;
    expect(code).toBe(1006);
    expect(live.ws.readyState).toBe(1);
    expect(metric((await http("GET", `http://127.0.0.1:${hb.httpPort}/metrics`)).body, "floorgate_live_closes_total", { reason: "heartbeat" })).toBe(1);
    // the one that answers pings outlives several of them
    await live.next((f) => f.type === "health");
    await live.next((f) => f.type === "health", { from: live.frames.length });
    expect(live.ws.readyState).toBe(1);
    live.send({ type: "ping" });
    await live.next((f) => f.type === "pong");
  });

  it("sends a device event when a pushing device falls silent, and another when it is back", async () => {
    const c = await client();
    await push("agv-9", { speed: 1 });
    c.send({ type: "subscribe", devices: ["agv-9"] });
    const snap = await c.next((f) => f.type === "snapshot");
    expect((snap.frame.devices as { id: string; state: string }[])[0]).toMatchObject({ id: "agv-9", state: "online" });
    const off = await c.next((f) => f.type === "device" && f.state === "offline", { what: "offline event" });
    expect(off.frame).toMatchObject({ id: "agv-9", error: expect.stringContaining("no push") });
    await push("agv-9", { speed: 2 });
    await c.next((f) => f.type === "device" && f.state === "online", { from: off.index + 1, what: "online event" });
  });
});
