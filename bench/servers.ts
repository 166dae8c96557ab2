import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A Mosquitto with its DEFAULT settings (Nagle on), as the issue asks the bench to measure against. */
export interface BenchBroker { url: string; port: number; start(): Promise<void>; stop(): Promise<void> }

export async function startBroker(): Promise<BenchBroker> {
  const dir = await mkdtemp(join(tmpdir(), "floorgate-bench-mosq-"));
  const port = await freePort();
  const conf = join(dir, "mosquitto.conf");
  await writeFile(conf, `user ${userInfo().username}\nlistener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n`);
  let child: ChildProcess | null = null;
  const url = `mqtt://127.0.0.1:${port}`;
  const b: BenchBroker = {
    url, port,
    async start() {
      child = spawn("/usr/sbin/mosquitto", ["-c", conf], { stdio: "ignore" });
      for (let i = 0; i < 200; i++) {
        const ok = await new Promise<boolean>((r) => {
          const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 1000 });
          c.on("connect", () => { c.end(true); r(true); });
          c.on("error", () => { c.end(true); r(false); });
          c.on("close", () => r(false));
        });
        if (ok) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error("mosquitto did not start");
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((r) => { c.once("exit", () => r()); c.kill("SIGTERM"); });
    },
  };
  await b.start();
  return b;
}
