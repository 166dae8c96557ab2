/**
 * `floorgate demo` as a new user meets it: the dashboard link it prints opens, in Debian's
 * Chromium, onto the simulated plant moving — the presses, the OPC UA oven and the AGVs appear
 * with values that change, the oven's device view and its zone temperature trend are open — with
 * no console error. A screenshot is kept in test-artifacts/.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { startMosquitto, type MosquittoBroker } from "../helpers/mosquitto.js";
import { freePort } from "../helpers/ports.js";
import { launchChromium, screenshot, watchedPage, type WatchedPage } from "../helpers/chromium.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "floorgate");

let tmp: string;
let broker: MosquittoBroker;
let demo: ChildProcess;
let exited: Promise<number | null>;
const out: string[] = [];
let browser: Browser;
let w: WatchedPage;
let dashboardUrl: string;

/** The banner's dashboard line: the demo is fully up once it is printed. */
async function untilDashboardLine(ms = 45_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = /^\s*dashboard\s+(http:\/\/\S+)$/m.exec(out.join(""));
    if (m && out.join("").includes("Ctrl-C stops it.")) return m[1]!;
    if (demo.exitCode !== null) throw new Error(`demo exited with ${demo.exitCode}:\n${out.join("")}`);
    if (Date.now() > deadline) throw new Error(`demo not running within ${ms} ms:\n${out.join("")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "floorgate-dash-demo-"));
  // A broker of its own: the demo's embedded one would take port 1883, which test/faults/demo-exit.test.ts stages.
  [broker, browser] = await Promise.all([startMosquitto(), launchChromium()]);
  const port = await freePort();
  demo = spawn(process.execPath, [BIN, "demo", "--port", String(port), "--devices", "3", "--broker", broker.url], {
    env: { ...process.env, TMPDIR: tmp, FLOORGATE_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  demo.stdout!.on("data", (d: Buffer) => out.push(d.toString()));
  demo.stderr!.on("data", (d: Buffer) => out.push(d.toString()));
  exited = new Promise((r) => demo.once("exit", (code) => r(code)));
  dashboardUrl = await untilDashboardLine();
  w = await watchedPage(browser);
});

afterAll(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null && demo.signalCode === null) {
    demo.kill("SIGTERM");
    const code = await exited;
    expect(code).toBe(0);
  }
  await broker?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

const row = (device: string) => `#devices tr[data-device="${device}"]`;

describe("dashboard: floorgate demo", () => {
  it("opens onto the plant moving: presses, the OPC UA oven and the AGVs, the oven's trend drawing", async () => {
    const { page } = w;
    expect(dashboardUrl).toMatch(/\/\?token=[^#]+#device=oven-1&tag=zone1_temp$/);
    const res = await page.goto(dashboardUrl);
    expect(res?.status()).toBe(200);
    for (const id of ["press-1", "press-2", "press-3", "oven-1", "agv-01", "agv-02", "agv-03"]) {
      await page.locator(row(id)).waitFor({ timeout: 20_000 });
    }
    // every device online, shown green
    await page.waitForFunction(() => [...document.querySelectorAll("#devices tr")].every((tr) => tr.classList.contains("state-online")), undefined, { timeout: 20_000 });
    expect(await page.locator("#gateway").innerText()).toBe("demo-edge");
    expect(page.url()).not.toContain("token=");

    // The overview itself moves: an AGV's position, the oven's zones.
    const agv = await page.locator(`${row("agv-01")} .values`).innerText();
    await page.waitForFunction(([sel, v]) => document.querySelector(sel!)?.textContent !== v, [`${row("agv-01")} .values`, agv] as const, { timeout: 10_000 });

    // The oven's device view is open (from the link's #fragment) and its temperature moves.
    await page.locator('#tags tr[data-tag="zone1_temp"] td.value').waitFor();
    const temp = await page.locator('#tags tr[data-tag="zone1_temp"] td.value').innerText();
    await page.waitForFunction((v) => document.querySelector('#tags tr[data-tag="zone1_temp"] td.value')?.textContent !== v, temp, { timeout: 15_000 });
    expect(await page.locator("#trend-name").innerText()).toBe("oven-1 / zone1_temp");
    await page.locator("#chart canvas").waitFor({ timeout: 10_000 });
    // the oven's setpoint is writable: it gets a write button, its temperatures do not
    await page.locator('#tags tr[data-tag="setpoint"] button.write').waitFor({ timeout: 10_000 });
    expect(await page.locator('#tags tr[data-tag="zone1_temp"] button.write').count()).toBe(0);

    // The health panel lists the demo's cloud output, connected.
    await page.waitForFunction(() => document.querySelector('#outputs tr[data-output="cloud"]')?.className === "out-ok", undefined, { timeout: 15_000 });

    await screenshot(page, "dashboard-demo.png");
    expect(w.problems, JSON.stringify(w.problems, null, 2)).toEqual([]);
  });
});
