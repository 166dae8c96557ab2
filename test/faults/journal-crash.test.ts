// Pass line (field note "kill -9 at random moments", journal level): a child process appending from
// concurrent writers (fixtures/crash-appender.ts) is SIGKILLed 6 times at random moments, in both
// fsync modes: every append it acknowledged is read back at its position with its exact samples,
// and positions stay dense (only torn, unacknowledged tails are ever lost).
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { openJournal } from "../../src/journal/segment-journal.js";
import { crashSamples } from "./fixtures/crash-appender.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const child = join(here, "fixtures/crash-appender.ts");

interface Ack {
  pos: number;
  count: number;
  writer: number;
  seq: number;
}

/**
 * Starts the appender, waits until it has acknowledged `acks` appends (plus a random extra few
 * milliseconds, so the kill lands anywhere in the write/fsync cycle), then SIGKILLs it.
 */
function runAndKill(dir: string, fsync: "batch" | "always", acks: number, extraMs: number): Promise<Ack[]> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", child, dir, fsync], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    const got: Ack[] = [];
    let buf = "";
    let err = "";
    let killing = false;
    p.stdout.setEncoding("utf8");
    p.stdout.on("data", (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^ack (\d+) (\d+) (\d+) (\d+)$/.exec(line);
        if (!m) continue;
        got.push({ pos: Number(m[1]), count: Number(m[2]), writer: Number(m[3]), seq: Number(m[4]) });
        if (got.length >= acks && !killing) {
          killing = true;
          setTimeout(() => p.kill("SIGKILL"), extraMs);
        }
      }
    });
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("error", reject);
    p.on("exit", (code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`appender exited by itself (code ${code}): ${err}`));
      else resolvePromise(got);
    });
  });
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("journal survives kill -9", () => {
  it("keeps every acknowledged append across repeated SIGKILLs at random moments", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fg-journal-crash-"));
    dirs.push(dir);
    const all: Ack[] = [];
    const rounds: ("batch" | "always")[] = ["batch", "always", "batch", "batch", "always", "batch"];
    let torn = 0;
    for (const [i, fsync] of rounds.entries()) {
      const acks = await runAndKill(dir, fsync, 20 + Math.floor(Math.random() * 300), Math.floor(Math.random() * 15));
      expect(acks.length).toBeGreaterThan(0);
      all.push(...acks);

      const j = await openJournal({
        dir,
        maxBytes: 256 * 1024 * 1024,
        overflow: "drop-oldest",
        fsync: "batch",
        fsyncIntervalMs: 5,
        segmentBytes: 16 * 1024,
        outputs: ["cloud"],
      });
      try {
        const st = j.stats();
        torn += st.tornRecords;
        const newest = Math.max(...all.map((a) => a.pos));
        expect(st.newestPos).toBeGreaterThanOrEqual(newest);
        const stored = await j.read(0, 10_000_000);
        const byPos = new Map(stored.map((s) => [s.pos, s]));
        for (const a of all) {
          const want = crashSamples(a.writer, a.seq);
          expect(want.length).toBe(a.count);
          for (let k = 0; k < a.count; k++) {
            const s = byPos.get(a.pos - a.count + 1 + k);
            expect(s, `round ${i}: acknowledged position ${a.pos - a.count + 1 + k} missing`).toBeDefined();
            expect(s).toMatchObject(want[k]!);
          }
        }
        // positions stay dense across crashes: nothing but torn, unacknowledged tails is ever lost
        expect(stored.map((s) => s.pos)).toEqual(Array.from({ length: stored.length }, (_, k) => k + 1));
      } finally {
        await j.close();
      }
    }
    // a kill between write and fsync leaves a torn tail only sometimes: report, don't assert
    console.info(`crash test: ${rounds.length} kills, ${all.length} acknowledged appends checked, ${torn} torn tail records dropped`);
  });
});
