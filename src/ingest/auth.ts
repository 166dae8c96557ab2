import { createHash, timingSafeEqual } from "node:crypto";
import type { IngestDeviceConfig } from "./types.js";
import { FloorgateError } from "../core/errors.js";

/**
 * Outcome of a device token check (spec §4, device push):
 * - `ok`: the token belongs to an entry whose id (exact or glob) matches the device;
 * - `no-token`: nothing presented → 401;
 * - `unknown-token`: the token belongs to no entry → 401;
 * - `wrong-device`: the token is valid, but for another entry → 403.
 */
export type DeviceAuthResult = "ok" | "no-token" | "unknown-token" | "wrong-device";

/** Checks device tokens. Built once from the config; `check` is cheap and safe to call per message. */
/**
 * `(token, deviceId)` ok decisions remembered at most; past it the memory is dropped whole and
 * refills (~16k short strings: a few MB at worst, and a fleet larger than that still mostly hits).
 */
export const AUTH_CACHE_MAX = 16_384;

export interface DeviceAuth {
  check(deviceId: string, token: string | undefined | null): DeviceAuthResult;
  /**
   * True when an entry (exact id or glob) names the device, whatever its token: for a device whose
   * identity the transport proved (a TLS client certificate), not for token checks.
   */
  listed(deviceId: string): boolean;
}

interface Entry {
  /** exact id, or undefined for a glob */
  exact?: string;
  glob?: RegExp;
  /** sha256 of the token; undefined when the entry has no credential (it can never authenticate) */
  digest?: Buffer;
}

const HASH_RE = /^sha256:([0-9a-fA-F]{64})$/;

function sha256(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** `sensor-*` → /^sensor-.*$/ ; only `*` is special, everything else matches itself. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.split("*").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${body}$`);
}

/**
 * Builds the checker. Plain tokens are hashed at start so every comparison is a constant-time
 * compare of two 32-byte digests, whatever the token's length. Throws CONFIG_INVALID for a
 * malformed `tokenHash` (the config loader should have caught it; failing loudly beats an entry
 * that silently never matches).
 */
export function createDeviceAuth(devices: readonly IngestDeviceConfig[]): DeviceAuth {
  const entries: Entry[] = devices.map((d, i) => {
    const e: Entry = d.id.includes("*") ? { glob: globToRegExp(d.id) } : { exact: d.id };
    if (d.tokenHash !== undefined) {
      const m = HASH_RE.exec(d.tokenHash);
      if (!m) throw new FloorgateError("CONFIG_INVALID", `ingest.devices[${i}].tokenHash: expected "sha256:<64 hex digits>"`);
      e.digest = Buffer.from(m[1]!.toLowerCase(), "hex");
    } else if (d.token !== undefined && d.token !== "") {
      e.digest = sha256(d.token);
    }
    return e;
  });
  const exact = new Map<string, Entry[]>();
  const globs: Entry[] = [];
  for (const e of entries) {
    if (e.exact !== undefined) {
      const list = exact.get(e.exact) ?? [];
      list.push(e);
      exact.set(e.exact, list);
    } else globs.push(e);
  }

  const matches = (digest: Buffer, e: Entry): boolean => e.digest !== undefined && timingSafeEqual(digest, e.digest);

  /**
   * token → device ids it was proven valid for. Only `ok` decisions are remembered, and only after
   * the full constant-time check above granted them: an unknown or wrong token never gets here, so
   * a hit tells a caller nothing its own 202 did not already tell it. Saves the sha256 and the glob
   * tests on every push of a known device. Bounded by AUTH_CACHE_MAX pairs.
   */
  const granted = new Map<string, Set<string>>();
  let remembered = 0;
  const remember = (token: string, deviceId: string) => {
    if (remembered >= AUTH_CACHE_MAX) {
      granted.clear();
      remembered = 0;
    }
    let ids = granted.get(token);
    if (!ids) granted.set(token, (ids = new Set()));
    ids.add(deviceId);
    remembered++;
  };

  return {
    listed(deviceId) {
      return exact.has(deviceId) || globs.some((e) => e.glob!.test(deviceId));
    },
    check(deviceId, token) {
      if (token === undefined || token === null || token === "") return "no-token";
      if (granted.get(token)?.has(deviceId)) return "ok";
      const digest = sha256(token);
      // Every candidate is compared (no early exit) so timing does not reveal which entry matched.
      let ok = false;
      for (const e of exact.get(deviceId) ?? []) ok = matches(digest, e) || ok;
      for (const e of globs) if (e.glob!.test(deviceId)) ok = matches(digest, e) || ok;
      if (ok) {
        remember(token, deviceId);
        return "ok";
      }
      let other = false;
      for (const e of entries) other = matches(digest, e) || other;
      return other ? "wrong-device" : "unknown-token";
    },
  };
}
