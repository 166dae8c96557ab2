/**
 * Network cuts between the driver and a live OPC UA server (issue 12, item 3): two drivers reach
 * one node-opcua server, each through its own loopback TCP proxy, and in each of 3 rounds
 *   - `rst`'s link is cut abruptly (both sockets reset) while its proxy keeps accepting: the
 *     device leaves `online` and every item is fresh again within 10 s of the cut;
 *   - `hole`'s link turns into a black hole (client→server bytes vanish, no RST: the half-open
 *     case only keep-alives can detect) until the driver has noticed and a reconnect attempt is
 *     stuck in the hole, then heals: the device leaves `online` within DETECT_MS and every item
 *     is fresh within 10 s of the heal.
 * After each round the server holds exactly one session per driver, each a new one (the cut
 * sessions never reused) with exactly one subscription, and nothing else: the session a cut left
 * behind is closed by the driver through its new connection (counted `orphan_session_closed`)
 * within ORPHAN_CLOSE_MS of the device being back, well before the server would time it out
 * (sessionTimeoutMs after the cut). Both cuts run side by side. Any unhandled rejection fails.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { sessionTimingOf } from "../../drivers/opcua/connect.js";
import { createOpcuaDriver } from "../../drivers/opcua/index.js";
import type { OpcuaDeviceConfig } from "../../drivers/opcua/config.js";
import { startOpcuaServer, type OpcuaTestServer } from "../helpers/opcua-server.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";
import { opcuaDevice, recorder, tag, type Recorder } from "./context.js";

const ROUNDS = 3;
const FRESH_LIMIT_MS = 10_000;
const TIMEOUT_MS = 2_000;
const { keepAliveIntervalMs, pingTimeoutMs, sessionTimeoutMs } = sessionTimingOf({ timeoutMs: TIMEOUT_MS });
/**
 * How soon the driver must notice the black hole (connect.ts, sessionTimingOf). node-opcua's
 * keep-alive manager checks every keepAliveIntervalMs (2 s here) and sends a Read once it heard
 * nothing for half of that. In the hole the server still answers the Publish requests it holds,
 * for about half a second (measured: 0.45 s), so the Read goes out at most keepAliveIntervalMs
 * after the hole opens (the next check after the last answered Read); unanswered, it fails after
 * pingTimeoutMs (5 s: node-opcua's floor for any request timeout, above our timeoutMs of 2 s) and
 * the connection is declared lost. Bound: keepAliveIntervalMs + pingTimeoutMs = 7 s, plus 1 s for
 * timers late on a loaded 2-core machine. Measured ≈ 6.4 s.
 */
const DETECT_MS = keepAliveIntervalMs + pingTimeoutMs + 1_000;
/**
 * From fresh values on the new session to the orphan gone: ActivateSession and CloseSession on
 * the new channel, each bounded by min(timeoutMs, 2 s) in the driver, plus 1 s for a loaded box.
 * The server's own expiry would take sessionTimeoutMs after the cut (its watchdog checks every 1 s).
 */
const ORPHAN_CLOSE_MS = 2 * Math.min(TIMEOUT_MS, 2_000) + 1_000;

let server: OpcuaTestServer;
const proxies: TcpProxy[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (r: unknown): void => { unhandled.push(r); };
beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  server = await startOpcuaServer();
});
afterAll(async () => {
  for (const p of proxies) await p.close();
  await server?.dispose();
  process.off("unhandledRejection", onUnhandled);
});

