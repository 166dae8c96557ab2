import { createServer, connect, type Socket } from "node:net";
import { listenLoopback } from "./ports.js";

/**
 * A loopback TCP proxy between a client (an output, a driver) and its server, for network faults a
 * server cannot stage alone: `cut()` destroys every connection abruptly with a RST (no DISCONNECT,
 * so an MQTT broker fires the will), `blackhole(true)` swallows client→server bytes on every
 * connection, old and new (requests that never arrive, never answered; no RST: a half-open link).
 */
export interface TcpProxy {
  port: number;
  /** Connection pairs open now. */
  readonly connections: number;
  /** Client connections accepted since the start (a reconnect attempt shows here even in a black hole). */
  readonly accepted: number;
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
  let accepted = 0;
  const server = createServer((down) => {
    accepted++;
    const up = connectPair(down, targetPort, targetHost, pairs);
    down.on("data", (chunk: Buffer) => { if (!holeOn) up.write(chunk); });
    up.pipe(down);
  });
  const port = await listenLoopback(server);
  return {
    port,
    get connections() { return pairs.size; },
    get accepted() { return accepted; },
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
