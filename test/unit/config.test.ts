import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { loadConfig, parseConfigText, type LoadResult } from "../../src/config/load.js";
import { runValidate, runSchema } from "../../src/config/cli.js";
import type { GatewayConfigOf, ConfigProblem } from "../../src/config/types.js";
import type { ModbusDeviceConfig } from "../../drivers/modbus/config.js";
import type { OpcuaDeviceConfig } from "../../drivers/opcua/config.js";
import type { MqttOutputConfig } from "../../src/outputs/mqtt/config.js";
import type { InfluxOutputConfig } from "../../src/outputs/influx/config.js";
import { parsePlanned } from "./config-planned.js";
import { parseSize } from "../../src/core/sizes.js";
import { parseHostPort, isLoopback } from "../../src/core/net.js";
import { substituteEnv } from "../../src/config/env.js";

let dir: string;
const G = "gateway:\n  id: edge-1\n  group: plant\n";

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "fg-config-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function ok<D, O>(r: LoadResult<D, O>): GatewayConfigOf<D, O> {
  if (!r.ok) throw new Error(`expected a valid config, got:\n${r.problems.map((p) => `${p.line}:${p.col}: ${p.path}: ${p.message}`).join("\n")}`);
  return r.config;
}
function problems<D, O>(r: LoadResult<D, O>): ConfigProblem[] {
  if (r.ok) throw new Error("expected problems, the config was accepted");
  return r.problems;
}
const parse = (text: string, env: NodeJS.ProcessEnv = {}): LoadResult => parseConfigText(text, join(dir ?? tmpdir(), "floorgate.yaml"), env);
/** With the planned plugins (OPC UA, Influx, Sparkplug B, ingest.mqtt) composed in: see config-planned.ts. */
const parseP = (text: string, env: NodeJS.ProcessEnv = {}) => parsePlanned(text, join(dir ?? tmpdir(), "floorgate.yaml"), env);

