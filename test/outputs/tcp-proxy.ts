import { createServer, connect, type Socket } from "node:net";
import { listenLoopback } from "../helpers/ports.js";

/**
 * A loopback TCP proxy between an output and its broker, for network faults Mosquitto cannot stage
 * alone: `cut()` destroys every connection abruptly (no DISCONNECT, so the broker fires the will),
 * `blackhole(true)` swallows client→server bytes (publishes that never arrive, never acked).
 */
export interface TcpProxy {
  port: number;
  readonly connections: number;
  cut(): void;
  blackhole(on: boolean): void;
  close(): Promise<void>;
}

/**
 * Opens the upstream side for an accepted client socket `down` and ties the two: either one
 * ending or failing destroys both and removes the pair from `pairs`. Returns the upstream socket.
 */
export function connectPair(down: Socket, targetPort: number, targetHost: string, pairs: Set<[Socket, Socket]>): Socket {
  const up = connect(targetPort, targetHost);
  const pair: [Socket, Socket] = [down, up];
  pairs.add(pair);
  const end = (): void => { pairs.delete(pair); down.destroy(); up.destroy(); };
  down.on("error", end).on("close", end);
  up.on("error", end).on("close", end);
  return up;
}

export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let holeOn = false;
  const server = createServer((down) => {
    const up = connectPair(down, targetPort, targetHost, pairs);
    down.on("data", (chunk: Buffer) => { if (!holeOn) up.write(chunk); });
    up.pipe(down);
  });
  const port = await listenLoopback(server);
  return {
    port,
    get connections() { return pairs.size; },
    cut: () => {
      for (const [down, up] of [...pairs]) {
        down.resetAndDestroy();
        up.resetAndDestroy();
      }
      pairs.clear();
    },
    blackhole: (on) => { holeOn = on; },
    close: () => new Promise<void>((resolve) => {
      for (const [down, up] of pairs) { down.destroy(); up.destroy(); }
      server.close(() => resolve());
    }),
  };
}
