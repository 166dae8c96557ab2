import type { TagCommon } from "../../config/types.js";
import type { Sample, SampleValue } from "../../core/sample.js";
import { ColumnsBuilder, QUALITY_CODES, SampleColumns } from "../../core/sample-columns.js";

/**
 * The normalize stage: pure functions from a driver's raw sample to an engineering-unit sample.
 * No I/O; the only state is the last value passed per tag, for the deadband.
 */
export type TagRules = Pick<TagCommon, "scale" | "offset" | "unit" | "deadband">;

/** value = raw × scale + offset, for finite numbers only; other values pass unchanged. */
export function applyScale(value: Sample["value"], rules: TagRules): Sample["value"] {
  if (typeof value !== "number" || (rules.scale === 1 && rules.offset === 0)) return value;
  const v = value * rules.scale + rules.offset;
  // Trim binary noise like 23.400000000000002 that scaling by 0.1 creates.
  return Number.isFinite(v) ? Number(v.toPrecision(15)) : v;
}

/** Inverse of applyScale, for write-back: raw = (value − offset) / scale. */
export function unscale(value: number, rules: TagRules): number {
  if (rules.scale === 1 && rules.offset === 0) return value;
  return Number(((value - rules.offset) / rules.scale).toPrecision(15));
}

interface Last { value: Sample["value"]; quality: Sample["quality"] }

/** A tag's rules with what `apply` needs to decide precomputed. */
export interface Compiled {
  rules: TagRules;
  scaled: boolean;
  deadband: number;
}

/** Compiled rules of one tag list, shareable between normalizers. */
export class CompiledRules {
  /** no tag scales, has a deadband or adds a unit: `apply` hands the samples on untouched */
  readonly passThrough: boolean;
  constructor(readonly byTag: ReadonlyMap<string, Compiled>) {
    this.passThrough = [...byTag.values()].every((c) => !c.scaled && c.deadband === 0 && c.rules.unit === undefined);
  }
}

const compiledByList = new WeakMap<readonly object[], CompiledRules>();

function compile(rules: ReadonlyMap<string, TagRules>): Map<string, Compiled> {
  const out = new Map<string, Compiled>();
  for (const [tag, r] of rules) {
    out.set(tag, {
      rules: r,
      scaled: !(r.scale === 1 && r.offset === 0),
      deadband: r.deadband !== undefined && r.deadband > 0 ? r.deadband : 0,
    });
  }
  return out;
}

/**
 * Per-device normalizer. Deadband (absolute, engineering units) suppresses a good numeric sample
 * whose change from the last passed value is smaller than the deadband; a quality change, a
 * non-numeric value or the first reading always passes.
 *
 * A sample that needs no change (no scaling, unit already set or none configured) is passed on as
 * the same object rather than copied: at 200,000 values/s each copy is garbage to collect. Callers
 * must therefore treat both the input and the output samples as immutable. Only tags with a
 * deadband keep a last value.
 */
export class Normalizer {
  private readonly last = new Map<string, Last>();
  private readonly compiled: ReadonlyMap<string, Compiled>;
  private readonly passThrough: boolean;

  /** `rules` per tag name; or, from `forTags`, rules already compiled and shared. */
  constructor(rules: ReadonlyMap<string, TagRules> | CompiledRules) {
    const c = rules instanceof CompiledRules ? rules : new CompiledRules(compile(rules));
    this.compiled = c.byTag;
    this.passThrough = c.passThrough;
  }

  /**
   * A normalizer for a configured tag list. The compiled rules are shared by every device with
   * the same (interned, see config/build.ts) list; only the deadband memory is per device.
   */
  static forTags(tags: readonly (TagRules & { name: string })[]): Normalizer {
    let compiled = compiledByList.get(tags);
    if (!compiled) {
      compiled = new CompiledRules(compile(new Map(tags.map((t) => [t.name, t]))));
      compiledByList.set(tags, compiled);
    }
    return new Normalizer(compiled);
  }

  /**
   * Returns the samples to journal (possibly fewer than given; when no rule changes anything, the
   * very array given — the rules leave every sample as it is and no copy is made).
   */
  /** Rules per position of a tag list (lists are shared per plan, so this is computed once per list). */
  private byPosition = new WeakMap<readonly string[], (Compiled | undefined)[]>();
  /** the unit list last merged with the rules' units, and the result: polls repeat one list */
  private unitsIn: readonly (string | undefined)[] | undefined | null = null;
  private unitsTags: readonly string[] | undefined;
  private unitsOut: (string | undefined)[] | undefined;

