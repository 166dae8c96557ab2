import { open, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { FloorgateError } from "../core/errors.js";

export const LOCK_FILE = "LOCK";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Claims `dir` for this process: two writers on one journal would interleave frames and corrupt
 * it. The lock file holds the owner's pid; a lock left by a dead process (kill -9, power loss) is
 * taken over. Returns the release function.
 */
export async function lockDir(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, "wx");
      try {
        await fh.writeFile(`${process.pid}\n`);
      } finally {
        await fh.close();
      }
      return async () => {
        await unlink(path).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = Number.parseInt(await readFile(path, "utf8").catch(() => ""), 10);
    if (Number.isSafeInteger(owner) && owner > 0 && alive(owner)) {
      throw new FloorgateError("JOURNAL_IO", `journal ${dir} is in use by process ${owner} (remove ${path} if that is wrong)`);
    }
    await unlink(path).catch(() => undefined); // stale: its owner is gone
  }
  throw new FloorgateError("JOURNAL_IO", `cannot lock journal ${dir}`);
}
