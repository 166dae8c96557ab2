import { ColumnsBuilder, type SampleColumns } from "../core/sample-columns.js";
import type { Claim, MsgIdDedup } from "./dedup.js";
import type { PushBatch } from "./push-scan.js";

type FreshClaim = Extract<Claim, { kind: "fresh" }>;

/**
 * One round of storing a push body: the messages whose msgIds this call claimed (or that have
 * none), as columns ready for the sink, and what the other messages were. Made synchronously;
 * the caller stores `cols`, then settles every claim of `claims` exactly once with the outcome.
 */
export interface ClaimRound {
  /** the claims this round made; each must be settled once the store is decided */
  readonly claims: FreshClaim[];
  /** their msgIds, for the sink (the journal keeps them with the samples) */
  readonly msgIds: readonly string[];
  /** samples to store; 0 when every message was someone else's */
  readonly values: number;
  /** undefined when `values` is 0 */
  readonly cols: SampleColumns | undefined;
  /** messages already stored durably within the dedup window */
  readonly duplicates: number;
  /** messages of this round whose ts was replaced by the receive time (over the skew limit) */
  readonly skewed: number;
  /** newest sample ts of this round, null when none */
  readonly newest: number | null;
  /** messages another attempt is storing now: retried after it settles, if it failed */
  readonly waiting: { msg: number; wait: Promise<boolean> }[] | undefined;
}

/**
 * Claims the msgIds of messages `todo` of `batch` (undefined: all, the first round) and builds the
 * columns of those this call may store, each message's ts skew-corrected against `receivedAt`.
 * Why apart from the ingest's `accept`: it is the synchronous part of a push, and keeping it out
 * of the async function keeps that function's suspended frame (alive until the body is durable,
 * ten thousand of them at a time under load) small.
 */
export function claimRound(
  dedup: MsgIdDedup,
  deviceId: string,
  batch: PushBatch,
  todo: readonly number[] | undefined,
  claimAt: number,
  receivedAt: number,
  maxSkewMs: number,
): ClaimRound {
  const { msgIds: ids, ts: tsOf, starts, other } = batch;
  const n = batch.messages;
  const count = todo === undefined ? n : todo.length;
  // The messages to store this round: all of `todo` until one is left out (the usual body has no
  // duplicate), then a list of their own.
  let keep: number[] | undefined;
  let values = 0;
  let duplicates = 0;
  const claims: FreshClaim[] = [];
  let allIds = true;
  let waiting: { msg: number; wait: Promise<boolean> }[] | undefined;
  for (let x = 0; x < count; x++) {
    const i = todo === undefined ? x : todo[x]!;
    const id = ids[i];
    if (id !== undefined) {
      const c = dedup.claim(deviceId, id, claimAt);
      if (c.kind !== "fresh") {
        if (c.kind === "duplicate") duplicates++;
        else (waiting ??= []).push({ msg: i, wait: c.wait });
        if (keep === undefined) {
          keep = [];
          for (let y = 0; y < x; y++) keep.push(todo === undefined ? y : todo[y]!);
        }
        continue;
      }
      claims.push(c);
    } else allIds = false;
    keep?.push(i);
    values += starts[i + 1]! - starts[i]!;
  }
  // The usual body (every message has a msgId, every one fresh): the batch's own list is the msgIds'.
  const msgIds = allIds && keep === undefined && todo === undefined ? (batch.msgIds as readonly string[]) : claims.map((c) => c.msgId);
  let skewed = 0;
  let newest: number | null = null;
  if (values === 0) return { claims, msgIds, values, cols: undefined, duplicates, skewed, newest, waiting };
  // Straight into columns (no object per sample). Every message of the body: its tag list and
  // numbers are the columns' as they are.
  const whole = keep === undefined && todo === undefined;
  const list = keep ?? todo;
  const msgs = list === undefined ? n : list.length;
  const b = whole ? new ColumnsBuilder(deviceId, values, batch.nums) : new ColumnsBuilder(deviceId, values);
  const tags = whole ? batch.tags : new Array<string>(values);
  const nums = b.nums;
  const tsCol = b.ts;
  const qualities = b.qualities;
  let k = 0;
  for (let x = 0; x < msgs; x++) {
    const i = list === undefined ? x : list[x]!;
    let ts = tsOf[i] ?? receivedAt;
    if (Math.abs(ts - receivedAt) > maxSkewMs) {
      ts = receivedAt;
      skewed++;
    }
    if (newest === null || ts > newest) newest = ts;
    const last = starts[i + 1]!;
    if (whole && other === undefined) {
      // numbers only, already in place: the timestamps (qualities are 0, good, as carved)
      tsCol.fill(ts, k, last);
      k = last;
      continue;
    }
    for (let j = starts[i]!; j < last; j++, k++) {
      if (!whole) (tags as string[])[k] = batch.tags[j]!;
      if (other !== undefined && other.has(j)) b.set(k, other.get(j)!, 0, ts);
      else {
        if (!whole) nums[k] = batch.nums[j]!;
        tsCol[k] = ts;
        qualities[k] = 0; // good
      }
    }
  }
  return { claims, msgIds, values, cols: b.done(tags), duplicates, skewed, newest, waiting };
}
