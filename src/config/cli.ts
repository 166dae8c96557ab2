import { loadConfig, formatProblem } from "./load.js";
import { schemaJson } from "./schema.js";
import { builtModel, type ConfigModel } from "./model.js";

/** What `floorgate validate` prints and exits with; the caller writes the streams. */
export interface ValidateOutcome {
  code: 0 | 1;
  stdout: string;
  stderr: string;
}

/**
 * `floorgate validate --config FILE`: exit 0 with `config ok`, or exit 1 with every problem, one per
 * line, as `FILE:LINE:COL: PATH: MESSAGE`. Never a stack trace. Warnings
 * (`FILE:LINE:COL: warning: PATH: MESSAGE`) go to stderr either way and do not change the exit code.
 */
export function runValidate<D, O>(
  configPath: string,
  env: NodeJS.ProcessEnv = process.env,
  model: ConfigModel<D, O> = builtModel() as unknown as ConfigModel<D, O>,
): ValidateOutcome {
  const result = loadConfig(configPath, env, model);
  const warnings = result.warnings.map((p) => `${formatProblem(configPath, p)}\n`).join("");
  if (result.ok) return { code: 0, stdout: "config ok\n", stderr: warnings };
  const lines = result.problems.map((p) => formatProblem(configPath, p));
  return { code: 1, stdout: "", stderr: `${lines.join("\n")}\n${warnings}` };
}

/** `floorgate schema`: the config's JSON Schema (draft-07), 2-space JSON with a trailing newline. */
export function runSchema(): string {
  return schemaJson();
}
