/**
 * The config of the InfluxDB 1.x output: type, schema fragment, checks, defaults (spec §2). The
 * descriptor (plugin.ts) spreads it.
 */
import type { ConfigIssue, OutputConfigPart } from "../../core/plugin.js";
import { nonEmpty, str } from "../../core/schema-kit.js";
import { checkUrl, or, strOf } from "../../core/config-kit.js";

export interface InfluxOutputConfig {
  type: "influx";
  name: string;
  url: string;
  database: string;
  retentionPolicy?: string;
  username?: string;
  password?: string;
  /** default 5000 */
  maxBatch: number;
}

export const INFLUX_DEFAULTS = { maxBatch: 5000 } as const;

export const influxConfig: OutputConfigPart<InfluxOutputConfig> = {
  name: "influx",
  schema: {
    description: "Forward to InfluxDB 1.x",
    properties: {
      url: nonEmpty("InfluxDB URL: http:// or https://"),
      database: nonEmpty("Database, created when missing"),
      retentionPolicy: nonEmpty("Retention policy"),
      username: str("User name"),
      password: str("Password"),
      maxBatch: { type: "integer", minimum: 1, maximum: 100000, description: "Points per write", default: 5000 },
    },
    required: ["url", "database"],
  },
  check: (outputs) => {
    const issues: ConfigIssue[] = [];
    for (const { value: o, path } of outputs) {
      const url = strOf(o.url);
      if (url !== undefined) issues.push(...checkUrl(url, ["http:", "https:"], [...path, "url"]));
    }
    return issues;
  },
  builder: () => (o, common) => {
    const out: InfluxOutputConfig = { ...common, type: "influx", url: o.url as string, database: o.database as string, maxBatch: or(o.maxBatch, INFLUX_DEFAULTS.maxBatch) };
    if (o.retentionPolicy !== undefined) out.retentionPolicy = o.retentionPolicy as string;
    if (o.username !== undefined) out.username = o.username as string;
    if (o.password !== undefined) out.password = o.password as string;
    return out;
  },
};
