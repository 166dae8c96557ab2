import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isTagName, parsePushBatch, parsePushBody, parseRfc3339, type BatchResult, type ParseResult, type PushMessage } from "../../src/ingest/payload.js";
import { TAG_NAME_RE } from "../../src/core/sample.js";
import { refParsePushBody, refParseRfc3339 } from "./payload-reference.js";

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

  describe("against the former RegExp parser (payload-reference.ts)", () => {
    const p2 = (v: number) => String(v).padStart(2, "0");
    const two = (max: number) => fc.integer({ min: 0, max }).map((v) => String(v).padStart(2, "0"));
    const digitsOf = (n: number) => fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: n, maxLength: n });
    const year = fc.oneof(
      fc.integer({ min: 0, max: 9999 }),
      fc.constantFrom(0, 4, 50, 96, 99, 100, 400, 1900, 1970, 2000, 2024, 2100, 9999),
    ).map((y) => String(y).padStart(4, "0"));
    const dash = fc.constantFrom("-", "-", "-", "-", "/", "");
    const colon = fc.constantFrom(":", ":", ":", ":", ".", "");
    /** `YYYY-MM-DDThh`: the part the parser caches */
    const prefix = fc.tuple(year, dash, two(13), dash, two(32), fc.constantFrom("T", "T", "t", " ", "x"), two(25))
      .map(([y, d1, mo, d2, d, t, h]) => `${y}${d1}${mo}${d2}${d}${t}${h}`);
    const frac = fc.oneof(fc.constant(""), fc.integer({ min: 0, max: 11 }).chain(digitsOf).map((d) => `.${d}`));
    const zone = fc.oneof(
      fc.constantFrom("Z", "z", "", "ZZ", "Z\n", "\nZ", "+", "-00:00", "+00:00", "UTC"),
      fc.tuple(fc.constantFrom("+", "-", "~"), two(25), colon, two(61)).map(([s, h, c, m]) => `${s}${h}${c}${m}`),
    );
    const rest = fc.tuple(colon, two(61), colon, two(61), frac, zone).map(([c1, mi, c2, se, f, z]) => `${c1}${mi}${c2}${se}${f}${z}`);
    /** well-formed but for the calendar: any day 01–31 of any month, any year, offsets up to ±23:59 */
    const formed = fc.tuple(year, fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 31 }), fc.constantFrom("T", "t"), fc.integer({ min: 0, max: 23 }),
      fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 59 }), fc.oneof(fc.constant(""), fc.integer({ min: 1, max: 9 }).chain(digitsOf).map((d) => `.${d}`)),
      fc.oneof(fc.constantFrom("Z", "z"), fc.tuple(fc.constantFrom("+", "-"), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([sg, h, m]) => `${sg}${p2(h)}:${p2(m)}`)))
      .map(([y, mo, d, t, h, mi, se, f, z]) => `${y}-${p2(mo)}-${p2(d)}${t}${p2(h)}:${p2(mi)}:${p2(se)}${f}${z}`);
    /** a char replaced, inserted or deleted somewhere: non-ASCII digits, separators, blanks */
    const mutated = (s: string) => fc.tuple(fc.nat(), fc.constantFrom("replace", "insert", "delete"), fc.constantFrom(..."0189-:T.Z+ tz\n\u0663\uff11"))
      .map(([at, kind, ch]) => {
        const i = at % (s.length + 1);
        return kind === "replace" ? s.slice(0, i) + ch + s.slice(i + 1) : kind === "insert" ? s.slice(0, i) + ch + s.slice(i) : s.slice(0, i) + s.slice(i + 1);
      });
    const mutate = (s: string) => fc.oneof(fc.constant(s), mutated(s));
    const timestamp = fc.oneof(
      { weight: 4, arbitrary: formed },
      { weight: 2, arbitrary: formed.chain(mutated) },
      { weight: 3, arbitrary: fc.tuple(prefix, rest).map(([p, r]) => p + r).chain(mutate) },
      { weight: 1, arbitrary: fc.tuple(formed, fc.constantFrom("28", "29", "29", "30")).map(([f, d]) => `${f.slice(0, 5)}02-${d}${f.slice(10)}`) },
      { weight: 1, arbitrary: fc.date({ min: new Date(-62_135_596_800_000), max: new Date(253_402_300_799_999), noInvalidDate: true }).map((d) => d.toISOString()) },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    );

    it("RFC 3339: same result for every string, valid or not (property)", () => {
      for (const s of ["0000-02-29T00:00:00Z", "0050-06-01T12:00:00Z", "1900-02-29T00:00:00Z", "2000-02-29T23:59:59.999999999+23:59",
        "2024-02-29T00:00:00.1Z", "2026-11-21T08:00:00.Z", "2026-11-21T08:00:00.0000000001Z", "2026-11-21T08:00:00Z ", " 2026-11-21T08:00:00Z",
        "2026-11-21T08:00:00-00:00", "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.29Z", "9999-12-31T23:59:59.999-23:59"]) {
        expect(parseRfc3339(s), s).toBe(refParseRfc3339(s));
      }
      fc.assert(fc.property(timestamp, (s) => Object.is(parseRfc3339(s), refParseRfc3339(s))), { numRuns: 5000 });
    });

    it("RFC 3339: runs sharing a cached date and hour, valid and not, interleaved with others (property)", () => {
      fc.assert(fc.property(fc.array(fc.tuple(fc.oneof(prefix, fc.constant("2026-11-21T08")), fc.array(fc.oneof(rest, formed.map((f) => f.slice(13)), rest.chain(mutated)), { minLength: 1, maxLength: 6 })), { minLength: 1, maxLength: 4 }), (runs) => {
        for (const [p, rs] of runs) for (const r of rs) expect(parseRfc3339(p + r), p + r).toBe(refParseRfc3339(p + r));
      }), { numRuns: 1000 });
    });

    /** A JSON value, or text written as is (`1e999`, broken literals). Objects are entry lists: keys may repeat. */
    type Wire = null | boolean | number | string | { raw: string } | { entries: [string, Wire][] } | { items: Wire[] };
    const toText = (w: Wire): string => {
      if (w === null || typeof w !== "object") return JSON.stringify(w);
      if ("raw" in w) return w.raw;
      if ("items" in w) return `[${w.items.map(toText).join(",")}]`;
      return `{${w.entries.map(([k, v]) => `${JSON.stringify(k)}:${toText(v)}`).join(",")}}`;
    };
    const tagName = fc.oneof(
      { weight: 8, arbitrary: fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/) },
      { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "toString", "0", "42", "a b", "é", "", "t".repeat(128), "t".repeat(129), `${"x".repeat(45)} `) },
      { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
    );
    const scalar: fc.Arbitrary<Wire> = fc.oneof(
      { weight: 6, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
      { weight: 3, arbitrary: fc.integer() },
      { weight: 2, arbitrary: fc.boolean() },
      { weight: 2, arbitrary: fc.constant(null) },
      { weight: 3, arbitrary: fc.string({ maxLength: 20 }) },
      { weight: 1, arbitrary: fc.constantFrom<Wire>("s".repeat(1024), "s".repeat(1025), { raw: "1e999" }, { raw: "-1e999" }, { raw: "-0" }, { items: [1] }, { entries: [["a", 1]] }) },
    );
    const valuesObj: fc.Arbitrary<Wire> = fc.array(fc.tuple(tagName, scalar), { maxLength: 6 }).map((entries) => ({ entries }));
    const message: fc.Arbitrary<Wire> = fc.record({
      msgId: fc.option(fc.oneof(
        { weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 20 }) },
        { weight: 1, arbitrary: fc.constantFrom<Wire>("", "m".repeat(128), "m".repeat(129), 5, null) },
      ), { nil: undefined }),
      ts: fc.option(fc.oneof({ weight: 6, arbitrary: timestamp }, { weight: 1, arbitrary: fc.constantFrom<Wire>(5, null, { raw: "[]" }) }), { nil: undefined }),
      values: fc.option(fc.oneof({ weight: 8, arbitrary: valuesObj }, { weight: 1, arbitrary: fc.constantFrom<Wire>(null, { items: [] }, "x", { entries: [] }) }), { nil: undefined }),
      extra: fc.option(fc.tuple(fc.constantFrom("extra", "msgId", "values", "__proto__", "1", "Values"), scalar), { nil: undefined }),
      shuffle: fc.nat(),
    }).map(({ msgId, ts, values, extra, shuffle }) => {
      const entries: [string, Wire][] = [];
      if (msgId !== undefined) entries.push(["msgId", msgId]);
      if (ts !== undefined) entries.push(["ts", ts]);
      if (values !== undefined) entries.push(["values", values]);
      if (extra !== undefined) entries.splice(shuffle % (entries.length + 1), 0, extra);
      if (entries.length > 1) entries.push(entries.splice(shuffle % entries.length, 1)[0]!);
      return { entries };
    });
    /** a message the former parser accepts: valid tags and values, msgId and ts valid or absent */
    const goodScalar: fc.Arbitrary<Wire> = fc.oneof(
      { weight: 6, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
      { weight: 2, arbitrary: fc.integer() },
      { weight: 1, arbitrary: fc.boolean() },
      { weight: 1, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
    );
    const goodMessage: fc.Arbitrary<Wire> = fc.record({
      msgId: fc.option(fc.string({ minLength: 1, maxLength: 128 }), { nil: undefined }),
      ts: fc.option(formed, { nil: undefined }),
      values: fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/), goodScalar), { minLength: 1, maxLength: 8 }),
    }).map(({ msgId, ts, values }) => {
      const entries: [string, Wire][] = [["values", { entries: values }]];
      if (ts !== undefined) entries.unshift(["ts", ts]);
      if (msgId !== undefined) entries.unshift(["msgId", msgId]);
      return { entries };
    });
    const anyMessage = fc.oneof({ weight: 2, arbitrary: goodMessage }, { weight: 1, arbitrary: message });
    const body = fc.oneof(
      { weight: 2, arbitrary: goodMessage },
      { weight: 4, arbitrary: fc.array(goodMessage, { minLength: 1, maxLength: 5 }).map((items) => ({ items })) },
      { weight: 2, arbitrary: message },
      { weight: 4, arbitrary: fc.array(fc.oneof({ weight: 9, arbitrary: anyMessage }, { weight: 1, arbitrary: scalar }), { maxLength: 5 }).map((items) => ({ items })) },
      { weight: 1, arbitrary: scalar },
    );
    /** the parse result as plain data: every message's fields and tag → value pairs in order */
    const plain = (r: ParseResult) => r.ok
      ? { ok: true, messages: r.messages.map((m) => ({ msgId: m.msgId, ts: m.ts, pairs: pairs(m) })) }
      : { ok: false, problems: r.problems };

    /** `plain` of a batch: the same data read back per message */
    const plainBatch = (r: BatchResult) => {
      if (!r.ok) return { ok: false, problems: r.problems };
      const b = r.batch;
      return {
        ok: true,
        messages: b.msgIds.map((msgId, i) => ({
          msgId, ts: b.ts[i],
          pairs: b.tags.slice(b.starts[i], b.starts[i + 1]).map((t, k) => [t, b.valueAt(b.starts[i]! + k)]),
        })),
      };
    };
    /** blanks JSON allows, after structural characters (inside strings too: both parsers see the same text) */
    const spaced = (text: string, seed: number) => seed % 3 !== 0 ? text : text.replace(/[,:{}[\]]/g, (c) => c + [" ", "\n", "\t", "\r\n ", ""][seed % 5]);

    it("push bodies: same messages, or the same problems at the same paths, as before; as text and as bytes, scanned or not (property)", () => {
      fc.assert(fc.property(body, fc.nat(), (w, seed) => {
        let text = spaced(toText(w), seed);
        if (seed % 8 === 1) text = text.slice(0, seed % (text.length + 1)); // broken JSON now and then
        const bytes = Buffer.from(text);
        const want = plain(refParsePushBody(bytes));
        expect(plain(parsePushBody(bytes))).toStrictEqual(want);
        expect(plainBatch(parsePushBatch(bytes))).toStrictEqual(want);
        expect(plain(parsePushBody(text))).toStrictEqual(plain(refParsePushBody(text)));
        expect(plainBatch(parsePushBatch(text))).toStrictEqual(plain(refParsePushBody(text)));
      }), { numRuns: 1500 });
    });

    it("push bodies as bytes: repeated tags and keys, escapes, digit-only tags, odd numbers and invalid UTF-8 as before", () => {
      const bodies = [
        '{"values":{"a":1,"b":2,"a":3}}', '[{"values":{"a":1,"b":2}},{"values":{"a":1,"a":2}}]', '{"values":{"a":1},"values":{"b":2}}',
        '{"msgId":"x","msgId":"y","values":{"a":1}}', '{"values":{"\\u0061":1}}', '{"ms\\u0067Id":"x","values":{"a":1}}', '{"values":{"a":"x\\ny"}}',
        '{"values":{"b":1,"2":2,"10":3}}', '{"values":{"-1":1}}', '{"values":{"a":01}}', '{"values":{"a":1.}}', '{"values":{"a":.5}}', '{"values":{"a":-}}',
        '{"values":{"a":1e}}', '{"values":{"a":1e+}}', '{"values":{"a":-0}}', '{"values":{"a":-0.0e-0}}', '{"values":{"a":1E400}}', '{"values":{"a":-1e-400}}',
        '{"values":{"a":123456789012345678901234567890}}', '{"values":{"a":0.1000000000000000055511151231257827}}', '{"values":{"a":9007199254740993}}',
        '{"values":{"a":1.7976931348623157e308}}', '{"values":{"a":5e-324}}', '{"values":{"a":1e0000022}}', '{"values":{"a":tru}}', '{"values":{"a":nul}}',
        '{"values":{"a":falsey}}', '{"values":{"a":true}} x', ' \n[ {"values":{"a":1}} ] \t', "[]", "[{}]", '{"values":{}}', '{"values":{"a":1},}', '[{"values":{"a":1}},]',
        // the tag cache: a body cut short after repeating a tag must not let the next one through unchecked
        '{"values":{"a":1,"b":2}}', '{"values":{"a":1,"a":x}}', '{"values":{"a":1,"a":2}}',
      ];
      for (const t of bodies) {
        const bytes = Buffer.from(t);
        expect(plainBatch(parsePushBatch(bytes)), t).toStrictEqual(plain(refParsePushBody(bytes)));
      }
      for (const raw of [[0xc3], [0xe2, 0x82], [0xff], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xc3, 0xa9]]) {
        for (const where of ["msgId", "value", "ts", "tag"]) {
          const pre = where === "msgId" ? '{"msgId":"a' : where === "ts" ? '{"ts":"2026' : where === "tag" ? '{"values":{"a' : '{"values":{"s":"a';
          const post = where === "msgId" ? '","values":{"a":1}}' : where === "ts" ? '","values":{"a":1}}' : where === "tag" ? '":1}}' : '"}}';
          const bytes = Buffer.concat([Buffer.from(pre), Buffer.from(raw), Buffer.from(post)]);
          expect(plainBatch(parsePushBatch(bytes)), bytes.toString("hex")).toStrictEqual(plain(refParsePushBody(bytes)));
        }
      }
    });

    it("push bodies as bytes: numbers read exactly as JSON.parse reads them (property)", () => {
      const digits = fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 1, maxLength: 20 });
      const num = fc.tuple(fc.constantFrom("", "-"), digits, fc.option(digits, { nil: undefined }), fc.option(fc.tuple(fc.constantFrom("e", "E"), fc.constantFrom("", "+", "-"), fc.integer({ min: 0, max: 400 })), { nil: undefined }))
        .map(([s, i, f, e]) => `${s}${i}${f === undefined ? "" : `.${f}`}${e === undefined ? "" : `${e[0]}${e[1]}${e[2]}`}`);
      fc.assert(fc.property(fc.array(num, { minLength: 1, maxLength: 4 }), fc.double(), (ns, d) => {
        const text = `{"values":{${[...ns, JSON.stringify(d)].map((x, i) => `"n${i}":${x}`).join(",")}}}`;
        const bytes = Buffer.from(text);
        expect(plainBatch(parsePushBatch(bytes)), text).toStrictEqual(plain(refParsePushBody(bytes)));
      }), { numRuns: 2000 });
    });

    it("push bodies in a row: shared tag lists, repeated timestamps and carved numbers give each body its own results, unchanged by the bodies after it (property)", () => {
      // A small pool of tags and timestamps, so consecutive bodies repeat, extend, cut and vary
      // tag sequences and ts strings: what the scanner shares or caches between bodies.
      const tag = fc.constantFrom("a", "b", "v1", "v2", "seq", "t.x-y_z");
      const ts = fc.constantFrom("2026-11-21T08:00:00.123Z", "2026-11-21T08:00:00.124Z", "2026-11-21T08:00:00.123+01:00", "2026-02-30T08:00:00Z", "2026-11-21T08:00:00.123", "2026-11-21T08:00:00.12\u0033Z");
      const value = fc.oneof(fc.integer({ min: -5, max: 5 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(true, null, "s", -0));
      const msg = fc.record({
        msgId: fc.option(fc.constantFrom("m1", "m2", "m-3"), { nil: undefined }),
        ts: fc.option(ts, { nil: undefined }),
        values: fc.array(fc.tuple(tag, value), { minLength: 1, maxLength: 6 }),
      }).map(({ msgId, ts: t, values }) => {
        const v = values.map(([k, x]) => `"${k}":${Object.is(x, -0) ? "-0" : JSON.stringify(x)}`).join(",");
        return `{${msgId === undefined ? "" : `"msgId":"${msgId}",`}${t === undefined ? "" : `"ts":"${t}",`}"values":{${v}}}`;
      });
      const one = fc.array(msg, { minLength: 1, maxLength: 4 }).map((ms) => ms.length === 1 ? ms[0]! : `[${ms.join(",")}]`);
      // a body is often the one before it again, or the one before with its last message dropped
      fc.assert(fc.property(fc.array(fc.tuple(one, fc.nat(3)), { minLength: 1, maxLength: 12 }), (items) => {
        const texts: string[] = [];
        for (const [t, how] of items) {
          const prev = texts[texts.length - 1];
          texts.push(prev !== undefined && how === 0 ? prev : prev !== undefined && how === 1 && prev.startsWith("[") ? prev.replace(/,\{[^{}]*\{[^{}]*\}\}\]$/, "]") : t);
        }
        const got = texts.map((t) => parsePushBatch(Buffer.from(t)));
        const wants = texts.map((t) => plain(refParsePushBody(Buffer.from(t))));
        for (let i = 0; i < texts.length; i++) {
          const r = got[i]!;
          // read back only after every body was scanned: nothing shared was written over
          expect(plainBatch(r), texts[i]).toStrictEqual(wants[i]);
          if (r.ok) expect(r.batch.nums.length).toBeGreaterThanOrEqual(r.batch.tags.length);
        }
      }), { numRuns: 400 });
    });

    it("push bodies: same results with a polluted Object.prototype (property)", () => {
      const proto = Object.prototype as Record<string, unknown>;
      proto.values = { injected: 1 };
      try {
        fc.assert(fc.property(body, (w) => {
          const text = toText(w);
          expect(plain(parsePushBody(text))).toStrictEqual(plain(refParsePushBody(text)));
          expect(plainBatch(parsePushBatch(Buffer.from(text)))).toStrictEqual(plain(refParsePushBody(text)));
        }), { numRuns: 300 });
      } finally {
        delete proto.values;
      }
    });
  });
});
