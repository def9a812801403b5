import { EncodeError } from "../common/errors";
import { frameError, frameOk, type FrameResult } from "../common/result";
import { XBEE_ESCAPE, XBEE_ESCAPE_XOR, XBEE_START, type XBeeApiMode } from "./constants";
import { escapeBytes } from "./escape";

/** 0xFF minus the low byte of the sum of the frame data (API identifier included). */
export function xbeeChecksum(frameData: Uint8Array): number {
  let sum = 0;
  for (const b of frameData) sum += b;
  return 0xff - (sum & 0xff);
}

/**
 * One API frame: its type (API identifier) and the frame-specific data after it.
 * `fromBuffer`/`fromUnescaped` check the length and checksum; a frame object is always valid.
 */
export class XBeeFrame {
  constructor(
    readonly type: number,
    /** Frame-specific data, after the API identifier, unescaped. */
    readonly data: Buffer,
  ) {}

  /**
   * From the unescaped bytes after the start delimiter: length (2), frame data, checksum.
   * Shared by `fromBuffer` and the stream parser so the checks live in one place.
   */
  static fromUnescaped(body: Uint8Array): FrameResult<XBeeFrame> {
    if (body.length < 3)
      return frameError("truncated_frame", `frame ends after ${body.length} bytes, before its length field`);
    const length = (body[0]! << 8) | body[1]!;
    if (length === 0) return frameError("bad_length", "length field is 0; a frame carries at least its API identifier");
    if (body.length < length + 3) {
      return frameError(
        "truncated_frame",
        `length field says ${length} bytes of frame data, only ${body.length - 3} present`,
      );
    }
    if (body.length > length + 3) {
      return frameError(
        "bad_length",
        `${body.length - length - 3} bytes follow the checksum of a ${length}-byte frame`,
      );
    }
    let sum = 0;
    for (let i = 2; i < length + 3; i++) sum += body[i]!;
    if ((sum & 0xff) !== 0xff) {
      const expected = xbeeChecksum(body.subarray(2, length + 2));
      const got = body[length + 2]!;
      return frameError(
        "bad_checksum",
        `checksum 0x${hex2(got)} does not match frame data (expected 0x${hex2(expected)})`,
      );
    }
    return frameOk(new XBeeFrame(body[2]!, Buffer.from(body.subarray(3, length + 2))));
  }

  /** From one complete frame, start delimiter to checksum, as sent in API mode 1 or 2. */
  static fromBuffer(buf: Uint8Array, mode: XBeeApiMode = 1): FrameResult<XBeeFrame> {
    if (buf.length === 0 || buf[0] !== XBEE_START) return frameError("bad_field", "frame does not start with 0x7E");
    const rest = buf.subarray(1);
    if (mode === 1) return XBeeFrame.fromUnescaped(rest);
    const body = Buffer.allocUnsafe(rest.length);
    let n = 0;
    for (let i = 0; i < rest.length; i++) {
      let b = rest[i]!;
      if (b === XBEE_START)
        return frameError("truncated_frame", `a new frame starts at byte ${i + 1} (unescaped 0x7E)`);
      if (b === XBEE_ESCAPE) {
        const next = rest[++i];
        if (next === undefined) return frameError("truncated_frame", "frame ends inside an escape sequence");
        b = next ^ XBEE_ESCAPE_XOR;
      }
      body[n++] = b;
    }
    return XBeeFrame.fromUnescaped(body.subarray(0, n));
  }

  /** The frame on the wire, start delimiter to checksum, escaped when `mode` is 2. */
  toBuffer(mode: XBeeApiMode = 1): Buffer {
    const length = this.data.length + 1;
    if (length > 0xffff) throw new EncodeError(`frame data of ${length} bytes exceeds the 16-bit length field`);
    const body = Buffer.allocUnsafe(length + 3);
    body.writeUInt16BE(length, 0);
    body[2] = this.type;
    this.data.copy(body, 3);
    body[length + 2] = xbeeChecksum(body.subarray(2, length + 2));
    const payload = mode === 2 ? escapeBytes(body) : body;
    return Buffer.concat([Buffer.of(XBEE_START), payload]);
  }
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}
