// The trend of one chosen tag over the last minutes, drawn by uPlot (served by the gateway from
// its node_modules as /uplot.js; it defines the global `uPlot`). Redrawn at most twice a second:
// the history has one point per second anyway.
import { HISTORY_SLOTS } from "./model.js";

const REDRAW_MS = 500;
const HEIGHT = 220;

export class TrendView {
  /** `ctx`: `fmt`, `t`; `els`: `chart`, `name`, `note`. */
  constructor(ctx, els) {
    this.ctx = ctx;
    this.els = els;
    this.tag = null;
    this.plot = null;
    this.drawn = 0;
    this.dirty = false;
    new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height: HEIGHT });
    }).observe(els.chart);
  }

  width() {
    return Math.max(200, this.els.chart.clientWidth);
  }

  /** Shows the trend of `tagState` (a TagState) or none. */
  show(tagState) {
    this.tag = tagState;
    this.els.name.textContent = tagState ? `${tagState.device} / ${tagState.tag}` : "";
    this.destroy();
    this.dirty = true;
    this.drawn = 0;
    this.note();
  }

  note() {
    const ts = this.tag;
    const { t } = this.ctx;
    const text = !ts ? t("trend.none") : ts.len === 0 && !ts.numeric ? t("trend.notNumeric", { tag: ts.tag }) : "";
    this.els.note.textContent = text;
    this.els.note.hidden = text === "";
  }

  mark(tagState) {
    if (tagState === this.tag) this.dirty = true;
  }

  destroy() {
    if (this.plot) { this.plot.destroy(); this.plot = null; }
  }

  /** Frame work, throttled to REDRAW_MS (a frame that has moved the clock also moves the axis). */
  flush(now) {
    const ts = this.tag;
    if (!ts || now - this.drawn < REDRAW_MS) return;
    if (!this.dirty && now - this.drawn < 1000) return;
    this.dirty = false;
    this.drawn = now;
    if (ts.len === 0) { this.note(); return; }
    const data = ts.series();
    if (!this.plot) {
      if (typeof globalThis.uPlot !== "function") return;
      this.note();
      this.plot = new globalThis.uPlot(this.options(ts), data, this.els.chart);
    } else {
      this.plot.setData(data, false);
    }
    // The last HISTORY_SLOTS seconds at most; a history that is younger fills the width from a
    // minute back, so a page just opened shows a line, not a dot at the right edge.
    const nowS = now / 1000;
    this.plot.setScale("x", { min: Math.max(nowS - HISTORY_SLOTS, Math.min(data[0][0] - 5, nowS - 60)), max: nowS });
  }

  options(ts) {
    const { fmt } = this.ctx;
    const line = {
      label: ts.unit ? `${ts.tag} (${ts.unit})` : ts.tag,
      stroke: "#2563eb",
      width: 1.5,
      points: { show: false },
      value: (_u, v) => (v === null ? "—" : fmt.value(v)),
    };
    if (typeof ts.value === "boolean") line.paths = globalThis.uPlot.paths.stepped({ align: 1 });
    return {
      width: this.width(),
      height: HEIGHT,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, auto: false } },
      series: [
        // The clock is 24-hour everywhere on the page, the chart's axis and legend included.
        { value: (_u, v) => (v === null ? "—" : fmt.time(v * 1000)) },
        line,
      ],
      axes: [
        { values: (_u, splits) => splits.map((s) => fmt.time(s * 1000)), stroke: "#6b7280", grid: { stroke: "#eef0f3" } },
        { values: (_u, splits) => splits.map((s) => fmt.number(s)), stroke: "#6b7280", grid: { stroke: "#eef0f3" }, size: 60 },
      ],
    };
  }
}
