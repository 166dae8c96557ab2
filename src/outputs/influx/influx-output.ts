import http from "node:http";
import https from "node:https";
import { InfluxDB, ResultError, type IPoint } from "influx";
import type { InfluxOutputConfig } from "./config.js";
import { FloorgateError, describeError } from "../../core/errors.js";
import { safeUrl, type Logger } from "../../core/logger.js";
import type { SampleBatch } from "../../core/sample-columns.js";
import type { Output, OutputContext, OutputSession, WriteResult } from "../../core/output.js";
import { buildPoints, type TagSetCache } from "./points.js";
import { parseRefusal, refusesPoints, type InfluxDropReason } from "./refusal.js";
import { groupByWindow, parseGoDuration } from "./shard-groups.js";

/** Bounds of the HTTP calls, ms. */
export interface InfluxTiming {
  /** connect: the database check (and creation) and the retention policy lookup, all together */
  connectTimeoutMs: number;
  /**
   * one write request, answer included. Above InfluxDB's own `coordinator.write-timeout` (10 s),
   * which answers a slow write with 500 "timeout" first.
   */
  writeTimeoutMs: number;
}

export const DEFAULT_INFLUX_TIMING: InfluxTiming = { connectTimeoutMs: 10_000, writeTimeoutMs: 15_000 };

/**
 * Writes the runtime may keep outstanding. InfluxDB takes concurrent writes on separate
 * connections; a few hide the round trip and the WAL fsync of each (bench/influx.ts).
 */
export const DEFAULT_INFLUX_MAX_IN_FLIGHT = 4;

export interface InfluxOutputOptions extends Partial<InfluxTiming> {
  maxInFlight?: number;
}

/**
 * Within this much of the retention policy's cutoff, a write's points may be partly beyond
 * retention and partly stored in a shard; InfluxDB then reports only the shard's failure, so such a
 * write is split until each point's fate is known. Covers clock skew between gateway and server.
 */
const RETENTION_EDGE_MS = 3_600_000;

/** The InfluxDB 1.x output (spec §6 "influx"): one `influx` client and one HTTP agent per session. */
export function createInfluxOutput(cfg: InfluxOutputConfig, gateway: { id: string }, options: InfluxOutputOptions = {}): Output {
  const { maxInFlight = DEFAULT_INFLUX_MAX_IN_FLIGHT, ...timingOverrides } = options;
  const timing: InfluxTiming = { ...DEFAULT_INFLUX_TIMING, ...timingOverrides };
  const where = `influx output "${cfg.name}" (${safeUrl(cfg.url)})`;
  // Kept across sessions: the tag sets depend on the gateway and the samples only.
  const tagSets: TagSetCache = new Map();
  return {
    name: cfg.name,
    type: "influx",
    maxBatch: cfg.maxBatch,
    maxInFlight,
    connect: (ctx) => connectSession(cfg, gateway.id, timing, maxInFlight, where, tagSets, ctx),
  };
}

/** What connect learnt of the retention policy written to. */
interface PolicyFacts {
  /** shard group duration, ms; undefined when InfluxDB's text could not be read */
  shardMs: number | undefined;
  /** retention, ms; 0 or undefined: keeps forever */
  retentionMs: number | undefined;
}

/** The HTTP status of an `influx` RequestError (a 3xx/4xx answer), undefined for anything else. */
function statusOf(err: unknown): number | undefined {
  const res = (err as { res?: { statusCode?: unknown } } | null)?.res;
  return typeof res?.statusCode === "number" ? res.statusCode : undefined;
}

/** The body of an `influx` RequestError: the package keeps it only in its message. */
function bodyOf(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const at = msg.indexOf("error occurred: ");
  return at >= 0 ? msg.slice(at + "error occurred: ".length) : msg;
}

