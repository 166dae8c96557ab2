import type { DeviceTable, PushedEntryView } from "../core/device-table.js";
import type { DeviceState } from "../core/sample.js";

/** The ingest's per-device counters, kept in the device table beside the runtime's. */
export interface PushedDeviceCounters {
  /** pushes acknowledged (HTTP 202 / MQTT PUBACK) */
  pushes: number;
  /** messages in acknowledged pushes, duplicates included */
  messages: number;
  /** samples stored */
  samples: number;
  /** messages acknowledged without storing (repeated msgId) */
  duplicates: number;
  /** pushes refused after a valid token (bad body, too large, rate limit, journal full) */
  rejected: number;
  rateLimited: number;
  /** messages whose ts was replaced by gateway time */
  clockSkew: number;
}

export const PUSHED_COUNTERS: readonly (keyof PushedDeviceCounters)[] = ["pushes", "messages", "samples", "duplicates", "rejected", "rateLimited", "clockSkew"];

export interface PushedDevice {
  id: string;
  /** from the device table's silence rule: `connecting` until the first acknowledged push */
  state: DeviceState;
  error: string | null;
  /** RFC 3339: first successful authentication */
  firstSeenTs: string;
  /** RFC 3339: last acknowledged push, null before the first */
  lastPushTs: string | null;
  /** RFC 3339: newest sample ts stored, null before the first */
  lastSampleTs: string | null;
  counters: PushedDeviceCounters;
}

/**
 * Which pushing devices get a place in the device table, so `/api/v1/devices` can list "every
 * device that has pushed" (spec §4). Bounded by admission, not eviction: past `max` devices a new
 * id is refused (the caller answers 429) and every device admitted so far keeps its place, so the
 * device list, the per-device metric series and retained status topics downstream never hold more
 * than `max` pushing devices. Ids for which `reserved(id)` is true (exact ids in the config) always
 * have a place: other ids may fill only `max − reservedCount`. The state itself (counters, last
 * push, online/offline) lives in the device table, not here.
 */
export class PushAdmission {
  /** ids admitted without a reserved place */
  private open = 0;
  private admitted = 0;
  private readonly openMax: number;

  constructor(
    private readonly table: DeviceTable,
    readonly max = 20_000,
    private readonly reserved: (id: string) => boolean = () => false,
    reservedCount = 0,
  ) {
    this.openMax = Math.max(0, max - reservedCount);
  }

  /**
   * True when the device has a place (making it the first time, then `created` is true: a state
   * change worth a log line); undefined for a new id past the limit.
   */
  admit(id: string): { created: boolean } | undefined {
    if (this.table.has(id)) return { created: false };
    const isReserved = this.reserved(id);
    if (!isReserved && this.open >= this.openMax) return undefined;
    if (!isReserved) this.open++;
    this.admitted++;
    this.table.addPushed(id, PUSHED_COUNTERS);
    return { created: true };
  }

  /** Devices admitted so far. */
  size(): number {
    return this.admitted;
  }

  get(id: string): PushedDevice | undefined {
    const e = this.table.pushedDevice(id);
    return e && view(e);
  }

  list(): PushedDevice[] {
    return this.table.pushedDevices().map(view);
  }
}

function view(e: PushedEntryView): PushedDevice {
  const c = e.counters;
  return {
    id: e.id,
    state: e.state,
    error: e.error,
    firstSeenTs: new Date(e.firstSeen).toISOString(),
    lastPushTs: e.lastPush === null ? null : new Date(e.lastPush).toISOString(),
    lastSampleTs: e.lastSampleTs === null ? null : new Date(e.lastSampleTs).toISOString(),
    counters: {
      pushes: c.pushes ?? 0, messages: c.messages ?? 0, samples: c.samples ?? 0, duplicates: c.duplicates ?? 0,
      rejected: c.rejected ?? 0, rateLimited: c.rateLimited ?? 0, clockSkew: c.clockSkew ?? 0,
    },
  };
}
