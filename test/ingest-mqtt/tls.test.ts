// mqtts with client certificates: the device id is the certificate's CN (no token needed); a
// device without a certificate never gets past the handshake (counted `tls`); a username that is
// not the CN is refused; what a certificate-authenticated device publishes reaches the cloud.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { makeTestPki, type TestPki } from "../helpers/certs.js";
import { metric } from "../helpers/gateway-process.js";
import { apiDevice, connectDevice, eventually, metricsText, startMqttSpine, valuesOf, type MqttSpine } from "./fixture.js";

/** The CN of test/helpers/certs.ts's client certificate. */
const CN = "floorgate-test-client";

describe("device MQTT listener over TLS with client certificates", () => {
  let pki: TestPki;
  let spine: MqttSpine;

  beforeAll(async () => {
    pki = await makeTestPki();
    spine = await startMqttSpine({
      scheme: "mqtts",
      mqttYaml: `tls: { cert: "${pki.serverCert}", key: "${pki.serverKey}", ca: "${pki.ca}", requireClientCert: true }`,
      ingestYaml: `devices:\n  - { id: "floorgate-*", token: unused-token }`,
    });
  });
  afterAll(async () => {
    await spine?.close();
    await pki?.cleanup();
  });

  const tls = (withCert: boolean): Record<string, unknown> => ({
    ca: readFileSync(pki.ca),
    ...(withCert ? { cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) } : {}),
  });

  it("takes the device id from the certificate's CN, stores its publishes and shows it online", async () => {
    const c = await connectDevice(spine.mqttUrl, { protocolVersion: 5, ...tls(true) });
    await c.publishAsync(`devices/${CN}/telemetry`, JSON.stringify({ msgId: "tls-1", values: { t: 31 } }), { qos: 1 });
    await spine.collector.until(() => valuesOf(spine.collector.messages, CN).includes(31));
    expect((await apiDevice(spine.gw, CN))?.state).toBe("online");
    await c.endAsync();
  });

  it("refuses a device without a certificate at the handshake, and a username that is not the CN", async () => {
    await expect(connectDevice(spine.mqttUrl, { username: CN, password: "unused-token", ...tls(false) })).rejects.toThrow();
    await eventually(() => metricsText(spine.gw), (t) => metric(t, "floorgate_ingest_rejects_total", { reason: "tls" }) >= 1, 5000, "tls refusal counted");
    await expect(connectDevice(spine.mqttUrl, { username: "floorgate-other", ...tls(true) })).rejects.toThrow(/Not authorized/);
    expect(metric(await metricsText(spine.gw), "floorgate_ingest_rejects_total", { reason: "forbidden" })).toBe(1);
    expect(await apiDevice(spine.gw, "floorgate-other")).toBeUndefined();
  });

  it("still checks a token if the device sends one", async () => {
    await expect(connectDevice(spine.mqttUrl, { username: CN, password: "wrong", ...tls(true) })).rejects.toThrow(/Bad username or password/);
    const ok = await connectDevice(spine.mqttUrl, { username: CN, password: "unused-token", ...tls(true) });
    await ok.endAsync();
  });
});
