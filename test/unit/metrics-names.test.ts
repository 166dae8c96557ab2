import { describe, expect, it } from "vitest";
import { Metrics } from "../../src/runtime/status/metrics.js";

describe("/metrics names", () => {
  it("Node's own process and runtime metrics carry the floorgate_ prefix once, with no repeated word", async () => {
    const m = new Metrics({
      deviceStates: () => [],
      journal: () => ({ bytes: 0, records: 0, segments: 0, lag: {}, torn: 0, writable: true }),
      outputsUp: () => ({}),
      samplesIn: () => [],
    });
    const text = await m.text();
    const names = new Set(text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]));
    expect(names).toContain("floorgate_process_cpu_seconds_total");
    expect(names).toContain("floorgate_process_resident_memory_bytes");
    expect(names).toContain("floorgate_nodejs_eventloop_lag_p99_seconds");
    for (const name of names) {
      expect(name).toMatch(/^floorgate_/);
      const words = name.split("_");
      // no word twice in a row (floorgate_process_process_cpu_seconds_total was the defect)
      expect(words.some((w, i) => i > 0 && words[i - 1] === w), name).toBe(false);
    }
  });
});
