/**
 * `floorgate probe` for OPC UA: a session of its own, one Read of every tag, close. Device trouble
 * (unreachable, untrusted certificate, refused login, unknown NodeId) shows as `bad` rows.
 */
import { AttributeIds, NodeId, coerceNodeId } from "node-opcua";
import type { ProbeRow } from "../../src/core/plugin.js";
import type { OpcuaDeviceConfig } from "./config.js";
import { firstLine, openConnection, withTimeout, type OpcuaConnection } from "./connect.js";
import { sampleOf } from "./values.js";

/** One row per configured tag, in config order. */
export async function probeOpcuaDevice(cfg: OpcuaDeviceConfig): Promise<ProbeRow[]> {
  const rows: ProbeRow[] = cfg.tags.map((t) => ({ tag: t.name, value: null, quality: "bad", reason: "not read" }));
  let conn: OpcuaConnection | undefined;
  try {
    conn = await openConnection(cfg, () => undefined);
    const ids = cfg.tags.map((t) => { try { return coerceNodeId(t.nodeId); } catch { return undefined; } });
    const values = await withTimeout(conn.session.read(ids.map((n) => ({ nodeId: n ?? NodeId.nullNodeId, attributeId: AttributeIds.Value })), 0), cfg.timeoutMs, "read");
    values.forEach((dv, i) => {
      const t = cfg.tags[i]!;
      if (!ids[i]) { rows[i] = { tag: t.name, value: null, quality: "bad", reason: `NodeId ${t.nodeId} cannot be parsed` }; return; }
      const s = sampleOf(cfg.id, t.name, dv, Date.now());
      const row: ProbeRow = { tag: t.name, value: s.value, quality: s.quality };
      if (s.reason !== undefined) row.reason = s.reason;
      rows[i] = row;
    });
  } catch (err) {
    const reason = firstLine(err instanceof Error ? err.message : String(err));
    for (const r of rows) if (r.reason === "not read") r.reason = reason;
  } finally {
    await conn?.close();
  }
  return rows;
}
