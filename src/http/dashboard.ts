import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";

/**
 * Where `index.html` is looked for: `src/http/public` next to this file when running from source,
 * and the same folder from `dist/src/http` (package.json ships `src/http/public`).
 */
export function defaultPublicDirs(): string[] {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return [path.join(here, "public"), path.resolve(here, "../../../src/http/public")];
}

/** Placeholder until the dashboard exists: shows where the data lives. */
const FALLBACK = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Floorgate</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; margin: 2rem">
<h1>Floorgate</h1>
<p>The dashboard is not installed. The gateway's data is available at
<a href="/api/v1/devices">/api/v1/devices</a>, <a href="/healthz">/healthz</a> and <a href="/metrics">/metrics</a>.</p>
</body></html>
`;

/** Answered with 401 to a browser without a token: asks for one (spec §4 "otherwise asks for the token"). */
export const LOGIN_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Floorgate — sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; margin: 2rem">
<h1>Floorgate</h1>
<form method="get" action="/">
<label>Operator token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Open dashboard</button>
</form>
</body></html>
`;

/** Reads index.html from the first directory that has it, else the placeholder. Never rejects. */
export async function loadDashboard(dirs: readonly string[]): Promise<string> {
  for (const dir of dirs) {
    try {
      return await readFile(path.join(dir, "index.html"), "utf8");
    } catch {
      // next candidate
    }
  }
  return FALLBACK;
}
