// The device view: one row per tag of the chosen device. Built to stay smooth with thousands of
// tags updating ten times a second: rows are created once, a sample only marks its tag dirty, and
// each animation frame writes the Text nodes of dirty rows that are on screen. Rows scrolled out
// of view are written when they come back (their `late` flag), and ages tick once a second for
// the visible rows only.
import { h, put } from "./overview.js";
import { STALE_MS } from "./model.js";

/** Rows beyond the visible ones kept up to date, so a short scroll shows fresh values at once. */
const OVERSCAN = 20;

export class TagsView {
  /** `ctx`: `plant`, `fmt`, `t`, `canWrite()`, `chooseTag(tag)`, `openWrite(tagState)`, `trendTag()`. */
  constructor(ctx, els) {
    this.ctx = ctx;
    this.els = els;
    this.device = null;
    this.rev = -1;
    /** rows in display order (filtered), and tag name → row */
    this.list = [];
    this.rows = new Map();
    this.dirty = new Set();
    this.filter = "";
    this.rowH = 0;
    this.first = 0;
    this.last = -1;
    this.rangeDirty = true;
    els.scroll.addEventListener("scroll", () => { this.rangeDirty = true; ctx.schedule(); }, { passive: true });
    els.filter.addEventListener("input", () => { this.filter = els.filter.value.trim().toLowerCase(); this.rebuild(); ctx.schedule(); });
    els.tbody.addEventListener("click", (ev) => {
      const btn = ev.target.closest("button.write");
      const tr = ev.target.closest("tr[data-tag]");
      if (!tr || !this.device) return;
      const ts = this.device.tags.get(tr.dataset.tag);
      if (!ts) return;
      if (btn) ctx.openWrite(ts);
      else ctx.chooseTag(ts.tag);
    });
    new ResizeObserver(() => { this.rangeDirty = true; ctx.schedule(); }).observe(els.scroll);
  }

  /** Shows `d` (a DeviceState) or nothing. */
  show(d) {
    this.device = d;
    this.rev = -1;
    this.els.none.hidden = d !== null;
    this.els.scroll.hidden = d === null;
    this.els.name.textContent = d ? d.id : "";
    this.els.scroll.scrollTop = 0;
    this.rebuild();
  }

  /** A tag of the shown device got a value. */
  mark(tagState) {
    const row = this.rows.get(tagState.tag);
    if (row) this.dirty.add(row);
  }

  /** Rows for every tag of the device that passes the filter (new tags get rows as they appear). */
  rebuild() {
    const d = this.device;
    const tb = this.els.tbody;
    this.list = [];
    this.rows.clear();
    this.dirty.clear();
    tb.textContent = "";
    if (!d) return;
    this.rev = d.tagsRev;
    const frag = document.createDocumentFragment();
    for (const ts of d.tags.values()) {
      if (this.filter && !ts.tag.toLowerCase().includes(this.filter)) continue;
      const row = this.makeRow(ts);
      frag.append(row.tr);
    }
    tb.append(frag);
    this.rangeDirty = true;
    this.rowH = 0;
  }

  makeRow(ts) {
    const tr = h("tr");
    tr.dataset.tag = ts.tag;
    const cell = (cls) => { const td = h("td", cls); const t = document.createTextNode(""); td.append(t); tr.append(td); return t; };
    const name = cell("tag-name");
    name.data = ts.tag;
    const valueTd = h("td", "num value");
    const value = document.createTextNode("");
    valueTd.append(value);
    tr.append(valueTd);
    const unit = cell("unit");
    const qTd = h("td", "quality");
    const quality = document.createTextNode("");
    qTd.append(quality);
    tr.append(qTd);
    const time = cell("time");
    const age = cell("num age");
    const wTd = h("td", "write-cell");
    tr.append(wTd);
    const row = { ts, tr, value, valueTd, unit, qTd, quality, time, age, wTd, btn: null, late: true, cls: "", q: "", index: 0 };
    this.rows.set(ts.tag, row);
    row.index = this.list.length;
    this.list.push(row);
    return row;
  }

  /** The index range of rows on screen (plus overscan), from the scroll position and a row's height. */
  range() {
    if (!this.rangeDirty) return;
    this.rangeDirty = false;
    const n = this.list.length;
    if (n === 0) { this.first = 0; this.last = -1; return; }
    if (!this.rowH) this.rowH = this.list[0].tr.offsetHeight || 24;
    const top = this.els.scroll.scrollTop;
    const hgt = this.els.scroll.clientHeight || window.innerHeight;
    const first = Math.max(0, Math.floor(top / this.rowH) - OVERSCAN);
    const last = Math.min(n - 1, Math.ceil((top + hgt) / this.rowH) + OVERSCAN);
    // Rows that just came into view may hold old text: write them now.
    for (let i = first; i <= last; i++) if (i < this.first || i > this.last) { const r = this.list[i]; if (r.late) this.dirty.add(r); }
    this.first = first;
    this.last = last;
  }

  /** Frame work: new rows if the device grew, then the dirty rows on screen. */
  flush(now, ages) {
    const d = this.device;
    if (!d) return;
    if (d.tagsRev !== this.rev) {
      this.rev = d.tagsRev;
      for (const ts of d.tags.values()) {
        if (this.rows.has(ts.tag) || (this.filter && !ts.tag.toLowerCase().includes(this.filter))) continue;
        const row = this.makeRow(ts);
        this.els.tbody.append(row.tr);
        this.dirty.add(row);
      }
      this.rangeDirty = true;
    }
    this.range();
    put(this.els.count, this.ctx.t("device.count", { n: d.tags.size }));
    const stateCls = `state state-cell state-${d.state}`;
    if (this.els.state.className !== stateCls) this.els.state.className = stateCls;
    put(this.els.stateText, this.ctx.t(`state.${d.state}`));
    const down = d.state !== "online";
    for (const row of this.dirty) {
      const i = row.index;
      if (i < this.first || i > this.last) { row.late = true; continue; }
      this.write(row, now, down);
    }
    this.dirty.clear();
    if (ages) {
      for (let i = this.first; i <= this.last; i++) this.writeAge(this.list[i], now, down);
    }
  }

  write(row, now, down) {
    const { fmt, t } = this.ctx;
    const ts = row.ts;
    row.late = false;
    const text = fmt.value(ts.value);
    put(row.value, text);
    put(row.unit, ts.unit);
    if (row.q !== ts.quality) {
      row.q = ts.quality;
      row.qTd.className = `quality q-${ts.quality}`;
      put(row.quality, t(`quality.${ts.quality}`));
    }
    put(row.time, fmt.time(ts.ts, now));
    this.writeAge(row, now, down);
    const w = ts.writable && this.ctx.canWrite();
    if (w && !row.btn) {
      row.btn = h("button", "write", t("write"));
      row.btn.type = "button";
      row.wTd.append(row.btn);
    } else if (!w && row.btn) {
      row.btn.remove();
      row.btn = null;
    }
  }

  writeAge(row, now, down) {
    const ts = row.ts;
    const age = now - ts.ts;
    put(row.age, this.ctx.fmt.age(age));
    const stale = down || !(age < STALE_MS);
    const trend = this.ctx.trendTag() === ts.tag;
    const cls = `${stale ? "stale" : ""}${trend ? " chosen" : ""}`;
    if (row.cls !== cls) { row.cls = cls; row.tr.className = cls; }
  }

  /** Every visible row again (a language switch, a new token). */
  all() {
    for (const r of this.list) { r.late = true; r.q = ""; }
    this.first = 0;
    this.last = -1;
    this.rangeDirty = true;
  }
}
