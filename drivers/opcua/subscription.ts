/**
 * Subscribe mode: one subscription per session, its tags monitored in groups of equal parameters
 * (sampling interval, deadband), one CreateMonitoredItems call per group. A tag the server refuses
 * (unknown NodeId, filter not allowed) is emitted `bad` with the server's reason; the others run.
 *
 * Values are read from each Publish response as a whole (the subscription's
 * `received_notifications`), mapped from client handle to tag, not from one `changed` event per
 * item and value: at 100,000 values/s the two event hops per value were a cost of their own.
 *
 * The subscription is watched: a keep-alive or a notification must arrive within twice its
 * keep-alive period plus the call timeout, else it is terminated and created again (with every
 * item) on the same session. node-opcua's own subscription recovery is never relied on: on a lost
 * connection the whole session goes and the driver builds a new one (driver.ts).
 */
import {
  AttributeIds, ClientMonitoredItemGroup, DataChangeFilter, DataChangeNotification, DataChangeTrigger, DeadbandType,
  TimestampsToReturn, type ClientSession, type ClientSubscription, type DataValue, type MonitoringParametersOptions,
  type NotificationMessage,
} from "node-opcua";
import type { Sample } from "../../src/core/sample.js";
import type { OpcuaDeviceConfig, OpcuaTagConfig } from "./config.js";
import { firstLine, withTimeout } from "./connect.js";
import { badSample } from "./values.js";

export interface SubscriptionSink {
  /** One value of `tag` (`unit`: the node's EngineeringUnits when the config gives none); `now` is the receive time. */
  value(tag: string, dv: DataValue, now: number, unit: string | undefined): void;
  /** Samples made by the driver itself (tags the server refused), in order after the values before them. */
  emit(samples: Sample[]): void;
  count(event: string): void;
  debug(msg: string): void;
}

interface Group {
  tags: { tag: OpcuaTagConfig; index: number }[];
  params: MonitoringParametersOptions;
}

/** Publishing interval and keep-alive count so that a keep-alive comes at least every ~5 s. */
export function timingOf(cfg: OpcuaDeviceConfig): { publishingMs: number; keepAliveCount: number; keepAliveMs: number } {
  const fastest = Math.min(cfg.samplingMs, ...cfg.tags.map((t) => t.samplingMs ?? cfg.samplingMs));
  const publishingMs = Math.max(50, Math.min(fastest || 100, 5_000));
  const keepAliveCount = Math.max(1, Math.ceil(Math.min(5_000, Math.max(publishingMs, 1_000)) / publishingMs));
  return { publishingMs, keepAliveCount, keepAliveMs: publishingMs * keepAliveCount };
}

function groupsOf(cfg: OpcuaDeviceConfig): Group[] {
  const byKey = new Map<string, Group>();
  cfg.tags.forEach((tag, index) => {
    const sampling = tag.samplingMs ?? cfg.samplingMs;
    const db = tag.deadband !== undefined && tag.deadband > 0 ? tag.deadband : 0;
    const key = `${sampling}|${db}|${db > 0 ? tag.deadbandType : ""}`;
    let g = byKey.get(key);
    if (!g) {
      const params: MonitoringParametersOptions = { samplingInterval: sampling, discardOldest: true, queueSize: cfg.queueSize };
      if (db > 0) {
        params.filter = new DataChangeFilter({
          trigger: DataChangeTrigger.StatusValue,
          deadbandType: tag.deadbandType === "percent" ? DeadbandType.Percent : DeadbandType.Absolute,
          deadbandValue: db,
        });
      }
      g = { tags: [], params };
      byKey.set(key, g);
    }
    g.tags.push({ tag, index });
  });
  return [...byKey.values()];
}

/** The live subscription of one session. `quiet` resolves when it could not be recreated. */
export class TagSubscription {
  private sub: ClientSubscription | undefined;
  /** performance.now() ms: the keep-alive watchdog must not fire, or go blind, when the wall clock steps */
  private lastActivity = performance.now();
  private watchdog: NodeJS.Timeout | undefined;
  private closed = false;
  private recreating = false;
  private failResolve!: (why: string) => void;
  /** Resolves with a reason when the subscription is lost beyond repair on this session. */
  readonly failed = new Promise<string>((r) => { this.failResolve = r; });

  constructor(
    private readonly cfg: OpcuaDeviceConfig,
    private readonly session: ClientSession,
    private readonly units: ReadonlyMap<string, string>,
    private readonly sink: SubscriptionSink,
  ) {}

  /** Creates the subscription and its items; rejects when the server refuses the subscription itself. */
  async start(): Promise<void> {
    await this.create();
    const { keepAliveMs } = timingOf(this.cfg);
    const limit = 2 * keepAliveMs + this.cfg.timeoutMs;
    this.watchdog = setInterval(() => {
      if (this.closed || this.recreating) return;
      const quiet = performance.now() - this.lastActivity;
      if (quiet > limit) void this.recreate(`no keep-alive for ${Math.round(quiet)} ms`);
    }, Math.max(250, Math.min(keepAliveMs, 2_000)));
    this.watchdog.unref?.();
  }