describe("defaults", () => {
  it("fills every default of spec §2 for a gateway-only file", () => {
    const c = ok(parse(G));
    expect(c.gateway).toEqual({ id: "edge-1", group: "plant", dataDir: join(dir, "data"), driverThreads: 0 });
    expect(c.http).toEqual({ listen: "127.0.0.1:8080", host: "127.0.0.1", port: 8080, operatorTokens: [], allowedOrigins: [] });
    expect(c.journal).toEqual({ maxBytes: 1024 ** 3, overflow: "drop-oldest", fsync: "batch", fsyncIntervalMs: 50 });
    expect(c.devices).toEqual([]);
    expect(c.outputs).toEqual([]);
    expect(c.ingest).toEqual({ http: false, maxPayloadBytes: 262144, ratePerDevice: 200, maxDevices: 20000, dedupMaxEntries: 8000000, devices: [] });
  });

  it("takes gateway.driverThreads from 0 to 16, and names the path of anything else", () => {
    const withThreads = (v: string): string => G.replace(/group: plant/, `group: plant\n  driverThreads: ${v}`);
    expect(ok(parse(withThreads("2"))).gateway.driverThreads).toBe(2);
    for (const bad of ["-1", "17", "1.5", "two"]) {
      expect(problems(parse(withThreads(bad))).map((p) => p.path)).toContain("gateway.driverThreads");
    }
  });

  it("gives polled devices a driver thread by default only beside a device listener (ingest.mqtt)", () => {
    const press = "devices:\n  - { id: press-1, driver: modbus, connection: { host: plc.local }, tags: [{ name: rpm, area: holding, address: 0, type: uint16 }] }\n";
    const listener = 'ingest: { mqtt: { listen: "127.0.0.1:1884" } }\n';
    expect(ok(parseP(`${G}${press}${listener}`)).gateway.driverThreads).toBe(1);
    // an explicit 0 is kept: the engineer chose the main thread
    expect(ok(parseP(`${G.replace(/group: plant/, "group: plant\n  driverThreads: 0")}${press}${listener}`)).gateway.driverThreads).toBe(0);
    expect(ok(parseP(`${G}${press}ingest: { http: true }\n`)).gateway.driverThreads).toBe(0);
    expect(ok(parseP(`${G}${listener}`)).gateway.driverThreads).toBe(0);
  });

  it("turns ingest.http on when an ingest section exists, even an empty one", () => {
    expect(ok(parse(`${G}ingest:\n`)).ingest.http).toBe(true);
    expect(ok(parse(`${G}ingest:\n  ratePerDevice: 5\n`)).ingest).toEqual({ http: true, maxPayloadBytes: 262144, ratePerDevice: 5, maxDevices: 20000, dedupMaxEntries: 8000000, devices: [] });
    expect(ok(parse(`${G}ingest:\n  http: false\n`)).ingest.http).toBe(false);
  });

  it("defaults Modbus devices, connections and tags", () => {
    const c = ok(parse(`${G}devices:
  - id: press-1
    driver: modbus
    connection: { host: plc.local }
    tags:
      - { name: rpm, area: holding, address: 0, type: float32 }
      - { name: lamp, area: coil, address: 3 }
  - id: feeder-1
    driver: modbus
    connection: { transport: rtu, path: /dev/ttyUSB0 }
    tags: [{ name: jam, area: discrete, address: 1 }]
`));
    const d = c.devices[0] as ModbusDeviceConfig;
    expect(d).toMatchObject({ driver: "modbus", pollMs: 1000, maxGap: 8, tagByTag: false, maxTimeouts: 3, reconnectMaxMs: 10000, disabled: false });
    expect(d.connection).toEqual({ transport: "tcp", host: "plc.local", port: 502, unitId: 1, timeoutMs: 1000 });
    expect(d.tags[0]).toEqual({ name: "rpm", area: "holding", address: 0, type: "float32", byteOrder: "ABCD", scale: 1, offset: 0, writable: false });
    expect(d.tags[1]).toMatchObject({ name: "lamp", area: "coil", type: "bool", writable: false });
    const rtu = c.devices[1] as ModbusDeviceConfig;
    expect(rtu.connection).toEqual({ transport: "rtu", path: "/dev/ttyUSB0", baudRate: 9600, parity: "none", dataBits: 8, stopBits: 1, unitId: 1, timeoutMs: 1000 });
  });

  it("defaults OPC UA devices", () => {
    const c = ok(parseP(`${G}devices:
  - id: oven-2
    driver: opcua
    connection: { endpoint: "opc.tcp://127.0.0.1:4840" }
    tags: [{ name: t, nodeId: "ns=2;s=T" }]
`));
    const d = c.devices[0] as OpcuaDeviceConfig;
    expect(d).toMatchObject({ mode: "subscribe", samplingMs: 1000, pollMs: 1000, reconnectMaxMs: 10000 });
    expect(d.connection).toEqual({ endpoint: "opc.tcp://127.0.0.1:4840", securityMode: "None", securityPolicy: "None" });
    expect(d.tags[0]).toEqual({ name: "t", nodeId: "ns=2;s=T", scale: 1, offset: 0, writable: false, deadbandType: "absolute" });
    expect(d).toMatchObject({ queueSize: 10, timeoutMs: 5000 });
    // the client's PKI lives under the gateway's dataDir
    expect(d.pkiDir).toBe(join(c.gateway.dataDir, "pki"));
  });

  it("defaults outputs: name = type, clientId = gateway.id, topicPrefix, qos by format, maxBatch", () => {
    const c = ok(parseP(`${G}outputs:
  - { type: mqtt, url: "mqtt://127.0.0.1:1883" }
  - { type: mqtt, name: spb, url: "mqtt://127.0.0.1:1884", format: sparkplug-b }
  - { type: influx, url: "http://127.0.0.1:8086", database: fg }
`));
    const [json, spb, influx] = c.outputs as [MqttOutputConfig, MqttOutputConfig, InfluxOutputConfig];
    expect(json).toEqual({ type: "mqtt", name: "mqtt", url: "mqtt://127.0.0.1:1883", clientId: "edge-1", format: "json", topicPrefix: "floorgate/edge-1", qos: 1, maxBatch: 500 });
    expect(spb).toMatchObject({ name: "spb", format: "sparkplug-b", qos: 0, clientId: "edge-1", maxBatch: 500 });
    expect(influx).toEqual({ type: "influx", name: "influx", url: "http://127.0.0.1:8086", database: "fg", maxBatch: 5000 });
  });

  it("resolves dataDir and TLS files against the config file's directory", () => {
    const sub = join(dir, "site");
    mkdirSync(join(sub, "pki"), { recursive: true });
    for (const f of ["ca.pem", "client.pem", "client.key"]) writeFileSync(join(sub, "pki", f), "pem");
    const file = join(sub, "floorgate.yaml");
    writeFileSync(file, `gateway: { id: e, group: g, dataDir: ../state }
outputs:
  - { type: mqtt, url: "mqtts://broker:8883", ca: pki/ca.pem, cert: ./pki/client.pem, key: "${join(sub, "pki", "client.key")}" }
`);
    const c = ok(loadConfig(file, {}));
    expect(c.gateway.dataDir).toBe(join(dir, "state"));
    expect(c.outputs[0]).toMatchObject({ ca: join(sub, "pki", "ca.pem"), cert: join(sub, "pki", "client.pem"), key: join(sub, "pki", "client.key") });
  });

  it("splits IPv6 listen addresses and keeps loopback without tokens", () => {
    const c = ok(parseP(`${G}http: { listen: "[::1]:9000" }\ningest: { mqtt: { listen: "127.0.0.1:1884" } }\n`));
    expect(c.http).toMatchObject({ host: "::1", port: 9000 });
    expect(c.ingest.mqtt).toEqual({ listen: "127.0.0.1:1884", host: "127.0.0.1", port: 1884, maxConnections: 25_000, connectsPerSec: 1_000, maxInFlight: 2_000, maxInFlightBytes: 64 * 1024 * 1024 });
  });

  it("accepts a non-loopback listener once operator tokens exist", () => {
    const c = ok(parse(`${G}http: { listen: 0.0.0.0:8080, operatorTokens: ["\${env:TOK}"] }\n`, { TOK: "s3cret-operator" }));
    expect(c.http).toMatchObject({ host: "0.0.0.0", port: 8080, operatorTokens: ["s3cret-operator"] });
  });
});

