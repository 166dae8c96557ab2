// The plant overview (one row per device) and the gateway health panel. Rows are built once per
// device and then only their text nodes change, in the frame the scheduler gives them.

/** How many tag values a device row shows, so the overview itself shows the plant moving. */
const HEADLINE_TAGS = 3;

/** Creates `<tag class>` with an optional text; `text(el)` gives the Text node to update later. */
export function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function textCell(tr, cls) {
  const td = h("td", cls);
  const t = document.createTextNode("");
  td.append(t);
  tr.append(td);
  return { td, t };
}

/** Sets a Text node's data only when it changed (cheaper than a style recalculation for nothing). */
export function put(t, s) {
  if (t.data !== s) t.data = s;
}

const byId = (a, b) => a.localeCompare(b, "en", { numeric: true });

/**
 * The device list. `ctx` is the dashboard's context: `plant`, `fmt`, `t` (translator),
 * `select(id)`, `selected()`.
 */
export class OverviewView {
  constructor(ctx, tbody, empty) {
    this.ctx = ctx;
    this.tbody = tbody;
    this.empty = empty;
    this.rows = new Map();
    this.order = [];
    this.dirty = new Set();
    tbody.addEventListener("click", (ev) => {
      const tr = ev.target.closest("tr[data-device]");
      if (tr) ctx.select(tr.dataset.device);
    });
    tbody.addEventListener("keydown", (ev) => {
      const tr = ev.target.closest("tr[data-device]");
      if (tr && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); ctx.select(tr.dataset.device); }
    });
  }

  mark(d) {
    this.dirty.add(d);
  }

  /** A new device: a row in id order. */
  add(d) {
    if (this.rows.has(d.id)) return;
    const tr = h("tr", "device-row");
    tr.dataset.device = d.id;
    tr.tabIndex = 0;
    const stateTd = h("td", "state-cell");
    const dot = h("span", "dot");
    const stateText = document.createTextNode("");
    stateTd.append(dot, stateText);
    tr.append(stateTd);
    const id = textCell(tr, "device-id");
    id.t.data = d.id;
    const row = { tr, stateText, driver: textCell(tr, "muted").t, seen: textCell(tr, "seen").t, values: textCell(tr, "values"), error: textCell(tr, "error-text") };
    this.rows.set(d.id, row);
    let i = this.order.findIndex((x) => byId(d.id, x) < 0);
    if (i < 0) i = this.order.length;
    this.order.splice(i, 0, d.id);
    const before = this.rows.get(this.order[i + 1])?.tr ?? null;
    this.tbody.insertBefore(tr, before);
    this.empty.hidden = true;
    this.dirty.add(d);
  }

  /** Writes the rows of devices that changed since the last frame. */
  flush(now) {
    if (this.dirty.size === 0) return;
    const { fmt, t } = this.ctx;
    for (const d of this.dirty) {
      const row = this.rows.get(d.id);
      if (!row) continue;
      const cls = `device-row state-${d.state}${this.ctx.selected() === d.id ? " selected" : ""}`;
      if (row.tr.className !== cls) row.tr.className = cls;
      put(row.stateText, t(`state.${d.state}`));
      put(row.driver, d.driver);
      put(row.seen, Number.isFinite(d.lastSeen) ? `${fmt.time(d.lastSeen, now)} · ${fmt.age(now - d.lastSeen)}` : "—");
      put(row.values.t, this.headline(d));
      put(row.error.t, d.error ?? "");
      row.error.td.title = d.error ?? "";
    }
    this.dirty.clear();
  }

  headline(d) {
    const { fmt } = this.ctx;
    const parts = [];
    for (const tag of d.tags.values()) {
      if (parts.length >= HEADLINE_TAGS) break;
      parts.push(`${tag.tag} ${fmt.value(tag.value)}${tag.unit ? ` ${tag.unit}` : ""}`);
    }
    return parts.join(" · ");
  }

  /** Every row again (a language switch, the once-a-second ages). */
  all() {
    for (const d of this.ctx.plant.devices.values()) this.dirty.add(d);
  }
}

