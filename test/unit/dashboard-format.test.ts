/**
 * The dashboard's pure parts, imported as the gateway serves them (src/http/public/*.js): value
 * rounding, binary sizes, the 24-hour clock, ages, the languages, the write value parser and the
 * trend's history ring.
 */
import { describe, it, expect } from "vitest";
// @ts-expect-error plain browser modules without type declarations
import { formatters } from "../../src/http/public/format.js";
// @ts-expect-error plain browser modules without type declarations
import { initialLang, missingKeys, translator } from "../../src/http/public/i18n.js";
// @ts-expect-error plain browser modules without type declarations
import { parseWriteValue } from "../../src/http/public/write.js";
// @ts-expect-error plain browser modules without type declarations
import { HISTORY_SLOTS, TagState } from "../../src/http/public/model.js";

interface Fmt { value(v: unknown): string; bytes(n: number): string; time(ms: number, now?: number): string; age(ms: number): string; count(n: number): string }
const en = formatters("en") as Fmt;

describe("dashboard formatting", () => {
  it("rounds readings to what they carry and keeps integers exact", () => {
    expect(en.value(1331.0003662109375)).toBe("1331");
    expect(en.value(Math.fround(24.65))).toBe("24.65");
    expect(en.value(155.04999)).toBe("155");
    expect(en.value(0.123456)).toBe("0.123");
    expect(en.value(-3.14159)).toBe("-3.142");
    expect(en.value(123456789)).toBe("123456789");
    expect(en.value(2 ** 53)).toBe("9.007199e+15");
    expect(en.value(0.0000123)).toBe("1.23e-5");
    expect(en.value(true)).toBe("true");
    expect(en.value(null)).toBe("—");
    expect(en.value("Heating")).toBe("Heating");
  });

  it("shows sizes in binary units and counts grouped", () => {
    expect(en.bytes(512)).toBe("512 B");
    expect(en.bytes(8550)).toBe("8.35 KiB");
    expect(en.bytes(256 * 1024 * 1024)).toBe("256 MiB");
    expect(en.bytes(1024 ** 3)).toBe("1 GiB");
    expect(en.count(1234567)).toBe("1,234,567");
  });

  it("uses a 24-hour clock in both languages, with the date when it is not today", () => {
    const at = new Date(2026, 10, 21, 15, 4, 5).getTime();
    expect(en.time(at, at)).toBe("15:04:05");
    expect((formatters("zh-CN") as Fmt).time(at, at)).toBe("15:04:05");
    expect(en.time(at, at + 86_400_000)).toMatch(/^11\/21\/2026 15:04:05$/);
    expect(en.age(400)).toBe("0.4 s");
    expect(en.age(65_000)).toBe("65 s");
    expect(en.age(600_000)).toBe("10 min");
  });
});

describe("dashboard languages", () => {
  it("has every text in both languages and follows the browser unless a choice was saved", () => {
    expect(missingKeys()).toEqual([]);
    const store = (v: string | null) => ({ getItem: () => v, setItem: () => {} });
    expect(initialLang(store(null), ["zh-CN", "en"])).toBe("zh-CN");
    expect(initialLang(store(null), ["zh-TW"])).toBe("zh-CN");
    expect(initialLang(store(null), ["de-DE", "en-US"])).toBe("en");
    expect(initialLang(store("en"), ["zh-CN"])).toBe("en");
    expect(translator("zh-CN")("state.offline")).toBe("离线");
    expect(translator("en")("write.confirmQ", { v: 5, device: "d", tag: "t" })).toBe("Write 5 to d / t?");
  });
});

describe("dashboard write values", () => {
  it("parses what the operator typed into the tag's current type", () => {
    expect(parseWriteValue("42.5", 1)).toEqual({ ok: true, value: 42.5 });
    expect(parseWriteValue("42,5", 1)).toEqual({ ok: true, value: 42.5 });
    expect(parseWriteValue("abc", 1)).toEqual({ ok: false });
    expect(parseWriteValue("", 1)).toEqual({ ok: false });
    expect(parseWriteValue("true", false)).toEqual({ ok: true, value: true });
    expect(parseWriteValue("maybe", false)).toEqual({ ok: false });
    expect(parseWriteValue("auto", "manual")).toEqual({ ok: true, value: "auto" });
  });
});

describe("dashboard trend history", () => {
  it("keeps one point per second, the newest of that second, for the last HISTORY_SLOTS seconds", () => {
    const t = new TagState("d", "x");
    t.set(1, "good", 1_000_000);
    t.set(2, "good", 1_000_500); // same second: replaces
    t.set(3, "good", 1_001_000);
    t.set(9, "good", 999_000); // out of order: ignored
    expect(t.series()).toEqual([[1000, 1001], [2, 3]]);
    for (let i = 0; i < HISTORY_SLOTS + 10; i++) t.set(i, "good", 2_000_000 + i * 1000);
    const [xs, ys] = t.series() as [number[], number[]];
    expect(xs.length).toBe(HISTORY_SLOTS);
    expect(xs[0]).toBe(2010);
    expect(ys.at(-1)).toBe(HISTORY_SLOTS + 9);
    const s = new TagState("d", "s");
    s.set("text", "good", 1_000_000);
    expect(s.len).toBe(0); // strings take no history
  });
});