describe("env substitution", () => {
  it("replaces references inside strings and reports each missing variable at its value", () => {
    const text = `${G}outputs:\n  - type: mqtt\n    url: "mqtt://\${env:HOST}:1883"\n    username: \${env:U}\n    password: "\${env:P}-\${env:Q}"\n`;
    const c = ok(parse(text, { HOST: "broker", U: "user", P: "a", Q: "b" }));
    expect(c.outputs[0]).toMatchObject({ url: "mqtt://broker:1883", username: "user", password: "a-b" });
    const ps = problems(parse(text, { HOST: "broker" }));
    expect(ps.map((p) => `${p.line}:${p.col}: ${p.path}`)).toEqual([
      "7:15: outputs[0].username",
      "8:15: outputs[0].password",
      "8:15: outputs[0].password",
    ]);
    expect(ps.map((p) => p.message.split(" (")[0])).toEqual([
      "environment variable U is not set",
      "environment variable P is not set",
      "environment variable Q is not set",
    ]);
  });

  it("keeps an empty variable as an empty value (then judged by the schema)", () => {
    const ps = problems(parse(`${G}http: { operatorTokens: ["\${env:T}"] }\n`, { T: "" }));
    expect(ps).toEqual([{ path: "http.operatorTokens[0]", line: 4, col: 26, message: "must not be empty" }]);
  });

  it("coerces a whole plain reference to a number or boolean where the schema asks for one", () => {
    const text = `${G}devices:
  - id: press-1
    driver: modbus
    connection:
      host: h
      port: \${env:PORT}
    tagByTag: \${env:BYTAG}
    tags: [{ name: a, area: coil, address: 0 }]
`;
    const d = ok(parse(text, { PORT: "5020", BYTAG: "true" })).devices[0] as ModbusDeviceConfig;
    expect(d.connection).toMatchObject({ port: 5020 });
    expect(d.tagByTag).toBe(true);
    const ps = problems(parse(text, { PORT: "fifty", BYTAG: "true" }));
    expect(ps).toHaveLength(1);
    expect(ps[0]).toMatchObject({ path: "devices[0].connection.port", line: 9, col: 13 });
    // the value came from the environment: named, never echoed
    expect(ps[0]!.message).toBe("expected an integer, found the value of ${env:PORT} (string)");
  });

  it("says why an unquoted reference inside a flow collection is a YAML error", () => {
    const ps = problems(parse(`${G}http: { listen: \${env:LISTEN} }\n`, { LISTEN: "127.0.0.1:1" }));
    expect(ps).toHaveLength(1);
    expect(ps[0]!.line).toBe(4);
    expect(ps[0]!.message).toMatch(/^YAML syntax error: .*inside \{ \} or \[ \] a \$\{env:…\} reference must be quoted/);
  });

  it("does not coerce quoted references: a token of digits stays a string", () => {
    const c = ok(parse(`${G}ingest:\n  devices: [{ id: agv-1, token: "\${env:T}" }]\n`, { T: "123456" }));
    expect(c.ingest.devices[0]).toEqual({ id: "agv-1", token: "123456" });
  });

  it("substituteEnv: reports malformed references and leaves other dollars alone", () => {
    expect(substituteEnv("a$b ${HOME} $${x}", {})).toMatchObject({ value: "a$b ${HOME} $${x}", names: [], problems: [] });
    expect(substituteEnv("${env:A-B}", {}).problems[0]).toMatch(/malformed environment reference/);
    expect(substituteEnv("${env:A}", { A: "1" })).toEqual({ value: "1", names: ["A"], whole: true, problems: [] });
  });

  it("never echoes a secret: a bad token hash or a bad password type is described, not shown", () => {
    const ps = problems(parseP(`${G}ingest:\n  devices: [{ id: a, tokenHash: "sha256:topsecretvalue" }]\noutputs:\n  - { type: influx, url: "http://h:8086", database: d, username: u, password: "\${env:PW}" , maxBatch: "\${env:PW}" }\n`, { PW: "hunter2" }));
    const text = ps.map((p) => p.message).join("\n");
    expect(ps.length).toBe(2);
    expect(text).not.toMatch(/topsecretvalue|hunter2/);
  });
});