/** Output states that mean "connected and sending". */
const OUTPUT_OK = new Set(["online"]);

/**
 * The gateway's own health: every output (whatever its type) connected or not, its lag and drops;
 * the journal's depth. Reads a `health` frame or a /healthz answer: outputs as an object keyed by
 * name (as /healthz) or an array of `{name, …}`.
 */
export class HealthView {
  constructor(ctx, outputs, outputsEmpty, journal) {
    this.ctx = ctx;
    this.outputs = outputs;
    this.outputsEmpty = outputsEmpty;
    this.journal = journal;
    this.dirty = false;
  }

  mark() {
    this.dirty = true;
  }

  flush() {
    if (!this.dirty) return;
    this.dirty = false;
    const hl = this.ctx.plant.health;
    if (!hl) return;
    const { fmt, t } = this.ctx;
    const outs = Array.isArray(hl.outputs)
      ? hl.outputs.map((o) => [o.name ?? o.type ?? "?", o])
      : Object.entries(hl.outputs ?? {});
    this.outputsEmpty.hidden = outs.length > 0;
    this.outputs.parentElement.hidden = outs.length === 0;
    syncRows(this.outputs, outs.length, 7);
    outs.forEach(([name, o], i) => {
      const tr = this.outputs.rows[i];
      tr.className = OUTPUT_OK.has(o.state) ? "out-ok" : "out-bad";
      tr.dataset.output = name;
      const c = tr.cells;
      put(c[0].firstChild, name);
      put(c[1].firstChild, o.type ?? "");
      c[2].className = `state-cell state-${o.state}`;
      put(c[2].firstChild, t(`state.${o.state}`));
      put(c[3].firstChild, fmt.count(o.lag));
      put(c[4].firstChild, fmt.count(o.sent));
      put(c[5].firstChild, fmt.count(o.dropped));
      // With no error, the destination's latest refusal (points it will never take) is what to read.
      const refused = o.lastRefusal ? `${t("output.refused")}: ${o.lastRefusal.reason} (${o.lastRefusal.detail})` : "";
      put(c[6].firstChild, o.error ?? refused);
      c[6].title = o.error ?? refused;
    });
    const j = hl.journal ?? {};
    const accepting = j.writable === undefined ? undefined : j.writable && !j.full;
    const lines = [
      [t("journal.size"), j.maxBytes === undefined ? fmt.bytes(j.bytes) : `${fmt.bytes(j.bytes)} / ${fmt.bytes(j.maxBytes)}`],
      [t("journal.records"), fmt.count(j.records)],
      [t("journal.dropped"), fmt.count(j.dropped)],
      [t("journal.torn"), fmt.count(j.tornRecords)],
      [t("journal.accepting"), accepting === undefined ? "—" : accepting ? t("yes") : `${t("no")}${j.unwritable ? ` (${j.unwritable})` : ""}`],
    ];
    syncRows(this.journal, lines.length, 2);
    lines.forEach(([k, v], i) => {
      const c = this.journal.rows[i].cells;
      put(c[0].firstChild, k);
      put(c[1].firstChild, v);
      c[1].className = "num";
    });
    this.journal.rows[4].className = accepting === false ? "out-bad" : "";
  }
}

/** Makes `tbody` hold exactly `n` rows of `cols` cells, each with one Text node. */
function syncRows(tbody, n, cols) {
  while (tbody.rows.length > n) tbody.deleteRow(-1);
  while (tbody.rows.length < n) {
    const tr = tbody.insertRow();
    for (let i = 0; i < cols; i++) {
      const td = tr.insertCell();
      td.append(document.createTextNode(""));
      if (i >= 3 && i <= 5 && cols === 7) td.className = "num";
    }
  }
}
