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
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/dashboard.css"></head>
<body class="plain">
<h1>Floorgate</h1>
<p>The dashboard is not installed. The gateway's data is available at
<a href="/api/v1/devices">/api/v1/devices</a>, <a href="/healthz">/healthz</a> and <a href="/metrics">/metrics</a>.</p>
</body></html>
`;

/** Answered with 401 to a browser without a token: asks for one (spec §4 "otherwise asks for the token"). */
export const LOGIN_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Floorgate — sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/dashboard.css"></head>
<body class="plain">
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

/** Files the pages load besides index.html, with their types; nothing else is served from disk. */
export const DASHBOARD_ASSETS: Readonly<Record<string, string>> = {
  "dashboard.js": "text/javascript; charset=utf-8",
  "dashboard.css": "text/css; charset=utf-8",
};

/** One of DASHBOARD_ASSETS from the first directory that has it; undefined when none does. */
export async function loadAsset(dirs: readonly string[], name: string): Promise<string | undefined> {
  if (!Object.hasOwn(DASHBOARD_ASSETS, name)) return undefined;
  for (const dir of dirs) {
    try {
      return await readFile(path.join(dir, name), "utf8");
    } catch {
      // next candidate
    }
  }
  return undefined;
}

/**
 * Headers of every HTML page. The pages load their script and styles from files of this origin
 * only (no inline script or style), may not be framed (clickjacking a write-back button), and do
 * not leak `?token=` through the Referer of what they load.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};
