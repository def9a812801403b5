import { deflateRawSync } from "node:zlib";
import { isUtf8 } from "node:buffer";
import { wireHead, type WireFormat } from "@datalab/shared";
import type { Delivery } from "./deliveries";
import { digits, escapeJson, tailBound, wireLayout, writeDecimal, writeHead, writeTail } from "./wire-bytes";
import { PACKED_TEXT_FACTOR, ROW_MAX_BYTES, ROW_MAX_MESSAGES, type AcceptedMessage, type EncodedRow } from "./types";

const INITIAL_BYTES = 64 * 1024;
const INITIAL_MESSAGES = 1_024;
/** Sources whose wire head is kept (bounded: a source is a topic). */
const HEADS_KEPT = 1_024;
/** Past this, a cleared group gives its buffer back (a long outage grows it up to ten groups). */
const KEEP_BYTES = 1024 * 1024;

/** What a message taken off a group's ends still needs: its readings, its weight, its delivery. */
export interface TakenMessage {
  readings: number;
  weight: number;
  delivery: Delivery | undefined;
}

/**
 * The messages of a group waiting for their commit, each encoded as its wire message when it
 * arrives, into one buffer outside the JavaScript heap, with a gap where each reading's seq
 * goes (seqs are handed out by the commit). Under a flood a group holds up to a thousand
 * messages for tens of milliseconds: kept as objects (payload, readings, strings), each of them
 * outlived the young generation's collections and was copied twice and promoted, which made
 * those collections the largest single cost of the gateway.
 */
export class PendingMessages {
  private buf = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  private used = 0;
  /** Per message, from `head` to `count`: where its bytes start and end, its first gap, its counts. */
  private start = new Int32Array(INITIAL_MESSAGES);
  private end = new Int32Array(INITIAL_MESSAGES);
  private firstGap = new Int32Array(INITIAL_MESSAGES);
  private readings = new Int32Array(INITIAL_MESSAGES);
  private weights = new Int32Array(INITIAL_MESSAGES);
  private receivedAt = new Float64Array(INITIAL_MESSAGES);
  private deliveries: (Delivery | undefined)[] = [];
  /** Byte offsets of the seq gaps, in message order. */
  private gaps = new Int32Array(INITIAL_MESSAGES);
  private gapCount = 0;
  private head = 0;
  private count = 0;
  private readonly heads = new Map<string, Buffer>();

  private readonly layout;

  /** A group whose messages are written in wire format `format` (shared/src/batch.ts). */
  constructor(private readonly format: WireFormat = 2) {
    this.layout = wireLayout(format);
  }

  /** The messages of `accepted` as a group (for callers that hold them as objects). */
  static of(accepted: readonly AcceptedMessage[], format: WireFormat = 2): PendingMessages {
    const p = new PendingMessages(format);
    for (const m of accepted) p.push(m, 0);
    return p;
  }

  get length(): number {
    return this.count - this.head;
  }

  /** Encode `m` onto the end of the group; nothing of `m` itself is kept but its delivery. */
  push(m: AcceptedMessage, weight: number): void {
    const raw = m.payload;
    // Text stays readable on the wire, anything else goes as base64 (shared encodePayload).
    const text = isUtf8(raw);
    const base64 = text ? "" : raw.toString("base64");
    const head = this.headOf(m.source);
    const n = m.readings.length;
    // An escaped byte takes at most six.
    this.reserve(head.byteLength + 32 + (text ? 6 * raw.byteLength : base64.length) + tailBound(m.readings), n);
    const i = this.count++;
    const buf = this.buf;
    let at = this.used;
    this.start[i] = at;
    this.firstGap[i] = this.gapCount;
    this.readings[i] = n;
    this.weights[i] = weight;
    this.receivedAt[i] = m.receivedAt;
    this.deliveries[i] = m.delivery;
    at = writeHead(buf, at, this.layout, head, m.receivedAt);
    at = text ? escapeJson(raw, buf, at) : at + buf.write(base64, at, "latin1");
    buf[at++] = 0x22; // "
    at = writeTail(buf, at, this.layout, text, m.readings, this.gaps, this.gapCount);
    this.gapCount += n;
    this.used = at;
    this.end[i] = at;
  }

  /** `wireHead` of a source, as bytes: a topic's messages share it. */
  private headOf(source: string): Buffer {
    let h = this.heads.get(source);
    if (h === undefined) {
      if (this.heads.size >= HEADS_KEPT) this.heads.clear();
      h = Buffer.from(wireHead(source, this.format), "utf8");
      this.heads.set(source, h);
    }
    return h;
  }

  /** The oldest message, taken off the group. */
  shift(): TakenMessage {
    const t = this.taken(this.head);
    // Not kept alive by the group any more: the delivery is the caller's now.
    this.deliveries[this.head++] = undefined;
    if (this.length === 0) this.clear();
    return t;
  }

  /** The newest message, taken off the group. */
  pop(): TakenMessage {
    const i = --this.count;
    this.used = this.start[i]!;
    this.gapCount = this.firstGap[i]!;
    const t = this.taken(i);
    this.deliveries.length = i;
    if (this.length === 0) this.clear();
    return t;
  }

  private taken(i: number): TakenMessage {
    return { readings: this.readings[i]!, weight: this.weights[i]!, delivery: this.deliveries[i] };
  }

  /** The deliveries of the messages waiting, oldest first. */
  pendingDeliveries(): Delivery[] {
    const out: Delivery[] = [];
    for (let i = this.head; i < this.count; i++) {
      const d = this.deliveries[i];
      if (d) out.push(d);
    }
    return out;
  }

  clear(): void {
    this.used = 0;
    this.gapCount = 0;
    this.head = 0;
    this.count = 0;
    this.deliveries = [];
    if (this.buf.byteLength > KEEP_BYTES) this.buf = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  }

