// Pass lines (field notes "Broker down" and "SIGTERM … exits 0 within 10 s"): 20 devices push
// 20,000 samples over HTTP while Mosquitto is stopped and started twice: every acknowledged sample
// arrives, each device's samples exactly once and in order once replays are dropped by `batch`,
// replays fewer than two in-flight windows; afterwards SIGTERM drains, the offline status is
// published, and the daemon exits 0 within 10 s.
import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collect, type Collector } from "../helpers/mqtt-sub.js";
import { getJson, http, metric } from "../helpers/gateway-process.js";
import { TestDevice } from "../helpers/pusher.js";
import { consume, DEVICE_TOKEN, GATEWAY_ID, waitDelivered, useSpine } from "./spine-fixture.js";

/** For a failure message: which values a device got twice, in which messages (batch, seq). */
function explain(collector: Collector, d: TestDevice): string {
  const where = new Map<number, string[]>();
  for (const m of collector.messages) {
    if (!m.topic.endsWith(`/${d.id}/telemetry`)) continue;
    const msg = JSON.parse(m.payload.toString()) as { batch: number; samples: { value: number }[] };
    for (const s of msg.samples) where.set(s.value, [...(where.get(s.value) ?? []), `batch ${msg.batch} seq ${m.seq}${m.qos ? "" : " qos0"}`]);
  }
  const dups = [...where.entries()].filter(([, w]) => w.length > 1).slice(0, 12);
  return `statuses ${JSON.stringify([...d.statuses])}; repeated: ${dups.map(([v, w]) => `${v} in [${w.join(", ")}]`).join("; ")}`;
}

/**
 * The spine end to end with real parts: the built CLI as a process, Mosquitto as the cloud broker,
 * 20 devices pushing over HTTP while the broker is stopped and restarted twice.
 */
describe("spine: HTTP ingest → journal → MQTT, through broker outages", () => {
  const spine = useSpine({
    consumerId: "e2e-outage-consumer",
    // Mosquitto persists the consumer's session and queue across its restarts.
    brokerConfig: ["persistence true", `persistence_location ${mkdtempSync(join(tmpdir(), "floorgate-mosq-db-"))}/`],
  });

  it("delivers every acknowledged sample in journal order while the broker goes down twice", async () => {
    const devices = Array.from({ length: 20 }, (_, i) => new TestDevice(`dev-${i}`, DEVICE_TOKEN, 10));
    let acked = 0;
    const thresholds = [3000, 7000, 11000, 15000];
    const reached = thresholds.map(() => { let r!: () => void; const p = new Promise<void>((res) => { r = res; }); return { p, r }; });
    const onAck = (): void => { acked += 10; thresholds.forEach((t, i) => { if (acked >= t) reached[i]!.r(); }); };
    // Each outage cuts a live session: the second stop waits until the output is back online.
    const online = (): Promise<void> => expect.poll(async () => (await getJson<{ outputs: Record<string, { state: string }> }>(`${spine.gw.base}/healthz`)).outputs.cloud!.state, { timeout: 30_000, interval: 50 }).toBe("online");
    const outages = (async () => {
      await reached[0]!.p; await spine.broker.stop();
      await reached[1]!.p; await spine.broker.start(); await spine.collector.reconnect(); await online();
      await reached[2]!.p; await spine.broker.stop();
      await reached[3]!.p; await spine.broker.start(); await spine.collector.reconnect();
    })();
    await Promise.all(devices.map((d) => d.push(() => spine.gw.base, 100, { retryUntilAcked: true, onAck })));
    await outages;
    expect(acked).toBe(20_000);

    await waitDelivered(spine.collector, devices, 90_000);
    const { values, replays } = consume(spine.collector.messages);
    for (const d of devices) {
      // After dropping replays by `batch`, each device's samples arrive exactly once, in order.
      expect(values.get(d.id), `${d.id}: ${explain(spine.collector, d)}`).toEqual(d.acked);
    }
    // Replays only come from the in-flight window of a broken session: bounded, not a flood.
    expect(replays).toBeLessThan(2 * 64 * 20);

    const text = (await http("GET", `${spine.gw.base}/metrics`)).body;
    expect(metric(text, "floorgate_samples_in_total")).toBe(20_000);
    expect(metric(text, "floorgate_output_reconnects_total", { output: "cloud" })).toBeGreaterThanOrEqual(2);
    // The consumer can hold a message before the gateway has its PUBACK (the broker forwards and
    // acknowledges independently): the output's cursor, and so its lag, catch up a moment later.
    await expect.poll(async () => {
      const health = await getJson<{ status: string; outputs: Record<string, { state: string; lag: number }> }>(`${spine.gw.base}/healthz`);
      return { state: health.outputs.cloud!.state, lag: health.outputs.cloud!.lag };
    }, { timeout: 10_000, interval: 50 }).toEqual({ state: "online", lag: 0 });
  }, 180_000);

  it("keeps retained gateway and device status, and SIGTERM drains and exits 0 within 10 s", async () => {
    const status = await collect(spine.broker.url, `floorgate/${GATEWAY_ID}/#`);
    const online = await status.waitFor((m) => m.topic === `floorgate/${GATEWAY_ID}/status` && m.retain);
    expect(JSON.parse(online.payload.toString())).toMatchObject({ online: true });
    expect(JSON.parse(online.payload.toString()).ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const dev = await status.waitFor((m) => m.topic === `floorgate/${GATEWAY_ID}/dev-3/status` && m.retain);
    expect(JSON.parse(dev.payload.toString())).toMatchObject({ state: "online" });

    const { code, ms } = await spine.gw.stop();
    expect(code).toBe(0);
    expect(ms).toBeLessThan(10_000);
    const offline = await status.waitFor((m) => m.topic === `floorgate/${GATEWAY_ID}/status` && JSON.parse(m.payload.toString()).online === false);
    expect(offline).toBeDefined();
    await status.close();
  });
});
