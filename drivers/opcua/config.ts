/**
 * The OPC UA device config: types, schema fragment, checks and defaults of the OPC UA driver.
 * plugin.ts spreads `opcuaConfig` into the descriptor listed in src/plugins/drivers.ts. No
 * node-opcua here: `validate` and the driver threads load this file without the protocol stack.
 */
import { join } from "node:path";
import type { ConfigIssue, DeviceCommon, DriverConfigPart } from "../../src/core/plugin.js";
import type { TagCommon } from "../../src/core/tag.js";
import { durationMs, enumOf, nonEmpty, obj, str, tagCommonSchema } from "../../src/core/schema-kit.js";
import { buildTagCommon, isObj, listOf, objOf, or, strOf } from "../../src/core/config-kit.js";

export interface OpcuaTagConfig extends TagCommon {
  nodeId: string;
  samplingMs?: number;
  /**
   * How the server-side DataChangeFilter reads `deadband`: `absolute` (raw units, the default) or
   * `percent` (of the node's EURange; the server refuses it for a node without one).
   */
  deadbandType: "absolute" | "percent";
}

export interface OpcuaDeviceConfig extends DeviceCommon {
  driver: "opcua";
  connection: {
    endpoint: string;
    securityMode: "None" | "Sign" | "SignAndEncrypt";
    securityPolicy: "None" | "Basic256Sha256" | "Aes128_Sha256_RsaOaep" | "Aes256_Sha256_RsaPss";
    username?: string;
    password?: string;
  };
  mode: "subscribe" | "poll";
  /** default 1000 */
  samplingMs: number;
  /** used when mode is poll; default 1000 */
  pollMs: number;
  /** server-side queue of each monitored item; default 10 */
  queueSize: number;
  /** bound of connect, createSession, read and write calls; default 5000 */
  timeoutMs: number;
  /**
   * Built, not written: `<gateway.dataDir>/pki`, the client's certificate store (own/, trusted/,
   * rejected/), shared by the OPC UA devices of one gateway.
   */
  pkiDir: string;
  /** Shared by the devices of one template: never mutate. */
  tags: readonly OpcuaTagConfig[];
}

export const OPCUA_DEFAULTS = { samplingMs: 1000, pollMs: 1000, mode: "subscribe", securityMode: "None", securityPolicy: "None", queueSize: 10, timeoutMs: 5000, deadbandType: "absolute" } as const;

export const NODE_ID_PATTERN = "^((ns=[0-9]+|nsu=[^;]+);)?[isgb]=.+$";

const POLICIES = ["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"];

const opcuaTag = obj(
  "An OPC UA tag",
  {
    ...tagCommonSchema,
    nodeId: str("NodeId of the variable, e.g. ns=2;s=Oven.Zone1.Temperature", { pattern: NODE_ID_PATTERN }),
    samplingMs: { type: "integer", minimum: 0, maximum: 86_400_000, description: "Sampling interval of this tag, overriding the device's (integer milliseconds; 0 = as fast as the server can)" },
    deadbandType: enumOf("How the server-side DataChangeFilter reads `deadband` (subscribe mode): absolute (raw units) or percent (of the node's EURange)", ["absolute", "percent"], "absolute"),
  },
  ["name", "nodeId"],
);

function checkDevice(d: Record<string, unknown>, segs: (string | number)[]): ConfigIssue[] {
  if (!isObj(d.connection)) return [];
  const issues: ConfigIssue[] = [];
  const c = d.connection;
  const cs = [...segs, "connection"];
  const endpoint = strOf(c.endpoint);
  if (endpoint !== undefined && endpoint !== "") {
    let ok = false;
    try {
      const u = new URL(endpoint);
      ok = u.protocol === "opc.tcp:" && u.hostname !== "";
    } catch {
      ok = false;
    }
    if (!ok) issues.push({ path: [...cs, "endpoint"], message: `found ${JSON.stringify(endpoint)}; allowed: opc.tcp://host:port[/path], e.g. opc.tcp://127.0.0.1:4840` });
  }
  const mode = strOf(c.securityMode) ?? "None";
  const policy = strOf(c.securityPolicy) ?? "None";
  if (mode === "None" && policy !== "None" && POLICIES.includes(policy)) {
    issues.push({ path: [...cs, c.securityMode !== undefined ? "securityMode" : "securityPolicy"], message: `securityPolicy ${policy} needs securityMode Sign or SignAndEncrypt (securityMode is ${c.securityMode === undefined ? "None by default" : "None"})` });
  } else if (mode !== "None" && policy === "None" && ["Sign", "SignAndEncrypt"].includes(mode)) {
    issues.push({ path: [...cs, c.securityPolicy !== undefined ? "securityPolicy" : "securityMode"], message: `securityMode ${mode} needs a securityPolicy other than None (securityPolicy is ${c.securityPolicy === undefined ? "None by default" : "None"}); allowed: Basic256Sha256 | Aes128_Sha256_RsaOaep | Aes256_Sha256_RsaPss` });
  }
  if (c.username !== undefined && mode === "None") issues.push({ path: [...cs, "username"], severity: "warning", message: "username with securityMode None: the password crosses the network in clear unless the server's user token policy encrypts it; prefer securityMode SignAndEncrypt" });
  if (c.password !== undefined && c.username === undefined) issues.push({ path: [...cs, "password"], message: "password without username; set username too (anonymous login uses neither)" });
  return issues;
}

