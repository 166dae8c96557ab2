import { spawn, execFile, type ChildProcess } from "node:child_process";
import { access, mkdtemp, rm, writeFile, constants } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import mqtt from "mqtt";
import { freePort } from "./ports.js";
import { waitStopped } from "./stopped.js";

const MOSQUITTO = "/usr/sbin/mosquitto";
const MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd";
const READY_TIMEOUT_MS = 10_000;

/** Brokers still running, killed when the test process exits so a crashed test leaves no orphans. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackForExit(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const c of live) c.kill("SIGKILL");
    });
  }
}

export interface MosquittoOptions {
  /** Serve mqtts with these PEM files; `requireCertificate` turns on client-cert auth. */
  tls?: { ca: string; cert: string; key: string; requireCertificate?: boolean };
  /** Listen on this port instead of a free one. */
  port?: number;
  /** Refuse anonymous clients; only this user may connect (via a `mosquitto_passwd` file). */
  auth?: { username: string; password: string };
  /** Extra mosquitto.conf lines. */
  extraConfig?: string[];
}

/** A Mosquitto broker owned by a test. `stop` then `start` keeps the port, so outages can be staged. */
export interface MosquittoBroker {
  /** mqtt://127.0.0.1:port or mqtts://localhost:port (Debian's Mosquitto 2.0.11 cannot open websockets listeners here) */
  url: string;
  port: number;
  /** Log lines the broker wrote (stdout+stderr), newest last, for failure messages. */
  readonly log: string[];
  /** The running broker's process id (benches read its CPU from /proc); undefined while stopped. */
  readonly pid: number | undefined;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** Starts again on the same port and waits until a client can connect. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** SIGKILL and wait for exit: connections die without DISCONNECT. */
  kill(): Promise<void>;
  /**
   * SIGSTOP: sockets stay open but nothing is answered (a hung broker / black-holed network).
   * Returns once the broker is really stopped (/proc state T), not when the signal was sent.
   */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
  /** Stops the broker and removes its temp dir. */
  dispose(): Promise<void>;
}

/**
 * The broker the benchmarks measure against: Mosquitto's default settings (Nagle on, as a plant's
 * broker runs), but no limit on the messages queued per client (default 1000), so that a
 * subscriber falling behind under load is measured rather than dropped from.
 */
export function startBenchBroker(): Promise<MosquittoBroker> {
  return startMosquitto({ extraConfig: ["max_queued_messages 0"] });
}

