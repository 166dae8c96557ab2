import { createServer, type Server, type Socket } from "node:net";
import { Aedes } from "aedes";

/**
 * An embedded MQTT broker standing in for the industrial cloud in `floorgate demo`, so the demo
 * needs no set-up. Loopback only, anonymous, in memory.
 */
export interface DemoBroker {
  url: string;
  port: number;
  /** messages the broker has received, for the demo's summary */
  received(): number;
  close(): Promise<void>;
}

export async function startDemoBroker(port: number, host = "127.0.0.1"): Promise<DemoBroker> {
  const broker = await Aedes.createBroker();
  let received = 0;
  broker.on("publish", (_packet, client) => { if (client) received++; });
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => undefined);
    broker.handle(sock);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => { server.off("error", reject); resolve(); });
    });
  } catch (err) {
    // The broker holds timers of its own: left open after a failed listen (port 1883 taken by a
    // plant's own Mosquitto), it kept the demo process alive after SIGTERM.
    await new Promise<void>((r) => broker.close(() => r()));
    throw err;
  }
  const addr = server.address();
  const actual = typeof addr === "object" && addr ? addr.port : port;
  return {
    url: `mqtt://${host}:${actual}`,
    port: actual,
    received: () => received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => broker.close(() => r()));
    },
  };
}
