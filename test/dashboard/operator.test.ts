/**
 * The dashboard as an operator uses it, in Debian's Chromium against a gateway this file starts
 * (the built CLI, `floorgate run`) with two Modbus devices served by fault-injectable servers:
 * sign-in and the token kept across reloads, rounded values and a visible time column, a write
 * with its confirmation step, a device taken offline turning red, the gateway stopped (banner,
 * greyed values) and restarted (banner gone), and the language switch. No console errors.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { startGateway, writeConfig, type GatewayProcess } from "../helpers/gateway-process.js";
import { startFaultServer, type FaultServer } from "../helpers/modbus-servers.js";
import { freePort } from "../helpers/ports.js";
import { computed, launchChromium, screenshot, watchedPage, type WatchedPage } from "../helpers/chromium.js";

const TOKEN = "dash-operator-token";
const RED = "rgb(197, 48, 48)";
const GREEN = "rgb(26, 127, 55)";
const GREY = "rgb(156, 163, 175)";
/** A float32 whose exact value prints as 1331.0003662109375: the page must show 1331. */
const F32 = Math.fround(1331.0004);
const f32Words = (() => { const b = Buffer.alloc(4); b.writeFloatBE(F32); return [b.readUInt16BE(0), b.readUInt16BE(2)]; })();

let dir: string;
let gw: GatewayProcess;
let pressA: FaultServer;
let pressB: FaultServer;
let browser: Browser;
let w: WatchedPage;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "floorgate-dash-"));
  // press-a: a counter that moves every 100 ms, the float above, a writable lamp coil
  pressA = await startFaultServer({
    register: (_u, area, a) => (area === "holding" && a === 0 ? Math.floor(Date.now() / 100) % 60_000 : area === "holding" && a <= 2 ? f32Words[a - 1]! : 0),
  });
  pressB = await startFaultServer({ register: () => 7 });
  const port = await freePort();
  const device = (id: string, p: number, tags: string) => `
  - id: ${id}
    driver: modbus
    connection: { transport: tcp, host: 127.0.0.1, port: ${p}, unitId: 1, timeoutMs: 500 }
    pollMs: 200
    reconnectMaxMs: 1000
    tags:${tags}`;
  const cfg = await writeConfig(dir, `
gateway: { id: dash-gw, group: test, dataDir: ${JSON.stringify(join(dir, "data"))} }
http: { listen: "127.0.0.1:${port}", operatorTokens: [${JSON.stringify(TOKEN)}] }
devices:${device("press-a", pressA.port, `
      - { name: rpm, area: holding, address: 0, type: uint16, unit: rpm }
      - { name: torque, area: holding, address: 1, type: float32, byteOrder: ABCD, unit: Nm }
      - { name: lamp, area: coil, address: 0, type: bool, writable: true }`)}${device("press-b", pressB.port, `
      - { name: temp, area: holding, address: 0, type: int16, unit: degC }`)}
`);
  [gw, browser] = await Promise.all([startGateway(cfg, port, { FLOORGATE_LOG_LEVEL: "warn" }), launchChromium()]);
  w = await watchedPage(browser);
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await pressA?.stop();
  await pressB?.stop();
  await rm(dir, { recursive: true, force: true });
});

const row = (device: string) => `#devices tr[data-device="${device}"]`;
const tagRow = (tag: string) => `#tags tr[data-tag="${tag}"]`;
const text = (sel: string) => w.page.locator(sel).first().innerText();

function expectNoProblems(): void {
  expect(w.problems, JSON.stringify(w.problems, null, 2)).toEqual([]);
}

