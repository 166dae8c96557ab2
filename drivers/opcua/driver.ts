/**
 * The OPC UA driver for one device: an outer loop of our own (connect → session → subscribe or
 * poll → wait for a loss → close → back off → again), so the device's state always tells the
 * truth and a server restart or network cut heals by itself. Loaded lazily by plugin.ts: importing
 * this file loads node-opcua.
 */
import {
  AttributeIds, DataType, NodeId, ReferenceTypeIds, coerceNodeId, resolveNodeId,
  type BrowsePath, type ClientSession, type DataValue,
} from "node-opcua";
import { Backoff, sleep } from "../../src/core/backoff.js";
import type { Driver, DriverContext } from "../../src/core/driver.js";
import { FloorgateError, isFloorgateError } from "../../src/core/errors.js";
import type { Sample, SampleValue } from "../../src/core/sample.js";
import type { OpcuaDeviceConfig } from "./config.js";
import { closeOrphan, firstLine, openConnection, sessionTimingOf, withTimeout, UntrustedServerError, type OpcuaConnection } from "./connect.js";
import { attachLogger } from "./logging.js";
import { NotificationColumns } from "./notifications.js";
import { TagSubscription } from "./subscription.js";
import { badSample, coerceForWrite, sampleOf } from "./values.js";

/** Longest wait between attempts, whatever reconnectMaxMs says: a returning server is back within 10 s. */
export const MAX_RETRY_MS = 3_000;

interface Live {
  conn: OpcuaConnection;
  /** NodeId per tag name, parsed once */
  nodeIds: Map<string, NodeId>;
  /** built-in DataType per tag, read on first write of this session */
  dataTypes: Map<string, DataType>;
}

export class OpcuaDriver implements Driver {
  private live: Live | undefined;
  /**
   * The session of a connection whose channel was lost (a network cut, a server restart): still
   * on the server, unless it restarted, until its session timeout. The next connection closes it
   * there once online (closeOrphan), so the server does not hold two sessions of this device.
   */
  private orphan: { session: ClientSession; until: number } | undefined;

  constructor(private readonly cfg: OpcuaDeviceConfig) {}

  async run(ctx: DriverContext): Promise<void> {
    if (ctx.signal.aborted) return;
    const detach = attachLogger(ctx.log, this.cfg.connection.password);
    const backoff = new Backoff({ initialMs: 250, maxMs: Math.max(250, Math.min(this.cfg.reconnectMaxMs, MAX_RETRY_MS)) });
    ctx.setState("connecting");
    try {
      while (!ctx.signal.aborted) {
        const why = await this.attempt(ctx, backoff);
        if (ctx.signal.aborted) break;
        if (why) ctx.log.debug({ device: this.cfg.id, reason: why }, "opcua attempt ended");
        await sleep(backoff.next(), ctx.signal).catch(() => undefined);
      }
    } finally {
      detach();
    }
  }

