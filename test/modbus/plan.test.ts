import { describe, it, expect } from "vitest";
import { planReads, splitRequest, type PlanItem } from "../../drivers/modbus/plan.js";
import { planDevice } from "../../drivers/modbus/device.js";
import type { ModbusDeviceConfig, ModbusTagConfig } from "../../drivers/modbus/config.js";

type Row = [area: PlanItem["area"], address: number, width: number, unitId?: number, pollMs?: number];
const items = (rows: Row[]): PlanItem[] =>
  rows.map(([area, address, width, unitId = 1, pollMs = 1000], id) => ({ id, area, address, width, unitId, pollMs }));
const shape = (rows: Row[], maxGap = 8, tagByTag = false): string[] =>
  planReads(items(rows), { maxGap, tagByTag }).map((r) => `${r.pollMs}/u${r.unitId}/${r.area}[${r.start}+${r.count}]:${r.items.map((i) => i.id).join(",")}`);

describe("planReads: planning table", () => {
  const table: { name: string; rows: Row[]; maxGap?: number; tagByTag?: boolean; want: string[] }[] = [
    { name: "contiguous registers merge", rows: [["holding", 0, 2], ["holding", 2, 2], ["holding", 4, 1]], want: ["1000/u1/holding[0+5]:0,1,2"] },
    { name: "gap equal to maxGap is bridged", rows: [["holding", 0, 1], ["holding", 9, 1]], maxGap: 8, want: ["1000/u1/holding[0+10]:0,1"] },
    { name: "gap above maxGap splits", rows: [["holding", 0, 1], ["holding", 10, 1]], maxGap: 8, want: ["1000/u1/holding[0+1]:0", "1000/u1/holding[10+1]:1"] },
    { name: "maxGap 0 merges only adjacent", rows: [["holding", 0, 1], ["holding", 1, 1], ["holding", 3, 1]], maxGap: 0, want: ["1000/u1/holding[0+2]:0,1", "1000/u1/holding[3+1]:2"] },
    { name: "unsorted input is sorted by address", rows: [["input", 20, 2], ["input", 10, 2], ["input", 14, 2]], want: ["1000/u1/input[10+12]:1,2,0"] },
    { name: "areas never mix", rows: [["holding", 0, 1], ["input", 1, 1], ["coil", 2, 1], ["discrete", 3, 1]], want: ["1000/u1/holding[0+1]:0", "1000/u1/input[1+1]:1", "1000/u1/coil[2+1]:2", "1000/u1/discrete[3+1]:3"] },
    { name: "unit ids never mix", rows: [["holding", 0, 1, 2], ["holding", 1, 1, 1]], want: ["1000/u1/holding[1+1]:1", "1000/u2/holding[0+1]:0"] },
    { name: "poll rates never mix", rows: [["holding", 0, 1, 1, 500], ["holding", 1, 1, 1, 1000]], want: ["500/u1/holding[0+1]:0", "1000/u1/holding[1+1]:1"] },
    { name: "125-register limit", rows: [["holding", 0, 2], ["holding", 122, 2], ["holding", 124, 2]], maxGap: 200, want: ["1000/u1/holding[0+124]:0,1", "1000/u1/holding[124+2]:2"] },
    { name: "exactly 125 registers fit", rows: [["holding", 0, 1], ["holding", 124, 1]], maxGap: 200, want: ["1000/u1/holding[0+125]:0,1"] },
    { name: "2000-bit limit for coils", rows: [["coil", 0, 1], ["coil", 1999, 1], ["coil", 2000, 1]], maxGap: 5000, want: ["1000/u1/coil[0+2000]:0,1", "1000/u1/coil[2000+1]:2"] },
    { name: "overlapping tags (bit of a register and the register) share a read", rows: [["holding", 5, 1], ["holding", 5, 1], ["holding", 4, 2]], want: ["1000/u1/holding[4+2]:2,0,1"] },
    { name: "tagByTag reads one tag per request", rows: [["holding", 0, 2], ["holding", 2, 2]], tagByTag: true, want: ["1000/u1/holding[0+2]:0", "1000/u1/holding[2+2]:1"] },
    { name: "a wide string stays one request", rows: [["holding", 0, 100], ["holding", 100, 30]], want: ["1000/u1/holding[0+100]:0", "1000/u1/holding[100+30]:1"] },
    { name: "empty input", rows: [], want: [] },
  ];
  for (const c of table) {
    it(c.name, () => expect(shape(c.rows, c.maxGap, c.tagByTag)).toEqual(c.want));
  }

  it("never exceeds the limits and covers every tag exactly once (many random tags)", () => {
    const rows: Row[] = [];
    for (let i = 0; i < 500; i++) rows.push([i % 3 ? "holding" : "coil", (i * 37) % 3000, 1 + (i % 4), 1 + (i % 2)]);
    const plan = planReads(items(rows), { maxGap: 10, tagByTag: false });
    const seen = new Set<number>();
    for (const r of plan) {
      expect(r.count).toBeLessThanOrEqual(r.area === "coil" ? 2000 : 125);
      for (const it of r.items) {
        expect(seen.has(it.id)).toBe(false);
        seen.add(it.id);
        expect(it.address).toBeGreaterThanOrEqual(r.start);
        expect(it.address + it.width).toBeLessThanOrEqual(r.start + r.count);
      }
    }
    expect(seen.size).toBe(500);
  });
});

