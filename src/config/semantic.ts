import type { CheckContext, ConfigIssue, ConfigPath, RawItem } from "../core/plugin.js";
import type { ConfigProblem } from "./types.js";
import type { ConfigSource, Pos } from "./source.js";
import type { ConfigModel } from "./model.js";
import { formatPath, pointerOf } from "../core/config-paths.js";
import { isLoopback, parseHostPort, type HostPort } from "../core/net.js";
import { parseSize } from "../core/sizes.js";

type Obj = Record<string, unknown>;
type Segs = ConfigPath;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** Size limits: the journal needs room for a few segments; a push must fit in memory comfortably. */
export const SIZE_LIMITS = {
  journalMaxBytes: { min: 1024 * 1024, max: 2 ** 50 },
  maxPayloadBytes: { min: 1024, max: 64 * 1024 * 1024 },
};

/**
 * Checks that span more than one value or need the world (files on disk): the core's own here,
 * then each plugin's `check` with every item of that plugin. Runs on data that may be structurally
 * invalid, so every access is guarded: each check judges only what it can read and leaves the rest
 * to the schema's messages. Never throws. Warnings come back with `severity: "warning"`.
 */
export function checkSemantics(source: ConfigSource, baseDir: string, model: ConfigModel<unknown, unknown>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const posOf = (segs: Segs, key = false): Pos => {
    const ptr = pointerOf(segs);
    const exact = key ? source.keyPos.get(ptr) : source.valuePos.get(ptr);
    if (exact) return exact;
    for (let n = segs.length - 1; n >= 0; n--) {
      const p = source.valuePos.get(pointerOf(segs.slice(0, n)));
      if (p) return p;
    }
    return { line: 0, col: 0 };
  };
  const add = (segs: Segs, message: string, key = false): void => {
    problems.push({ path: formatPath(segs), ...posOf(segs, key), message });
  };
  const addIssue = (i: ConfigIssue): void => {
    const p: ConfigProblem = { path: formatPath(i.path), ...posOf(i.path, i.atKey === true), message: i.message };
    if (i.severity === "warning") p.severity = "warning";
    problems.push(p);
  };
  const where = (segs: Segs): string => {
    const p = posOf(segs);
    return `${formatPath(segs)} (line ${p.line})`;
  };

  const root = isObj(source.data) ? source.data : {};
  const gateway = isObj(root.gateway) ? root.gateway : {};
  const gatewayId = str(gateway.id);

  // http
  const http = isObj(root.http) ? root.http : {};
  let httpListen: HostPort | undefined = { host: "127.0.0.1", port: 8080 };
  if (typeof http.listen === "string") {
    const hp = parseHostPort(http.listen);
    if (typeof hp === "string") {
      add(["http", "listen"], `found ${JSON.stringify(http.listen)}; ${hp}`);
      httpListen = undefined;
    } else {
      httpListen = hp;
      const tokens = http.operatorTokens;
      if (!isLoopback(hp.host) && (!Array.isArray(tokens) || tokens.length === 0)) {
        add(["http", "listen"], `listening on ${http.listen}, which is not loopback, needs http.operatorTokens: anyone on the network could otherwise read the plant and write tags; set operatorTokens (e.g. ["\${env:FLOORGATE_OPERATOR_TOKEN}"]) or listen on 127.0.0.1`);
      }
    }
  } else if (http.listen !== undefined) {
    httpListen = undefined;
  }
  list(http.allowedOrigins).forEach((o, i) => {
    if (typeof o !== "string" || o === "") return;
    let ok = false;
    try {
      const u = new URL(o);
      ok = (u.protocol === "http:" || u.protocol === "https:") && u.origin === o.replace(/\/$/, "");
    } catch {
      ok = false;
    }
    if (!ok) add(["http", "allowedOrigins", i], `found ${JSON.stringify(o)}; allowed: an origin scheme://host[:port] with http or https and no path, e.g. https://hmi.plant.local`);
  });

  // journal
  const journal = isObj(root.journal) ? root.journal : {};
  checkSize(journal.maxBytes, ["journal", "maxBytes"], SIZE_LIMITS.journalMaxBytes, add);

  // device ids: devices and exact ingest ids share one namespace
  const seenIds = new Map<string, Segs>();
  const claimId = (id: unknown, segs: Segs, what: string): void => {
    if (typeof id !== "string") return;
    const first = seenIds.get(id);
    if (first) add(segs, `duplicate ${what} "${id}": already used at ${where(first)}; device ids must be unique across devices and ingest.devices`);
    else seenIds.set(id, segs);
  };

  const ctx: CheckContext = { baseDir, gatewayId, where };
  const byDriver = new Map<string, RawItem[]>();
  list(root.devices).forEach((d, i) => {
    if (!isObj(d)) return;
    const segs: Segs = ["devices", i];
    claimId(d.id, [...segs, "id"], "device id");
    checkTagNames(d.tags, segs, add, where);
    if (typeof d.driver === "string") groupInto(byDriver, d.driver, { value: d, path: segs });
  });
  for (const part of model.parts.drivers) {
    const items = byDriver.get(part.name);
    if (items && part.check) part.check(items, ctx).forEach(addIssue);
  }

  // ingest
  const ingest = isObj(root.ingest) ? root.ingest : {};
  checkSize(ingest.maxPayloadBytes, ["ingest", "maxPayloadBytes"], SIZE_LIMITS.maxPayloadBytes, add);
  const seenGlobs = new Map<string, Segs>();
  list(ingest.devices).forEach((d, i) => {
    if (!isObj(d)) return;
    const segs: Segs = ["ingest", "devices", i];
    const id = str(d.id);
    if (id !== undefined && !id.includes("*")) claimId(id, [...segs, "id"], "device id");
    if (id !== undefined && id.includes("*")) {
      const first = seenGlobs.get(id);
      if (first) add([...segs, "id"], `duplicate ingest device pattern "${id}": already used at ${where(first)}`);
      else seenGlobs.set(id, [...segs, "id"]);
    }
    const hasToken = d.token !== undefined;
    const hasHash = d.tokenHash !== undefined;
    if (hasToken === hasHash) {
      add(segs, hasToken
        ? "set exactly one of token and tokenHash, not both"
        : "missing token: set exactly one of token (e.g. \"${env:AGV17_TOKEN}\") and tokenHash (\"sha256:<64 hex digits>\")");
    }
  });
  // Exact ids have a reserved place under maxDevices: more of them than places could never all push.
  const exactIds = new Set(list(ingest.devices).map((d) => (isObj(d) ? str(d.id) : undefined)).filter((id) => id !== undefined && !id.includes("*")));
  if (typeof ingest.maxDevices === "number" && Number.isInteger(ingest.maxDevices) && exactIds.size > ingest.maxDevices) {
    add(["ingest", "maxDevices"], `${ingest.maxDevices} is less than the ${exactIds.size} exact device ids in ingest.devices; raise it to at least ${exactIds.size}`);
  }
  for (const l of model.parts.ingestListeners ?? []) {
    if (ingest[l.key] !== undefined && l.check) l.check(ingest[l.key], ["ingest", l.key], { ...ctx, httpListen }).forEach(addIssue);
  }

  // outputs
  const seenNames = new Map<string, Segs>();
  const byType = new Map<string, RawItem[]>();
  list(root.outputs).forEach((o, i) => {
    if (!isObj(o)) return;
    const segs: Segs = ["outputs", i];
    const name = str(o.name) ?? str(o.type);
    if (name !== undefined) {
      const nameSegs: Segs = o.name !== undefined ? [...segs, "name"] : [...segs, "type"];
      const first = seenNames.get(name);
      if (first) add(nameSegs, `duplicate output name "${name}": already used at ${where(first)}${o.name === undefined ? " (an output without name is named after its type; give each one a name)" : ""}`);
      else seenNames.set(name, nameSegs);
    }
    if (o.password !== undefined && o.username === undefined) add([...segs, "password"], "password without username; set username too");
    if (typeof o.type === "string") groupInto(byType, o.type, { value: o, path: segs });
  });
  for (const part of model.parts.outputs) {
    const items = byType.get(part.name);
    if (items && part.check) part.check(items, ctx).forEach(addIssue);
  }

  return problems;
}

