// The device view: one row per tag of the chosen device. Built to stay smooth with thousands of
// tags updating ten times a second. Only the rows on screen exist (plus a margin): a table of
// 2,000 rows costs the browser a relayout of all of them whenever one cell changes, which the
// bench (bench/dashboard.ts) measured at most of the main thread. Two spacer rows give the
// scrollbar its full height; rows are reused as the operator scrolls. A sample only marks its
// tag dirty, and each animation frame writes the Text nodes of the dirty rows on screen. Ages
// tick once a second for those rows only.
import { h, put } from "./overview.js";
import { STALE_MS } from "./model.js";

/** Rows kept beyond each edge of the visible ones, so a short scroll shows filled rows at once. */
const OVERSCAN = 10;
/** Row height until one is measured (the stylesheet fixes it: `.grid td { height }`). */
const ROW_H = 27;

export class TagsView {
  /** `ctx`: `fmt`, `t`, `canWrite()`, `chooseTag(tag)`, `openWrite(tagState)`, `trendTag()`, `schedule()`. */
  constructor(ctx, els) {
    this.ctx = ctx;
    this.els = els;
    this.device = null;
    this.rev = -1;
    /** the device's tags that pass the filter, in display order */
    this.list = [];
    /** rows in the DOM, bound to list[first + i] */
    this.pool = [];
    /** TagState → its row while it is on screen */
    this.bound = new Map();
    this.dirty = new Set();
    this.filter = "";
    this.rowH = 0;
    this.first = 0;
    this.rangeDirty = true;
    this.top = this.spacer();
    this.bottom = this.spacer();
    els.tbody.append(this.top, this.bottom);
    els.scroll.addEventListener("scroll", () => { this.rangeDirty = true; ctx.schedule(); }, { passive: true });
    els.filter.addEventListener("input", () => { this.filter = els.filter.value.trim().toLowerCase(); this.relist(); ctx.schedule(); });
    els.tbody.addEventListener("click", (ev) => {
      const tr = ev.target.closest("tr[data-tag]");
      if (!tr || !this.device) return;
      const ts = this.device.tags.get(tr.dataset.tag);
      if (!ts) return;
      if (ev.target.closest("button.write")) ctx.openWrite(ts);
      else ctx.chooseTag(ts.tag);
    });
    new ResizeObserver(() => { this.rangeDirty = true; ctx.schedule(); }).observe(els.scroll);
  }

  spacer() {
    const tr = h("tr", "spacer");
    const td = h("td");
    td.colSpan = 7;
    tr.append(td);
    return tr;
  }

  /** Shows `d` (a DeviceState) or nothing. */
  show(d) {
    this.device = d;
    this.els.none.hidden = d !== null;
    this.els.scroll.hidden = d === null;
    this.els.name.textContent = d ? d.id : "";
    this.els.scroll.scrollTop = 0;
    this.relist();
  }

  /** The filtered tag list again (a new device, a new filter); the rows follow in the next frame. */
  relist() {
    const d = this.device;
    this.list = [];
    this.rev = d ? d.tagsRev : -1;
    if (d) for (const ts of d.tags.values()) if (this.passes(ts)) this.list.push(ts);
    this.unbindAll();
    this.rangeDirty = true;
  }

  passes(ts) {
    return !this.filter || ts.tag.toLowerCase().includes(this.filter);
  }

  unbindAll() {
    for (const r of this.pool) r.ts = null;
    this.bound.clear();
    this.dirty.clear();
  }

  /** A tag of the shown device got a value. */
  mark(tagState) {
    const row = this.bound.get(tagState);
    if (row) this.dirty.add(row);
  }

  makeRow() {
    const tr = h("tr");
    const cell = (cls) => { const td = h("td", cls); const t = document.createTextNode(""); td.append(t); tr.append(td); return { td, t }; };
    const row = { tr, ts: null, name: cell("tag-name").t, value: cell("num value").t, unit: cell("unit").t, q: cell("quality"), time: cell("time").t, age: cell("num age").t, wTd: h("td", "write-cell"), btn: null, cls: "", quality: "" };
    tr.append(row.wTd);
    return row;
  }

