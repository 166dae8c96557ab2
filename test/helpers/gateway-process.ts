import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { BIN, NODE_FLAGS } from "./bin.js";

/** The built CLI running as a real process, as an operator would run it. */
export interface GatewayProcess {
  readonly port: number;
  readonly base: string;
  readonly output: string[];
  child: ChildProcess;
  /** SIGTERM; resolves with the exit code and how long it took. */
  stop(): Promise<{ code: number | null; ms: number }>;
  /** SIGKILL: no drain, no fsync beyond what the journal already did. */
  kill(): Promise<void>;
  /** Starts the same config again and waits until /healthz answers. */
  restart(): Promise<void>;
}

export async function writeConfig(dir: string, yaml: string): Promise<string> {
  const file = join(dir, "floorgate.yaml");
  await writeFile(file, yaml);
  return file;
}

export async function startGateway(configFile: string, port: number, env: NodeJS.ProcessEnv = {}): Promise<GatewayProcess> {
  const output: string[] = [];
  const spawnOne = async (): Promise<ChildProcess> => {
    const child = spawn(process.execPath, [...NODE_FLAGS, BIN, "run", "--config", configFile], {
      env: { ...process.env, FLOORGATE_LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (d: Buffer) => output.push(d.toString()));
    child.stderr!.on("data", (d: Buffer) => output.push(d.toString()));
    await waitHealthy(`http://127.0.0.1:${port}`, child, output);
    return child;
  };
  const gp: GatewayProcess = {
    port,
    base: `http://127.0.0.1:${port}`,
    output,
    child: await spawnOne(),
    async stop() {
      const t0 = Date.now();
      const c = gp.child;
      if (c.exitCode !== null) return { code: c.exitCode, ms: 0 };
      const exited = new Promise<number | null>((r) => c.once("exit", (code) => r(code)));
      c.kill("SIGTERM");
      const code = await exited;
      return { code, ms: Date.now() - t0 };
    },
    async kill() {
      const c = gp.child;
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((r) => c.once("exit", () => r()));
      c.kill("SIGKILL");
      await exited;
    },
    async restart() {
      gp.child = await spawnOne();
    },
  };
  return gp;
}

/** Polls /healthz until it answers (readiness, not a fixed sleep); fails fast if the process exits. */
async function waitHealthy(base: string, child: ChildProcess, output: string[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}:\n${output.join("")}`);
    const status = await getStatus(`${base}/healthz`).catch(() => 0);
    if (status === 200 || status === 503) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gateway not healthy within ${timeoutMs} ms:\n${output.join("")}`);
}

function getStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 1000 }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

export interface HttpAnswer { status: number; body: string; headers: Record<string, string | string[] | undefined> }

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export function http(method: string, url: string, opts: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, timeout: 15_000, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end(opts.body);
  });
}

export async function getJson<T = unknown>(url: string, token?: string): Promise<T> {
  const r = await http("GET", url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return JSON.parse(r.body) as T;
}

/** Reads one Prometheus sample value, e.g. metric(text, 'floorgate_drops_total', {reason:"drop_oldest"}). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = m[2] ?? "";
    if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) total += Number(m[3]);
  }
  return total;
}

/** What a finished CLI command left: exit code, both streams in full, and how long it took. */
export interface CliOutcome { code: number | null; stdout: string; stderr: string; ms: number }

/**
 * Runs `bin/floorgate ARGS` to its end and resolves once its streams are closed (so nothing it
 * printed is missing). `env` is laid over this process's environment.
 */
export function runCli(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliOutcome> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString(); });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr, ms: Date.now() - t0 }));
  });
}
