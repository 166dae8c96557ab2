import type { DeviceState, Quality, SampleValue } from "../core/sample.js";
import type { HealthReport } from "../core/status.js";
import { globProblem, MAX_GLOBS } from "./glob.js";

/** The protocol version in `hello` (spec §5). */
export const PROTOCOL = 1;

/** One tag's latest value as the feed sends it (spec §1's sample, `ts` as RFC 3339). */
export interface LiveSample {
  device: string;
  tag: string;
  value: SampleValue;
  quality: Quality;
  ts: string;
  unit?: string;
}

/** A device state change (`{"type":"device",…}`); `ts` is the gateway time of the change. */
export interface DeviceFrame {
  type: "device";
  id: string;
  state: DeviceState;
  error: string | null;
  ts: string;
}

export interface SnapshotDevice {
  id: string;
  state: DeviceState;
  error: string | null;
  tags: { tag: string; value: SampleValue; quality: Quality; ts: string; unit?: string }[];
}

/** What a client asked for: globs over device ids and tag names; empty = everything. */
export interface Subscription {
  devices: string[];
  tags: string[];
}

export type ClientFrame = { type: "subscribe"; subscription: Subscription } | { type: "ping" };

/** Why a client frame was refused: the label of `floorgate_live_rejected_frames_total`. */
export type FrameRejectReason = "not_text" | "invalid_json" | "unknown_type" | "invalid_subscribe" | "too_large" | "protocol_error";

export type ClientParse = { ok: true; frame: ClientFrame } | { ok: false; reason: FrameRejectReason; error: string };

const bad = (reason: FrameRejectReason, error: string): ClientParse => ({ ok: false, reason, error });

function globList(raw: unknown, key: "devices" | "tags"): string[] | string {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) return `"${key}" must be an array of glob strings`;
  if (raw.length > MAX_GLOBS) return `"${key}" holds ${raw.length} globs; at most ${MAX_GLOBS}`;
  const out: string[] = [];
  for (const g of raw) {
    if (typeof g !== "string") return `"${key}" must be an array of glob strings`;
    const p = globProblem(g);
    if (p !== undefined) return `"${key}": ${p}`;
    out.push(g);
  }
  return out;
}

/**
 * A client's text frame: `{"type":"subscribe","devices":[…],"tags":[…]}` (both optional) or
 * `{"type":"ping"}`. Anything else is refused with a reason and a message that says what is
 * expected; the caller closes the socket.
 */
export function parseClientFrame(text: string): ClientParse {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return bad("invalid_json", `not JSON (${(err instanceof Error ? err.message : String(err)).slice(0, 80)}): send {"type":"subscribe",…} or {"type":"ping"}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return bad("invalid_json", 'expected a JSON object {"type":"subscribe"|"ping",…}');
  const o = raw as Record<string, unknown>;
  if (o.type === "ping") {
    for (const k of Object.keys(o)) if (k !== "type") return bad("unknown_type", `ping takes no "${k.slice(0, 40)}"`);
    return { ok: true, frame: { type: "ping" } };
  }
  if (o.type === "subscribe") {
    for (const k of Object.keys(o)) {
      if (k !== "type" && k !== "devices" && k !== "tags") return bad("invalid_subscribe", `subscribe has no key "${k.slice(0, 40)}" (allowed: devices, tags)`);
    }
    const devices = globList(o.devices, "devices");
    if (typeof devices === "string") return bad("invalid_subscribe", devices);
    const tags = globList(o.tags, "tags");
    if (typeof tags === "string") return bad("invalid_subscribe", tags);
    return { ok: true, frame: { type: "subscribe", subscription: { devices, tags } } };
  }
  const t = typeof o.type === "string" ? JSON.stringify(o.type.slice(0, 40)) : "missing";
  return bad("unknown_type", `unknown frame type ${t}: a client sends "subscribe" or "ping"`);
}

/** The subscription's identity: clients with equal keys share filtering and encoded frames. */
export function subscriptionKey(s: Subscription): string {
  const norm = (l: string[]) => (l.length === 0 || l.includes("*") ? ["*"] : [...new Set(l)].sort());
  return JSON.stringify([norm(s.devices), norm(s.tags)]);
}

export function helloFrame(gateway: string): string {
  return JSON.stringify({ type: "hello", gateway, protocol: PROTOCOL });
}

export function samplesFrame(samples: readonly LiveSample[]): string {
  return JSON.stringify({ type: "samples", samples });
}

export function snapshotFrame(devices: readonly SnapshotDevice[]): string {
  return JSON.stringify({ type: "snapshot", devices });
}

/**
 * `{"type":"health",…}`: the `/healthz` report without its per-device map (device states come as
 * `device` frames and in the snapshot; at thousands of devices the map would dwarf the rest).
 */
export function healthFrame(h: HealthReport, now: number): string {
  return JSON.stringify({ type: "health", ts: new Date(now).toISOString(), status: h.status, journalAccepting: h.journalAccepting, outputs: h.outputs, journal: h.journal });
}

export function pongFrame(now: number): string {
  return JSON.stringify({ type: "pong", ts: new Date(now).toISOString() });
}

/** Sent just before the server closes a socket over a bad frame: what was wrong, in words. */
export function errorFrame(reason: FrameRejectReason, error: string): string {
  return JSON.stringify({ type: "error", code: "LIVE_BAD_FRAME", reason, error });
}
