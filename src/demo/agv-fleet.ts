import { Agent, request } from "node:http";
import type { Logger } from "../core/logger.js";

/**
 * Simulated 5G AGVs pushing telemetry to the gateway's ingest API, as real devices would: each
 * AGV drives a loop around the floor, drains and recharges its battery, loads and unloads, and
 * retries with the same `msgId` when the gateway does not answer 202.
 */
export interface FleetOptions {
  baseUrl: string;
  count: number;
  token: string;
  periodMs: number;
  log?: Logger;
}

export interface Fleet {
  stats(): { sent: number; accepted: number; retried: number };
  stop(): Promise<void>;
}

interface Agv {
  id: string;
  seq: number;
  angle: number;
  radius: number;
  battery: number;
  loaded: boolean;
}

export function startAgvFleet(opts: FleetOptions): Fleet {
  const agent = new Agent({ keepAlive: true, maxSockets: Math.max(4, opts.count) });
  const agvs: Agv[] = Array.from({ length: opts.count }, (_, i) => ({
    id: `agv-${String(i + 1).padStart(2, "0")}`, seq: 0, angle: (i * 2 * Math.PI) / opts.count,
    radius: 10 + (i % 5) * 4, battery: 60 + ((i * 7) % 40), loaded: i % 2 === 0,
  }));
  const stats = { sent: 0, accepted: 0, retried: 0 };
  let stopped = false;
  const loops = agvs.map(async (agv, i) => {
    await delay((opts.periodMs * i) / opts.count);
    while (!stopped) {
      const started = Date.now();
      agv.seq++;
      const speed = agv.battery > 15 ? 1.2 + 0.3 * Math.sin(agv.seq / 7) : 0;
      agv.angle += speed / agv.radius;
      agv.battery = agv.battery > 12 ? agv.battery - 0.05 : 100;
      if (agv.seq % 40 === 0) agv.loaded = !agv.loaded;
      const body = JSON.stringify({
        msgId: `${agv.id}-${agv.seq}`,
        ts: new Date().toISOString(),
        values: {
          x_m: round(agv.radius * Math.cos(agv.angle)), y_m: round(agv.radius * Math.sin(agv.angle)),
          speed_mps: round(speed), battery_pct: round(agv.battery), loaded: agv.loaded,
        },
      });
      for (let attempt = 0; attempt < 5 && !stopped; attempt++) {
        stats.sent++;
        if (attempt > 0) stats.retried++;
        const status = await post(agent, `${opts.baseUrl}/api/v1/ingest/${agv.id}`, opts.token, body).catch(() => 0);
        if (status === 202) { stats.accepted++; break; }
        await delay(200 * (attempt + 1));
      }
      await delay(Math.max(0, opts.periodMs - (Date.now() - started)));
    }
  });
  return {
    stats: () => ({ ...stats }),
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

function post(agent: Agent, url: string, token: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: "POST", agent, timeout: 5000,
      headers: { "content-type": "application/json", authorization: `Bearer ${token}`, "content-length": Buffer.byteLength(body) },
    }, (res) => { res.resume(); res.on("end", () => resolve(res.statusCode ?? 0)); });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(body);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
