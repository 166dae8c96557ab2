/**
 * `floorgate probe` for Modbus: connect, read every tag once, close. Uses its own line (not the
 * shared registry) so it never disturbs a running daemon's queue in the same process.
 */
import type { ModbusDeviceConfig } from "./config.js";
import type { ProbeRow } from "../../src/core/plugin.js";
import { lineSpecOf, planDevice } from "./device.js";
import { Line } from "./line.js";
import { readPass } from "./read.js";

export type { ProbeRow };

/** One row per configured tag, in config order. Never throws for device trouble: it shows as `bad` rows. */
export async function probeModbusDevice(cfg: ModbusDeviceConfig): Promise<ProbeRow[]> {
  const line = new Line(lineSpecOf(cfg), { reconnectMaxMs: cfg.reconnectMaxMs });
  const rows: ProbeRow[] = cfg.tags.map((t) => ({ tag: t.name, value: null, quality: "bad", reason: "not read" }));
  try {
    for (const reqs of planDevice(cfg).values()) {
      let timeouts = 0;
      const { results } = await readPass(line, reqs, cfg.tags, { count: () => {} }, {
        timeoutMs: cfg.connection.timeoutMs,
        onReply: () => { timeouts = 0; },
        onTimeout: () => ++timeouts >= cfg.maxTimeouts,
      });
      const samples = results.cols.toSamples();
      for (let k = 0; k < samples.length; k++) {
        const r = samples[k]!;
        const row: ProbeRow = { tag: r.tag, value: r.value, quality: r.quality };
        if (r.reason !== undefined) row.reason = r.reason;
        rows[results.ids[k]!] = row;
      }
    }
  } finally {
    line.close();
  }
  return rows;
}
