/**
 * One pass over a list of planned read requests on a line: sends them in order, decodes the
 * replies, splits merged reads refused with "illegal data address" (the split is written back into
 * the list, so it is remembered), and reports per-tag results. Shared by the poller and `probe`.
 */
import { FloorgateError, describeError, isFloorgateError } from "../../src/core/errors.js";
import type { ModbusTagConfig } from "./config.js";
import type { Quality, SampleValue } from "../../src/core/sample.js";
import { ColumnsBuilder, type SampleColumns } from "../../src/core/sample-columns.js";
import { decodeBit, decodeNumberFast, decodeRegisters, isBitArea } from "./decode.js";
import { ILLEGAL_ADDRESS, exceptionText, readFunction, readPdu } from "./frame.js";
import type { Line, LineClient } from "./line.js";
import { splitRequest, type ReadRequest } from "./plan.js";

/**
 * What a pass read: one raw sample per tag read, as columns (so the poller hands them on with no
 * object per value), and beside them the tag's index in the device's tag list per sample.
 */
export interface PassResults {
  cols: SampleColumns;
  ids: readonly number[];
  /** how many of the samples have quality `bad` */
  bad: number;
}

/**
 * The order in which a full pass over a request list emits its tags, with their names and units:
 * computed once per plan and shared by every device and every poll that uses it, so a poll's
 * columns need no name list of their own. A split request keeps its items in order, so the order
 * survives splits.
 */
export interface PassOrder {
  ids: readonly number[];
  names: readonly string[];
  units: readonly (string | undefined)[] | undefined;
}

export function passOrder(requests: readonly ReadRequest[], tags: readonly ModbusTagConfig[]): PassOrder {
  const ids: number[] = [];
  for (const r of requests) for (const it of r.items) ids.push(it.id);
  const names = ids.map((id) => tags[id]!.name);
  const units = ids.some((id) => tags[id]!.unit !== undefined) ? ids.map((id) => tags[id]!.unit) : undefined;
  return { ids, names, units };
}

/** How a pass went, for device state and demotion. */
export interface PassOutcome {
  /** requests answered with data */
  ok: number;
  /** requests answered with a Modbus exception */
  exceptions: number;
  timeouts: number;
  /** transport or protocol failures */
  transport: number;
  /** first failure text, for the device's `error` field */
  firstError?: string;
}

export interface PassOptions {
  timeoutMs: number;
  /**
   * Called after each timeout; returning true stops the pass (the device is being demoted), so a
   * silent device does not hold the shared line for every remaining request.
   */
  onTimeout?: () => boolean;
  /** Called on every reply (data or exception): the device is reachable. */
  onReply?: () => void;
  signal?: AbortSignal;
  /**
   * Checked before each request instead of `signal` when given: a plain flag the caller keeps
   * (the AbortSignal getter costs a brand check per call, thousands of times a second).
   */
  stopped?: () => boolean;
  /** device id written into each sample (probe leaves it empty) */
  device?: string;
  /** `passOrder(requests, tags)`, when the caller keeps it across passes */
  order?: PassOrder;
}

