/**
 * A child process of `npm run bench -- live`: holds many `/live` WebSocket clients (so that 10,000
 * of them fit under one process's descriptor limit, and their CPU is not the gateway's), and tells
 * the parent over IPC when each probe value (tag `t0`, a unique increasing number) arrived.
 *
 * argv: url, first client index, count, devices, allEvery (client i subscribes to everything when
 * i % allEvery === 0, else to device `dev-{i % devices}`), probe ("1": time the probe values;
 * otherwise only count frames, so that a process holding thousands of clients stays light and
 * the probe process's timestamps are not its backlog).
 * Parent → child: `{cmd:"stall"}` (one client subscribed to everything stops reading), `{cmd:"report"}` (→ arrivals since
 * the last report, messages, bytes, closes), `{cmd:"exit"}`.
 */
import { WebSocket } from "ws";
import type { Socket } from "node:net";

const [url, firstText, countText, devicesText, allEveryText, probeText] = process.argv.slice(2);
const timing = probeText === "1";
const first = Number(firstText);
const count = Number(countText);
const devices = Number(devicesText);
const allEvery = Number(allEveryText);

const now = (): number => performance.timeOrigin + performance.now();
/** (probe value, arrival time) pairs since the last report, flat */
let arrivals: number[] = [];
let messages = 0;
let bytes = 0;
const closes: Record<string, number> = {};
const sockets: WebSocket[] = [];
/** clients subscribed to everything: the one stalled is one of them (the most data to hold) */
const everything: WebSocket[] = [];
const MARK = '"tag":"t0","value":';

function probes(text: string, at: number): void {
  // The frames are JSON.stringify output in a fixed key order: find the probe tag without parsing
  // whole frames (a client process holds thousands of sockets).
  for (let i = text.indexOf(MARK); i >= 0; i = text.indexOf(MARK, i + MARK.length)) {
    const start = i + MARK.length;
    let end = start;
    while (end < text.length && text.charCodeAt(end) >= 48 && text.charCodeAt(end) <= 57) end++;
    if (end > start) arrivals.push(Number(text.slice(start, end)), at);
  }
}

/** Opens client `i`; a refused or failed handshake is retried twice (a loaded machine drops some). */
async function open(i: number): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await openOnce(i)) return;
    await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
  }
}

function openOnce(i: number): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url!, { perMessageDeflate: false, handshakeTimeout: 60_000 });
    ws.on("error", () => {});
    ws.once("open", () => {
      const sub = i % allEvery === 0 ? { type: "subscribe" } : { type: "subscribe", devices: [`dev-${i % devices}`] };
      ws.send(JSON.stringify(sub));
      sockets.push(ws);
      if (i % allEvery === 0) everything.push(ws);
      resolve(true);
    });
    ws.on("message", (data: Buffer) => {
      messages++;
      bytes += data.length;
      if (timing) probes(data.toString(), now());
    });
    ws.once("close", (code) => {
      closes[code] = (closes[code] ?? 0) + 1;
      resolve(false);
    });
  });
}

async function main(): Promise<void> {
  // At most 100 handshakes at a time: the gateway's listen backlog is finite.
  let next = 0;
  await Promise.all(Array.from({ length: 100 }, async () => {
    while (next < count) await open(first + next++);
  }));
  process.send!({ type: "ready", open: sockets.length });
  process.on("message", (m: { cmd: string }) => {
    if (m.cmd === "stall") {
      const ws = everything[0] ?? sockets[0]!;
      (ws as unknown as { _socket: Socket })._socket.pause();
      process.send!({ type: "stalled" });
    } else if (m.cmd === "report") {
      process.send!({ type: "report", arrivals, messages, bytes, closes, open: sockets.filter((s) => s.readyState === 1).length });
      arrivals = [];
      messages = 0;
      bytes = 0;
    } else if (m.cmd === "exit") {
      for (const s of sockets) s.terminate();
      process.exit(0);
    }
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
