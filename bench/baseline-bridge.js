// The bare baseline for the e2e bench: a plain node:http server that parses the same ingest bodies
// and publishes one QoS 1 message per body with MQTT.js, no journal, no validation beyond JSON.parse.
import { createServer } from "node:http";
import mqtt from "mqtt";

const [port, url] = process.argv.slice(2);
const client = mqtt.connect(url, { clientId: `baseline-${process.pid}`, clean: true });
let acked = 0;
let batch = 0;
const server = createServer((req, res) => {
  if (req.method === "GET") { res.end(String(acked)); return; }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const msgs = JSON.parse(Buffer.concat(chunks).toString());
    const device = req.url.split("/").pop();
    const samples = [];
    const ts = new Date().toISOString();
    for (const m of Array.isArray(msgs) ? msgs : [msgs]) for (const [tag, value] of Object.entries(m.values)) samples.push({ tag, value, quality: "good", ts });
    const n = samples.length;
    client.publish(`baseline/${device}/telemetry`, JSON.stringify({ gateway: "baseline", device, batch: ++batch, samples }), { qos: 1 }, (err) => { if (!err) acked += n; });
    res.statusCode = 202;
    res.end();
  });
});
client.on("connect", () => server.listen(Number(port), "127.0.0.1"));
