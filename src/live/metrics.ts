import { Counter, Gauge, type Registry } from "prom-client";
import type { FrameRejectReason } from "./protocol.js";
import type { UpgradeRefusal } from "./upgrade.js";

/** Why a live socket ended: the label of `floorgate_live_closes_total`. */
export type LiveCloseReason =
  /** the client closed it (or its connection went away) */
  | "client"
  /** over its outbound cap for too long: 1013 */
  | "slow"
  /** a frame over 64 KiB: 1009 */
  | "too_large"
  /** a frame the feed does not understand (not JSON, unknown type, bad subscribe, binary): 1008 / 1003 */
  | "bad_frame"
  /** a frame that is not valid WebSocket (ws refused it; 1002 / 1007) */
  | "protocol_error"
  /** nothing (no pong, no frame) between two heartbeat pings */
  | "heartbeat"
  /** the gateway is stopping: 1001 */
  | "shutdown";

/** Frame types the hub sends, the label of `floorgate_live_frames_sent_total`. */
export type LiveFrameType = "hello" | "snapshot" | "samples" | "device" | "health" | "pong" | "error";

/**
 * The live feed's counters, kept as plain numbers on the hot path (a labelled prom-client `inc`
 * per frame would cost a label hash per client per flush) and copied into the registry at scrape
 * time. No per-tag, per-device or per-client labels.
 */
export class LiveCounters {
  clients = 0;
  readonly framesSent = new Map<LiveFrameType, number>();
  readonly closes = new Map<LiveCloseReason, number>();
  readonly rejectedFrames = new Map<FrameRejectReason, number>();
  readonly refused = new Map<UpgradeRefusal, number>();
  /** updates the hub's own tap dropped (its mailbox was full); every subscriber then got a fresh snapshot */
  tapMissed = 0;
  /** flushes in which a client over its cap was held (given conflated values later) instead of sent */
  held = 0;

  sent(type: LiveFrameType, n = 1): void {
    this.framesSent.set(type, (this.framesSent.get(type) ?? 0) + n);
  }

  closed(reason: LiveCloseReason): void {
    this.closes.set(reason, (this.closes.get(reason) ?? 0) + 1);
  }

  rejected(reason: FrameRejectReason): void {
    this.rejectedFrames.set(reason, (this.rejectedFrames.get(reason) ?? 0) + 1);
  }

  refusedUpgrade(reason: UpgradeRefusal): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }

  /** Registers the `floorgate_live_*` families in `registry` (once per registry). */
  register(registry: Registry): void {
    const r = [registry];
    const self = this;
    const labelled = <L extends string>(name: string, help: string, label: string, map: Map<L, number>) =>
      new Counter({
        name, help, labelNames: [label], registers: r,
        collect() {
          this.reset();
          for (const [k, v] of map) if (v > 0) this.inc({ [label]: k }, v);
        },
      });
    new Gauge({ name: "floorgate_live_clients", help: "WebSocket clients connected to /live", registers: r, collect() { this.set(self.clients); } });
    labelled("floorgate_live_frames_sent_total", "Frames sent to /live clients, by type", "type", this.framesSent);
    labelled("floorgate_live_closes_total", "/live sockets ended, by reason (slow = 1013, too_large = 1009)", "reason", this.closes);
    labelled("floorgate_live_rejected_frames_total", "Client frames /live refused (the socket is then closed), by reason", "reason", this.rejectedFrames);
    labelled("floorgate_live_refused_total", "Upgrades to /live refused before the handshake, by reason", "reason", this.refused);
    new Counter({ name: "floorgate_live_tap_missed_total", help: "Updates the live feed's tap dropped because its mailbox was full (clients were sent a fresh snapshot)", registers: r, collect() { this.reset(); this.inc(self.tapMissed); } });
    new Counter({ name: "floorgate_live_held_total", help: "Flushes in which a /live client over its outbound cap got nothing (its values were conflated for later)", registers: r, collect() { this.reset(); this.inc(self.held); } });
  }
}
