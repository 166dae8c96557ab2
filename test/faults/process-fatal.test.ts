import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSecrets, fatalDetails } from "../../src/cli/fatal.js";
import { writeConfig } from "../helpers/gateway-process.js";
import { freePort } from "../helpers/ports.js";
import { spawnDaemon } from "./process-child.js";

const PRELOAD = join(import.meta.dirname, "process-fault-preload.mjs");
const SECRET = "op-token-9f3ac71e55";

/**
 * Issue 10, point 8: an uncaught exception or unhandled rejection in the daemon is logged once
 * (fatal, with its code, cause and frames, no secret) and the process exits 2.
 *
 * The failure is raised inside the real daemon (`bin/floorgate run`, its own entry and handlers)
 * by a test-only module loaded with `node --import`: the daemon has no debug hook for it, and
 * there is no input that makes it throw (that would be the bug to fix).
 */
describe("fatal errors in the daemon", () => {
  let dir: string;
  let file: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-fatal-"));
    file = await writeConfig(dir, `
gateway: { id: fatal-edge, group: test, dataDir: "${dir}/data" }
http: { listen: "127.0.0.1:${await freePort()}", operatorTokens: ["\${env:OP_TOKEN}"] }
`);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const kind of ["exception", "rejection"] as const) {
    it(`an ${kind === "exception" ? "uncaught exception" : "unhandled rejection"}: one fatal line with code, cause and frames, secrets masked, exit 2`, async () => {
      const d = spawnDaemon(file, { nodeArgs: ["--import", PRELOAD], env: { OP_TOKEN: SECRET, FAULT_SECRET: SECRET, FAULT_KIND: kind } });
      await d.waitFor(/"msg":"floorgate running"/);
      d.child.kill("SIGUSR2");
      const { code, signal } = await d.exited();
      expect(signal).toBeNull();
      expect(code).toBe(2);
      const all = d.lines.join("\n");
      expect(all).not.toContain(SECRET);
      const fatal = d.logs().filter((l) => l.level === 60);
      expect(fatal, all).toHaveLength(1);
      const f = fatal[0] as { kind: string; msg: string; err: string; detail: { code: string; message: string; stack: string[]; cause: { code: string; message: string } } };
      expect(f.kind).toBe(kind === "exception" ? "uncaught exception" : "unhandled rejection");
      expect(f.msg).toContain("internal error");
      expect(f.err).toBe("EBOOM: boom while holding [redacted]");
      expect(f.detail.code).toBe("EBOOM");
      expect(f.detail.message).toBe("boom while holding [redacted]");
      expect(f.detail.cause).toMatchObject({ code: "ECONNREFUSED", message: "peer refused while sending [redacted]" });
      expect(f.detail.stack.length).toBeGreaterThan(0);
      expect(f.detail.stack[0]).toMatch(/^at /);
      // once: the second failure right behind the first is not reported, and nothing else is on stderr
      expect(all).not.toContain("a second failure");
      expect(d.lines.filter((l) => l.trim() !== "" && !l.startsWith("{"))).toEqual([]);
    });
  }

  it("fatalDetails and configSecrets: every token and password of the config is masked, the longest first", () => {
    const secrets = configSecrets({
      http: { operatorTokens: ["opop-1", "opop-12"] },
      ingest: { devices: [{ id: "a", token: "devtok" }, { id: "b", tokenHash: "sha256:00" }] },
      outputs: [{ url: "mqtt://h", username: "user", password: "pw-secret" }, { password: "ab" }],
    });
    expect(new Set(secrets)).toEqual(new Set(["pw-secret", "opop-12", "devtok", "opop-1"]));
    expect(secrets.map((x) => x.length)).toEqual([9, 7, 6, 6]);
    const e = new Error("x opop-12 y devtok", { cause: "string cause pw-secret" });
    expect(fatalDetails(e, secrets)).toMatchObject({ message: "x [redacted] y [redacted]", cause: { message: "string cause [redacted]" } });
    expect(fatalDetails(42, secrets)).toEqual({ message: "42" });
  });
});