/** Polls `probe` every 100 ms until it holds; rejects after `ms` with `what` and `detail()`. */
async function pollUntil(probe: () => boolean, ms: number, what: string, detail: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; ${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Rig { name: string; cfg: OpcuaDeviceConfig; proxy: TcpProxy; r: Recorder; done: Promise<void> }

async function rig(name: string): Promise<Rig> {
  const proxy = await startTcpProxy(server.port);
  proxies.push(proxy);
  const cfg = opcuaDevice(name, `opc.tcp://127.0.0.1:${proxy.port}`, {
    reconnectMaxMs: 10_000, timeoutMs: TIMEOUT_MS,
    tags: [tag("counter", "ns=1;s=Counter"), tag("temp", "ns=1;s=Temperature")],
  });
  const r = recorder();
  return { name, cfg, proxy, r, done: createOpcuaDriver(cfg).run(r) };
}

/** The server's sessions of one driver: node-opcua names them `<clientName><n>`, clientName `floorgate-<id>`. */
const sessionsOf = (rg: Rig): { id: string; subscriptions: number }[] =>
  server.sessions().filter((s) => s.name.startsWith(`floorgate-${rg.cfg.id}`));
const freshSince = (rg: Rig, from: number): boolean =>
  ["counter", "temp"].every((t) => rg.r.samples.slice(from).some((s) => s.tag === t && s.quality === "good"));
/** The rig's only session on the server is a new one (not in `before`): its orphan is gone. */
const onlyNew = (rg: Rig, before: Set<string>): boolean => {
  const ss = sessionsOf(rg);
  return ss.length === 1 && !before.has(ss[0]!.id);
};
const leftOnline = (rg: Rig, from: number): boolean => rg.r.states.slice(from).some((s) => s.state !== "online");

it(`${ROUNDS} rounds of an abrupt cut and a black hole: offline, fresh within 10 s, the orphaned sessions closed by the drivers long before they would time out, one session and one subscription per driver`, async () => {
  const rst = await rig("rst");
  const hole = await rig("hole");
  const figures = { cutToOffline: [] as number[], cutToFresh: [] as number[], holeToOffline: [] as number[], healToFresh: [] as number[], cutToClean: [] as number[], backToClean: [] as number[], rstCutToClean: [] as number[], healToClean: [] as number[] };
  const serverView = (): string => `server sessions ${JSON.stringify(server.sessions())}, subscriptions ${server.subscriptionCount()}`;
  try {
    for (const rg of [rst, hole]) {
      await rg.r.until(() => freshSince(rg, 0) && rg.r.states.at(-1)?.state === "online", 15_000, `${rg.name}: first good values`);
    }
    await pollUntil(() => server.sessionCount() === 2 && server.subscriptionCount() === 2, 5_000, "one session and one subscription per driver at the start", serverView);

    for (let round = 1; round <= ROUNDS; round++) {
      const before = new Set([...sessionsOf(rst), ...sessionsOf(hole)].map((s) => s.id));
      expect(before.size).toBe(2);
      const closedBefore = [rst, hole].map((rg) => rg.r.counts.get("orphan_session_closed") ?? 0);
      const t0 = Date.now();

      const abrupt = (async () => {
        const states = rst.r.states.length;
        rst.proxy.cut();
        await rst.r.until(() => leftOnline(rst, states), 5_000, `rst round ${round}: leaves online after the RST`);
        figures.cutToOffline.push(Date.now() - t0);
        // good values recorded after the device left online come from a new session
        const from = rst.r.samples.length;
        await rst.r.until(() => freshSince(rst, from), Math.max(0, t0 + FRESH_LIMIT_MS - Date.now()), `rst round ${round}: fresh values within 10 s of the cut`);
        figures.cutToFresh.push(Date.now() - t0);
        await pollUntil(() => onlyNew(rst, before), ORPHAN_CLOSE_MS, `rst round ${round}: its orphan closed within ${ORPHAN_CLOSE_MS} ms of fresh values`, serverView);
        figures.rstCutToClean.push(Date.now() - t0);
      })();

      const blackHole = (async () => {
        const states = hole.r.states.length;
        hole.proxy.blackhole(true);
        await hole.r.until(() => leftOnline(hole, states), DETECT_MS, `hole round ${round}: leaves online within ${DETECT_MS} ms of the black hole`);
        figures.holeToOffline.push(Date.now() - t0);
        // keep the hole until a reconnect attempt is stuck in it, so the heal meets one in flight
        const accepted = hole.proxy.accepted;
        await pollUntil(() => hole.proxy.accepted > accepted, 10_000, `hole round ${round}: a reconnect attempt into the black hole`, () => `accepted ${hole.proxy.accepted}`);
        const from = hole.r.samples.length;
        hole.proxy.blackhole(false);
        const healed = Date.now();
        await hole.r.until(() => freshSince(hole, from), FRESH_LIMIT_MS, `hole round ${round}: fresh values within 10 s of the heal`);
        figures.healToFresh.push(Date.now() - healed);
        await pollUntil(() => onlyNew(hole, before), ORPHAN_CLOSE_MS, `hole round ${round}: its orphan closed within ${ORPHAN_CLOSE_MS} ms of fresh values`, serverView);
        figures.healToClean.push(Date.now() - healed);
      })();

      await Promise.all([abrupt, blackHole]);
      const back = Date.now();

      // The drivers close their orphans through the new connections; the survivors are new sessions, one subscription each.
      const clean = (): boolean => {
        const mine = [sessionsOf(rst), sessionsOf(hole)];
        return server.sessionCount() === 2 && server.subscriptionCount() === 2 &&
          mine.every((ss) => ss.length === 1 && ss[0]!.subscriptions === 1 && !before.has(ss[0]!.id));
      };
      await pollUntil(clean, ORPHAN_CLOSE_MS, `round ${round}: orphaned sessions closed by the drivers within ${ORPHAN_CLOSE_MS} ms of fresh values, one new session and one subscription per driver`, serverView);
      figures.cutToClean.push(Date.now() - t0);
      figures.backToClean.push(Date.now() - back);
      // closed by the driver, not expired: counted, and sooner than the server's timeout from the cut
      expect([rst, hole].map((rg, i) => (rg.r.counts.get("orphan_session_closed") ?? 0) - closedBefore[i]!)).toEqual([1, 1]);
      expect(Date.now() - t0).toBeLessThan(sessionTimeoutMs);
      // the surviving sessions are the ones delivering
      for (const rg of [rst, hole]) {
        const from = rg.r.samples.length;
        await rg.r.until(() => freshSince(rg, from), 3_000, `${rg.name} round ${round}: values keep coming after the cleanup`);
        expect(rg.r.states.at(-1)!.state).toBe("online");
      }
    }
    const fmt = (xs: number[]): string => `${xs.map((x) => (x / 1000).toFixed(2)).join("/")} s`;
    console.log(`opcua network cut x${ROUNDS}: RST → left online ${fmt(figures.cutToOffline)}, RST → fresh ${fmt(figures.cutToFresh)}; black hole → left online ${fmt(figures.holeToOffline)} (bound ${DETECT_MS / 1000} s), heal → fresh ${fmt(figures.healToFresh)}; orphan gone: RST → ${fmt(figures.rstCutToClean)}, heal → ${fmt(figures.healToClean)}; both clean after the round ${fmt(figures.backToClean)}, ${fmt(figures.cutToClean)} after the cut (the server's own expiry: ${sessionTimeoutMs / 1000} s after the cut)`);
  } finally {
    rst.r.controller.abort();
    hole.r.controller.abort();
    await Promise.all([rst.done, hole.done]);
  }
  expect(unhandled.map(String)).toEqual([]);
}, 60_000);
