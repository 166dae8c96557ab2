import { DASHBOARD_ASSETS } from "./dashboard.js";

/**
 * The route table of spec §4, matched on raw path segments (each percent-decoded on its own, so
 * an encoded `/` stays inside its segment and never reaches another route). No dot-segment
 * normalisation: `/api/v1/../healthz` is simply not a route.
 */
export type Route =
  | { name: "dashboard" }
  /** the dashboard's scripts and styles (no operator token: a `<script src>` cannot send one) */
  | { name: "asset"; file: string }
  | { name: "healthz" }
  | { name: "metrics" }
  | { name: "devices" }
  | { name: "tags"; device: string }
  | { name: "ingest"; device: string }
  | { name: "write"; device: string; tag: string };

export type RouteMatch =
  | { ok: true; route: Route; methods: readonly string[]; query: string }
  | { ok: false; status: 400 | 404; error: string };

const GET = ["GET", "HEAD"] as const;
const POST = ["POST"] as const;

/** Splits a request target into path segments and query; handles origin-form and absolute-form. */
function splitTarget(target: string): { segments: string[]; query: string } | undefined {
  let t = target;
  if (!t.startsWith("/")) {
    if (!/^https?:\/\//i.test(t)) return undefined;
    const i = t.indexOf("/", t.indexOf("//") + 2);
    t = i < 0 ? "/" : t.slice(i);
  }
  const q = t.indexOf("?");
  const path = q < 0 ? t : t.slice(0, q);
  const query = q < 0 ? "" : t.slice(q + 1);
  const hash = path.indexOf("#");
  return { segments: (hash < 0 ? path : path.slice(0, hash)).split("/").slice(1), query };
}

const INGEST_PREFIX = "/api/v1/ingest/";
const POST_ONLY: readonly string[] = POST;

/**
 * `/api/v1/ingest/{id}` with a plain id (no `/ ? # %`): what every device push looks like. Same
 * answer as the general matcher, without splitting and decoding the path per request.
 */
function fastIngest(target: string): RouteMatch | undefined {
  if (!target.startsWith(INGEST_PREFIX)) return undefined;
  const n = target.length;
  const start = INGEST_PREFIX.length;
  if (n === start) return undefined;
  for (let i = start; i < n; i++) {
    const c = target.charCodeAt(i);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */ || c === 37 /* % */) return undefined;
  }
  return { ok: true, route: { name: "ingest", device: target.slice(start) }, methods: POST_ONLY, query: "" };
}

export function matchRoute(target: string): RouteMatch {
  const fast = fastIngest(target);
  if (fast !== undefined) return fast;
  const parts = splitTarget(target);
  if (!parts) return { ok: false, status: 404, error: "not found" };
  const raw = parts.segments;
  let seg: string[];
  try {
    seg = raw.map((s) => decodeURIComponent(s));
  } catch {
    return { ok: false, status: 400, error: "malformed percent-encoding in the path" };
  }
  const query = parts.query;
  const hit = (route: Route, methods: readonly string[]): RouteMatch => ({ ok: true, route, methods, query });
  const n = seg.length;
  if (n === 1 && seg[0] === "") return hit({ name: "dashboard" }, GET);
  if (n === 1 && Object.hasOwn(DASHBOARD_ASSETS, seg[0]!)) return hit({ name: "asset", file: seg[0]! }, GET);
  if (n === 1 && seg[0] === "healthz") return hit({ name: "healthz" }, GET);
  if (n === 1 && seg[0] === "metrics") return hit({ name: "metrics" }, GET);
  if (n >= 3 && seg[0] === "api" && seg[1] === "v1") {
    if (seg[2] === "devices") {
      if (n === 3) return hit({ name: "devices" }, GET);
      if (n === 5 && seg[4] === "tags" && seg[3] !== "") return hit({ name: "tags", device: seg[3]! }, GET);
      if (n === 7 && seg[4] === "tags" && seg[6] === "write" && seg[3] !== "" && seg[5] !== "") {
        return hit({ name: "write", device: seg[3]!, tag: seg[5]! }, POST);
      }
    }
    if (seg[2] === "ingest" && n === 4 && seg[3] !== "") return hit({ name: "ingest", device: seg[3]! }, POST);
  }
  return { ok: false, status: 404, error: "not found" };
}
