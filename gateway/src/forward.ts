import { batchMsgId, BATCH_FORMAT_VERSION, errorMessage, type Logger } from "@datalab/shared";
import type { Outbox, OutboxRow } from "./outbox/store";
import type { Uplink } from "./uplink/types";
import type { GatewayMetrics } from "./metrics";

export interface BatchOptions {
  /** A batch closes at this many readings... */
  maxReadings: number;
  /** ...or this many bytes of encoded messages (keep well under NATS' max_payload, 1 MiB)... */
  maxBytes: number;
  /** ...or when its oldest reading has waited this long (ms). */
  maxAgeMs: number;
}

interface PendingBatch {
  firstId: number;
  lastId: number;
  readings: number;
  msgId: string;
  data: Buffer;
}

/**
 * The batcher and forwarder: reads the outbox in order, builds a batch, publishes it, and
 * deletes its rows only after the PubAck. A batch that failed is retried byte for byte with
 * the same `Nats-Msg-Id`, so JetStream drops it as a duplicate if the first try did land.
 */
export class Forwarder {
  private running = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private pending: PendingBatch | undefined;
  private readonly rate = new RateWindow(30_000);
  lastError: string | undefined;

  constructor(
    private readonly outbox: Outbox,
    private readonly uplink: Uplink,
    private readonly subject: string,
    private readonly gatewayId: string,
    private readonly opts: BatchOptions,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** New rows were committed. */
  notify(): void {
    this.wake?.();
  }

  /** Readings per second acknowledged over the last 30 s. */
  forwardRate(): number {
    return this.rate.perSecond(this.now());
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /** Try to send everything in the outbox before `deadline` (shutdown's last drain). */
  async drain(deadline: number): Promise<boolean> {
    while (this.now() < deadline) {
      if (this.outbox.stats().messages === 0 && !this.pending) return true;
      if (this.uplink.status().state !== "connected") return false;
      const ok = await this.sendOne(true);
      if (!ok) return false;
    }
    return this.outbox.stats().messages === 0;
  }

  private sleep(ms: number): Promise<void> {
    // Never start a sleep once stopping: stop() may have called wake() before it was set.
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    let backoff = 200;
    while (this.running) {
      if (this.uplink.status().state !== "connected") {
        await Promise.race([this.uplink.changed(5_000), this.sleep(5_000)]);
        continue;
      }
      try {
        const sent = await this.sendOne(false);
        backoff = 200;
        if (!sent) await this.sleep(this.waitMs());
      } catch (err) {
        this.lastError = errorMessage(err);
        this.metrics.uplinkErrors.inc({ kind: kindOf(err) });
        this.logger.warn({ err: this.lastError, retryInMs: backoff }, "batch not acknowledged; it stays in the outbox");
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  /** How long until the oldest waiting row is old enough to close a batch. */
  private waitMs(): number {
    const oldest = this.outbox.stats().oldestReceivedAt;
    if (oldest === null) return 60_000;
    return Math.max(5, oldest + this.opts.maxAgeMs - this.now());
  }

  /** Build (or reuse) and publish one batch. Returns false when nothing was ready to send. */
  private async sendOne(force: boolean): Promise<boolean> {
    if (!this.pending) {
      const b = this.build(force);
      if (!b) return false;
      this.pending = b;
    }
    const b = this.pending;
    const ack = await this.uplink.publish(this.subject, b.data, b.msgId);
    this.outbox.remove(b.firstId, b.lastId);
    this.pending = undefined;
    this.lastError = undefined;
    this.metrics.forwardedReadings.inc(b.readings);
    this.metrics.forwardedBatches.inc();
    this.rate.add(this.now(), b.readings);
    if (ack.duplicate) this.logger.debug({ msgId: b.msgId }, "batch was already in the stream (retry after a lost ack)");
    return true;
  }

  private build(force: boolean): PendingBatch | undefined {
    const rows: OutboxRow[] = this.outbox.peek(0, Math.max(1, Math.min(this.opts.maxReadings, 5_000)));
    if (rows.length === 0) return undefined;
    const picked: OutboxRow[] = [];
    let readings = 0;
    let bytes = 200;
    for (const r of rows) {
      if (picked.length > 0 && (readings + r.n > this.opts.maxReadings || bytes + r.wire.length + 1 > this.opts.maxBytes)) break;
      picked.push(r);
      readings += r.n;
      bytes += r.wire.length + 1;
    }
    const full = picked.length < rows.length || readings >= this.opts.maxReadings;
    const first = picked[0]!;
    const last = picked[picked.length - 1]!;
    if (!force && !full && this.now() - first.receivedAt < this.opts.maxAgeMs) return undefined;
    const instance = this.outbox.instance;
    const head = { v: BATCH_FORMAT_VERSION, gatewayId: this.gatewayId, instance, firstSeq: first.firstSeq, lastSeq: last.lastSeq, sentAt: this.now() };
    // The rows hold finished wire messages: join them, never parse them again.
    const json = `${JSON.stringify(head).slice(0, -1)},"messages":[${picked.map((r) => r.wire).join(",")}]}`;
    return {
      firstId: first.id,
      lastId: last.id,
      readings,
      msgId: batchMsgId({ gatewayId: this.gatewayId, instance, firstSeq: first.firstSeq, lastSeq: last.lastSeq }),
      data: Buffer.from(json, "utf8"),
    };
  }
}

function kindOf(err: unknown): string {
  const m = errorMessage(err).toLowerCase();
  if (m.includes("authoriz") || m.includes("permission")) return "authorization";
  if (m.includes("timeout")) return "timeout";
  if (m.includes("no responders") || m.includes("503")) return "no_stream";
  if (m.includes("uplink is")) return "disconnected";
  return "other";
}

/** Counts in one-second buckets over a sliding window: bounded memory, no per-event array. */
class RateWindow {
  private readonly buckets: number[];
  private readonly stamps: number[];
  constructor(private readonly windowMs: number) {
    const n = Math.ceil(windowMs / 1000);
    this.buckets = new Array<number>(n).fill(0);
    this.stamps = new Array<number>(n).fill(-1);
  }
  add(now: number, n: number): void {
    const sec = Math.floor(now / 1000);
    const i = sec % this.buckets.length;
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec;
      this.buckets[i] = 0;
    }
    this.buckets[i]! += n;
  }
  perSecond(now: number): number {
    const sec = Math.floor(now / 1000);
    let sum = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      if (this.stamps[i]! > sec - this.buckets.length) sum += this.buckets[i]!;
    }
    return sum / (this.windowMs / 1000);
  }
}
