import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { AUTH_CACHE_MAX, createDeviceAuth, globToRegExp } from "../../src/ingest/auth.js";
import { isFloorgateError } from "../../src/core/errors.js";

const sha = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;

describe("device auth", () => {
  const auth = createDeviceAuth([
    { id: "agv-17", token: "agv17-secret" },
    { id: "sensor-*", tokenHash: sha("sensor-shared") },
    { id: "hand*held-*", token: "hh" },
    { id: "UPPER", tokenHash: sha("upper").toUpperCase().replace("SHA256:", "sha256:") },
    { id: "no-cred" },
  ]);

  it("accepts the exact id with its plain token", () => {
    expect(auth.check("agv-17", "agv17-secret")).toBe("ok");
  });
  it("accepts glob ids with a sha256 token hash", () => {
    expect(auth.check("sensor-1", "sensor-shared")).toBe("ok");
    expect(auth.check("sensor-", "sensor-shared")).toBe("ok");
    expect(auth.check("hand-x-held-3", "hh")).toBe("ok");
  });
  it("accepts an upper-case hex hash", () => {
    expect(auth.check("UPPER", "upper")).toBe("ok");
  });
  it("401: no token", () => {
    expect(auth.check("agv-17", undefined)).toBe("no-token");
    expect(auth.check("agv-17", "")).toBe("no-token");
    expect(auth.check("agv-17", null)).toBe("no-token");
  });
  it("401: token of nobody", () => {
    expect(auth.check("agv-17", "agv17-secreT")).toBe("unknown-token");
    expect(auth.check("unknown-dev", "nope")).toBe("unknown-token");
    // the hash string itself is not a token
    expect(auth.check("sensor-1", sha("sensor-shared"))).toBe("unknown-token");
  });
  it("403: a valid token of another device, configured or not", () => {
    expect(auth.check("agv-17", "sensor-shared")).toBe("wrong-device");
    expect(auth.check("sensor-1", "agv17-secret")).toBe("wrong-device");
    expect(auth.check("not-configured", "agv17-secret")).toBe("wrong-device");
  });
  it("glob characters other than * are literal", () => {
    expect(globToRegExp("a.b*").test("axb1")).toBe(false);
    expect(globToRegExp("a.b*").test("a.b1")).toBe(true);
    expect(globToRegExp("sensor-*").test("xsensor-1")).toBe(false);
  });
  it("an entry without credentials never authenticates", () => {
    expect(auth.check("no-cred", "")).toBe("no-token");
    expect(auth.check("no-cred", "anything")).toBe("unknown-token");
  });
  it("a malformed tokenHash is a config error", () => {
    try {
      createDeviceAuth([{ id: "x", tokenHash: "md5:abc" }]);
      expect.unreachable("should throw");
    } catch (err) {
      expect(isFloorgateError(err, "CONFIG_INVALID")).toBe(true);
      expect((err as Error).message).toContain("ingest.devices[0].tokenHash");
    }
  });
  it("remembered ok decisions stay per device: a granted token does not open other ids", () => {
    const a = createDeviceAuth([{ id: "agv-17", token: "t17" }, { id: "agv-18", token: "t18" }, { id: "dev-*", token: "glob" }]);
    for (let i = 0; i < 3; i++) {
      expect(a.check("agv-17", "t17")).toBe("ok");
      expect(a.check("agv-18", "t17")).toBe("wrong-device");
      expect(a.check("agv-17", "t18")).toBe("wrong-device");
      expect(a.check("agv-17", "t17x")).toBe("unknown-token");
    }
    // more glob ids than the cache holds: every answer stays right across the reset
    const wrong: string[] = [];
    for (let i = 0; i < AUTH_CACHE_MAX + 50; i++) if (a.check(`dev-${i}`, "glob") !== "ok") wrong.push(`dev-${i}`);
    for (let i = 0; i < AUTH_CACHE_MAX + 50; i += 97) if (a.check(`dev-${i}`, "glob") !== "ok") wrong.push(`again dev-${i}`);
    expect(wrong).toEqual([]);
    expect(a.check("agv-17", "glob")).toBe("wrong-device");
    expect(a.check("dev-1", "t17")).toBe("wrong-device");
  });
});
