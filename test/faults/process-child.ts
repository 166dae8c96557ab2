import { spawn, type ChildProcess } from "node:child_process";
import { BIN, NODE_FLAGS } from "../helpers/bin.js";

/** `bin/floorgate run` as a real process, with extra node flags; every line it writes is kept. */
export interface Daemon {
  child: ChildProcess;
  readonly lines: string[];
  /** resolves with the first line matching `re` (fails if the process exits first) */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  /** resolves at exit with the code, the signal, the ms since `since` (performance.now(); default: now) and the wall-clock time of the exit */
  exited(since?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number; wallMs: number }>;
  /** the JSON log lines */
  logs(): Record<string, unknown>[];
}

export function spawnDaemon(configFile: string, opts: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Daemon {
  const child = spawn(process.execPath, [...NODE_FLAGS, ...(opts.nodeArgs ?? []), BIN, "run", "--config", configFile], {
    env: { ...process.env, FLOORGATE_LOG_LEVEL: "info", ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
    cwd: opts.cwd,
  });
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve(l: string): void }[] = [];
  let exit: { code: number | null; signal: NodeJS.Signals | null; at: number; wall: number } | undefined;
  const exitWaiters: (() => void)[] = [];
  let pending = { stdout: "", stderr: "" };
  const feed = (which: "stdout" | "stderr") => (d: Buffer) => {
    const text = pending[which] + d.toString();
    const parts = text.split("\n");
    pending[which] = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const w of waiters.slice()) if (w.re.test(l)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(l); }
    }
  };
  child.stdout!.on("data", feed("stdout"));
  child.stderr!.on("data", feed("stderr"));
  child.on("exit", (code, signal) => {
    exit = { code, signal, at: performance.now(), wall: Date.now() };
    for (const w of exitWaiters.splice(0)) w();
  });
  const untilExit = () => new Promise<void>((r) => {
    if (exit) r();
    else exitWaiters.push(r);
  });
  // "close" also waits for the pipes: every line is in `lines` once it fires
  const closed = new Promise<void>((r) => child.on("close", () => r()));
  return {
    child,
    lines,
    waitFor(re, timeoutMs = 20_000) {
      const hit = lines.find((l) => re.test(l));
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no line matching ${re} within ${timeoutMs} ms:\n${lines.join("\n")}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => { clearTimeout(t); resolve(l); } });
        void untilExit().then(() => setImmediate(() => {
          clearTimeout(t);
          reject(new Error(`exited (${exit?.code ?? exit?.signal}) before a line matching ${re}:\n${lines.join("\n")}`));
        }));
      });
    },
    async exited(since = performance.now()) {
      await untilExit();
      await closed;
      return { code: exit!.code, signal: exit!.signal, ms: exit!.at - since, wallMs: exit!.wall };
    },
    logs() {
      const out: Record<string, unknown>[] = [];
      for (const l of lines) {
        try { out.push(JSON.parse(l) as Record<string, unknown>); } catch { /* not a log line */ }
      }
      return out;
    },
  };
}
