import { errorMessage, UplinkError, type Counter, type Logger, type UplinkErrorKind } from "@datalab/shared";
import type { Outbox } from "../outbox/store";
import type { Uplink } from "../uplink/types";
import { Batcher, type BatchOptions, type OutgoingBatch } from "./batcher";
import { Pacer, RateWindow } from "./pacing";

export interface ForwardOptions extends BatchOptions {
  /** Cap on readings sent per second (0: none), for a thin uplink. */
  maxReadingsPerSec: number;
  /** Cap on bytes sent per second (0: none). */
  maxBytesPerSec: number;
}

/** The counters the forwarder keeps (the gateway's metrics have them). */
export interface ForwardMetrics {
  forwardedReadings: Counter;
  forwardedBatches: Counter;
  uplinkErrors: Counter<"kind">;
  duplicateBatches: Counter<"kind">;
}

/** What the forwarder is doing: status as data, for /status, /healthz and the CLI. */
export type ForwardingState =
  | "idle" // nothing waits
  | "sending" // live readings go out as they come
  | "draining" // a backlog drains beside live readings
  | "waiting_for_uplink" // readings wait in the outbox until the uplink is back
  | "stopped";

/**
 * The forwarder: takes batches from the batcher, publishes them, and removes their rows
 * only after the PubAck. One batch is in flight at a time, and it is recorded in the outbox
 * before it is published: a batch that failed, or was interrupted by a crash, is sent again
 * with the same rows and the same `Nats-Msg-Id`, so JetStream drops it as a duplicate if
 * the first attempt did land.
 */
export class Forwarder {
  private running = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private pending: OutgoingBatch | undefined;
  /** The batch last handed to the uplink (or restored as in flight): a duplicate ack for it is a resend. */
  private published: OutgoingBatch | undefined;
  private abandoned = false;
  private readonly rate = new RateWindow(10_000);
  private readonly batcher: Batcher;
  private readonly pacer: Pacer;
  lastError: string | undefined;

  constructor(
    private readonly outbox: Outbox,
    private readonly uplink: Uplink,
    private readonly subject: string,
    gatewayId: string,
    opts: ForwardOptions,
    private readonly metrics: ForwardMetrics,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.pacer = new Pacer(opts.maxReadingsPerSec, opts.maxBytesPerSec, now);
    // Under a cap, batches shrink to about one second's worth: a thin link then carries a
    // steady trickle instead of a large batch that holds it for a long time.
    const batch: BatchOptions = {
      maxReadings:
        opts.maxReadingsPerSec > 0 ? Math.max(1, Math.min(opts.maxReadings, opts.maxReadingsPerSec)) : opts.maxReadings,
      maxBytes: opts.maxBytesPerSec > 0 ? Math.max(1_024, Math.min(opts.maxBytes, opts.maxBytesPerSec)) : opts.maxBytes,
      maxAgeMs: opts.maxAgeMs,
    };
    this.batcher = new Batcher(outbox, gatewayId, batch, logger, now);
  }

  start(): void {
    if (this.running) return;
    this.pending = this.batcher.restore();
    this.published = this.pending;
    this.running = true;
    this.loop = this.run();
  }

  /** New rows were committed. */
  notify(): void {
    this.wake?.();
  }

  /** Readings per second acknowledged over the last seconds. */
  forwardRate(): number {
    return this.rate.perSecond(this.now());
  }

