import { XBEE_ESCAPE, XBEE_ESCAPE_XOR, XBEE_START, XBEE_XOFF, XBEE_XON } from "./constants";

export function needsEscape(byte: number): boolean {
  return byte === XBEE_START || byte === XBEE_ESCAPE || byte === XBEE_XON || byte === XBEE_XOFF;
}

/** Escapes bytes for API mode 2 (everything after the start delimiter is escaped). */
export function escapeBytes(bytes: Uint8Array): Buffer {
  let extra = 0;
  for (const b of bytes) if (needsEscape(b)) extra++;
  if (extra === 0) return Buffer.from(bytes);
  const out = Buffer.allocUnsafe(bytes.length + extra);
  let j = 0;
  for (const b of bytes) {
    if (needsEscape(b)) {
      out[j++] = XBEE_ESCAPE;
      out[j++] = b ^ XBEE_ESCAPE_XOR;
    } else {
      out[j++] = b;
    }
  }
  return out;
}