  private async create(): Promise<void> {
    const { publishingMs, keepAliveCount } = timingOf(this.cfg);
    const sub = await withTimeout(this.session.createSubscription2({
      requestedPublishingInterval: publishingMs,
      requestedMaxKeepAliveCount: keepAliveCount,
      requestedLifetimeCount: keepAliveCount * 6,
      maxNotificationsPerPublish: 0,
      publishingEnabled: true,
      priority: 1,
    }), this.cfg.timeoutMs, "createSubscription");
    this.sub = sub;
    this.lastActivity = performance.now();
    const touch = (): void => { this.lastActivity = performance.now(); };
    sub.on("keepalive", touch);
    sub.on("received_notifications", touch);
    sub.on("error", (err: Error) => this.sink.debug(`subscription error: ${err.message}`));
    sub.on("internal_error", (err: Error) => { if (sub === this.sub) void this.recreate(`subscription internal error: ${firstLine(err.message)}`); });
    sub.on("status_changed", (status: { name: string }) => { if (sub === this.sub) void this.recreate(`subscription status ${status.name}`); });
    sub.on("terminated", () => { if (sub === this.sub && !this.closed) void this.recreate("subscription terminated by the server"); });

    // client handle → tag. node-opcua numbers the handles when it sends CreateMonitoredItems,
    // before any notification for them can come; the index is (re)built on a miss once a group
    // was added, so a value racing ahead of `initialized` still finds its tag.
    const byHandle: ({ name: string; unit: string | undefined } | undefined)[] = [];
    const created: { group: ClientMonitoredItemGroup; tags: Group["tags"] }[] = [];
    let stale = false;
    const index = (): void => {
      stale = false;
      for (const { group, tags } of created) {
        group.monitoredItems.forEach((item, i) => {
          const h = item.monitoringParameters.clientHandle;
          if (h === 0xffffffff) return; // not numbered yet
          const t = tags[i]!.tag;
          byHandle[h] = { name: t.name, unit: t.unit === undefined ? this.units.get(t.name) : undefined };
        });
      }
    };
    sub.on("received_notifications", (msg: NotificationMessage) => {
      if (sub !== this.sub) return;
      const now = Date.now();
      for (const data of msg.notificationData ?? []) {
        if (!(data instanceof DataChangeNotification)) continue;
        for (const n of data.monitoredItems ?? []) {
          let t = byHandle[n.clientHandle];
          if (t === undefined && stale) { index(); t = byHandle[n.clientHandle]; }
          if (t !== undefined) this.sink.value(t.name, n.value, now, t.unit);
        }
      }
    });

    const now = Date.now();
    const refused: Sample[] = [];
    for (const g of groupsOf(this.cfg)) {
      const items = g.tags.map(({ tag }) => ({ nodeId: tag.nodeId, attributeId: AttributeIds.Value }));
      const group = ClientMonitoredItemGroup.create(sub, items, g.params, TimestampsToReturn.Both);
      created.push({ group, tags: g.tags });
      stale = true;
      group.on("err", (msg: string) => this.sink.debug(`monitored item group: ${msg}`));
      await withTimeout(new Promise<void>((resolve, reject) => {
        group.once("initialized", () => resolve());
        group.once("terminated", (err: Error) => reject(err));
      }), this.cfg.timeoutMs, "createMonitoredItems");
      index();
      group.monitoredItems.forEach((item, i) => {
        const t = g.tags[i]!;
        if (item.statusCode.isNotGood()) {
          this.sink.count("tag_refused");
          refused.push(badSample(this.cfg.id, t.tag.name, `server refused to monitor ${t.tag.nodeId}: ${item.statusCode.name}`, now, t.tag.unit ?? this.units.get(t.tag.name)));
        }
      });
    }
    if (refused.length) this.sink.emit(refused);
  }

  /** Terminates the subscription (bounded) and creates it again with every item. */
  private async recreate(why: string): Promise<void> {
    if (this.closed || this.recreating) return;
    this.recreating = true;
    this.sink.count("subscription_recreated");
    this.sink.debug(`recreating the subscription: ${why}`);
    try {
      await this.terminateCurrent();
      if (this.closed) return;
      await this.create();
    } catch (err) {
      this.failResolve(`subscription could not be recreated (${why}): ${firstLine(err instanceof Error ? err.message : String(err))}`);
    } finally {
      this.recreating = false;
    }
  }

  private async terminateCurrent(): Promise<void> {
    const sub = this.sub;
    this.sub = undefined;
    if (!sub) return;
    sub.removeAllListeners();
    sub.on("error", () => undefined);
    await withTimeout(sub.terminate(), Math.min(this.cfg.timeoutMs, 2_000), "deleteSubscription").catch(() => undefined);
  }

  /** Stops watching; deletes the subscription on the server when `serverReachable`. Never rejects. */
  async close(serverReachable: boolean): Promise<void> {
    this.closed = true;
    if (this.watchdog) clearInterval(this.watchdog);
    if (serverReachable) await this.terminateCurrent();
    else {
      this.sub?.removeAllListeners();
      this.sub?.on("error", () => undefined);
      this.sub = undefined;
    }
  }
}
