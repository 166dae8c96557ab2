// Pass line: the daemon started as PID 1 of its own PID namespace (as in a container), SIGKILLed,
// leaves `dataDir/journal/LOCK` naming pid 1, and the same daemon started again as PID 1 on the same
// dataDir comes up healthy (/healthz answers) instead of refusing the journal with exit 2; both
// times the test proves from /proc that the node process really was PID 1 in its namespace.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isFloorgateError } from "../../src/core/errors.js";
import { lockDir } from "../../src/journal/dir-lock.js";
import { NODE_FLAGS } from "../helpers/bin.js";
import { http } from "../helpers/gateway-process.js";
import { freePort } from "../helpers/ports.js";

const root = resolve(import.meta.dirname, "..", "..");
const BIN = join(root, "bin", "floorgate");

interface Pid1Daemon {
  /** the `unshare` process (our child) */
  unshare: ChildProcess;
  /** pid, in our namespace, of the node process that is PID 1 inside the new one */
  nodePid: number;
  output: string[];
}

/** The NSpid line of /proc/PID/status: that pid in every namespace from ours down to its own. */
async function nsPids(pid: number): Promise<number[]> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const line = status.split("\n").find((l) => l.startsWith("NSpid:"));
  if (!line) throw new Error(`/proc/${pid}/status has no NSpid line (kernel older than 4.1?)`);
  return line.slice("NSpid:".length).trim().split(/\s+/).map(Number);
}

async function childrenOf(ppid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readFile(`/proc/${name}/status`, "utf8").catch(() => "");
    if (new RegExp(`^PPid:\\s+${ppid}$`, "m").test(status)) out.push(Number(name));
  }
  return out;
}

/** Gone, or a zombie: either way the kernel has closed its files (and so dropped its flock). */
async function dead(pid: number): Promise<boolean> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => null);
  return status === null || /^State:\s+Z/m.test(status);
}

async function until<T>(what: string, probe: () => Promise<T | null>, output: string[], timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms:\n${output.join("")}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every unshare started, so a failing test leaves no daemon behind (--kill-child takes node along). */
const started: ChildProcess[] = [];

async function startAsPid1(configFile: string, port: number): Promise<Pid1Daemon> {
  const output: string[] = [];
  const unshare = spawn("unshare", ["-pf", "--kill-child", "--mount-proc", process.execPath, ...NODE_FLAGS, BIN, "run", "--config", configFile], {
    env: { ...process.env, FLOORGATE_LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.push(unshare);
  unshare.stdout!.on("data", (d: Buffer) => output.push(d.toString()));
  unshare.stderr!.on("data", (d: Buffer) => output.push(d.toString()));
  const exited = (): boolean => unshare.exitCode !== null || unshare.signalCode !== null;
  const nodePid = await until("unshare's child did not appear", async () => {
    if (exited()) throw new Error(`unshare exited with ${unshare.exitCode ?? unshare.signalCode} before its child ran:\n${output.join("")}`);
    const kids = await childrenOf(unshare.pid!);
    return kids.length === 1 ? kids[0]! : null;
  }, output);
  await until("daemon not healthy", async () => {
    if (exited()) throw new Error(`the PID-1 daemon exited with ${unshare.exitCode ?? unshare.signalCode}:\n${output.join("")}`);
    const r = await http("GET", `http://127.0.0.1:${port}/healthz`).catch(() => null);
    return r && (r.status === 200 || r.status === 503) ? r.status : null;
  }, output);
  return { unshare, nodePid, output };
}

describe("fault: the daemon as PID 1, SIGKILLed, started again as PID 1", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "floorgate-pid1-"));
    // Fail loudly rather than test yesterday's build: the daemon runs from dist/.
    const [src, built] = await Promise.all([stat(join(root, "src/journal/dir-lock.ts")), stat(join(root, "dist/src/journal/dir-lock.js")).catch(() => null)]);
    if (!built || built.mtimeMs < src.mtimeMs) throw new Error("dist/ is older than src/journal/dir-lock.ts: run `npm run build` first");
    const probe = spawnSync("unshare", ["-pf", "--kill-child", "--mount-proc", "true"], { encoding: "utf8" });
    if (probe.error || probe.status !== 0) {
      throw new Error(`unshare -pf --mount-proc does not work here (needs root or CAP_SYS_ADMIN and util-linux unshare): ${probe.error?.message ?? probe.stderr}`);
    }
  });
  afterAll(async () => {
    for (const u of started) if (u.exitCode === null && u.signalCode === null) u.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  it("comes up healthy after kill -9 although LOCK names pid 1 (itself)", async () => {
    const port = await freePort();
    const configFile = join(dir, "floorgate.yaml");
    await writeFile(configFile, `gateway: { id: pid1, group: faults, dataDir: ${join(dir, "data")} }\nhttp: { listen: "127.0.0.1:${port}" }\n`);
    const lockFile = join(dir, "data", "journal", "LOCK");

    const first = await startAsPid1(configFile, port);
    expect((await nsPids(first.nodePid)).at(-1)).toBe(1);
    expect((await nsPids(first.nodePid)).length).toBeGreaterThanOrEqual(2);
    expect((await readFile(lockFile, "utf8")).trim()).toBe("1");
    // The kernel lock holds across the namespace boundary: this process cannot take it...
    const refused = await lockDir(join(dir, "data", "journal")).then(async (release) => { await release(); return null; }, (e: unknown) => e);
    expect(isFloorgateError(refused, "JOURNAL_IO"), String(refused)).toBe(true);
    // ...while the read-only `journal inspect` still works beside the live daemon.
    const inspect = spawnSync(process.execPath, [BIN, "journal", "inspect", "--config", configFile], { encoding: "utf8", timeout: 30_000 });
    expect(inspect.status, inspect.stderr).toBe(0);

    // kill -9 of unshare: --kill-child makes the kernel SIGKILL the namespace's PID 1 with it.
    const gone = new Promise<void>((r) => first.unshare.once("exit", () => r()));
    first.unshare.kill("SIGKILL");
    await gone;
    await until("the old PID 1 did not die", async () => ((await dead(first.nodePid)) ? true : null), first.output);
    // The crash left the pid-1 lock behind: exactly what made the old pid-based lock refuse.
    expect((await readFile(lockFile, "utf8")).trim()).toBe("1");

    const second = await startAsPid1(configFile, port);
    try {
      expect((await nsPids(second.nodePid)).at(-1)).toBe(1);
      const health = await http("GET", `http://127.0.0.1:${port}/healthz`);
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body)).toMatchObject({ journal: { writable: true } });
    } finally {
      // unshare blocks SIGTERM and does not forward it, so it goes to node itself: PID 1 of a
      // namespace receives a signal from outside only if it handles it, as the daemon does. A clean
      // stop (exit 0, passed on by unshare) proves it still drains normally as PID 1.
      const exited = new Promise<number | null>((r) => second.unshare.once("exit", (code) => r(code)));
      process.kill(second.nodePid, "SIGTERM");
      const code = await exited;
      expect(code, second.output.join("")).toBe(0);
    }
  }, 60_000);
});
