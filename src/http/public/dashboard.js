// The operator dashboard (contract §4 `GET /`): plant overview, device view, trend, gateway health,
// fed by the /live WebSocket (§5). Plain ES modules served by the gateway; no build step, no CDN.
//
// The operator token arrives once as ?token=… or through the sign-in form. It is kept in this
// tab's sessionStorage (so a reload stays signed in, and closing the tab forgets it) and removed
// from the address bar so it does not end up in history, bookmarks or screenshots.
import { formatters } from "./format.js";
import { initialLang, LANGS, rememberLang, translator } from "./i18n.js";
import { Plant } from "./model.js";
import { startFeed } from "./feed.js";
import { HealthView, OverviewView } from "./overview.js";
import { TagsView } from "./tags.js";
import { TrendView } from "./trend.js";
import { writeDialog } from "./write.js";

const TOKEN_KEY = "floorgate.token";
const $ = (id) => document.getElementById(id);

const params = new URLSearchParams(location.search);
if (params.has("token")) {
  sessionStorage.setItem(TOKEN_KEY, params.get("token") ?? "");
  params.delete("token");
  history.replaceState(null, "", location.pathname + (params.size ? `?${params}` : "") + location.hash);
}
let token = sessionStorage.getItem(TOKEN_KEY) || null;
/** 401: the gateway wants a token and this request carried none it knows (a reload sends no header). */
const docStatus = performance.getEntriesByType("navigation")[0]?.responseStatus ?? 0;

let lang = initialLang(localStorage, navigator.languages?.length ? navigator.languages : [navigator.language]);
let t = translator(lang);
let fmt = formatters(lang);

let selectedId = null;
let trendTagName = null;
let feed = null;
let conn = { status: "connecting", retryAt: 0 };
let wasLive = false;

const ctx = {
  get fmt() { return fmt; },
  get t() { return t; },
  plant: null,
  token: () => token,
  canWrite: () => token !== null,
  selected: () => selectedId,
  trendTag: () => trendTagName,
  select,
  chooseTag,
  schedule,
  openWrite: (ts) => openWrite(ts),
};

const plant = new Plant(onChange);
ctx.plant = plant;
const overview = new OverviewView(ctx, $("devices"), $("devices-empty"));
const health = new HealthView(ctx, $("outputs"), $("outputs-empty"), $("journal"));
const stateText = document.createTextNode("");
$("device-state").append(stateText);
const tags = new TagsView(ctx, {
  tbody: $("tags"), scroll: $("tags-scroll"), filter: $("tag-filter"), none: $("device-none"),
  name: $("device-name"), count: $("device-count").appendChild(document.createTextNode("")), state: $("device-state"), stateText,
});
const trend = new TrendView(ctx, { chart: $("chart"), name: $("trend-name"), note: $("trend-note") });
const openWrite = writeDialog({ get fmt() { return fmt; }, get t() { return t; }, token: () => token, onWritten: () => {} }, $);

// --- what changed → what to redraw, batched per animation frame ---------------------------------

let frameReq = 0;
let agesDue = false;

function schedule() {
  if (frameReq === 0) frameReq = requestAnimationFrame(frame);
}

function frame() {
  frameReq = 0;
  const now = Date.now();
  const ages = agesDue;
  agesDue = false;
  overview.flush(now);
  tags.flush(now, ages);
  health.flush();
  trend.flush(now);
}

function onChange(kind, d, ts) {
  switch (kind) {
    case "devices":
      overview.add(d);
      if (d.id === selectedId && tags.device === null) showDevice(d);
      break;
    case "device":
      overview.mark(d);
      if (d === tags.device) agesDue = true;
      break;
    case "tag":
      overview.mark(d);
      if (d === tags.device) {
        tags.mark(ts);
        // A tag the REST list has not reported yet (its first value came after the list was read):
        // read the list again, once the burst is over, to learn whether it is writable.
        if (!ts.listed) reloadTagsSoon(d.id);
        if (ts.tag === trendTagName && trend.tag !== ts) trend.show(ts);
        trend.mark(ts);
      }
      break;
    case "health":
      health.mark();
      break;
    case "gateway":
      $("gateway").textContent = plant.gateway;
      document.title = plant.gateway ? `${plant.gateway} — Floorgate` : "Floorgate";
      break;
  }
  schedule();
}

// Once a second: ages, the header clock, the banner's countdown, the trend's moving axis.
setInterval(() => {
  agesDue = true;
  overview.all();
  $("clock").textContent = fmt.time(Date.now());
  if (conn.status !== "live") showConn();
  schedule();
}, 1000);

// --- selection, kept in the address's #fragment so a reload shows the same device and trend ------

function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  return { device: h.get("device"), tag: h.get("tag") };
}

function writeHash() {
  const h = new URLSearchParams();
  if (selectedId) h.set("device", selectedId);
  if (trendTagName) h.set("tag", trendTagName);
  history.replaceState(null, "", location.pathname + location.search + (h.size ? `#${h}` : ""));
}

