/**
 * Read planning: turns a device's tags into the fewest Modbus read requests. Pure functions, so the
 * planning table in the unit tests pins the behaviour without any socket.
 */
import type { ModbusArea } from "./config.js";

/** Registers per read request (FC3/FC4) and bits per read request (FC1/FC2), from the spec. */
export const MAX_REGISTERS = 125;
export const MAX_BITS = 2000;

/** One tag as the planner sees it. `id` is the caller's handle (e.g. an index into its tag list). */
export interface PlanItem {
  id: number;
  unitId: number;
  area: ModbusArea;
  address: number;
  /** registers (register areas) or bits (bit areas) */
  width: number;
  pollMs: number;
}

/** One read request and the tags it answers. */
export interface ReadRequest {
  unitId: number;
  area: ModbusArea;
  pollMs: number;
  start: number;
  count: number;
  /** ids of the tags inside [start, start+count), sorted by address */
  items: PlanItem[];
  /** the request PDU, built on first use and reused every poll (the line never modifies it) */
  pdu?: Buffer;
}

export interface PlanOptions {
  /** registers (or bits) of unused space a merged read may bridge */
  maxGap: number;
  /** one request per tag, for devices that reject merged reads */
  tagByTag: boolean;
}

export function limitFor(area: ModbusArea): number {
  return area === "coil" || area === "discrete" ? MAX_BITS : MAX_REGISTERS;
}

function single(item: PlanItem): ReadRequest {
  return { unitId: item.unitId, area: item.area, pollMs: item.pollMs, start: item.address, count: item.width, items: [item] };
}

/**
 * Groups tags by (unit id, area, poll rate) and merges each group, in address order, into requests
 * no longer than the protocol limit, bridging gaps of at most `maxGap`. Overlapping tags (a bit of
 * a register also read as int16) share a request. Output order is stable: by poll rate, unit id,
 * area, then address.
 */
export function planReads(items: readonly PlanItem[], opts: PlanOptions): ReadRequest[] {
  const groups = new Map<string, PlanItem[]>();
  for (const it of items) {
    const key = `${it.pollMs}|${it.unitId}|${it.area}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(it);
  }
  const areaRank: Record<ModbusArea, number> = { holding: 0, input: 1, coil: 2, discrete: 3 };
  const keys = [...groups.entries()].sort(([, a], [, b]) =>
    a[0]!.pollMs - b[0]!.pollMs || a[0]!.unitId - b[0]!.unitId || areaRank[a[0]!.area] - areaRank[b[0]!.area]);
  const out: ReadRequest[] = [];
  for (const [, group] of keys) {
    const sorted = [...group].sort((a, b) => a.address - b.address || a.width - b.width || a.id - b.id);
    if (opts.tagByTag) { for (const it of sorted) out.push(single(it)); continue; }
    const limit = limitFor(sorted[0]!.area);
    let cur: ReadRequest | undefined;
    for (const it of sorted) {
      if (cur) {
        const end = cur.start + cur.count;
        const newEnd = Math.max(end, it.address + it.width);
        if (it.address - end <= opts.maxGap && newEnd - cur.start <= limit) {
          cur.count = newEnd - cur.start;
          cur.items.push(it);
          continue;
        }
      }
      cur = single(it);
      out.push(cur);
    }
  }
  return out;
}

/**
 * Splits a refused merged request in two halves by tag, each spanning only its own tags, so that a
 * bisection isolates the tags a device refuses. A request with one tag cannot be split: undefined.
 */
export function splitRequest(req: ReadRequest): [ReadRequest, ReadRequest] | undefined {
  if (req.items.length < 2) return undefined;
  const mid = req.items.length >> 1;
  const part = (items: PlanItem[]): ReadRequest => {
    const start = Math.min(...items.map((i) => i.address));
    const end = Math.max(...items.map((i) => i.address + i.width));
    return { unitId: req.unitId, area: req.area, pollMs: req.pollMs, start, count: end - start, items };
  };
  return [part(req.items.slice(0, mid)), part(req.items.slice(mid))];
}
