/**
 * The one data shape that crosses folder boundaries: a reading of one tag in engineering units.
 * Drivers produce it, the journal stores it, outputs and the live view consume it.
 */
export type Quality = "good" | "uncertain" | "bad";

export type SampleValue = number | boolean | string | null;

export interface Sample {
  /** Device id from the config or the pushing device (`[A-Za-z0-9_-]{1,64}`). */
  device: string;
  /** Tag name, unique within its device (`[A-Za-z0-9_.-]{1,128}`). */
  tag: string;
  value: SampleValue;
  quality: Quality;
  /** Source timestamp in ms since the epoch (device/server time when known, else gateway receive time). */
  ts: number;
  unit?: string;
  /** Why a sample is `bad` or `uncertain` (e.g. "modbus exception 2: illegal data address"). */
  reason?: string;
}

/** A sample as stored in the journal: its position increases strictly, one per sample. */
export interface JournaledSample extends Sample {
  pos: number;
}

/** Device lifecycle as shown to operators (spec §1). */
export type DeviceState = "connecting" | "online" | "offline" | "error" | "disabled";

export const DEVICE_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const TAG_NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;

/** RFC 3339 with ms precision in UTC, the wire form of `Sample.ts`. */
export function isoTs(ms: number): string {
  return new Date(ms).toISOString();
}
