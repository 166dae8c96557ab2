import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { open, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { FloorgateError } from "../core/errors.js";

export const LOCK_FILE = "LOCK";

/** util-linux (essential on Debian, also in node:*-slim images); BusyBox's applet behaves the same. */
const FLOCK = "flock";
/** `flock -n` never waits for the lock; this only bounds a hung filesystem. */
const FLOCK_TIMEOUT_MS = 10_000;

/*
 * Why an flock taken by a child process, and not a pid in a file:
 *
 * A pid proves nothing across a crash. In a container the daemon is PID 1 on every start, so after
 * kill -9 or a power loss `LOCK` names a live process (itself), and after a reboot any pid may
 * belong to someone else; two daemons that both find a stale pid can both "take over". The kernel
 * knows who holds the directory: an flock(2) lock belongs to an open file description (OFD) and
 * lasts until the last descriptor on it closes, which happens when the owner exits for any reason,
 * whatever its pid. Two OFDs conflict even inside one process, and LOCK_EX|LOCK_NB is atomic, so of
 * any number of openers exactly one wins.
 *
 * Node has no flock API, and a native addon would have to build on every install. So the daemon
 * opens `LOCK` itself and hands that descriptor to `flock -xn 3` as the child's fd 3: the child
 * shares the OFD, locks it and exits; the lock stays on the OFD, which the daemon keeps open for
 * the life of the journal. The kernel drops it exactly when the daemon's descriptor closes (release
 * below, or process death). The descriptor is O_CLOEXEC (libuv opens every file so), so no other
 * child of the daemon inherits it and outlives it holding the lock.
 *
 * The file is never deleted: an unlink would let a newcomer create a second `LOCK` inode and lock
 * that one beside a live owner. Its content (the owner's pid) is for humans and error messages
 * only. That the lock outlived the child is not assumed but checked, once per filesystem: on one
 * that ties it to the process instead (a FUSE or network filesystem could), the directory is refused.
 */

/** Devices on which a lock taken by a child was seen to stay held after the child exited. */
const provenDevices = new Set<number>();

/**
 * Claims `dir` for this process: two writers on one journal would interleave frames and corrupt
 * it. Holds an flock on `dir/LOCK` until the returned release function runs or the process dies
 * (kill -9 included, whatever its pid). A directory held by another process rejects with
 * JOURNAL_IO. Readers (`journal inspect`) do not take it.
 */
export async function lockDir(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    const fh = await openLockFile(path);
    let keep = false;
    try {
      if (!(await tryFlock(fh, path))) {
        throw new FloorgateError("JOURNAL_IO", `journal ${dir} is in use by another process${await ownerHint(fh)}`);
      }
      // Someone removed or replaced LOCK between our open and our lock: ours guards nothing.
      const [mine, now] = await Promise.all([fh.stat(), stat(path).catch(() => null)]);
      if (now === null || now.ino !== mine.ino || now.dev !== mine.dev) continue;
      await proveHeld(path, mine.dev);
      await fh.truncate(0);
      await fh.write(`${process.pid}\n`, 0);
      keep = true;
    } finally {
      if (!keep) await fh.close().catch(() => undefined);
    }
    // The closure keeps the FileHandle reachable: a collected handle is closed by Node, which would
    // drop the lock under a running journal.
    let held: FileHandle | null = fh;
    return async () => {
      const h = held;
      held = null;
      await h?.close();
    };
  }
  throw new FloorgateError("JOURNAL_IO", `cannot lock journal ${dir}: ${path} keeps being replaced`);
}

async function openLockFile(path: string): Promise<FileHandle> {
  try {
    // Not O_TRUNC: the file is only rewritten once the lock is ours.
    return await open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (err) {
    throw new FloorgateError("JOURNAL_IO", `cannot open lock file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Takes LOCK_EX|LOCK_NB on `fh`'s open file description. false: another OFD holds it. */
function tryFlock(fh: FileHandle, path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    let stderr = "";
    const child = spawn(FLOCK, ["-xn", "3"], { stdio: ["ignore", "ignore", "pipe", fh.fd], timeout: FLOCK_TIMEOUT_MS });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (d: string) => { stderr += d; });
    child.once("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "ENOENT"
        ? `the \`${FLOCK}\` command (util-linux) is not on PATH; install util-linux`
        : `cannot run \`${FLOCK}\`: ${err.message}`;
      reject(new FloorgateError("JOURNAL_IO", `cannot lock ${path}: ${why}`, { cause: err }));
    });
    child.once("close", (code, signal) => {
      if (code === 0) resolve(true);
      else if (code === 1) resolve(false); // flock -n: "the lock is held"
      else {
        const how = signal ? `was killed by ${signal}` : `exited with ${code}`;
        reject(new FloorgateError("JOURNAL_IO", `cannot lock ${path}: \`${FLOCK} -xn\` ${how}${stderr.trim() ? `: ${stderr.trim()}` : ""}`));
      }
    });
  });
}

/**
 * Checks once per filesystem that the lock outlived the child that took it: a second OFD on the
 * same file must now be refused. On a filesystem where the lock died with the child we would be
 * holding nothing, so refuse to start rather than risk two writers.
 */
async function proveHeld(path: string, dev: number): Promise<void> {
  if (provenDevices.has(dev)) return;
  const probe = await open(path, constants.O_RDONLY);
  try {
    if (await tryFlock(probe, path)) {
      throw new FloorgateError("JOURNAL_IO", `cannot lock ${path}: the lock taken by \`flock\` did not outlive it on this filesystem (network or FUSE?); put dataDir on a local disk`);
    }
  } finally {
    await probe.close(); // drops the probe's lock too, if it (wrongly) got one
  }
  provenDevices.add(dev);
}

/** " (LOCK names pid N)" from the file's content: information for the operator, never trusted. */
async function ownerHint(fh: FileHandle): Promise<string> {
  const buf = Buffer.alloc(32);
  const { bytesRead } = await fh.read(buf, 0, buf.length, 0).catch(() => ({ bytesRead: 0 }));
  const pid = Number.parseInt(buf.subarray(0, bytesRead).toString("utf8"), 10);
  return Number.isSafeInteger(pid) && pid > 0 ? ` (its LOCK file names pid ${pid})` : "";
}
