/**
 * Debian's Chromium driven by playwright-core, for the dashboard's browser tests and bench: one
 * launch per file, every console error and page error recorded so a test can fail on them.
 */
import { mkdir } from "node:fs/promises";
import { join, sep } from "node:path";
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

/** Headless, no network chatter of the browser's own (updates, sync, QUIC probes). */
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** Where screenshots are kept (gitignored): `test-artifacts/` at the repository's top, from the source or dist/. */
export const ARTIFACTS = join(import.meta.dirname, ...(import.meta.dirname.includes(`${sep}dist${sep}`) ? ["..", "..", ".."] : ["..", ".."]), "test-artifacts");

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
}

export interface PageProblem {
  kind: "console" | "pageerror";
  text: string;
  url?: string;
  at: number;
}

/**
 * A page whose console errors and uncaught exceptions are collected in `problems`. `allow` is a
 * window during which messages matching it are expected (the browser's own network log while a
 * test has stopped the gateway on purpose); they go to `allowed` instead.
 */
export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  problems: PageProblem[];
  allowed: PageProblem[];
  allow: RegExp | null;
}

export async function watchedPage(browser: Browser, opts: { locale?: string; viewport?: { width: number; height: number } } = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ locale: opts.locale ?? "en-US", viewport: opts.viewport ?? { width: 1400, height: 900 } });
  const page = await context.newPage();
  const w: WatchedPage = { page, context, problems: [], allowed: [], allow: null };
  page.on("console", (m: ConsoleMessage) => {
    if (m.type() !== "error" && m.type() !== "warning") return;
    const p: PageProblem = { kind: "console", text: `${m.type()}: ${m.text()}`, url: m.location().url, at: Date.now() };
    if ((w.allow && w.allow.test(p.text)) || isDocument401(p)) w.allowed.push(p);
    else w.problems.push(p);
  });
  page.on("pageerror", (e: Error) => w.problems.push({ kind: "pageerror", text: e.stack ?? e.message, at: Date.now() }));
  return w;
}

/**
 * Chromium logs the status of a page it loads when that is an error. `GET /` without an
 * Authorization header answers 401 when operator tokens are configured (test/http/server.test.ts),
 * and a browser never sends that header when it loads a page: the dashboard is then served as
 * the 401 answer and signs in from its session. That one line is the document's status (the tests
 * assert it themselves), not a failure of the page; any other 401 (a fetch, the feed) still counts.
 */
function isDocument401(p: PageProblem): boolean {
  if (p.text !== "error: Failed to load resource: the server responded with a status of 401 (Unauthorized)" || !p.url) return false;
  const u = new URL(p.url);
  return u.pathname === "/";
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** The computed CSS `property` of the first element matching `selector`. */
export function computed(page: Page, selector: string, property: string): Promise<string> {
  return page.locator(selector).first().evaluate((el, prop) => getComputedStyle(el).getPropertyValue(prop), property);
}