describe("splitRequest", () => {
  it("bisects by tag and tightens each half to its own tags", () => {
    const [req] = planReads(items([["holding", 0, 2], ["holding", 4, 1], ["holding", 10, 2], ["holding", 20, 4]]), { maxGap: 10, tagByTag: false });
    const halves = splitRequest(req!)!;
    expect(halves.map((h) => [h.start, h.count, h.items.map((i) => i.id)])).toEqual([[0, 5, [0, 1]], [10, 14, [2, 3]]]);
    expect(splitRequest(splitRequest(halves[0])![0])).toBeUndefined();
  });
});

describe("planDevice: plans shared between devices with one tag list", () => {
  const tags: ModbusTagConfig[] = [0, 1, 2, 40].map((a) => ({
    name: `t${a}`, area: "holding", address: a, type: "uint16", byteOrder: "ABCD", scale: 1, offset: 0, writable: false,
  }));
  const device = (id: string, unitId: number, list = tags): ModbusDeviceConfig => ({
    id, driver: "modbus", reconnectMaxMs: 30_000, disabled: false, pollMs: 1000, maxGap: 8, tagByTag: false, maxTimeouts: 3,
    connection: { transport: "tcp", host: "127.0.0.1", port: 502, unitId, timeoutMs: 1000 }, tags: list,
  });

  it("gives each device its own lists over the same request objects", () => {
    const a = planDevice(device("a", 1)).get(1000)!;
    const b = planDevice(device("b", 1)).get(1000)!;
    expect(a).not.toBe(b);
    expect(a).toHaveLength(2);
    expect(a.every((r, i) => r === b[i])).toBe(true);
    // a split in one device's list (what readPass does on an illegal-address reply) stays there
    a.splice(0, 1, ...splitRequest(a[0]!)!);
    expect(a).toHaveLength(3);
    expect(planDevice(device("c", 1)).get(1000)!).toHaveLength(2);
    expect(b).toHaveLength(2);
  });

  it("plans anew when a setting the plan depends on differs", () => {
    const u1 = planDevice(device("a", 1)).get(1000)!;
    const u2 = planDevice(device("b", 2)).get(1000)!;
    expect(u2[0]).not.toBe(u1[0]);
    expect(u2[0]!.unitId).toBe(2);
    const other = planDevice(device("c", 1, [...tags])).get(1000)!;
    expect(other[0]).not.toBe(u1[0]);
    expect(other.map((r) => [r.start, r.count])).toEqual(u1.map((r) => [r.start, r.count]));
  });
});
