import { describe, expect, it } from "vitest";
import type { IncomingMessage } from "node:http";
import { capVerdict, type CapState } from "../../src/live/cap-policy.js";
import { PendingUpdates } from "../../src/live/conflation.js";
import { globMatcher, globProblem, globsMatcher } from "../../src/live/glob.js";
import { parseClientFrame, subscriptionKey, type DeviceFrame, type LiveSample } from "../../src/live/protocol.js";
import { checkUpgrade, normalOrigin, originAllowed } from "../../src/live/upgrade.js";
import { OperatorTokens } from "../../src/http/tokens.js";

describe("live globs", () => {
  it("match with * anywhere and literally otherwise", () => {
    const cases: [string, string, boolean][] = [
      ["*", "anything", true], ["press-*", "press-1", true], ["press-*", "press-", true], ["press-*", "xpress-1", false],
      ["*-1", "agv-1", true], ["*-1", "agv-10", false], ["a*b*c", "abc", true], ["a*b*c", "a-b-b-c", true], ["a*b*c", "acb", false],
      ["ab*ba", "aba", false], ["ab*ba", "abba", true], ["x.pos", "x.pos", true], ["x.pos", "xapos", false], ["**", "", true],
    ];
    for (const [g, name, want] of cases) expect(globMatcher(g)(name), `${g} ~ ${name}`).toBe(want);
  });

  it("an empty list matches everything; a list matches when any glob does", () => {
    expect(globsMatcher([])("x")).toBe(true);
    const m = globsMatcher(["press-*", "oven"]);
    expect([m("press-2"), m("oven"), m("oven-2")]).toEqual([true, true, false]);
  });

  it("refuses characters outside the id alphabet", () => {
    expect(globProblem("press-*")).toBeUndefined();
    expect(globProblem("press/1")).toMatch(/must be/);
    expect(globProblem("")).toMatch(/must be/);
    expect(globProblem("a".repeat(201))).toMatch(/must be/);
  });
});

describe("live client frames", () => {
  it("parses subscribe (globs default to everything) and ping", () => {
    expect(parseClientFrame('{"type":"ping"}')).toEqual({ ok: true, frame: { type: "ping" } });
    expect(parseClientFrame('{"type":"subscribe"}')).toEqual({ ok: true, frame: { type: "subscribe", subscription: { devices: [], tags: [] } } });
    expect(parseClientFrame('{"type":"subscribe","devices":["press-*"],"tags":["*"]}')).toEqual({ ok: true, frame: { type: "subscribe", subscription: { devices: ["press-*"], tags: ["*"] } } });
  });

  it("refuses everything else with a reason and a message that says what is expected", () => {
    const cases: [string, string][] = [
      ["{", "invalid_json"], ["[]", "invalid_json"], ["42", "invalid_json"], ["null", "invalid_json"],
      ['{"type":"unsubscribe"}', "unknown_type"], ["{}", "unknown_type"], ['{"type":"ping","x":1}', "unknown_type"],
      ['{"type":"subscribe","devices":"press-*"}', "invalid_subscribe"], ['{"type":"subscribe","devices":[1]}', "invalid_subscribe"],
      ['{"type":"subscribe","tags":["a b"]}', "invalid_subscribe"], ['{"type":"subscribe","extra":[]}', "invalid_subscribe"],
      [JSON.stringify({ type: "subscribe", devices: Array.from({ length: 300 }, (_, i) => `d${i}`) }), "invalid_subscribe"],
    ];
    for (const [text, reason] of cases) {
      const r = parseClientFrame(text);
      expect(r.ok, text).toBe(false);
      if (!r.ok) {
        expect(r.reason, text).toBe(reason);
        expect(r.error.length).toBeGreaterThan(10);
        expect(r.error.length).toBeLessThan(200);
      }
    }
  });

  it("gives equal subscriptions one key, whatever the order or repeats", () => {
    expect(subscriptionKey({ devices: ["b", "a", "a"], tags: [] })).toBe(subscriptionKey({ devices: ["a", "b"], tags: ["*"] }));
    expect(subscriptionKey({ devices: ["*", "a"], tags: [] })).toBe(subscriptionKey({ devices: [], tags: [] }));
    expect(subscriptionKey({ devices: ["a"], tags: [] })).not.toBe(subscriptionKey({ devices: [], tags: ["a"] }));
  });
});

