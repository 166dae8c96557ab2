// Pass line: the journal directory lock is a kernel flock, not a pid. At any moment at most one
// holder: a second lockDir refuses with JOURNAL_IO whether it comes from this process (another open
// file description) or another one, and in 50 rounds of two processes racing on one directory
// (fresh, or with a stale LOCK naming pid 1) exactly one wins each round. A LOCK file naming a stale
// pid (1, or our own) never blocks. A holder that is SIGKILLed frees the lock the moment it is
// reaped, a released lock can be taken again at once, and the lock is not inherited by other
// children of the holder. `flock` missing from PATH is a clear JOURNAL_IO error, and a lock that
// did not outlive the `flock` child is refused rather than trusted.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isFloorgateError } from "../../src/core/errors.js";
import { lockDir, LOCK_FILE } from "../../src/journal/dir-lock.js";

const root = resolve(import.meta.dirname, "..", "..");
const CHILD = join(import.meta.dirname, "fixtures", "lock-child.ts");

/** A lock-child process: `ask` sends one command and resolves with its one-line answer. */
interface LockChild {
  proc: ChildProcess;
  ask(cmd: string): Promise<string>;
  stderr: string[];
}

async function startChild(env: NodeJS.ProcessEnv = process.env): Promise<LockChild> {
  const proc = spawn(process.execPath, ["--import", "tsx", CHILD], { cwd: root, env, stdio: ["pipe", "pipe", "pipe"] });
  const stderr: string[] = [];
  proc.stderr!.on("data", (d: Buffer) => stderr.push(d.toString()));
  const lines: Interface = createInterface({ input: proc.stdout! });
  const waiting: ((line: string) => void)[] = [];
  const early: string[] = [];
  lines.on("line", (l) => { const w = waiting.shift(); if (w) w(l); else early.push(l); });
  const next = (): Promise<string> => new Promise((res, rej) => {
    const l = early.shift();
    if (l !== undefined) { res(l); return; }
    const onExit = (): void => rej(new Error(`lock child exited:\n${stderr.join("")}`));
    proc.once("exit", onExit);
    waiting.push((line) => { proc.off("exit", onExit); res(line); });
  });
  const ready = await next();
  if (ready !== "ready") throw new Error(`lock child said ${ready}:\n${stderr.join("")}`);
  return { proc, stderr, ask: (cmd) => { const a = next(); proc.stdin!.write(`${cmd}\n`); return a; } };
}

/** util-linux flock on the path, from outside Node: exit 1 = someone holds the lock. */
function heldByKernel(path: string): boolean {
  const r = spawnSync("flock", ["-xn", path, "true"]);
  if (r.error || (r.status !== 0 && r.status !== 1)) throw new Error(`flock probe failed: ${r.error?.message ?? r.stderr.toString()}`);
  return r.status === 1;
}

async function refusal(dir: string): Promise<Error> {
  const err = await lockDir(dir).then(
    async (release) => { await release(); return null; },
    (e: unknown) => e as Error,
  );
  if (err === null) throw new Error(`lockDir(${dir}) succeeded, expected it to refuse`);
  return err;
}

