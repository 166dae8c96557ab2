// Pass lines (field notes "kill -9 at random moments" and "Torn tail at random offsets"): 20 devices
// push over HTTP into the built daemon while it is SIGKILLed 10 times at random moments (seeded,
// FLOORGATE_TEST_SEED replays a run): after the restarts every acknowledged sample reaches the
// broker. Then the last journal segment is cut at a random offset inside its last frame: at restart
// only that torn record is dropped and counted (`tornRecords` 1, "torn tail" logged), the journal is
// writable, and every other acknowledged sample and new pushes still arrive.
import { describe, expect, it } from "vitest";
import { open, truncate } from "node:fs/promises";
import { join } from "node:path";
import { getJson } from "../helpers/gateway-process.js";
import { TestDevice } from "../helpers/pusher.js";
import { allValues, DEVICE_TOKEN, waitDelivered, useSpine } from "./spine-fixture.js";
import { listSegments } from "../../src/journal/segment-scan.js";
import { checkFrame, decodeFrame } from "../../src/journal/frame-codec.js";
import type { JournaledSample } from "../../src/core/sample.js";

/** Random moments from a logged seed, so a failing run can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

describe("spine: kill -9 and torn tails", () => {
  const spine = useSpine({ consumerId: "e2e-crash-consumer" });
  const devices = Array.from({ length: 20 }, (_, i) => new TestDevice(`dev-${i}`, DEVICE_TOKEN, 5));
  const seed = Number(process.env.FLOORGATE_TEST_SEED ?? Date.now() % 100000);
  const random = rng(seed);

  it(`loses no acknowledged sample across 10 SIGKILLs at random moments (seed ${seed})`, async () => {
    for (let round = 0; round < 10; round++) {
      if (round > 0) await spine.gw.restart();
      const stop = { now: false };
      const pushing = devices.map(async (d) => {
        while (!stop.now) {
          const before = d.unacked.length;
          await d.push(() => spine.gw.base, 1);
          if (d.unacked.length > before) return; // the gateway is gone: this device waits for the next round
        }
      });
      await new Promise((r) => setTimeout(r, 100 + random() * 500));
      await spine.gw.kill();
      stop.now = true;
      await Promise.all(pushing);
    }
    await spine.gw.restart();
    const total = devices.reduce((n, d) => n + d.acked.length, 0);
    expect(total).toBeGreaterThan(1000);
    await waitDelivered(spine.collector, devices, 60_000);
  }, 240_000);

  it("drops only the torn tail record at restart, counts it, and keeps serving", async () => {
    // A few more acknowledged pushes, then a crash, then the last segment cut inside its last frame.
    await Promise.all(devices.map((d) => d.push(() => spine.gw.base, 3)));
    await spine.gw.kill();
    const jdir = join(spine.setup.dir, "data", "journal");
    const segs = await listSegments(jdir);
    const last = segs[segs.length - 1]!;
    const file = join(jdir, last.name);
    const fh = await open(file, "r");
    const buf = await fh.readFile();
    await fh.close();
    let off = 0;
    let lastOff = -1;
    let lastSize = 0;
    for (;;) {
      const c = checkFrame(buf, off, buf.length);
      if (!c.ok) break;
      lastOff = off;
      lastSize = c.header.size;
      off += c.header.size;
    }
    expect(lastOff).toBeGreaterThanOrEqual(0);
    const torn: JournaledSample[] = [];
    decodeFrame(buf, lastOff, 0, torn, Number.MAX_SAFE_INTEGER);
    const cut = lastOff + 1 + Math.floor(random() * (lastSize - 1));
    await truncate(file, cut);

    await spine.gw.restart();
    const health = await getJson<{ journal: { tornRecords: number; writable: boolean } }>(`${spine.gw.base}/healthz`);
    expect(health.journal.tornRecords).toBe(1);
    expect(health.journal.writable).toBe(true);
    expect(spine.gw.output.join("")).toContain("torn tail");

    // Everything acknowledged except the torn record's samples still arrives, and new pushes flow.
    const except = new Set(torn.map((s) => `${s.device}/${String(s.value)}`));
    await Promise.all(devices.map((d) => d.push(() => spine.gw.base, 2)));
    await waitDelivered(spine.collector, devices, 60_000, except);
    const got = allValues(spine.collector.messages);
    expect(got.size).toBe(20);
  }, 120_000);
});
