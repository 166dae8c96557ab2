/**
 * Fault: a device retries msgIds across a gateway SIGKILL.
 *
 * Pass line: devices push messages with msgIds while the daemon is SIGKILLed mid-stream; after a
 * restart every msgId ever sent (acknowledged or not) is sent again; every sample is then in the
 * journal exactly once, every retry of a stored msgId is answered 202 as a duplicate, and the
 * answers' duplicate counts add up to the msgIds stored before the retry.
 */
import { mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { openJournal } from "../../src/journal/segment-journal.js";
import { http, startGateway, writeConfig, type GatewayProcess } from "../helpers/gateway-process.js";
import { freePort } from "../helpers/ports.js";

const TOKEN = "idem-token";
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface Answer { status: number; duplicates: number }

async function push(base: string, device: string, k: number): Promise<Answer> {
  const values: Record<string, number> = { a: k * 2, b: k * 2 + 1 };
  const r = await http("POST", `${base}/api/v1/ingest/${device}`, {
    body: JSON.stringify({ msgId: `${device}-m${k}`, values }),
    headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
  }).catch(() => ({ status: 0, body: "", headers: {} }));
  const duplicates = r.status === 202 ? (JSON.parse(r.body) as { duplicates: number }).duplicates : 0;
  return { status: r.status, duplicates };
}

describe("msgId idempotency across kill -9", () => {
  it("stores each msgId once although every one is retried after a SIGKILL and restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fg-idem-"));
    dirs.push(dir);
    const port = await freePort();
    const cfg = await writeConfig(dir, `
gateway: { id: idem-edge, group: t, dataDir: ./data }
http: { listen: "127.0.0.1:${port}" }
journal: { fsync: batch, fsyncIntervalMs: 5 }
ingest:
  http: true
  ratePerDevice: 100000
  devices:
    - { id: "agv-*", token: "${TOKEN}" }
`);
    const gw: GatewayProcess = await startGateway(cfg, port);
    // a failing assertion must not leave the daemon running
    onTestFinished(() => gw.kill().catch(() => undefined));
    const base = `http://127.0.0.1:${port}`;
    const devices = ["agv-1", "agv-2", "agv-3", "agv-4"];
    const sent = new Map<string, number>(); // device → msgIds sent (0..n-1)
    let acked = 0;
    let killed = false;
    // four devices push as fast as they can; the kill lands while requests are in flight
    const pushers = devices.map(async (d) => {
      let k = 0;
      while (!killed) {
        sent.set(d, k + 1);
        const a = await push(base, d, k++);
        if (a.status === 202) acked++;
      }
    });
    const t0 = Date.now();
    while (acked < 400) {
      if (Date.now() - t0 > 20_000) throw new Error(`only ${acked} acknowledged: ${gw.output.join("").slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    killed = true;
    await gw.kill();
    await Promise.all(pushers);
    await gw.restart();
    const storedBefore = (JSON.parse((await http("GET", `${base}/healthz`)).body) as { journal: { newestPos: number } }).journal.newestPos;
    expect(storedBefore).toBeGreaterThanOrEqual(acked * 2);

    // every msgId ever sent, again: stored ones are duplicates, lost ones (never acknowledged) are stored now
    let dupAnswers = 0;
    for (const d of devices) {
      for (let k = 0; k < sent.get(d)!; k++) {
        const a = await push(base, d, k);
        expect(a.status).toBe(202);
        dupAnswers += a.duplicates;
      }
    }
    // and once more: now every one is a duplicate
    let second = 0;
    for (const d of devices) for (let k = 0; k < sent.get(d)!; k++) second += (await push(base, d, k)).duplicates;
    const total = devices.reduce((n, d) => n + sent.get(d)!, 0);
    expect(second).toBe(total);
    expect(dupAnswers).toBeGreaterThanOrEqual(acked);
    expect((await gw.stop()).code).toBe(0);

    const j = await openJournal({ dir: join(dir, "data", "journal"), maxBytes: 1 << 30, overflow: "reject", fsync: "batch", fsyncIntervalMs: 5, outputs: [] });
    const all = await j.read(0, 10_000_000);
    await j.close();
    const seen = new Map<string, number>();
    for (const s of all) {
      const key = `${s.device}/${s.value as number}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    const twice = [...seen.entries()].filter(([, n]) => n > 1);
    expect(twice).toEqual([]);
    expect(seen.size).toBe(total * 2);
    // what survived the kill (2 samples per msgId) is exactly what the retry found as duplicates
    expect(dupAnswers).toBe(storedBefore / 2);
  });
});