  state(): ForwardingState {
    if (!this.running && this.loop) return "stopped";
    if (this.outbox.stats().messages === 0) return "idle";
    if (this.uplink.status().state !== "connected") return "waiting_for_uplink";
    return this.batcher.draining ? "draining" : "sending";
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  /**
   * Shutdown's last drain: send everything, young batches included, until the outbox is
   * empty or `deadline` passes. A publish still running at the deadline is abandoned; its
   * batch stays recorded as in flight and goes again, under the same id, at the next start.
   */
  async drain(deadline: number): Promise<boolean> {
    while (this.outbox.stats().messages > 0 || this.pending) {
      const left = deadline - this.now();
      if (left <= 0 || this.uplink.status().state !== "connected") return false;
      let timer: NodeJS.Timeout | undefined;
      const attempt = this.sendOne(true);
      attempt.catch(() => undefined);
      const ok = await Promise.race([
        attempt,
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), left))),
      ]).catch((err: unknown) => {
        this.lastError = errorMessage(err);
        return false;
      });
      clearTimeout(timer);
      if (!ok) {
        this.abandoned = true;
        return false;
      }
    }
    return true;
  }

  /** Sleep until `ms` pass or `notify`/`stop` wakes it. Only the latest sleep can be woken. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        // An older sleep that ends late must not unhook the current one.
        if (this.wake === wake) this.wake = undefined;
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.wake = wake;
    });
  }

  private async run(): Promise<void> {
    let backoff = 200;
    while (this.running) {
      if (this.uplink.status().state !== "connected") {
        const nap = this.sleep(5_000);
        await Promise.race([this.uplink.changed(5_000), nap]);
        this.wake?.();
        continue;
      }
      try {
        const sent = await this.sendOne(false);
        backoff = 200;
        if (!sent && this.running) await this.sleep(this.batcher.waitMs());
      } catch (err) {
        this.lastError = errorMessage(err);
        this.metrics.uplinkErrors.inc({ kind: uplinkErrorKind(err) });
        this.logger.warn({ err: this.lastError, retryInMs: backoff }, "batch not acknowledged; it stays in the outbox");
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  /** Build (or reuse) and publish one batch. Returns false when nothing was ready to send. */
  private async sendOne(force: boolean): Promise<boolean> {
    let b = this.pending;
    if (!b) {
      b = this.batcher.next(undefined, force);
      if (!b) return false;
      this.outbox.settle(undefined, b.range);
      this.pending = b;
    }
    for (let wait = this.pacer.delayMs(); wait > 0; wait = this.pacer.delayMs()) {
      await this.sleep(wait);
      if (!this.running && !force) return false;
    }
    this.pacer.take(b.readings, b.data.byteLength);
    const resend = this.published === b;
    this.published = b;
    const ack = await this.uplink.publish(this.subject, b.data, b.msgId);
    if (this.abandoned) return false;
    // The next batch is built before the rows of this one are removed, so that one
    // transaction removes these rows and records the next batch as in flight.
    const next = this.batcher.next(b.range, force);
    this.outbox.settle(b.range, next?.range, b.totals);
    this.pending = next;
    this.lastError = undefined;
    this.metrics.forwardedReadings.inc(b.readings);
    this.metrics.forwardedBatches.inc();
    this.rate.add(this.now(), b.readings);
    if (ack.duplicate) this.duplicate(b, ack.seq, resend);
    return true;
  }

  /**
   * A "duplicate" PubAck is not taken on trust. Another gateway cannot have stored this id:
   * its digest is keyed by a secret of this outbox. So a duplicate means this outbox's own
   * copy is in the stream; expected for a resend, worth a warning on a first send (an outbox
   * restored from a copy, or an in-flight record that was lost).
   */
  private duplicate(b: OutgoingBatch, streamSeq: number, resend: boolean): void {
    this.metrics.duplicateBatches.inc({ kind: resend ? "resend" : "first_send" });
    if (resend) {
      this.logger.info(
        { msgId: b.msgId, streamSeq },
        "batch was already in the stream (resent after a lost ack or a restart); JetStream dropped the copy",
      );
      return;
    }
    this.logger.warn(
      { msgId: b.msgId, streamSeq, readings: b.readings },
      "JetStream answered 'duplicate' to a batch this gateway had not sent since it started; its id can only " +
        "come from this outbox (an outbox restored from a copy, or a lost in-flight record), " +
        "so its readings count as delivered",
    );
  }
}

/**
 * The metric's label: the kind the uplink gave its error where the error entered it. Uplinks
 * fail with an UplinkError; anything else counts as "other".
 */
function uplinkErrorKind(err: unknown): UplinkErrorKind {
  return err instanceof UplinkError ? err.kind : "other";
}
