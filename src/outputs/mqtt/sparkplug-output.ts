import type { MqttOutputConfig } from "./config.js";
import { FloorgateError } from "../../core/errors.js";
import { safeUrl } from "../../core/logger.js";
import type { Output, OutputContext, OutputSession } from "../../core/output.js";
import { classifyConnectError, openClient, type MqttTiming } from "./client.js";
import { windowOf, type PublishWindowOptions } from "./publish-window.js";
import { EdgeNode, sparkplugTopic } from "./sparkplug-model.js";
import { encodeNDeath } from "./sparkplug-payloads.js";
import { SparkplugSession } from "./sparkplug-session.js";

/** Options of the sparkplug-b format: its publish window and timing (publish-window.ts). */
export type MqttSparkplugOutputOptions = PublishWindowOptions;

/** The MQTT output's Sparkplug B format (spec §6 "sparkplug-b"): one fresh MQTT.js client per session. */
export function createMqttSparkplugOutput(
  cfg: MqttOutputConfig,
  gateway: { id: string; group: string },
  options: MqttSparkplugOutputOptions = {},
): Output {
  const { maxInFlight, maxMessagesInFlight, writeSamples, timing } = windowOf(cfg, options);
  const where = `mqtt output "${cfg.name}" (${safeUrl(cfg.url)}, sparkplug-b)`;
  const node = new EdgeNode(gateway.group, gateway.id);
  return {
    name: cfg.name,
    type: "mqtt",
    maxBatch: Math.max(cfg.maxBatch, writeSamples),
    maxInFlight,
    connect: (ctx) => connectSession(cfg, node, timing, maxMessagesInFlight, where, ctx),
  };
}

async function connectSession(
  cfg: MqttOutputConfig,
  node: EdgeNode,
  timing: MqttTiming,
  maxMessages: number,
  where: string,
  ctx: OutputContext,
): Promise<OutputSession> {
  // A fresh bdSeq per connection, in the will registered with it and in its NBIRTHs.
  const bdSeq = node.bdSeq.next();
  const will = { topic: sparkplugTopic(node.group, "NDEATH", node.id), payload: encodeNDeath(bdSeq, Date.now()), retain: false };
  const { client, errors } = await openClient(cfg, will, timing, where, ctx);
  const session = new SparkplugSession(client, cfg, node, bdSeq, timing, maxMessages, where, ctx, errors);
  try {
    await session.start(ctx.signal);
  } catch (err) {
    session.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err instanceof FloorgateError ? err : classifyConnectError(err, where);
  }
  ctx.log.info({ broker: safeUrl(cfg.url), bdSeq, primaryHostId: cfg.primaryHostId ?? null }, "mqtt output connected (sparkplug-b)");
  return session;
}

