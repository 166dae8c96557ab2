import { http } from "./gateway-process.js";

/**
 * A simulated 5G device for tests: pushes numbered samples in order, retrying each message with
 * the same msgId until it gets a 202, and records exactly which samples were acknowledged.
 * Sample k of a device has tag `s{k % per}` and value k, so the value alone identifies it.
 */
export class TestDevice {
  readonly acked: number[] = [];
  /** values of messages sent but never acknowledged (e.g. the gateway was killed mid-request) */
  readonly unacked: number[] = [];
  private next = 0;
  statuses = new Map<number, number>();

  constructor(readonly id: string, private readonly token: string, private readonly perMessage = 10) {}

  /** Pushes `messages` messages; `base()` is read per request so the caller can move the gateway. */
  async push(base: () => string, messages: number, opts: { retryUntilAcked?: boolean; onAck?: () => void | Promise<void> } = {}): Promise<void> {
    for (let m = 0; m < messages; m++) {
      const first = this.next;
      const values: Record<string, number> = {};
      for (let i = 0; i < this.perMessage; i++) values[`s${i}`] = first + i;
      this.next += this.perMessage;
      const body = JSON.stringify({ msgId: `${this.id}-${first}`, values });
      for (let attempt = 0; ; attempt++) {
        const r = await http("POST", `${base()}/api/v1/ingest/${this.id}`, {
          body, headers: { "content-type": "application/json", authorization: `Bearer ${this.token}` },
        }).catch(() => ({ status: 0, body: "", headers: {} }));
        this.statuses.set(r.status, (this.statuses.get(r.status) ?? 0) + 1);
        if (r.status === 202) {
          for (let i = 0; i < this.perMessage; i++) this.acked.push(first + i);
          await opts.onAck?.();
          break;
        }
        if (!opts.retryUntilAcked || attempt > 200) {
          for (let i = 0; i < this.perMessage; i++) this.unacked.push(first + i);
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}

export interface TelemetryMessage { gateway: string; device: string; batch: number; samples: { tag: string; value: number | boolean | string | null; quality: string; ts: string; unit?: string }[] }
