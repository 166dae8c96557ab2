/**
 * `floorgate browse` against the simulated oven (drivers/opcua/simulator.ts on a free port): the
 * YAML it prints parses, validates as the tags of an OPC UA device (under the planned composition,
 * test/unit/config-planned.ts, until the driver is in the build), and names every oven variable with
 * its unit and writability; --root and --depth bound the walk; an unreachable endpoint is exit 1 fast.
 * Against a real server that offers only SignAndEncrypt/Basic256Sha256 and user logins
 * (test/helpers/opcua-server.ts), the flags named after the device's `connection` keys
 * (--security-mode, --security-policy, --username; the password from FLOORGATE_BROWSE_PASSWORD)
 * walk it; a wrong password or no login is exit 1 with one line that never shows the password.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { startOpcuaSimulator, type OpcuaSimulator } from "../../drivers/opcua/simulator.js";
import { tagName, uniqueNames } from "../../drivers/opcua/browse.js";
import { runCli, type CliOutcome } from "../helpers/gateway-process.js";
import { startOpcuaServer, type OpcuaTestServer } from "../helpers/opcua-server.js";
import { freePort } from "../helpers/ports.js";
import { parsePlanned } from "../unit/config-planned.js";

const STACK = /\n\s+at /;

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliOutcome> {
  return runCli(args, { env });
}

interface Tag { name: string; nodeId: string; unit?: string; writable?: boolean }

/** The printed YAML as a device's tags, validated by the config loader with the OPC UA rules. */
function validTags(yamlText: string, endpoint: string): Tag[] {
  const doc = parse(yamlText) as { tags: Tag[] };
  const config = `gateway: { id: gw, group: g }\ndevices:\n  - id: oven\n    driver: opcua\n    connection: { endpoint: "${endpoint}" }\n    tags: ${JSON.stringify(doc.tags)}\n`;
  const r = parsePlanned(config, "browse.yaml", {});
  expect(r.ok, r.ok ? "" : r.problems.map((p) => `${p.path}: ${p.message}`).join("\n")).toBe(true);
  return doc.tags;
}

