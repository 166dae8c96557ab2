/**
 * The bare baseline of the MQTT ingest bench: an aedes broker on a plain net server taking the
 * same devices and messages as the gateway's listener, with no journal. Like the HTTP baseline
 * (baseline-bridge.js) it does the least a real receiver must: check the password and JSON.parse
 * each payload (counting its values), then lets aedes send the PUBACK. Nothing subscribes.
 *
 * Usage: node mqtt-ingest-aedes.js <port> <token>; prints "listening" once it accepts, then on
 * SIGTERM exits after printing `{"values":n,"publishes":n}`.
 */
import { createServer, type Socket } from "node:net";
import { Aedes } from "aedes";

const [portArg, token] = process.argv.slice(2);
const broker = await Aedes.createBroker({
  authenticate(_client, username, password, done) {
    done(null, username !== undefined && password !== undefined && password.toString() === token);
  },
  authorizePublish(client, packet, done) {
    try {
      const body: unknown = JSON.parse(packet.payload.toString());
      for (const m of Array.isArray(body) ? body : [body]) values += Object.keys((m as { values: object }).values).length;
      publishes++;
      done(client !== null && packet.topic === `devices/${client.id}/telemetry` ? null : new Error("not your topic"));
    } catch (err) {
      done(err as Error);
    }
  },
});
let values = 0;
let publishes = 0;
const sockets = new Set<Socket>();
const server = createServer((sock) => {
  sockets.add(sock);
  sock.on("close", () => sockets.delete(sock));
  sock.on("error", () => undefined);
  broker.handle(sock);
});
server.maxConnections = 20_000;
server.listen(Number(portArg), "127.0.0.1", () => process.stdout.write("listening\n"));
process.on("SIGTERM", () => {
  process.stdout.write(`${JSON.stringify({ values, publishes })}\n`);
  for (const s of sockets) s.destroy();
  server.close();
  broker.close(() => process.exit(0));
});
