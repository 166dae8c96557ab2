/**
 * Device templates (src/config/templates.ts): how a device is made from its template, that a
 * template's tags are checked once and shared as one frozen array, where problems are reported
 * (the template's line, the device's line, both for a combination), and that the published JSON
 * Schema agrees with `validate` on what a template and a templated device may hold.
 *
 * Problem fixtures: test/fixtures/configs/templates/invalid/NN-name.yaml beside NN-name.expect, in
 * the format of the config corpus (test/unit/config-corpus.test.ts): one `LINE:COL: PATH: MESSAGE`
 * line per expected problem, fragments separated by ` ... `; nothing more may be reported.
 */
import { describe, it, expect } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import { parse } from "yaml";
import { formatProblem, loadConfig, parseConfigText } from "../../src/config/load.js";
import { builtModel } from "../../src/config/model.js";
import { checkCase } from "./config-fixture-check.js";
import { parsePath } from "../../src/config/templates.js";
import type { ConfigProblem } from "../../src/config/types.js";
import type { ModbusDeviceConfig } from "../../drivers/modbus/config.js";

const root = join(import.meta.dirname, "../..");
const fixtures = join(root, "test/fixtures/configs/templates");
const validDir = join(fixtures, "valid");
const invalidDir = join(fixtures, "invalid");

function load(file: string, env: NodeJS.ProcessEnv = {}): ModbusDeviceConfig[] {
  const r = loadConfig(file, env);
  if (!r.ok) throw new Error(r.problems.map((p) => formatProblem(file, p)).join("\n"));
  return r.config.devices as ModbusDeviceConfig[];
}

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): ConfigProblem[] {
  const r = parseConfigText(text, join(fixtures, "inline.yaml"), env);
  if (r.ok) throw new Error("expected problems, the config is valid");
  return r.problems;
}

const HEAD = "gateway: { id: edge-1, group: plant }\n";
const PRESS = `templates:
  press:
    driver: modbus
    connection: { port: 1502 }
    tags:
      - { name: rpm, area: holding, address: 0, type: uint16 }
      - { name: lamp, area: coil, address: 0, writable: true }
`;

