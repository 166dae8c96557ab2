/**
 * The config of the coming embedded MQTT listener for devices (`ingest.mqtt`). Config only: the
 * listener is not built yet, so the build's schema has no `ingest.mqtt` (the shipping `validate`
 * refuses it). Tests compose it in (test/unit/config-planned.ts) so its rules stay tested.
 */
import type { IngestListenerConfigPart } from "../../core/plugin.js";
import { hostPort, obj } from "../../core/schema-kit.js";
import { isObj } from "../../core/config-kit.js";
import { listenersClash, parseHostPort } from "../../core/net.js";

export const ingestMqttConfig: IngestListenerConfigPart = {
  key: "mqtt",
  label: "an embedded MQTT listener",
  overRate: "MQTT disconnect",
  schema: obj("Embedded MQTT listener for devices; omit to disable", { listen: hostPort("Listen address") }, ["listen"]),
  check(value, path, ctx) {
    if (!isObj(value) || typeof value.listen !== "string") return [];
    const hp = parseHostPort(value.listen);
    if (typeof hp === "string") return [{ path: [...path, "listen"], message: `found ${JSON.stringify(value.listen)}; ${hp}` }];
    if (ctx.httpListen && listenersClash(hp, ctx.httpListen)) {
      return [{ path: [...path, "listen"], message: `port ${hp.port} is already taken by http.listen; the device MQTT listener needs a port of its own` }];
    }
    return [];
  },
  build(value) {
    if (!isObj(value) || typeof value.listen !== "string") return undefined;
    const hp = parseHostPort(value.listen);
    return typeof hp === "string" ? undefined : { listen: value.listen, host: hp.host, port: hp.port };
  },
};