  /**
   * `apply` for columns, with the same results sample by sample (a property test holds the two
   * together): the very columns when no rule changes anything (the usual poll), else new columns
   * built without an object per sample. The input columns are never changed.
   */
  applyColumns(cols: SampleColumns): SampleColumns {
    if (this.passThrough) return cols;
    const device = cols.device;
    if (typeof device !== "string") return SampleColumns.fromSamples(this.apply(cols.toSamples()));
    const tags = cols.tags;
    const n = cols.length;
    let rules = this.byPosition.get(tags);
    if (!rules) {
      rules = tags.map((t) => this.compiled.get(t));
      this.byPosition.set(tags, rules);
    }
    const b = new ColumnsBuilder(device, n);
    const nums = cols.nums;
    const other = cols.other;
    const qualities = cols.qualities;
    const ts = cols.ts;
    const reasons = cols.reasons;
    /** positions kept, once one is suppressed by a deadband */
    let kept: number[] | undefined;
    let k = 0;
    for (let i = 0; i < n; i++) {
      const c = rules[i];
      const raw: SampleValue = other !== undefined && other.has(i) ? other.get(i)! : nums[i]!;
      const q = qualities[i]!;
      let value: SampleValue = raw;
      if (c !== undefined) {
        if (c.scaled) {
          const scaled = applyScale(raw, c.rules);
          // Exactly as `apply`: it keeps the sample as it was (so -0 stays -0) unless the value
          // compares unequal or a unit is added, and then carries the scaled value.
          if (scaled !== raw || (c.rules.unit !== undefined && cols.unitAt(i) === undefined)) value = scaled;
        }
        if (c.deadband > 0) {
          const tag = tags[i]!;
          const quality = QUALITY_CODES[q]!;
          const prev = this.last.get(tag);
          if (typeof value === "number" && q === 0 && prev && prev.quality === "good" && typeof prev.value === "number" && Math.abs(value - prev.value) < c.deadband) {
            kept ??= Array.from({ length: i }, (_, j) => j);
            continue;
          }
          if (prev) { prev.value = value; prev.quality = quality; } else this.last.set(tag, { value, quality });
        }
      }
      b.set(k, value, q, ts[i]!);
      const reason = reasons === undefined ? undefined : reasons[i];
      if (reason !== undefined) b.setReason(k, reason);
      kept?.push(i);
      k++;
    }
    const units = this.unitsFor(cols, rules);
    if (kept === undefined) return b.done(tags, units);
    return b.done(kept.map((i) => tags[i]!), units === undefined ? undefined : kept.map((i) => units[i]));
  }

  /** Each position's unit: the sample's own, else the rule's; one list per distinct input list. */
  private unitsFor(cols: SampleColumns, rules: readonly (Compiled | undefined)[]): (string | undefined)[] | undefined {
    if (this.unitsIn === cols.units && this.unitsTags === cols.tags) return this.unitsOut;
    const own = cols.units;
    const out = cols.tags.map((_, i) => own?.[i] ?? rules[i]?.rules.unit);
    this.unitsIn = own;
    this.unitsTags = cols.tags;
    this.unitsOut = out.some((u) => u !== undefined) ? out : undefined;
    return this.unitsOut;
  }

  apply(samples: readonly Sample[]): readonly Sample[] {
    if (this.passThrough) return samples;
    const out: Sample[] = [];
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      const c = this.compiled.get(s.tag);
      if (!c) { out.push(s); continue; }
      const r = c.rules;
      const value = c.scaled ? applyScale(s.value, r) : s.value;
      if (c.deadband > 0) {
        if (typeof value === "number" && s.quality === "good") {
          const prev = this.last.get(s.tag);
          if (prev && prev.quality === "good" && typeof prev.value === "number" && Math.abs(value - prev.value) < c.deadband) continue;
        }
        const prev = this.last.get(s.tag);
        if (prev) { prev.value = value; prev.quality = s.quality; } else this.last.set(s.tag, { value, quality: s.quality });
      }
      const unit = s.unit ?? r.unit;
      if (value === s.value && unit === s.unit) { out.push(s); continue; }
      const n: Sample = { device: s.device, tag: s.tag, value, quality: s.quality, ts: s.ts };
      if (unit !== undefined) n.unit = unit;
      if (s.reason !== undefined) n.reason = s.reason;
      out.push(n);
    }
    return out;
  }
}
