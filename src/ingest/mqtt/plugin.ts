/**
 * The device MQTT listener as an ingest listener plugin: its config part (`ingest.mqtt`) and how
 * the runtime starts it. Listed in src/plugins/ingest.ts.
 */
import type { IngestListenerPlugin } from "../listener.js";
import { ingestMqttConfig, type IngestMqttConfig } from "./config.js";
import { startMqttListener } from "./listener.js";

export const mqttListenerPlugin: IngestListenerPlugin<IngestMqttConfig> = {
  ...ingestMqttConfig,
  folder: "src/ingest/mqtt",
  start: (cfg, ctx) => startMqttListener(cfg, ctx),
};
