/**
 * From OPC UA values to Floorgate samples and back: pure functions over node-opcua's DataValue,
 * Variant and StatusCode. Loaded only with the driver (never by `validate` or src/).
 *
 * Decisions (documented in README.md):
 * - Quality is the StatusCode's severity, its top two bits: 00 good, 01 uncertain, 1x bad; the
 *   reason of a non-good sample is the StatusCode's name.
 * - Timestamps: source timestamp, else server timestamp, else the gateway's receive time.
 * - Scalars Boolean / numbers / String pass as they are; Int64/UInt64 become numbers when exact
 *   (else their decimal string); DateTime an ISO string; LocalizedText its text; QualifiedName,
 *   NodeId, Guid their string form; ByteString base64. Arrays and matrices become a JSON string.
 *   Structures (ExtensionObject) and other types are `bad` with a reason naming the type.
 */
import { DataType, VariantArrayType, type DataValue, type StatusCode, type Variant } from "node-opcua";
import type { Quality, Sample, SampleValue } from "../../src/core/sample.js";
import { FloorgateError } from "../../src/core/errors.js";

/** good / uncertain / bad from a StatusCode's severity bits (Part 4, 7.39). */
export function qualityOf(sc: StatusCode): Quality {
  const severity = sc.value >>> 30;
  return severity === 0 ? "good" : severity === 1 ? "uncertain" : "bad";
}

/** Int64/UInt64 as node-opcua hands them: [high, low] 32-bit words. */
function int64Of(v: unknown, signed: boolean): number | string {
  if (typeof v === "number") return v;
  if (!Array.isArray(v) || v.length !== 2) return String(v);
  const [hi, lo] = v as [number, number];
  const big = (BigInt(signed ? hi | 0 : hi >>> 0) << 32n) + BigInt(lo >>> 0);
  return big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(big) : big.toString();
}

function scalarOf(dataType: DataType, v: unknown): { value: SampleValue } | { reason: string } {
  if (v === null || v === undefined) return { reason: "empty value (Variant Null)" };
  switch (dataType) {
    case DataType.Boolean:
      return { value: Boolean(v) };
    case DataType.SByte: case DataType.Byte: case DataType.Int16: case DataType.UInt16:
    case DataType.Int32: case DataType.UInt32: case DataType.Float: case DataType.Double:
      return typeof v === "number" ? { value: v } : { reason: `unexpected ${DataType[dataType]} value` };
    case DataType.Int64: return { value: int64Of(v, true) };
    case DataType.UInt64: return { value: int64Of(v, false) };
    case DataType.String: return { value: String(v) };
    case DataType.DateTime: return v instanceof Date ? { value: v.toISOString() } : { reason: "unexpected DateTime value" };
    case DataType.LocalizedText: return { value: (v as { text?: string | null }).text ?? "" };
    case DataType.ByteString: return Buffer.isBuffer(v) ? { value: v.toString("base64") } : { reason: "unexpected ByteString value" };
    case DataType.QualifiedName: case DataType.NodeId: case DataType.ExpandedNodeId: case DataType.Guid: case DataType.StatusCode:
      return { value: String(v) };
    default:
      return { reason: `unsupported data type ${DataType[dataType] ?? dataType}` };
  }
}

function jsonable(dataType: DataType, v: unknown): unknown {
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
  if (Array.isArray(v)) {
    return v.map((x) => {
      const one = scalarOf(dataType, x);
      return "value" in one ? one.value : null;
    });
  }
  return v;
}

/** The sample value of a Variant, or why it cannot be one. */
export function valueOf(variant: Variant | null | undefined): { value: SampleValue } | { reason: string } {
  if (!variant || variant.dataType === DataType.Null) return { reason: "empty value (Variant Null)" };
  if (variant.arrayType !== VariantArrayType.Scalar) {
    if (variant.dataType === DataType.ExtensionObject || variant.dataType === DataType.Variant) return { reason: `unsupported array of ${DataType[variant.dataType]}` };
    return { value: JSON.stringify(jsonable(variant.dataType, variant.value)) };
  }
  return scalarOf(variant.dataType, variant.value);
}

/**
 * What one DataValue says, decoded into a record the caller owns and reuses: the notification
 * path decodes tens of thousands of DataValues a second and keeps none of these records.
 */
export interface Decoded {
  value: SampleValue;
  quality: Quality;
  ts: number;
  reason: string | undefined;
}

/** Scalar types whose node-opcua value is a plain JS number, passed as it is. */
const NUMERIC = new Set<DataType>([DataType.SByte, DataType.Byte, DataType.Int16, DataType.UInt16, DataType.Int32, DataType.UInt32, DataType.Float, DataType.Double]);

