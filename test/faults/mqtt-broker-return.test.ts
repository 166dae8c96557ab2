import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import { Gateway } from "../../src/runtime/gateway.js";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { collect, parseJson, type Collector } from "../helpers/mqtt-sub.js";
import { captureLogger, duplicateKeys, jsonProblems, type LogLine } from "../outputs/log-lines.js";

/**
 * A long broker outage, staged with a real Mosquitto stopped and started again on the same port,
 * under a gateway running in-process with its real wiring (gateway → forwarder → MQTT output) and
 * its real logger. Issue 10: the output must be back within 5 s of the broker's return whatever the
 * outage length (a reconnect wait that grew through the outage cost 15 s), and the log must tell
 * the outage once, not once per retry, with every key once per line.
 *
 * 27 s of outage: with the old backoff (200 ms doubling to 30 s, jittered) the attempt after the
 * return would have come 0–24 s later (measured 4.2 s; with a 22 s outage 0.1–1.8 s in three runs and
 * over 15 s in a fourth); the capped wait is at most 3 s.
 */
const OUTAGE_MS = 27_000;
const TOKEN = "return-dev-token";
const GW = "return-edge";
const DEVICES = 5;

describe("MQTT output: back soon after a long broker outage, logged once", () => {
  let broker: MosquittoBroker;
  let sub: Collector;
  let dir: string;
  let gw: Gateway | undefined;
  const capture = captureLogger("debug");

  beforeAll(async () => {
    broker = await startMosquitto({ extraConfig: ["max_queued_messages 0", "max_queued_bytes 0"] });
    sub = await collect(broker.url, `floorgate/${GW}/+/telemetry`);
    dir = await mkdtemp(join(tmpdir(), "fg-return-"));
  });

  afterAll(async () => {
    await gw?.stop();
    await sub?.close();
    await broker?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("the duplicate-key check sees what JSON.parse hides (an output bound twice)", () => {
    const c = captureLogger("info");
    c.log.child({ output: "cloud" }).info({ output: "cloud", state: "online" }, "bound twice");
    expect(duplicateKeys(c.raw[0]!)).toEqual(["output"]);
    expect(jsonProblems(c.raw)).toHaveLength(1);
    expect(duplicateKeys('{"a":{"b":1,"b":2},"c":[{"d":1,"d":1}],"e":"x\\"y"}')).toEqual(["a.b", "c.0.d"]);
  });

  it(`uses the broker within 5 s of its return after ${OUTAGE_MS / 1000} s down, and logs the outage once`, async () => {
    const r = parseConfigText(`
gateway: { id: ${GW}, group: test, dataDir: "${dir}" }
http: { listen: "127.0.0.1:0" }
journal: { fsync: batch, fsyncIntervalMs: 5 }
ingest:
  ratePerDevice: 100000
  devices: [{ id: "dev-*", token: "${TOKEN}" }]
outputs:
  - { type: mqtt, name: cloud, url: "${broker.url}", qos: 1, maxBatch: 200 }
`, join(dir, "floorgate.yaml"), {});
    if (!r.ok) throw new Error(r.problems.map((p) => p.message).join("\n"));
    gw = await Gateway.start(r.config, capture.log);
    const base = `http://127.0.0.1:${gw.httpPort}`;

    // Devices push every 100 ms throughout; value k of a device was pushed at pushedAt[k].
    const pushedAt: number[] = [];
    let pushing = true;
    let failedPushes = 0;
    const pusher = (async () => {
      while (pushing) {
        const value = pushedAt.length;
        pushedAt.push(performance.now());
        await Promise.all(Array.from({ length: DEVICES }, async (_, d) => {
          const res = await fetch(`${base}/api/v1/ingest/dev-${d}`, {
            method: "POST",
            headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
            body: JSON.stringify({ values: { v: value } }),
          });
          if (res.status !== 202) failedPushes++;
          await res.arrayBuffer();
        }));
        await new Promise((res) => setTimeout(res, 100));
      }
    })();
    // For failure messages: the output's log lines, with the waits chosen after each failed attempt.
    const timeline = (): string => capture.lines.filter((l) => l.output === "cloud")
      .map((l) => `${new Date(l.time as number).toISOString()} ${l.msg}${l.retryInMs === undefined ? "" : ` (next in ${String(l.retryInMs)} ms)`}`).join("\n");
    const valuesIn = (m: { payload: Buffer }): number[] => (parseJson(m as never) as { samples: { value: number }[] }).samples.map((s) => s.value);

    try {
      await sub.waitFor((m) => valuesIn(m).length > 0, 10_000);
      const logFrom = capture.raw.length;

      await broker.stop();
      const down = performance.now();
      // The outage is the stimulus here, not a wait for readiness: it has to last this long.
      await new Promise((res) => setTimeout(res, OUTAGE_MS));
      expect(gw.health().outputs.cloud?.state).not.toBe("online");

      const startCalled = performance.now();
      await broker.start(); // resolves once a client has connected: the broker accepts again
      const accepting = performance.now();
      await sub.reconnect();
      const fresh = (m: { payload: Buffer }): boolean => valuesIn(m).some((v) => pushedAt[v]! >= startCalled);
      await sub.waitFor(fresh, 15_000).catch((err: unknown) => { throw new Error(`${String(err)}\n${timeline()}`); });
      const firstFresh = performance.now();
      const fromStart = firstFresh - startCalled;
      console.log(`broker down ${Math.round(startCalled - down)} ms; first fresh sample ${Math.round(firstFresh - accepting)} ms after the broker accepted connections (${Math.round(fromStart)} ms after it was started)`);
      expect(fromStart, timeline()).toBeLessThan(5_000);

      pushing = false;
      await pusher;
      expect(failedPushes).toBe(0);

      // The log: every line JSON with each key once; one "offline" line for the outage, however
      // many attempts failed (each is at debug level), and one "online" line at the end of it.
      const outage = capture.lines.slice(logFrom).filter((l) => l.output === "cloud");
      expect(jsonProblems(capture.raw)).toEqual([]);
      const msgs = (pred: (l: LogLine) => boolean): string[] => outage.filter(pred).map((l) => l.msg);
      const attempts = msgs((l) => l.msg === "output connect failed");
      expect(attempts.length, outage.map((l) => l.raw).join("\n")).toBeGreaterThanOrEqual(6);
      expect(msgs((l) => l.msg === "output cloud offline")).toHaveLength(1);
      // A connect failure reads differently from the lost session: at most one line for that.
      expect(msgs((l) => l.level >= 40).length, outage.map((l) => l.raw).join("\n")).toBeLessThanOrEqual(2);
      const online = outage.filter((l) => l.msg === "output cloud online");
      expect(online).toHaveLength(1);
      expect(online[0]!.failures).toBeGreaterThanOrEqual(attempts.length);
      expect(online[0]!.offlineMs).toBeGreaterThanOrEqual(OUTAGE_MS);
      // Retries show in health, never in the info log.
      expect(msgs((l) => /connecting/.test(l.msg))).toEqual([]);
    } finally {
      pushing = false;
      await pusher;
    }
  }, 60_000);
});
