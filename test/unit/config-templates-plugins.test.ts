/**
 * Device templates on the plugin model (src/config/templates.ts knows no protocol): they work for
 * any composition of driver config parts — the build's, the planned one with OPC UA
 * (test/unit/config-planned.ts), and a test-only driver that exercises the generic hooks
 * (`ConfigPart.tagRulesRead`, warnings from `check`) — and warnings meet templates as errors do:
 * a template's warning once at the template, a templated device's warning naming the template.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import { parse } from "yaml";
import type { ConfigIssue, DeviceCommon, DeviceConfigBase, DriverConfigPart, OutputConfigBase, OutputConfigPart } from "../../src/core/plugin.js";
import type { TagCommon } from "../../src/core/tag.js";
import { enumOf, nonEmpty, obj, tagCommonSchema } from "../../src/core/schema-kit.js";
import { buildTagCommon, isObj, listOf, objOf, strOf } from "../../src/core/config-kit.js";
import { composeConfig } from "../../src/config/model.js";
import { formatProblem, parseConfigText } from "../../src/config/load.js";
import { runValidate } from "../../src/config/cli.js";
import { mqttConfig } from "../../src/outputs/mqtt/config.js";
import type { ModbusDeviceConfig } from "../../drivers/modbus/config.js";
import type { OpcuaDeviceConfig } from "../../drivers/opcua/config.js";
import { parsePlanned, plannedModel } from "./config-planned.js";

const root = join(import.meta.dirname, "../..");
let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), "fg-tpl-")); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HEAD = "gateway: { id: edge-1, group: plant }\n";

describe("templates code is protocol-neutral", () => {
  it("names no driver, output or protocol key", () => {
    for (const f of ["src/config/templates.ts", "src/config/template-schema.ts"]) {
      const text = readFileSync(join(root, f), "utf8");
      for (const word of ["modbus", "opcua", "mqtt", "influx", "sparkplug", "transport", "unitId", "nodeId", "endpoint", "serial"]) {
        expect(text.toLowerCase().includes(word.toLowerCase()), `${f} names ${word}`).toBe(false);
      }
    }
  });
});

describe("a template's PLC-notation warning", () => {
  // 150 devices over TCP and 150 on a serial line: the template's tags are checked per transport,
  // and the warning still comes once.
  const tcp = Array.from({ length: 150 }, (_, i) => `  - { id: t${i}, template: press, connection: { host: 10.0.0.${i % 250} } }`);
  const rtu = Array.from({ length: 150 }, (_, i) => `  - { id: r${i}, template: press, connection: { transport: rtu, path: /dev/ttyS0, unitId: ${i + 1} } }`);
  const text = `${HEAD}templates:
  press:
    driver: modbus
    connection: { timeoutMs: 800 }
    tags:
      - { name: rpm, area: holding, address: 40001, type: uint16 }
      - { name: ok, area: holding, address: 3, type: uint16 }
devices:
${[...tcp, ...rtu].join("\n")}
`;

  it("is reported once, at the template's tag, however many devices and transports use it", () => {
    const r = parseConfigText(text, join(dir, "plc.yaml"), {});
    if (!r.ok) throw new Error(r.problems.map((p) => formatProblem("plc.yaml", p)).join("\n"));
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatchObject({ severity: "warning", path: "templates.press.tags[0].address", line: 7, col: 46 });
    expect(r.warnings[0]!.template).toBeUndefined();
    expect(r.warnings[0]!.message).toMatch(/^address 40001 looks like PLC register notation/);
    expect(r.config.devices).toHaveLength(300);
    expect(new Set(r.config.devices.map((d) => d.tags)).size).toBe(1);
  });

  it("is one line of `validate`, exit 0", () => {
    const file = join(dir, "plc.yaml");
    writeFileSync(file, text);
    const out = runValidate(file, {});
    expect(out.code).toBe(0);
    const lines = out.stderr.trimEnd().split("\n");
    expect(lines).toEqual([`${file}:7:46: warning: templates.press.tags[0].address: ${parseConfigText(text, file, {}).warnings[0]!.message}`]);
  });
});

/**
 * A test-only driver: `connection.address` (required) and `connection.mode`; tags read `slot`.
 * Its tag rule depends on the mode (slots above 9 are slow in slow mode: a warning), so it says
 * so in `tagRulesRead`; an address "shared" is a device-level warning.
 */
interface GaugeTag extends TagCommon { slot: number }
interface GaugeDevice extends DeviceCommon { driver: "gauge"; connection: { address: string; mode: string }; tags: readonly GaugeTag[] }

