import { createLogger, type Logger } from "../../src/core/logger.js";

/** One pino line as written, and parsed. */
export interface LogLine {
  raw: string;
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A real pino logger (the gateway's createLogger) whose lines are kept for assertions. */
export function captureLogger(level = "debug"): { log: Logger; lines: LogLine[]; raw: string[] } {
  const raw: string[] = [];
  const lines: LogLine[] = [];
  const log = createLogger({
    level,
    destination: {
      write(chunk: string): void {
        for (const text of chunk.split("\n")) {
          if (text === "") continue;
          raw.push(text);
          // A line that is not JSON is kept unparsed; jsonProblems() reports it.
          try { lines.push({ ...(JSON.parse(text) as Record<string, unknown>), raw: text } as LogLine); } catch { /* reported below */ }
        }
      },
    },
  });
  return { log, lines, raw };
}

/**
 * Keys that appear twice in one object of a JSON text, as dotted paths. JSON.parse keeps the last
 * of two equal keys without a word, so duplicates can only be seen in the raw text.
 */
export function duplicateKeys(text: string): string[] {
  let i = 0;
  const dups: string[] = [];
  const fail = (what: string): never => { throw new SyntaxError(`${what} at ${i} in ${text.slice(0, 200)}`); };
  const ws = (): void => { while (i < text.length && " \t\n\r".includes(text[i]!)) i++; };
  const str = (): string => {
    if (text[i] !== '"') fail("expected a string");
    const start = i++;
    while (text[i] !== '"') {
      if (i >= text.length) fail("unterminated string");
      if (text[i] === "\\") i++;
      i++;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: string): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const seen = new Set<string>();
      ws();
      if (text[i] === "}") { i++; return; }
      for (;;) {
        ws();
        const k = str();
        if (seen.has(k)) dups.push(path + k);
        seen.add(k);
        ws();
        if (text[i++] !== ":") fail("expected ':'");
        value(`${path}${k}.`);
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") { i++; return; }
        fail("expected ',' or '}'");
      }
    } else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") { i++; return; }
      for (let n = 0; ; n++) {
        value(`${path}${n}.`);
        ws();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "]") { i++; return; }
        fail("expected ',' or ']'");
      }
    } else if (c === '"') {
      str();
    } else {
      const start = i;
      while (i < text.length && !",}] \t\n\r".includes(text[i]!)) i++;
      if (i === start) fail("expected a value");
    }
  };
  value("");
  return dups;
}

/** Every line that is not one JSON object, or repeats a key: empty when the log is clean. */
export function jsonProblems(raw: readonly string[]): string[] {
  const problems: string[] = [];
  for (const text of raw) {
    try {
      JSON.parse(text);
      const d = duplicateKeys(text);
      if (d.length > 0) problems.push(`duplicate keys ${d.join(", ")}: ${text}`);
    } catch (err) {
      problems.push(`not JSON (${(err as Error).message}): ${text}`);
    }
  }
  return problems;
}
