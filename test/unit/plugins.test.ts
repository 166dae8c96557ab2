/**
 * The plugin lists (src/plugins/): every registered driver and output has its folder with a README
 * and a complete sample.yaml that validates; the build's schema lists exactly the registered names;
 * and runs its interface's conformance suite; and the driver thread's import closure holds no
 * output and no MQTT.js.
 */
import { describe, it, expect } from "vitest";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { drivers, findDriver } from "../../src/plugins/drivers.js";
import { outputs, findOutput } from "../../src/plugins/outputs.js";
import { notBuilt } from "../../src/plugins/planned.js";
import { ingestListeners } from "../../src/plugins/ingest.js";
import { loadConfig } from "../../src/config/load.js";
import { CONFIG_SCHEMA, type JsonSchema } from "../../src/config/schema.js";

const root = join(import.meta.dirname, "../..");

const registered = [
  ...drivers.map((p) => ({ kind: "driver" as const, name: p.name, folder: p.folder })),
  ...outputs.map((p) => ({ kind: "output" as const, name: p.name, folder: p.folder })),
  ...ingestListeners.map((p) => ({ kind: "ingest listener" as const, name: p.key, folder: p.folder })),
];

describe("registered plugins", () => {
  it("are listed once each, under unique names", () => {
    expect(drivers.length).toBeGreaterThan(0);
    expect(outputs.length).toBeGreaterThan(0);
    expect(new Set(drivers.map((d) => d.name)).size).toBe(drivers.length);
    expect(new Set(outputs.map((o) => o.name)).size).toBe(outputs.length);
    for (const d of drivers) expect(findDriver(d.name)).toBe(d);
    for (const o of outputs) expect(findOutput(o.name)).toBe(o);
  });

  for (const p of registered) {
    describe(`${p.kind} ${p.name} (${p.folder})`, () => {
      const folder = join(root, p.folder);

      it("has its folder with a README.md", () => {
        expect(statSync(folder).isDirectory()).toBe(true);
        const readme = join(folder, "README.md");
        expect(existsSync(readme), readme).toBe(true);
        expect(readFileSync(readme, "utf8")).toMatch(/^# .+/);
      });

      it("has a complete sample.yaml that validates and uses the plugin", () => {
        const sample = join(folder, "sample.yaml");
        expect(existsSync(sample), sample).toBe(true);
        // No environment: a sample must not depend on variables the reader has not set.
        const r = loadConfig(sample, {});
        if (!r.ok) throw new Error(`${p.folder}/sample.yaml is invalid:\n${r.problems.map((x) => `${x.line}:${x.col}: ${x.path}: ${x.message}`).join("\n")}`);
        expect(r.warnings, "a sample shows good practice: no warnings").toEqual([]);
        const used = p.kind === "driver" ? r.config.devices.map((d) => d.driver)
          : p.kind === "output" ? r.config.outputs.map((o) => o.type)
            : Object.keys(r.config.ingest).filter((k) => (r.config.ingest as unknown as Record<string, unknown>)[k] !== undefined);
        expect(used).toContain(p.name);
      });
    });
  }

  // One conformance suite per interface, run against every implementation: a plugin in a list
  // without its run of the suite is a defect this catches.
  for (const d of drivers) {
    it(`driver ${d.name} runs the driver conformance suite (test/drivers/${d.name}.conformance.test.ts)`, () => {
      const file = join(root, "test", "drivers", `${d.name}.conformance.test.ts`);
      expect(existsSync(file), file).toBe(true);
      expect(readFileSync(file, "utf8")).toMatch(/\bdriverConformance\(/);
    });
  }
  for (const o of outputs) {
    it(`output ${o.name} runs the output conformance suite (test/outputs/${o.name}*.test.ts)`, () => {
      const dir = join(root, "test", "outputs");
      const runs = readdirSync(dir)
        .filter((f) => f.startsWith(o.name) && f.endsWith(".test.ts"))
        .filter((f) => /\boutputConformance\(/.test(readFileSync(join(dir, f), "utf8")));
      expect(runs.length, `no test/outputs/${o.name}*.test.ts calls outputConformance`).toBeGreaterThan(0);
    });
  }

  for (const l of ingestListeners) {
    it(`ingest listener ${l.key} has its tests against real devices (test/ingest-${l.key}/*.test.ts)`, () => {
      const dir = join(root, "test", `ingest-${l.key}`);
      expect(existsSync(dir) && readdirSync(dir).some((f) => f.endsWith(".test.ts")), dir).toBe(true);
    });
  }

  it("the build's schema offers exactly the registered drivers and outputs", () => {
    const props = CONFIG_SCHEMA.properties as Record<string, JsonSchema>;
    const items = (k: string): JsonSchema => props[k]!.items as JsonSchema;
    expect((items("devices").properties as Record<string, JsonSchema>).driver!.enum).toEqual(drivers.map((d) => d.name));
    expect((items("outputs").properties as Record<string, JsonSchema>).type!.enum).toEqual(outputs.map((o) => o.name));
  });

  it("names as not built only what no list carries", () => {
    const built = new Set<string>([...drivers.map((d) => d.name), ...outputs.map((o) => o.name)]);
    for (const n of notBuilt) if (n.value !== undefined) expect(built.has(n.value), n.value).toBe(false);
  });
});

/**
 * The source files `entry` imports, transitively (relative imports; type-only imports left out,
 * since they vanish at compile time), and the bare packages they import.
 */
function importClosure(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [entry];
  const spec = /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\s+from\s+)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(spec)) {
      const s = m[1] ?? m[2]!;
      if (s.startsWith(".")) {
        const target = resolve(dirname(file), s).replace(/\.js$/, ".ts");
        if (!existsSync(target)) throw new Error(`${relative(root, file)} imports ${s}, which does not resolve to a .ts file`);
        pending.push(target);
      } else {
        packages.add(s.startsWith("@") ? s.split("/").slice(0, 2).join("/") : s.split("/")[0]!);
      }
    }
  }
  return { files, packages };
}

describe("driver thread import closure", () => {
  const { files, packages } = importClosure(join(root, "src/runtime/threads/driver-worker.ts"));
  const rel = [...files].map((f) => relative(root, f));

  it("reaches the drivers (the walk sees what it claims to check)", () => {
    expect(rel).toContain("src/plugins/drivers.ts");
    expect(rel).toContain("drivers/modbus/plugin.ts");
    expect(packages).toContain("node:worker_threads");
  });

  it("does not load MQTT.js, any output or the config loader", () => {
    expect([...packages].filter((p) => /mqtt|aedes/.test(p))).toEqual([]);
    expect(rel.filter((f) => f.startsWith("src/outputs/") || f.startsWith("src/plugins/outputs") || f === "src/config/load.ts")).toEqual([]);
  });

  it("the walk would see MQTT.js where it is loaded", () => {
    expect(importClosure(join(root, "src/plugins/outputs.ts")).packages).toContain("mqtt");
  });
});
