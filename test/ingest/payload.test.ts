import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isTagName, parsePushBody, parseRfc3339, type ParseResult, type PushMessage } from "../../src/ingest/payload.js";
import { TAG_NAME_RE } from "../../src/core/sample.js";

/** A message's tag → value pairs in body order. */
const pairs = (m: PushMessage) => m.tags.map((t) => [t, m.values[t]]);

function problems(r: ParseResult) {
  if (r.ok) throw new Error("expected problems, got a valid body");
  return r.problems;
}
const paths = (body: unknown) => problems(parsePushBody(typeof body === "string" ? body : JSON.stringify(body))).map((p) => p.path);

describe("push payload", () => {
  it("parses one message", () => {
    const r = parsePushBody(JSON.stringify({ msgId: "agv-17-000123", ts: "2026-11-21T08:00:00.123Z", values: { battery_pct: 81.5, x_m: 12.25, loaded: true, s: "x", n: null } }));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.messages).toHaveLength(1);
    expect(r.messages[0]!.msgId).toBe("agv-17-000123");
    expect(r.messages[0]!.ts).toBe(Date.parse("2026-11-21T08:00:00.123Z"));
    expect(pairs(r.messages[0]!)).toEqual([["battery_pct", 81.5], ["x_m", 12.25], ["loaded", true], ["s", "x"], ["n", null]]);
  });

  it("parses an array of messages", () => {
    const r = parsePushBody(Buffer.from(JSON.stringify([{ values: { a: 1 } }, { msgId: "m", values: { "b.c-d_e": 2 } }])));
    expect(r.ok && r.messages.map(pairs)).toEqual([[["a", 1]], [["b.c-d_e", 2]]]);
    expect(r.ok && r.messages.map((m) => m.msgId)).toEqual([undefined, "m"]);
  });

  it("keeps a tag named __proto__ as a plain name", () => {
    const r = parsePushBody('{"values":{"__proto__":5}}');
    expect(r.ok && pairs(r.messages[0]!)).toEqual([["__proto__", 5]]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("names every problem by path", () => {
    expect(paths({ values: { x_m: "a".repeat(1025), ok: 1, "bad tag": 1, nested: { a: 1 }, arr: [1] } }))
      .toEqual(["values.x_m", 'values["bad tag"]', "values.nested", "values.arr"]);
    expect(paths([{ values: { a: 1 } }, { values: {} }, { ts: "yesterday", values: { a: 1 } }, 5]))
      .toEqual(["[1].values", "[2].ts", "[3]"]);
    expect(paths({ values: { a: 1 }, extra: 1, msgId: "" })).toEqual(["extra", "msgId"]);
    expect(paths({ msgId: "x".repeat(129), values: { a: 1 } })).toEqual(["msgId"]);
    expect(paths({ msgId: 5, ts: 5, values: [] })).toEqual(["msgId", "ts", "values"]);
    expect(paths({})).toEqual(["values"]);
    expect(paths({ values: null })).toEqual(["values"]);
    expect(paths({ values: { ["t".repeat(129)]: 1 } })[0]).toMatch(/^values\["t{40}…"\]$/);
  });

  it("tag names: the char-code check agrees with TAG_NAME_RE", () => {
    for (const t of ["a", "A.b-c_9", "t".repeat(128), "", "t".repeat(129), "a b", "é", "a/b", "a:b", "[", "`", "@", "{", "\u0000"]) {
      expect(isTagName(t), JSON.stringify(t)).toBe(TAG_NAME_RE.test(t));
    }
    fc.assert(fc.property(fc.string({ maxLength: 140, unit: "binary" }), (t) => isTagName(t) === TAG_NAME_RE.test(t)), { numRuns: 500 });
  });

  it("a polluted Object.prototype neither adds keys to a message nor breaks validation", () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.injected = 1;
    try {
      const r = parsePushBody('[{"msgId":"a","values":{"x":1}},{"values":{"y":2}}]');
      expect(r.ok && r.messages.map(pairs)).toEqual([[["x", 1]], [["y", 2]]]);
    } finally {
      delete proto.injected;
    }
  });

  it("refuses non-finite numbers (1e999 parses to Infinity)", () => {
    expect(problems(parsePushBody('{"values":{"a":1e999}}'))).toEqual([{ path: "values.a", message: "number out of range (must be finite)" }]);
  });

  it("refuses bad JSON, scalars and empty arrays at the top", () => {
    expect(paths("{")).toEqual([""]);
    expect(paths("")).toEqual([""]);
    expect(paths("42")).toEqual([""]);
    expect(paths("null")).toEqual([""]);
    expect(paths("[]")).toEqual([""]);
    expect(problems(parsePushBody("{")).at(0)!.message).toMatch(/^invalid JSON/);
  });

  it("caps the problem list", () => {
    const values: Record<string, unknown> = {};
    for (let i = 0; i < 200; i++) values[`t${i}`] = {};
    const p = problems(parsePushBody(JSON.stringify({ values })));
    expect(p).toHaveLength(51);
    expect(p[50]!.message).toBe("…and 150 more problems");
  });

  it("RFC 3339: strict calendar and offsets", () => {
    expect(parseRfc3339("2026-11-21T08:00:00.123Z")).toBe(Date.parse("2026-11-21T08:00:00.123Z"));
    expect(parseRfc3339("2026-11-21T10:00:00+02:00")).toBe(Date.parse("2026-11-21T08:00:00Z"));
    expect(parseRfc3339("2026-11-21t08:00:00.123456789z")).toBe(Date.parse("2026-11-21T08:00:00.123Z"));
    expect(parseRfc3339("2024-02-29T00:00:00Z")).toBe(Date.parse("2024-02-29T00:00:00Z"));
    for (const bad of ["2026-02-29T00:00:00Z", "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-21T24:00:00Z",
      "2026-11-21T08:00:60Z", "2026-11-21T08:00:00", "2026-11-21 08:00:00Z", "2026-11-21T08:00:00+24:00", "1700000000", "2026-11-21T08:00Z"]) {
      expect(parseRfc3339(bad), bad).toBeUndefined();
    }
  });

  it("property: every well-formed message parses to exactly its values", () => {
    const tag = fc.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/);
    const value = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.string({ maxLength: 50 }), fc.constant(null));
    const msg = fc.record({
      msgId: fc.option(fc.string({ minLength: 1, maxLength: 128 }), { nil: undefined }),
      ts: fc.option(fc.date({ min: new Date("2000-01-01"), max: new Date("2100-01-01"), noInvalidDate: true }), { nil: undefined }),
      values: fc.dictionary(tag, value, { minKeys: 1, maxKeys: 8 }),
    });
    fc.assert(fc.property(fc.array(msg, { minLength: 1, maxLength: 5 }), (msgs) => {
      const wire = msgs.map((m) => ({ ...(m.msgId !== undefined && { msgId: m.msgId }), ...(m.ts && { ts: m.ts.toISOString() }), values: m.values }));
      const r = parsePushBody(JSON.stringify(wire));
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      r.messages.forEach((p, i) => {
        const m = msgs[i]!;
        expect(p.msgId).toBe(m.msgId);
        expect(p.ts).toBe(m.ts?.getTime());
        // JSON turns -0 into 0
        expect(pairs(p)).toEqual(Object.entries(JSON.parse(JSON.stringify(m.values))));
      });
    }), { numRuns: 300 });
  });

  it("property: arbitrary JSON is either accepted or answered with located problems, never a throw", () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => {
      const r = parsePushBody(JSON.stringify(v));
      if (!r.ok) {
        expect(r.problems.length).toBeGreaterThan(0);
        for (const p of r.problems) { expect(typeof p.path).toBe("string"); expect(p.message.length).toBeGreaterThan(0); }
      }
    }), { numRuns: 500 });
  });
});
