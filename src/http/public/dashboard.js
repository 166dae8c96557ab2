// The dashboard's script: a file of its own, so the page's Content-Security-Policy can forbid inline scripts.
// The operator token arrives once as ?token=…; it is kept in this tab's session storage and
// removed from the address bar so it does not end up in history or screenshots.
const params = new URLSearchParams(location.search);
if (params.has("token")) {
  sessionStorage.setItem("floorgate.token", params.get("token"));
  params.delete("token");
  history.replaceState(null, "", location.pathname + (params.toString() ? "?" + params : ""));
}
const token = sessionStorage.getItem("floorgate.token");
let selected = null;

const el = (id) => document.getElementById(id);
const text = (v) => (v === null || v === undefined ? "" : String(v));
const time = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) + "." + iso.slice(20, 23) : "");
function cell(row, value, cls) { const td = row.insertCell(); td.textContent = text(value); if (cls) td.className = cls; return td; }

async function get(path) {
  const r = await fetch(path, { headers: token ? { authorization: "Bearer " + token } : {} });
  if (r.status === 401) { location.href = "/"; throw new Error("token refused"); }
  return r.json();
}

async function refresh() {
  try {
    const [health, devs] = await Promise.all([get("/healthz"), get("/api/v1/devices")]);
    el("status").textContent = health.status; el("status").className = "status " + health.status;
    el("updated").textContent = new Date().toLocaleTimeString();
    const tb = el("devices"); tb.replaceChildren();
    for (const d of devs.devices) {
      const row = tb.insertRow(); row.className = "device"; row.onclick = () => { selected = d.id; refreshTags(); };
      cell(row, d.id); cell(row, d.driver); cell(row, d.state, d.state); cell(row, time(d.lastSampleTs)); cell(row, d.error);
    }
    const ob = el("outputs"); ob.replaceChildren();
    for (const [name, o] of Object.entries(health.outputs)) {
      const row = ob.insertRow();
      cell(row, name + " (" + o.type + ")"); cell(row, o.state, o.state); cell(row, o.sent, "num"); cell(row, o.lag, "num"); cell(row, o.dropped, "num");
      // With no error, the destination's latest refusal (points it will never take) is what to read.
      const refused = o.lastRefusal ? "last refused: " + o.lastRefusal.reason + " (" + o.lastRefusal.detail + ")" : null;
      cell(row, o.error || refused);
    }
    const jb = el("journal"); jb.replaceChildren();
    const j = health.journal;
    for (const [k, v] of [["bytes", j.bytes + " of " + j.maxBytes], ["records", j.records], ["segments", j.segments], ["dropped", j.dropped], ["torn records", j.tornRecords], ["accepting", j.writable && !j.full]]) {
      const row = jb.insertRow(); cell(row, k); cell(row, v, "num");
    }
    el("error").textContent = "";
    if (selected) await refreshTags();
  } catch (err) {
    el("error").textContent = "cannot reach the gateway: " + err.message;
  }
}

async function refreshTags() {
  const t = await get("/api/v1/devices/" + encodeURIComponent(selected) + "/tags");
  el("tags-title").textContent = "Tags — " + selected;
  const tb = el("tags"); tb.replaceChildren();
  for (const s of t.tags || []) {
    const row = tb.insertRow();
    cell(row, s.tag); cell(row, s.value); cell(row, s.unit); cell(row, s.quality, s.quality); cell(row, time(s.ts));
  }
}

refresh();
setInterval(refresh, 2000);
