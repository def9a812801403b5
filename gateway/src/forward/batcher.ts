import { createHmac } from "node:crypto";
import { batchMsgId, type Logger, type WireFormat } from "@datalab/shared";
import type { BatchRange, Outbox, OutboxRow, Totals } from "../outbox/store";

export interface BatchOptions {
  /** A batch closes at this many readings... */
  maxReadings: number;
  /** ...or this many bytes of encoded messages (keep well under NATS' max_payload, 1 MiB)... */
  maxBytes: number;
  /** ...or when its oldest reading has waited this long (ms). */
  maxAgeMs: number;
}

export type Lane = "live" | "backlog";

export interface OutgoingBatch {
  range: BatchRange;
  lane: Lane;
  readings: number;
  /** Messages, readings and wire bytes of its rows, for the outbox's books. */
  totals: Totals;
  msgId: string;
  data: Buffer;
}

/** Wire overhead of a batch around its messages (the head object), over-estimated. */
const HEAD_BYTES = 256;

/**
 * Builds batches from the outbox, oldest rows first, and never more than one batch of rows
 * at a time (the outbox is read with a cursor that stops as soon as the batch is full: a
 * peek never holds the event loop for long, whatever the backlog).
 *
 * After an outage there are two lanes. Rows committed before the backlog was noticed are the
 * backlog; rows committed since are live. Batches alternate between the lanes, so the
 * backlog drains in order at full speed while live readings still leave within about
 * `maxAgeMs` plus one batch, instead of waiting behind hours of backlog.
 */
export class Batcher {
  /** While a backlog drains: rows with `id >= liveFrom` are live. */
  private liveFrom: number | undefined;
  private preferLive = true;