/**
 * Spawns `/usr/sbin/mosquitto -c <tmp conf>` on a loopback port and resolves once an MQTT client
 * has actually connected to it. Throws loudly when the binary is missing: tests must fail, never skip.
 */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<MosquittoBroker> {
  try {
    await access(MOSQUITTO, constants.X_OK);
  } catch (err) {
    throw new Error(`${MOSQUITTO} is missing: install the Debian package "mosquitto" to run these tests`, { cause: err });
  }
  const dir = await mkdtemp(join(tmpdir(), "floorgate-mosq-"));
  const port = opts.port ?? (await freePort());
  const conf: string[] = [
    // Mosquitto started as root drops to user "mosquitto", which cannot read our temp dir.
    `user ${userInfo().username}`,
    "per_listener_settings false",
    "persistence false",
    "log_dest stdout",
    "log_type error",
    "log_type warning",
    "log_type notice",
    "log_type information",
    "connection_messages true",
    `listener ${port} 127.0.0.1`,
  ];
  if (opts.tls) {
    conf.push(`cafile ${opts.tls.ca}`, `certfile ${opts.tls.cert}`, `keyfile ${opts.tls.key}`);
    if (opts.tls.requireCertificate) conf.push("require_certificate true");
  }
  if (opts.auth) {
    const pwFile = join(dir, "passwd");
    await writeFile(pwFile, "", { mode: 0o600 });
    try {
      await promisify(execFile)(MOSQUITTO_PASSWD, ["-b", pwFile, opts.auth.username, opts.auth.password]);
    } catch (err) {
      throw new Error(`${MOSQUITTO_PASSWD} failed: ${(err as Error).message}`, { cause: err });
    }
    conf.push("allow_anonymous false", `password_file ${pwFile}`);
  } else {
    conf.push("allow_anonymous true");
  }
  conf.push(...(opts.extraConfig ?? []));
  const confFile = join(dir, "mosquitto.conf");
  await writeFile(confFile, conf.join("\n") + "\n");

  const url = opts.tls ? `mqtts://localhost:${port}` : `mqtt://127.0.0.1:${port}`;
  const log: string[] = [];
  let proc: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  const pushLog = (chunk: Buffer): void => {
    for (const line of chunk.toString("utf8").split("\n")) if (line) log.push(line);
    if (log.length > 2000) log.splice(0, log.length - 2000);
  };

  const waitExit = async (signal: NodeJS.Signals): Promise<void> => {
    const p = proc;
    if (!p) return;
    // A paused broker cannot handle SIGTERM; SIGKILL must not let it run (and answer) first.
    if (signal === "SIGTERM") p.kill("SIGCONT");
    p.kill(signal);
    await exited;
    proc = null;
  };

  const start = async (): Promise<void> => {
    if (proc) throw new Error("mosquitto already running");
    const child = spawn(MOSQUITTO, ["-c", confFile], { stdio: ["ignore", "pipe", "pipe"] });
    proc = child;
    trackForExit(child);
    child.stdout?.on("data", pushLog);
    child.stderr?.on("data", pushLog);
    let exitInfo: string | null = null;
    exited = new Promise<void>((resolve) => {
      child.once("exit", (code, sig) => { exitInfo = `code ${code} signal ${sig}`; resolve(); });
      child.once("error", (err) => { exitInfo = err.message; resolve(); });
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastErr: unknown;
    // Readiness is a real MQTT connection, retried until the deadline; never a fixed sleep.
    while (Date.now() < deadline) {
      if (exitInfo !== null) break;
      try {
        await probe(url, opts, child);
        return;
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    await waitExit("SIGKILL");
    throw new Error(
      `mosquitto did not become ready on port ${port} (${exitInfo ?? "timeout"}): ${(lastErr as Error | undefined)?.message ?? ""}\n${log.slice(-20).join("\n")}`,
    );
  };

  await start();
  return {
    url,
    port,
    log,
    get pid() { return proc?.pid; },
    stop: () => waitExit("SIGTERM"),
    kill: () => waitExit("SIGKILL"),
    start,
    restart: async () => { await waitExit("SIGTERM"); await start(); },
    pause: () => {
      const p = proc;
      if (!p?.pid) return;
      p.kill("SIGSTOP");
      waitStopped(p.pid, "mosquitto");
    },
    resume: () => { proc?.kill("SIGCONT"); },
    dispose: async () => { await waitExit("SIGTERM"); await rm(dir, { recursive: true, force: true }); },
  };
}

function probe(url: string, opts: MosquittoOptions, child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) { reject(new Error("mosquitto exited")); return; }
    const client = mqtt.connect(url, {
      reconnectPeriod: 0,
      connectTimeout: 2000,
      clientId: `probe-${process.pid}-${Math.random().toString(36).slice(2)}`,
      ...(opts.auth ? { username: opts.auth.username, password: opts.auth.password } : {}),
      ...(opts.tls ? { ca: [], rejectUnauthorized: false } : {}),
    });
    // A refused CONNACK still proves the broker is up (e.g. require_certificate without a cert).
    const done = (err?: Error): void => {
      client.removeAllListeners();
      client.on("error", () => {});
      client.end(true);
      if (err && !/Connection refused:/.test(err.message) && !/certificate|alert/i.test(err.message)) reject(err);
      else resolve();
    };
    client.on("connect", () => done());
    client.on("error", (err) => done(err));
    client.on("close", () => done(new Error("closed before CONNACK")));
  });
}