describe("device templates: how a device is made", () => {
  const devices = load(join(validDir, "presses.yaml"));
  const byId = new Map(devices.map((d) => [d.id, d]));

  it("takes the template's driver, tags and defaults, and the device's own keys on top", () => {
    const p1 = byId.get("press-1")!;
    expect(p1).toMatchObject({ driver: "modbus", pollMs: 500, maxGap: 4, tagByTag: false, maxTimeouts: 3, disabled: false, reconnectMaxMs: 10000 });
    expect(p1.connection).toEqual({ transport: "tcp", host: "10.0.0.21", port: 1502, unitId: 1, timeoutMs: 800 });
    expect(p1.tags.map((t) => t.name)).toEqual(["spindle_rpm", "part_count", "temp_c", "lamp"]);
    const p2 = byId.get("press-2")!;
    expect(p2.pollMs).toBe(1000); // the device's key wins
    expect(p2.maxGap).toBe(4); // the template's where the device says nothing
    // connection is merged key by key: the device's port and unitId, the template's timeoutMs
    expect(p2.connection).toEqual({ transport: "tcp", host: "10.0.0.22", port: 502, unitId: 3, timeoutMs: 800 });
    expect(byId.get("press-3")).toMatchObject({ disabled: true, reconnectMaxMs: 30000, pollMs: 500 });
  });

  it("builds exactly the config of the same plant spelled out", () => {
    const expanded = load(join(validDir, "presses-expanded.yaml"));
    expect(devices).toEqual(expanded);
    expect(devices.map((d) => d.id)).toEqual(["press-1", "press-2", "press-3", "drive-1", "oven-1"]);
  });

  it("gives every device of a template one frozen tag array, and another template its own", () => {
    const [p1, p2, p3, drive] = ["press-1", "press-2", "press-3", "drive-1"].map((id) => byId.get(id)!);
    expect(p2!.tags).toBe(p1!.tags);
    expect(p3!.tags).toBe(p1!.tags);
    expect(drive!.tags).not.toBe(p1!.tags);
    expect(Object.isFrozen(p1!.tags)).toBe(true);
    expect(() => (p1!.tags as ModbusDeviceConfig["tags"][number][]).push(p1!.tags[0]!)).toThrow(TypeError);
    // a full device entry with a tag equal to a template's shares that tag object (TagInterner)
    expect(byId.get("oven-1")!.tags[0]).toBe(p1!.tags[2]);
  });

  it("keeps one tag array for thousands of devices", () => {
    const lines = Array.from({ length: 3000 }, (_, i) => `  - { id: p${i}, template: press, connection: { host: 10.0.${i >> 8}.${i & 255} } }`);
    const r = parseConfigText(`${HEAD}${PRESS}devices:\n${lines.join("\n")}\n`, join(fixtures, "many.yaml"), {});
    if (!r.ok) throw new Error(r.problems[0]!.message);
    const lists = new Set(r.config.devices.map((d) => d.tags));
    expect(r.config.devices).toHaveLength(3000);
    expect(lists.size).toBe(1);
  });

  it("holds a serial line in a template; each meter states its unit id", () => {
    const meters = load(join(validDir, "serial-line.yaml"));
    expect(meters.map((m) => m.connection)).toEqual([1, 2, 3].map((unitId) => ({
      transport: "rtu", path: "/dev/ttyUSB0", baudRate: 19200, parity: "even", dataBits: 8, stopBits: 1, unitId, timeoutMs: 300,
    })));
    expect(meters.map((m) => m.pollMs)).toEqual([5000, 5000, 1000]);
  });

  it("coerces a device's unquoted ${env:…} where a number is wanted, as everywhere else", () => {
    const text = `${HEAD}${PRESS}devices:
  - id: p1
    template: press
    pollMs: \${env:POLL}
    connection:
      host: \${env:P1_HOST}
      unitId: \${env:P1_UNIT}
`;
    const r = parseConfigText(text, join(fixtures, "env.yaml"), { POLL: "250", P1_HOST: "10.0.0.9", P1_UNIT: "7" });
    if (!r.ok) throw new Error(r.problems.map((p) => p.message).join("\n"));
    const d = r.config.devices[0] as ModbusDeviceConfig;
    expect(d.pollMs).toBe(250);
    expect(d.connection).toMatchObject({ host: "10.0.0.9", port: 1502, unitId: 7 });
  });

  it("accepts an empty templates section, and templates no device uses (still checked)", () => {
    const device = "devices:\n  - { id: a, driver: modbus, connection: { host: h }, tags: [{ name: x, area: coil, address: 0 }] }\n";
    expect(parseConfigText(`${HEAD}templates:\n${device}`, join(fixtures, "e.yaml"), {}).ok).toBe(true);
    expect(parseConfigText(`${HEAD}${PRESS}${device}`, join(fixtures, "e.yaml"), {}).ok).toBe(true);
    const unused = problemsOf(`${HEAD}${PRESS.replace("type: uint16", "type: int99")}${device}`);
    expect(unused.map((p) => `${p.line}: ${p.path}`)).toEqual(["7: templates.press.tags[0].type"]);
  });
});


describe("device templates: problems", () => {
  const cases = readdirSync(invalidDir).filter((f) => f.endsWith(".yaml")).sort();

  it("has its fixtures", () => {
    expect(cases.length).toBeGreaterThanOrEqual(12);
  });

  for (const c of cases) {
    // every problem at once with its template's line, exit 1, one line each, as `floorgate validate` prints them
    it(c, () => checkCase(join(invalidDir, c), builtModel()));
  }

  it("reports a bad template tag once at the template, however many devices use it", () => {
    const lines = Array.from({ length: 500 }, (_, i) => `  - { id: p${i}, template: press, connection: { host: h${i} } }`);
    const text = `${HEAD}${PRESS.replace("address: 0, type: uint16", "address: 70000, type: uint16")}devices:\n${lines.join("\n")}\n`;
    const problems = problemsOf(text);
    expect(problems).toEqual([{ path: "templates.press.tags[0].address", line: 7, col: 46, message: "found 70000 (integer); allowed: at most 65535" }]);
  });

  it("names the template and its line on a device problem the template takes part in", () => {
    const problems = loadConfig(join(invalidDir, "05-missing-host.yaml"), {});
    expect(problems.ok).toBe(false);
    if (problems.ok) return;
    expect(problems.problems).toEqual([
      { path: "devices[1].connection.host", line: 9, col: 44, message: expect.stringMatching(/^missing required key "host"/) as unknown as string, template: { name: "press", line: 5 } },
      { path: "devices[2].connection.host", line: 10, col: 5, message: expect.stringMatching(/^missing required key "host"/) as unknown as string, template: { name: "press", line: 5 } },
    ]);
    // a problem of the device's own value alone does not name the template
    const own = loadConfig(join(invalidDir, "06-driver-and-keys.yaml"), {});
    if (own.ok) throw new Error("expected problems");
    const poll = own.problems.find((p) => p.path === "devices[2].pollMs");
    expect(poll).toEqual({ path: "devices[2].pollMs", line: 9, col: 72, message: "found 5 (integer); allowed: at least 10" });
  });

  it("reads problem paths back into segments", () => {
    expect(parsePath("devices[12].connection.host")).toEqual(["devices", 12, "connection", "host"]);
    expect(parsePath('templates["bad name"].tags[0]')).toEqual(["templates", "bad name", "tags", 0]);
    expect(parsePath("templates.no-driver.driver")).toEqual(["templates", "no-driver", "driver"]);
    expect(parsePath("")).toEqual([]);
  });
});

