import { WebSocket, type ClientOptions } from "ws";

/** A frame as the feed sends it (JSON text). */
export interface LiveFrame {
  type: string;
  [key: string]: unknown;
}

export interface LiveSampleFrame { device: string; tag: string; value: unknown; quality: string; ts: string; unit?: string }

/**
 * A `ws` client of `/live` for tests: records every frame with its arrival time and waits for
 * frames by predicate (readiness, never fixed sleeps). Fails loudly on timeouts.
 */
export class LiveClient {
  readonly frames: { frame: LiveFrame; at: number }[] = [];
  /** resolves with the close code and reason */
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: (() => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => {
      const at = Date.now();
      const text = isBinary ? "" : data.toString();
      this.frames.push({ frame: JSON.parse(text) as LiveFrame, at });
      this.wake();
    });
    // A test client must not crash the runner on a reset either.
    ws.on("error", () => {});
    this.closed = new Promise((resolve) => ws.once("close", (code, reason) => { this.wake(); resolve({ code, reason: reason.toString() }); }));
  }

  /** Opens `url`; rejects with the HTTP status (as `status` on the error) when the upgrade is refused. */
  static open(url: string, opts: ClientOptions = {}): Promise<LiveClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 10_000, ...opts });
      const c = new LiveClient(ws);
      ws.once("open", () => resolve(c));
      ws.once("unexpected-response", (_req, res) => {
        res.resume();
        reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }));
        ws.terminate();
      });
      ws.once("error", (err) => reject(err));
    });
  }

  send(obj: unknown): void {
    this.ws.send(typeof obj === "string" ? obj : JSON.stringify(obj));
  }

  /** The first frame at index ≥ `from` that satisfies `pred`; waits up to `timeoutMs`. */
  async next(pred: (f: LiveFrame) => boolean, opts: { from?: number; timeoutMs?: number; what?: string } = {}): Promise<{ frame: LiveFrame; at: number; index: number }> {
    const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
    let i = opts.from ?? 0;
    for (;;) {
      for (; i < this.frames.length; i++) {
        const f = this.frames[i]!;
        if (pred(f.frame)) return { ...f, index: i };
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${opts.what ?? "matching frame"} within ${opts.timeoutMs ?? 15_000} ms; got types ${[...new Set(this.frames.map((f) => f.frame.type))].join(",")}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  /** Every sample received so far, in order, flattened from `samples` frames. */
  samples(from = 0): LiveSampleFrame[] {
    const out: LiveSampleFrame[] = [];
    for (const f of this.frames.slice(from)) if (f.frame.type === "samples") out.push(...(f.frame.samples as LiveSampleFrame[]));
    return out;
  }

  close(): void {
    this.ws.terminate();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** The HTTP status an upgrade to `url` is refused with (fails when it is accepted). */
export async function refusedWith(url: string, opts: ClientOptions = {}): Promise<number> {
  try {
    const c = await LiveClient.open(url, opts);
    c.close();
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status !== undefined) return status;
    throw err;
  }
  throw new Error(`upgrade to ${url} was accepted`);
}