describe("sizes", () => {
  it("parses bytes and binary/decimal units", () => {
    expect(parseSize(1024)).toBe(1024);
    expect(parseSize("1024")).toBe(1024);
    expect(parseSize("512MiB")).toBe(512 * 1024 ** 2);
    expect(parseSize("1GiB")).toBe(1024 ** 3);
    expect(parseSize("64KiB")).toBe(65536);
    expect(parseSize("10MB")).toBe(10_000_000);
    expect(parseSize("2KB")).toBe(2000);
    expect(parseSize("1 GB")).toBe(1e9);
    expect(parseSize("1.5KiB")).toBe(1536);
    expect(parseSize("100B")).toBe(100);
    for (const bad of ["", "1 gigabyte", "10mb", "-1", "1e3", "GiB", "1.5", 1.5, -1, null, true]) {
      if (bad !== "1.5") expect(parseSize(bad), String(bad)).toBeUndefined();
    }
  });

  it("applies them to journal.maxBytes and ingest.maxPayloadBytes", () => {
    const c = ok(parse(`${G}journal: { maxBytes: 512MiB }\ningest: { maxPayloadBytes: 64KiB }\n`));
    expect(c.journal.maxBytes).toBe(512 * 1024 ** 2);
    expect(c.ingest.maxPayloadBytes).toBe(65536);
  });
});

