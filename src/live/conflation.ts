import type { DeviceFrame, LiveSample } from "./protocol.js";

/**
 * What one client has not been sent yet while it was over its outbound cap: the newest value per
 * (device, tag) and the newest state per device. A tag updated a thousand times while the client
 * was held is one entry, so the memory a slow client costs is bounded by the number of tags it
 * subscribed to, never by time or rate. State changes of one device are conflated the same way
 * (the client sees the state the device is in, not every flap it missed); devices keep the order
 * of their first held change.
 */
export class PendingUpdates {
  private readonly samples = new Map<string, LiveSample>();
  private readonly states = new Map<string, DeviceFrame>();

  /** entries held: distinct tags plus distinct devices */
  get size(): number {
    return this.samples.size + this.states.size;
  }

  hold(states: readonly DeviceFrame[], samples: readonly LiveSample[]): void {
    for (const s of states) {
      // delete first: a device whose state changed again moves to the end (after older changes)
      this.states.delete(s.id);
      this.states.set(s.id, s);
    }
    for (const s of samples) this.samples.set(`${s.device}\u0000${s.tag}`, s);
  }

  /** Everything held, oldest first, and empty afterwards. */
  drain(): { states: DeviceFrame[]; samples: LiveSample[] } {
    const out = { states: [...this.states.values()], samples: [...this.samples.values()] };
    this.clear();
    return out;
  }

  clear(): void {
    this.samples.clear();
    this.states.clear();
  }
}
