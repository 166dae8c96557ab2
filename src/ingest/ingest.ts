import type { IngestConfig } from "./types.js";
import { describeError, isFloorgateError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { DEVICE_ID_RE } from "../core/sample.js";
import type { SampleColumns } from "../core/sample-columns.js";
import type { LabelledCounter, SettableGauge } from "../core/counters.js";
import { DeviceTable } from "../core/device-table.js";
import { createDeviceAuth } from "./auth.js";
import { claimRound, type ClaimRound } from "./claim-round.js";
import { MsgIdDedup, type DedupOptions } from "./dedup.js";
import { parsePushBatch, type PayloadProblem, type PushBatch } from "./payload.js";
import { RateLimiter } from "./rate.js";
import { PushAdmission, type PushedDevice } from "./registry.js";

export type { PushedDevice } from "./registry.js";

/**
 * The counters the ingest moves (`floorgate_ingest_*`), and nothing else of the gateway's metrics:
 * the runtime's Metrics satisfies it.
 */
export interface IngestCounters {
  readonly ingestRejects: LabelledCounter<"reason">;
  /** pushing devices admitted so far */
  readonly ingestDevices: SettableGauge;
  readonly ingestDuplicates: LabelledCounter<"device">;
  readonly ingestClockSkew: LabelledCounter<"device">;
  readonly ingestDedupEvictions: LabelledCounter<"reason">;
}

/**
 * Where accepted device samples go: in the daemon, the journal append behind the runtime's emit.
 * `push` resolves only once the samples are durable (that is what lets the ingest answer 202 or
 * send a PUBACK). It rejects with FloorgateError JOURNAL_FULL under `overflow: reject` (nothing
 * of the call stored) or with anything else on a journal failure. The sink, not the ingest,
 * counts `samplesIn`, as it does for every driver.
 */
export interface IngestSink {
  /**
   * Stores one push: the samples as columns (all of `device`, quality good, no unit or reason), as
   * the ingest builds them, no object per sample; the columns are handed over: neither side writes
   * into them afterwards. `msgIds`: the msgIds whose samples these are; the sink stores them with
   * the samples, in the same durable write, so that `IngestOptions.remembered` can rebuild the dedup
   * after a restart. Resolves once durable; a rejection is the device's 503.
   */
  push(device: string, cols: SampleColumns, msgIds: readonly string[]): Promise<void>;
}

/** A msgId stored durably before this start (see IngestSink.push), with when it was stored. */
export interface RememberedMsgId {
  device: string;
  msgId: string;
  at: number;
}

/** `floorgate_ingest_rejects_total` reasons the ingest itself produces. */
export type IngestRejectReason =
  | "bad_request" | "unauthorized" | "forbidden" | "too_large" | "rate_limited" | "too_many_devices"
  | "journal_full" | "journal_unavailable" | "journal_error";

/** A transport-independent answer: HTTP sends it as is; the MQTT listener maps it (202 → PUBACK). */
export interface IngestReply {
  status: 202 | 400 | 401 | 403 | 413 | 429 | 503;
  /** JSON body: `{status:"accepted",…}` or `{error, problems?}` */
  body: IngestReplyBody;
  /** whole seconds ≥ 1; set on 429 and 503 */
  retryAfterSec?: number;
  reason?: IngestRejectReason;
}

export type IngestReplyBody =
  | { status: "accepted"; messages: number; samples: number; duplicates: number }
  | { error: string; problems?: PayloadProblem[] };

/**
 * The device push endpoint, independent of transport. A push is: `authenticate` (id syntax, token,
 * admission under `maxDevices`) → `throttle` (is there room for one more message?) → `accept`
 * (size, body, one rate token per message, dedup, durable store). `handle` runs all three; HTTP
 * runs them separately so it can refuse before reading a body. Every refusal is counted in
 * `metrics.ingestRejects` by the step that makes it. Never throws or rejects.
 *
 * Per-device state (the device table entry with its counters and state, the rate bucket, the
 * per-device metric series and the status topics downstream) exists only for admitted devices, so
 * a glob token cannot grow it past `maxDevices`. An acknowledged push marks its device alive in
 * the device table (`DeviceTable.pushed`); the table's silence rule shows it offline later.
 */
export interface Ingest {
  readonly maxPayloadBytes: number;
  handle(deviceId: string, token: string | undefined | null, body: Buffer): Promise<IngestReply>;
  /**
   * undefined when the device may push (it is then admitted); otherwise the 400/401/403 answer,
   * or 429 `too_many_devices` for a new id once `maxDevices` devices are admitted
   */
  authenticate(deviceId: string, token: string | undefined | null): IngestReply | undefined;
  /**
   * `authenticate` for a device whose identity the transport proved (the CN of a TLS client
   * certificate the listener verified): no token, but the id must be listed in `ingest.devices`
   * (403 otherwise) and is admitted under `maxDevices` like any other.
   */
  authenticateVerified(deviceId: string): IngestReply | undefined;
  /**
   * undefined when the device can afford one more message now; otherwise the 429 answer. Takes
   * nothing: `accept` charges the body's messages. Call after `authenticate`.
   */
  throttle(deviceId: string): IngestReply | undefined;
  /**
   * Validates and stores a body for an authenticated device; resolves 202 only once durable. A
   * body of n messages takes n rate tokens, all or none (429 and nothing stored when they are not
   * there); a refused body (400, 413) takes one.
   */
  accept(deviceId: string, body: Buffer): Promise<IngestReply>;
  /** Every device that has authenticated, newest last, with its state from the device table. */
  devices(): PushedDevice[];
  device(id: string): PushedDevice | undefined;
  /** Sizes of the per-device state, for diagnostics and tests. */
  stats(): { devices: number; rateBuckets: number };
}

export interface IngestOptions {
  log?: Logger;
  dedup?: Omit<DedupOptions, "onEvict">;
  /** default 5 minutes (spec §4) */
  maxSkewMs?: number;
  /** msgIds stored before this start, oldest first: a retry of one of them is not stored again */
  remembered?: Iterable<RememberedMsgId>;
  /**
   * The gateway's device table, where admitted devices get their entry (state, counters, last
   * push). Default: a table of the ingest's own (a gateway without a runtime, in tests and benches).
   */
  devices?: DeviceTable;
}

/** Retry-After for a device refused by `maxDevices`: places free up only at a restart. */
const DEVICE_LIMIT_RETRY_SEC = 300;

/** Rounds of "another attempt with this msgId failed, try storing it ourselves". */
const MAX_CLAIM_ROUNDS = 3;

export function createIngest(
  cfg: IngestConfig,
  sink: IngestSink,
  metrics: IngestCounters,
  clock: () => number = Date.now,
  opts: IngestOptions = {},
): Ingest {
  const auth = createDeviceAuth(cfg.devices);
  const maxDevices = cfg.maxDevices;
  const rate = new RateLimiter(cfg.ratePerDevice, clock, maxDevices);
  const log = opts.log;
  let dedupEvictLogged = false;
  const dedup = new MsgIdDedup(clock, {
    maxTotal: cfg.dedupMaxEntries,
    ...opts.dedup,
    onEvict: (reason, device, n) => {
      metrics.ingestDedupEvictions.inc({ reason }, n);
      if (!dedupEvictLogged) {
        dedupEvictLogged = true;
        log?.warn({ reason, device, count: n }, "ingest: msgId dedup memory cap reached; msgIds forgotten before their 10 minutes (floorgate_ingest_dedup_evictions_total): a retry of one would be stored twice");
      }
    },
  });
  for (const r of opts.remembered ?? []) dedup.remember(r.device, r.msgId, r.at);
  const exactIds = new Set(cfg.devices.map((d) => d.id).filter((id) => !id.includes("*")));
  const table = opts.devices ?? new DeviceTable({ clock });
  const registry = new PushAdmission(table, maxDevices, (id) => exactIds.has(id), exactIds.size);
  const maxSkewMs = opts.maxSkewMs ?? 5 * 60_000;
  let sinkFailing = false;
  let deviceLimitLogged = false;
  metrics.ingestDevices.set(0);

  const reject = (reason: IngestRejectReason, status: IngestReply["status"], error: string, extra: Partial<IngestReply> = {}, device?: string): IngestReply => {
    metrics.ingestRejects.inc({ reason });
    if (device !== undefined) table.count(device, "rejected");
    return { status, body: { error }, reason, ...extra };
  };

  /** Rate refusal of an admitted device (counted in its entry too). */
  const rateLimited = (deviceId: string, error: string, retryAfterSec: number): IngestReply => {
    table.count(deviceId, "rateLimited");
    return reject("rate_limited", 429, error, { retryAfterSec }, deviceId);
  };

  const authenticate: Ingest["authenticate"] = (deviceId, token) => {
    if (!DEVICE_ID_RE.test(deviceId)) {
      return reject("bad_request", 400, "bad device id: 1–64 characters of A-Z a-z 0-9 _ -");
    }
    const r = auth.check(deviceId, token);
    if (r === "no-token") return reject("unauthorized", 401, "missing device token");
    if (r === "unknown-token") return reject("unauthorized", 401, "unknown device token");
    if (r === "wrong-device") return reject("forbidden", 403, `token is not valid for device ${deviceId}`);
    return admit(deviceId);
  };

  const authenticateVerified: Ingest["authenticateVerified"] = (deviceId) => {
    if (!DEVICE_ID_RE.test(deviceId)) {
      return reject("bad_request", 400, "bad device id: 1–64 characters of A-Z a-z 0-9 _ -");
    }
    if (!auth.listed(deviceId)) return reject("forbidden", 403, `device ${deviceId} is not listed in ingest.devices`);
    return admit(deviceId);
  };

  /** Gives an authenticated device its place under `maxDevices`, or the 429 answer. */
  const admit = (deviceId: string): IngestReply | undefined => {
    const admitted = registry.admit(deviceId);
    if (admitted === undefined) {
      if (!deviceLimitLogged) {
        deviceLimitLogged = true;
        log?.warn({ maxDevices }, "ingest: device limit reached; new device ids get 429 until a restart (raise ingest.maxDevices if the fleet is that large)");
      }
      return reject("too_many_devices", 429,
        `device limit reached: this gateway accepts pushes from at most ${maxDevices} devices (ingest.maxDevices) and ${deviceId} is not one of them`,
        { retryAfterSec: DEVICE_LIMIT_RETRY_SEC });
    }
    if (admitted.created) {
      metrics.ingestDevices.set(registry.size());
      log?.info({ device: deviceId }, "device authenticated for the first time");
    }
    return undefined;
  };

  const overRate = `over ${cfg.ratePerDevice} messages/s for this device`;
  const throttle: Ingest["throttle"] = (deviceId) => {
    const d = rate.check(deviceId);
    return d.ok ? undefined : rateLimited(deviceId, overRate, d.retryAfterSec);
  };

  /**
   * Hands a round's columns to the sink: its promise (durable, or rejected). A sink that throws
   * is a failed store, as a rejection is.
   */
  const store = (deviceId: string, cols: SampleColumns, msgIds: readonly string[]): Promise<void> => {
    try {
      return sink.push(deviceId, cols, msgIds);
    } catch (err) {
      return Promise.reject(err);
    }
  };

  /** A round's store failed: its claims are released undone, and the device gets the 503. */
  const roundFailed = (deviceId: string, r: ClaimRound, err: unknown): IngestReply => {
    const reply = storeFailed(deviceId, err);
    settle(r, false);
    return reply;
  };

  const storeWorked = (): void => {
    if (sinkFailing) {
      sinkFailing = false;
      log?.info("ingest: journal accepts data again");
    }
  };

  /** The 503 answer (counted) for a store that failed with `err`. */
  const storeFailed = (deviceId: string, err: unknown): IngestReply => {
    if (!sinkFailing) {
      sinkFailing = true;
      log?.warn({ err: describeError(err) }, "ingest: journal refused a push; devices get 503 until it accepts again");
    }
    if (isFloorgateError(err, "JOURNAL_FULL")) {
      return reject("journal_full", 503, "journal full: retry later", { retryAfterSec: 5 }, deviceId);
    }
    if (isFloorgateError(err, "JOURNAL_UNAVAILABLE")) {
      // the journal's own words (e.g. "journal cannot write: disk full (ENOSPC); retrying")
      return reject("journal_unavailable", 503, `${err.message}: retry later`, { retryAfterSec: 2 }, deviceId);
    }
    return reject("journal_error", 503, "gateway cannot store data right now: retry later", { retryAfterSec: 5 }, deviceId);
  };

  const accept: Ingest["accept"] = (deviceId, body) => {
    try {
      return acceptNow(deviceId, body);
    } catch (err) {
      return Promise.reject(err); // as from the async function this was: a bug, not a device's fault
    }
  };

  /** `accept`'s synchronous part, and the store of a body whose messages are all fresh. */
  const acceptNow = (deviceId: string, body: Buffer): Promise<IngestReply> => {
    // Only admitted devices get per-device state; `authenticate` admits.
    if (!table.has(deviceId)) return Promise.resolve(reject("forbidden", 403, `device ${deviceId} has not authenticated`));
    if (body.length > cfg.maxPayloadBytes) {
      rate.take(deviceId, 1); // a refused body still costs one message, so refusals cannot flood either
      return Promise.resolve(reject("too_large", 413, `payload over ${cfg.maxPayloadBytes} bytes`, {}, deviceId));
    }
    const parsed = parsePushBatch(body);
    if (!parsed.ok) {
      rate.take(deviceId, 1);
      metrics.ingestRejects.inc({ reason: "bad_request" });
      table.count(deviceId, "rejected");
      return Promise.resolve<IngestReply>({ status: 400, body: { error: "invalid push body", problems: parsed.problems }, reason: "bad_request" });
    }
    const batch = parsed.batch;
    const n = batch.messages;
    const charged = rate.take(deviceId, n);
    if (!charged.ok) {
      return Promise.resolve(rateLimited(deviceId, charged.tooMany
        ? `${n} messages in one body is more than ingest.ratePerDevice lets through at once (${rate.capacity}): send at most ${rate.capacity} messages per body`
        : n > 1 ? `${overRate} (this body has ${n} messages)` : overRate, charged.retryAfterSec));
    }
    const receivedAt = clock();
    const first = claimRound(dedup, deviceId, batch, undefined, receivedAt, receivedAt, maxSkewMs);
    if (first.waiting !== undefined || first.cols === undefined) return acceptRounds(deviceId, batch, receivedAt, first);
    // The usual body: every message fresh. No async frame waits for the store, only this small
    // closure (a frame with the whole of the above in it, per body in flight, was the ingest's
    // largest allocation).
    return store(deviceId, first.cols, first.msgIds).then(
      () => {
        storeWorked();
        settle(first, true);
        return acknowledged(deviceId, n, first.values, first.duplicates, first.skewed, first.newest);
      },
      (err: unknown) => roundFailed(deviceId, first, err),
    );
  };

  /** Settles a round's claims with its store's outcome, all at one clock reading. */
  const settle = (r: ClaimRound, durable: boolean): void => {
    const claims = r.claims;
    if (claims.length === 0) return;
    const at = clock();
    for (let i = 0; i < claims.length; i++) claims[i]!.done(durable, at);
  };

  /**
   * `accept` past its first round when that round found messages another attempt is storing (or
   * nothing to store): store what this call claimed, wait for the others' outcomes, claim again
   * those that failed, up to MAX_CLAIM_ROUNDS rounds.
   */
  const acceptRounds = async (deviceId: string, batch: PushBatch, receivedAt: number, first: ClaimRound): Promise<IngestReply> => {
    let stored = 0;
    let duplicates = 0;
    let skewed = 0;
    let newest: number | null = null;
    let r = first;
    for (let round = 0; ; round++) {
      // Our own claims are settled before we wait for anyone else's: no two pushes can wait on each other.
      if (r.cols !== undefined) {
        try {
          await store(deviceId, r.cols, r.msgIds);
          storeWorked();
        } catch (err) {
          return roundFailed(deviceId, r, err);
        }
      }
      settle(r, true);
      stored += r.values;
      duplicates += r.duplicates;
      skewed += r.skewed;
      if (r.newest !== null && (newest === null || r.newest > newest)) newest = r.newest;
      if (r.waiting === undefined) break;
      const w = r.waiting;
      const outcomes = await Promise.all(w.map((x) => x.wait));
      const todo: number[] = [];
      for (let i = 0; i < outcomes.length; i++) {
        if (outcomes[i]) duplicates++;
        else todo.push(w[i]!.msg);
      }
      if (todo.length === 0) break;
      if (round + 1 >= MAX_CLAIM_ROUNDS) {
        return reject("journal_error", 503, "an earlier attempt with the same msgId failed: retry later", { retryAfterSec: 1 }, deviceId);
      }
      r = claimRound(dedup, deviceId, batch, todo, clock(), receivedAt, maxSkewMs);
    }
    return acknowledged(deviceId, batch.messages, stored, duplicates, skewed, newest);
  };

  /** The 202 of a push whose every message is durable (stored now or before), counted. */
  const acknowledged = (deviceId: string, n: number, stored: number, duplicates: number, skewed: number, newest: number | null): IngestReply => {
    if (skewed > 0) {
      metrics.ingestClockSkew.inc({ device: deviceId }, skewed);
      table.count(deviceId, "clockSkew", skewed);
    }
    if (duplicates > 0) {
      metrics.ingestDuplicates.inc({ device: deviceId }, duplicates);
      table.count(deviceId, "duplicates", duplicates);
    }
    table.count(deviceId, "pushes");
    table.count(deviceId, "messages", n);
    table.count(deviceId, "samples", stored);
    // The state change this may make is logged by the table's owner (the runtime), once.
    table.pushed(deviceId, clock(), stored > 0 ? newest : null);
    return { status: 202, body: { status: "accepted", messages: n, samples: stored, duplicates } };
  };

  return {
    maxPayloadBytes: cfg.maxPayloadBytes,
    authenticate,
    authenticateVerified,
    throttle,
    accept,
    async handle(deviceId, token, body) {
      return authenticate(deviceId, token) ?? throttle(deviceId) ?? (await accept(deviceId, body));
    },
    devices: () => registry.list(),
    device: (id) => registry.get(id),
    stats: () => ({ devices: registry.size(), rateBuckets: rate.size() }),
  };
}
