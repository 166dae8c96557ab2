/**
 * The config of the embedded MQTT listener for devices (`ingest.mqtt`): where it listens, TLS
 * (`mqtts`, optionally with client certificates whose CN is the device id), and the two guards that
 * keep a reconnect storm from starving the journal and the pollers (a cap on open connections and
 * on new connections per second).
 */
import { resolve } from "node:path";
import type { BuildContext, IngestListenerConfigPart } from "../../core/plugin.js";
import { bool, hostPort, nonEmpty, obj, size } from "../../core/schema-kit.js";
import { parseSize } from "../../core/sizes.js";
import { checkTlsFiles, isObj, or } from "../../core/config-kit.js";
import { listenersClash, parseHostPort } from "../../core/net.js";

/** `ingest.mqtt` as built: defaults applied, TLS paths absolute. */
export interface IngestMqttConfig {
  listen: string;
  host: string;
  port: number;
  /** present: the listener speaks mqtts only */
  tls?: IngestMqttTls;
  /** open device connections at most; a connection past it is closed at once (default 25,000) */
  maxConnections: number;
  /** new TCP connections accepted per second, with a burst of one second's worth (default 1,000) */
  connectsPerSec: number;
  /**
   * messages (all connections) received and awaiting durability at most; past it no socket is
   * read until they fall to 3/4, then sockets are read again in slices (default 2,000: see MQTT_DEFAULTS)
   */
  maxInFlight: number;
  /** their payload bytes at most, the same way (default 64 MiB) */
  maxInFlightBytes: number;
}

export interface IngestMqttTls {
  cert: string;
  key: string;
  ca?: string;
  /** devices must present a certificate signed by `ca`; its CN is the device id (default false) */
  requireClientCert: boolean;
}

/**
 * `maxInFlight` is 2,000, not a memory-sized 50,000: a message read from a socket waits in the
 * gateway's heap until its commit, and reading further ahead than the journal commits in a few of
 * its cycles only moves the queue from the kernel's socket buffers into the heap, where every young
 * GC copies it again. Measured at saturation (1,000 devices × 8 publishes in flight, fsync every
 * 10 ms): 0.45 µs of CPU per value at 50,000, 0.37 at 2,000, 0.34 at 1,000; at 250 the journal
 * starves. 2,000 still lets 20,000 messages/s through a disk whose commit takes 100 ms.
 */
export const MQTT_DEFAULTS = { maxConnections: 25_000, connectsPerSec: 1_000, maxInFlight: 2_000, maxInFlightBytes: 64 * 2 ** 20 } as const;

/** Range of `maxInFlightBytes`: below a few payloads the listener would hold devices all the time. */
const IN_FLIGHT_BYTES = { min: 64 * 1024, max: 64 * 1024 ** 3 } as const;

export const ingestMqttConfig: IngestListenerConfigPart = {
  key: "mqtt",
  label: "an embedded MQTT listener",
  overRate: "MQTT disconnect",
  schema: obj("Embedded MQTT listener for devices (MQTT 3.1.1 and 5): they publish to devices/{deviceId}/telemetry with username = device id, password = token; omit to disable", {
    listen: hostPort("Listen address"),
    tls: obj("Serve mqtts (TLS) instead of plain MQTT", {
      cert: nonEmpty("Server certificate file (PEM), relative to the config file"),
      key: nonEmpty("Server private key file (PEM), relative to the config file"),
      ca: nonEmpty("CA certificate file (PEM) that signs device certificates, relative to the config file"),
      requireClientCert: bool("Devices must present a certificate signed by ca; its CN is the device id (no token needed)", false),
    }, ["cert", "key"]),
    maxConnections: {
      type: "integer", minimum: 1, maximum: 1000000, default: MQTT_DEFAULTS.maxConnections,
      description: "Open device connections at most; a connection past it is closed at once and counted (connection_limit)",
    },
    connectsPerSec: {
      type: "number", exclusiveMinimum: 0, default: MQTT_DEFAULTS.connectsPerSec,
      description: "New connections accepted per second (burst: one second's worth); more are closed at once and counted (connect_rate), so a reconnect storm cannot starve the journal or the pollers",
    },
    maxInFlight: {
      type: "integer", minimum: 1, maximum: 10000000, default: MQTT_DEFAULTS.maxInFlight,
      description: "Messages received from devices and awaiting the journal, all connections together, at most; past it the listener reads no socket (TCP slows the devices down) until a quarter of them are stored, then reads them again a slice at a time, so a journal that falls behind slows devices instead of growing memory",
    },
    maxInFlightBytes: size("Payload bytes received from devices and awaiting the journal, all connections together, at most; past it devices are held as at maxInFlight, so large payloads cannot fill memory", "64MiB"),
  }, ["listen"]),
  check(value, path, ctx) {
    if (!isObj(value)) return [];
    const issues = [];
    if (typeof value.listen === "string") {
      const hp = parseHostPort(value.listen);
      if (typeof hp === "string") issues.push({ path: [...path, "listen"], message: `found ${JSON.stringify(value.listen)}; ${hp}` });
      else if (ctx.httpListen && listenersClash(hp, ctx.httpListen)) {
        issues.push({ path: [...path, "listen"], message: `port ${hp.port} is already taken by http.listen; the device MQTT listener needs a port of its own` });
      }
    }
    const bytes = parseSize(value.maxInFlightBytes);
    if (bytes !== undefined && (bytes < IN_FLIGHT_BYTES.min || bytes > IN_FLIGHT_BYTES.max)) {
      issues.push({ path: [...path, "maxInFlightBytes"], message: `found ${JSON.stringify(value.maxInFlightBytes)} (${bytes} bytes); allowed: 64KiB to 64GiB` });
    }
    const tls = value.tls;
    if (isObj(tls)) {
      // cert and key are both required by the schema: its message says so, not the client-cert one
      issues.push(...checkTlsFiles(tls, [...path, "tls"], ctx.baseDir).filter((i) => !i.message.startsWith("cert and key go together")));
      if (tls.requireClientCert === true && tls.ca === undefined) {
        issues.push({ path: [...path, "tls", "requireClientCert"], message: "requireClientCert needs ca: the CA that signs the device certificates" });
      }
    }
    return issues;
  },
  build(value, ctx: BuildContext) {
    if (!isObj(value) || typeof value.listen !== "string") return undefined;
    const hp = parseHostPort(value.listen);
    if (typeof hp === "string") return undefined;
    const out: IngestMqttConfig = {
      listen: value.listen, host: hp.host, port: hp.port,
      maxConnections: or(value.maxConnections, MQTT_DEFAULTS.maxConnections),
      connectsPerSec: or(value.connectsPerSec, MQTT_DEFAULTS.connectsPerSec),
      maxInFlight: or(value.maxInFlight, MQTT_DEFAULTS.maxInFlight),
      maxInFlightBytes: parseSize(value.maxInFlightBytes) ?? MQTT_DEFAULTS.maxInFlightBytes,
    };
    const tls = value.tls;
    if (isObj(tls)) {
      const abs = (p: unknown): string => resolve(ctx.baseDir, p as string);
      out.tls = { cert: abs(tls.cert), key: abs(tls.key), requireClientCert: or(tls.requireClientCert, false) };
      if (tls.ca !== undefined) out.tls.ca = abs(tls.ca);
    }
    return out;
  },
};
