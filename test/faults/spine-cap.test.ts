// Pass line (field note "Journal cap with drop-oldest"): with the broker down and a 1 MiB journal
// under `overflow: drop-oldest`, 50,000 acknowledged samples: the journal on disk never holds more
// than maxBytes plus one segment (checked every 5 pushes), drops are counted as `drop_oldest`, and
// once the broker is back ingested = delivered + dropped + pending, exactly.
import { describe, expect, it } from "vitest";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { getJson, http, metric } from "../helpers/gateway-process.js";
import { TestDevice } from "../helpers/pusher.js";
import { allValues, DEVICE_TOKEN, useSpine } from "./spine-fixture.js";

const MAX_BYTES = 1024 * 1024;

async function journalBytes(dir: string): Promise<{ bytes: number; largestSegment: number }> {
  let bytes = 0;
  let largestSegment = 0;
  for (const f of await readdir(dir)) {
    if (!f.endsWith(".seg")) continue;
    const s = await stat(join(dir, f)).catch(() => null);
    if (!s) continue;
    bytes += s.size;
    largestSegment = Math.max(largestSegment, s.size);
  }
  return { bytes, largestSegment };
}

describe("spine: journal cap with drop-oldest while the broker is down", () => {
  const spine = useSpine({
    consumerId: "e2e-cap-consumer",
    journalYaml: `maxBytes: ${MAX_BYTES}\n  overflow: drop-oldest\n  fsync: batch\n  fsyncIntervalMs: 5`,
    brokerDownAtStart: true,
  });

  it("never holds more than maxBytes plus one segment, and ingested = delivered + dropped + pending exactly", async () => {
    const jdir = join(spine.setup.dir, "data", "journal");
    const devices = Array.from({ length: 10 }, (_, i) => new TestDevice(`dev-${i}`, DEVICE_TOKEN, 20));
    let worst = 0;
    let largestSegment = 0;
    let checks = 0;
    const onAck = async (): Promise<void> => {
      if (++checks % 5 !== 0) return;
      const j = await journalBytes(jdir);
      worst = Math.max(worst, j.bytes);
      largestSegment = Math.max(largestSegment, j.largestSegment);
    };
    await Promise.all(devices.map((d) => d.push(() => spine.gw.base, 250, { retryUntilAcked: true, onAck })));
    const ingested = devices.reduce((n, d) => n + d.acked.length, 0);
    expect(ingested).toBe(50_000);
    expect(worst).toBeGreaterThan(MAX_BYTES / 2);
    expect(worst).toBeLessThanOrEqual(MAX_BYTES + largestSegment);

    const before = (await http("GET", `${spine.gw.base}/metrics`)).body;
    const dropped = metric(before, "floorgate_drops_total", { reason: "drop_oldest", output: "cloud" });
    expect(dropped).toBeGreaterThan(0);

    await spine.broker.start();
    await spine.collector.reconnect();
    // Wait until the output has caught up: lag 0 in /healthz.
    await expect.poll(async () => (await getJson<{ outputs: Record<string, { lag: number }> }>(`${spine.gw.base}/healthz`)).outputs.cloud!.lag, { timeout: 60_000, interval: 100 }).toBe(0);
    await spine.collector.until(() => {
      let n = 0;
      for (const s of allValues(spine.collector.messages).values()) n += s.size;
      return n >= ingested - dropped;
    }, 30_000);

    let delivered = 0;
    for (const s of allValues(spine.collector.messages).values()) delivered += s.size;
    const health = await getJson<{ outputs: Record<string, { lag: number; dropped: number }>; journal: { dropped: number } }>(`${spine.gw.base}/healthz`);
    const pending = health.outputs.cloud!.lag;
    expect(health.outputs.cloud!.dropped).toBe(dropped);
    expect(delivered + dropped + pending).toBe(ingested);
  }, 180_000);
});
