/**
 * One connection attempt to an OPC UA server: certificate store, client, secure channel and
 * session, each step bounded by `timeoutMs`; and its teardown, bounded too. node-opcua's own
 * reconnection is off (`connectionStrategy.maxRetry: 0`): a lost channel ends the attempt with
 * `connection_lost` and the driver's outer loop (driver.ts) backs off and opens a fresh one, so
 * the device's state always says what is going on.
 */
import { hostname } from "node:os";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  MessageSecurityMode, OPCUACertificateManager, OPCUAClient, SecurityPolicy, UserTokenType,
  type ClientSession, type UserIdentityInfo,
} from "node-opcua";
import { FloorgateError } from "../../src/core/errors.js";
import type { OpcuaDeviceConfig } from "./config.js";

/** A live client and session; `lost` resolves once with the reason the connection went away. */
export interface OpcuaConnection {
  readonly client: OPCUAClient;
  readonly session: ClientSession;
  readonly lost: Promise<string>;
  /**
   * Closes session and channel (bounded), and releases the certificate store. Never rejects.
   * With `keepSession` (the channel was lost: a CloseSession cannot reach the server) the session
   * is not closed but detached and returned, so a later connection can close it on the server
   * (`closeOrphan`) instead of leaving it there until it times out.
   */
  close(keepSession?: boolean): Promise<ClientSession | undefined>;
}

/** Resolves or rejects like `p`, or rejects DRIVER_TIMEOUT after `ms`; `p`'s late rejection is caught. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  p.catch(() => undefined);
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => { t = setTimeout(() => reject(new FloorgateError("DRIVER_TIMEOUT", `${what}: no answer within ${ms} ms`)), ms); }),
  ]);
}

const APP_URI = `urn:${hostname()}:Floorgate`;

/** Creates (first start) or opens the client's certificate store under `pkiDir`. */
export async function openCertificateStore(pkiDir: string): Promise<OPCUACertificateManager> {
  // No file watchers: a fresh store per connection attempt reads trusted/ again, so a
  // certificate moved there is seen by the next attempt without watchers or a restart.
  const cm = new OPCUACertificateManager({ rootFolder: pkiDir, automaticallyAcceptUnknownCertificate: false, disableFileWatchers: true, name: "floorgate-client" });
  await cm.initialize();
  return cm;
}

function identityOf(cfg: OpcuaDeviceConfig): UserIdentityInfo {
  const { username, password } = cfg.connection;
  if (username === undefined) return { type: UserTokenType.Anonymous };
  return { type: UserTokenType.UserName, userName: username, password: password ?? "" };
}

/** The newest file in `<pkiDir>/rejected`, where node-opcua stores a server certificate it refused. */
async function newestRejected(pkiDir: string): Promise<string | undefined> {
  const dir = join(pkiDir, "rejected");
  const names = await readdir(dir).catch(() => [] as string[]);
  let best: { file: string; t: number } | undefined;
  for (const n of names) {
    const t = (await stat(join(dir, n)).catch(() => undefined))?.mtimeMs ?? 0;
    if (!best || t > best.t) best = { file: join(dir, n), t };
  }
  return best?.file;
}

/** The error of an attempt refused because the server's certificate is not trusted (device `error`). */
export class UntrustedServerError extends FloorgateError {
  constructor(readonly file: string | undefined, trustedDir: string, cause: unknown) {
    super("OPCUA_CERT_UNTRUSTED",
      file
        ? `server certificate not trusted: saved as ${file}; move it to ${trustedDir} to trust this server (the next attempt picks it up)`
        : `server certificate not trusted; move it from the rejected/ folder of the PKI to ${trustedDir}`,
      { cause });
  }
}

/**
 * The session's liveness settings, derived from `timeoutMs` (exported so the network-cut test
 * derives its bounds from the same numbers). node-opcua's keep-alive manager checks every
 * `keepAliveIntervalMs` and sends a Read once it heard nothing from the server for half of that;
 * that Read unanswered within `pingTimeoutMs` ends the connection (`keepalive_failure`), which is
 * how a half-open link (no RST) is noticed. `pingTimeoutMs` is not `timeoutMs`: node-opcua raises
 * any request timeout below 5 s to 5 s (ClientSecureChannelLayer.minTransactionTimeout), so
 * defaultTransactionTimeout only bounds node-opcua's own requests above that floor.
 */
export function sessionTimingOf(cfg: Pick<OpcuaDeviceConfig, "timeoutMs">): { keepAliveIntervalMs: number; pingTimeoutMs: number; sessionTimeoutMs: number } {
  return {
    keepAliveIntervalMs: Math.max(1_000, Math.min(5_000, cfg.timeoutMs)),
    pingTimeoutMs: Math.max(5_000, cfg.timeoutMs),
    sessionTimeoutMs: Math.max(10_000, 4 * cfg.timeoutMs),
  };
}

/**
 * Opens a client and a session. Rejects DRIVER_TIMEOUT (no answer in time), OPCUA_CERT_UNTRUSTED
 * (the server's certificate is not in trusted/), OPCUA_SECURITY (login or security refused) or
 * DRIVER_TRANSPORT; never leaves a client behind when it rejects. An abort of `signal` while it
 * opens disconnects the client at once, so a stop never waits for a connect or session timeout.
 */
