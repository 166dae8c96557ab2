/**
 * Pure parts of the OPC UA driver: StatusCode → quality, Variant → sample value, write coercion
 * to the node's DataType; and the config rules this driver added (deadbandType, the username
 * warning, pkiDir under dataDir). Also: node-opcua is never imported by src/ nor statically by
 * the files the build loads (plugin.ts, config.ts, index.ts).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DataType, DataValue, StatusCodes, Variant, VariantArrayType } from "node-opcua";
import { coerceForWrite, qualityOf, sampleOf, valueOf } from "../../drivers/opcua/values.js";
import { NotificationColumns } from "../../drivers/opcua/notifications.js";
import type { SampleColumns } from "../../src/core/sample-columns.js";
import { parseConfigText } from "../../src/config/load.js";
import { isFloorgateError } from "../../src/core/errors.js";
import type { OpcuaDeviceConfig } from "../../drivers/opcua/config.js";

const root = join(import.meta.dirname, "..", "..");

describe("values", () => {
  it("maps the StatusCode's severity bits to quality", () => {
    expect(qualityOf(StatusCodes.Good)).toBe("good");
    expect(qualityOf(StatusCodes.GoodClamped)).toBe("good");
    expect(qualityOf(StatusCodes.UncertainLastUsableValue)).toBe("uncertain");
    expect(qualityOf(StatusCodes.UncertainSensorNotAccurate)).toBe("uncertain");
    expect(qualityOf(StatusCodes.BadNodeIdUnknown)).toBe("bad");
    expect(qualityOf(StatusCodes.BadCommunicationError)).toBe("bad");
  });

  it("turns Variants into sample values, arrays into JSON, structures into a reason", () => {
    expect(valueOf(new Variant({ dataType: DataType.Double, value: 1.25 }))).toEqual({ value: 1.25 });
    expect(valueOf(new Variant({ dataType: DataType.Boolean, value: true }))).toEqual({ value: true });
    expect(valueOf(new Variant({ dataType: DataType.String, value: "x" }))).toEqual({ value: "x" });
    expect(valueOf(new Variant({ dataType: DataType.Int64, arrayType: VariantArrayType.Scalar, value: [0, 42] }))).toEqual({ value: 42 });
    expect(valueOf(new Variant({ dataType: DataType.Int64, arrayType: VariantArrayType.Scalar, value: [0xffffffff, 0xfffffffe] }))).toEqual({ value: -2 });
    expect(valueOf(new Variant({ dataType: DataType.UInt64, arrayType: VariantArrayType.Scalar, value: [0x7fffffff, 0xffffffff] }))).toEqual({ value: "9223372036854775807" });
    expect(valueOf(new Variant({ dataType: DataType.DateTime, value: new Date(0) }))).toEqual({ value: "1970-01-01T00:00:00.000Z" });
    expect(valueOf(new Variant({ dataType: DataType.LocalizedText, value: { text: "hot" } }))).toEqual({ value: "hot" });
    expect(valueOf(new Variant({ dataType: DataType.Int32, arrayType: VariantArrayType.Array, value: new Int32Array([1, 2]) }))).toEqual({ value: "[1,2]" });
    expect(valueOf(new Variant({ dataType: DataType.Null }))).toEqual({ reason: "empty value (Variant Null)" });
    expect(valueOf(new Variant({ dataType: DataType.ExtensionObject, value: null }))).toHaveProperty("reason");
  });

  it("keeps the source timestamp, else the server's, else gateway time; a bad status carries its name", () => {
    const src = new Date("2030-01-01T00:00:00Z");
    const srv = new Date("2030-01-02T00:00:00Z");
    expect(sampleOf("d", "t", new DataValue({ value: { dataType: DataType.Double, value: 1 }, sourceTimestamp: src, serverTimestamp: srv }), 5).ts).toBe(src.getTime());
    expect(sampleOf("d", "t", new DataValue({ value: { dataType: DataType.Double, value: 1 }, serverTimestamp: srv }), 5).ts).toBe(srv.getTime());
    expect(sampleOf("d", "t", new DataValue({ value: { dataType: DataType.Double, value: 1 } }), 5).ts).toBe(5);
    expect(sampleOf("d", "t", new DataValue({ statusCode: StatusCodes.BadSensorFailure }), 5)).toMatchObject({ quality: "bad", value: null, reason: "OPC UA status BadSensorFailure" });
    expect(sampleOf("d", "t", new DataValue({ value: { dataType: DataType.Double, value: 2 } }), 5, "°C")).toMatchObject({ quality: "good", value: 2, unit: "°C" });
  });

  it("decodes notifications into columns exactly as sampleOf does, one batch per flush, growing past its first room", () => {
    const src = new Date("2030-01-01T00:00:00Z");
    const srv = new Date("2030-01-02T00:00:00Z");
    const kinds: DataValue[] = [
      new DataValue({ value: { dataType: DataType.Double, value: 1.25 }, sourceTimestamp: src, serverTimestamp: srv }),
      new DataValue({ value: { dataType: DataType.Float, value: -0 }, serverTimestamp: srv }),
      new DataValue({ value: { dataType: DataType.Int32, value: 7 } }),
      new DataValue({ value: { dataType: DataType.Boolean, value: true }, sourceTimestamp: src }),
      new DataValue({ value: { dataType: DataType.String, value: "x" }, sourceTimestamp: src }),
      new DataValue({ value: new Variant({ dataType: DataType.Int64, arrayType: VariantArrayType.Scalar, value: [0x7fffffff, 0xffffffff] }), sourceTimestamp: src }),
      new DataValue({ value: new Variant({ dataType: DataType.Int32, arrayType: VariantArrayType.Array, value: new Int32Array([1, 2]) }), sourceTimestamp: src }),
      new DataValue({ value: { dataType: DataType.Double, value: 3 }, statusCode: StatusCodes.UncertainLastUsableValue, sourceTimestamp: src }),
      new DataValue({ statusCode: StatusCodes.BadSensorFailure, sourceTimestamp: src }),
      new DataValue({ value: { dataType: DataType.Null }, sourceTimestamp: src }),
      new DataValue({ value: new Variant({ dataType: DataType.ExtensionObject, value: null }), sourceTimestamp: src }),
    ];
    const batches: SampleColumns[] = [];
    const cols = new NotificationColumns("d", (b) => batches.push(b));
    const expected = [];
    for (let i = 0; i < 3000; i++) {
      const dv = kinds[i % kinds.length]!;
      const unit = i % 3 === 0 ? "°C" : undefined;
      cols.add(`t${i}`, dv, 5, unit);
      expected.push(sampleOf("d", `t${i}`, dv, 5, unit));
    }
    cols.flush();
    cols.flush(); // nothing more: no empty batch
    cols.add("last", kinds[0]!, 5, undefined);
    cols.flush();
    expected.push(sampleOf("d", "last", kinds[0]!, 5));
    expect(batches.map((b) => b.length)).toEqual([3000, 1]);
    expect(batches.flatMap((b) => b.toSamples())).toEqual(expected);
  });

  it("hands the same tag list again while publishes repeat the same tags in the same order", () => {
    const batches: SampleColumns[] = [];
    const cols = new NotificationColumns("d", (b) => batches.push(b));
    const dv = new DataValue({ value: { dataType: DataType.Double, value: 1 } });
    const send = (tags: string[]): void => { for (const t of tags) cols.add(t, dv, 5, undefined); cols.flush(); };
    send(["a", "b", "c"]);
    send(["a", "b", "c"]);
    send(["a", "c", "b"]);
    send(["a", "c"]);
    expect(batches.map((b) => b.tags)).toEqual([["a", "b", "c"], ["a", "b", "c"], ["a", "c", "b"], ["a", "c"]]);
    expect(batches[1]!.tags).toBe(batches[0]!.tags);
    expect(batches[2]!.tags).not.toBe(batches[1]!.tags);
  });

  it("coerces writes to the node's DataType and refuses what it cannot hold", () => {
    expect(coerceForWrite(3, DataType.Int16, "w")).toEqual({ dataType: DataType.Int16, value: 3 });
    expect(coerceForWrite("3", DataType.UInt32, "w")).toEqual({ dataType: DataType.UInt32, value: 3 });
    expect(coerceForWrite(true, DataType.Byte, "w")).toEqual({ dataType: DataType.Byte, value: 1 });
    expect(coerceForWrite(1, DataType.Boolean, "w")).toEqual({ dataType: DataType.Boolean, value: true });
    expect(coerceForWrite(2.5, DataType.Float, "w")).toEqual({ dataType: DataType.Float, value: 2.5 });
    expect(coerceForWrite(12, DataType.String, "w")).toEqual({ dataType: DataType.String, value: "12" });
    expect(coerceForWrite(5, DataType.Int64, "w")).toMatchObject({ dataType: DataType.Int64, value: [0, 5] });
    expect(coerceForWrite(-1, DataType.Int64, "w")).toMatchObject({ dataType: DataType.Int64, value: [0xffffffff, 0xffffffff] });
    // a real Variant can be built from it (node-opcua needs the arrayType for Int64)
    expect(new Variant(coerceForWrite(-1, DataType.Int64, "w")).value).toEqual([0xffffffff, 0xffffffff]);
    for (const [raw, dt] of [[256, DataType.Byte], [-1, DataType.UInt16], [1.5, DataType.Int32], ["x", DataType.Double], [2, DataType.Boolean], [1, DataType.ExtensionObject], [null, DataType.Double]] as const) {
      let err: unknown;
      try { coerceForWrite(raw, dt, "w"); } catch (e) { err = e; }
      expect(isFloorgateError(err, "WRITE_REFUSED"), `${String(raw)} as ${DataType[dt]}`).toBe(true);
    }
  });
});

describe("config rules added by the driver", () => {
  const G = "gateway: { id: g, group: p, dataDir: ./state }\n";
  it("accepts deadbandType percent, builds pkiDir under dataDir, warns on a username with securityMode None", () => {
    const r = parseConfigText(`${G}devices:
  - id: o
    driver: opcua
    connection: { endpoint: "opc.tcp://127.0.0.1:4840", username: u, password: p }
    queueSize: 5
    tags: [{ name: t, nodeId: "ns=2;s=T", deadband: 2, deadbandType: percent }]
`, join(root, "x.yaml"), {});
    if (!r.ok) throw new Error(JSON.stringify(r.problems));
    const d = r.config.devices[0] as OpcuaDeviceConfig;
    expect(d.tags[0]).toMatchObject({ deadband: 2, deadbandType: "percent" });
    expect(d.queueSize).toBe(5);
    expect(d.pkiDir).toBe(join(root, "state", "pki"));
    expect(r.warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([expect.stringMatching(/^devices\[0\]\.connection\.username: username with securityMode None/)]);
    // no warning with security
    const s = parseConfigText(`${G}devices:
  - id: o
    driver: opcua
    connection: { endpoint: "opc.tcp://127.0.0.1:4840", securityMode: SignAndEncrypt, securityPolicy: Basic256Sha256, username: u, password: p }
    tags: [{ name: t, nodeId: "ns=2;s=T" }]
`, join(root, "x.yaml"), {});
    expect(s.ok && s.warnings).toEqual([]);
    const bad = parseConfigText(`${G}devices:
  - id: o
    driver: opcua
    connection: { endpoint: "opc.tcp://127.0.0.1:4840" }
    tags: [{ name: t, nodeId: "ns=2;s=T", deadbandType: relative }]
`, join(root, "x.yaml"), {});
    expect(bad.ok ? [] : bad.problems.map((p) => p.message)).toEqual([expect.stringContaining("allowed: absolute | percent")]);
  });
});

describe("node-opcua stays in drivers/opcua", () => {
  const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
  it("src/ never imports it; the files the build loads import it only lazily", () => {
    for (const f of files(join(root, "src"))) expect(readFileSync(f, "utf8"), f).not.toMatch(/from\s+["']node-opcua|import\(["']node-opcua/);
    for (const f of ["plugin.ts", "config.ts", "index.ts"]) {
      expect(readFileSync(join(root, "drivers", "opcua", f), "utf8"), f).not.toMatch(/^import[^;]*from\s+["'](node-opcua|\.\/(driver|connect|values|subscription|probe)\.js)["']/m);
    }
  });
});
