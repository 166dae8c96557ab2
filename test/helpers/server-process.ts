import { spawn, type ChildProcess } from "node:child_process";
import { waitStopped } from "./stopped.js";

/** Servers still running, killed when the test process exits so a crashed test leaves no orphans. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackForExit(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const c of live) c.kill("SIGKILL");
    });
  }
}

export interface ServerProcessOptions {
  /** the server's name in errors: "mosquitto", "influxd" */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** where it listens, for errors: "port 1883" */
  where: string;
  readyTimeoutMs: number;
  /** between two readiness probes */
  retryMs: number;
  /** Resolves once the server answers as it should; throws (and is retried) until then. */
  probe(child: ChildProcess): Promise<void>;
}

/**
 * A server binary run by a test, which can be stopped, killed, paused and started again (same
 * arguments, so the same port and data). Lifecycle:
 * - `start()` spawns it and resolves once `probe` passes, retried every `retryMs`, never a fixed
 *   sleep; a server that exits or stays unready past `readyTimeoutMs` is killed and `start` throws
 *   with the last probe error and the server's last log lines. Throws if already running.
 * - `stop()` (SIGTERM) and `kill()` (SIGKILL) resolve once it exited; both do nothing while down. A
 *   paused server gets SIGCONT before SIGTERM (it could not handle it) but not before SIGKILL (it
 *   must not run, and answer, first).
 * - `pause()` returns once every thread of it is stopped; `resume()` continues it.
 * - `log` keeps its last 2,000 lines of stdout and stderr, newest last.
 */
export interface ServerProcess {
  readonly log: string[];
  /** undefined while it is down */
  readonly pid: number | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
  kill(): Promise<void>;
  pause(): void;
  resume(): void;
}

export function serverProcess(o: ServerProcessOptions): ServerProcess {
  const log: string[] = [];
  let proc: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const pushLog = (chunk: Buffer): void => {
    for (const line of chunk.toString("utf8").split("\n")) if (line) log.push(line);
    if (log.length > 2000) log.splice(0, log.length - 2000);
  };

  const waitExit = async (signal: NodeJS.Signals): Promise<void> => {
    const p = proc;
    if (!p) return;
    if (signal === "SIGTERM") p.kill("SIGCONT");
    p.kill(signal);
    await exited;
    proc = null;
  };

  const start = async (): Promise<void> => {
    if (proc) throw new Error(`${o.name} already running`);
    const child = spawn(o.command, o.args, { stdio: ["ignore", "pipe", "pipe"], ...(o.env ? { env: o.env } : {}) });
    proc = child;
    trackForExit(child);
    child.stdout?.on("data", pushLog);
    child.stderr?.on("data", pushLog);
    let exitInfo: string | null = null;
    exited = new Promise<void>((resolve) => {
      child.once("exit", (code, sig) => { exitInfo = `code ${code} signal ${sig}`; resolve(); });
      child.once("error", (err) => { exitInfo = err.message; resolve(); });
    });
    const deadline = Date.now() + o.readyTimeoutMs;
    let lastErr = "";
    while (Date.now() < deadline && exitInfo === null) {
      try {
        await o.probe(child);
        return;
      } catch (err) {
        lastErr = (err as Error).message;
        await new Promise((r) => setTimeout(r, o.retryMs));
      }
    }
    await waitExit("SIGKILL");
    throw new Error(`${o.name} did not become ready on ${o.where} (${exitInfo ?? "timeout"}): ${lastErr}\n${log.slice(-20).join("\n")}`);
  };

  return {
    log,
    get pid() { return proc?.pid; },
    start,
    stop: () => waitExit("SIGTERM"),
    kill: () => waitExit("SIGKILL"),
    pause: () => {
      const p = proc;
      if (!p?.pid) return;
      p.kill("SIGSTOP");
      waitStopped(p.pid, o.name);
    },
    resume: () => { proc?.kill("SIGCONT"); },
  };
}
