const UNITS: Readonly<Record<string, number>> = {
  "": 1, B: 1,
  KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12,
  KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4,
};

const SIZE = /^([0-9]+(?:\.[0-9]+)?) ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$/;

/**
 * Bytes from a config size: a non-negative integer, or a string like `512MiB`, `1GiB`, `64KiB`,
 * `10MB` (KB/MB/GB/TB decimal, KiB/MiB/GiB/TiB binary; fractions are floored to whole bytes).
 * Units are case-sensitive on purpose: `Mb` would be megabits. Undefined when it is not a size.
 */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const m = SIZE.exec(value.trim());
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * (UNITS[m[2] ?? ""] ?? 1));
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
