/**
 * `floorgate browse`: walks an OPC UA server's address space and turns its variables into tag YAML
 * ready to paste under a `driver: opcua` device. Bounded: the connect and every request have a
 * timeout, the walk a depth and a cap on the nodes it visits (said in the output when hit).
 */
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import {
  AttributeIds,
  BrowseDirection,
  DataType,
  MessageSecurityMode,
  NodeClass,
  NodeClassMask,
  OPCUACertificateManager,
  OPCUAClient,
  ResultMask,
  SecurityPolicy,
  UserTokenType,
  resolveNodeId,
  setDebugLogger,
  setErrorLogger,
  setWarningLogger,
  type BrowseResult,
  type ClientSession,
  type ReferenceDescription,
  type UserIdentityInfo,
} from "node-opcua";
import { quietNodeOpcua } from "./logging.js";

// node-opcua's console warnings ([NODE-OPCUA-W27] on Node 20, reconnect chatter) would mix into
// the YAML on stdout: browse prints only its own lines. With no OPC UA device
// running in this process, logging.ts drops them; in `floorgate demo` they reach the device's log.
quietNodeOpcua({ setWarningLogger, setErrorLogger, setDebugLogger });

export interface BrowseOptions {
  endpoint: string;
  /** NodeId (or a standard name such as ObjectsFolder); default ObjectsFolder (ns=0;i=85) */
  root?: string;
  /** levels below the root; default 3 */
  depth?: number;
  /** nodes browsed at most; default 5000 */
  maxNodes?: number;
  /** connect bound and per-request timeout; default 10000 ms */
  timeoutMs?: number;
  securityMode?: "None" | "Sign" | "SignAndEncrypt";
  securityPolicy?: "None" | "Basic256Sha256" | "Aes128_Sha256_RsaOaep" | "Aes256_Sha256_RsaPss";
  username?: string;
  password?: string;
}

export interface BrowsedVariable {
  nodeId: string;
  /** browse names from below the root to the variable */
  path: string[];
  dataType: string;
  /** ValueRank ≥ 1: an array */
  array: boolean;
  writable: boolean;
  /** from the EngineeringUnits property (EUInformation) */
  unit?: string;
}

export interface BrowseOutcome {
  endpoint: string;
  root: string;
  depth: number;
  variables: BrowsedVariable[];
  /** nodes browsed */
  visited: number;
  /** the walk stopped at `maxNodes` */
  capped: boolean;
  /** nodes left out on purpose (the Server object), as "name (nodeId)" */
  skipped: string[];
}

/** Thrown for what the user can fix (unreachable endpoint, bad root): the CLI prints the message, exit 1. */
export class BrowseError extends Error {}

