import { createServer, type Server, type Socket } from "node:net";

/**
 * A loopback TCP port that was free a moment ago: the OS picks it (port 0), we release it and hand
 * it to a server that cannot take port 0 itself (Mosquitto). Another process may grab it in between;
 * the servers that use it fail loudly at bind time in that rare case.
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        srv.close();
        reject(new Error("freePort: no TCP address"));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Starts `server` on a port the OS picks on 127.0.0.1 and resolves with that port. */
export async function listenLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("listenLoopback: no TCP address");
  return addr.port;
}

/**
 * A loopback TCP server that accepts connections and reads whatever comes without ever answering:
 * the peer a driver's timeouts are tested against. `stop` destroys the open connections.
 */
export async function startSilentServer(): Promise<{ port: number; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on("data", () => undefined);
    s.on("error", () => undefined);
    s.on("close", () => sockets.delete(s));
  });
  const port = await listenLoopback(server);
  return { port, stop: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }) };
}