type Add = (segs: Segs, message: string, key?: boolean) => void;

function groupInto(groups: Map<string, RawItem[]>, key: string, item: RawItem): void {
  const g = groups.get(key);
  if (g) g.push(item);
  else groups.set(key, [item]);
}

function checkSize(value: unknown, segs: Segs, limits: { min: number; max: number }, add: Add): void {
  if (value === undefined) return;
  const bytes = parseSize(value);
  if (bytes === undefined) return; // the schema already said what a size looks like
  if (bytes < limits.min || bytes > limits.max) {
    add(segs, `found ${JSON.stringify(value)} (${bytes} bytes); allowed: ${limits.min} bytes (${human(limits.min)}) to ${human(limits.max)}`);
  }
}

function human(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1 && v % 1024 === 0) {
    v /= 1024;
    u++;
  }
  return `${v}${units[u]}`;
}

function checkTagNames(tags: unknown, devSegs: Segs, add: Add, where: (s: Segs) => string): void {
  const seen = new Map<string, Segs>();
  list(tags).forEach((t, j) => {
    if (!isObj(t) || typeof t.name !== "string") return;
    const segs: Segs = [...devSegs, "tags", j, "name"];
    const first = seen.get(t.name);
    if (first) add(segs, `duplicate tag name "${t.name}" in this device: already used at ${where(first)}`);
    else seen.set(t.name, segs);
  });
}