  constructor(
    private readonly outbox: Outbox,
    private readonly gatewayId: string,
    private readonly opts: BatchOptions,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** True while a backlog drains beside live readings. */
  get draining(): boolean {
    return this.liveFrom !== undefined;
  }

  /**
   * The batch that was recorded as in flight when the gateway stopped (crash or not),
   * rebuilt from exactly its rows, so it goes out again under the same `Nats-Msg-Id` and
   * JetStream recognises it if the first attempt had landed.
   */
  restore(): OutgoingBatch | undefined {
    const r = this.outbox.inflight();
    if (!r) return undefined;
    const rows = this.outbox.rowsOf(r);
    if (!rows) {
      // Cannot happen through this code (the full-outbox policy spares the batch in flight);
      // a file edited by hand could do it. Sending other boundaries under a new id is the
      // only way on; the hub's idempotent writes absorb a resend.
      this.logger.warn(
        { inflight: r },
        "the batch in flight at the last stop is no longer complete in the outbox; " +
          "forwarding continues with new batches",
      );
      this.outbox.settle(undefined, undefined);
      return undefined;
    }
    this.logger.info(
      { firstSeq: r.firstSeq, lastSeq: r.lastSeq, rows: rows.length },
      "resending the batch that was in flight at the last stop",
    );
    return this.assemble(rows, "backlog");
  }

  /**
   * The next batch to send, its rows not overlapping `exclude` (the batch just acknowledged,
   * whose rows are removed in the same transaction that records this one). Without `force`,
   * a live batch is only returned when full or old enough.
   */
  next(exclude: BatchRange | undefined, force: boolean): OutgoingBatch | undefined {
    this.updateLanes(exclude);
    const liveFrom = this.liveFrom;
    if (liveFrom === undefined) return this.build("live", 0, Number.MAX_SAFE_INTEGER, exclude, force);
    const live = () => this.build("live", liveFrom - 1, Number.MAX_SAFE_INTEGER, exclude, force);
    // Backlog rows are old by definition: always ready.
    const backlog = () => this.build("backlog", 0, liveFrom, exclude, true);
    const b = this.preferLive ? (live() ?? backlog()) : (backlog() ?? live());
    if (b) this.preferLive = b.lane === "backlog";
    return b;
  }

  /**
   * Open the lanes when more than a couple of batches wait; close them when the backlog
   * lane is empty.
   */
  private updateLanes(exclude: BatchRange | undefined): void {
    if (this.liveFrom !== undefined) {
      if (this.firstRow(0, this.liveFrom, exclude) === undefined) {
        this.logger.info("backlog drained");
        this.liveFrom = undefined;
      }
      return;
    }
    if (this.outbox.stats().readings > 2 * this.opts.maxReadings) {
      this.liveFrom = this.outbox.maxId() + 1;
      this.logger.info({ readings: this.outbox.stats().readings }, "draining a backlog beside live readings");
    }
  }

  /** Where a lane's first row outside `exclude` is: rows are scanned from just before it. */
  private firstRow(afterId: number, beforeId: number, exclude: BatchRange | undefined): number | undefined {
    const h = this.outbox.head(afterId, beforeId);
    if (!h) return undefined;
    if (!exclude || h.id < exclude.firstId || h.id > exclude.lastId) return h.id;
    return this.outbox.head(exclude.lastId, beforeId)?.id;
  }

  /**
   * One batch from the rows `afterId < id < beforeId`, oldest first, leaving out `exclude`.
   * A batch is always a run of consecutive rows: it stops where `exclude` starts.
   */
  private build(
    lane: Lane,
    afterId: number,
    beforeId: number,
    exclude: BatchRange | undefined,
    force: boolean,
  ): OutgoingBatch | undefined {
    const start = this.firstRow(afterId, beforeId, exclude);
    if (start === undefined) return undefined;
    const picked: OutboxRow[] = [];
    let readings = 0;
    let bytes = HEAD_BYTES;
    let more = false;
    let format: WireFormat | undefined;
    for (const r of this.outbox.scan(start - 1, beforeId)) {
      const size = r.wireBytes + 1;
      const excluded = exclude !== undefined && r.id >= exclude.firstId && r.id <= exclude.lastId;
      // One format per batch: rows written before a change of DATALAB_WIRE_FORMAT go on their own.
      format ??= rowFormat(r);
      if (
        excluded ||
        (picked.length > 0 &&
          (readings + r.n > this.opts.maxReadings || bytes + size > this.opts.maxBytes || rowFormat(r) !== format))
      ) {
        more = true;
        break;
      }
      picked.push(r);
      readings += r.n;
      bytes += size;
    }
    const first = picked[0];
    if (!first) return undefined;
    const full = more || readings >= this.opts.maxReadings;
    if (!force && !full && this.now() - first.receivedAt < this.opts.maxAgeMs) return undefined;
    return this.assemble(picked, lane);
  }

  private assemble(rows: readonly OutboxRow[], lane: Lane): OutgoingBatch {
    const first = rows[0]!;
    const last = rows[rows.length - 1]!;
    const instance = this.outbox.instance;
    const head = {
      v: rowFormat(first),
      gatewayId: this.gatewayId,
      instance,
      firstSeq: first.firstSeq,
      lastSeq: last.lastSeq,
      sentAt: this.now(),
    };
    const ids = { gatewayId: this.gatewayId, instance, firstSeq: first.firstSeq, lastSeq: last.lastSeq };
    const { data, messages } = encodeBatch(`${JSON.stringify(head).slice(0, -1)},"messages":[`, rows);
    let readings = 0;
    let bytes = 0;
    let count = 0;
    for (const r of rows) {
      readings += r.n;
      bytes += r.bytes;
      count += r.m;
    }
    return {
      range: { firstId: first.id, lastId: last.id, firstSeq: first.firstSeq, lastSeq: last.lastSeq },
      lane,
      readings,
      totals: { messages: count, readings, bytes },
      msgId: batchMsgId(ids, batchDigest(this.outbox.msgIdKey, batchMsgId(ids), messages)),
      data,
    };
  }

  /** When the oldest row that is not yet ready will be (ms from now). */
  waitMs(): number {
    const oldest = this.outbox.head(this.liveFrom !== undefined ? this.liveFrom - 1 : 0);
    if (!oldest) return 60_000;
    return Math.max(5, oldest.receivedAt + this.opts.maxAgeMs - this.now());
  }
}

/** The wire format of a row's messages: format 2 writes each as an array, format 1 as an object. */
export function rowFormat(r: Pick<OutboxRow, "wire">): WireFormat {
  return r.wire.charCodeAt(0) === 0x5b ? 2 : 1; // [
}

/**
 * The batch's bytes: the head, then the rows' finished wire messages, never parsed again and
 * encoded once, straight into one buffer (a joined string would be copied and then encoded
 * twice, for the digest and for the wire: 5 % of the gateway's CPU under a flood).
 * `messages` is the part between the brackets, what the digest covers.
 */
export function encodeBatch(head: string, rows: readonly OutboxRow[]): { data: Buffer; messages: Buffer } {
  let size = Buffer.byteLength(head) + rows.length + 1;
  for (const r of rows) size += r.wireBytes;
  // Slack of one UTF-8 character: a row longer than recorded then writes past its size, and is seen.
  const buf = Buffer.allocUnsafe(size + 4);
  let at = buf.write(head, 0, "utf8");
  const from = at;
  for (let i = 0; i < rows.length; i++) {
    if (i > 0) buf[at++] = 0x2c; // ,
    const r = rows[i]!;
    const n = buf.write(r.wire, at, r.wireBytes + 4, "utf8");
    // A row whose recorded size is wrong (never written so; a hand-edited file) goes the slow way.
    if (n !== r.wireBytes) return encodeBatchText(head, rows);
    at += n;
  }
  const messages = buf.subarray(from, at);
  buf[at++] = 0x5d; // ]
  buf[at++] = 0x7d; // }
  return { data: buf.subarray(0, at), messages };
}

function encodeBatchText(head: string, rows: readonly OutboxRow[]): { data: Buffer; messages: Buffer } {
  const messages = Buffer.from(rows.map((r) => r.wire).join(","), "utf8");
  const data = Buffer.concat([Buffer.from(head, "utf8"), messages, Buffer.from("]}")]);
  return { data, messages: data.subarray(data.byteLength - 2 - messages.byteLength, data.byteLength - 2) };
}

/**
 * The digest in a batch's `Nats-Msg-Id`: an HMAC of its key range and its messages (not of
 * `sentAt`, so a resend of the same rows carries the same id). Keyed with the outbox's own
 * secret, so no other gateway can compute the id of a batch it has not seen, even one
 * whose readings it could guess; 128 bits make a chance collision out of reach.
 */
export function batchDigest(key: Buffer, range: string, messages: string | Uint8Array): string {
  return createHmac("sha256", key)
    .update(range)
    .update("\n")
    .update(messages)
    .digest()
    .subarray(0, 16)
    .toString("base64url");
}
