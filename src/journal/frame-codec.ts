import type { JournaledSample, Sample } from "../core/sample.js";
import type { SampleColumns, SampleRun } from "../core/sample-columns.js";
import { FrameDecoder } from "./frame-decoder.js";
import { FrameEncoder } from "./frame-encoder.js";

/**
 * The journal's frame codec: the format and its checks (frame-format.ts), the writer
 * (frame-encoder.ts), the reader (frame-decoder.ts) and their string tables (frame-strings.ts).
 * A journal keeps one `FrameEncoder` and one `FrameDecoder` of its own; the functions below are
 * one-off conveniences for tools and tests, each with a fresh codec (no string table carried from
 * one call to the next, so nothing is shared between callers).
 */
export {
  BODY_HEAD, COUNT_MASK, FRAME_HEADER, FRAME_PREFIX, KEYS_FLAG,
  checkFrame, frameFirstTs, readHeader,
  type FrameCheck, type FrameHeader,
} from "./frame-format.js";
export { FrameEncoder } from "./frame-encoder.js";
export { FrameDecodeError, FrameDecoder } from "./frame-decoder.js";

/**
 * One frame from a fresh encoder. A long-lived encoder writes the same bytes except in a frame in
 * which its string table reached its bound and was cleared (see `EncoderStrings`).
 */
export function encodeFrame(input: SampleColumns | readonly Sample[], firstPos: number): Buffer {
  return new FrameEncoder().encode(input, firstPos);
}

/** `FrameDecoder.decode` with a fresh decoder. */
export function decodeFrame(buf: Buffer, off: number, minPos: number, out: JournaledSample[], limit: number): void {
  new FrameDecoder().decode(buf, off, minPos, out, limit);
}

/** `FrameDecoder.decodeRun` with a fresh decoder. */
export function decodeFrameRun(buf: Buffer, off: number, minPos: number, limit: number): SampleRun | null {
  return new FrameDecoder().decodeRun(buf, off, minPos, limit);
}
