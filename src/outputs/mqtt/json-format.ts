/**
 * The MQTT output's json format (spec §6), in three parts: planning a write into messages
 * (json-plan.ts), writing a message's payload bytes (json-writer.ts), and the topics and retained
 * status payloads (topics.ts).
 */
export { messageLength, planMessages, type TelemetryMessage } from "./json-plan.js";
export { TelemetryEncoder, cachedIn } from "./json-writer.js";
export { deviceStatusPayload, deviceStatusTopic, gatewayStatusPayload, gatewayStatusTopic, telemetryTopic } from "./topics.js";
