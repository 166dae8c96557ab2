import { statSync } from "node:fs";
import { resolve } from "node:path";
import type { ConfigProblem } from "./types.js";
import type { ConfigSource, Pos } from "./source.js";
import { formatPath, pointerOf } from "./paths.js";
import { isLoopback, listenersClash, parseHostPort, type HostPort } from "./net.js";
import { parseSize } from "./sizes.js";
import { DEFAULTS } from "./build.js";

type Obj = Record<string, unknown>;
type Segs = (string | number)[];

const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const int = (v: unknown): number | undefined => (typeof v === "number" && Number.isInteger(v) ? v : undefined);

/** Registers each Modbus type occupies (strings: `length`). */
export const REGISTERS: Readonly<Record<string, number>> = {
  bool: 1, int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, int64: 4, uint64: 4, float64: 4,
};

/** Size limits: the journal needs room for a few segments; a push must fit in memory comfortably. */
export const SIZE_LIMITS = {
  journalMaxBytes: { min: 1024 * 1024, max: 2 ** 50 },
  maxPayloadBytes: { min: 1024, max: 64 * 1024 * 1024 },
};

/**
 * Checks that span more than one value or need the world (files on disk). Runs on data that may be
 * structurally invalid, so every access is guarded: each check judges only what it can read and
 * leaves the rest to the schema's messages. Never throws.
 */
export function checkSemantics(source: ConfigSource, baseDir: string): ConfigProblem[] {
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

  const serialLines = new Map<string, { segs: Segs; settings: Record<string, unknown> }>();
  list(root.devices).forEach((d, i) => {
    if (!isObj(d)) return;
    const segs: Segs = ["devices", i];
    claimId(d.id, [...segs, "id"], "device id");
    checkTagNames(d.tags, segs, add, where);
    if (d.driver === "modbus") {
      checkModbus(d, segs, add);
      checkSerialLine(d, segs, serialLines, add, where);
    } else if (d.driver === "opcua") checkOpcua(d, segs, add);
  });

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
  if (isObj(ingest.mqtt) && typeof ingest.mqtt.listen === "string") {
    const hp = parseHostPort(ingest.mqtt.listen);
    if (typeof hp === "string") add(["ingest", "mqtt", "listen"], `found ${JSON.stringify(ingest.mqtt.listen)}; ${hp}`);
    else if (httpListen && listenersClash(hp, httpListen)) {
      add(["ingest", "mqtt", "listen"], `port ${hp.port} is already taken by http.listen; the device MQTT listener needs a port of its own`);
    }
  }

  // outputs
  const seenNames = new Map<string, Segs>();
  const seenClients = new Map<string, Segs>();
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
    if (o.type === "mqtt") {
      checkMqttOutput(o, segs, add);
      checkTlsFiles(o, segs, baseDir, add);
      const url = str(o.url);
      const clientId = str(o.clientId) ?? gatewayId;
      if (url !== undefined && clientId !== undefined) {
        let broker: string | undefined;
        try {
          const u = new URL(url);
          broker = `${u.hostname}:${u.port}`;
        } catch {
          broker = undefined;
        }
        if (broker !== undefined) {
          const k = `${broker} ${clientId}`;
          const first = seenClients.get(k);
          const idSegs: Segs = o.clientId !== undefined ? [...segs, "clientId"] : [...segs, "url"];
          if (first) add(idSegs, `client id "${clientId}" is already used on the same broker by ${formatPath(first.slice(0, 2))}; a broker disconnects one of two clients with one id, so set a different clientId`);
          else seenClients.set(k, idSegs);
        }
      }
    } else if (o.type === "influx") {
      const url = str(o.url);
      if (url !== undefined) checkUrl(url, ["http:", "https:"], [...segs, "url"], add);
    }
  });

  return problems;
}

type Add = (segs: Segs, message: string, key?: boolean) => void;

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

/**
 * Devices on one serial port share one line, opened once: with different baud rates or framing
 * the first device to open it would silently decide for all of them.
 */
