import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import {
  BatchError,
  batchReadings,
  decodeBatch,
  errorMessage,
  msToNanos,
  type BatchLimits,
  type Logger,
  type Subjects,
} from "@datalab/shared";
import type { Sink } from "../sinks/types";
import type { HubMetrics } from "../metrics";

export interface ConsumerOptions {
  /** Batches fetched but not yet acked, per consumer (JetStream's max_ack_pending). */
  maxAckPending: number;
  /** How long JetStream waits for an ack before redelivering; long writes call working(). */
  ackWaitMs: number;
  /** A batch that failed this many times (with its sink healthy) goes to the dead letters. */
  maxDeliver: number;
  limits: BatchLimits;
}

export interface ConsumerStatus {
  sink: string;
  durable: string;
  state: "starting" | "running" | "waiting_for_sink" | "stopped";
  lastWriteAt: number | null;
  lastError: string | undefined;
  written: number;
}

/**
 * One durable JetStream consumer per sink, so each database is delivered independently:
 * MongoDB being down never holds Postgres back, and its backlog simply waits in the stream.
 * Several hub processes bound to the same durable share its work.
 */
export class SinkConsumer {
  readonly durable: string;
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  private running = false;
  private st: ConsumerStatus;

  constructor(
    private readonly nc: NatsConnection,
    private readonly sink: Sink,
    private readonly subj: Subjects,
    private readonly opts: ConsumerOptions,
    private readonly metrics: HubMetrics,
    private readonly logger: Logger,
  ) {
    this.durable = `${sink.name}-sink`;
    this.st = { sink: sink.name, durable: this.durable, state: "starting", lastWriteAt: null, lastError: undefined, written: 0 };
  }

  /** Create or update the durable consumer. */
  async ensure(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    const cfg = {
      durable_name: this.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: this.subj.allReadings,
      max_ack_pending: this.opts.maxAckPending,
      ack_wait: msToNanos(this.opts.ackWaitMs),
      // Unlimited on the server: the hub itself dead-letters a batch after maxDeliver failed
      // attempts. A server-side limit would silently stop delivering it instead.
      max_deliver: -1,
    };
    try {
      await jsm.consumers.info(this.subj.stream, this.durable);
      await jsm.consumers.update(this.subj.stream, this.durable, {
        max_ack_pending: cfg.max_ack_pending,
        ack_wait: cfg.ack_wait,
        max_deliver: cfg.max_deliver,
      });
    } catch (err) {
      if (!/consumer not found/i.test(errorMessage(err)) && (err as Error).name !== "ConsumerNotFoundError") throw err;
      await jsm.consumers.add(this.subj.stream, cfg).catch((e: unknown) => {
        if (!/already (exists|in use)/i.test(errorMessage(e))) throw e;
      });
    }
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const js = jetstream(this.nc);
    while (this.running) {
      try {
        const consumer = await js.consumers.get(this.subj.stream, this.durable);
        this.messages = await consumer.consume({ max_messages: Math.min(this.opts.maxAckPending, 256) });
        this.st.state = "running";
        for await (const m of this.messages) {
          await this.handle(m);
          if (!this.running) break;
        }
      } catch (err) {
        if (!this.running) break;
        this.st.lastError = errorMessage(err);
        this.logger.warn({ err: this.st.lastError }, "consumer interrupted; restarting in 1 s");
        await sleep(1_000);
      }
    }
    this.st.state = "stopped";
  }

  private async handle(m: JsMsg): Promise<void> {
    const gatewayId = this.subj.gatewayOf(m.subject);
    let sinkBatch;
    try {
      if (!gatewayId) throw new BatchError("bad_subject", `subject ${m.subject} does not name a gateway`);
      const batch = decodeBatch(m.data, this.opts.limits);
      // Trust the subject (NATS permissions can tie it to one gateway's credentials), not the payload.
      if (batch.gatewayId !== gatewayId) {
        throw new BatchError("gateway_mismatch", `batch claims gateway "${batch.gatewayId}" but came on the subject of "${gatewayId}"`);
      }
      sinkBatch = { gatewayId, batch, readings: batchReadings(batch, gatewayId), streamSeq: m.seq };
    } catch (err) {
      // Deterministic failures: retrying cannot help, so straight to the dead letters.
      const reason = err instanceof BatchError ? err.reason : "decode_failed";
      await this.deadLetter(m, reason, errorMessage(err));
      return;
    }
    // Keep the message ours while a slow write runs.
    const keepAlive = setInterval(() => m.working(), Math.max(1_000, this.opts.ackWaitMs / 3));
    try {
      await this.sink.write(sinkBatch);
      m.ack();
      this.st.lastWriteAt = Date.now();
      this.st.written += sinkBatch.readings.length;
      this.st.lastError = undefined;
      this.metrics.readingsWritten.inc({ sink: this.sink.name }, sinkBatch.readings.length);
      this.metrics.batchesWritten.inc({ sink: this.sink.name });
    } catch (err) {
      this.st.lastError = errorMessage(err);
      this.metrics.writeErrors.inc({ sink: this.sink.name });
      if (!(await this.sink.healthy())) {
        // The database is down: not the batch's fault. Hand it back and wait for the sink.
        m.nak(1_000);
        await this.waitForSink();
        return;
      }
      const attempt = m.info.deliveryCount;
      if (attempt >= this.opts.maxDeliver) {
        await this.deadLetter(m, "sink_rejected", this.st.lastError);
        return;
      }
      const delay = Math.min(30_000, 500 * 2 ** (attempt - 1));
      this.logger.warn({ err: this.st.lastError, attempt, retryInMs: delay, seq: m.seq }, "batch write failed; will retry");
      m.nak(delay);
    } finally {
      clearInterval(keepAlive);
    }
  }

  private async waitForSink(): Promise<void> {
    this.st.state = "waiting_for_sink";
    this.logger.warn({ sink: this.sink.name }, "sink unavailable; pausing this consumer until it answers");
    let wait = 500;
    while (this.running && !(await this.sink.healthy())) {
      await sleep(wait);
      wait = Math.min(wait * 2, 5_000);
    }
    if (this.running) {
      this.logger.info({ sink: this.sink.name }, "sink is back; resuming");
      this.st.state = "running";
    }
  }

  /** Publish the batch, its reason and error to the dead-letter subject, then terminate it. */
  private async deadLetter(m: JsMsg, reason: string, error: string): Promise<void> {
    const h = headers();
    h.set("Datalab-Reason", reason);
    h.set("Datalab-Error", error.slice(0, 1_000).replace(/[\r\n]+/g, " "));
    h.set("Datalab-Sink", this.sink.name);
    h.set("Datalab-Subject", m.subject);
    h.set("Datalab-Stream-Seq", String(m.seq));
    try {
      await jetstream(this.nc).publish(this.subj.deadLetter(this.sink.name), m.data, {
        headers: h,
        msgID: `${this.sink.name}:${m.seq}`,
      });
      m.term(reason);
      this.metrics.deadLetters.inc({ sink: this.sink.name, reason });
      this.logger.error({ reason, error, seq: m.seq, subject: m.subject }, "batch dead-lettered");
    } catch (err) {
      // Could not park it: leave it to be redelivered rather than lose it.
      this.logger.error({ err: errorMessage(err) }, "dead-letter publish failed; batch will be redelivered");
      m.nak(5_000);
    }
  }

  status(): ConsumerStatus {
    return { ...this.st };
  }

  async stop(): Promise<void> {
    this.running = false;
    this.messages?.stop();
    await this.loop;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
