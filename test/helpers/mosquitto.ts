import { execFile, type ChildProcess } from "node:child_process";
import { access, mkdtemp, rm, writeFile, constants } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import mqtt from "mqtt";
import { freePort } from "./ports.js";
import { serverProcess, type ServerProcess } from "./server-process.js";

const MOSQUITTO = "/usr/sbin/mosquitto";
const MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd";
const READY_TIMEOUT_MS = 10_000;

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

/**
 * A Mosquitto broker owned by a test (lifecycle: test/helpers/server-process.ts; `pause` is a hung
 * broker or a black-holed network: sockets stay open, nothing is answered). `stop` then `start` keeps
 * the port, so outages can be staged; `start` resolves once a client can connect. Benches read its
 * CPU from /proc by `pid`.
 */
export interface MosquittoBroker extends ServerProcess {
  /** mqtt://127.0.0.1:port or mqtts://localhost:port (Debian's Mosquitto 2.0.11 cannot open websockets listeners here) */
  url: string;
  port: number;
  restart(): Promise<void>;
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
  // Readiness is a real MQTT connection.
  const server = serverProcess({
    name: "mosquitto", command: MOSQUITTO, args: ["-c", confFile], where: `port ${port}`,
    readyTimeoutMs: READY_TIMEOUT_MS, retryMs: 25, probe: (child) => probe(url, opts, child),
  });
  await server.start();
  return {
    url,
    port,
    log: server.log,
    get pid() { return server.pid; },
    stop: server.stop,
    kill: server.kill,
    start: server.start,
    restart: async () => { await server.stop(); await server.start(); },
    pause: server.pause,
    resume: server.resume,
    dispose: async () => { await server.stop(); await rm(dir, { recursive: true, force: true }); },
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