describe("live conflation", () => {
  const s = (device: string, tag: string, value: number): LiveSample => ({ device, tag, value, quality: "good", ts: "2026-01-01T00:00:00.000Z" });
  const d = (id: string, state: DeviceFrame["state"]): DeviceFrame => ({ type: "device", id, state, error: null, ts: "2026-01-01T00:00:00.000Z" });

  it("keeps the newest value per tag and the newest state per device, bounded by their number", () => {
    const p = new PendingUpdates();
    for (let i = 0; i < 1000; i++) p.hold([d("a", i % 2 ? "online" : "offline")], [s("a", "x", i), s("b", "x", -i)]);
    p.hold([d("b", "error")], []);
    expect(p.size).toBe(4);
    const out = p.drain();
    expect(out.samples).toEqual([s("a", "x", 999), s("b", "x", -999)]);
    expect(out.states.map((x) => [x.id, x.state])).toEqual([["a", "online"], ["b", "error"]]);
    expect(p.size).toBe(0);
  });

  it("a device whose state changed again moves after the others", () => {
    const p = new PendingUpdates();
    p.hold([d("a", "offline"), d("b", "offline"), d("a", "online")], []);
    expect(p.drain().states.map((x) => x.id)).toEqual(["b", "a"]);
  });
});

describe("live cap policy", () => {
  const opts = { maxBufferedBytes: 1000, slowCloseMs: 5000 };
  it("sends under the cap, holds over it, closes after slowCloseMs over it without a break", () => {
    const st: CapState = { overSince: undefined };
    expect(capVerdict(st, 1000, 0, opts)).toBe("send");
    expect(capVerdict(st, 1001, 100, opts)).toBe("hold");
    expect(capVerdict(st, 50_000, 5100, opts)).toBe("hold");
    expect(capVerdict(st, 50_000, 5101, opts)).toBe("close");
  });
  it("a client that drains below the cap in between starts over (a slow link is never closed)", () => {
    const st: CapState = { overSince: undefined };
    for (let t = 0; t < 60_000; t += 1000) {
      expect(capVerdict(st, 2000, t, opts)).toBe("hold");
      expect(capVerdict(st, 10, t + 500, opts)).toBe("send");
    }
  });
});

describe("live upgrade checks", () => {
  const req = (url: string, headers: Record<string, string>): IncomingMessage => ({ url, headers }) as unknown as IncomingMessage;
  const rules = (tokens: string[], allowed: string[] = [], hostOk = true) => ({
    tokens: new OperatorTokens(tokens), allowedOrigins: new Set(allowed.map((o) => normalOrigin(o)!)), hostAllowed: () => hostOk,
  });

  it("origin: own (by Host, http or https), listed, or none; anything else refused", () => {
    const allowed = new Set([normalOrigin("https://HMI.plant.local:443/")!]);
    expect(originAllowed(undefined, "gw:8080", allowed)).toBe(true);
    expect(originAllowed("http://gw:8080", "gw:8080", allowed)).toBe(true);
    expect(originAllowed("https://gw:8080", "gw:8080", allowed)).toBe(true);
    expect(originAllowed("http://gw", "gw:80", allowed)).toBe(true);
    expect(originAllowed("https://hmi.plant.local", "gw:8080", allowed)).toBe(true);
    expect(originAllowed("http://hmi.plant.local", "gw:8080", allowed)).toBe(false);
    expect(originAllowed("http://gw:8081", "gw:8080", allowed)).toBe(false);
    expect(originAllowed("https://evil.example", "gw:8080", allowed)).toBe(false);
    expect(originAllowed("null", "gw:8080", allowed)).toBe(false);
    expect(originAllowed("http://gw:8080", undefined, allowed)).toBe(false);
  });

  it("path, host, origin, then token (header first, else ?token=)", () => {
    const r = rules(["secret-1"], ["https://hmi.plant.local"]);
    const h = { host: "gw:8080" };
    expect(checkUpgrade(req("/other", h), r)).toMatchObject({ ok: false, status: 404 });
    expect(checkUpgrade(req("/live", h), rules(["secret-1"], [], false))).toMatchObject({ ok: false, status: 403, reason: "bad_host" });
    expect(checkUpgrade(req("/live", { ...h, origin: "https://evil.example" }), r)).toMatchObject({ ok: false, status: 403, reason: "forbidden_origin" });
    expect(checkUpgrade(req("/live", h), r)).toMatchObject({ ok: false, status: 401 });
    expect(checkUpgrade(req("/live?token=nope", h), r)).toMatchObject({ ok: false, status: 401 });
    expect(checkUpgrade(req("/live?token=secret-1", h), r)).toEqual({ ok: true });
    expect(checkUpgrade(req("/live", { ...h, authorization: "Bearer secret-1" }), r)).toEqual({ ok: true });
    expect(checkUpgrade(req("/live?token=secret-1", { ...h, authorization: "Bearer nope" }), r)).toMatchObject({ ok: false, status: 401 });
    expect(checkUpgrade(req("/live", { ...h, origin: "https://hmi.plant.local" }), rules([], ["https://hmi.plant.local"]))).toEqual({ ok: true });
  });
});