function checkSerialLine(
  d: Obj, segs: Segs, lines: Map<string, { segs: Segs; settings: Record<string, unknown> }>, add: Add, where: (s: Segs) => string,
): void {
  const conn = isObj(d.connection) ? d.connection : {};
  const path = str(conn.path);
  if (conn.transport !== "rtu" || path === undefined) return;
  const settings: Record<string, unknown> = {};
  for (const k of ["baudRate", "parity", "dataBits", "stopBits"] as const) settings[k] = conn[k] ?? DEFAULTS.rtu[k];
  const first = lines.get(path);
  if (!first) { lines.set(path, { segs: [...segs, "connection"], settings }); return; }
  for (const k of Object.keys(settings)) {
    if (settings[k] === first.settings[k]) continue;
    add([...segs, "connection", ...(conn[k] === undefined ? [] : [k])],
      `serial port ${path} is also used by ${where(first.segs)} with ${k} ${String(first.settings[k])}, here ${String(settings[k])}; devices on one serial line must use the same baudRate, parity, dataBits and stopBits`);
  }
}

function checkModbus(d: Obj, segs: Segs, add: Add): void {
  const conn = isObj(d.connection) ? d.connection : {};
  const rtu = conn.transport === "rtu";
  list(d.tags).forEach((t, j) => {
    if (!isObj(t)) return;
    const ts: Segs = [...segs, "tags", j];
    const area = str(t.area);
    const bitArea = area === "coil" || area === "discrete";
    const type = str(t.type) ?? (bitArea ? "bool" : undefined);
    if (bitArea && t.type !== undefined && t.type !== "bool") {
      add([...ts, "type"], `found ${JSON.stringify(t.type)}; a ${area} is a single bit, so its type is bool (or leave type out)`);
    }
    if (t.bit !== undefined) {
      if (bitArea) add([...ts, "bit"], `bit selects a bit of a register; a ${area} is already a single bit: remove bit`);
      else if (type !== undefined && type !== "bool") add([...ts, "bit"], `bit is only for type bool (a bool taken from one bit of a register); this tag is ${type}`);
    } else if ((area === "holding" || area === "input") && type === "bool") {
      add(ts, `a bool from a ${area} register needs bit (0-15) to say which bit`);
    }
    if (type === "string" && t.length === undefined) add(ts, "a string tag needs length (registers, 2 characters each)");
    if (type !== undefined && type !== "string" && t.length !== undefined) add([...ts, "length"], `length is only for type string; this tag is ${type}`);
    if (t.writable === true && (area === "input" || area === "discrete")) {
      add([...ts, "writable"], `${area === "input" ? "input registers" : "discrete inputs"} are read-only in Modbus; only holding and coil tags can be writable`);
    }
    if ((type === "bool" || type === "string") && ((t.scale !== undefined && t.scale !== 1) || (t.offset !== undefined && t.offset !== 0))) {
      add([...ts, t.scale !== undefined && t.scale !== 1 ? "scale" : "offset"], `scale and offset apply to numbers; this tag is ${type}`);
    }
    if (t.scale === 0) add([...ts, "scale"], "scale 0 would turn every reading into the offset; use a non-zero scale");
    const address = int(t.address);
    const regs = type === "string" ? int(t.length) : type !== undefined ? REGISTERS[type] : undefined;
    if (address !== undefined && regs !== undefined && address >= 0 && address <= 65535 && address + regs - 1 > 65535) {
      add([...ts, "address"], `a ${type} at ${address} spans ${regs} registers and ends at ${address + regs - 1}; the last register must be at most 65535`);
    }
    if (rtu && t.unitId === 0) add([...ts, "unitId"], "unit id 0 is broadcast on a serial line (no replies); allowed: 1-247");
  });
}

