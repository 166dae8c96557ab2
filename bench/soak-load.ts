/**
 * The soak's load and its books: HTTP devices that push bodies of several messages with unique
 * values and msgIds, retrying the same body until a 202 (the only moment a sample counts as
 * acknowledged), and compact per-device counters of values seen.
 */
import { http } from "../test/helpers/gateway-process.js";

/** How many times each non-negative integer value was seen; grows as needed, saturates at 255. */
export class ValueCounts {
  private counts = new Uint8Array(4096);
  /** highest value seen + 1 */
  size = 0;

  /** Counts one sighting; returns how many there were before. */
  add(v: number): number {
    if (v >= this.counts.length) {
      let n = this.counts.length;
      while (n <= v) n *= 2;
      const grown = new Uint8Array(n);
      grown.set(this.counts);
      this.counts = grown;
    }
    const before = this.counts[v]!;
    if (before < 255) this.counts[v] = before + 1;
    if (v >= this.size) this.size = v + 1;
    return before;
  }

  get(v: number): number {
    return v < this.counts.length ? this.counts[v]! : 0;
  }
}

export interface PushOptions {
  messagesPerBody: number;
  valuesPerMessage: number;
  /** pause after each acknowledged body, ms (±50 % jitter) */
  intervalMs: number;
  random: () => number;
}

/** One acknowledged message, for tracing a missing sample back to when it was acknowledged. */
export interface AckRecord { msgId: string; firstValue: number; ackedAtMs: number; attempts: number }

/**
 * A simulated 5G device. Message m carries tags s0..s{k-1} with values m·k … m·k+k-1 and msgId
 * `{id}-m{m}`; a body of several messages is retried unchanged (same msgIds) on anything but 202:
 * a connection refused while the gateway is down, 503 while the journal refuses data, a timeout.
 */
export class Pusher {
  readonly acked = new ValueCounts();
  ackedSamples = 0;
  ackedBodies = 0;
  /** samples of bodies never acknowledged before the soak gave up on them at the end */
  givenUp = 0;
  readonly statuses = new Map<string, number>();
  /** per message number: when it was acknowledged (ms since the soak started) and after how many tries */
  private readonly ackAt: number[] = [];
  private readonly tries: number[] = [];
  private nextMsg = 0;

  constructor(readonly id: string, private readonly token: string, private readonly base: () => string, private readonly opts: PushOptions, private readonly t0: number) {}

  /**
   * Pushes until `stop.now`; then finishes the body in hand, retrying it until `stop.giveUpAt`
   * (ms epoch) at the latest.
   */
  async run(stop: { now: boolean; giveUpAt: number }): Promise<void> {
    const { messagesPerBody: mpb, valuesPerMessage: k, random } = this.opts;
    while (!stop.now) {
      const first = this.nextMsg;
      this.nextMsg += mpb;
      const msgs = [];
      for (let m = first; m < first + mpb; m++) {
        const values: Record<string, number> = {};
        for (let t = 0; t < k; t++) values[`s${t}`] = m * k + t;
        msgs.push({ msgId: `${this.id}-m${m}`, values });
      }
      const body = JSON.stringify(msgs);
      let backoff = 50;
      for (let attempt = 1; ; attempt++) {
        const r = await http("POST", `${this.base()}/api/v1/ingest/${this.id}`, {
          body, headers: { "content-type": "application/json", authorization: `Bearer ${this.token}` },
        }).catch((err: Error) => ({ status: 0, body: err.message, headers: {} as Record<string, string | string[] | undefined> }));
        const key = r.status === 0 ? "error" : String(r.status);
        this.statuses.set(key, (this.statuses.get(key) ?? 0) + 1);
        if (r.status === 202) {
          const at = Date.now() - this.t0;
          for (let m = first; m < first + mpb; m++) {
            for (let t = 0; t < k; t++) this.acked.add(m * k + t);
            this.ackAt[m] = at;
            this.tries[m] = attempt;
          }
          this.ackedSamples += mpb * k;
          this.ackedBodies++;
          break;
        }
        if (r.status >= 400 && r.status < 500 && r.status !== 429 && r.status !== 408) {
          throw new Error(`${this.id}: the gateway refused a valid body with ${r.status}: ${r.body.slice(0, 200)}`);
        }
        if (stop.now && Date.now() > stop.giveUpAt) {
          this.givenUp += mpb * k;
          return;
        }
        const retryAfter = r.status === 429 ? Number(r.headers["retry-after"] ?? 1) * 1000 : 0;
        await sleep(Math.max(retryAfter, backoff * (0.5 + random())));
        backoff = Math.min(backoff * 2, 1000);
      }
      await sleep(this.opts.intervalMs * (0.5 + random()));
    }
  }

  /** The acknowledgement record of the message holding `value`. */
  ackOf(value: number): AckRecord | undefined {
    const k = this.opts.valuesPerMessage;
    const m = Math.floor(value / k);
    const at = this.ackAt[m];
    return at === undefined ? undefined : { msgId: `${this.id}-m${m}`, firstValue: m * k, ackedAtMs: at, attempts: this.tries[m] ?? 0 };
  }

  /** Acknowledged values, ascending. */
  *ackedValues(): Generator<number> {
    for (let v = 0; v < this.acked.size; v++) if (this.acked.get(v) > 0) yield v;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
