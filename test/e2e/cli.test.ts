import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../helpers/ports.js";
import { http, startGateway, runCli, type CliOutcome } from "../helpers/gateway-process.js";


function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliOutcome> {
  return runCli(args, { env });
}

const NO_STACK = /\n\s+at .+\(.+:\d+:\d+\)/;

describe("floorgate CLI as a process", () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), "floorgate-cli-")); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it("validate: exit 0 and `config ok` for a good file", async () => {
    const r = await cli(["validate", "--config", "edge-config/minimal.yaml"]);
    expect(r.stdout.trim()).toBe("config ok");
    expect(r.code).toBe(0);
  });

  it("validate: exit 1 with every error, one per line with path and line:col, no stack trace", async () => {
    const f = join(dir, "bad.yaml");
    await writeFile(f, "gateway: { id: 'bad id', group: g }\nhttp: { listen: '0.0.0.0:8080' }\njournal: { maxBytes: 12 parsecs, overflow: sideways }\nbogus: 1\n");
    const r = await cli(["validate", "--config", f]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const l of lines) expect(l).toMatch(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: `));
    expect(r.stderr).toContain("gateway.id");
    expect(r.stderr).toContain("journal.maxBytes");
    expect(r.stderr).toContain("journal.overflow");
    expect(r.stderr).toContain("operatorTokens");
    expect(r.stderr).toContain("bogus");
    expect(r.stderr).not.toMatch(NO_STACK);
  });

  it("run: a bad config exits 1 before anything starts", async () => {
    const r = await cli(["run", "--config", join(dir, "missing.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("missing.yaml");
    expect(r.stderr).not.toMatch(NO_STACK);
  });

  it("run: a port that is taken exits 2 with a clear message", async () => {
    const taken: Server = createServer();
    const port = await freePort();
    await new Promise<void>((r) => taken.listen(port, "127.0.0.1", r));
    const f = join(dir, "taken.yaml");
    await writeFile(f, `gateway: { id: t, group: g, dataDir: ./taken-data }\nhttp: { listen: "127.0.0.1:${port}" }\n`);
    const r = await cli(["run", "--config", f]);
    taken.close();
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/PORT_IN_USE|in use/i);
    expect(r.stdout + r.stderr).not.toMatch(NO_STACK);
  });

  it("run: an unusable journal directory exits 2", async () => {
    const blocker = join(dir, "not-a-dir");
    await writeFile(blocker, "x");
    const f = join(dir, "nodir.yaml");
    await writeFile(f, `gateway: { id: t, group: g, dataDir: ${blocker} }\nhttp: { listen: "127.0.0.1:${await freePort()}" }\n`);
    const r = await cli(["run", "--config", f]);
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toContain("JOURNAL_IO");
  });

  it("schema prints the draft-07 schema kept in edge-config/", async () => {
    const r = await cli(["schema"]);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { $schema: string };
    expect(schema.$schema).toContain("draft-07");
    expect(r.stdout).toBe(await readFile("edge-config/floorgate.schema.json", "utf8"));
  });

  it("usage errors exit 1", async () => {
    expect((await cli(["frobnicate"])).code).toBe(1);
    expect((await cli(["validate"])).code).toBe(1);
    expect((await cli(["validate", "--config", "x", "--what", "y"])).code).toBe(1);
  });

  it("journal inspect reads a live gateway's journal without disturbing it", async () => {
    const port = await freePort();
    const f = join(dir, "inspect.yaml");
    await writeFile(f, `gateway: { id: insp, group: g, dataDir: ./inspect-data }
http: { listen: "127.0.0.1:${port}" }
ingest: { devices: [{ id: agv-1, token: tok }] }
outputs: [{ type: mqtt, name: cloud, url: "mqtt://127.0.0.1:1" }]
`);
    const gw = await startGateway(f, port);
    try {
      for (let i = 0; i < 5; i++) {
        const r = await http("POST", `${gw.base}/api/v1/ingest/agv-1`, { body: JSON.stringify({ values: { a: i, b: i * 2 } }), headers: { authorization: "Bearer tok" } });
        expect(r.status).toBe(202);
      }
      const r = await cli(["journal", "inspect", "--config", f]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/records\s*:?\s*10\b/);
      expect(r.stdout).toContain("cloud");
      const after = await http("POST", `${gw.base}/api/v1/ingest/agv-1`, { body: JSON.stringify({ values: { a: 9 } }), headers: { authorization: "Bearer tok" } });
      expect(after.status).toBe(202);
    } finally {
      const { code } = await gw.stop();
      expect(code).toBe(0);
    }
  });
});
