/**
 * The config rules of the MQTT output's Sparkplug B format (spec §6 "sparkplug-b"): its own key
 * (`primaryHostId`), QoS 0 by default (Sparkplug 3.0 data), and which keys belong to which format.
 * The session is sparkplug-output.ts.
 */
import { nonEmpty } from "../../core/schema-kit.js";
import { strOf } from "../../core/config-kit.js";
import type { ConfigIssue } from "../../core/plugin.js";
import type { MqttFormatPart } from "./config.js";

export const sparkplugFormat: MqttFormatPart = {
  name: "sparkplug-b",
  defaultQos: 0,
  properties: {
    primaryHostId: nonEmpty("Sparkplug primary host id (sparkplug-b only): publish only while its STATE is online"),
  },
  check(o, path, format) {
    const issues: ConfigIssue[] = [];
    if (o.topicPrefix !== undefined && format === "sparkplug-b") {
      issues.push({ path: [...path, "topicPrefix"], message: "topicPrefix is for format json only; Sparkplug B topics are spBv1.0/{gateway.group}/…", atKey: true });
    }
    if (o.primaryHostId !== undefined && format === "json") {
      issues.push({ path: [...path, "primaryHostId"], message: "primaryHostId is for format sparkplug-b only", atKey: true });
    }
    const host = strOf(o.primaryHostId);
    if (host !== undefined && /[/+#]/.test(host)) issues.push({ path: [...path, "primaryHostId"], message: `found ${JSON.stringify(host)}; a Sparkplug host id cannot contain / + or #` });
    return issues;
  },
  build(o, out) {
    if (o.primaryHostId !== undefined) out.primaryHostId = o.primaryHostId as string;
  },
};
