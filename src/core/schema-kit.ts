/**
 * Building blocks of the config's JSON Schema, shared by the core sections (`schema.ts`) and every
 * plugin's fragment, so that one style (descriptions, ranges, messages) holds throughout.
 *
 * Conventions: `additionalProperties: false` on every object that users write; discriminated
 * unions use `if`/`then` so ajv reports errors of the chosen branch only. `default` values are
 * documentation for editors; the builders apply them.
 */
import type { JsonSchema } from "./plugin.js";

export type { JsonSchema };

export const ID_PATTERN = "^[A-Za-z0-9_-]{1,64}$";
export const TAG_PATTERN = "^[A-Za-z0-9_.-]{1,128}$";
export const GLOB_ID_PATTERN = "^[A-Za-z0-9_*-]{1,64}$";
export const SIZE_PATTERN = "^[0-9]+(\\.[0-9]+)? ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$";
export const TOKEN_HASH_PATTERN = "^sha256:[0-9a-fA-F]{64}$";

/** What each core pattern allows, said for people; plugins add theirs (`ConfigPart.patterns`). */
export const PATTERN_TEXT: Readonly<Record<string, string>> = {
  [ID_PATTERN]: "1 to 64 characters of A-Z a-z 0-9 _ -",
  [TAG_PATTERN]: "1 to 128 characters of A-Z a-z 0-9 _ . -",
  [GLOB_ID_PATTERN]: "1 to 64 characters of A-Z a-z 0-9 _ - and * as a wildcard",
  [SIZE_PATTERN]: "bytes as an integer, or a string like 512MiB, 1GiB, 64KiB, 10MB (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)",
  [TOKEN_HASH_PATTERN]: "\"sha256:\" followed by 64 hex digits",
};

export const str = (description: string, extra: JsonSchema = {}): JsonSchema => ({ type: "string", description, ...extra });
export const nonEmpty = (description: string, extra: JsonSchema = {}): JsonSchema => str(description, { minLength: 1, ...extra });
export const bool = (description: string, dflt?: boolean): JsonSchema =>
  dflt === undefined ? { type: "boolean", description } : { type: "boolean", description, default: dflt };
export const durationMs = (description: string, minimum: number, dflt?: number): JsonSchema => ({
  type: "integer",
  description: `${description} (integer milliseconds)`,
  minimum,
  maximum: 86_400_000,
  ...(dflt === undefined ? {} : { default: dflt }),
});
export const size = (description: string, dflt: string | number): JsonSchema => ({
  type: ["integer", "string"],
  description: `${description} (bytes as an integer, or a string like 512MiB, 1GiB, 64KiB, 10MB)`,
  minimum: 0,
  pattern: SIZE_PATTERN,
  default: dflt,
});
export const enumOf = (description: string, values: readonly (string | number)[], dflt?: string | number): JsonSchema => ({
  description,
  enum: [...values],
  ...(dflt === undefined ? {} : { default: dflt }),
});
export const obj = (
  description: string,
  properties: Readonly<Record<string, JsonSchema>>,
  required: readonly string[] = [],
  extra: Readonly<JsonSchema> = {},
): JsonSchema => ({
  type: "object",
  description,
  additionalProperties: false,
  ...(required.length > 0 ? { required: [...required] } : {}),
  properties,
  ...extra,
});
/** `if` for a discriminated union: applies only to objects whose `key` is exactly `value`. */
export const when = (key: string, value: string): JsonSchema => ({
  type: "object",
  required: [key],
  properties: { [key]: { const: value } },
});

export const hostPort = (description: string, dflt?: string): JsonSchema =>
  nonEmpty(`${description}; host:port, IPv6 as [::1]:8080`, dflt === undefined ? {} : { default: dflt });

/** Keys every tag has, whatever its driver (`TagCommon`); a driver's tag schema spreads them first. */
export const tagCommonSchema: Readonly<Record<string, JsonSchema>> = {
  name: str("Tag name, unique within its device", { pattern: TAG_PATTERN }),
  unit: nonEmpty("Engineering unit, e.g. rpm or degC"),
  deadband: { type: "number", minimum: 0, description: "Absolute deadband in engineering units: a new value is kept only when it moved at least this much" },
  scale: { type: "number", description: "value = raw × scale + offset", default: 1 },
  offset: { type: "number", description: "value = raw × scale + offset", default: 0 },
  writable: bool("Allow operators to write this tag from the API", false),
};

/** Client-side TLS files of an output; paths relative to the config file. */
export const tlsFilesSchema: Readonly<Record<string, JsonSchema>> = {
  ca: nonEmpty("CA certificate file (PEM), relative to the config file"),
  cert: nonEmpty("Client certificate file (PEM), relative to the config file; needs key"),
  key: nonEmpty("Client private key file (PEM), relative to the config file; needs cert"),
};
