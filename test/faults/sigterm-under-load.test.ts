// Pass line (field note "SIGTERM under load"): the built daemon is sent SIGTERM while 20 devices
// push over HTTP and the MQTT output is busy draining a backlog (writes in flight): it exits 0
// within 10 s and its last word on the broker is the graceful offline status (`online: false` with
// a `ts`, not the will). It drained: started again, it resends nothing the broker had acknowledged
// (no `batch` repeated at the consumer), and every sample acknowledged before the SIGTERM reaches the
// consumer exactly once, in order.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { getJson } from "../helpers/gateway-process.js";
import { collect } from "../helpers/mqtt-sub.js";
import { TestDevice } from "../helpers/pusher.js";
import { consume, DEVICE_TOKEN, GATEWAY_ID, useSpine, waitDelivered } from "./spine-fixture.js";

const DEVICES = 20;
const PER_MESSAGE = 50;
/**
 * messages per device pushed while the broker is down: a backlog of 400,000 samples. The output
 * replays at 1–2.5 M samples/s, so a 100,000 backlog could be gone before the SIGTERM on a busy
 * machine (seen once with three test files at once); this one keeps it draining for a while.
 */
const BACKLOG_MESSAGES = 400;

describe("fault: SIGTERM under load", () => {
  const mosquittoDb = mkdtempSync(join(tmpdir(), "floorgate-mosq-db-"));
  // Registered before useSpine's: vitest runs afterAll hooks in reverse, so this runs after the broker stops.
  afterAll(() => rmSync(mosquittoDb, { recursive: true, force: true }));
  const spine = useSpine({
    consumerId: "fault-sigterm-consumer",
    brokerDownAtStart: true,
    // Mosquitto keeps the consumer's session across its restart, so nothing is lost on its side.
    brokerConfig: ["persistence true", `persistence_location ${mosquittoDb}/`],
  });

  it("exits 0 within 10 s with its offline status, and resends nothing after a restart", async () => {
    const base = (): string => spine.gw.base;
    const devices = Array.from({ length: DEVICES }, (_, i) => new TestDevice(`dev-${i}`, DEVICE_TOKEN, PER_MESSAGE));
    await Promise.all(devices.map((d) => d.push(base, BACKLOG_MESSAGES, { retryUntilAcked: true })));

    await spine.broker.start();
    const status = await collect(spine.broker.url, `floorgate/${GATEWAY_ID}/status`);
    await spine.collector.reconnect();

    // Ingest goes on until the gateway stops answering.
    let pushing = true;
    const load = devices.map(async (d) => {
      while (pushing) {
        const before = d.unacked.length;
        await d.push(base, 1);
        if (d.unacked.length > before) return;
      }
    });
    try {
      // SIGTERM as soon as the output is back and draining the backlog (its write window full).
      let lag = 0;
      await expect.poll(async () => {
        const cloud = (await getJson<{ outputs: Record<string, { state: string; lag: number }> }>(`${spine.gw.base}/healthz`)).outputs.cloud!;
        lag = cloud.lag;
        return cloud.state;
      }, { timeout: 30_000, interval: 10 }).toBe("online");
      // Telemetry is flowing (writes acknowledged, the window busy) and most of the backlog is still to go.
      await spine.collector.until(() => spine.collector.messages.some((m) => m.topic.endsWith("/telemetry")), 10_000);
      lag = (await getJson<{ outputs: Record<string, { lag: number }> }>(`${spine.gw.base}/healthz`)).outputs.cloud!.lag;
      const { code, ms } = await spine.gw.stop();
      pushing = false;
      await Promise.all(load);
      console.log(`SIGTERM with output lag ${lag} samples: exit ${code} after ${ms} ms`);
      expect(lag).toBeGreaterThan(1000);
      expect(code).toBe(0);
      expect(ms).toBeLessThan(10_000);

      const offline = await status.waitFor((m) => !m.retain && (JSON.parse(m.payload.toString()) as { online: boolean }).online === false, 5_000);
      expect(JSON.parse(offline.payload.toString())).toMatchObject({ online: false, ts: expect.stringMatching(/Z$/) });
    } finally {
      pushing = false;
      await Promise.all(load);
      await status.close();
    }

    // Started again: only what was not yet acknowledged by the broker is sent.
    await spine.gw.restart();
    await waitDelivered(spine.collector, devices, 60_000);
    const { values, replays } = consume(spine.collector.messages);
    expect(replays).toBe(0);
    for (const d of devices) {
      // A push cut by the stop may have been stored without its 202 reaching the device.
      const cut = new Set(d.unacked);
      expect((values.get(d.id) ?? []).filter((v) => !cut.has(v)), d.id).toEqual(d.acked);
    }
  }, 180_000);
});
