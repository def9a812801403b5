import type { CodecErrorReason, ParseResult } from "../common/result";
import { XBEE_ESCAPE, XBEE_ESCAPE_XOR, XBEE_START } from "./constants";
import { XBeeFrame } from "./frame";

/**
 * The two frame scanners behind XBeeParser. Each reads `data` from the start, appends what
 * it completes to `out`, and returns how many bytes it consumed; the parser keeps the rest
 * for the next chunk. When `final` is set nothing is kept: partial frames are reported.
 *
 * Every input byte ends up in exactly one result's `raw` (frame, garbage or error), in
 * order, so the quarantine holds each rejected byte once and byte counts reconcile.
 */
type Out = ParseResult<XBeeFrame>[];

export interface ScanLimits {
  /** Largest accepted value of the length field. */
  readonly maxFrameLength: number;
  /** Garbage is reported in runs of at most this many bytes. */
  readonly maxGarbageRun: number;
}

function error(out: Out, reason: CodecErrorReason, message: string, data: Buffer, start: number, end: number): void {
  out.push({ kind: "error", reason, message, raw: Buffer.from(data.subarray(start, end)) });
}

/**
 * Reports bytes before the next start delimiter as `garbage`, in runs of at most
 * maxGarbageRun bytes. Returns the new position; `wait` is set when a short run reaches the
 * end of the data and is kept for the next chunk (so noise arriving a byte at a time is
 * reported as one run, not one error per byte).
 */
function skipGarbage(
  data: Buffer,
  pos: number,
  final: boolean,
  limits: ScanLimits,
  out: Out,
): { pos: number; wait: boolean } {
  const next = data.indexOf(XBEE_START, pos);
  const end = next === -1 ? data.length : next;
  while (end - pos >= limits.maxGarbageRun) {
    error(out, "garbage", `${limits.maxGarbageRun} bytes outside any frame`, data, pos, pos + limits.maxGarbageRun);
    pos += limits.maxGarbageRun;
  }
  if (pos === end) return { pos, wait: false };
  if (next === -1 && !final) return { pos, wait: true };
  error(out, "garbage", `${end - pos} bytes outside any frame`, data, pos, end);
  return { pos: end, wait: false };
}

/** Index of the next start delimiter in [from, limit), or `limit`. */
function nextStart(data: Buffer, from: number, limit: number): number {
  const i = data.indexOf(XBEE_START, from);
  return i === -1 || i > limit ? limit : i;
}

/**
 * API mode 1. A 0x7E may legitimately occur inside a frame (in an address, a sample, the
 * checksum), so a start byte is trusted only once the length and checksum confirm it. After
 * a rejected candidate the scan resumes at the next 0x7E *inside* it, because a stray 0x7E
 * followed by a plausible length swallows the real frames after it; they are found again.
 * The cost: until a stray candidate's declared length has arrived, frames behind it wait.
 */
export function scanApi1(data: Buffer, limits: ScanLimits, final: boolean, out: Out): number {
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] !== XBEE_START) {
      const skipped = skipGarbage(data, pos, final, limits, out);
      pos = skipped.pos;
      if (skipped.wait) return pos;
      continue;
    }
    if (data.length - pos < 3) {
      if (!final) return pos;
      const resume = nextStart(data, pos + 1, data.length);
      error(out, "truncated_frame", "input ended inside a frame header", data, pos, resume);
      pos = resume;
      continue;
    }
    const length = data.readUInt16BE(pos + 1);
    if (length === 0 || length > limits.maxFrameLength) {
      // Only the start byte is blamed: the two "length" bytes may belong to a real frame.
      const reason = length === 0 ? "bad_length" : "frame_too_long";
      error(
        out,
        reason,
        `start byte followed by length ${length} (accepted 1..${limits.maxFrameLength}); resyncing`,
        data,
        pos,
        pos + 1,
      );
      pos += 1;
      continue;
    }
    const total = length + 4;
    if (data.length - pos < total) {
      if (!final) return pos;
      const resume = nextStart(data, pos + 1, data.length);
      error(
        out,
        "truncated_frame",
        `input ended ${total - (data.length - pos)} bytes short of a ${length}-byte frame`,
        data,
        pos,
        resume,
      );
      pos = resume;
      continue;
    }
    const parsed = XBeeFrame.fromUnescaped(data.subarray(pos + 1, pos + total));
    if (parsed.ok) {
      out.push({ kind: "frame", frame: parsed.frame, raw: Buffer.from(data.subarray(pos, pos + total)) });
      pos += total;
      continue;
    }
    const resume = nextStart(data, pos + 1, pos + total);
    const note = resume < pos + total ? `; resyncing at a start byte ${resume - pos} bytes in` : "";
    error(out, parsed.reason, parsed.message + note, data, pos, resume);
    pos = resume;
  }
  return pos;
}

