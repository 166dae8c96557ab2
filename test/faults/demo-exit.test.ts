/**
 * `floorgate demo` as a new user runs it: it stops on SIGTERM within a few seconds and leaves no
 * temp folder behind — also when port 1883 is already taken (a plant engineer's own Mosquitto),
 * where the embedded broker once stayed open and the process never exited. Each run gets a TMPDIR
 * of its own, so "nothing left behind" is checked on exactly what this demo created. The cases
 * run in order in this one file: only one of them at a time may take or free port 1883.
 */
import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../helpers/ports.js";
import { http } from "../helpers/gateway-process.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "floorgate");

interface Demo {
  child: ChildProcess;
  out: string[];
  /** resolves with the exit code */
  exited: Promise<number | null>;
}

function startDemo(tmp: string, args: string[]): Demo {
  const child = spawn(process.execPath, [BIN, "demo", "--devices", "2", ...args], {
    env: { ...process.env, TMPDIR: tmp, FLOORGATE_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out: string[] = [];
  child.stdout!.on("data", (d: Buffer) => out.push(d.toString()));
  child.stderr!.on("data", (d: Buffer) => out.push(d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, out, exited };
}

/** Waits for the banner (the demo is fully up), failing fast if the process exits first. */
async function untilRunning(demo: Demo, ms = 30_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = demo.out.join("");
    if (text.includes("Ctrl-C stops it.")) return text;
    if (demo.child.exitCode !== null) throw new Error(`demo exited with ${demo.child.exitCode} before running:\n${text}`);
    if (Date.now() > deadline) throw new Error(`demo not running within ${ms} ms:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, then the exit code and how long the exit took; a demo that hangs is killed and fails. */
async function stop(demo: Demo, limitMs = 10_000): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  demo.child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<"hung">((r) => { timer = setTimeout(() => r("hung"), limitMs); });
  const code = await Promise.race([demo.exited, hung]);
  clearTimeout(timer);
  if (code === "hung") {
    demo.child.kill("SIGKILL");
    await demo.exited;
    throw new Error(`demo still running ${limitMs} ms after SIGTERM:\n${demo.out.join("")}`);
  }
  return { code, ms: Date.now() - t0 };
}

function listen(port: number, host = "127.0.0.1"): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer((sock) => sock.destroy());
    s.once("error", reject);
    s.listen(port, host, () => resolve(s));
  });
}

describe("floorgate demo", () => {
  let tmp: string;
  let demo: Demo | undefined;
  beforeEach(async () => { tmp = await mkdtemp(join(tmpdir(), "floorgate-demo-test-")); });
  afterEach(async () => {
    if (demo && demo.child.exitCode === null && demo.child.signalCode === null) {
      demo.child.kill("SIGKILL");
      await demo.exited;
    }
    demo = undefined;
    await rm(tmp, { recursive: true, force: true });
  });

  it("stops on SIGTERM and removes its temp journal", async () => {
    const port = await freePort();
    demo = startDemo(tmp, ["--port", String(port)]);
    const banner = await untilRunning(demo);
    const dir = /journals it in (\S+)/.exec(banner)?.[1];
    expect(dir?.startsWith(join(tmp, "floorgate-demo-"))).toBe(true);
    expect(await readdir(tmp)).toHaveLength(1); // the journal is where the banner says, while it runs
    expect((await http("GET", `http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const { code, ms } = await stop(demo);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5000);
    expect(await readdir(tmp)).toEqual([]);
  });

  it("with port 1883 already taken: runs on another port, stops on SIGTERM, leaves nothing behind", async () => {
    // Take 1883 unless something on this machine already holds it (then it is taken all the same).
    let holder: Server | undefined;
    try {
      holder = await listen(1883);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    }
    try {
      const port = await freePort();
      demo = startDemo(tmp, ["--port", String(port)]);
      const banner = await untilRunning(demo);
      const brokerUrl = /embedded MQTT broker at (mqtt:\/\/\S+)/.exec(banner)?.[1];
      expect(brokerUrl).toBeDefined();
      expect(new URL(brokerUrl!).port).not.toBe("1883");
      expect((await http("GET", `http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      const { code, ms } = await stop(demo);
      expect(code).toBe(0);
      expect(ms).toBeLessThan(5000);
      expect(await readdir(tmp)).toEqual([]);
    } finally {
      await new Promise<void>((r) => (holder ? holder.close(() => r()) : r()));
    }
  });

  it("that cannot start (its HTTP port taken) exits 2 by itself and leaves nothing behind", async () => {
    const port = await freePort();
    const taken = await listen(port);
    try {
      demo = startDemo(tmp, ["--port", String(port)]);
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([demo.exited, new Promise<"hung">((r) => { timer = setTimeout(() => r("hung"), 20_000); })]);
      clearTimeout(timer);
      expect(code, demo.out.join("")).toBe(2);
      expect(demo.out.join("")).toMatch(/floorgate demo: cannot start/);
      expect(await readdir(tmp)).toEqual([]);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });
});
