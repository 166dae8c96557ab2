import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/core/logger.js";
import { SlowIoReporter } from "../../src/runtime/lifecycle/slow-io.js";

describe("slow journal disk operations", () => {
  it("are all counted, and logged at most once per interval with what came in between", () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ level: "info", destination: { write: (l: string) => { lines.push(JSON.parse(l) as Record<string, unknown>); } } });
    let now = 1_000_000;
    const counted: string[] = [];
    const r = new SlowIoReporter(log, 60_000, () => now);
    r.countInto((op) => counted.push(op));
    const commit = (ms: number) => ({ kind: "slow-io" as const, op: "commit" as const, segment: "00000000000000000001.seg", ms, phases: { create: ms - 10, room: 0, write: 5, sync: 5 } });

    r.report(commit(1200));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, op: "commit", ms: 1200, phases: { create: 1190 }, msg: "journal: slow disk, commit took 1200 ms" });

    now += 10_000;
    r.report(commit(700));
    r.report({ kind: "slow-io", op: "delete", segment: "00000000000000000001.seg", ms: 2500 });
    now += 49_999;
    r.report(commit(600));
    expect(lines).toHaveLength(1);

    now += 1;
    r.report(commit(900));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ ms: 900, slowSinceLastLine: 3, slowestSinceLastLine: 2500 });
    expect(counted).toEqual(["commit", "commit", "delete", "commit", "commit"]);

    now += 60_000;
    r.report(commit(800));
    expect(lines[2]).not.toHaveProperty("slowSinceLastLine");
  });

  it("keeps the counts reported before the metrics exist", () => {
    const r = new SlowIoReporter(createLogger({ level: "silent" }));
    r.report({ kind: "slow-io", op: "delete", segment: "00000000000000000001.seg", ms: 700 });
    const counted: string[] = [];
    r.countInto((op) => counted.push(op));
    r.report({ kind: "slow-io", op: "commit", segment: "00000000000000000002.seg", ms: 600 });
    expect(counted).toEqual(["delete", "commit"]);
  });
});
