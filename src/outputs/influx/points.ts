/**
 * Journal samples as InfluxDB 1.x points (spec §6 "influx"), in the shape the `influx` package's
 * `writePoints` takes. Pure: no I/O, nothing kept between calls except the caller's tag-set cache.
 */
import type { IPoint } from "influx";
import type { SampleBatch } from "../../core/sample-columns.js";
import { deviceRuns } from "../../core/sample-reader.js";

/**
 * Suffix of the field that stands for a sample without a value (`null`, or a number with no line
 * protocol form: NaN, ±Infinity). InfluxDB 1.x has no null field, and dropping such samples would
 * lose the "this tag was bad at that time" a historian is kept for. Tag names cannot contain `:`
 * (`[A-Za-z0-9_.-]`), so `<tag>:null` never collides with a real tag's field.
 */
export const NULL_FIELD_SUFFIX = ":null";

/**
 * A string field value the `influx` package must not escape itself: its escaper turns the first
 * `\'` into `\\'` before escaping backslashes, so a string holding `\'` would come back with an
 * extra backslash. The package writes any non-string field value as `String(value)`, so this
 * object carries the line protocol text (quoted and escaped) in `toString`.
 */
class QuotedString {
  constructor(private readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** A string as a line protocol string field value: `"` and `\` escaped, in double quotes. */
export function quoteFieldString(s: string): string {
  return `"${s.replace(/[\\"]/g, "\\$&")}"`;
}

/** A unit as a tag value: line breaks would end the line protocol line, so they become spaces. */
export function unitTagValue(unit: string): string {
  return /[\r\n]/.test(unit) ? unit.replace(/[\r\n]+/g, " ") : unit;
}

/**
 * Tag sets by quality, then unit (`""` for none): one frozen object per combination, shared by
 * every point that has it. Two lookups rather than one on a joined key: no string built per sample.
 */
export type TagSetCache = Map<string, Map<string, Readonly<Record<string, string>>>>;

/** Past this many distinct units per quality (units come from config and OPC UA, so there are few) the cache starts over. */
const MAX_TAG_SETS = 4096;

function tagSet(cache: TagSetCache, gateway: string, quality: string, unit: string | undefined): Readonly<Record<string, string>> {
  let byUnit = cache.get(quality);
  if (byUnit === undefined) cache.set(quality, (byUnit = new Map()));
  const key = unit ?? "";
  let t = byUnit.get(key);
  if (t === undefined) {
    if (byUnit.size >= MAX_TAG_SETS) byUnit.clear();
    // Keys in sorted order: InfluxDB sorts them itself otherwise, for every line.
    const tags: Record<string, string> = { gateway, quality };
    // An empty tag value is not valid line protocol: a unit "" is no unit.
    if (unit !== undefined && unit !== "") tags.unit = unitTagValue(unit);
    t = Object.freeze(tags);
    byUnit.set(key, t);
  }
  return t;
}

/**
 * One point per sample, in journal order: measurement = device id; tags `gateway`, `quality` and
 * `unit` (when known); one field named after the tag with its value — numbers always as floats
 * (the line protocol's default for a number without `i`, so an integer reading never conflicts
 * with a float one), booleans and strings as such; a sample without a value is the boolean field
 * `<tag>:null` = true instead; timestamp = `ts` in whole ms (write with precision `ms`). `ts` holds
 * each point's timestamp as a number, for grouping by shard group.
 */
export function buildPoints(batch: SampleBatch, gateway: string, cache: TagSetCache): { points: IPoint[]; ts: number[] } {
  const points = new Array<IPoint>(batch.length);
  const times = new Array<number>(batch.length);
  let k = 0;
  for (const run of deviceRuns(batch)) {
    const measurement = run.device;
    for (let i = 0; i < run.count; i++) {
      const tag = run.tag(i);
      const v = run.value(i);
      const fields: Record<string, unknown> = {};
      if (typeof v === "number") {
        if (Number.isFinite(v)) fields[tag] = v;
        else fields[tag + NULL_FIELD_SUFFIX] = true;
      } else if (typeof v === "string") {
        fields[tag] = v.includes("\\") ? new QuotedString(quoteFieldString(v)) : v;
      } else if (typeof v === "boolean") {
        fields[tag] = v;
      } else {
        fields[tag + NULL_FIELD_SUFFIX] = true;
      }
      const ts = Math.floor(run.ts(i));
      times[k] = ts;
      points[k++] = {
        measurement,
        tags: tagSet(cache, gateway, run.quality(i), run.unit(i)),
        fields,
        // The package writes a number as it is; it skips a falsy timestamp, so 0 goes as a string.
        timestamp: ts === 0 ? "0" : ts,
      };
    }
  }
  return { points, ts: times };
}
