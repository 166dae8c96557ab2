import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { ConfigProblem, GatewayConfigOf } from "./types.js";
import { readSource } from "./source.js";
import { validateStructure } from "./validate.js";
import { checkSemantics } from "./semantic.js";
import { buildConfig } from "./build.js";
import { applyTemplates } from "./templates.js";
import { builtModel, type ConfigModel } from "./model.js";
import { describeError } from "../core/errors.js";
import type { DeviceConfig, OutputConfig } from "./types.js";

/**
 * Either the validated, defaulted config or every problem found in the file. Warnings (the
 * config is accepted, but something looks wrong: `severity: "warning"`) come either way.
 */
export type LoadResult<D = DeviceConfig, O = OutputConfig> =
  | { ok: true; config: GatewayConfigOf<D, O>; warnings: ConfigProblem[] }
  | { ok: false; problems: ConfigProblem[]; warnings: ConfigProblem[] };

/**
 * Larger than any plant's config (2,000 devices × 100 tags spelled out is ~9 MB; this
 * leaves room for ~14,000), small enough that a wrong path (a log, a disk image) is not read whole.
 */
export const MAX_CONFIG_BYTES = 64 * 1024 * 1024;

/**
 * Reads and validates a config file in full before anything starts. Never throws: an unreadable
 * file is a problem like any other. Relative paths in the file (dataDir, TLS files) resolve
 * against the file's directory.
 */
export function loadConfig<D = DeviceConfig, O = OutputConfig>(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
  model: ConfigModel<D, O> = builtModel() as unknown as ConfigModel<D, O>,
): LoadResult<D, O> {
  let text: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_CONFIG_BYTES) {
      return { ok: false, problems: [{ path: "", line: 0, col: 0, message: `the file is ${buf.length} bytes; a config is at most ${MAX_CONFIG_BYTES} bytes` }], warnings: [] };
    }
    text = buf.toString("utf8");
  } catch (err) {
    return { ok: false, problems: [{ path: "", line: 0, col: 0, message: `cannot read the config file: ${readError(err)}` }], warnings: [] };
  }
  return parseConfigText(text, path, env, model);
}

/** Why a file cannot be read, in words (Node's message repeats the code and the path). */
function readError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case "ENOENT": return "no such file";
    case "EACCES":
    case "EPERM": return "permission denied";
    case "EISDIR": return "it is a directory, not a file";
    case "ENOTDIR": return "a part of the path is not a directory";
    case "ELOOP": return "too many symbolic links";
    default: return describeError(err);
  }
}

/**
 * Validates config text as if it were the file `fileName` (which need not exist; its directory is
 * the base of relative paths). Problems come sorted by position.
 */
export function parseConfigText<D = DeviceConfig, O = OutputConfig>(
  text: string,
  fileName: string,
  env: NodeJS.ProcessEnv = process.env,
  model: ConfigModel<D, O> = builtModel() as unknown as ConfigModel<D, O>,
): LoadResult<D, O> {
  const baseDir = dirname(resolve(fileName));
  try {
    const read = readSource(text.replace(/^\uFEFF/, ""), env);
    if (!read.ok) return { ok: false, problems: sortProblems(read.problems), warnings: [] };
    // A value whose variable (or anchor) is missing is reported once, as missing, not again as empty or malformed.
    const envPaths = new Set(read.problems.filter((p) => /^(environment variable|malformed environment|unknown anchor)/.test(p.message)).map((p) => p.path));
    const tpl = applyTemplates(read.source, validateStructure(read.source, model), baseDir, model);
    const later = [...tpl.problems, ...tpl.annotate(checkSemantics(tpl.source, baseDir, model))].filter((p) => !envPaths.has(p.path));
    const warnings = sortProblems(later.filter((p) => p.severity === "warning"));
    const problems = [...read.problems, ...later.filter((p) => p.severity !== "warning")];
    if (problems.length > 0) return { ok: false, problems: sortProblems(problems), warnings };
    return { ok: true, config: buildConfig(tpl.buildData(), baseDir, model), warnings };
  } catch (err) {
    // A bug of ours, not the user's: still a problem report, never a stack trace.
    return { ok: false, problems: [{ path: "", line: 0, col: 0, message: `internal error while validating: ${describeError(err)}` }], warnings: [] };
  }
}

/** Position order, duplicates (the same message at the same place, e.g. from two schema branches) removed. */
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  const unique = problems.filter((p) => {
    const k = `${p.line}:${p.col}:${p.path}:${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  const rank = (p: ConfigProblem): number => (p.line === 0 ? Number.MAX_SAFE_INTEGER : p.line);
  return unique.sort((a, b) => rank(a) - rank(b) || a.col - b.col || a.path.localeCompare(b.path));
}

/**
 * One problem as `validate` prints it: `FILE:LINE:COL: PATH: MESSAGE`, a warning as
 * `FILE:LINE:COL: warning: PATH: MESSAGE`. PATH is left out for the file as a whole, and LINE:COL
 * when there is no position (the file cannot be read): `FILE: MESSAGE`. A device's problem its
 * template takes part in reads `PATH (template NAME, line N): MESSAGE`.
 */
export function formatProblem(file: string, p: ConfigProblem): string {
  const where = p.line === 0 && p.path === "" ? file : `${file}:${p.line}:${p.col}`;
  const tpl = p.template ? ` (template ${p.template.name}, line ${p.template.line})` : "";
  return `${where}: ${p.severity === "warning" ? "warning: " : ""}${p.path === "" ? "" : `${p.path}${tpl}: `}${p.message}`;
}
