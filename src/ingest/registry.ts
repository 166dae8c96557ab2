/**
 * Devices admitted to the ingest (HTTP or MQTT), so `/api/v1/devices` can list "every device that
 * has pushed" (spec §4), with their counters. Bounded by admission, not eviction: past `max`
 * devices a new id is refused (the caller answers 429) and every device admitted so far keeps its
 * place, so the device list, the per-device metric series and retained status topics downstream
 * never hold more than `max` pushing devices. Ids for which `reserved(id)` is true (exact ids in
 * the config) always have a place: other ids may fill only `max − reservedCount`.
 */
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

export interface PushedDevice {
  id: string;
  /** RFC 3339: first successful authentication */
  firstSeenTs: string;
  /** RFC 3339: last acknowledged push, null before the first */
  lastPushTs: string | null;
  /** RFC 3339: newest sample ts stored, null before the first */
  lastSampleTs: string | null;
  counters: PushedDeviceCounters;
}

export interface PushedDeviceEntry {
  id: string;
  firstSeen: number;
  lastPush: number | null;
  lastSample: number | null;
  counters: PushedDeviceCounters;
}

export class PushedDevices {
  private readonly map = new Map<string, PushedDeviceEntry>();
  /** ids admitted without a reserved place */
  private open = 0;
  private readonly openMax: number;

  constructor(
    readonly max = 20_000,
    private readonly reserved: (id: string) => boolean = () => false,
    reservedCount = 0,
  ) {
    this.openMax = Math.max(0, max - reservedCount);
  }

  /**
   * Returns the device's entry, creating it when there is room; undefined for a new id past the
   * limit. `created` is true the first time (a state change worth a log line).
   */
  admit(id: string, now: number): { entry: PushedDeviceEntry; created: boolean } | undefined {
    const entry = this.map.get(id);
    if (entry) return { entry, created: false };
    const isReserved = this.reserved(id);
    if (!isReserved && this.open >= this.openMax) return undefined;
    if (!isReserved) this.open++;
    const created: PushedDeviceEntry = {
      id, firstSeen: now, lastPush: null, lastSample: null,
      counters: { pushes: 0, messages: 0, samples: 0, duplicates: 0, rejected: 0, rateLimited: 0, clockSkew: 0 },
    };
    this.map.set(id, created);
    return { entry: created, created: true };
  }

  /** The entry of an admitted device (the ingest updates its counters in place). */
  entry(id: string): PushedDeviceEntry | undefined {
    return this.map.get(id);
  }

  /** Devices admitted so far. */
  size(): number {
    return this.map.size;
  }

  get(id: string): PushedDevice | undefined {
    const e = this.map.get(id);
    return e && view(e);
  }

  list(): PushedDevice[] {
    return [...this.map.values()].map(view);
  }
}

function view(e: PushedDeviceEntry): PushedDevice {
  return {
    id: e.id,
    firstSeenTs: new Date(e.firstSeen).toISOString(),
    lastPushTs: e.lastPush === null ? null : new Date(e.lastPush).toISOString(),
    lastSampleTs: e.lastSample === null ? null : new Date(e.lastSample).toISOString(),
    counters: { ...e.counters },
  };
}