  /** Binds the pool to the rows on screen: from the scroll position and the fixed row height. */
  place() {
    this.rangeDirty = false;
    const n = this.list.length;
    const scroll = this.els.scroll;
    const rowH = this.rowH || ROW_H;
    const visible = Math.ceil((scroll.clientHeight || window.innerHeight) / rowH) + 1;
    const first = Math.max(0, Math.min(Math.floor(scroll.scrollTop / rowH) - OVERSCAN, n - visible - OVERSCAN));
    const count = Math.max(0, Math.min(n - first, visible + 2 * OVERSCAN));
    const tb = this.els.tbody;
    while (this.pool.length < count) { const r = this.makeRow(); this.pool.push(r); tb.insertBefore(r.tr, this.bottom); }
    while (this.pool.length > count) { const r = this.pool.pop(); if (r.ts) this.bound.delete(r.ts); r.tr.remove(); }
    for (let i = 0; i < count; i++) {
      const r = this.pool[i];
      const ts = this.list[first + i];
      if (r.ts === ts) continue;
      if (r.ts && this.bound.get(r.ts) === r) this.bound.delete(r.ts);
      r.ts = ts;
      r.tr.dataset.tag = ts.tag;
      put(r.name, ts.tag);
      this.bound.set(ts, r);
      this.dirty.add(r);
    }
    this.first = first;
    this.top.firstChild.style.height = `${first * rowH}px`;
    this.top.hidden = first === 0;
    const below = n - first - count;
    this.bottom.firstChild.style.height = `${below * rowH}px`;
    this.bottom.hidden = below <= 0;
  }

  /** Frame work: the list if the device grew, the rows on screen, then what changed in them. */
  flush(now, ages) {
    const d = this.device;
    if (!d) return;
    if (d.tagsRev !== this.rev) {
      this.rev = d.tagsRev;
      const have = new Set(this.list);
      for (const ts of d.tags.values()) if (!have.has(ts) && this.passes(ts)) this.list.push(ts);
      this.rangeDirty = true;
    }
    if (this.rangeDirty) this.place();
    if (!this.rowH && this.pool.length > 0) {
      // One measurement, the first time rows exist; the next placement uses it.
      const hgt = this.pool[0].tr.offsetHeight;
      if (hgt > 0 && hgt !== ROW_H) { this.rowH = hgt; this.rangeDirty = true; this.ctx.schedule(); } else if (hgt > 0) this.rowH = hgt;
    }
    put(this.els.count, this.ctx.t("device.count", { n: d.tags.size }));
    const stateCls = `state state-cell state-${d.state}`;
    if (this.els.state.className !== stateCls) this.els.state.className = stateCls;
    put(this.els.stateText, this.ctx.t(`state.${d.state}`));
    const down = d.state !== "online";
    for (const row of this.dirty) if (row.ts) this.write(row, now, down);
    this.dirty.clear();
    if (ages) for (const row of this.pool) if (row.ts) this.writeAge(row, now, down);
  }

  write(row, now, down) {
    const { fmt, t } = this.ctx;
    const ts = row.ts;
    put(row.value, fmt.value(ts.value));
    put(row.unit, ts.unit);
    if (row.quality !== ts.quality) {
      row.quality = ts.quality;
      row.q.td.className = `quality q-${ts.quality}`;
      put(row.q.t, t(`quality.${ts.quality}`));
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
    const cls = `${stale ? "stale" : ""}${this.ctx.trendTag() === ts.tag ? " chosen" : ""}`;
    if (row.cls !== cls) { row.cls = cls; row.tr.className = cls; }
  }

  /** Every row on screen again (a language switch, a new token, the tag list re-read). */
  all() {
    for (const r of this.pool) {
      if (!r.ts) continue;
      r.quality = "";
      if (r.btn) { r.btn.remove(); r.btn = null; }
      this.dirty.add(r);
    }
  }
}