describe("positions", () => {
  it("points at the offending value, the unknown key, and the parent of a missing key", () => {
    const text = [
      "gateway:", //                                     1
      "  id: edge-1", //                                 2
      "  group: plant", //                               3
      "devices:", //                                     4
      "  - id: press-1", //                              5
      "    driver: modbus", //                           6
      "    connection:", //                              7
      "      host: 127.0.0.1", //                        8
      "      port: 70000", //                            9
      "    tags:", //                                    10
      "      - name: a", //                              11
      "        area: holding", //                        12
      "        type: uint16", //                         13
      "        colour: red", //                          14
      "",
    ].join("\n");
    const ps = problems(parse(text));
    expect(ps.map((p) => [p.path, p.line, p.col])).toEqual([
      ["devices[0].connection.port", 9, 13],
      ["devices[0].tags[0].address", 11, 9],
      ["devices[0].tags[0].colour", 14, 9],
    ]);
  });

  it("reports YAML syntax errors with their line and column, and nothing else", () => {
    const ps = problems(parse(`${G}devices:\n  - id: a\n    driver: [modbus\n`));
    expect(ps).toHaveLength(1);
    expect(ps[0]!.line).toBeGreaterThanOrEqual(5);
    expect(ps[0]!.col).toBeGreaterThanOrEqual(1);
    expect(ps[0]!.message).toMatch(/^YAML syntax error: /);
  });

  it("reports problems sorted by position", () => {
    const ps = problems(parse(`gateway: { id: "a b", group: "c d" }\njournal: { overflow: x, fsync: y }\n`));
    const keys = ps.map((p) => p.line * 1000 + p.col);
    expect(keys).toEqual([...keys].sort((a, b) => a - b));
    expect(ps).toHaveLength(4);
  });
});