function checkOpcua(d: Obj, segs: Segs, add: Add): void {
  if (!isObj(d.connection)) return;
  const c = d.connection;
  const cs: Segs = [...segs, "connection"];
  const endpoint = str(c.endpoint);
  if (endpoint !== undefined && endpoint !== "") {
    let ok = false;
    try {
      const u = new URL(endpoint);
      ok = u.protocol === "opc.tcp:" && u.hostname !== "";
    } catch {
      ok = false;
    }
    if (!ok) add([...cs, "endpoint"], `found ${JSON.stringify(endpoint)}; allowed: opc.tcp://host:port[/path], e.g. opc.tcp://127.0.0.1:4840`);
  }
  const mode = str(c.securityMode) ?? "None";
  const policy = str(c.securityPolicy) ?? "None";
  const knownPolicy = ["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"].includes(policy);
  if (mode === "None" && policy !== "None" && knownPolicy) {
    add([...cs, c.securityMode !== undefined ? "securityMode" : "securityPolicy"], `securityPolicy ${policy} needs securityMode Sign or SignAndEncrypt (securityMode is ${c.securityMode === undefined ? "None by default" : "None"})`);
  } else if (mode !== "None" && policy === "None" && ["Sign", "SignAndEncrypt"].includes(mode)) {
    add([...cs, c.securityPolicy !== undefined ? "securityPolicy" : "securityMode"], `securityMode ${mode} needs a securityPolicy other than None (securityPolicy is ${c.securityPolicy === undefined ? "None by default" : "None"}); allowed: Basic256Sha256 | Aes128_Sha256_RsaOaep | Aes256_Sha256_RsaPss`);
  }
  if (c.password !== undefined && c.username === undefined) add([...cs, "password"], "password without username; set username too (anonymous login uses neither)");
}

function checkUrl(url: string, schemes: string[], segs: Segs, add: Add): URL | undefined {
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    u = undefined;
  }
  const allowed = schemes.map((s) => `${s}//`).join(" ");
  if (!u || !schemes.includes(u.protocol) || u.hostname === "") {
    const shown = u && (u.username || u.password) ? "a URL with credentials" : JSON.stringify(url);
    add(segs, `found ${shown}; allowed: a URL starting with ${allowed}`);
    return undefined;
  }
  return u;
}

function checkMqttOutput(o: Obj, segs: Segs, add: Add): void {
  const url = str(o.url);
  if (url !== undefined) checkUrl(url, ["mqtt:", "mqtts:", "ws:", "wss:"], [...segs, "url"], add);
  const format = str(o.format) ?? "json";
  if (o.topicPrefix !== undefined && format === "sparkplug-b") {
    add([...segs, "topicPrefix"], "topicPrefix is for format json only; Sparkplug B topics are spBv1.0/{gateway.group}/…", true);
  }
  if (o.primaryHostId !== undefined && format === "json") {
    add([...segs, "primaryHostId"], "primaryHostId is for format sparkplug-b only", true);
  }
  const prefix = str(o.topicPrefix);
  if (prefix !== undefined && prefix !== "" && (/[+#\u0000]/.test(prefix) || prefix.endsWith("/") || prefix.includes("//"))) {
    add([...segs, "topicPrefix"], `found ${JSON.stringify(prefix)}; allowed: topic levels separated by / with no wildcards (+ #), no empty level and no trailing /`);
  }
  const host = str(o.primaryHostId);
  if (host !== undefined && /[/+#]/.test(host)) add([...segs, "primaryHostId"], `found ${JSON.stringify(host)}; a Sparkplug host id cannot contain / + or #`);
}

function checkTlsFiles(o: Obj, segs: Segs, baseDir: string, add: Add): void {
  for (const k of ["ca", "cert", "key"] as const) {
    const f = str(o[k]);
    if (f === undefined || f === "") continue;
    const abs = resolve(baseDir, f);
    let isFile = false;
    try {
      isFile = statSync(abs).isFile();
    } catch {
      isFile = false;
    }
    if (!isFile) add([...segs, k], `file not found: ${abs} (${k} paths are relative to the config file)`);
  }
  if ((o.cert === undefined) !== (o.key === undefined)) {
    add([...segs, o.cert === undefined ? "key" : "cert"], "cert and key go together: set both for client certificate authentication, or neither");
  }
}
