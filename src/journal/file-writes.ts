import type { FileHandle } from "node:fs/promises";

/**
 * Writes `bufs` (`bytes` in all) back to back at `position`. One gather write instead of a
 * concatenated copy: the copy was a fresh ArrayBuffer per batch, and V8 counts those bytes toward
 * starting its next full GC.
 */
export async function writevFully(fh: FileHandle, bufs: Buffer[], bytes: number, position: number): Promise<void> {
  const { bytesWritten } = await fh.writev(bufs, position);
  if (bytesWritten === bytes) return;
  if (bytesWritten < 0 || bytesWritten > bytes) throw new Error("short write");
  // A short gather write (a full disk, or a signal): the rest, copied once.
  await writeFully(fh, Buffer.concat(bufs, bytes).subarray(bytesWritten), position + bytesWritten);
}

export async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error("short write");
    done += bytesWritten;
  }
}
