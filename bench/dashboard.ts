/**
 * `npm run bench -- dashboard`: the dashboard in Debian's Chromium with 2,000 tags updating every
 * 100 ms (one pushing device of 2,000 tags, shown in the device view, one of them trended),
 * against a real gateway (`floorgate run`, its own process) fed over HTTP ingest.
 *
 * Measured by the browser itself, over the same window:
 * - main-thread busy share: Chromium's own `TaskDuration` (CDP `Performance.getMetrics`, the
 *   renderer main thread's time in tasks) over wall time; its script, layout and style parts too;
 * - frame rate: `requestAnimationFrame` callbacks counted in the page, and the longest gap;
 * - long tasks (> 50 ms) from a `PerformanceObserver`.
 * The same figures for two baselines in the same run: a blank page (what this machine gives any
 * page now) and the dashboard with nothing changing (its once-a-second clock and ages only).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CDPSession, Page } from "playwright-core";
import { launchChromium } from "../test/helpers/chromium.js";
import { freePort } from "../test/helpers/ports.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "floorgate");
const OPERATOR = "bench-operator";
const DEVICE_TOKEN = "bench-device";
const TAGS = 2_000;
const PERIOD_MS = 100;
const WARMUP_MS = 3_000;
const MEASURE_MS = 10_000;

interface Window { fps: number; worstFrameMs: number; longTasks: number; longTaskMs: number; busy: number; script: number; layout: number; style: number }

function post(agent: Agent, url: string, data: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", agent, timeout: 5_000, headers: { authorization: `Bearer ${DEVICE_TOKEN}`, "content-type": "application/json", "content-length": Buffer.byteLength(data) } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(data);
  });
}

/** Pushes every tag with a new value every PERIOD_MS until `stop()`; counts what was acknowledged. */
function startPusher(base: string): { stop(): Promise<void>; acked(): number } {
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  let stopped = false;
  let acked = 0;
  let seq = 0;
  const loop = (async () => {
    while (!stopped) {
      const t0 = Date.now();
      seq++;
      const values: Record<string, number> = {};
      for (let i = 0; i < TAGS; i++) values[`t${String(i).padStart(4, "0")}`] = Math.sin((seq + i) / 10) * 100 + i + Math.random() / 1000;
      const status = await post(agent, `${base}/api/v1/ingest/bench-1`, JSON.stringify({ values })).catch(() => 0);
      if (status === 202) acked += TAGS;
      await new Promise((r) => setTimeout(r, Math.max(0, PERIOD_MS - (Date.now() - t0))));
    }
  })();
  return { acked: () => acked, stop: async () => { stopped = true; await loop; agent.destroy(); } };
}

async function metrics(cdp: CDPSession): Promise<Record<string, number>> {
  const r = await cdp.send("Performance.getMetrics");
  return Object.fromEntries(r.metrics.map((m) => [m.name, m.value]));
}

/** One measuring window on `page`: CDP task time and in-page frame counting over MEASURE_MS. */
async function measure(page: Page, cdp: CDPSession): Promise<Window> {
  const before = await metrics(cdp);
  const wall0 = Date.now();
  const inPage = await page.evaluate(async (ms) => {
    let longTasks = 0;
    let longTaskMs = 0;
    const po = new PerformanceObserver((l) => { for (const e of l.getEntries()) { longTasks++; longTaskMs += e.duration; } });
    po.observe({ type: "longtask" });
    let frames = 0;
    let worst = 0;
    const t0 = performance.now();
    let last = t0;
    await new Promise<void>((done) => {
      const tick = (t: number) => {
        frames++;
        worst = Math.max(worst, t - last);
        last = t;
        if (t - t0 < ms) requestAnimationFrame(tick);
        else done();
      };
      requestAnimationFrame(tick);
    });
    po.disconnect();
    return { fps: (frames * 1000) / (performance.now() - t0), worstFrameMs: worst, longTasks, longTaskMs };
  }, MEASURE_MS);
  const after = await metrics(cdp);
  const wall = (Date.now() - wall0) / 1000;
  const d = (k: string) => ((after[k] ?? 0) - (before[k] ?? 0)) / wall;
  return { ...inPage, busy: d("TaskDuration"), script: d("ScriptDuration"), layout: d("LayoutDuration"), style: d("RecalcStyleDuration") };
}

