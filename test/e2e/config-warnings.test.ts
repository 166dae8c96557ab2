/**
 * The built CLI as a process: a config warning leaves `validate`'s exit code at 0 and is logged
 * once when `run` starts; a missing config file is one plain line, exit 1, no stack.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../helpers/ports.js";
import { startGateway, runCli, type CliOutcome } from "../helpers/gateway-process.js";


function cli(args: string[]): Promise<CliOutcome> {
  return runCli(args);
}

describe("config warnings and read errors, as a process", () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), "fg-warn-cli-")); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  const configText = async (httpPort: number, modbusPort: number): Promise<string> => {
    const file = join(dir, `warn-${httpPort}.yaml`);
    await writeFile(file, `gateway: { id: edge-1, group: plant, dataDir: ./data-${httpPort} }
http: { listen: "127.0.0.1:${httpPort}" }
devices:
  - id: press-1
    driver: modbus
    connection: { host: 127.0.0.1, port: ${modbusPort}, timeoutMs: 200 }
    tags:
      - { name: rpm, area: holding, address: 40001, type: uint16 }
`);
    return file;
  };

  it("validate: a warning goes to stderr with its line, the exit code stays 0", async () => {
    const file = await configText(await freePort(), await freePort());
    const r = await cli(["validate", "--config", file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("config ok\n");
    expect(r.stderr).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:8:46: warning: devices\\[0\\]\\.tags\\[0\\]\\.address: address 40001 looks like PLC register notation`));
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
  });

  it("run: logs each warning once at start, with path and line", async () => {
    const port = await freePort();
    // nothing listens on the Modbus port: the device stays offline, the gateway runs anyway
    const file = await configText(port, await freePort());
    const gw = await startGateway(file, port);
    try {
      const lines = gw.output.join("").split("\n").filter((l) => l.includes("looks like PLC register notation"));
      expect(lines).toHaveLength(1);
      const entry = JSON.parse(lines[0]!) as { level: number; path: string; line: number; msg: string };
      expect(entry).toMatchObject({ path: "devices[0].tags[0].address", line: 8 });
      expect(entry.level).toBe(40);
      expect(entry.msg).toMatch(/so 40001 is written address: 0/);
    } finally {
      expect((await gw.stop()).code).toBe(0);
    }
  });

  it("validate: a missing file is one plain line, exit 1, no stack trace", async () => {
    const r = await cli(["validate", "--config", join(dir, "nope.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`${join(dir, "nope.yaml")}: cannot read the config file: no such file\n`);
  });
});
