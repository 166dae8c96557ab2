import type { TagCommon } from "../config/types.js";
import type { Sample } from "../core/sample.js";

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

/**
 * Per-device normalizer. Deadband (absolute, engineering units) suppresses a good numeric sample
 * whose change from the last passed value is smaller than the deadband; a quality change, a
 * non-numeric value or the first reading always passes.
 */
export class Normalizer {
  private readonly last = new Map<string, Last>();
  constructor(private readonly rules: ReadonlyMap<string, TagRules>) {}

  /** Returns the samples to journal (possibly fewer than given). */
  apply(samples: readonly Sample[]): Sample[] {
    const out: Sample[] = [];
    for (const s of samples) {
      const r = this.rules.get(s.tag);
      if (!r) { out.push(s); continue; }
      const value = applyScale(s.value, r);
      const unit = s.unit ?? r.unit;
      if (r.deadband !== undefined && r.deadband > 0 && typeof value === "number" && s.quality === "good") {
        const prev = this.last.get(s.tag);
        if (prev && prev.quality === "good" && typeof prev.value === "number" && Math.abs(value - prev.value) < r.deadband) continue;
      }
      this.last.set(s.tag, { value, quality: s.quality });
      const n: Sample = { device: s.device, tag: s.tag, value, quality: s.quality, ts: s.ts };
      if (unit !== undefined) n.unit = unit;
      if (s.reason !== undefined) n.reason = s.reason;
      out.push(n);
    }
    return out;
  }
}
