import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
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

/** Placeholder when index.html is missing (a broken install): shows where the data lives. */
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

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

/**
 * Files the page loads besides index.html, with their types; nothing else is served from disk.
 * The page's own modules sit beside index.html; `vendor` files come from an npm dependency in
 * node_modules (uPlot, the trend chart), found by module resolution so the same lookup works from
 * a checkout, an installed package and the Docker image.
 */
export const DASHBOARD_ASSETS: Readonly<Record<string, { type: string; vendor?: { pkg: string; file: string } }>> = {
  "dashboard.js": { type: JS },
  "dashboard.css": { type: CSS },
  "format.js": { type: JS },
  "i18n.js": { type: JS },
  "model.js": { type: JS },
  "feed.js": { type: JS },
  "overview.js": { type: JS },
  "tags.js": { type: JS },
  "trend.js": { type: JS },
  "write.js": { type: JS },
  "favicon.svg": { type: "image/svg+xml" },
  "uplot.js": { type: JS, vendor: { pkg: "uplot", file: "dist/uPlot.iife.min.js" } },
  "uplot.min.css": { type: CSS, vendor: { pkg: "uplot", file: "dist/uPlot.min.css" } },
};

const require = createRequire(import.meta.url);

/** A vendor file's path, or undefined when the package is not installed. */
function vendorPath(pkg: string, file: string): string | undefined {
  try {
    return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);
  } catch {
    return undefined;
  }
}

/** Vendor files do not change while the process runs: read once. */
const vendorCache = new Map<string, string>();

/** One of DASHBOARD_ASSETS from the first directory that has it; undefined when none does. */
export async function loadAsset(dirs: readonly string[], name: string): Promise<string | undefined> {
  if (!Object.hasOwn(DASHBOARD_ASSETS, name)) return undefined;
  const vendor = DASHBOARD_ASSETS[name]!.vendor;
  if (vendor) {
    const cached = vendorCache.get(name);
    if (cached !== undefined) return cached;
    const file = vendorPath(vendor.pkg, vendor.file);
    if (file === undefined) return undefined;
    try {
      const text = await readFile(file, "utf8");
      vendorCache.set(name, text);
      return text;
    } catch {
      return undefined;
    }
  }
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