const gauge: DriverConfigPart<GaugeDevice> = {
  name: "gauge",
  schema: {
    description: "A test-only driver",
    properties: {
      connection: obj("How to reach it", { address: nonEmpty("Address"), mode: enumOf("Mode", ["fast", "slow"], "fast") }, ["address"]),
      tags: { type: "array", minItems: 1, description: "Tags", items: obj("A tag", { ...tagCommonSchema, slot: { type: "integer", minimum: 0, description: "Slot" } }, ["name", "slot"]) },
    },
    required: ["connection", "tags"],
  },
  tagRulesRead: [["connection", "mode"]],
  check(items) {
    const out: ConfigIssue[] = [];
    for (const d of items) {
      const c = objOf(d.value.connection);
      if (c.address === "shared") out.push({ path: [...d.path, "connection", "address"], message: "address shared is shared", severity: "warning" });
      listOf(d.value.tags).forEach((t, j) => {
        if (isObj(t) && typeof t.slot === "number" && t.slot > 9 && strOf(c.mode) === "slow") {
          out.push({ path: [...d.path, "tags", j, "slot"], message: `slot ${t.slot} is slow in slow mode`, severity: "warning" });
        }
      });
    }
    return out;
  },
  builder() {
    const lists = new Map<unknown[], readonly GaugeTag[]>();
    return (d, common) => {
      const raw = listOf(d.tags);
      let tags = lists.get(raw);
      if (!tags) {
        tags = Object.freeze(raw.map((t) => ({ ...buildTagCommon(objOf(t)), slot: objOf(t).slot as number })));
        lists.set(raw, tags);
      }
      const c = objOf(d.connection);
      return { ...common, driver: "gauge", connection: { address: c.address as string, mode: strOf(c.mode) ?? "fast" }, tags };
    };
  },
};

const gaugeModel = composeConfig<GaugeDevice, OutputConfigBase>({
  drivers: [gauge] as unknown as DriverConfigPart<DeviceConfigBase>[],
  outputs: [mqttConfig] as unknown as OutputConfigPart<OutputConfigBase>[],
});

describe("templates with any driver (a test-only one)", () => {
  const text = `${HEAD}templates:
  g:
    driver: gauge
    connection: { mode: fast }
    tags:
      - { name: a, slot: 12 }
      - { name: b, slot: 1 }
devices:
  - { id: d0, template: g, connection: { address: a0 } }
  - { id: d1, template: g, connection: { address: a1, mode: slow } }
  - { id: d2, template: g, connection: { address: a2, mode: slow } }
  - { id: d3, template: g, connection: { address: a3, mode: slow } }
  - { id: d4, template: g, connection: { address: shared } }
`;
  const r = parseConfigText(text, "gauge.yaml", {}, gaugeModel);

  it("builds the devices, one frozen tag list for all of them", () => {
    if (!r.ok) throw new Error(r.problems.map((p) => formatProblem("gauge.yaml", p)).join("\n"));
    expect(r.config.devices.map((d) => [d.id, d.connection.address, d.connection.mode])).toEqual([
      ["d0", "a0", "fast"], ["d1", "a1", "slow"], ["d2", "a2", "slow"], ["d3", "a3", "slow"], ["d4", "shared", "fast"],
    ]);
    expect(new Set(r.config.devices.map((d) => d.tags)).size).toBe(1);
    expect(Object.isFrozen(r.config.devices[0]!.tags)).toBe(true);
  });

  it("checks the template's tags once more per value of a key the tag rules read; a warning names device and template", () => {
    const lines = r.warnings.map((w) => formatProblem("gauge.yaml", w));
    expect(lines).toEqual([
      "gauge.yaml:11:61: warning: devices[1].connection.mode (template g, line 7): with mode slow: templates.g.tags[0].slot: slot 12 is slow in slow mode; 2 more devices use template g with mode slow",
      "gauge.yaml:14:51: warning: devices[4].connection.address (template g, line 5): address shared is shared",
    ]);
    expect(r.warnings[0]).toMatchObject({ severity: "warning", template: { name: "g", line: 7 } });
  });

  it("reports a warning the template itself holds once, at the template", () => {
    const shared = text.replace("connection: { mode: fast }", "connection: { mode: fast, address: shared }").replace(/, address: a\d/g, "");
    const w = parseConfigText(shared, "gauge.yaml", {}, gaugeModel);
    expect(w.ok).toBe(true);
    // d0-d3 take the template's address: not reported again; d4 states it itself
    expect(w.warnings.filter((x) => x.message === "address shared is shared").map((x) => [x.path, x.line, x.template])).toEqual([
      ["templates.g.connection.address", 5, undefined],
      ["devices[4].connection.address", 14, { name: "g", line: 5 }],
    ]);
  });

  it("says what a merged device lacks, naming the template, in this composition's words", () => {
    const bad = parseConfigText(`${HEAD}templates:\n  g: { driver: gauge, tags: [{ name: a, slot: 1 }] }\ndevices:\n  - { id: d0, template: g, connection: { mode: slow } }\n  - { id: d1, template: g, connection: { address: x, colour: red } }\n`, "gauge.yaml", {}, gaugeModel);
    expect(bad.ok).toBe(false);
    if (bad.ok) return;
    expect(bad.problems.map((p) => formatProblem("gauge.yaml", p))).toEqual([
      'gauge.yaml:5:40: devices[0].connection.address (template g, line 3): missing required key "address" (Address)',
      'gauge.yaml:6:54: devices[1].connection.colour (template g, line 3): unknown key "colour"; allowed keys: address, mode',
    ]);
  });
});

