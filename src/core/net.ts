import { isIPv4, isIPv6 } from "node:net";

export interface HostPort {
  host: string;
  port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * `host:port` as listen addresses are written: `127.0.0.1:8080`, `plant-edge:8080`, `[::1]:8080`.
 * The host is returned without brackets. Port 0 (any free port) is allowed: tests use it.
 * Returns a reason string when the text is not one.
 */
export function parseHostPort(text: string): HostPort | string {
  const v6 = /^\[([^\]]+)\]:([0-9]+)$/.exec(text);
  const plain = v6 ? null : /^([^:[\]\s]+):([0-9]+)$/.exec(text);
  const m = v6 ?? plain;
  if (!m) return "expected host:port, e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080";
  const host = m[1]!;
  const port = Number(m[2]);
  if (v6 && !isIPv6(host)) return `"${host}" is not an IPv6 address`;
  if (!v6 && !isIPv4(host) && (/^[0-9.]+$/.test(host) || !HOSTNAME.test(host))) return `"${host}" is not an IPv4 address or host name`;
  if (!Number.isInteger(port) || port > 65535) return `port ${m[2]} is out of range 0-65535`;
  return { host, port };
}

/** Loopback: 127.0.0.0/8, ::1 (also as an IPv4-mapped address), and `localhost`. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIPv4(h)) return h.startsWith("127.");
  if (isIPv6(h)) {
    if (h === "::1" || /^(0{1,4}:){7}0{0,3}1$/.test(h)) return true;
    const mapped = /^::ffff:([0-9.]+)$/.exec(h);
    return mapped !== null && mapped[1]!.startsWith("127.");
  }
  return false;
}

/** True when two listeners would fight over one port on some address. */
export function listenersClash(a: HostPort, b: HostPort): boolean {
  if (a.port === 0 || b.port === 0 || a.port !== b.port) return false;
  const any = (h: string): boolean => h === "0.0.0.0" || h === "::";
  return any(a.host) || any(b.host) || a.host.toLowerCase() === b.host.toLowerCase();
}
