/**
 * A fleet of MQTT.js devices in a process of its own (so their load does not distort the timing of
 * the Modbus servers in the test process). Driven over IPC:
 *   → {cmd:"start"}  connects every device; ← {type:"connected", ms}
 *   → {cmd:"cut"}    destroys every device's socket at once (a cell outage); ← {type:"back", ms} once all are reconnected
 *   → {cmd:"stop"}   stops publishing, waits for in-flight publishes; ← {type:"acked", acked: {id: values[]}, inflight}
 * Each connected device publishes one QoS 1 message with a msgId every `periodMs`.
 *
 * usage: node --import tsx fleet-child.ts URL COUNT TOKEN PERIOD_MS
 */
import mqtt, { type MqttClient } from "mqtt";

const [url, countText, token, periodText] = process.argv.slice(2);
const count = Number(countText);
const periodMs = Number(periodText);
const send = (m: unknown): void => { process.send?.(m); };

interface Dev { id: string; client: MqttClient; acked: number[]; seq: number }
const devs: Dev[] = [];
let publishing = false;
let timer: NodeJS.Timeout | undefined;

function connectAll(): Promise<void> {
  return new Promise((resolve) => {
    let pending = count;
    for (let i = 0; i < count; i++) {
      const id = `fleet-${i}`;
      const client = mqtt.connect(url!, {
        username: id, password: token, clientId: id, protocolVersion: i % 2 === 0 ? 4 : 5,
        // MQTT.js's fixed reconnect period (no backoff): spread a little per device, as real fleets are
        reconnectPeriod: 300 + (i % 7) * 50, connectTimeout: 5000, keepalive: 30,
      });
      client.on("error", () => undefined);
      const d: Dev = { id, client, acked: [], seq: 0 };
      devs.push(d);
      client.once("connect", () => { if (--pending === 0) resolve(); });
    }
  });
}

function tick(slot: number, slots: number): void {
  if (!publishing) return;
  for (let i = slot; i < devs.length; i += slots) {
    const d = devs[i]!;
    if (!d.client.connected) continue; // never publish while disconnected: MQTT.js resends what is in flight
    const v = d.seq++;
    d.client.publish(`devices/${d.id}/telemetry`, JSON.stringify({ msgId: `${d.id}-${v}`, values: { v } }), { qos: 1 }, (err) => {
      if (!err) d.acked.push(v);
    });
  }
}

process.on("message", (m: { cmd: string }) => {
  void (async () => {
    if (m.cmd === "start") {
      const t0 = Date.now();
      await connectAll();
      publishing = true;
      // each device on its own phase of the period, as a real fleet is (not all in one burst)
      const slots = 20;
      let slot = 0;
      timer = setInterval(() => { tick(slot, slots); slot = (slot + 1) % slots; }, periodMs / slots);
      send({ type: "connected", ms: Date.now() - t0 });
    } else if (m.cmd === "cut") {
      const t0 = Date.now();
      const back = devs.map((d) => new Promise<void>((r) => d.client.once("connect", () => r())));
      for (const d of devs) d.client.stream.destroy();
      await Promise.all(back);
      send({ type: "back", ms: Date.now() - t0 });
    } else if (m.cmd === "stop") {
      publishing = false;
      if (timer) clearInterval(timer);
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && devs.some((d) => Object.keys(d.client.outgoing).length > 0)) await new Promise((r) => setTimeout(r, 50));
      const inflight = devs.reduce((n, d) => n + Object.keys(d.client.outgoing).length, 0);
      send({ type: "acked", acked: Object.fromEntries(devs.map((d) => [d.id, d.acked])), inflight });
      await Promise.all(devs.map((d) => d.client.endAsync(true)));
      process.exit(0);
    }
  })();
});
send({ type: "ready" });
