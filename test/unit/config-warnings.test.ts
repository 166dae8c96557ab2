/**
 * Config warnings: accepted (exit 0), but printed by `validate` with path and line. The Modbus
 * driver warns about PLC register notation (`address: 40001`), a day-long trap: the device answers
 * register 40001 (or an exception) instead of the first holding register.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, parseConfigText } from "../../src/config/load.js";
import { runValidate } from "../../src/config/cli.js";
import { plcNotationWarning } from "../../drivers/modbus/config.js";

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), "fg-warn-")); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (tags: string[]): string => `gateway: { id: edge-1, group: plant }
devices:
  - id: press-1
    driver: modbus
    connection: { host: 127.0.0.1 }
    tags:
${tags.map((t) => `      - ${t}`).join("\n")}
`;

describe("PLC register notation", () => {
  it("flags 4xxxx/3xxxx on register areas and 1xxxx on discrete inputs, with the 0-based address to write", () => {
    expect(plcNotationWarning("holding", 40001)).toMatch(/^address 40001 looks like PLC register notation \(4xxxx: holding register 1\); addresses here are 0-based register offsets, so 40001 is written address: 0\b/);
    expect(plcNotationWarning("holding", 40110)).toMatch(/so 40110 is written address: 109\b/);
    expect(plcNotationWarning("input", 30001)).toMatch(/3xxxx: input register 1\).*written address: 0\b/);
    expect(plcNotationWarning("discrete", 10003)).toMatch(/1xxxx: discrete input 3\).*written address: 2\b/);
    // notation of the other register table: the area is wrong too
    expect(plcNotationWarning("holding", 30005)).toMatch(/written area: input, address: 4\b/);
    expect(plcNotationWarning("input", 40002)).toMatch(/written area: holding, address: 1\b/);
  });

  it("leaves plain offsets alone, and coils (0xxxx cannot be told from an offset)", () => {
    for (const [area, address] of [["holding", 0], ["holding", 40000], ["holding", 50000], ["holding", 65535], ["input", 30000], ["input", 29999],
      ["discrete", 10000], ["discrete", 20000], ["discrete", 30001], ["coil", 1], ["coil", 9999], ["coil", 40001]] as const) {
      expect(plcNotationWarning(area, address), `${area} ${address}`).toBeUndefined();
    }
    expect(plcNotationWarning(undefined, 40001)).toBeUndefined();
    expect(plcNotationWarning("holding", undefined)).toBeUndefined();
  });

  it("accepts the config and returns each warning with its path and line", () => {
    const r = parseConfigText(config([
      "{ name: a, area: holding, address: 40001, type: uint16 }",
      "{ name: b, area: holding, address: 12, type: uint16 }",
      "{ name: c, area: discrete, address: 10001 }",
    ]), join(dir, "f.yaml"), {});
    expect(r.ok).toBe(true);
    expect(r.warnings.map((w) => [w.severity, w.path, w.line, w.col])).toEqual([
      ["warning", "devices[0].tags[0].address", 7, 44],
      ["warning", "devices[0].tags[2].address", 9, 45],
    ]);
    if (r.ok) expect(r.config.devices[0]!.tags.map((t) => t.name)).toEqual(["a", "b", "c"]);
  });

  it("validate: exit 0, `config ok`, and the warning on stderr as FILE:LINE:COL: warning: PATH: MESSAGE", () => {
    const file = join(dir, "warn.yaml");
    writeFileSync(file, config(["{ name: a, area: holding, address: 40001, type: uint16 }"]));
    const out = runValidate(file, {});
    expect(out.code).toBe(0);
    expect(out.stdout).toBe("config ok\n");
    expect(out.stderr).toBe(`${file}:7:44: warning: devices[0].tags[0].address: ${plcNotationWarning("holding", 40001)!}\n`);
  });

  it("validate of a config with errors prints the errors, then the warnings, and exits 1", () => {
    const file = join(dir, "both.yaml");
    writeFileSync(file, config(["{ name: a, area: holding, address: 40001, type: uint16 }", "{ name: b, area: holding, address: 1, type: int99 }"]));
    const out = runValidate(file, {});
    expect(out.code).toBe(1);
    const lines = out.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/:8:53: devices\[0\]\.tags\[1\]\.type: found "int99"/);
    expect(lines[1]).toMatch(/:7:44: warning: devices\[0\]\.tags\[0\]\.address: address 40001 looks like/);
    const r = loadConfig(file, {});
    expect(r.ok).toBe(false);
    expect(r.warnings).toHaveLength(1);
  });

  it("a clean config has no warnings", () => {
    const r = parseConfigText(config(["{ name: a, area: holding, address: 0, type: uint16 }"]), join(dir, "g.yaml"), {});
    expect(r).toMatchObject({ ok: true, warnings: [] });
  });
});