describe("templates in the planned composition (OPC UA beside Modbus)", () => {
  const text = `${HEAD}templates:
  oven:
    driver: opcua
    connection: { securityMode: None }
    mode: poll
    tags:
      - { name: zone1, nodeId: "ns=2;s=Oven.Zone1" }
  press:
    driver: modbus
    tags: [{ name: rpm, area: holding, address: 0, type: uint16 }]
devices:
  - { id: oven-1, template: oven, connection: { endpoint: "opc.tcp://10.0.0.5:4840" } }
  - { id: oven-2, template: oven, connection: { endpoint: "opc.tcp://10.0.0.6:4840" }, pollMs: 250 }
  - { id: press-1, template: press, connection: { host: 10.0.0.7 } }
`;

  it("builds OPC UA devices from a template, sharing one frozen tag list", () => {
    const r = parsePlanned(text, join(dir, "planned.yaml"), {});
    if (!r.ok) throw new Error(r.problems.map((p) => formatProblem("planned.yaml", p)).join("\n"));
    const [o1, o2, p1] = r.config.devices as [OpcuaDeviceConfig, OpcuaDeviceConfig, ModbusDeviceConfig];
    expect(o1).toMatchObject({ driver: "opcua", mode: "poll", pollMs: 1000, connection: { endpoint: "opc.tcp://10.0.0.5:4840", securityMode: "None" } });
    expect(o2.pollMs).toBe(250);
    expect(o2.tags).toBe(o1.tags);
    expect(Object.isFrozen(o1.tags)).toBe(true);
    expect(p1.driver).toBe("modbus");
  });

  it("derives the template schema from the composed device schema: an editor accepts the same file", () => {
    const editor = new Ajv({ strict: false, allErrors: true }).compile(plannedModel.schema);
    expect(editor(parse(text)), JSON.stringify(editor.errors?.slice(0, 3))).toBe(true);
    // an OPC UA template with a Modbus key is refused by the schema too
    expect(editor(parse(text.replace("mode: poll", "mode: poll\n    maxGap: 3")))).toBe(false);
  });

  it("names the template on a merged OPC UA device's problem, and keeps each driver's rules", () => {
    const r = parsePlanned(text.replace('connection: { endpoint: "opc.tcp://10.0.0.6:4840" }', "connection: { username: u }"), join(dir, "planned.yaml"), {});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => [p.path, p.line, p.template])).toEqual([
      ["devices[1].connection.endpoint", 14, { name: "oven", line: 5 }],
    ]);
    const noDriver = parsePlanned(`${HEAD}templates:\n  t: { tags: [{ name: a, nodeId: "i=1" }] }\n`, join(dir, "planned.yaml"), {});
    expect(noDriver.ok ? [] : noDriver.problems.map((p) => p.message)).toEqual(['missing required key "driver"; allowed: modbus | opcua']);
  });

  it("builds the same templates in this build, now that the OPC UA driver is built", () => {
    const r = parseConfigText(text, join(dir, "built.yaml"), {});
    if (!r.ok) throw new Error(r.problems.map((p) => formatProblem("built.yaml", p)).join("\n"));
    expect(r.config.devices.map((d) => `${d.id}:${d.driver}`)).toEqual(["oven-1:opcua", "oven-2:opcua", "press-1:modbus"]);
  });
});