export async function readPass(
  line: Line, requests: ReadRequest[], tags: readonly ModbusTagConfig[], client: LineClient, opts: PassOptions,
): Promise<{ results: PassResults; outcome: PassOutcome }> {
  // Every planned tag gives at most one sample: columns sized once for all of them.
  let total = 0;
  for (const r of requests) total += r.items.length;
  const order = opts.order ?? passOrder(requests, tags);
  const b = new ColumnsBuilder(opts.device ?? "", total);
  const nums = b.nums;
  const tsCol = b.ts;
  const qualities = b.qualities;
  const planned = order.ids;
  /** the pass's own ids, once it strays from the planned order (never expected) */
  let ids: number[] | undefined;
  let bad = 0;
  let n = 0;
  const stray = (id: number): void => {
    ids = planned.slice(0, n) as number[];
    ids.push(id);
  };
  const push = (id: number, ts: number, value: SampleValue, quality: Quality, reason: string | undefined): void => {
    if (ids !== undefined) ids.push(id);
    else if (planned[n] !== id) stray(id);
    if (quality === "good") {
      if (typeof value === "number") { nums[n] = value; qualities[n] = 0; tsCol[n] = ts; }
      else b.set(n, value, 0, ts);
    } else {
      b.set(n, value, quality === "bad" ? 2 : 1, ts);
      if (quality === "bad") bad++;
    }
    if (reason !== undefined) b.setReason(n, reason);
    n++;
  };
  const outcome: PassOutcome = { ok: 0, exceptions: 0, timeouts: 0, transport: 0 };
  const failAll = (req: ReadRequest, reason: string): void => {
    const ts = Date.now();
    for (const it of req.items) push(it.id, ts, null, "bad", reason);
  };
  let i = 0;
  while (i < requests.length) {
    if (opts.stopped ? opts.stopped() : opts.signal?.aborted) break;
    const req = requests[i]!;
    let reply;
    try {
      reply = await line.request(req.unitId, (req.pdu ??= readPdu(readFunction(req.area), req.start, req.count)), opts.timeoutMs, client);
    } catch (err) {
      const reason = describeFailure(err);
      outcome.firstError ??= reason;
      failAll(req, reason);
      i++;
      if (isFloorgateError(err, "DRIVER_TIMEOUT")) {
        outcome.timeouts++;
        if (opts.onTimeout?.()) { for (; i < requests.length; i++) failAll(requests[i]!, reason); break; }
        continue;
      }
      outcome.transport++;
      if (isFloorgateError(err, "DRIVER_TRANSPORT") || isFloorgateError(err, "ABORTED")) {
        // The connection is gone: the rest of this pass cannot succeed either.
        for (; i < requests.length; i++) failAll(requests[i]!, reason);
        break;
      }
      continue;
    }
    opts.onReply?.();
    if (reply.kind === "exception") {
      if (reply.code === ILLEGAL_ADDRESS) {
        const halves = splitRequest(req);
        if (halves) {
          client.count("split_read");
          requests.splice(i, 1, ...halves);
          continue; // re-read index i, now the first half
        }
      }
      const reason = exceptionText(reply.code);
      outcome.exceptions++;
      outcome.firstError ??= reason;
      failAll(req, reason);
      i++;
      continue;
    }
    if (reply.kind !== "data") { i++; continue; } // checkReply mismatches are thrown by the line
    outcome.ok++;
    const ts = Date.now();
    const bits = isBitArea(req.area);
    const items = req.items;
    for (let k = 0; k < items.length; k++) {
      const it = items[k]!;
      const tag = tags[it.id]!;
      const at = it.address - req.start;
      if (!bits) {
        const v = decodeNumberFast(tag, reply.data, at);
        if (v !== undefined) {
          // The usual sample: a good number in planned order, written in place.
          if (ids === undefined && planned[n] === it.id) { nums[n] = v; qualities[n] = 0; tsCol[n] = ts; n++; }
          else push(it.id, ts, v, "good", undefined);
          continue;
        }
      }
      const d = bits ? decodeBit(reply.data, at) : decodeRegisters(tag, reply.data, at);
      push(it.id, ts, d.value, d.quality, d.reason);
    }
    i++;
  }
  let results: PassResults;
  if (ids === undefined && n === planned.length) results = { cols: b.done(order.names, order.units), ids: planned, bad };
  else {
    // A pass cut short or out of the planned order: names and units of its own.
    const own = ids ?? planned.slice(0, n);
    const units = order.units === undefined ? undefined : own.map((id) => tags[id]!.unit);
    results = { cols: b.done(own.map((id) => tags[id]!.name), units), ids: own, bad };
  }
  return { results, outcome };
}

/**
 * Whether a bad reason made by describeFailure says the device could not be reached (a timeout, a
 * refused or lost connection). The words vary while a device stays unreachable; the device emits
 * such a tag bad once and not again until it has answered (see ModbusDriver.emit).
 */
export function isUnreachableReason(reason: string | undefined): boolean {
  return reason !== undefined && (reason.startsWith("transport: ") || reason.startsWith("timeout: "));
}

export function describeFailure(err: unknown): string {
  if (err instanceof FloorgateError) {
    switch (err.code) {
      case "DRIVER_TIMEOUT": return `timeout: ${err.message}`;
      case "DRIVER_PROTOCOL": return `protocol error: ${err.message}`;
      case "DRIVER_TRANSPORT": return `transport: ${err.message}`;
      default: return err.message;
    }
  }
  return describeError(err);
}