  /** One connection's life; returns why it ended (never throws for device trouble). */
  private async attempt(ctx: DriverContext, backoff: Backoff): Promise<string | undefined> {
    let conn: OpcuaConnection | undefined;
    let sub: TagSubscription | undefined;
    let columns: NotificationColumns | undefined;
    let lostChannel = false;
    let abortListener: (() => void) | undefined;
    const onAbort = new Promise<string>((r) => {
      abortListener = () => r("stopped");
      ctx.signal.addEventListener("abort", abortListener, { once: true });
    });
    try {
      const opening = openConnection(this.cfg, (e) => ctx.count(e), ctx.signal);
      conn = await Promise.race([opening, onAbort.then(() => undefined)]);
      if (!conn) {
        // The abort disconnects the client; a session that made it anyway is closed, not leaked.
        void opening.then((c) => c.close(), () => undefined);
        return "stopped";
      }
      const session = conn.session;
      const nodeIds = this.parseNodeIds(ctx);
      const units = await this.readUnits(session, nodeIds, ctx);
      const live: Live = { conn, nodeIds, dataTypes: new Map() };
      let ended: Promise<string>;
      if (this.cfg.mode === "subscribe") {
        const cols = new NotificationColumns(this.cfg.id, (batch) => { if (!ctx.signal.aborted) ctx.emit(batch).catch(() => undefined); });
        columns = cols;
        sub = new TagSubscription(this.cfg, session, units, {
          value: (tag, dv, now, unit) => cols.add(tag, dv, now, unit),
          emit: (samples) => { cols.flush(); ctx.emit(samples).catch(() => undefined); },
          count: (e) => ctx.count(e),
          debug: (m) => ctx.log.debug({ device: this.cfg.id }, m),
        });
        await sub.start();
        ended = sub.failed;
      } else {
        ended = this.pollLoop(ctx, session, nodeIds, units, conn.lost);
      }
      this.live = live;
      ctx.setState("online");
      backoff.reset();
      this.closeOrphanOn(conn, ctx);
      const why = await Promise.race([conn.lost.then((w) => { lostChannel = true; return w; }), ended, onAbort]);
      if (why !== "stopped") {
        this.live = undefined;
        columns?.flush(); // values received before the loss go before its bad samples
        ctx.setState("offline", why);
        await ctx.emit(this.cfg.tags.map((t) => badSample(this.cfg.id, t.name, `device offline: ${why}`, Date.now(), t.unit)));
      }
      return why;
    } catch (err) {
      if (ctx.signal.aborted) return "stopped";
      const msg = err instanceof Error ? firstLine(err.message) : String(err);
      if (err instanceof UntrustedServerError) ctx.setState("error", msg);
      else if (isFloorgateError(err, "OPCUA_SECURITY")) ctx.setState("error", msg);
      else if (isFloorgateError(err, "DRIVER_TIMEOUT")) {
        ctx.count("timeout");
        ctx.setState("offline", `${msg}; retrying every ≤${Math.min(this.cfg.reconnectMaxMs, MAX_RETRY_MS)} ms`);
      } else ctx.setState("offline", `${msg}; retrying every ≤${Math.min(this.cfg.reconnectMaxMs, MAX_RETRY_MS)} ms`);
      return msg;
    } finally {
      this.live = undefined;
      if (abortListener) ctx.signal.removeEventListener("abort", abortListener);
      if (sub) await sub.close(!lostChannel);
      if (conn) {
        const kept = await conn.close(lostChannel);
        if (kept) this.orphan = { session: kept, until: performance.now() + sessionTimingOf(this.cfg).sessionTimeoutMs };
      }
    }
  }

  /** In the background (values flow meanwhile): closes the previous connection's orphaned session through `conn`. */
  private closeOrphanOn(conn: OpcuaConnection, ctx: DriverContext): void {
    const o = this.orphan;
    this.orphan = undefined;
    if (!o || performance.now() > o.until) return; // the server has timed it out by now
    void closeOrphan(conn, o.session, Math.min(this.cfg.timeoutMs, 2_000)).then((closed) => {
      if (closed) ctx.count("orphan_session_closed");
      ctx.log.debug({ device: this.cfg.id }, closed ? "closed the session the lost connection left on the server" : "the lost connection's session was gone from the server already");
    });
  }

  private parseNodeIds(ctx: DriverContext): Map<string, NodeId> {
    const out = new Map<string, NodeId>();
    for (const t of this.cfg.tags) {
      try {
        out.set(t.name, coerceNodeId(t.nodeId));
      } catch {
        ctx.log.warn({ device: this.cfg.id, tag: t.name }, `NodeId ${t.nodeId} cannot be parsed`);
      }
    }
    return out;
  }

  /** Units from each node's EngineeringUnits property (EUInformation), for tags without `unit`; once per session. */
  private async readUnits(session: ClientSession, nodeIds: Map<string, NodeId>, ctx: DriverContext): Promise<Map<string, string>> {
    const units = new Map<string, string>();
    const wanted = this.cfg.tags.filter((t) => t.unit === undefined && nodeIds.has(t.name));
    if (wanted.length === 0) return units;
    try {
      const paths: BrowsePath[] = wanted.map((t) => ({
        startingNode: nodeIds.get(t.name)!,
        relativePath: { elements: [{ referenceTypeId: resolveNodeId(ReferenceTypeIds.HasProperty), isInverse: false, includeSubtypes: true, targetName: { namespaceIndex: 0, name: "EngineeringUnits" } }] },
      }) as unknown as BrowsePath);
      const found = await withTimeout(session.translateBrowsePath(paths), this.cfg.timeoutMs, "translateBrowsePath");
      const targets: { tag: string; nodeId: NodeId }[] = [];
      found.forEach((r, i) => {
        const target = r.statusCode.isGood() ? r.targets?.[0]?.targetId : undefined;
        if (target) targets.push({ tag: wanted[i]!.name, nodeId: NodeId.resolveNodeId(target.toString()) });
      });
      if (targets.length === 0) return units;
      const values = await withTimeout(session.read(targets.map((t) => ({ nodeId: t.nodeId, attributeId: AttributeIds.Value }))), this.cfg.timeoutMs, "read EngineeringUnits");
      values.forEach((dv, i) => {
        const eu = dv.value?.value as { displayName?: { text?: string | null } } | null | undefined;
        const text = eu?.displayName?.text;
        if (dv.statusCode.isGood() && typeof text === "string" && text !== "") units.set(targets[i]!.tag, text);
      });
    } catch (err) {
      ctx.log.debug({ device: this.cfg.id, err: firstLine(String(err)) }, "EngineeringUnits not read");
    }
    return units;
  }

