/**
 * Subscription globs of the live feed (spec §5): `*` matches any run of characters (also none),
 * every other character matches itself. A list of globs matches when any of its globs does; an
 * absent or empty list means everything.
 */

/** Characters a glob may hold: the id / tag alphabet of spec §1 plus `*`. */
const GLOB_RE = /^[A-Za-z0-9_.*-]{1,200}$/;

/** At most this many globs per list, so one subscribe cannot make every update expensive. */
export const MAX_GLOBS = 256;

export type Matcher = (name: string) => boolean;

const everything: Matcher = () => true;

/** Why `glob` is not acceptable, or undefined when it is. */
export function globProblem(glob: string): string | undefined {
  if (!GLOB_RE.test(glob)) return `glob ${JSON.stringify(glob.slice(0, 60))} must be 1–200 characters of A-Z a-z 0-9 _ . - and *`;
  return undefined;
}

/** One glob as a predicate (call `globProblem` first; this does not validate). */
export function globMatcher(glob: string): Matcher {
  if (glob === "*" || /^\*+$/.test(glob)) return everything;
  if (!glob.includes("*")) return (name) => name === glob;
  const parts = glob.split("*");
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  const middle = parts.slice(1, -1).filter((p) => p !== "");
  return (name) => {
    if (name.length < first.length + last.length) return false;
    if (!name.startsWith(first) || !name.endsWith(last)) return false;
    let at = first.length;
    const end = name.length - last.length;
    for (const p of middle) {
      const i = name.indexOf(p, at);
      if (i < 0 || i + p.length > end) return false;
      at = i + p.length;
    }
    return true;
  };
}

/** A list of globs as one predicate: any of them; an empty list matches everything. */
export function globsMatcher(globs: readonly string[]): Matcher {
  if (globs.length === 0) return everything;
  const ms = globs.map(globMatcher);
  if (ms.includes(everything)) return everything;
  if (ms.length === 1) return ms[0]!;
  return (name) => {
    for (const m of ms) if (m(name)) return true;
    return false;
  };
}

/** True when the matcher is the match-everything one (lets the hub skip filtering). */
export function matchesEverything(m: Matcher): boolean {
  return m === everything;
}
