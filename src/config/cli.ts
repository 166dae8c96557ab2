import { loadConfig, formatProblem } from "./load.js";
import { schemaJson } from "./schema.js";

/** What `floorgate validate` prints and exits with; the caller writes the streams. */
export interface ValidateOutcome {
  code: 0 | 1;
  stdout: string;
  stderr: string;
}

/**
 * `floorgate validate --config FILE`: exit 0 with `config ok`, or exit 1 with every problem, one per
 * line, as `FILE:LINE:COL: PATH: MESSAGE`. Never a stack trace.
 */
export function runValidate(configPath: string, env: NodeJS.ProcessEnv = process.env): ValidateOutcome {
  const result = loadConfig(configPath, env);
  if (result.ok) return { code: 0, stdout: "config ok\n", stderr: "" };
  const lines = result.problems.map((p) => formatProblem(configPath, p));
  return { code: 1, stdout: "", stderr: `${lines.join("\n")}\n` };
}

/** `floorgate schema`: the config's JSON Schema (draft-07), 2-space JSON with a trailing newline. */
export function runSchema(): string {
  return schemaJson();
}