export async function openConnection(cfg: OpcuaDeviceConfig, onEvent: (event: string) => void, signal?: AbortSignal): Promise<OpcuaConnection> {
  const cm = await openCertificateStore(cfg.pkiDir);
  const timing = sessionTimingOf(cfg);
  const client = OPCUAClient.create({
    applicationName: "Floorgate",
    applicationUri: APP_URI,
    clientName: `floorgate-${cfg.id}`,
    endpointMustExist: false,
    securityMode: MessageSecurityMode[cfg.connection.securityMode],
    securityPolicy: SecurityPolicy[cfg.connection.securityPolicy],
    // Fail fast, own the loop: no internal retry hiding the state (field notes: #1429, #762).
    connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
    clientCertificateManager: cm,
    keepSessionAlive: true,
    keepAliveInterval: timing.keepAliveIntervalMs,
    // A session orphaned by a network cut expires on the server this soon.
    requestedSessionTimeout: timing.sessionTimeoutMs,
    // node-opcua's transportTimeout is the socket's idle timeout, not a connect timeout: a quiet
    // subscription must not break the channel. Connect is bounded by withTimeout below; a dead
    // peer is noticed by the session keep-alive (keepAliveInterval).
    transportTimeout: Math.max(30_000, 6 * cfg.timeoutMs),
    defaultTransactionTimeout: cfg.timeoutMs,
    // close() closes the session itself when the server is reachable; when it is not, the
    // session must survive disconnect() so that the next connection can close it (closeOrphan).
    keepPendingSessionsOnDisconnect: true,
  });
  let lostResolve!: (why: string) => void;
  const lost = new Promise<string>((r) => { lostResolve = r; });
  client.on("connection_lost", () => lostResolve("connection to the server lost"));
  client.on("close", (err?: Error | null) => lostResolve(err ? `connection closed: ${err.message}` : "connection closed"));
  client.on("timed_out_request", () => onEvent("timeout"));

  let session: ClientSession | undefined;
  let closed = false;
  const close = async (keepSession = false): Promise<ClientSession | undefined> => {
    if (closed) return undefined;
    closed = true;
    const s = session;
    let kept: ClientSession | undefined;
    if (s && keepSession) {
      // Quiet it: no keep-alive Reads nor Publish requests from a session no channel carries.
      const impl = s as unknown as { stopKeepAliveManager?(): void; _terminatePublishEngine?(): void };
      impl.stopKeepAliveManager?.();
      impl._terminatePublishEngine?.();
      s.removeAllListeners();
      kept = s;
    } else if (s) await withTimeout(s.close(true), Math.min(cfg.timeoutMs, 2_000), "closeSession").catch(() => undefined);
    // keepPendingSessionsOnDisconnect: a kept session is detached, not closed (see above)
    await withTimeout(client.disconnect(), Math.min(cfg.timeoutMs, 2_000), "disconnect").catch(() => undefined);
    client.removeAllListeners();
    await cm.dispose().catch(() => undefined);
    return kept;
  };

  const onAbort = (): void => { void close(); };
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal?.aborted) throw new FloorgateError("DRIVER_TRANSPORT", "stopped");
    await withTimeout(client.connect(cfg.connection.endpoint), cfg.timeoutMs, "connect");
    const sess = await withTimeout(client.createSession(identityOf(cfg)), cfg.timeoutMs, "createSession");
    session = sess;
    sess.on("session_closed", () => lostResolve("session closed by the server"));
    sess.on("keepalive_failure", () => lostResolve("session keep-alive failed"));
    return { client, session: sess, lost, close };
  } catch (err) {
    await close();
    const msg = err instanceof Error ? err.message : String(err);
    if (/Certificate verification failed|BadCertificateUntrusted/i.test(msg)) {
      throw new UntrustedServerError(await newestRejected(cfg.pkiDir), join(cfg.pkiDir, "trusted", "certs"), err);
    }
    if (err instanceof FloorgateError) throw err;
    if (/BadUserAccessDenied|BadIdentityToken|BadSecurity|BadCertificate|rejected by server/i.test(msg)) {
      throw new FloorgateError("OPCUA_SECURITY", `server refused the ${cfg.connection.username === undefined ? "anonymous" : "user"} login or the security settings (${cfg.connection.securityMode}/${cfg.connection.securityPolicy}): ${firstLine(msg)}`, { cause: err });
    }
    throw new FloorgateError("DRIVER_TRANSPORT", `cannot connect to ${cfg.connection.endpoint}: ${firstLine(msg)}`, { cause: err });
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * Closes on the server a session left behind by a lost channel, through `conn`'s new channel:
 * ActivateSession moves it there (OPC UA lets a session change channels; the server checks it
 * is the same client and user), then CloseSession deletes it with its subscriptions. Each step
 * bounded by `ms`. Resolves true when the server closed it, false when it was gone already (a
 * restarted server answers BadSessionIdInvalid) or did not answer. Never rejects.
 */
export async function closeOrphan(conn: OpcuaConnection, orphan: ClientSession, ms: number): Promise<boolean> {
  try {
    await withTimeout(conn.client.reactivateSession(orphan), ms, "activate the previous session");
  } catch {
    return false;
  }
  try {
    await withTimeout(orphan.close(true), ms, "close the previous session");
    return true;
  } catch {
    return false;
  }
}

export function firstLine(s: string): string {
  return s.split("\n")[0]!.slice(0, 300);
}
