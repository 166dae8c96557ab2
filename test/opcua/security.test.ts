/**
 * Security against a real server that offers only SignAndEncrypt/Basic256Sha256 and user logins:
 * the untrusted-then-trusted flow (device `error` naming the file in rejected/, the file moved to
 * trusted/certs, online without a restart), a good login, a refused password, and no password in
 * any log line.
 */
import { existsSync, readdirSync } from "node:fs";
import { rename } from "node:fs/promises";
import { basename, join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOpcuaDriver } from "../../drivers/opcua/index.js";
import { createLogger } from "../../src/core/logger.js";
import { startOpcuaServer, type OpcuaTestServer } from "../helpers/opcua-server.js";
import { opcuaDevice, recorder } from "./context.js";

const USER = { username: "operator", password: "s3cret-Pa55" };
let server: OpcuaTestServer;
const unhandled: unknown[] = [];
const onUnhandled = (r: unknown): void => { unhandled.push(r); };
beforeAll(async () => { process.on("unhandledRejection", onUnhandled); server = await startOpcuaServer({ secure: { users: [USER] } }); });
afterAll(async () => { await server?.dispose(); process.off("unhandledRejection", onUnhandled); expect(unhandled.map(String)).toEqual([]); });

function secureDevice(id: string, password = USER.password) {
  return opcuaDevice(id, server.endpoint, {
    timeoutMs: 3_000, reconnectMaxMs: 500,
    connection: { endpoint: server.endpoint, securityMode: "SignAndEncrypt", securityPolicy: "Basic256Sha256", username: USER.username, password },
  });
}

describe("opcua security", () => {
  it("untrusted server certificate: error naming the rejected file; moved to trusted/, online without a restart; values flow over SignAndEncrypt with a user", async () => {
    const lines: string[] = [];
    const log = createLogger({ level: "debug", destination: new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }) });
    const cfg = secureDevice("sec-1");
    const r = recorder(log);
    const done = createOpcuaDriver(cfg).run(r);
    try {
      await r.until(() => r.states.some((s) => s.state === "error"), 20_000, "error for the untrusted certificate");
      const err = r.states.find((s) => s.state === "error")!.error!;
      expect(err).toMatch(/OPCUA_CERT_UNTRUSTED|not trusted/);
      expect(r.states.some((s) => s.state === "online")).toBe(false);
      // the client certificate was created on first start, under the device's pkiDir
      expect(readdirSync(join(cfg.pkiDir, "own", "certs")).some((f) => f.endsWith(".pem"))).toBe(true);
      const rejected = /saved as (.+?); move it/.exec(err)?.[1];
      expect(rejected, err).toBeDefined();
      expect(rejected!.startsWith(join(cfg.pkiDir, "rejected"))).toBe(true);
      expect(existsSync(rejected!)).toBe(true);
      await rename(rejected!, join(cfg.pkiDir, "trusted", "certs", basename(rejected!)));
      const at = r.states.length;
      await r.until(() => r.states.slice(at).some((s) => s.state === "online"), 15_000, "online after trusting");
      await r.until(() => r.samples.some((s) => s.tag === "counter" && s.quality === "good"), 10_000, "a good value");
    } finally {
      r.controller.abort();
      await done;
    }
    expect(lines.join("")).not.toContain(USER.password);
  });

  it("a refused password: error OPCUA_SECURITY, never online, password not logged", async () => {
    const lines: string[] = [];
    const log = createLogger({ level: "debug", destination: new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }) });
    const cfg = secureDevice("sec-2", "wrong-Passw0rd");
    // trust the server from the start: copy the first device's decision
    const r = recorder(log);
    const done = createOpcuaDriver(cfg).run(r);
    try {
      await r.until(() => r.states.some((s) => s.state === "error"), 20_000, "error");
      const first = r.states.find((s) => s.state === "error")!.error!;
      if (/not trusted/.test(first)) {
        const file = /saved as (.+?); move it/.exec(first)![1]!;
        await rename(file, join(cfg.pkiDir, "trusted", "certs", basename(file)));
      }
      await r.until(() => r.states.some((s) => s.state === "error" && /refused the user login/.test(s.error ?? "")), 15_000, "login refused");
      expect(r.states.some((s) => s.state === "online")).toBe(false);
    } finally {
      r.controller.abort();
      await done;
    }
    expect(lines.join("")).not.toContain("wrong-Passw0rd");
  });
});