/** A failed connect step as the Output contract wants it. */
function connectError(err: unknown, where: string): FloorgateError {
  if (err instanceof FloorgateError) return err;
  const status = statusOf(err);
  if (status === 401) return new FloorgateError("OUTPUT_REJECTED", `${where}: authentication failed (check username and password)`, { cause: err });
  if (status !== undefined && status >= 400 && status < 500) {
    return new FloorgateError("OUTPUT_REJECTED", `${where}: InfluxDB refused (${status}): ${bodyOf(err).trim()}`, { cause: err });
  }
  // A statement InfluxDB answered with an error of its own (200 with `results[].error`).
  if (err instanceof ResultError) return new FloorgateError("OUTPUT_REJECTED", `${where}: ${err.message}`, { cause: err });
  return new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: ${describeError(err)}`, { cause: err });
}

async function connectSession(
  cfg: InfluxOutputConfig,
  gateway: string,
  timing: InfluxTiming,
  maxInFlight: number,
  where: string,
  tagSets: TagSetCache,
  ctx: OutputContext,
): Promise<OutputSession> {
  const aborted = (): FloorgateError => new FloorgateError("ABORTED", `${where}: connect aborted`, { cause: ctx.signal.reason });
  if (ctx.signal.aborted) throw aborted();
  const u = new URL(cfg.url);
  const secure = u.protocol === "https:";
  // One agent per session: destroying it ends every request of the session at once.
  const agentOpts = { keepAlive: true, maxSockets: maxInFlight + 2 };
  const agent = secure ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
  const influx = new InfluxDB({
    host: u.hostname,
    port: u.port === "" ? (secure ? 443 : 80) : Number(u.port),
    protocol: secure ? "https" : "http",
    path: u.pathname.replace(/\/+$/, ""),
    options: { agent },
    database: cfg.database,
    ...(cfg.username !== undefined ? { username: cfg.username, password: cfg.password ?? "" } : {}),
    // No retries and no host failover inside the package: the runtime retries, from the journal.
    pool: { maxRetries: 0, requestTimeout: timing.writeTimeoutMs },
  });

  const steps = async (): Promise<PolicyFacts> => {
    const names = await influx.getDatabaseNames();
    if (!names.includes(cfg.database)) {
      await influx.createDatabase(cfg.database);
      ctx.log.info({ database: cfg.database }, "influx output created the database");
    }
    const policies = await influx.showRetentionPolicies(cfg.database);
    const rp = cfg.retentionPolicy === undefined ? policies.find((p) => p.default) : policies.find((p) => p.name === cfg.retentionPolicy);
    if (!rp) {
      const which = cfg.retentionPolicy === undefined ? "no default retention policy" : `no retention policy "${cfg.retentionPolicy}"`;
      throw new FloorgateError("OUTPUT_REJECTED", `${where}: database "${cfg.database}" has ${which} (has: ${policies.map((p) => p.name).join(", ") || "none"})`);
    }
    return { shardMs: parseGoDuration(rp.shardGroupDuration), retentionMs: parseGoDuration(rp.duration) };
  };

  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  let facts: PolicyFacts;
  try {
    facts = await Promise.race([
      steps(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new FloorgateError("OUTPUT_UNAVAILABLE", `${where}: no answer within ${timing.connectTimeoutMs} ms`)), timing.connectTimeoutMs);
        onAbort = (): void => reject(aborted());
        ctx.signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } catch (err) {
    agent.destroy();
    throw connectError(err, where);
  } finally {
    clearTimeout(timer);
    if (onAbort) ctx.signal.removeEventListener("abort", onAbort);
  }
  ctx.log.info({ server: safeUrl(cfg.url), database: cfg.database, retentionPolicy: cfg.retentionPolicy ?? null }, "influx output connected");
  return new InfluxSession(influx, agent, cfg, gateway, timing, facts, where, tagSets, ctx.log);
}

/** Points refused for good in one write, by reason: count and InfluxDB's words for the first. */
type Drops = Map<InfluxDropReason, { count: number; text: string }>;

function addDrops(drops: Drops, reason: InfluxDropReason, count: number, text: string): void {
  if (count <= 0) return;
  const d = drops.get(reason);
  if (d) d.count += count;
  else drops.set(reason, { count, text });
}

/** A 400 about the request rather than its points: the session is wrong, not the data. */
function requestProblem(text: string): boolean {
  return /database not found|retention policy not found/i.test(text);
}

/**
 * One session: writes go out at once, concurrently (up to the runtime's window), and resolve in
 * issue order. A write resolves on InfluxDB's 204, or once every point InfluxDB refused for good
 * is counted with its reason (a 400 partial write has stored the rest). Anything else (a network
 * error, a 5xx, a 401/403/404, no answer within `writeTimeoutMs`) ends the session: outstanding
 * writes reject and `lost` resolves, and the runtime resends from its cursor. Rewriting a point
 * InfluxDB already holds replaces it with itself, so a resend never doubles a sample.
 */
class InfluxSession implements OutputSession {
  readonly lost: Promise<Error>;
  private resolveLost!: (err: Error) => void;
  private broken: Error | null = null;
  /** rejects when the session ends, so that writes still waiting on InfluxDB reject with it */
  private readonly ended: Promise<never>;
  private rejectEnded!: (err: Error) => void;
  /** settles after the last issued write settled: writes resolve in issue order */
  private tail: Promise<unknown> = Promise.resolve();
  private readonly writeOpts: { database: string; retentionPolicy?: string; precision: "ms" };

  constructor(
    private readonly influx: InfluxDB,
    private readonly agent: http.Agent,
    cfg: InfluxOutputConfig,
    private readonly gateway: string,
    private readonly timing: InfluxTiming,
    private readonly facts: PolicyFacts,
    private readonly where: string,
    private readonly tagSets: TagSetCache,
    private readonly log: Logger,
  ) {
    this.lost = new Promise<Error>((resolve) => { this.resolveLost = resolve; });
    this.ended = new Promise<never>((_, reject) => { this.rejectEnded = reject; });
    this.ended.catch(() => undefined);
    this.writeOpts = { database: cfg.database, precision: "ms", ...(cfg.retentionPolicy !== undefined ? { retentionPolicy: cfg.retentionPolicy } : {}) };
  }

  write(batch: SampleBatch): Promise<WriteResult> {
    if (this.broken) {
      return Promise.reject(new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: not connected`, { cause: this.broken }));
    }
    const work = batch.length === 0 ? Promise.resolve<WriteResult>({ dropped: [] }) : this.send(batch);
    const own = Promise.race([work, this.ended]);
    const ordered = this.tail.then(() => own);
    this.tail = ordered.catch(() => undefined);
    return ordered;
  }

  private async send(batch: SampleBatch): Promise<WriteResult> {
    const { points, ts } = buildPoints(batch, this.gateway, this.tagSets);
    const drops: Drops = new Map();
    // One shard group per request, so that InfluxDB's count of refused points is exact.
    const groups = groupByWindow(ts, this.facts.shardMs);
    if (groups === undefined) await this.writePiece(points, this.nearCutoff(ts), drops);
    else await Promise.all(groups.map((g) => this.writePiece(g.map((i) => points[i]!), this.nearCutoff(g.map((i) => ts[i]!)), drops)));
    return { dropped: [...drops].map(([code, d]) => ({ count: d.count, reason: d.text, code })) };
  }

  /** True when some of `ts` lie close enough to the retention cutoff that InfluxDB may drop them as beyond it. */
  private nearCutoff(ts: readonly number[]): boolean {
    const keep = this.facts.retentionMs;
    if (keep === undefined || keep <= 0) return false;
    let min = Infinity;
    for (const t of ts) if (t < min) min = t;
    return min < Date.now() - keep + RETENTION_EDGE_MS;
  }

  /**
   * Writes `points`; on a refusal of some of them, counts what InfluxDB dropped when its count is
   * exact, and otherwise (lines it could not parse are not counted; a write near the retention
   * cutoff may hide a shard's drops; a body too large) splits the points in halves and writes each,
   * down to single points. Points InfluxDB stored are written again by a split: that replaces them
   * with themselves.
   */
  private async writePiece(points: IPoint[], nearCutoff: boolean, drops: Drops): Promise<void> {
    let err: unknown;
    try {
      await this.call(() => this.influx.writePoints(points, this.writeOpts));
      return;
    } catch (e) {
      err = e;
    }
    if (this.broken) throw this.broken;
    const status = statusOf(err);
    if (status === undefined || !refusesPoints(status)) throw this.fail(err, status);
    const r = parseRefusal(status, bodyOf(err));
    if (requestProblem(r.text)) throw this.fail(err, status);
    const n = points.length;
    let exact: boolean;
    if (status === 413) exact = false;
    else if (!r.partial || r.dropped === "all") exact = true; // InfluxDB stored none of them
    else if (r.dropped === 0) exact = false;
    else if (r.dropped >= n) exact = true;
    else exact = r.reason === "beyond_retention" || !nearCutoff;
    if (exact || n === 1) {
      const count = r.dropped === "all" ? n : status === 413 ? 1 : Math.min(r.dropped, n);
      addDrops(drops, r.reason, count, r.text);
      return;
    }
    const mid = n >> 1;
    await Promise.all([this.writePiece(points.slice(0, mid), nearCutoff, drops), this.writePiece(points.slice(mid), nearCutoff, drops)]);
  }

  /** One HTTP call, bounded by `writeTimeoutMs` whatever the package's socket timeout does. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.broken) throw this.broken;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(this.destroy(new FloorgateError("OUTPUT_TIMEOUT", `${this.where}: no answer to a write within ${this.timing.writeTimeoutMs} ms`)));
      }, this.timing.writeTimeoutMs);
    });
    try {
      return await Promise.race([fn(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the session over a failed call; returns the error writes reject with. */
  private fail(err: unknown, status: number | undefined): Error {
    const what = status === undefined ? describeError(err) : `InfluxDB answered ${status}: ${bodyOf(err).trim()}`;
    return this.destroy(new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: ${what}`, { cause: err }));
  }

  /** Ends the session for good (idempotent); returns the reason it ended with. */
  private destroy(reason: FloorgateError): Error {
    if (this.broken) return this.broken;
    this.broken = reason;
    this.rejectEnded(reason);
    this.agent.destroy();
    // The forwarder logs the outage once; this line is for troubleshooting.
    this.log.debug({ err: describeError(reason) }, "influx output session ended");
    this.resolveLost(reason);
    return reason;
  }

  /** HTTP has no goodbye: the runtime has drained the writes it wanted; the rest reject. */
  close(): Promise<void> {
    if (!this.broken) {
      this.destroy(new FloorgateError("OUTPUT_UNAVAILABLE", `${this.where}: session closed`));
      this.log.info("influx output closed");
    }
    return Promise.resolve();
  }
}