describe("fault: journal directory lock (flock)", () => {
  let base: string;
  let n = 0;
  const freshDir = async (): Promise<string> => { const d = join(base, `d${n++}`); await mkdir(d); return d; };
  beforeAll(async () => { base = await mkdtemp(join(tmpdir(), "floorgate-lock-")); });
  afterAll(async () => { await rm(base, { recursive: true, force: true }); });

  it("refuses a second lock in the same process (another open file description) until released", async () => {
    const dir = await freshDir();
    const lockPath = join(dir, LOCK_FILE);
    const release = await lockDir(dir);
    expect(heldByKernel(lockPath)).toBe(true);
    const err = await refusal(dir);
    expect(isFloorgateError(err, "JOURNAL_IO")).toBe(true);
    expect(err.message).toContain("in use by another process");
    expect(err.message).toContain(`pid ${process.pid}`); // the file's content, shown as information
    await release();
    await release(); // a second release is harmless
    expect(heldByKernel(lockPath)).toBe(false);
    expect(await readFile(lockPath, "utf8")).toBe(`${process.pid}\n`); // kept: never unlinked
    const again = await lockDir(dir);
    expect(heldByKernel(lockPath)).toBe(true);
    await again();
  });

  it("is not blocked by a LOCK file naming a stale pid (1, or our own)", async () => {
    for (const stale of ["1\n", `${process.pid}\n`, "garbage", ""]) {
      const dir = await freshDir();
      await writeFile(join(dir, LOCK_FILE), stale);
      const release = await lockDir(dir);
      expect(await readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${process.pid}\n`);
      await release();
    }
  });

  it("is not inherited by other children of the holder", async () => {
    const dir = await freshDir();
    const release = await lockDir(dir);
    // If the lock's descriptor leaked into this child, the child would keep the lock alive past
    // release (and past the holder's death).
    const bystander = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      await once(bystander, "spawn");
      await release();
      expect(heldByKernel(join(dir, LOCK_FILE))).toBe(false);
      const again = await lockDir(dir);
      await again();
    } finally {
      bystander.kill("SIGKILL");
    }
  });

  it("fails with a clear JOURNAL_IO error when `flock` is not installed, and holds nothing", async () => {
    const dir = await freshDir();
    const emptyBin = await freshDir();
    const path = process.env.PATH;
    process.env.PATH = emptyBin;
    let err: Error;
    try {
      err = await refusal(dir);
    } finally {
      process.env.PATH = path;
    }
    expect(isFloorgateError(err, "JOURNAL_IO")).toBe(true);
    expect(err.message).toMatch(/flock.*util-linux/);
    const release = await lockDir(dir);
    await release();
  });

  it("refuses, rather than trusts, a lock that does not outlive the `flock` child", async () => {
    // Stands in for a filesystem that ties the lock to the process that took it: a `flock` that
    // reports success and holds nothing. Run in a child, whose once-per-filesystem check is fresh.
    const dir = await freshDir();
    const fakeBin = await freshDir();
    await writeFile(join(fakeBin, "flock"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const child = await startChild({ ...process.env, PATH: `${fakeBin}:${process.env.PATH ?? ""}` });
    try {
      const answer = await child.ask(`lock ${dir}`);
      expect(answer).toMatch(/^lost .*did not outlive it on this filesystem/);
    } finally {
      child.proc.kill("SIGKILL");
    }
  });

  it("two processes racing for one directory: exactly one wins, 50 rounds", async () => {
    const [a, b] = await Promise.all([startChild(), startChild()]);
    try {
      for (let round = 0; round < 50; round++) {
        const dir = await freshDir();
        // odd rounds: a stale LOCK naming pid 1, the case where the pid lock let both take over
        if (round % 2 === 1) await writeFile(join(dir, LOCK_FILE), "1\n");
        const answers = await Promise.all([a.ask(`lock ${dir}`), b.ask(`lock ${dir}`)]);
        const won = answers.filter((x) => x === "won").length;
        const lost = answers.filter((x) => x.startsWith("lost ") && x.includes("in use by another process")).length;
        expect({ round, answers, won, lost }).toMatchObject({ won: 1, lost: 1 });
        expect(heldByKernel(join(dir, LOCK_FILE))).toBe(true);
        await Promise.all([a.ask("release"), b.ask("release")]);
        expect(heldByKernel(join(dir, LOCK_FILE))).toBe(false);
      }
    } finally {
      a.proc.kill("SIGKILL");
      b.proc.kill("SIGKILL");
    }
  }, 120_000);

  it("a holder killed with SIGKILL frees the lock as soon as it is reaped", async () => {
    const dir = await freshDir();
    const holder = await startChild();
    expect(await holder.ask(`lock ${dir}`)).toBe("won");
    const err = await refusal(dir);
    expect(isFloorgateError(err, "JOURNAL_IO")).toBe(true);
    expect(err.message).toContain(`pid ${holder.proc.pid}`);
    const reaped = once(holder.proc, "exit");
    holder.proc.kill("SIGKILL");
    await reaped;
    expect(await readFile(join(dir, LOCK_FILE), "utf8")).toBe(`${holder.proc.pid}\n`); // stale content stays
    const release = await lockDir(dir); // no retry, no wait: the kernel dropped it with the process
    await release();
  });
});
