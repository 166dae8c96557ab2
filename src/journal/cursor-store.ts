import { open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";

export const CURSORS_FILE = "cursors.json";

interface CursorFile {
  version: 1;
  cursors: Record<string, number>;
}

/**
 * The saved cursors, or an empty map when the file is missing. A file that does not parse is
 * treated as missing (outputs replay from the oldest sample: at least once, never lost) and
 * reported through `onBad`.
 */
export async function loadCursors(dir: string, onBad?: (why: string) => void): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  let text: string;
  try {
    text = await readFile(join(dir, CURSORS_FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return out;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<CursorFile>;
    const cursors = parsed.cursors;
    if (typeof cursors !== "object" || cursors === null) throw new Error("no cursors object");
    for (const [name, pos] of Object.entries(cursors)) {
      if (typeof pos === "number" && Number.isSafeInteger(pos) && pos >= 0) out.set(name, pos);
    }
  } catch (err) {
    onBad?.(err instanceof Error ? err.message : String(err));
  }
  return out;
}

/**
 * Replaces cursors.json atomically: write a temp file, fsync it, rename over the old one, fsync
 * the directory. A crash leaves either the old or the new file, never a half-written one.
 */
export async function saveCursors(dir: string, cursors: ReadonlyMap<string, number>): Promise<void> {
  const body: CursorFile = { version: 1, cursors: Object.fromEntries(cursors) };
  const tmp = join(dir, `${CURSORS_FILE}.tmp`);
  const fh = await open(tmp, "w");
  try {
    await fh.writeFile(JSON.stringify(body) + "\n");
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, CURSORS_FILE));
  await syncDir(dir);
}

/** fsync of a directory makes created, renamed and deleted entries durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function removeIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
