/**
 * The byte writers behind PendingMessages.push: a wire message's payload and readings written
 * straight into the group's buffer, byte for byte what shared's `encodeWireMessage` gives in
 * the group's wire format (pending-messages.test.ts holds them to it), without a string per
 * message to re-encode.
 */
import type { WireFormat, WireReadingInput } from "@datalab/shared";

const ascii = (s: string): Uint8Array => Buffer.from(s, "latin1");
const NULL = ascii("null");

/** The constant bytes between a wire message's values, in one format. */
export interface WireLayout {
  payload: Uint8Array;
  utf8: Uint8Array;
  base64: Uint8Array;
  seq: Uint8Array;
  sensorId: Uint8Array;
  metric: Uint8Array;
  value: Uint8Array;
  unit: Uint8Array;
  ts: Uint8Array;
  rxWindow: Uint8Array;
  /** The byte closing a reading, then the message. */
  readingEnd: number;
  messageEnd: number;
}

const NAMED: WireLayout = {
  payload: ascii(',"payload":"'),
  utf8: ascii(',"encoding":"utf8","readings":['),
  base64: ascii(',"encoding":"base64","readings":['),
  seq: ascii('{"seq":'),
  sensorId: ascii(',"sensorId":'),
  metric: ascii(',"metric":'),
  value: ascii(',"value":'),
  unit: ascii(',"unit":'),
  ts: ascii(',"ts":'),
  rxWindow: ascii(',"rxWindow":'),
  readingEnd: 0x7d, // }
  messageEnd: 0x7d,
};

const COMMA = ascii(",");
const POSITIONAL: WireLayout = {
  payload: ascii(',"'),
  utf8: ascii(',"utf8",['),
  base64: ascii(',"base64",['),
  seq: ascii("["),
  sensorId: COMMA,
  metric: COMMA,
  value: COMMA,
  unit: COMMA,
  ts: COMMA,
  rxWindow: COMMA,
  readingEnd: 0x5d, // ]
  messageEnd: 0x5d,
};

export function wireLayout(format: WireFormat): WireLayout {
  return format === 2 ? POSITIONAL : NAMED;
}

/** A message's head (shared's `wireHead`, as bytes), its receive time and the payload's opening at `at`. */
export function writeHead(buf: Buffer, at: number, w: WireLayout, head: Uint8Array, receivedAt: number): number {
  buf.set(head, at);
  return put(buf, writeNumber(buf, at + head.byteLength, receivedAt), w.payload);
}

/** At most the bytes `writeTail` writes for these readings (an escape takes six bytes per UTF-16 unit). */
export function tailBound(readings: readonly WireReadingInput[]): number {
  let bytes = 40;
  for (const r of readings) bytes += 160 + 6 * (r.sensorId.length + r.metric.length + (r.unit?.length ?? 0));
  return bytes;
}

/**
 * What follows the payload in a wire message (its encoding and readings), as bytes at `at`,
 * with a zero byte where each reading's seq goes (PendingMessages.rows writes it); each of those
 * offsets is put in `gaps` from `gapAt` on. Returns the offset after the tail.
 */
export function writeTail(
  buf: Buffer,
  at: number,
  w: WireLayout,
  text: boolean,
  readings: readonly WireReadingInput[],
  gaps: Int32Array,
  gapAt: number,
): number {
  at = put(buf, at, text ? w.utf8 : w.base64);
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i]!;
    if (i > 0) buf[at++] = 0x2c; // ,
    at = put(buf, at, w.seq);
    gaps[gapAt + i] = at;
    buf[at++] = 0;
    at = writeJsonString(buf, put(buf, at, w.sensorId), r.sensorId);
    at = writeJsonString(buf, put(buf, at, w.metric), r.metric);
    at = writeNumber(buf, put(buf, at, w.value), r.value);
    at = put(buf, at, w.unit);
    at = r.unit == null ? put(buf, at, NULL) : writeJsonString(buf, at, r.unit);
    at = writeNumber(buf, put(buf, at, w.ts), r.ts);
    if (r.rxWindow !== undefined) at = writeNumber(buf, put(buf, at, w.rxWindow), r.rxWindow);
    buf[at++] = w.readingEnd;
  }
  buf[at++] = 0x5d; // ]
  buf[at++] = w.messageEnd;
  return at;
}

/** `src` (valid UTF-8) as the inside of a JSON string, as JSON.stringify escapes it, at `at`. */
export function escapeJson(src: Buffer, dst: Buffer, at: number): number {
  for (let k = 0; k < src.length; k++) {
    const b = src[k]!;
    if (b >= 0x20 && b !== 0x22 && b !== 0x5c) dst[at++] = b;
    else at = escapeByte(dst, at, b);
  }
  return at;
}

function put(buf: Buffer, at: number, bytes: Uint8Array): number {
  for (let k = 0; k < bytes.length; k++) buf[at++] = bytes[k]!;
  return at;
}

/** JSON.stringify(s) at `at`: printable ASCII byte by byte, anything else the general way. */
function writeJsonString(buf: Buffer, at: number, s: string): number {
  const start = at;
  buf[at++] = 0x22; // "
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return start + buf.write(JSON.stringify(s), start, "utf8");
    buf[at++] = c;
  }
  buf[at++] = 0x22;
  return at;
}

/**
 * A finite number as JSON.stringify writes it (its String form; -0 is "0" in both). Whole
 * numbers digit by digit: V8 keeps the strings of recent conversions in a cache, so each one
 * outlived the young generation's next collection.
 */
function writeNumber(buf: Buffer, at: number, v: number): number {
  if (Number.isSafeInteger(v) && v >= 0) return writeDecimal(buf, at, v);
  const s = String(v);
  for (let k = 0; k < s.length; k++) buf[at++] = s.charCodeAt(k);
  return at;
}

function escapeByte(dst: Buffer, at: number, b: number): number {
  dst[at++] = 0x5c; // \
  const short = SHORT_ESCAPES[b];
  if (short !== undefined) dst[at++] = short;
  else {
    // \u00XX, lower-case hex like JSON.stringify.
    dst[at++] = 0x75;
    dst[at++] = 0x30;
    dst[at++] = 0x30;
    dst[at++] = HEX[b >> 4]!;
    dst[at++] = HEX[b & 15]!;
  }
  return at;
}

const HEX = ascii("0123456789abcdef");
const SHORT_ESCAPES: Readonly<Record<number, number>> = {
  0x08: 0x62, // b
  0x09: 0x74, // t
  0x0a: 0x6e, // n
  0x0c: 0x66, // f
  0x0d: 0x72, // r
  0x22: 0x22, // "
  0x5c: 0x5c, // \
};

export function digits(v: number): number {
  let d = 1;
  while (v >= 10) {
    v = Math.floor(v / 10);
    d++;
  }
  return d;
}

/** `v` (a safe integer, 0 or more) in decimal at `at`; returns the offset after it. */
export function writeDecimal(out: Buffer, at: number, v: number): number {
  const end = at + digits(v);
  for (let p = end - 1; p >= at; p--) {
    out[p] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
  return end;
}