describe("device templates: the JSON Schema agrees with validate", () => {
  const schema = JSON.parse(readFileSync(join(root, "edge-config/floorgate.schema.json"), "utf8")) as object;
  // an editor's view: the published file, a fresh validator, no positions
  const editor = new Ajv({ strict: false, allErrors: true }).compile(schema);
  const bySchema = (text: string): boolean => editor(parse(text));
  const byValidate = (text: string): boolean => parseConfigText(text, join(fixtures, "x.yaml"), {}).ok;

  const valid = [
    ...readdirSync(validDir).filter((f) => f.endsWith(".yaml")).map((f) => join(validDir, f)),
    join(root, "edge-config/presses.yaml"),
  ];
  for (const file of valid) {
    it(`accepts ${file.slice(root.length + 1)}, as validate does`, () => {
      const text = readFileSync(file, "utf8");
      expect(byValidate(text)).toBe(true);
      expect(bySchema(text), JSON.stringify(editor.errors?.slice(0, 3))).toBe(true);
    });
  }

  const device = "  - { id: p1, template: press, connection: { host: h } }\n";
  const refused: Record<string, string> = {
    "a device with a template and its own tags": `${HEAD}${PRESS}devices:\n  - { id: p1, template: press, connection: { host: h }, tags: [{ name: x, area: coil, address: 0 }] }\n`,
    "a device with a template and no id": `${HEAD}${PRESS}devices:\n  - { template: press, connection: { host: h } }\n`,
    "an unknown key on a device with a template": `${HEAD}${PRESS}devices:\n  - { id: p1, template: press, connection: { host: h }, colour: red }\n`,
    "an unknown connection key on a device with a template": `${HEAD}${PRESS}devices:\n  - { id: p1, template: press, connection: { hots: h } }\n`,
    "a template with an id": `${HEAD}${PRESS.replace("    driver: modbus\n", "    driver: modbus\n    id: x\n")}devices:\n${device}`,
    "a template without a driver": `${HEAD}${PRESS.replace("    driver: modbus\n", "")}devices:\n${device}`,
    "a template without tags": `${HEAD}templates:\n  press: { driver: modbus, connection: { port: 1502 } }\ndevices:\n${device}`,
    "a template with an unknown key": `${HEAD}${PRESS.replace("    driver: modbus\n", "    driver: modbus\n    colour: red\n")}devices:\n${device}`,
    "a template with a bad tag": `${HEAD}${PRESS.replace("type: uint16", "type: int99")}devices:\n${device}`,
    "a template with a bad connection value": `${HEAD}${PRESS.replace("port: 1502", "port: 70000")}devices:\n${device}`,
    "a template name with a space": `${HEAD}${PRESS.replace("  press:", '  "my press":')}devices:\n  - { id: p1, template: "my press", connection: { host: h } }\n`,
    "a template name that is not a valid device id": `${HEAD}${PRESS}devices:\n  - { id: p1, template: "pr ess", connection: { host: h } }\n`,
  };
  for (const [what, text] of Object.entries(refused)) {
    it(`refuses ${what}, as validate does`, () => {
      expect(byValidate(text)).toBe(false);
      expect(bySchema(text)).toBe(false);
    });
  }

  it("leaves to validate what needs the template and the device together (documented in the schema's descriptions)", () => {
    // the merged device lacks a host: no schema without the template's content can tell
    const text = `${HEAD}${PRESS}devices:\n  - { id: p1, template: press, connection: { unitId: 2 } }\n`;
    expect(bySchema(text)).toBe(true);
    expect(byValidate(text)).toBe(false);
    const s = schema as { properties: { templates: { description: string } } };
    expect(s.properties.templates.description).toMatch(/may not list tags/);
  });
});
