import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { matchRoute } from "../../src/http/routes.js";

describe("route matching", () => {
  it("a plain ingest path takes the short way and answers like the general matcher", () => {
    expect(matchRoute("/api/v1/ingest/agv-17")).toEqual({ ok: true, route: { name: "ingest", device: "agv-17" }, methods: ["POST"], query: "" });
    // a trailing "?" forces the general matcher: same route, same methods
    fc.assert(fc.property(fc.string({ minLength: 0, maxLength: 20 }).filter((s) => !s.includes("?")), (id) => {
      const target = `/api/v1/ingest/${id}`;
      let general: ReturnType<typeof matchRoute>;
      try {
        general = matchRoute(`${target}?`);
      } catch (err) {
        expect(() => matchRoute(target)).toThrow();
        throw err;
      }
      expect(matchRoute(target)).toEqual(general);
    }), { numRuns: 500 });
  });

  it("encoded, nested and empty ingest ids still go through the general matcher", () => {
    expect(matchRoute("/api/v1/ingest/%61gv")).toMatchObject({ ok: true, route: { name: "ingest", device: "agv" } });
    expect(matchRoute("/api/v1/ingest/a%2Fb")).toMatchObject({ ok: true, route: { name: "ingest", device: "a/b" } });
    expect(matchRoute("/api/v1/ingest/a/b")).toMatchObject({ ok: false, status: 404 });
    expect(matchRoute("/api/v1/ingest/")).toMatchObject({ ok: false, status: 404 });
    expect(matchRoute("/api/v1/ingest/%zz")).toMatchObject({ ok: false, status: 400 });
    expect(matchRoute("/api/v1/ingest/x?token=1")).toMatchObject({ ok: true, route: { name: "ingest", device: "x" }, query: "token=1" });
    expect(matchRoute("/api/v1/ingest/x#frag")).toMatchObject({ ok: true, route: { name: "ingest", device: "x" } });
  });
});
