import { describe, expect, it } from "vitest";
import { Metrics } from "../../src/runtime/status/metrics.js";

const journal = () => ({ bytes: 10, records: 2, segments: 1, lag: { cloud: 3 }, torn: 0, writable: true });

function metricsWith(devices: { device: string; state: string; count: number }[]): Metrics {
  return new Metrics({
    deviceStates: () => devices.map(({ device, state }) => ({ device, state })),
    journal,
    outputsUp: () => ({ cloud: true }),
    samplesIn: () => devices.map(({ device, count }) => ({ device, count })),
  });
}

/** Series of one family as `labels → value`. */
function series(text: string, family: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${family}{`)) continue;
    const close = line.lastIndexOf("} ");
    out.set(line.slice(family.length + 1, close), Number(line.slice(close + 2)));
  }
  return out;
}

describe("Metrics.text", () => {
  it("writes one series per device and state, and per-device sample counts, with label values escaped", async () => {
    const m = metricsWith([
      { device: "press-1", state: "online", count: 500 },
      { device: 'odd"dev\\ice\nx', state: "error", count: 0 },
      { device: "agv-7", state: "offline", count: 12 },
    ]);
    const text = await m.text();
    const states = series(text, "floorgate_device_state");
    expect(states.size).toBe(15);
    expect(states.get('device="press-1",state="online"')).toBe(1);
    expect(states.get('device="press-1",state="offline"')).toBe(0);
    expect(states.get('device="odd\\"dev\\\\ice\\nx",state="error"')).toBe(1);
    expect(states.get('device="agv-7",state="offline"')).toBe(1);
    expect([...states.values()].reduce((a, b) => a + b, 0)).toBe(3);
    const inSeries = series(text, "floorgate_samples_in_total");
    // A device with nothing accepted has no series, as a prom-client counter never incremented.
    expect(inSeries).toEqual(new Map([['device="press-1"', 500], ['device="agv-7"', 12]]));
    // Every family is declared once, and every line is a comment, a series or blank.
    for (const fam of ["floorgate_device_state", "floorgate_samples_in_total", "floorgate_journal_lag_samples"]) {
      expect(text.split("\n").filter((l) => l === `# TYPE ${fam} ${fam.endsWith("_total") ? "counter" : "gauge"}`)).toHaveLength(1);
    }
    for (const line of text.split("\n")) expect(line).toMatch(/^(#.*|[a-z_:][a-z0-9_:]*(\{.*\})? -?[0-9.e+-]+(\s\d+)?|[a-z_:][a-z0-9_:]*(\{.*\})? (NaN|[+-]Inf)|)$/i);
    expect(series(text, "floorgate_journal_lag_samples").get('output="cloud"')).toBe(3);
  });

  it("reflects state changes between scrapes", async () => {
    const devices = [{ device: "d", state: "connecting", count: 0 }];
    const m = metricsWith(devices);
    expect(series(await m.text(), "floorgate_device_state").get('device="d",state="connecting"')).toBe(1);
    devices[0] = { device: "d", state: "online", count: 100 };
    const text = await m.text();
    expect(series(text, "floorgate_device_state").get('device="d",state="connecting"')).toBe(0);
    expect(series(text, "floorgate_device_state").get('device="d",state="online"')).toBe(1);
    expect(series(text, "floorgate_samples_in_total").get('device="d"')).toBe(100);
  });
});
