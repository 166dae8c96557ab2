/**
 * The bare baseline of `npm run bench -- live`: a plain `ws` server (no gateway) that sends one
 * samples-sized frame to every client every 100 ms, as the feed would with nothing to filter.
 * argv: port. IPC: `{cmd:"frames"}` → `{type:"frames", messages}` (frames sent so far).
 */
import { WebSocketServer } from "ws";

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ port, host: "127.0.0.1", perMessageDeflate: false });
wss.on("connection", (ws) => ws.on("error", () => {}));
const samples = Array.from({ length: 10 }, (_, i) => ({ device: "dev-1", tag: `t${i + 1}`, value: 123.4, quality: "good", ts: new Date().toISOString() }));
const frame = Buffer.from(JSON.stringify({ type: "samples", samples }));
let messages = 0;
setInterval(() => {
  for (const c of wss.clients) {
    c.send(frame, { binary: false });
    messages++;
  }
}, 100);
wss.on("listening", () => process.send!({ type: "listening" }));
process.on("message", (m: { cmd: string }) => {
  if (m.cmd === "frames") process.send!({ type: "frames", messages });
});
