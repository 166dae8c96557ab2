// The dashboard's link to the gateway: one REST round for what the feed does not carry (drivers,
// error texts, writable tags), then the /live WebSocket (contract §5) for everything that moves.
// It reconnects by itself with backoff and jitter, and notices a gateway that went silent without
// closing the socket (health frames come every second; none for WATCHDOG_MS means it is gone).

const WATCHDOG_MS = 5_000;
const FETCH_TIMEOUT_MS = 5_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10_000;

/**
 * Starts the link. `opts`:
 * - `token()`: the operator token or null (sent as a Bearer header and as `?token=` on /live,
 *   the only way a browser WebSocket can carry it);
 * - `onStatus(status, retryMs)`: "connecting" | "live" | "down" (gateway unreachable) |
 *   "nolive" (REST answers, /live does not); retryMs is the wait before the next attempt;
 * - `onRefused()`: the gateway answered 401: the token is missing or unknown (no retry);
 * - `onDevices(list)`, `onHealth(h)`: REST answers and health frames;
 * - `onFrame(msg)`: every parsed frame from /live.
 * Returns `{ stop(), reconnectNow() }`.
 */
export function startFeed(opts) {
  let ws = null;
  let attempt = 0;
  let retryTimer = null;
  let watchdog = null;
  let stopped = false;
  let gen = 0;

  const headers = () => {
    const t = opts.token();
    return t ? { authorization: `Bearer ${t}` } : {};
  };

  async function getJson(path) {
    const r = await fetch(path, { headers: headers(), cache: "no-store", signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (r.status === 401) return { refused: true };
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return { body: await r.json() };
  }

  function retryLater(status) {
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    const wait = Math.round(base / 2 + Math.random() * base / 2);
    attempt++;
    opts.onStatus(status, wait);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, wait);
  }

  function kick() {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      // Silent for too long: a half-open TCP connection (cable pulled, gateway frozen).
      if (ws) ws.close(4000, "no frames");
      dropped();
    }, WATCHDOG_MS);
  }

  /** The socket is gone (closed, errored or silent): say so at once, then try again. */
  function dropped(hadHello) {
    clearTimeout(watchdog);
    if (ws) { ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null; }
    ws = null;
    if (!stopped) retryLater(hadHello === false ? "nolive" : "down");
  }

  async function connect() {
    if (stopped) return;
    const my = ++gen;
    opts.onStatus("connecting", 0);
    let devices;
    let health;
    try {
      [devices, health] = await Promise.all([getJson("/api/v1/devices"), getJson("/healthz").catch(() => null)]);
    } catch {
      if (my === gen) retryLater("down");
      return;
    }
    if (my !== gen || stopped) return;
    if (devices.refused) { opts.onRefused(); return; }
    opts.onDevices(devices.body.devices ?? []);
    if (health?.body) opts.onHealth(health.body);
    openSocket(my);
  }

  function openSocket(my) {
    const t = opts.token();
    const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/live${t ? `?token=${encodeURIComponent(t)}` : ""}`;
    let hello = false;
    const sock = new WebSocket(url);
    ws = sock;
    kick();
    sock.onopen = () => {
      sock.send(JSON.stringify({ type: "subscribe", devices: ["*"], tags: ["*"] }));
    };
    sock.onmessage = (ev) => {
      if (my !== gen) return;
      kick();
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (!msg || typeof msg !== "object") return;
      if (msg.type === "hello") {
        hello = true;
        attempt = 0;
        opts.onStatus("live", 0);
      } else if (msg.type === "health") {
        opts.onHealth(msg);
      }
      opts.onFrame(msg);
    };
    sock.onerror = () => { /* onclose follows and handles it */ };
    sock.onclose = () => { if (my === gen) dropped(hello); };
  }

  connect();
  return {
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
      clearTimeout(watchdog);
      if (ws) ws.close(1000, "bye");
      ws = null;
    },
    reconnectNow() {
      stopped = false;
      attempt = 0;
      clearTimeout(retryTimer);
      if (ws) { ws.onclose = null; ws.close(1000, "reconnect"); ws = null; }
      connect();
    },
  };
}
