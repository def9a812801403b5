import { jetstream, type ConsumerMessages, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { errorMessage, messageAsBatch, type BatchLimits, type Logger, type Subjects } from "@datalab/shared";
import { SinkUnavailableError, type Sink, type SinkBatch, type WriteResult } from "../sinks/types";
import { DeadLetterPublisher, type Letter } from "./dead-letters";
import { durableName, ensureDurable, type DurableLimits } from "./durable";
import { FailureCounts, retryDelayMs } from "./failures";
import { countWritten, decodeArrival, timedWrite, type Decoded } from "./intake";
import { isolateRefusals } from "./isolate";
import type { HubMetrics } from "./metrics";

/** The durable's limits (long writes call working() to keep ack_wait from running out), and this process's. */
export interface ConsumerOptions extends DurableLimits {
  /** A batch the sink refused this many times (with the sink healthy) goes to the dead letters. */
  maxDeliver: number;
  /** Batches this process writes at once for this sink. */
  concurrency: number;
  limits: BatchLimits;
}

export type ConsumerState = "starting" | "running" | "waiting_for_sink" | "stopped";

export interface ConsumerStatus {
  sink: string;
  durable: string;
  state: ConsumerState;
  lastWriteAt: number | null;
  lastError: string | undefined;
  /** Readings in batches this process committed and acked. */
  written: number;
  /** Of those, rows/documents already present (redeliveries). */
  duplicates: number;
  deadLettered: number;
  inFlight: number;
}

/**
 * One durable JetStream consumer per sink, so each database is delivered independently:
 * MongoDB being down never holds Postgres back, and its backlog simply waits in the stream.
 * Several hub processes bound to the same durable share its work; JetStream hands each
 * batch to one of them at a time, and the idempotent sinks make a redelivery harmless.
 *
 * A write that fails because the sink is unavailable pauses this consumer: the batches it
 * holds go back to JetStream (where another hub process that can still reach the database
 * may take them), no new ones are pulled, and it resumes once the sink answers. Such
 * failures never count against a batch. A write that fails while the sink answers is
 * retried with a growing delay and dead-lettered after `maxDeliver` such failures (see
 * writeFailed for which ones count).
 */
export class SinkConsumer {
  readonly durable: string;
  private readonly js: JetStreamClient;
  private readonly deadLetters: DeadLetterPublisher;
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  private running = false;
  private paused = false;
  /** Sleep between resume attempts; doubles while resuming keeps failing, resets on a write. */
  private pauseBackoffMs = MIN_PAUSE_MS;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly failures = new FailureCounts();
  /** performance.now() of this process's last committed batch (evidence that the sink works). */
  private lastCommitAt = -1;
  private wake: (() => void) | undefined;
  private readonly st: ConsumerStatus;

  constructor(
    private readonly nc: NatsConnection,
    private readonly sink: Sink,
    private readonly subj: Subjects,
    private readonly opts: ConsumerOptions,
    private readonly metrics: HubMetrics,
    private readonly logger: Logger,
  ) {
    this.durable = durableName(sink.name);
    this.js = jetstream(nc);
    this.deadLetters = new DeadLetterPublisher(this.js, subj, sink.name, metrics, logger);
    this.st = {
      sink: sink.name,
      durable: this.durable,
      state: "starting",
      lastWriteAt: null,
      lastError: undefined,
      written: 0,
      duplicates: 0,
      deadLettered: 0,
      inFlight: 0,
    };
  }

  /** Create the durable consumer, or bring an existing one's limits up to date. */
  ensure(): Promise<void> {
    return ensureDurable(this.nc, this.subj, this.durable, this.opts);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const consumer = await this.js.consumers.get(this.subj.stream, this.durable);
        // A small client buffer: batches waiting in it have their ack_wait running, and a
        // process that buffers little leaves the rest to the other processes on the durable.
        const messages = await consumer.consume({
          max_messages: Math.max(1, Math.min(this.opts.maxAckPending, this.opts.concurrency * 2)),
          // A pull request lives on the consumer's leader. When that server dies (a NATS
          // cluster node lost) the request dies with it, and the client only notices after
          // two missed idle heartbeats: the defaults (30 s requests, 15 s heartbeats) meant a
          // 30 s stall after every leader change. 10 s / 2 s re-pulls within about 4 s.
          expires: 10_000,
          idle_heartbeat: 2_000,
        });
        this.messages = messages;
        // stop() may have run while consume() was being set up, with nothing to stop yet.
        if (!this.running) messages.stop();
        if (!this.paused) this.setState("running");
        for await (const m of messages) {
          if (!this.running || this.paused) {
            this.handBack(m);
            continue;
          }
          this.spawn(m);
          if (this.inFlight.size >= this.opts.concurrency) await Promise.race(this.inFlight);
        }
      } catch (err) {
        if (this.running) {
          this.st.lastError = errorMessage(err);
          this.logger.warn({ err: this.st.lastError }, "consumer interrupted; restarting");
        }
      } finally {
        this.messages = undefined;
      }
      await Promise.all([...this.inFlight]);
      if (!this.running) break;
      if (this.paused) {
        await this.waitForSink();
        this.paused = false;
      } else {
        // The iterator ended without our asking (consumer deleted, connection closed): do not spin.
        await this.sleep(1_000);
      }
    }
    this.setState("stopped");
  }

  private spawn(m: JsMsg): void {
    const p: Promise<void> = this.handle(m)
      .catch((err: unknown) => {
        // handle() deals with every sink and NATS error itself: this is a bug. The batch is
        // not acked, so JetStream redelivers it after ack_wait.
        this.logger.error({ err: errorMessage(err), seq: m.seq }, "unexpected error handling a batch");
      })
      .finally(() => {
        this.inFlight.delete(p);
        this.st.inFlight = this.inFlight.size;
      });
    this.inFlight.add(p);
    this.st.inFlight = this.inFlight.size;
  }

  /** A batch pulled while pausing or stopping: give it back at once for someone else. */
  private handBack(m: JsMsg): void {
    try {
      m.nak(this.paused ? 1_000 : 0);
    } catch {
      // Connection gone: JetStream redelivers it after ack_wait anyway.
    }
  }

  private async handle(m: JsMsg): Promise<void> {
    const d = decodeArrival(m, this.subj, this.opts.limits);
    if ("reason" in d) {
      // Decoding is deterministic: a batch that fails once fails every time, so it goes to
      // the dead letters on its first delivery instead of after maxDeliver.
      await this.deadLetter(m, d.reason, d.error, 1);
      return;
    }
    const b = d.sb;
    // Likewise the messages set aside at decoding: dead-lettered on the first delivery.
    const refused = d.refused.map((r) => this.letter(b, r.index, r.message, r.reason, r.error));
    if (b.batch.messages.length === 0) {
      if (await this.deadLetterAlone(m, refused, 1)) this.committed(m, 0, 0);
      return;
    }
    // Keep the batch ours while a slow write runs (resets JetStream's ack_wait).
    const keepAlive = setInterval(
      () => {
        try {
          m.working();
        } catch {
          // connection gone; nothing to keep alive
        }
      },
      Math.max(500, this.opts.ackWaitMs / 3),
    );
    let res: WriteResult;
    try {
      res = await timedWrite(this.sink, b, this.metrics);
    } catch (err) {
      await this.writeFailed(m, err, d, refused);
      return;
    } finally {
      clearInterval(keepAlive);
    }
    if (!(await this.deadLetterAlone(m, refused, 1))) return;
    this.committed(m, b.readings.length, res.duplicates);
  }

  /** The sink committed what it takes of the batch, and its refused messages are parked: ack. */
  private committed(m: JsMsg, n: number, duplicates: number): void {
    // Ack only now, after the sink committed. A crash before this line means a redelivery,
    // which the sink's idempotent write turns into duplicates, never a second row.
    try {
      m.ack();
    } catch (err) {
      this.logger.warn(
        { err: errorMessage(err), seq: m.seq },
        "ack not sent; the batch will be redelivered (harmless)",
      );
    }
    this.failures.clear(m.seq);
    this.lastCommitAt = performance.now();
    this.pauseBackoffMs = MIN_PAUSE_MS;
    this.st.lastWriteAt = Date.now();
    this.st.written += n;
    this.st.duplicates += duplicates;
    this.st.lastError = undefined;
    countWritten(this.metrics, this.sink.name, n, duplicates);
  }

  /** `v` 1 for a message as decoded (fields named), which every hub reads; else its batch's format. */
  private letter(b: SinkBatch, index: number, message: unknown, reason: string, error: string, v = b.batch.v): Letter {
    return { index, reason, error, data: messageAsBatch(b.batch, message, v) };
  }

  /**
   * Decide what a failed write means:
   * - the sink's probe fails: the database is down. Hand the batch back, pause, count nothing.
   * - the sink refused the batch (a constraint, a value it cannot store) while answering its
   *   probe: count it; dead-letter it at maxDeliver.
   * - the write failed as if the database were unavailable, yet the probe answers: a stale
   *   pooled connection after a restart, a condition the probe cannot see (disk full, schema
   *   missing) — or a batch that makes the server drop the connection. Only in that last case
   *   do other batches get written meanwhile, so the failure counts against this batch only
   *   when this process committed another batch since the batch's previous failure. Retried
   *   with backoff, without pausing, so that the others can prove the sink works.
   * A counted failure of a batch of several messages is narrowed down to the messages the sink
   * refuses (isolateRefusals): the others are written at once, and at maxDeliver only the
   * refused ones are dead-lettered, each alone.
   */
  private async writeFailed(m: JsMsg, err: unknown, d: Decoded, refused: Letter[]): Promise<void> {
    const error = errorMessage(err);
    this.st.lastError = error;
    if (!(await this.sink.healthy())) {
      this.metrics.writeErrors.inc({ sink: this.sink.name, kind: "unavailable" });
      this.handBackAndPause(m, error);
      return;
    }
    const now = performance.now();
    let counted = true;
    if (err instanceof SinkUnavailableError) {
      const prev = this.failures.get(m.seq);
      counted = prev !== undefined && this.lastCommitAt > prev.lastAt;
    }
    this.metrics.writeErrors.inc({ sink: this.sink.name, kind: counted ? "rejected" : "unavailable" });
    const f = this.failures.record(m.seq, counted, now);
    let bad = d.parts.map((p) => ({ ...p, error }));
    let written = 0;
    let duplicates = 0;
    if (counted && d.parts.length > 1) {
      try {
        const iso = await isolateRefusals(this.sink, d.sb, d.parts);
        ({ written, duplicates } = iso);
        bad = iso.refused;
      } catch (e) {
        this.metrics.writeErrors.inc({ sink: this.sink.name, kind: "unavailable" });
        this.handBackAndPause(m, errorMessage(e));
        return;
      }
      if (bad.length === 0) {
        if (await this.deadLetterAlone(m, refused, 1)) this.committed(m, written, duplicates);
        return;
      }
    }
    if (f.counted >= this.opts.maxDeliver) {
      if (bad.length === d.parts.length && refused.length === 0) {
        await this.deadLetter(m, "sink_rejected", error, f.counted);
      } else {
        const letters = bad.map((p) => this.letter(d.sb, p.index, p.message, "sink_rejected", p.error, 1));
        if ((await this.deadLetterAlone(m, letters, f.counted)) && (await this.deadLetterAlone(m, refused, 1)))
          this.committed(m, written, duplicates);
      }
      this.failures.clear(m.seq);
      return;
    }
    const delay = retryDelayMs(f.tries);
    this.logger.warn(
      {
        err: error,
        counted: f.counted,
        of: this.opts.maxDeliver,
        retryInMs: delay,
        seq: m.seq,
        refusedMessages: bad.length,
        messages: d.parts.length,
      },
      "batch write failed; will retry",
    );
    m.nak(delay);
  }

  private handBackAndPause(m: JsMsg, error: string): void {
    try {
      m.nak(1_000);
    } catch {
      // redelivered after ack_wait
    }
    if (this.paused) return;
    this.paused = true;
    this.setState("waiting_for_sink");
    this.logger.warn(
      { err: error },
      "sink unavailable; pausing this consumer until it answers (its batches wait in JetStream)",
    );
    // Ends the iterator after it hands us what it had buffered; run() gives those back.
    this.messages?.stop();
  }

  private async waitForSink(): Promise<void> {
    let wait = this.pauseBackoffMs;
    // Sleep first: a sink whose probe answers but whose writes still fail as unavailable
    // (schema missing, read-only) must not turn this into a tight loop.
    while (this.running) {
      await this.sleep(wait);
      if (!this.running || (await this.sink.healthy())) break;
      wait = Math.min(wait * 2, 5_000);
    }
    this.pauseBackoffMs = Math.min(this.pauseBackoffMs * 2, MAX_PAUSE_MS);
    if (this.running) {
      this.logger.info("sink answers; resuming");
      this.setState("running");
    }
  }

  /** Park each letter alone (see DeadLetterPublisher.messages); false when the batch was handed back. */
  private async deadLetterAlone(m: JsMsg, letters: readonly Letter[], attempts: number): Promise<boolean> {
    if (!(await this.deadLetters.messages(m, letters, attempts))) return false;
    this.st.deadLettered += letters.length;
    return true;
  }

  /** Park the whole batch and terminate it, or hand it back when it cannot be parked. */
  private async deadLetter(m: JsMsg, reason: string, error: string, attempts: number): Promise<void> {
    if (await this.deadLetters.batch(m, reason, error, attempts)) this.st.deadLettered++;
  }

  private setState(s: ConsumerState): void {
    this.st.state = s;
    this.metrics.sinkPaused.set({ sink: this.sink.name }, s === "waiting_for_sink" ? 1 : 0);
  }

  private sleep(ms: number): Promise<void> {
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

  status(): ConsumerStatus {
    return { ...this.st };
  }

  /** Stop pulling, give back what is buffered, let in-flight writes finish (and ack). */
  async stop(): Promise<void> {
    this.running = false;
    this.messages?.stop();
    this.wake?.();
    await this.loop;
  }
}

const MIN_PAUSE_MS = 500;
const MAX_PAUSE_MS = 30_000;