describe("floorgate browse", () => {
  let sim: OpcuaSimulator;
  beforeAll(async () => { sim = await startOpcuaSimulator({ resourcePath: "/UA/Oven" }); }, 20_000);
  afterAll(async () => { await sim?.stop(); });

  it("prints the oven's variables as tag YAML that validates: NodeIds, units from EUInformation, writable setpoint, DataType comments", async () => {
    const r = await cli(["browse", "--endpoint", sim.endpointUrl]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).not.toContain("NODE-OPCUA");
    const tags = validTags(r.stdout, sim.endpointUrl);
    const byId = new Map(tags.map((t) => [t.nodeId, t]));
    const ids = ["State", "StateCode", "Setpoint", "PartCount", "Running", ...[1, 2, 3].flatMap((z) => [`Zone${z}.Temperature`, `Zone${z}.HeaterPower`])].map((s) => `ns=2;s=Oven.${s}`);
    expect([...byId.keys()].sort()).toEqual(ids.sort());
    expect(byId.get("ns=2;s=Oven.Zone1.Temperature")).toEqual({ name: "zone1_temperature", nodeId: "ns=2;s=Oven.Zone1.Temperature", unit: "degC" });
    expect(byId.get("ns=2;s=Oven.Zone2.HeaterPower")?.unit).toBe("percent");
    expect(byId.get("ns=2;s=Oven.Setpoint")?.writable).toBe(true);
    expect(tags.filter((t) => t.writable).map((t) => t.nodeId)).toEqual(["ns=2;s=Oven.Setpoint"]);
    expect(r.stdout).toMatch(/nodeId: "ns=2;s=Oven\.PartCount" \}\s+# UInt32, Oven\/PartCount/);
    // the Server object's diagnostics are left out, with the way to get them
    expect(r.stdout).toContain("# left out: Server (ns=0;i=2253); browse it with --root ns=0;i=2253");
    expect(tags.some((t) => t.nodeId.startsWith("ns=0;"))).toBe(false);
  }, 20_000);

  it("--root and --depth bound the walk; a node cap says where it stopped", async () => {
    // four walks at once: each CLI start loads node-opcua, which costs more than the walk
    const [zone, shallow, capped, missing] = await Promise.all([
      cli(["browse", "--endpoint", sim.endpointUrl, "--root", "ns=2;s=Oven.Zone3", "--depth", "1"]),
      cli(["browse", "--endpoint", sim.endpointUrl, "--depth", "2"]),
      cli(["browse", "--endpoint", sim.endpointUrl, "--max-nodes", "2"]),
      cli(["browse", "--endpoint", sim.endpointUrl, "--root", "ns=2;s=Nowhere"]),
    ]);
    expect(zone.code, zone.stderr).toBe(0);
    expect(validTags(zone.stdout, sim.endpointUrl).map((t) => t.nodeId).sort()).toEqual(["ns=2;s=Oven.Zone3.HeaterPower", "ns=2;s=Oven.Zone3.Temperature"]);
    // depth 2 from Objects reaches Oven's own variables but not the zones' (one level further)
    expect(shallow.code, shallow.stderr).toBe(0);
    const ids = validTags(shallow.stdout, sim.endpointUrl).map((t) => t.nodeId);
    expect(ids).toContain("ns=2;s=Oven.State");
    expect(ids.some((id) => id.includes("Zone"))).toBe(false);
    expect(capped.code, capped.stderr).toBe(0);
    expect(capped.stdout).toContain("# stopped after 2 nodes (--max-nodes)");
    parse(capped.stdout);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("--root ns=2;s=Nowhere: no such node");
  }, 30_000);

  it("an unreachable endpoint: exit 1 with one line naming it, no stack, well within the timeout", async () => {
    const port = await freePort();
    const r = await cli(["browse", "--endpoint", `opc.tcp://127.0.0.1:${port}`, "--timeout-ms", "5000"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(new RegExp(`^floorgate browse: cannot connect to opc\\.tcp://127\\.0\\.0\\.1:${port}: .+\\n$`));
    expect(r.stderr).not.toMatch(STACK);
    expect(r.ms).toBeLessThan(10_000);
  }, 20_000);

  it("bad flags are usage errors (exit 1): a non-opc.tcp endpoint, a policy without a mode, a password without a user", async () => {
    expect((await cli(["browse", "--endpoint", "http://x"])).stderr).toContain("expected opc.tcp://host:port[/path]");
    const p = await cli(["browse", "--endpoint", sim.endpointUrl, "--security-policy", "Basic256Sha256"]);
    expect(p.code).toBe(1);
    expect(p.stderr).toContain("needs --security-mode Sign or SignAndEncrypt");
    const pw = await cli(["browse", "--endpoint", sim.endpointUrl], { FLOORGATE_BROWSE_PASSWORD: "s3cret" });
    expect(pw.code).toBe(1);
    expect(pw.stderr).toContain("FLOORGATE_BROWSE_PASSWORD is set but --username is not");
    expect(pw.stderr).not.toContain("s3cret");
  }, 20_000);
});

describe("floorgate browse against a secured endpoint", () => {
  const USER = { username: "operator", password: "s3cret-Pa55" };
  let server: OpcuaTestServer;
  let home: string;
  beforeAll(async () => {
    server = await startOpcuaServer({ secure: { users: [USER] } });
    // browse keeps its client certificate under ~/.floorgate/browse-pki: a HOME of its own here
    home = await mkdtemp(join(tmpdir(), "floorgate-browse-home-"));
  }, 20_000);
  afterAll(async () => {
    await server?.dispose();
    if (home) await rm(home, { recursive: true, force: true });
  });
  const secure = ["--security-mode", "SignAndEncrypt", "--security-policy", "Basic256Sha256"];

  it("SignAndEncrypt Basic256Sha256 with a user: walks and prints the variables; a wrong password or no login is exit 1, one line, the password never shown", async () => {
    // the first run creates browse's client certificate; the two refusals then share it
    const ok = await cli(["browse", "--endpoint", server.endpoint, ...secure, "--username", USER.username], { HOME: home, FLOORGATE_BROWSE_PASSWORD: USER.password });
    const [wrong, anonymous] = await Promise.all([
      cli(["browse", "--endpoint", server.endpoint, ...secure, "--username", USER.username], { HOME: home, FLOORGATE_BROWSE_PASSWORD: "wrong-Passw0rd" }),
      cli(["browse", "--endpoint", server.endpoint, ...secure], { HOME: home }),
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toBe("");
    const tags = validTags(ok.stdout, server.endpoint);
    const byId = new Map(tags.map((t) => [t.nodeId, t]));
    expect(byId.get("ns=1;s=Temperature")).toMatchObject({ unit: "degC" });
    expect(byId.get("ns=1;s=Setpoint")?.writable).toBe(true);
    expect(byId.has("ns=1;s=Counter")).toBe(true);
    expect(wrong.stderr).toContain("BadUserAccessDenied");
    expect(anonymous.stderr).toMatch(/ANONYMOUS/i);
    for (const r of [wrong, anonymous]) {
      expect(r.code, r.stdout).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^floorgate browse: cannot connect to .+\n$/);
      expect(r.stderr).not.toMatch(STACK);
    }
    for (const r of [ok, wrong, anonymous]) expect(r.stdout + r.stderr).not.toMatch(/s3cret-Pa55|wrong-Passw0rd/);
  }, 30_000);
});

describe("tag names from browse paths", () => {
  it("sanitises to the tag pattern and makes names unique", () => {
    expect(tagName(["Zone1", "Temperature"])).toBe("zone1_temperature");
    expect(tagName(["Über Temp (°C)"])).toBe("ber_temp_c");
    expect(tagName(["---"])).toBe("tag");
    expect(tagName(["x".repeat(300)])).toHaveLength(128);
    const names = uniqueNames([["A", "Zone1", "Temp"], ["B", "Zone1", "Temp"], ["Temp"], ["temp"]]);
    expect(names).toEqual(["a_zone1_temp", "b_zone1_temp", "temp", "temp_2"]);
    for (const n of names) expect(n).toMatch(/^[A-Za-z0-9_.-]{1,128}$/);
  });
});
