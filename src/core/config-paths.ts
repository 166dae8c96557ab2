/** One JSON-pointer segment, escaped as RFC 6901 (and ajv's instancePath) does. */
export function pointer(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

export function unpointer(segment: string): string {
  return segment.replace(/~1/g, "/").replace(/~0/g, "~");
}

/**
 * The contract's path form: `devices[2].tags[0].type`. Keys that are not plain identifiers are
 * quoted so a path never reads ambiguously.
 */
export function formatPath(segs: readonly (string | number)[]): string {
  let out = "";
  for (const s of segs) {
    if (typeof s === "number") out += `[${s}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(s)) out += out === "" ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** Splits an ajv instancePath into segments, numbers where the data holds an array. */
export function segmentsOf(instancePath: string, root: unknown): (string | number)[] {
  if (instancePath === "") return [];
  const segs: (string | number)[] = [];
  let cur: unknown = root;
  for (const raw of instancePath.slice(1).split("/")) {
    const key = unpointer(raw);
    if (Array.isArray(cur) && /^\d+$/.test(key)) {
      const i = Number(key);
      segs.push(i);
      cur = cur[i];
    } else {
      segs.push(key);
      cur = cur !== null && typeof cur === "object" ? (cur as Record<string, unknown>)[key] : undefined;
    }
  }
  return segs;
}

export function pointerOf(segs: readonly (string | number)[]): string {
  return segs.map((s) => `/${pointer(String(s))}`).join("");
}

/** A found value for a message: short, typed, and never longer than a line. */
export function describeFound(value: unknown): string {
  if (value === null || value === undefined) return "an empty value";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") {
    const s = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return `${JSON.stringify(s)} (string)`;
  }
  if (typeof value === "number") return Number.isInteger(value) ? `${value} (integer)` : `${value} (number)`;
  return `${String(value)} (${typeof value})`;
}