/** Decodes `dv` into `out` (every field written). `now` is the gateway time when no timestamp came. */
export function decodeInto(out: Decoded, dv: DataValue, now: number): void {
  const ts = dv.sourceTimestamp?.getTime() ?? dv.serverTimestamp?.getTime() ?? now;
  out.ts = Number.isFinite(ts) ? ts : now;
  const sc = dv.statusCode;
  const quality = qualityOf(sc);
  out.quality = quality;
  out.value = null;
  out.reason = undefined;
  if (quality === "bad") {
    out.reason = `OPC UA status ${sc.name}`;
    return;
  }
  const variant = dv.value;
  const raw: unknown = variant?.value;
  if (typeof raw === "number" && variant.arrayType === VariantArrayType.Scalar && NUMERIC.has(variant.dataType)) {
    out.value = raw; // the common case, without valueOf's result object
  } else {
    const v = valueOf(variant);
    if ("reason" in v) {
      out.quality = "bad";
      out.reason = v.reason;
      return;
    }
    out.value = v.value;
  }
  if (quality === "uncertain") out.reason = `OPC UA status ${sc.name}`;
}

/** The sample for one tag from one DataValue. `now` is the gateway time when no timestamp came. */
export function sampleOf(device: string, tag: string, dv: DataValue, now: number, unit?: string): Sample {
  const d: Decoded = { value: null, quality: "bad", ts: now, reason: undefined };
  decodeInto(d, dv, now);
  const s: Sample = { device, tag, value: d.value, quality: d.quality, ts: d.ts };
  if (unit !== undefined) s.unit = unit;
  if (d.reason !== undefined) s.reason = d.reason;
  return s;
}

/** A bad sample with a reason, for a tag that could not be read or monitored. */
export function badSample(device: string, tag: string, reason: string, now: number, unit?: string): Sample {
  const s: Sample = { device, tag, value: null, quality: "bad", ts: now, reason };
  if (unit !== undefined) s.unit = unit;
  return s;
}

const INT_RANGES: Partial<Record<DataType, [number, number]>> = {
  [DataType.SByte]: [-128, 127], [DataType.Byte]: [0, 255],
  [DataType.Int16]: [-32768, 32767], [DataType.UInt16]: [0, 65535],
  [DataType.Int32]: [-2147483648, 2147483647], [DataType.UInt32]: [0, 4294967295],
  [DataType.Int64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], [DataType.UInt64]: [0, Number.MAX_SAFE_INTEGER],
};

function numberOf(raw: SampleValue): number | undefined {
  if (typeof raw === "number") return raw;
  if (typeof raw === "boolean") return raw ? 1 : 0;
  if (typeof raw === "string" && raw.trim() !== "" && Number.isFinite(Number(raw))) return Number(raw);
  return undefined;
}

/**
 * `raw` as a value of the node's DataType (read once per session), or WRITE_REFUSED when it
 * cannot be expressed in that type (out of range, a fraction for an integer, a structure).
 */
export function coerceForWrite(raw: SampleValue, dataType: DataType, where: string): { dataType: DataType; value: unknown; arrayType?: VariantArrayType } {
  const refuse = (why: string): never => { throw new FloorgateError("WRITE_REFUSED", `${where}: ${why}`); };
  if (raw === null) return refuse("cannot write null");
  const name = DataType[dataType] ?? String(dataType);
  switch (dataType) {
    case DataType.Boolean: {
      if (typeof raw === "boolean") return { dataType, value: raw };
      if (raw === 0 || raw === 1) return { dataType, value: raw === 1 };
      if (raw === "true" || raw === "false") return { dataType, value: raw === "true" };
      return refuse(`${JSON.stringify(raw)} is not a Boolean (true/false, 1/0)`);
    }
    case DataType.Float: case DataType.Double: {
      const n = numberOf(raw);
      if (n === undefined || !Number.isFinite(n)) return refuse(`${JSON.stringify(raw)} is not a number (node type ${name})`);
      if (dataType === DataType.Float && Math.abs(n) > 3.4028234663852886e38) return refuse(`${n} is out of range of Float`);
      return { dataType, value: n };
    }
    case DataType.String:
      return { dataType, value: String(raw) };
    case DataType.LocalizedText:
      return { dataType, value: { text: String(raw) } };
    default: {
      const range = INT_RANGES[dataType];
      if (!range) return refuse(`the node's data type ${name} cannot be written by Floorgate (numbers, booleans and strings only)`);
      const n = numberOf(raw);
      if (n === undefined || !Number.isInteger(n)) return refuse(`${JSON.stringify(raw)} is not an integer (node type ${name})`);
      if (n < range[0] || n > range[1]) return refuse(`${n} is out of range of ${name} [${range[0]}, ${range[1]}]`);
      if (dataType === DataType.Int64 || dataType === DataType.UInt64) {
        const big = BigInt(n);
        const hi = Number((big >> 32n) & 0xffffffffn);
        const lo = Number(big & 0xffffffffn);
        // node-opcua cannot tell an Int64's [high, low] from an array by itself
        return { dataType, arrayType: VariantArrayType.Scalar, value: [hi, lo] };
      }
      return { dataType, value: n };
    }
  }
}
