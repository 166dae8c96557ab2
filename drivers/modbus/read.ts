/**
 * One pass over a list of planned read requests on a line: sends them in order, decodes the
 * replies, splits merged reads refused with "illegal data address" (the split is written back into
 * the list, so it is remembered), and reports per-tag results. Shared by the poller and `probe`.
 */
import { FloorgateError, describeError, isFloorgateError } from "../../src/core/errors.js";
import type { ModbusTagConfig } from "../../src/config/types.js";
import type { Quality, Sample, SampleValue } from "../../src/core/sample.js";
import { decodeBit, decodeNumberFast, decodeRegisters, isBitArea } from "./decode.js";
import { ILLEGAL_ADDRESS, exceptionText, readFunction, readPdu } from "./frame.js";
import type { Line, LineClient } from "./line.js";
import { splitRequest, type ReadRequest } from "./plan.js";

/**
 * What a pass read: one raw sample per tag read (in the shape the runtime takes, so the poller
 * hands the very same objects on), and beside it, at the same index, the tag's index in the
 * device's tag list. Parallel arrays rather than an `id` field on each sample: one object per
 * value instead of three is most of what keeps the poller's garbage down at 200,000 values/s.
 */
export interface PassResults {
  samples: Sample[];
  ids: number[];
  /** how many of the samples have quality `bad` */
  bad: number;
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
  /** device id written into each sample (probe leaves it empty) */
  device?: string;
}

export async function readPass(
  line: Line, requests: ReadRequest[], tags: readonly ModbusTagConfig[], client: LineClient, opts: PassOptions,
): Promise<{ results: PassResults; outcome: PassOutcome }> {
  // Every planned tag gives at most one sample: size the arrays once instead of regrowing them.
  let total = 0;
  for (const r of requests) total += r.items.length;
  const results: PassResults = { samples: new Array<Sample>(total), ids: new Array<number>(total), bad: 0 };
  let n = 0;
  const device = opts.device ?? "";
  const push = (id: number, ts: number, value: SampleValue, quality: Quality, reason: string | undefined): void => {
    const tag = tags[id]!;
    const s: Sample = { device, tag: tag.name, value, quality, ts };
    if (tag.unit !== undefined) s.unit = tag.unit;
    if (reason !== undefined) s.reason = reason;
    if (quality === "bad") results.bad++;
    results.samples[n] = s;
    results.ids[n++] = id;
  };
  const outcome: PassOutcome = { ok: 0, exceptions: 0, timeouts: 0, transport: 0 };
  const failAll = (req: ReadRequest, reason: string): void => {
    const ts = Date.now();
    for (const it of req.items) push(it.id, ts, null, "bad", reason);
  };
  let i = 0;
  while (i < requests.length) {
    if (opts.signal?.aborted) break;
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
        const n = decodeNumberFast(tag, reply.data, at);
        if (n !== undefined) { push(it.id, ts, n, "good", undefined); continue; }
      }
      const d = bits ? decodeBit(reply.data, at) : decodeRegisters(tag, reply.data, at);
      push(it.id, ts, d.value, d.quality, d.reason);
    }
    i++;
  }
  if (n < total) { results.samples.length = n; results.ids.length = n; } // a pass cut short
  return { results, outcome };
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
