/**
 * Devices that have authenticated to the ingest (HTTP or MQTT), so `/api/v1/devices` can list
 * "every device that has pushed" (spec §4), with their counters. Bounded: past `max` entries the
 * least recently created is forgotten (glob ids could otherwise grow it without limit).
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

interface Entry {
  id: string;
  firstSeen: number;
  lastPush: number | null;
  lastSample: number | null;
  counters: PushedDeviceCounters;
}

export class PushedDevices {
  private readonly map = new Map<string, Entry>();
  constructor(private readonly max = 10_000) {}

  /** Returns the entry, creating it; `created` is true the first time (a state change worth a log line). */
  touch(id: string, now: number): { entry: Entry; created: boolean } {
    let entry = this.map.get(id);
    if (entry) return { entry, created: false };
    if (this.map.size >= this.max) {
      const first = this.map.keys().next();
      if (!first.done) this.map.delete(first.value);
    }
    entry = {
      id, firstSeen: now, lastPush: null, lastSample: null,
      counters: { pushes: 0, messages: 0, samples: 0, duplicates: 0, rejected: 0, rateLimited: 0, clockSkew: 0 },
    };
    this.map.set(id, entry);
    return { entry, created: true };
  }

  get(id: string): PushedDevice | undefined {
    const e = this.map.get(id);
    return e && view(e);
  }

  list(): PushedDevice[] {
    return [...this.map.values()].map(view);
  }
}

function view(e: Entry): PushedDevice {
  return {
    id: e.id,
    firstSeenTs: new Date(e.firstSeen).toISOString(),
    lastPushTs: e.lastPush === null ? null : new Date(e.lastPush).toISOString(),
    lastSampleTs: e.lastSample === null ? null : new Date(e.lastSample).toISOString(),
    counters: { ...e.counters },
  };
}