  /** Poll mode: one Read of every tag per period; resolves with a reason once reads keep failing. */
  private async pollLoop(ctx: DriverContext, session: ClientSession, nodeIds: Map<string, NodeId>, units: Map<string, string>, lost: Promise<string>): Promise<string> {
    let stop = false;
    void lost.then(() => { stop = true; });
    const tags = this.cfg.tags;
    const toRead = tags.map((t) => ({ nodeId: nodeIds.get(t.name) ?? NodeId.nullNodeId, attributeId: AttributeIds.Value }));
    let failures = 0;
    // The schedule runs on the monotonic clock (a wall clock set back would stall the polls for as
    // long); samples carry wall time.
    let next = performance.now();
    while (!stop && !ctx.signal.aborted) {
      const now = performance.now();
      try {
        const values: DataValue[] = await withTimeout(session.read(toRead, 0), this.cfg.timeoutMs, "read");
        failures = 0;
        const at = Date.now();
        const samples: Sample[] = values.map((dv, i) => {
          const t = tags[i]!;
          return nodeIds.has(t.name) ? sampleOf(this.cfg.id, t.name, dv, at, t.unit === undefined ? units.get(t.name) : undefined) : badSample(this.cfg.id, t.name, `NodeId ${t.nodeId} cannot be parsed`, at);
        });
        await ctx.emit(samples);
      } catch (err) {
        if (stop || ctx.signal.aborted) break;
        if (isFloorgateError(err, "DRIVER_TIMEOUT")) ctx.count("timeout");
        if (++failures >= 2) return `reads failing: ${firstLine(err instanceof Error ? err.message : String(err))}`;
      }
      next += this.cfg.pollMs;
      const done = performance.now();
      if (next < done) {
        ctx.count("skipped_poll");
        next = done + this.cfg.pollMs - ((done - now) % this.cfg.pollMs);
      }
      await sleep(Math.max(0, next - performance.now()), ctx.signal).catch(() => undefined);
    }
    return "stopped";
  }

  async write(tag: string, raw: SampleValue): Promise<void> {
    const t = this.cfg.tags.find((x) => x.name === tag);
    if (!t) throw new FloorgateError("WRITE_REFUSED", `device ${this.cfg.id} has no tag ${tag}`);
    if (!t.writable) throw new FloorgateError("WRITE_REFUSED", `tag ${this.cfg.id}/${tag} is not writable`);
    const live = this.live;
    if (!live) throw new FloorgateError("DRIVER_TRANSPORT", `device ${this.cfg.id} is not connected`);
    const nodeId = live.nodeIds.get(tag);
    if (!nodeId) throw new FloorgateError("WRITE_REFUSED", `NodeId ${t.nodeId} cannot be parsed`);
    const session = live.conn.session;
    let dataType = live.dataTypes.get(tag);
    if (dataType === undefined) {
      dataType = await withTimeout(session.getBuiltInDataType(nodeId), this.cfg.timeoutMs, "read DataType");
      live.dataTypes.set(tag, dataType);
    }
    const variant = coerceForWrite(raw, dataType, `${this.cfg.id}/${tag}`);
    const status = await withTimeout(session.write({ nodeId, attributeId: AttributeIds.Value, value: { value: variant } }), this.cfg.timeoutMs, "write");
    if (status.isGood()) return;
    const refused = /BadNotWritable|BadUserAccessDenied|BadTypeMismatch|BadOutOfRange|BadWriteNotSupported|BadNodeIdUnknown/.test(status.name);
    throw new FloorgateError(refused ? "WRITE_REFUSED" : "DRIVER_EXCEPTION", `server answered ${status.name} to the write of ${this.cfg.id}/${tag}`);
  }
}