describe("dashboard: operator", () => {
  it("asks for the token, keeps it in the session across reloads and never in the address bar", async () => {
    const { page } = w;
    const first = await page.goto(`${gw.base}/`);
    expect(first?.status()).toBe(401);
    await page.locator("#signin").waitFor({ state: "visible" });
    expect(await page.locator("#app").isHidden()).toBe(true);
    await page.fill("#token-input", TOKEN);
    await page.click("#signin-form button[type=submit]");
    await page.locator(row("press-a")).waitFor();
    expect(page.url()).not.toContain(TOKEN);

    // The link the demo prints: ?token= is taken into the session and removed from the address bar.
    await page.goto(`${gw.base}/?token=${TOKEN}`);
    await page.locator(row("press-b")).waitFor();
    expect(page.url()).toBe(`${gw.base}/`);
    expect(await page.evaluate(() => sessionStorage.getItem("floorgate.token"))).toBe(TOKEN);

    const again = await page.reload();
    expect(again?.status()).toBe(401); // a reload sends no header: the page signs in from its session
    await page.locator(row("press-a")).waitFor();
    expect(await page.locator("#signin").isHidden()).toBe(true);
    // the gateway's name in the header (from the feed's hello)
    await page.waitForFunction(() => document.getElementById("gateway")?.textContent === "dash-gw");
    expectNoProblems();
  });

  it("shows each tag's value rounded, its unit, quality, 24-hour time and age; values change", async () => {
    const { page } = w;
    await page.click(row("press-a"));
    await page.locator(`${tagRow("rpm")} td.value`).waitFor();
    await page.waitForFunction((sel) => (document.querySelector(sel)?.textContent ?? "") !== "", `${tagRow("torque")} td.value`);
    expect(await text(`${tagRow("torque")} td.value`)).toBe("1331");
    expect(await text(`${tagRow("torque")} td.unit`)).toBe("Nm");
    expect(await text(`${tagRow("torque")} td.quality`)).toBe("good");
    expect(await text(`${tagRow("torque")} td.time`)).toMatch(/^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$/);
    expect(await text(`${tagRow("torque")} td.age`)).toMatch(/^\d+(\.\d)? s$/);
    // the time column stays inside the panel, however long the value
    const cell = await page.locator(`${tagRow("torque")} td.time`).boundingBox();
    const panel = await page.locator("#device").boundingBox();
    expect(cell!.x + cell!.width).toBeLessThanOrEqual(panel!.x + panel!.width);

    const before = await text(`${tagRow("rpm")} td.value`);
    await page.waitForFunction(([sel, v]) => document.querySelector(sel!)?.textContent !== v, [`${tagRow("rpm")} td.value`, before] as const, { timeout: 10_000 });
    // sizes in binary units, the output list (none configured here) and the journal
    expect(await text("#journal tr:first-child td:last-child")).toMatch(/^\d+(\.\d+)? (B|KiB|MiB) \/ 1 GiB$/);
    // the trend of a chosen tag draws
    await page.click(tagRow("rpm"));
    await page.locator("#chart canvas").waitFor({ timeout: 10_000 });
    expect(page.url()).toContain("#device=press-a&tag=rpm");
    expectNoProblems();
  });

  it("writes a writable tag only after the operator confirms", async () => {
    const { page } = w;
    expect(await page.locator(`${tagRow("rpm")} button.write`).count()).toBe(0);
    await page.click(`${tagRow("lamp")} button.write`);
    await page.locator("#write-dialog").waitFor({ state: "visible" });
    await page.selectOption("#write-bool", "true");
    await page.click("#write-review");
    expect(await text("#write-question")).toBe("Write true to press-a / lamp?");
    expect(pressA.writes.size).toBe(0); // nothing sent before the confirmation
    await page.click("#write-confirm");
    await page.waitForFunction(() => /Written/.test(document.getElementById("write-result")?.textContent ?? ""));
    expect(pressA.writes.get("1/coil/0")).toBe(1);
    await page.click("#write-close");
    await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === "true", `${tagRow("lamp")} td.value`, { timeout: 10_000 });
    expectNoProblems();
  });

  it("turns a device red when it goes offline", async () => {
    const { page } = w;
    expect(await computed(page, `${row("press-b")} .dot`, "background-color")).toBe(GREEN);
    await pressB.stop();
    await page.waitForFunction((sel) => /state-(offline|error)/.test(document.querySelector(sel)?.className ?? ""), row("press-b"), { timeout: 15_000 });
    expect(await computed(page, `${row("press-b")} .dot`, "background-color")).toBe(RED);
    expect(await text(`${row("press-b")} .state-cell`)).toMatch(/offline|error/);
    expect(await text(`${row("press-a")} .state-cell`)).toBe("online");
    expectNoProblems();
  });

  it("says at once when the gateway goes away, greys the values with their age, and recovers by itself", async () => {
    const { page } = w;
    // While the gateway is down on purpose, the browser logs its failed connection attempts.
    w.allow = /ERR_CONNECTION_REFUSED|WebSocket connection to .* failed|Failed to load resource/;
    await gw.stop();
    // At once: the banner is up (often already while the gateway drained) within 3 s of its exit.
    await page.locator("#banner").waitFor({ state: "visible", timeout: 3_000 });
    expect(await page.evaluate(() => document.body.classList.contains("disconnected"))).toBe(true);
    expect(await computed(page, `${tagRow("rpm")} td.value`, "color")).toBe(GREY);
    const age0 = await text(`${tagRow("rpm")} td.age`);
    await page.waitForFunction(([sel, v]) => document.querySelector(sel!)?.textContent !== v, [`${tagRow("rpm")} td.age`, age0] as const);
    await screenshot(page, "dashboard-gateway-down.png");

    await gw.restart();
    await page.locator("#banner").waitFor({ state: "hidden", timeout: 20_000 });
    await page.waitForFunction(() => document.getElementById("conn")?.classList.contains("live"));
    w.allow = null;
    expect(await page.evaluate(() => document.body.classList.contains("disconnected"))).toBe(false);
    const v = await text(`${tagRow("rpm")} td.value`);
    await page.waitForFunction(([sel, x]) => document.querySelector(sel!)?.textContent !== x, [`${tagRow("rpm")} td.value`, v] as const, { timeout: 10_000 });
    expectNoProblems();
  });

  it("speaks Chinese or English, following the browser, with a switch that is remembered", async () => {
    const { page } = w;
    await page.click("#lang");
    await page.waitForFunction(() => document.documentElement.lang === "zh-CN");
    expect(await text("#overview h2")).toBe("工厂");
    expect(await text(`${row("press-a")} .state-cell`)).toBe("在线");
    await page.reload();
    await page.locator(row("press-a")).waitFor();
    expect(await page.evaluate(() => document.documentElement.lang)).toBe("zh-CN");
    await screenshot(page, "dashboard-operator-zh.png");
    await page.click("#lang");
    await page.waitForFunction(() => document.documentElement.lang === "en");
    expect(await text("#overview h2")).toBe("Plant");

    // A browser set to Chinese starts in Chinese.
    const zh = await watchedPage(browser, { locale: "zh-CN" });
    try {
      await zh.page.goto(`${gw.base}/?token=${TOKEN}`);
      await zh.page.locator(row("press-a")).waitFor();
      expect(await zh.page.evaluate(() => document.documentElement.lang)).toBe("zh-CN");
      expect(await zh.page.locator("#health h2").innerText()).toBe("网关状态");
      expect(zh.problems).toEqual([]);
    } finally {
      await zh.context.close();
    }
    await screenshot(page, "dashboard-operator.png");
    expectNoProblems();
  });
});
