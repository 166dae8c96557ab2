/**
 * The config loader at plant scale: a spelled-out 2,000-device × 100-tag Modbus file is accepted
 * (and validated in bounded time), while alias bombs are still refused quickly.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, parseConfigText, MAX_CONFIG_BYTES } from "../../src/config/load.js";
import { MAX_ALIAS_NODES } from "../../src/config/source.js";

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), "fg-scale-config-")); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

const HEAD = "gateway: { id: edge-1, group: plant }\ndevices:\n";

function plantYaml(devices: number, tags: number): string {
  const tagText: string[] = [];
  for (let a = 0; a < tags; a++) tagText.push(`      - { name: r${a}, area: holding, address: ${a}, type: ${a % 2 ? "int16" : "uint16"} }`);
  const t = tagText.join("\n");
  const parts = [HEAD];
  for (let i = 0; i < devices; i++) {
    parts.push(`  - id: d${i}\n    driver: modbus\n    connection: { transport: tcp, host: 127.0.0.1, port: ${10000 + i}, unitId: 1 }\n    pollMs: 1000\n    tags:\n${t}\n`);
  }
  return parts.join("");
}

describe("config at plant scale", () => {
  it("accepts 2,000 Modbus devices × 100 tags spelled out, from a file", () => {
    const text = plantYaml(2000, 100);
    expect(text.length).toBeGreaterThan(4 * 1024 * 1024); // the old cap
    expect(text.length).toBeLessThan(MAX_CONFIG_BYTES);
    const file = join(dir, "plant.yaml");
    writeFileSync(file, text);
    const t0 = performance.now();
    const r = loadConfig(file, {});
    const ms = performance.now() - t0;
    if (!r.ok) throw new Error(r.problems.slice(0, 3).map((p) => `${p.line}:${p.col} ${p.message}`).join("\n"));
    expect(r.config.devices).toHaveLength(2000);
    expect(r.config.devices[1999]!.tags).toHaveLength(100);
    expect(r.config.devices[1999]!.id).toBe("d1999");
    // identical tag lists are one shared, interned list (the runtime shares plans and rules by it)
    expect(r.config.devices[1999]!.tags).toBe(r.config.devices[0]!.tags);
    expect(ms).toBeLessThan(45_000);
  }, 120_000);

  // 500 devices: 300,000 nodes through aliases, 15× the old cap (yaml's Alias.resolve scans the
  // document per alias, so 2,000 takes ~35 s here — see the driver README's scale notes).
  it("accepts a tag list shared by 500 devices through one alias", () => {
    const tags: string[] = [];
    for (let a = 0; a < 100; a++) tags.push(`  - { name: r${a}, area: holding, address: ${a}, type: uint16 }`);
    const parts = [`x-tags: &press\n${tags.join("\n")}\n`, HEAD];
    for (let i = 0; i < 500; i++) parts.push(`  - { id: d${i}, driver: modbus, connection: { transport: tcp, host: 127.0.0.1, port: ${10000 + i} }, tags: *press }\n`);
    const r = parseConfigText(parts.join(""), join(dir, "alias.yaml"), {});
    // an unknown top-level key may be refused by the schema; what matters here is the size guard
    const problems = r.ok ? [] : r.problems;
    expect(problems.filter((p) => /too large/.test(p.message))).toEqual([]);
  }, 120_000);

  it("shares identical tags and tag lists across devices, and only identical ones", () => {
    const tag = (a: number, extra = ""): string => `      - { name: t${a}, area: holding, address: ${a}, type: uint16${extra} }`;
    const dev = (id: string, tags: string[]): string => `  - id: ${id}\n    driver: modbus\n    connection: { transport: tcp, host: 127.0.0.1, port: 1502 }\n    tags:\n${tags.join("\n")}\n`;
    const same = [tag(0), tag(1), tag(2)];
    const text = HEAD + dev("a", same) + dev("b", same) + dev("c", [tag(0), tag(1), tag(2, ", scale: 0.1")]) + dev("d", [tag(0), tag(1)]);
    const r = parseConfigText(text, join(dir, "share.yaml"), {});
    if (!r.ok) throw new Error(r.problems.map((p) => p.message).join("\n"));
    const [a, b, c, d] = r.config.devices.map((x) => x.tags);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    expect(d).not.toBe(a);
    expect(c![0]).toBe(a![0]); // the same tag is one object in every list
    expect(d![1]).toBe(a![1]);
    expect(c![2]).not.toBe(a![2]);
    expect(c![2]!.scale).toBe(0.1);
    expect(a![2]!.scale).toBe(1);
  });

  it("still refuses an alias bomb, quickly", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 9; i++) bomb.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(", ")}]`);
    const t0 = performance.now();
    const r = parseConfigText(`${bomb.join("\n")}\n`, join(dir, "bomb.yaml"), {});
    const ms = performance.now() - t0;
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.some((p) => /too large or too deeply nested/.test(p.message) && p.message.includes(String(MAX_ALIAS_NODES)))).toBe(true);
    expect(ms).toBeLessThan(20_000);
  }, 60_000);

  it("refuses a file over the byte cap without parsing it", () => {
    const file = join(dir, "huge.yaml");
    writeFileSync(file, Buffer.alloc(MAX_CONFIG_BYTES + 1, 0x20));
    const r = loadConfig(file, {});
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems[0]!.message).toMatch(/at most 67108864 bytes/);
  });
});