async function waitHealthy(base: string, child: ChildProcess, out: string[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`gateway exited:\n${out.join("")}`);
    const ok = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gateway not healthy:\n${out.join("")}`);
}

export async function benchDashboard(): Promise<Record<string, number>> {
  const dir = await mkdtemp(join(tmpdir(), "floorgate-bench-dash-"));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const cfg = join(dir, "floorgate.yaml");
  await writeFile(cfg, `
gateway: { id: bench-dash, group: bench, dataDir: ${JSON.stringify(join(dir, "data"))} }
http: { listen: "127.0.0.1:${port}", operatorTokens: [${JSON.stringify(OPERATOR)}] }
ingest:
  ratePerDevice: 1000
  devices: [{ id: "bench-*", token: ${JSON.stringify(DEVICE_TOKEN)} }]
`);
  const out: string[] = [];
  const gw = spawn(process.execPath, [BIN, "run", "--config", cfg], { env: { ...process.env, FLOORGATE_LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"] });
  gw.stdout!.on("data", (b: Buffer) => out.push(b.toString()));
  gw.stderr!.on("data", (b: Buffer) => out.push(b.toString()));
  const browser = await launchChromium();
  let pusher: ReturnType<typeof startPusher> | undefined;
  try {
    await waitHealthy(base, gw, out);
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(e.message));
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Performance.enable");

    // Baseline 1: a blank page of the same origin's kind (no script at all).
    await page.setContent("<!doctype html><title>blank</title><p>blank</p>");
    const blank = await measure(page, cdp);

    // The dashboard, the device of 2,000 tags shown, one tag trended.
    let samplesFrames = 0;
    let samplesBytes = 0;
    page.on("websocket", (ws) => ws.on("framereceived", (f) => {
      const s = typeof f.payload === "string" ? f.payload : f.payload.toString();
      if (s.startsWith('{"type":"samples"')) { samplesFrames++; samplesBytes += s.length; }
    }));
    pusher = startPusher(base);
    await page.goto(`${base}/?token=${OPERATOR}#device=bench-1&tag=t0001`);
    await page.waitForFunction((n) => document.getElementById("device-count")?.textContent === `${n} tags`, TAGS, { timeout: 30_000 });
    await page.locator("#chart canvas").waitFor({ timeout: 30_000 });
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const f0 = samplesFrames;
    const b0 = samplesBytes;
    const a0 = pusher.acked();
    const t0 = Date.now();
    const loaded = await measure(page, cdp);
    const secs = (Date.now() - t0) / 1000;
    const framesPerS = (samplesFrames - f0) / secs;
    const kibPerS = (samplesBytes - b0) / 1024 / secs;
    const tagsPerS = (pusher.acked() - a0) / secs;
    await pusher.stop();
    pusher = undefined;

    // Baseline 2: the same page with nothing changing (clock and ages only).
    await new Promise((r) => setTimeout(r, 1_500));
    const idle = await measure(page, cdp);
    if (problems.length > 0) throw new Error(`page errors during the bench: ${problems.join("; ")}`);

    const pct = (x: number) => Number((x * 100).toFixed(1));
    const r1 = (x: number) => Number(x.toFixed(1));
    return {
      "tag values acknowledged by the gateway /s": Math.round(tagsPerS),
      "samples frames received by the page /s": r1(framesPerS),
      "samples frames KiB/s": Math.round(kibPerS),
      "2,000 tags: main thread busy %": pct(loaded.busy),
      "2,000 tags: of which script %": pct(loaded.script),
      "2,000 tags: of which layout + style %": pct(loaded.layout + loaded.style),
      "2,000 tags: frames/s (rAF)": r1(loaded.fps),
      "2,000 tags: longest frame gap ms": Math.round(loaded.worstFrameMs),
      "2,000 tags: long tasks (>50 ms)": loaded.longTasks,
      "idle dashboard: main thread busy %": pct(idle.busy),
      "idle dashboard: frames/s": r1(idle.fps),
      "blank page: main thread busy %": pct(blank.busy),
      "blank page: frames/s": r1(blank.fps),
      "ratio frames/s 2,000 tags / blank": Number((loaded.fps / blank.fps).toFixed(2)),
    };
  } finally {
    await pusher?.stop();
    await browser.close();
    gw.kill("SIGTERM");
    await new Promise((r) => (gw.exitCode !== null ? r(null) : gw.once("exit", r)));
    await rm(dir, { recursive: true, force: true });
  }
}
