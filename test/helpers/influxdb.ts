import { serverProcess, type ServerProcess } from "./server-process.js";
import { access, mkdtemp, rm, writeFile, constants } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";

const INFLUXD = "/usr/bin/influxd";
const READY_TIMEOUT_MS = 30_000;

/**
 * An InfluxDB 1.x server owned by a test (lifecycle: test/helpers/server-process.ts). `kill` then
 * `start` keeps the port and the data; `start` resolves once /ping answers 204.
 */
export interface InfluxServer extends ServerProcess {
  /** http://127.0.0.1:port */
  url: string;
  port: number;
  /** One InfluxQL statement (GET /query, or POST for statements that change things); the parsed JSON answer. */
  query(q: string, db?: string): Promise<InfluxQueryResult>;
  /** Kills the server and removes its temp dir. */
  dispose(): Promise<void>;
}

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values?: unknown[][];
}

export interface InfluxQueryResult {
  results: { statement_id: number; series?: InfluxSeries[]; error?: string }[];
  error?: string;
}

/**
 * Spawns Debian's `/usr/bin/influxd` (1.x) with a temporary meta/data/wal dir, its HTTP listener and
 * its RPC (backup) listener both on free loopback ports, usage reporting and self-monitoring off,
 * and resolves once `/ping` answers 204. Throws loudly when the binary is missing: tests must
 * fail, never skip. Start one per test file (beforeAll): it takes a second or two.
 */
export async function startInfluxd(): Promise<InfluxServer> {
  try {
    await access(INFLUXD, constants.X_OK);
  } catch (err) {
    throw new Error(`${INFLUXD} is missing: install the Debian package "influxdb" to run these tests`, { cause: err });
  }
  const dir = await mkdtemp(join(tmpdir(), "floorgate-influxd-"));
  const port = await freePort();
  const rpcPort = await freePort();
  const conf = [
    "reporting-disabled = true",
    `bind-address = "127.0.0.1:${rpcPort}"`,
    "[meta]",
    `  dir = "${join(dir, "meta")}"`,
    "[data]",
    `  dir = "${join(dir, "data")}"`,
    `  wal-dir = "${join(dir, "wal")}"`,
    "  query-log-enabled = false",
    "[http]",
    `  bind-address = "127.0.0.1:${port}"`,
    "  log-enabled = false",
    "[monitor]",
    "  store-enabled = false",
    "[continuous_queries]",
    "  enabled = false",
    "[subscriber]",
    "  enabled = false",
    "[logging]",
    '  level = "warn"',
  ];
  const confFile = join(dir, "influxdb.conf");
  await writeFile(confFile, conf.join("\n") + "\n");

  const url = `http://127.0.0.1:${port}`;
  // Readiness is /ping answering 204.
  const server = serverProcess({
    name: "influxd", command: INFLUXD, args: ["run", "-config", confFile], where: `port ${port}`,
    env: { ...process.env, INFLUXDB_DATA_QUERY_LOG_ENABLED: "false" },
    readyTimeoutMs: READY_TIMEOUT_MS, retryMs: 50,
    probe: async () => {
      const status = await httpStatus(`${url}/ping`);
      if (status !== 204) throw new Error(`/ping answered ${status}`);
    },
  });

  const query = async (q: string, db?: string): Promise<InfluxQueryResult> => {
    const params = new URLSearchParams({ q, epoch: "ms" });
    if (db !== undefined) params.set("db", db);
    const write = /^\s*(create|drop|alter|delete|grant|revoke|set|kill)\b/i.test(q);
    const body = await httpText(`${url}/query?${params.toString()}`, write ? "POST" : "GET");
    return JSON.parse(body) as InfluxQueryResult;
  };

  await server.start();
  return {
    url,
    port,
    log: server.log,
    get pid() { return server.pid; },
    start: server.start,
    stop: server.stop,
    kill: server.kill,
    pause: server.pause,
    resume: server.resume,
    query,
    dispose: async () => { await server.kill(); await rm(dir, { recursive: true, force: true }); },
  };
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: 2000 }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on("timeout", () => req.destroy(new Error("ping timed out")));
    req.on("error", reject);
    req.end();
  });
}

function httpText(url: string, method: "GET" | "POST"): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, timeout: 10_000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => { text += c; });
      res.on("end", () => resolve(text));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/**
 * Rows of a `SELECT` as objects (column name → value), every series of the first statement in
 * order, each row with the series' tags merged in. Empty when the query found nothing.
 */
export function rowsOf(r: InfluxQueryResult): Record<string, unknown>[] {
  const first = r.results[0];
  if (r.error || first?.error) throw new Error(`influx query failed: ${r.error ?? first?.error}`);
  const out: Record<string, unknown>[] = [];
  for (const s of first?.series ?? []) {
    for (const v of s.values ?? []) {
      const row: Record<string, unknown> = { ...s.tags };
      s.columns.forEach((c, i) => { row[c] = v[i]; });
      out.push(row);
    }
  }
  return out;
}
