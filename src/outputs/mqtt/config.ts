/**
 * The MQTT output's config: its type, schema fragment, checks and defaults. Payload formats are
 * parts of their own (`MqttFormatPart`): `json` here, Sparkplug B's keys and rules in
 * sparkplug-config.ts.
 */
import { resolve } from "node:path";
import type { ConfigIssue, ConfigPath, JsonSchema, OutputConfigPart, RawObject } from "../../core/plugin.js";
import { enumOf, nonEmpty, str, tlsFilesSchema } from "../../core/schema-kit.js";
import { checkTlsFiles, checkUrl, or, strOf } from "../../core/config-kit.js";
import { formatPath } from "../../core/config-paths.js";
import { sparkplugFormat } from "./sparkplug-config.js";

export interface TlsFiles {
  /** absolute paths (the builder resolves them against the config file) */
  ca?: string;
  cert?: string;
  key?: string;
}

export interface MqttOutputConfig extends TlsFiles {
  type: "mqtt";
  name: string;
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  format: "json" | "sparkplug-b";
  topicPrefix: string;
  /** sparkplug-b only */
  primaryHostId?: string;
  qos: 0 | 1;
  maxBatch: number;
}

export const MQTT_DEFAULTS = { maxBatch: 500, format: "json" } as const;

/** A payload format of the MQTT output: its name, its own keys and their rules. */
export interface MqttFormatPart {
  readonly name: MqttOutputConfig["format"];
  /** qos when the output does not set one */
  readonly defaultQos: 0 | 1;
  /** keys only this format has; they follow topicPrefix in the schema */
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  /** checks of any MQTT output whose format is one of the composed formats (raw data: guard everything) */
  check?(o: RawObject, path: ConfigPath, format: string): ConfigIssue[];
  /** copies this format's keys from a valid raw output */
  build?(o: RawObject, out: MqttOutputConfig): void;
}

export const jsonFormat: MqttFormatPart = { name: "json", defaultQos: 1 };

/** The MQTT output's config half for a set of formats (the build: json and sparkplug-b). */
export function mqttConfigFor(formats: readonly MqttFormatPart[]): OutputConfigPart<MqttOutputConfig> {
  return {
    name: "mqtt",
    schema: {
      description: "Forward to an MQTT broker",
      properties: {
        url: nonEmpty("Broker URL: mqtt://, mqtts://, ws:// or wss://"),
        clientId: str("MQTT client id; default: gateway.id", { minLength: 1, maxLength: 256 }),
        username: str("User name"),
        password: str("Password"),
        ...tlsFilesSchema,
        format: enumOf("Payload format", formats.map((f) => f.name), "json"),
        topicPrefix: nonEmpty("Topic prefix (json only); default floorgate/{gateway.id}"),
        ...Object.assign({}, ...formats.map((f) => f.properties ?? {})) as Record<string, JsonSchema>,
        qos: enumOf(`QoS of data messages; default ${formats.map((f) => `${f.defaultQos} for ${f.name}`).join(" and ")}`, [0, 1]),
        maxBatch: { type: "integer", minimum: 1, maximum: 100000, description: "Samples per message", default: 500 },
      },
      required: ["url"],
    },

    check(outputs, ctx) {
      const issues: ConfigIssue[] = [];
      const seenClients = new Map<string, ConfigPath>();
      for (const { value: o, path } of outputs) {
        const url = strOf(o.url);
        if (url !== undefined) issues.push(...checkUrl(url, ["mqtt:", "mqtts:", "ws:", "wss:"], [...path, "url"]));
        const format = strOf(o.format) ?? "json";
        for (const f of formats) if (f.check) issues.push(...f.check(o, path, format));
        const prefix = strOf(o.topicPrefix);
        if (prefix !== undefined && prefix !== "" && (/[+#\u0000]/.test(prefix) || prefix.endsWith("/") || prefix.includes("//"))) {
          issues.push({ path: [...path, "topicPrefix"], message: `found ${JSON.stringify(prefix)}; allowed: topic levels separated by / with no wildcards (+ #), no empty level and no trailing /` });
        }
        issues.push(...checkTlsFiles(o, path, ctx.baseDir));
        // A broker disconnects one of two clients with one id: both outputs would flap forever.
        const clientId = strOf(o.clientId) ?? ctx.gatewayId;
        if (url === undefined || clientId === undefined) continue;
        let broker: string | undefined;
        try {
          const u = new URL(url);
          broker = `${u.hostname}:${u.port}`;
        } catch {
          broker = undefined;
        }
        if (broker === undefined) continue;
        const k = `${broker} ${clientId}`;
        const first = seenClients.get(k);
        const idPath: ConfigPath = o.clientId !== undefined ? [...path, "clientId"] : [...path, "url"];
        if (first) issues.push({ path: idPath, message: `client id "${clientId}" is already used on the same broker by ${formatPath(first.slice(0, 2))}; a broker disconnects one of two clients with one id, so set a different clientId` });
        else seenClients.set(k, idPath);
      }
      return issues;
    },

    builder: (ctx) => (o, common) => {
      const format = or<MqttOutputConfig["format"]>(o.format, MQTT_DEFAULTS.format);
      const part = formats.find((f) => f.name === format);
      const out: MqttOutputConfig = {
        ...common,
        type: "mqtt",
        url: o.url as string,
        clientId: or(o.clientId, ctx.gatewayId),
        format,
        topicPrefix: or(o.topicPrefix, `floorgate/${ctx.gatewayId}`),
        qos: or(o.qos, part?.defaultQos ?? 1),
        maxBatch: or(o.maxBatch, MQTT_DEFAULTS.maxBatch),
      };
      if (o.username !== undefined) out.username = o.username as string;
      if (o.password !== undefined) out.password = o.password as string;
      for (const f of formats) f.build?.(o, out);
      for (const k of ["ca", "cert", "key"] as const) {
        if (typeof o[k] === "string") out[k] = resolve(ctx.baseDir, o[k] as string);
      }
      return out;
    },
  };
}

/** The MQTT output's config half as built: json and sparkplug-b. */
export const mqttConfig = mqttConfigFor([jsonFormat, sparkplugFormat]);