const SERVER_OBJECT = "ns=0;i=2253";
const CHUNK = 500;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new BrowseError(`${what}: no answer within ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function chunks<T>(list: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += CHUNK) out.push(list.slice(i, i + CHUNK));
  return out;
}

/** EUInformation display names people write differently in configs. */
const UNIT_ALIASES: Record<string, string> = { "°C": "degC", "℃": "degC", "°F": "degF", "℉": "degF", "%": "percent" };

/** Connects, walks and closes. Rejects with BrowseError for anything the user can act on. */
export async function browseEndpoint(opts: BrowseOptions): Promise<BrowseOutcome> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const depth = opts.depth ?? 3;
  const maxNodes = opts.maxNodes ?? 5000;
  let rootId: string;
  try {
    rootId = resolveNodeId(opts.root ?? "ObjectsFolder").toString();
  } catch {
    throw new BrowseError(`--root ${opts.root}: not a NodeId (e.g. i=85, ns=2;s=Oven, ObjectsFolder)`);
  }
  const mode = opts.securityMode ?? "None";
  // A secure channel needs a client certificate the server can be told to trust: kept across runs
  // under ~/.floorgate/browse-pki; with mode None a throwaway one is enough.
  const secure = mode !== "None";
  const pkiRoot = secure ? join(homedir(), ".floorgate", "browse-pki") : await mkdtemp(join(tmpdir(), "floorgate-browse-"));
  if (secure) await mkdir(pkiRoot, { recursive: true });
  const certificates = new OPCUACertificateManager({ rootFolder: pkiRoot, automaticallyAcceptUnknownCertificate: true });
  const client = OPCUAClient.create({
    applicationName: "floorgate-browse",
    endpointMustExist: false,
    securityMode: MessageSecurityMode[mode],
    securityPolicy: SecurityPolicy[opts.securityPolicy ?? "None"],
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    defaultTransactionTimeout: timeoutMs,
    transportTimeout: timeoutMs,
    clientCertificateManager: certificates,
    keepSessionAlive: false,
  });
  let session: ClientSession | undefined;
  try {
    try {
      await withTimeout(client.connect(opts.endpoint), timeoutMs, `cannot connect to ${opts.endpoint}`);
      const identity: UserIdentityInfo = opts.username !== undefined
        ? { type: UserTokenType.UserName, userName: opts.username, password: opts.password ?? "" }
        : { type: UserTokenType.Anonymous };
      session = await withTimeout(client.createSession(identity), timeoutMs, `no session on ${opts.endpoint}`);
    } catch (err) {
      if (err instanceof BrowseError) throw err;
      throw new BrowseError(`cannot connect to ${opts.endpoint}: ${(err as Error).message.split("\n")[0]!.replace(/[\s,.]+$/, "")}`);
    }
    return await walk(session, { endpoint: opts.endpoint, rootId, depth, maxNodes, timeoutMs });
  } finally {
    await session?.close().catch(() => undefined);
    await client.disconnect().catch(() => undefined);
    await certificates.dispose().catch(() => undefined);
    if (!secure) await rm(pkiRoot, { recursive: true, force: true });
  }
}

interface Found { nodeId: string; path: string[] }

async function browseAll(session: ClientSession, nodes: readonly string[], referenceTypeId: string, mask: number, timeoutMs: number): Promise<ReferenceDescription[][]> {
  const out: ReferenceDescription[][] = [];
  for (const part of chunks(nodes)) {
    const results = await withTimeout(session.browse(part.map((nodeId) => ({
      nodeId, referenceTypeId, includeSubtypes: true, browseDirection: BrowseDirection.Forward,
      nodeClassMask: mask, resultMask: ResultMask.BrowseName | ResultMask.NodeClass | ResultMask.ReferenceType,
    }))), timeoutMs, "browse");
    for (const r of results) {
      const refs = [...(r.references ?? [])];
      let cp: Buffer | null = r.continuationPoint ?? null;
      while (cp && cp.length > 0) {
        const more: BrowseResult[] = await withTimeout(session.browseNext([cp], false), timeoutMs, "browseNext");
        const next = more[0];
        refs.push(...(next?.references ?? []));
        cp = next?.continuationPoint ?? null;
      }
      out.push(r.statusCode.isGood() ? refs : []);
    }
  }
  return out;
}

async function walk(session: ClientSession, o: { endpoint: string; rootId: string; depth: number; maxNodes: number; timeoutMs: number }): Promise<BrowseOutcome> {
  const [rootCheck] = await withTimeout(session.read([{ nodeId: o.rootId, attributeId: AttributeIds.NodeClass }]), o.timeoutMs, "read");
  if (!rootCheck?.statusCode.isGood()) throw new BrowseError(`--root ${o.rootId}: no such node on ${o.endpoint} (${rootCheck?.statusCode.name ?? "no answer"})`);
  const seen = new Set<string>([o.rootId]);
  const found: Found[] = [];
  const skipped: string[] = [];
  let level: Found[] = [{ nodeId: o.rootId, path: [] }];
  let visited = 0;
  let capped = false;
  for (let d = 1; d <= o.depth && level.length > 0; d++) {
    if (visited + level.length > o.maxNodes) { level = level.slice(0, Math.max(0, o.maxNodes - visited)); capped = true; }
    visited += level.length;
    // HierarchicalReferences without HasProperty: properties (EURange, EngineeringUnits) are not tags.
    const refs = await browseAll(session, level.map((n) => n.nodeId), "HierarchicalReferences", NodeClassMask.Object | NodeClassMask.Variable, o.timeoutMs);
    const next: Found[] = [];
    refs.forEach((list, i) => {
      const parent = level[i]!;
      for (const r of list) {
        if (r.referenceTypeId.toString() === "ns=0;i=46") continue; // HasProperty
        const id = r.nodeId.toString();
        if (seen.has(id)) continue;
        seen.add(id);
        const name = r.browseName.name ?? id;
        if (id === SERVER_OBJECT && o.rootId !== SERVER_OBJECT) { skipped.push(`${name} (${id})`); continue; }
        const child = { nodeId: id, path: [...parent.path, name] };
        if (r.nodeClass === NodeClass.Variable) found.push(child);
        next.push(child); // variables may hold variables (a structure's fields)
      }
    });
    level = next;
    if (capped) break;
  }
  const variables = await describe(session, found, o.timeoutMs);
  return { endpoint: o.endpoint, root: o.rootId, depth: o.depth, variables, visited, capped, skipped };
}

/** DataType, ValueRank, UserAccessLevel and EngineeringUnits of every variable, in batched reads. */
async function describe(session: ClientSession, found: readonly Found[], timeoutMs: number): Promise<BrowsedVariable[]> {
  const read = async (ids: { nodeId: string; attributeId: number }[]) => {
    const out = [];
    for (const part of chunks(ids)) out.push(...await withTimeout(session.read(part), timeoutMs, "read"));
    return out;
  };
  const attrs = await read(found.flatMap((f) => [
    { nodeId: f.nodeId, attributeId: AttributeIds.DataType },
    { nodeId: f.nodeId, attributeId: AttributeIds.ValueRank },
    { nodeId: f.nodeId, attributeId: AttributeIds.UserAccessLevel },
    { nodeId: f.nodeId, attributeId: AttributeIds.AccessLevel },
  ]));
  // EngineeringUnits: a property of analog items
  const props = await browseAll(session, found.map((f) => f.nodeId), "HasProperty", NodeClassMask.Variable, timeoutMs);
  const euNode = props.map((refs) => refs.find((r) => r.browseName.name === "EngineeringUnits")?.nodeId.toString());
  const euIds = euNode.filter((x): x is string => x !== undefined);
  const euValues = new Map<string, string>();
  const eus = await read(euIds.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })));
  eus.forEach((dv, i) => {
    const v = dv.value?.value as { displayName?: { text?: string | null } } | null | undefined;
    const text = v?.displayName?.text;
    if (dv.statusCode.isGood() && typeof text === "string" && text.trim() !== "") euValues.set(euIds[i]!, UNIT_ALIASES[text.trim()] ?? text.trim());
  });
  // Data type names: the built-in ones by number, others by their node's browse name.
  const typeIds = [...new Set(found.map((_, i) => attrs[i * 4]?.value?.value?.toString()).filter((x): x is string => typeof x === "string"))];
  const typeNames = new Map<string, string>();
  const unknown = typeIds.filter((t) => {
    const m = /^ns=0;i=(\d+)$/.exec(t);
    const builtIn = m ? DataType[Number(m[1])] : undefined;
    if (builtIn !== undefined && Number(m![1]) <= 25) { typeNames.set(t, builtIn); return false; }
    return true;
  });
  const names = await read(unknown.map((nodeId) => ({ nodeId, attributeId: AttributeIds.BrowseName })));
  names.forEach((dv, i) => {
    const n = (dv.value?.value as { name?: string } | null | undefined)?.name;
    typeNames.set(unknown[i]!, dv.statusCode.isGood() && n ? n : unknown[i]!);
  });
  return found.map((f, i) => {
    const [dt, rank, ual, al] = [attrs[i * 4], attrs[i * 4 + 1], attrs[i * 4 + 2], attrs[i * 4 + 3]];
    const typeId = dt?.value?.value?.toString();
    const access = ual?.statusCode.isGood() ? Number(ual.value.value) : al?.statusCode.isGood() ? Number(al.value.value) : 1;
    const eu = euNode[i] === undefined ? undefined : euValues.get(euNode[i]!);
    return {
      nodeId: f.nodeId,
      path: f.path,
      dataType: typeId === undefined ? "unknown" : typeNames.get(typeId) ?? typeId,
      array: rank?.statusCode.isGood() === true && Number(rank.value.value) >= 1,
      writable: (access & 2) !== 0, // CurrentWrite
      ...(eu === undefined ? {} : { unit: eu }),
    };
  });
}

const TAG_MAX = 128;

/** A browse name path as a tag name: lower snake case of A-Z a-z 0-9 _ . - (the tag pattern). */
export function tagName(segments: readonly string[]): string {
  const s = segments.join("_")
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/[^A-Za-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .toLowerCase();
  return (s === "" ? "tag" : s).slice(0, TAG_MAX);
}

/** Unique names: the last two path segments, more when two variables would share one, then a number. */
export function uniqueNames(paths: readonly (readonly string[])[]): string[] {
  const names = paths.map((p) => tagName(p.slice(-2)));
  const count = (list: string[]): Map<string, number> => { const m = new Map<string, number>(); for (const n of list) m.set(n, (m.get(n) ?? 0) + 1); return m; };
  let dup = count(names);
  const full = names.map((n, i) => (dup.get(n)! > 1 ? tagName(paths[i]!) : n));
  dup = count(full);
  const used = new Set<string>();
  return full.map((n) => {
    if (!used.has(n)) { used.add(n); return n; }
    for (let k = 2; ; k++) {
      const suffix = `_${k}`;
      const c = `${n.slice(0, TAG_MAX - suffix.length)}${suffix}`;
      if (!used.has(c) && !dup.has(c)) { used.add(c); return c; }
    }
  });
}

const PLAIN = /^[A-Za-z0-9_./-]+$/;
const yamlStr = (s: string): string => (PLAIN.test(s) ? s : JSON.stringify(s));

/** The outcome as YAML: a comment header and a `tags:` list, one flow map per variable. */
export function tagsYaml(r: BrowseOutcome): string {
  const lines = [
    `# floorgate browse ${r.endpoint} from ${r.root}, depth ${r.depth}: ${r.variables.length} variables (${r.visited} nodes browsed)`,
  ];
  if (r.capped) lines.push(`# stopped after ${r.visited} nodes (--max-nodes): narrow the walk with --root or --depth, or raise --max-nodes`);
  for (const s of r.skipped) lines.push(`# left out: ${s}; browse it with --root ${s.replace(/^.*\((.*)\)$/, "$1")}`);
  if (r.variables.length === 0) {
    lines.push("tags: []");
    return `${lines.join("\n")}\n`;
  }
  lines.push("tags:");
  const names = uniqueNames(r.variables.map((v) => v.path));
  r.variables.forEach((v, i) => {
    const keys = [`name: ${names[i]}`, `nodeId: ${JSON.stringify(v.nodeId)}`];
    if (v.unit !== undefined) keys.push(`unit: ${yamlStr(v.unit)}`);
    if (v.writable) keys.push("writable: true");
    const note = `${v.dataType}${v.array ? " array" : ""}, ${v.path.join("/")}`;
    lines.push(`  - { ${keys.join(", ")} }  # ${note}`);
  });
  return `${lines.join("\n")}\n`;
}