  /**
   * The group as outbox rows, with seqs from `firstSeq` on: runs of consecutive messages,
   * each run at most ROW_MAX_MESSAGES messages, `rowMaxReadings` readings and about
   * ROW_MAX_BYTES (a message larger than that is a row alone). A few rows per group instead of
   * one per message: an insert per message cost a large share of the gateway's CPU under a flood.
   */
  rows(firstSeq: number, rowMaxReadings: number, deflate = false): EncodedRow[] {
    const rows: EncodedRow[] = [];
    // Deflated rows may hold more text: what must fit a page is what is stored.
    const maxBytes = deflate ? ROW_MAX_BYTES * PACKED_TEXT_FACTOR : ROW_MAX_BYTES;
    let seq = firstSeq;
    let from = this.head;
    let rowBytes = -1;
    let rowReadings = 0;
    for (let i = this.head; i < this.count; i++) {
      const n = this.readings[i]!;
      const bytes = this.wireBytes(i, seq);
      const m = i - from;
      if (m > 0 && (m >= ROW_MAX_MESSAGES || rowReadings + n > rowMaxReadings || rowBytes + 1 + bytes > maxBytes)) {
        rows.push(this.row(from, i, seq - rowReadings, rowBytes, deflate));
        from = i;
        rowBytes = -1;
        rowReadings = 0;
      }
      // Each message adds its bytes and one comma, and the first has none.
      rowBytes += bytes + 1;
      rowReadings += n;
      seq += n;
    }
    if (this.count > from) rows.push(this.row(from, this.count, seq - rowReadings, rowBytes, deflate));
    return rows;
  }

  /** Bytes of message `i` on the wire with its seqs from `seq` on. */
  private wireBytes(i: number, seq: number): number {
    // Each seq takes its mark's byte.
    let bytes = this.end[i]! - this.start[i]! - this.readings[i]!;
    for (let k = 0; k < this.readings[i]!; k++) bytes += digits(seq + k);
    return bytes;
  }

  /** Messages `from` to `to` (excluded) as one row, its readings' seqs from `firstSeq` on. */
  private row(from: number, to: number, firstSeq: number, wireBytes: number, deflate: boolean): EncodedRow {
    const out = Buffer.allocUnsafe(wireBytes);
    let at = 0;
    let seq = firstSeq;
    let n = 0;
    for (let i = from; i < to; i++) {
      if (i > from) out[at++] = 0x2c; // ,
      let pos = this.start[i]!;
      const gaps = this.firstGap[i]!;
      for (let k = 0; k < this.readings[i]!; k++) {
        const gap = this.gaps[gaps + k]!;
        at += this.buf.copy(out, at, pos, gap);
        at = writeDecimal(out, at, seq++);
        pos = gap + 1;
      }
      at += this.buf.copy(out, at, pos, this.end[i]!);
      n += this.readings[i]!;
    }
    const wire = out.toString("utf8", 0, at);
    const row: EncodedRow = {
      firstSeq,
      lastSeq: firstSeq + n - 1,
      n,
      m: to - from,
      receivedAt: this.receivedAt[from]!,
      wire,
      bytes: at,
      wireBytes: at,
    };
    if (deflate) {
      const packed = deflateRawSync(out.subarray(0, at), { level: 1 });
      // Text that does not shrink below a page (rare) is stored as it is, on overflow pages.
      if (packed.byteLength <= ROW_MAX_BYTES) {
        row.packed = packed;
        row.bytes = packed.byteLength;
      }
    }
    return row;
  }

  /** Room for `bytes` more bytes and one more message with `gaps` gaps. */
  private reserve(bytes: number, gaps: number): void {
    if (this.count === this.start.length || this.used + bytes > this.buf.byteLength) this.compact();
    if (this.used + bytes > this.buf.byteLength) {
      const next = Buffer.allocUnsafeSlow(Math.max(2 * this.buf.byteLength, this.used + bytes));
      this.buf.copy(next, 0, 0, this.used);
      this.buf = next;
    }
    if (this.count === this.start.length) {
      const size = 2 * this.start.length;
      this.start = grow(this.start, size);
      this.end = grow(this.end, size);
      this.firstGap = grow(this.firstGap, size);
      this.readings = grow(this.readings, size);
      this.weights = grow(this.weights, size);
      const at = new Float64Array(size);
      at.set(this.receivedAt);
      this.receivedAt = at;
    }
    if (this.gapCount + gaps > this.gaps.length) this.gaps = grow(this.gaps, 2 * (this.gapCount + gaps));
  }

  /** Drop the room of messages taken off the front (while commits fail, the oldest may go). */
  private compact(): void {
    const h = this.head;
    if (h === 0) return;
    const by = this.start[h]!;
    const gapsBy = this.firstGap[h]!;
    this.buf.copy(this.buf, 0, by, this.used);
    this.used -= by;
    for (let i = h; i < this.count; i++) {
      this.start[i - h] = this.start[i]! - by;
      this.end[i - h] = this.end[i]! - by;
      this.firstGap[i - h] = this.firstGap[i]! - gapsBy;
      this.readings[i - h] = this.readings[i]!;
      this.weights[i - h] = this.weights[i]!;
      this.receivedAt[i - h] = this.receivedAt[i]!;
    }
    for (let g = gapsBy; g < this.gapCount; g++) this.gaps[g - gapsBy] = this.gaps[g]! - by;
    this.gapCount -= gapsBy;
    this.deliveries = this.deliveries.slice(h, this.count);
    this.count -= h;
    this.head = 0;
  }
}

function grow(a: Int32Array, size: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(size);
  b.set(a);
  return b;
}