export const opcuaConfig: DriverConfigPart<OpcuaDeviceConfig> = {
  name: "opcua",
  schema: {
    description: "An OPC UA server",
    properties: {
      connection: obj(
        "How to reach the OPC UA server",
        {
          endpoint: nonEmpty("Endpoint URL, opc.tcp://host:port[/path]"),
          securityMode: enumOf("Message security mode", ["None", "Sign", "SignAndEncrypt"], "None"),
          securityPolicy: enumOf(
            "Security policy; Basic128Rsa15 and Basic256 are refused (Node >= 20.11 disables RSA PKCS#1 v1.5, CVE-2023-46809)",
            POLICIES,
            "None",
          ),
          username: nonEmpty("User name; anonymous when absent"),
          password: str("Password of `username`"),
        },
        ["endpoint"],
      ),
      mode: enumOf("subscribe (monitored items) or poll (periodic reads every pollMs)", ["subscribe", "poll"], "subscribe"),
      samplingMs: { type: "integer", minimum: 0, maximum: 86_400_000, description: "Sampling interval of the subscription (integer milliseconds)", default: 1000 },
      pollMs: durationMs("Read period when mode is poll", 10, 1000),
      queueSize: { type: "integer", minimum: 1, maximum: 10_000, description: "Server-side queue size of each monitored item (subscribe mode)", default: 10 },
      timeoutMs: durationMs("Timeout of connect, createSession, read and write calls", 100, 5000),
      tags: { type: "array", minItems: 1, description: "Tags to read", items: opcuaTag },
    },
    required: ["connection", "tags"],
  },
  patterns: {
    [NODE_ID_PATTERN]: "an OPC UA NodeId such as ns=2;s=Oven.Zone1.Temperature, i=2258, ns=3;g=<guid> or ns=1;b=<base64>",
  },
  /** Security policies people still configure, and why they are refused. */
  refused: {
    securityPolicy: {
      Basic128Rsa15: "Basic128Rsa15 is deprecated and cannot work: Node >= 20.11 refuses RSA PKCS#1 v1.5 decryption (CVE-2023-46809); use Basic256Sha256 or Aes128_Sha256_RsaOaep",
      Basic256: "Basic256 is deprecated and cannot work: it needs RSA PKCS#1 v1.5, which Node >= 20.11 refuses (CVE-2023-46809); use Basic256Sha256 or Aes128_Sha256_RsaOaep",
    },
  },

  check: (devices) => devices.flatMap((d) => checkDevice(d.value, d.path)),

  builder: (ctx) => {
    // one built list per raw list: the devices of one template hand in the template's array
    const built = new Map<unknown[], readonly OpcuaTagConfig[]>();
    const tagsOf = (raw: unknown[]): readonly OpcuaTagConfig[] => {
      let list = built.get(raw);
      if (!list) {
        list = Object.freeze(raw.map((r) => {
          const t = objOf(r);
          const tag: OpcuaTagConfig = { ...buildTagCommon(t), nodeId: t.nodeId as string, deadbandType: or(t.deadbandType, OPCUA_DEFAULTS.deadbandType) };
          if (t.samplingMs !== undefined) tag.samplingMs = t.samplingMs as number;
          return tag;
        }));
        built.set(raw, list);
      }
      return list;
    };
    return (d, common) => {
      const c = objOf(d.connection);
      const connection: OpcuaDeviceConfig["connection"] = {
        endpoint: c.endpoint as string,
        securityMode: or(c.securityMode, OPCUA_DEFAULTS.securityMode),
        securityPolicy: or(c.securityPolicy, OPCUA_DEFAULTS.securityPolicy),
      };
      if (c.username !== undefined) connection.username = c.username as string;
      if (c.password !== undefined) connection.password = c.password as string;
      return {
        ...common,
        driver: "opcua",
        connection,
        mode: or(d.mode, OPCUA_DEFAULTS.mode),
        samplingMs: or(d.samplingMs, OPCUA_DEFAULTS.samplingMs),
        pollMs: or(d.pollMs, OPCUA_DEFAULTS.pollMs),
        queueSize: or(d.queueSize, OPCUA_DEFAULTS.queueSize),
        timeoutMs: or(d.timeoutMs, OPCUA_DEFAULTS.timeoutMs),
        pkiDir: join(ctx.dataDir, "pki"),
        tags: tagsOf(listOf(d.tags)),
      };
    };
  },
};