describe("semantic checks", () => {
  it("treats 127.0.0.0/8, ::1 and localhost as loopback", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"]) expect(isLoopback(h), h).toBe(true);
    for (const h of ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "plant-edge", "128.0.0.1"]) expect(isLoopback(h), h).toBe(false);
    for (const h of ["localhost:8080", "[::1]:8080", "127.0.0.2:1"]) expect(parse(`${G}http: { listen: "${h}" }\n`).ok, h).toBe(true);
    for (const h of ["0.0.0.0:8080", "[::]:8080", "edge.plant.local:80"]) {
      expect(problems(parse(`${G}http: { listen: "${h}" }\n`)).map((p) => p.path), h).toEqual(["http.listen"]);
    }
  });

  it("parses host:port strictly", () => {
    expect(parseHostPort("0.0.0.0:0")).toEqual({ host: "0.0.0.0", port: 0 });
    expect(parseHostPort("edge.plant.local:8080")).toEqual({ host: "edge.plant.local", port: 8080 });
    for (const bad of ["8080", ":8080", "host:", "host:65536", "::1:8080", "[zz]:80", "999.1.1.1:80", "a b:80", "host:80x"]) {
      expect(typeof parseHostPort(bad), bad).toBe("string");
    }
  });

  it("accepts every documented Modbus area/type combination", () => {
    const c = ok(parse(`${G}devices:
  - id: p
    driver: modbus
    connection: { transport: rtu-over-tcp, host: gw, port: 4001, unitId: 0 }
    tags:
      - { name: b0, area: holding, address: 0, type: bool, bit: 15, writable: true }
      - { name: s, area: input, address: 1, type: string, length: 125 }
      - { name: f, area: holding, address: 65532, type: float64, byteOrder: DCBA }
      - { name: u, area: input, address: 65535, type: uint16, byteOrder: BADC }
      - { name: c, area: coil, address: 65535, type: bool, writable: true }
      - { name: d, area: discrete, address: 0, unitId: 7 }
`));
    const tags = (c.devices[0] as ModbusDeviceConfig).tags;
    expect(tags.map((t) => `${t.name}:${t.type}`)).toEqual(["b0:bool", "s:string", "f:float64", "u:uint16", "c:bool", "d:bool"]);
    expect(tags[5]!.unitId).toBe(7);
  });

  it("accepts secure OPC UA with a user", () => {
    const d = ok(parseP(`${G}devices:
  - id: oven
    driver: opcua
    connection: { endpoint: "opc.tcp://plc:4840/UA", securityMode: SignAndEncrypt, securityPolicy: Aes256_Sha256_RsaPss, username: op, password: pw }
    mode: poll
    pollMs: 200
    tags: [{ name: t, nodeId: "i=2258", samplingMs: 0 }, { name: u, nodeId: "nsu=urn:x;s=A" }]
`)).devices[0] as OpcuaDeviceConfig;
    expect(d.connection).toMatchObject({ securityMode: "SignAndEncrypt", securityPolicy: "Aes256_Sha256_RsaPss", username: "op", password: "pw" });
    expect(d).toMatchObject({ mode: "poll", pollMs: 200 });
  });

  it("accepts distinct ids across devices and ingest, and stores token hashes lower-case", () => {
    const c = ok(parse(`${G}devices:
  - { id: press-1, driver: modbus, connection: { host: h }, tags: [{ name: a, area: coil, address: 0 }] }
ingest:
  devices:
    - { id: agv-17, token: t }
    - { id: "sensor-*", tokenHash: "sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08" }
`));
    expect(c.ingest.devices[1]!.tokenHash).toBe("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  });
});

describe("never throws", () => {
  it("turns an unreadable file into a problem", () => {
    const r = loadConfig(join(dir, "nope.yaml"));
    // Said in words, once: not Node's "ENOENT: ENOENT: no such file or directory, open '…'".
    expect(problems(r)).toEqual([{ path: "", line: 0, col: 0, message: "cannot read the config file: no such file" }]);
    const v = runValidate(join(dir, "nope.yaml"));
    expect(v.code).toBe(1);
    // No position to give: FILE: MESSAGE, not FILE:0:0:
    expect(v.stderr).toBe(`${join(dir, "nope.yaml")}: cannot read the config file: no such file\n`);
    expect(problems(loadConfig(dir))).toEqual([{ path: "", line: 0, col: 0, message: "cannot read the config file: it is a directory, not a file" }]);
  });

  it("survives alias bombs and deep nesting", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 9; i++) bomb.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(", ")}]`);
    const ps = problems(parse(`${bomb.join("\n")}\n`));
    expect(ps.some((p) => /too large or too deeply nested/.test(p.message))).toBe(true);
    expect(problems(parse(`${"[".repeat(200)}${"]".repeat(200)}\n`)).length).toBeGreaterThan(0);
  });

  it("answers any text with a result, never an exception (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        const r = parse(text);
        if (!r.ok) for (const p of r.problems) expect(typeof p.message).toBe("string");
      }),
      { numRuns: 300 },
    );
  });

  it("answers any mutation of a valid config with a result (property)", () => {
    const base = `${G}devices:\n  - id: p\n    driver: modbus\n    connection: { host: h }\n    tags: [{ name: a, area: holding, address: 0, type: int16 }]\noutputs:\n  - { type: mqtt, url: "mqtt://h:1883" }\n`;
    const values = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant("[1, 2]"), fc.constant("{a: 1}"));
    fc.assert(
      fc.property(fc.nat({ max: base.length }), values, (at, v) => {
        const text = `${base.slice(0, at)}${String(v)}${base.slice(at)}`;
        const r = parse(text);
        const lines = text.split("\n").length;
        if (!r.ok) for (const p of r.problems) expect(p.line).toBeLessThanOrEqual(lines + 1);
      }),
      { numRuns: 300 },
    );
  });
});

describe("cli", () => {
  it("prints config ok for a valid file", () => {
    const file = join(dir, "valid.yaml");
    writeFileSync(file, G);
    expect(runValidate(file)).toEqual({ code: 0, stdout: "config ok\n", stderr: "" });
  });

  it("prints every problem as FILE:LINE:COL: PATH: MESSAGE", () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "gateway: { id: edge-1, group: g }\njournal: { overflow: block }\nhttp: { listen: 10.0.0.5:80 }\n");
    const out = runValidate(file);
    expect(out.code).toBe(1);
    expect(out.stderr.split("\n")).toEqual([
      `${file}:2:22: journal.overflow: found "block" (string); allowed: drop-oldest | reject`,
      expect.stringMatching(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3:17: http.listen: listening on 10.0.0.5:80, which is not loopback, needs http.operatorTokens`)) as unknown as string,
      "",
    ]);
  });

  it("prints the schema as draft-07 JSON", () => {
    const s = JSON.parse(runSchema()) as { $schema: string; properties: Record<string, unknown> };
    expect(s.$schema).toBe("http://json-schema.org/draft-07/schema#");
    expect(Object.keys(s.properties)).toEqual(["gateway", "http", "journal", "templates", "devices", "ingest", "outputs"]);
  });
});
