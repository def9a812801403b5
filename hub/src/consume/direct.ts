import {
  errorMessage,
  messageAsBatch,
  UplinkError,
  type BatchLimits,
  type Logger,
  type Subjects,
} from "@datalab/shared";
import { SinkUnavailableError, type Sink, type SinkBatch } from "../sinks/types";
import { FailureCounts } from "./failures";
import { countWritten, decodeArrival, timedWrite } from "./intake";
import { isolateRefusals } from "./isolate";
import type { HubMetrics } from "./metrics";

/** What the in-process path answers: the same shape as JetStream's PubAck. */
export interface DirectAck {
  seq: number;
  duplicate: boolean;
}

/** A batch the hub gave up on, with why: the in-process stand-in for the dead-letter stream. */
export interface DirectDeadLetter {
  sink: string | undefined;
  reason: string;
  error: string;
  subject: string;
  /** The batch's message id; with `:m<index>` appended when the letter holds one message of it. */
  msgId: string;
  /** Position in the batch of the one message the letter holds; absent for a whole batch. */
  message?: number;
  data: Uint8Array;
}

export interface DirectIntakeOptions {
  limits: BatchLimits;
  /** A batch a healthy sink refused this many times is dead-lettered (DATALAB_MAX_DELIVER). */
  maxDeliver: number;
  /**
   * Where dead letters go. Without it nothing is ever dropped: a refused batch keeps failing
   * its publish and stays in the gateway's outbox.
   */
  deadLetter?: (d: DirectDeadLetter) => Promise<void>;
  /** Message ids remembered for duplicate detection (JetStream's duplicate window). */
  dedupWindow?: number;
}

/**
 * Batches handed over in the same process (the desktop demo's uplink) instead of through
 * JetStream: the same decode, the same trust in the subject over the payload, the same sinks
 * and metrics. `deliver` resolves only after every sink committed — the contract of a
 * JetStream PubAck — so the gateway keeps the rows in its outbox until then.
 *
 * Unlike JetStream there is no per-sink backlog to park a batch in: a sink that is down fails
 * the whole publish, the gateway retries, and the sinks that had committed see duplicates
 * (their writes are idempotent).
 */
export class DirectIntake {
  private nextSeq = 1;
  /** msgId → seq: a resent batch keeps its sequence; an acked one answers `duplicate`. */
  private readonly seqs = new Map<string, { seq: number; acked: boolean }>();
  private readonly failures = new FailureCounts();
  private readonly window: number;

  constructor(
    private readonly sinks: readonly Sink[],
    private readonly subj: Subjects,
    private readonly opts: DirectIntakeOptions,
    private readonly metrics: HubMetrics,
    private readonly logger: Logger,
  ) {
    this.window = opts.dedupWindow ?? 10_000;
  }

  async deliver(subject: string, data: Uint8Array, msgId: string): Promise<DirectAck> {
    const known = this.seqs.get(msgId);
    if (known?.acked) return { seq: known.seq, duplicate: true };
    const seq = known?.seq ?? this.remember(msgId);
    const d = decodeArrival({ subject, data, seq }, this.subj, this.opts.limits);
    if ("reason" in d) {
      // Deterministic: the same bytes fail the same way every time.
      await this.giveUp({ sink: undefined, reason: d.reason, error: d.error, subject, msgId, data });
      return this.acked(msgId, seq);
    }
    const b = d.sb;
    const results =
      b.batch.messages.length === 0 ? [] : await Promise.allSettled(this.sinks.map((s) => this.write(s, b)));
    const failed: string[] = [];
    for (const [i, r] of results.entries()) {
      if (r.status === "fulfilled") continue;
      const sink = this.sinks[i]!;
      const error = errorMessage(r.reason);
      const unavailable = r.reason instanceof SinkUnavailableError || !(await sink.healthy().catch(() => false));
      this.metrics.writeErrors.inc({ sink: sink.name, kind: unavailable ? "unavailable" : "rejected" });
      if (!unavailable && this.opts.deadLetter && this.failures.add(seq) >= this.opts.maxDeliver) {
        if (d.parts.length === 1) {
          await this.giveUp({ sink: sink.name, reason: "sink_rejected", error, subject, msgId, data });
          continue;
        }
        // Narrow the refusal down to the messages the sink refuses alone; write the others.
        try {
          const iso = await isolateRefusals(sink, b, d.parts);
          for (const x of iso.refused)
            await this.giveUpMessage(sink.name, "sink_rejected", x.error, subject, msgId, b, x.index, x.message, 1);
          continue;
        } catch (err) {
          failed.push(`${sink.name}: ${errorMessage(err)}`);
          continue;
        }
      }
      failed.push(`${sink.name}: ${error}`);
    }
    if (failed.length > 0) throw new UplinkError(`hub did not commit the batch (${failed.join("; ")})`);
    // Messages set aside at decoding: parked once every sink took the rest.
    for (const r of d.refused)
      await this.giveUpMessage(undefined, r.reason, r.error, subject, msgId, b, r.index, r.message);
    this.failures.clear(seq);
    return this.acked(msgId, seq);
  }

  private async giveUpMessage(
    sink: string | undefined,
    reason: string,
    error: string,
    subject: string,
    msgId: string,
    b: SinkBatch,
    index: number,
    message: unknown,
    // 1 for a message as decoded (fields named), which every hub reads; else its batch's format.
    v = b.batch.v,
  ): Promise<void> {
    await this.giveUp({
      sink,
      reason,
      error,
      subject,
      msgId: `${msgId}:m${index}`,
      message: index,
      data: messageAsBatch(b.batch, message, v),
    });
  }

  private async write(sink: Sink, b: SinkBatch): Promise<void> {
    const res = await timedWrite(sink, b, this.metrics);
    countWritten(this.metrics, sink.name, b.readings.length, res.duplicates);
  }

  private async giveUp(d: DirectDeadLetter): Promise<void> {
    if (!this.opts.deadLetter)
      throw new UplinkError(`hub refused the batch (${d.reason}: ${d.error}); it stays in the gateway's outbox`);
    await this.opts.deadLetter(d);
    this.metrics.deadLetters.inc({ sink: d.sink ?? "all", reason: d.reason });
    this.logger.error({ reason: d.reason, error: d.error, subject: d.subject, msgId: d.msgId }, "batch dead-lettered");
  }

  private remember(msgId: string): number {
    const seq = this.nextSeq++;
    this.seqs.set(msgId, { seq, acked: false });
    // Bounded like JetStream's duplicate window: the oldest ids go first.
    while (this.seqs.size > this.window) {
      const oldest = this.seqs.keys().next().value;
      if (oldest === undefined) break;
      this.seqs.delete(oldest);
    }
    return seq;
  }

  private acked(msgId: string, seq: number): DirectAck {
    const e = this.seqs.get(msgId);
    if (e) e.acked = true;
    return { seq, duplicate: false };
  }
}