function select(id) {
  if (id === selectedId) return;
  selectedId = id;
  trendTagName = null;
  trend.show(null);
  writeHash();
  overview.all();
  const d = plant.devices.get(id);
  if (d) showDevice(d);
  schedule();
}

function showDevice(d) {
  reloads = 0;
  tags.show(d);
  if (trendTagName) {
    const ts = d.tags.get(trendTagName);
    if (ts) trend.show(ts);
  }
  loadTags(d.id);
}

/** The REST tag list says which tags are writable (the feed does not) and fills units in. */
async function loadTags(id) {
  try {
    const r = await fetch(`/api/v1/devices/${encodeURIComponent(id)}/tags`, {
      headers: token ? { authorization: `Bearer ${token}` } : {}, cache: "no-store", signal: AbortSignal.timeout(5000),
    });
    if (!r.ok) return;
    const body = await r.json();
    if (Array.isArray(body.tags)) plant.applyTagList(id, body.tags);
    if (tags.device?.id === id) tags.all();
    schedule();
  } catch {
    // the gateway is away: the feed shows the banner and fetches again on return
  }
}

let reloadTimer = 0;
let reloads = 0;
function reloadTagsSoon(id) {
  // Bounded: a tag the list never reports (it has no value there) must not poll forever.
  if (reloadTimer || reloads >= 5) return;
  reloads++;
  reloadTimer = setTimeout(() => { reloadTimer = 0; if (tags.device?.id === id) loadTags(id); }, 1000);
}

function chooseTag(name) {
  const d = tags.device;
  if (!d) return;
  trendTagName = name;
  trend.show(d.tags.get(name) ?? null);
  writeHash();
  agesDue = true;
  schedule();
}

// --- connection state: header, banner, greyed values -------------------------------------------

function showConn() {
  const el = $("conn");
  const kind = conn.status === "live" ? "live" : conn.status === "connecting" && !wasLive ? "connecting" : "down";
  el.textContent = t(`conn.${kind}`);
  el.className = `conn ${kind}`;
  const banner = $("banner");
  const down = conn.status !== "live" && (wasLive || conn.status === "down" || conn.status === "nolive");
  document.body.classList.toggle("disconnected", down);
  if (!down) { banner.hidden = true; return; }
  const s = Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000));
  banner.textContent = conn.status === "nolive" ? t("banner.nolive", { s }) : conn.status === "connecting" || s === 0 ? t("banner.trying") : t("banner.down", { s });
  banner.hidden = false;
}

function onStatus(status, retryMs) {
  conn = { status, retryAt: Date.now() + retryMs };
  if (status === "live") {
    wasLive = true;
    if (selectedId && tags.device) loadTags(selectedId);
  }
  showConn();
  agesDue = true;
  tags.all();
  schedule();
}

// --- sign-in ------------------------------------------------------------------------------------

function showSignIn(message) {
  $("signin").hidden = false;
  $("app").hidden = true;
  $("signout").hidden = true;
  $("signin-error").textContent = message ?? "";
  document.body.classList.remove("booting");
  $("token-input").focus();
}

function showApp() {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = token === null;
  document.body.classList.remove("booting");
}

function start() {
  showApp();
  feed?.stop();
  feed = startFeed({
    token: () => token,
    onStatus,
    onRefused: () => {
      const had = token !== null;
      feed?.stop();
      token = null;
      sessionStorage.removeItem(TOKEN_KEY);
      showSignIn(had ? t("signin.refused") : "");
    },
    onDevices: (list) => plant.applyDeviceList(list),
    onHealth: (h) => plant.setHealth(h),
    onFrame: (msg) => { if (msg.type !== "health") plant.applyFrame(msg); },
  });
}

$("signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const v = $("token-input").value.trim();
  if (!v) return;
  token = v;
  sessionStorage.setItem(TOKEN_KEY, v);
  $("token-input").value = "";
  start();
});

$("signout").addEventListener("click", () => {
  feed?.stop();
  feed = null;
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  showSignIn();
});

// --- language ------------------------------------------------------------------------------------

function applyLang() {
  t = translator(lang);
  fmt = formatters(lang);
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  const btn = $("lang");
  btn.textContent = t("switch");
  btn.title = t("switch.title");
  btn.lang = lang === "en" ? "zh-CN" : "en";
  $("clock").textContent = fmt.time(Date.now());
  overview.all();
  tags.all();
  health.mark();
  trend.show(trend.tag);
  showConn();
  agesDue = true;
  schedule();
}

$("lang").addEventListener("click", () => {
  lang = LANGS[(LANGS.indexOf(lang) + 1) % LANGS.length];
  rememberLang(localStorage, lang);
  applyLang();
});

// --- boot ------------------------------------------------------------------------------------------

{
  const h = readHash();
  selectedId = h.device;
  trendTagName = h.tag;
}
applyLang();
if (docStatus === 401 && token === null) showSignIn();
else start();
