import { describe, expect, it } from "vitest";
import { ColumnsBuilder, SampleColumns } from "../../src/core/sample-columns.js";
import { DeviceTable } from "../../src/core/device-table.js";

/** Columns for device "d" as a poller makes them: one shared tag list, values in place. */
function poll(tags: readonly string[], values: number[], ts: number, units?: readonly (string | undefined)[]): SampleColumns {
  const b = new ColumnsBuilder("d", tags.length);
  values.forEach((v, i) => b.set(i, v, 0, ts));
  return b.done(tags, units);
}

describe("DeviceTable latest values from columns", () => {
  it("shows the newest value per tag across polls of one shape, of another shape, and pushed samples", () => {
    const reg = new DeviceTable();
    reg.addConfigured("d", "modbus");
    const all = ["a", "b", "c"];
    const units = ["bar", undefined, undefined];
    reg.observeColumns(poll(all, [1, 2, 3], 1000, units));
    reg.observeColumns(poll(all, [4, 5, 6], 2000, units)); // supersedes the first whole
    const fast = ["b"];
    reg.observeColumns(poll(fast, [50], 2500)); // another shape: only b moves
    reg.observe([{ device: "d", tag: "c", value: "text", quality: "bad", ts: 2600, reason: "x" }]);
    reg.observeColumns(poll(fast, [51], 2700));
    const tags = reg.tags("d")!;
    expect(tags).toEqual([
      { tag: "a", value: 4, quality: "good", ts: new Date(2000).toISOString(), unit: "bar" },
      { tag: "b", value: 51, quality: "good", ts: new Date(2700).toISOString() },
      { tag: "c", value: "text", quality: "bad", ts: new Date(2600).toISOString() },
    ]);
    expect(reg.list().find((d) => d.id === "d")!.lastSampleTs).toBe(new Date(2700).toISOString());
    // A read in between changes nothing that follows.
    reg.observeColumns(poll(all, [7, 8, 9], 3000, units));
    expect(reg.tags("d")!.map((t) => t.value)).toEqual([7, 8, 9]);
    reg.observeColumns(poll(all, [10, 11, 12], 4000, units));
    expect(reg.tags("d")!.map((t) => t.value)).toEqual([10, 11, 12]);
  });

  it("ignores columns of unknown devices and takes columns of several devices sample by sample", () => {
    const reg = new DeviceTable();
    reg.addConfigured("x", "modbus");
    reg.observeColumns(poll(["a"], [1], 5)); // device "d" is not known
    expect(reg.tags("d")).toBeUndefined();
    reg.observeColumns(SampleColumns.fromSamples([
      { device: "x", tag: "t", value: 1, quality: "good", ts: 10 },
      { device: "y", tag: "t", value: 2, quality: "good", ts: 11 },
    ]));
    expect(reg.tags("x")).toEqual([{ tag: "t", value: 1, quality: "good", ts: new Date(10).toISOString() }]);
  });
});
