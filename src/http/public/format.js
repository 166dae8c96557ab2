// Pure formatting for the dashboard: numbers, sizes, clock times and ages. No DOM here, so
// test/unit/dashboard-format.test.ts imports this file as it is served.
//
// The formatters are built once per language (an Intl formatter costs far more to build than to
// use, and the page formats tens of thousands of values a second with 2,000 tags updating).

/**
 * Formatters for one language (a BCP 47 tag such as "en" or "zh-CN").
 * - `value(v)`: an engineering value for a table cell. Floats are rounded to what a reading can
 *   carry (4 significant digits at most 3 decimals, whole numbers at 1,000 and above, so a
 *   float32 `1331.0003662109375` shows as `1331`), integers stay exact, booleans, strings and null
 *   as such.
 * - `bytes(n)`: binary units (KiB, MiB, GiB) like the config's sizes.
 * - `time(ms)`: 24-hour wall clock `HH:MM:SS`, with the date in front when it is not today.
 * - `age(ms)`: a short duration (`0.4 s`, `12 s`, `3 min`, `2 h`, `5 d`).
 */
export function formatters(lang) {
  const dec = [0, 1, 2, 3].map((d) => new Intl.NumberFormat(lang, { maximumFractionDigits: d, minimumFractionDigits: 0, useGrouping: false }));
  const grouped = new Intl.NumberFormat(lang, { maximumFractionDigits: 0, useGrouping: true });
  const clock = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  const day = new Intl.DateTimeFormat(lang, { year: "numeric", month: "2-digit", day: "2-digit" });

  function number(v) {
    if (!Number.isFinite(v)) return String(v);
    if (Number.isInteger(v)) return Math.abs(v) >= 1e15 ? v.toExponential(6) : String(v);
    const a = Math.abs(v);
    if (a >= 1e9) return v.toExponential(3);
    if (a >= 1000) return dec[0].format(v);
    if (a >= 100) return dec[1].format(v);
    if (a >= 10) return dec[2].format(v);
    if (a >= 0.001 || a === 0) return dec[3].format(v);
    return v.toExponential(2);
  }

  return {
    number,
    value(v) {
      if (v === null || v === undefined) return "—";
      if (typeof v === "number") return number(v);
      if (typeof v === "boolean") return v ? "true" : "false";
      return String(v);
    },
    count(n) {
      return typeof n === "number" && Number.isFinite(n) ? grouped.format(n) : "—";
    },
    bytes(n) {
      if (typeof n !== "number" || !Number.isFinite(n)) return "—";
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0;
      let x = n;
      while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i++; }
      return i === 0 ? `${x} B` : `${x >= 100 ? dec[0].format(x) : x >= 10 ? dec[1].format(x) : dec[2].format(x)} ${units[i]}`;
    },
    time(ms, now = Date.now()) {
      if (typeof ms !== "number" || !Number.isFinite(ms)) return "—";
      const d = new Date(ms);
      const t = clock.format(d);
      return sameDay(d, new Date(now)) ? t : `${day.format(d)} ${t}`;
    },
    age(ms) {
      if (typeof ms !== "number" || !Number.isFinite(ms)) return "—";
      const s = Math.max(0, ms) / 1000;
      if (s < 10) return `${dec[1].format(s)} s`;
      if (s < 120) return `${Math.floor(s)} s`;
      if (s < 7200) return `${Math.floor(s / 60)} min`;
      if (s < 172800) return `${Math.floor(s / 3600)} h`;
      return `${Math.floor(s / 86400)} d`;
    },
  };
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** Parses an RFC 3339 timestamp to epoch ms; NaN for anything else. */
export function parseTs(ts) {
  return typeof ts === "string" ? Date.parse(ts) : NaN;
}
