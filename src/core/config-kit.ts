/**
 * Helpers for a plugin's config part (`ConfigPart` in src/core/plugin.ts): reading raw data that may
 * be structurally invalid, checks several plugins share, and the common tag builder.
 */
import { statSync } from "node:fs";
import { resolve } from "node:path";
import type { ConfigIssue, ConfigPath, RawObject } from "./plugin.js";
import type { TagCommon } from "./tag.js";

export const isObj = (v: unknown): v is RawObject => v !== null && typeof v === "object" && !Array.isArray(v);
/** The value as a map, or an empty one. */
export const objOf = (v: unknown): RawObject => (isObj(v) ? v : {});
/** The value as a list, or an empty one. */
export const listOf = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
export const strOf = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
export const intOf = (v: unknown): number | undefined => (typeof v === "number" && Number.isInteger(v) ? v : undefined);
/** For builders (valid data): the value, or `d` when absent. */
export const or = <T>(v: unknown, d: T): T => (v === undefined || v === null ? d : (v as T));
/** For builders (valid data): the value, or undefined when absent. */
export const opt = <T>(v: unknown): T | undefined => (v === undefined || v === null ? undefined : (v as T));

/** The common tag keys with their defaults (spec §2). */
export function buildTagCommon(t: RawObject): TagCommon {
  const out: TagCommon = { name: t.name as string, scale: or(t.scale, 1), offset: or(t.offset, 0), writable: or(t.writable, false) };
  if (t.unit !== undefined) out.unit = t.unit as string;
  if (t.deadband !== undefined) out.deadband = t.deadband as number;
  return out;
}

/**
 * A URL with one of `schemes` (`["http:", "https:"]`) and a host; an issue otherwise. A URL with
 * credentials in it is not echoed.
 */
export function checkUrl(url: string, schemes: readonly string[], path: ConfigPath): ConfigIssue[] {
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    u = undefined;
  }
  if (u && schemes.includes(u.protocol) && u.hostname !== "") return [];
  const allowed = schemes.map((s) => `${s}//`).join(" ");
  const shown = u && (u.username || u.password) ? "a URL with credentials" : JSON.stringify(url);
  return [{ path, message: `found ${shown}; allowed: a URL starting with ${allowed}` }];
}

/** `ca`, `cert`, `key` of item `o` at `path`: each must be a file; cert and key go together. */
export function checkTlsFiles(o: RawObject, path: ConfigPath, baseDir: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const k of ["ca", "cert", "key"] as const) {
    const f = strOf(o[k]);
    if (f === undefined || f === "") continue;
    const abs = resolve(baseDir, f);
    let isFile = false;
    try {
      isFile = statSync(abs).isFile();
    } catch {
      isFile = false;
    }
    if (!isFile) issues.push({ path: [...path, k], message: `file not found: ${abs} (${k} paths are relative to the config file)` });
  }
  if ((o.cert === undefined) !== (o.key === undefined)) {
    issues.push({ path: [...path, o.cert === undefined ? "key" : "cert"], message: "cert and key go together: set both for client certificate authentication, or neither" });
  }
  return issues;
}