type Escaped =
  | { status: "incomplete" }
  | { status: "interrupted"; end: number }
  | { status: "bad_header"; end: number; length: number }
  | { status: "complete"; end: number; body: Buffer };

/** Unescapes one API mode 2 frame starting at `pos` into `scratch` (length + data + checksum). */
function readEscaped(data: Buffer, pos: number, maxFrameLength: number, scratch: Buffer): Escaped {
  let i = pos + 1;
  let n = 0;
  let need = 2;
  let length = -1;
  for (;;) {
    if (n === need) {
      if (length >= 0) return { status: "complete", end: i, body: scratch.subarray(0, n) };
      length = (scratch[0]! << 8) | scratch[1]!;
      if (length === 0 || length > maxFrameLength) return { status: "bad_header", end: i, length };
      need = length + 3;
      continue;
    }
    if (i >= data.length) return { status: "incomplete" };
    let b = data[i]!;
    if (b === XBEE_START) return { status: "interrupted", end: i };
    if (b === XBEE_ESCAPE) {
      if (i + 1 >= data.length) return { status: "incomplete" };
      const next = data[i + 1]!;
      // An escaped frame never contains a raw 0x7E, even after 0x7D: it starts a new frame.
      if (next === XBEE_START) return { status: "interrupted", end: i + 1 };
      b = next ^ XBEE_ESCAPE_XOR;
      i += 2;
    } else {
      i += 1;
    }
    scratch[n++] = b;
  }
}

/**
 * API mode 2. Escaping guarantees a raw 0x7E is always a frame start, so a frame cut short
 * by a new 0x7E is reported as `truncated_frame` and the new frame is parsed at once: no
 * waiting on a stray start byte, and no frame is ever swallowed by a corrupt one.
 */
export function scanApi2(data: Buffer, limits: ScanLimits, final: boolean, out: Out, scratch: Buffer): number {
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] !== XBEE_START) {
      const skipped = skipGarbage(data, pos, final, limits, out);
      pos = skipped.pos;
      if (skipped.wait) return pos;
      continue;
    }
    const r = readEscaped(data, pos, limits.maxFrameLength, scratch);
    switch (r.status) {
      case "incomplete":
        if (!final) return pos;
        error(out, "truncated_frame", "input ended inside a frame", data, pos, data.length);
        pos = data.length;
        break;
      case "interrupted":
        error(out, "truncated_frame", "a new frame started (0x7E) before this one was complete", data, pos, r.end);
        pos = r.end;
        break;
      case "bad_header": {
        const reason = r.length === 0 ? "bad_length" : "frame_too_long";
        error(out, reason, `length ${r.length} (accepted 1..${limits.maxFrameLength}); resyncing`, data, pos, r.end);
        pos = r.end;
        break;
      }
      case "complete": {
        const parsed = XBeeFrame.fromUnescaped(r.body);
        if (parsed.ok) out.push({ kind: "frame", frame: parsed.frame, raw: Buffer.from(data.subarray(pos, r.end)) });
        else error(out, parsed.reason, parsed.message, data, pos, r.end);
        pos = r.end;
        break;
      }
    }
  }
  return pos;
}
