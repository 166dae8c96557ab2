import { UsageError } from "./args.js";

/** What `floorgate browse` was asked, from its flags (main.ts reads them). */
export interface BrowseRequest {
  endpoint: string;
  root?: string;
  depth: number;
  maxNodes: number;
  timeoutMs: number;
  securityMode?: string;
  securityPolicy?: string;
  username?: string;
}

const MODES = ["None", "Sign", "SignAndEncrypt"] as const;
const POLICIES = ["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"] as const;

function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${name} ${v}: allowed: ${allowed.join(" | ")}`);
  return v as T;
}

/**
 * `floorgate browse`: walks an OPC UA server's address space and prints its variables as tag YAML
 * (drivers/opcua/browse.ts, imported only here so that other commands never load node-opcua).
 * The password comes from FLOORGATE_BROWSE_PASSWORD only: a flag would show in `ps` and shell history.
 * Exit 0 with the YAML on stdout; 1 with one line on stderr when the server cannot be reached or
 * the root does not exist.
 */
export async function runBrowse(req: BrowseRequest): Promise<number> {
  let endpointOk = false;
  try { endpointOk = new URL(req.endpoint).protocol === "opc.tcp:"; } catch { endpointOk = false; }
  if (!endpointOk) throw new UsageError(`--endpoint ${req.endpoint}: expected opc.tcp://host:port[/path]`);
  const securityMode = oneOf("security-mode", req.securityMode, MODES);
  const securityPolicy = oneOf("security-policy", req.securityPolicy, POLICIES);
  if ((securityMode ?? "None") === "None" && (securityPolicy ?? "None") !== "None") throw new UsageError(`--security-policy ${securityPolicy} needs --security-mode Sign or SignAndEncrypt`);
  if ((securityMode ?? "None") !== "None" && (securityPolicy ?? "None") === "None") throw new UsageError(`--security-mode ${securityMode} needs --security-policy (${POLICIES.slice(1).join(" | ")})`);
  const password = process.env.FLOORGATE_BROWSE_PASSWORD;
  if (password !== undefined && req.username === undefined) throw new UsageError("FLOORGATE_BROWSE_PASSWORD is set but --username is not");
  const { browseEndpoint, tagsYaml, BrowseError } = await import("../../drivers/opcua/browse.js");
  try {
    const outcome = await browseEndpoint({
      endpoint: req.endpoint, depth: req.depth, maxNodes: req.maxNodes, timeoutMs: req.timeoutMs,
      ...(req.root === undefined ? {} : { root: req.root }),
      ...(securityMode === undefined ? {} : { securityMode }),
      ...(securityPolicy === undefined ? {} : { securityPolicy }),
      ...(req.username === undefined ? {} : { username: req.username, password: password ?? "" }),
    });
    process.stdout.write(tagsYaml(outcome));
    return 0;
  } catch (err) {
    if (err instanceof BrowseError) {
      process.stderr.write(`floorgate browse: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
