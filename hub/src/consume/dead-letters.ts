import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { headers, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { errorMessage, type Logger, type Subjects } from "@datalab/shared";
import type { HubMetrics } from "./metrics";

/**
 * Dead letters: batches a sink gave up on, kept in `<PREFIX>_DEADLETTER` on
 * `<prefix>.deadletter.<sink>` with the original bytes and, in headers, why.
 */
export const DL_HEADER = {
  reason: "Datalab-Reason",
  error: "Datalab-Error",
  sink: "Datalab-Sink",
  subject: "Datalab-Subject",
  streamSeq: "Datalab-Stream-Seq",
  msgId: "Datalab-Msg-Id",
  attempts: "Datalab-Attempts",
  /** Set when the letter holds one message of the batch (its position in the batch as sent), not the whole one. */
  message: "Datalab-Message",
} as const;

export interface DeadLetterInfo {
  reason: string;
  error: string;
  sink: string;
  attempts: number;
  /** Position in the batch of the one message the letter holds; absent for a whole batch. */
  message?: number;
}

/** The headers of a dead letter for message `m`. */
export function deadLetterHeaders(m: Pick<JsMsg, "subject" | "seq" | "headers">, info: DeadLetterInfo): MsgHdrs {
  const h = headers();
  h.set(DL_HEADER.reason, info.reason);
  // Header values cannot hold line breaks; keep the error readable and bounded.
  h.set(DL_HEADER.error, info.error.replace(/[\r\n]+/g, " ").slice(0, 1_000));
  h.set(DL_HEADER.sink, info.sink);
  h.set(DL_HEADER.subject, m.subject);
  h.set(DL_HEADER.streamSeq, String(m.seq));
  h.set(DL_HEADER.attempts, String(info.attempts));
  if (info.message !== undefined) h.set(DL_HEADER.message, String(info.message));
  const id = m.headers?.get("Nats-Msg-Id");
  if (id) h.set(DL_HEADER.msgId, id);
  return h;
}

/**
 * The dead-letter's own Nats-Msg-Id: a hub that dies after publishing it, before terminating
 * the batch, does not park it twice.
 */
export function deadLetterMsgId(sink: string, streamSeq: number, message?: number): string {
  return message === undefined ? `${sink}:${streamSeq}` : `${sink}:${streamSeq}:m${message}`;
}

/** One message of a batch, dead-lettered alone (as a batch of its own). */
export interface Letter {
  index: number;
  reason: string;
  error: string;
  data: Uint8Array;
}

/**
 * Parks what a sink's consumer gives up on in the dead-letter stream. When a publish fails,
 * the batch is handed back to be redelivered rather than lost.
 */
export class DeadLetterPublisher {
  constructor(
    private readonly js: JetStreamClient,
    private readonly subj: Subjects,
    private readonly sink: string,
    private readonly metrics: HubMetrics,
    private readonly logger: Logger,
  ) {}

  /**
   * Publish each letter (one message of the batch). False when one could not be parked: the
   * batch is then handed back to come again, and its letters' ids make the ones already
   * published duplicates.
   */
  async messages(m: JsMsg, letters: readonly Letter[], attempts: number): Promise<boolean> {
    for (const l of letters) {
      try {
        await this.js.publish(this.subj.deadLetter(this.sink), l.data, {
          headers: deadLetterHeaders(m, {
            reason: l.reason,
            error: l.error,
            sink: this.sink,
            attempts,
            message: l.index,
          }),
          msgID: deadLetterMsgId(this.sink, m.seq, l.index),
        });
      } catch (err) {
        this.handBack(m, err);
        return false;
      }
    }
    for (const l of letters) {
      this.metrics.deadLetters.inc({ sink: this.sink, reason: l.reason });
      this.logger.error(
        { reason: l.reason, error: l.error, seq: m.seq, message: l.index, subject: m.subject, attempts },
        "message dead-lettered alone; the rest of its batch is written",
      );
    }
    return true;
  }

  /** Publish the whole batch with its reason and error, then terminate it; false when it was handed back. */
  async batch(m: JsMsg, reason: string, error: string, attempts: number): Promise<boolean> {
    try {
      await this.js.publish(this.subj.deadLetter(this.sink), m.data, {
        headers: deadLetterHeaders(m, { reason, error, sink: this.sink, attempts }),
        msgID: deadLetterMsgId(this.sink, m.seq),
      });
    } catch (err) {
      this.handBack(m, err);
      return false;
    }
    // term() without a reason: nats-server before 2.11 does not parse "+TERM <reason>" and
    // leaves the message pending (then redelivers it). The reason travels in the headers.
    m.term();
    this.metrics.deadLetters.inc({ sink: this.sink, reason });
    this.logger.error({ reason, error, seq: m.seq, subject: m.subject, attempts }, "batch dead-lettered");
    return true;
  }

  /** Could not park it: leave it to be redelivered rather than lose it. */
  private handBack(m: JsMsg, err: unknown): void {
    this.logger.error({ err: errorMessage(err), seq: m.seq }, "dead-letter publish failed; batch will be redelivered");
    try {
      m.nak(5_000);
    } catch {
      // redelivered after ack_wait
    }
  }
}

export interface DeadLetter {
  /** Sequence in the dead-letter stream (what --replay deletes). */
  seq: number;
  time: Date;
  sink: string;
  reason: string;
  error: string;
  /** The readings subject the batch came on, where a replay sends it back. */
  subject: string;
  /** Its sequence in the readings stream. */
  streamSeq: number;
  /** The gateway's Nats-Msg-Id of the batch, when it had one. */
  msgId: string | undefined;
  attempts: number;
  /** Position in its batch of the one message this letter holds; undefined for the whole batch. */
  message: number | undefined;
  size: number;
  data: Uint8Array;
}

export interface DeadLetterFilter {
  sink?: string;
  reason?: string;
  seq?: number;
  /** Most letters returned, oldest first. */
  limit?: number;
}

/** Dead letters in the stream, oldest first (an ordered consumer: reading them changes nothing). */
export async function listDeadLetters(
  nc: NatsConnection,
  subj: Subjects,
  f: DeadLetterFilter = {},
): Promise<DeadLetter[]> {
  const jsm = await jetstreamManager(nc);
  const filter = f.sink ? subj.deadLetter(f.sink) : subj.allDeadLetters;
  let available: number;
  try {
    const info = await jsm.streams.info(subj.deadLetterStream, { subjects_filter: filter });
    available = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  } catch (err) {
    if (/stream not found/i.test(errorMessage(err))) return [];
    throw err;
  }
  if (available === 0) return [];
  const limit = f.limit ?? Number.MAX_SAFE_INTEGER;
  const consumer = await jetstream(nc).consumers.get(subj.deadLetterStream, {
    filter_subjects: filter,
    ...(f.seq !== undefined ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: f.seq } : {}),
  });
  const out: DeadLetter[] = [];
  const iter = await consumer.consume({ max_messages: 256 });
  try {
    for await (const m of iter) {
      if (f.seq !== undefined && m.seq !== f.seq) break;
      const d = toDeadLetter(m);
      if (!f.reason || d.reason === f.reason) out.push(d);
      if (out.length >= limit || m.info.pending === 0 || f.seq !== undefined) break;
    }
  } finally {
    iter.stop();
  }
  return out;
}

function toDeadLetter(m: JsMsg): DeadLetter {
  const h = m.headers;
  const get = (k: string) => h?.get(k) ?? "";
  return {
    seq: m.seq,
    time: m.time,
    sink: get(DL_HEADER.sink) || m.subject.split(".").pop() || "",
    reason: get(DL_HEADER.reason),
    error: get(DL_HEADER.error),
    subject: get(DL_HEADER.subject),
    streamSeq: Number(get(DL_HEADER.streamSeq)) || 0,
    msgId: get(DL_HEADER.msgId) || undefined,
    attempts: Number(get(DL_HEADER.attempts)) || 0,
    message: get(DL_HEADER.message) === "" ? undefined : Number(get(DL_HEADER.message)),
    size: m.data.byteLength,
    data: m.data,
  };
}

/**
 * The Nats-Msg-Id a replay publishes under. It must differ from the gateway's original id:
 * the readings stream drops a message whose id it saw within its duplicate window, so a
 * replay under the original id would be acknowledged and silently discarded. It is
 * deterministic per dead letter, so re-running a replay that died between publishing and
 * deleting is itself recognised as a duplicate within that window (and beyond it the sinks'
 * idempotent writes make the second copy harmless).
 */
export function replayMsgId(d: Pick<DeadLetter, "msgId" | "streamSeq" | "seq">): string {
  return `${d.msgId ?? `seq${d.streamSeq}`}:replay:${d.seq}`;
}

export interface ReplayResult {
  seq: number;
  subject: string;
  ok: boolean;
  error?: string;
}

/**
 * Publish each dead letter back to the subject it came on, then delete it from the
 * dead-letter stream. Every sink's consumer sees a replayed batch again; the sinks that had
 * already written it find only duplicates.
 */
export async function replayDeadLetters(
  nc: NatsConnection,
  subj: Subjects,
  letters: readonly DeadLetter[],
): Promise<ReplayResult[]> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const out: ReplayResult[] = [];
  for (const d of letters) {
    if (!subj.gatewayOf(d.subject)) {
      out.push({
        seq: d.seq,
        subject: d.subject,
        ok: false,
        error: `"${d.subject}" is not a readings subject of prefix "${subj.prefix}"`,
      });
      continue;
    }
    try {
      await js.publish(d.subject, d.data, { msgID: replayMsgId(d) });
      await jsm.streams.deleteMessage(subj.deadLetterStream, d.seq, false);
      out.push({ seq: d.seq, subject: d.subject, ok: true });
    } catch (err) {
      out.push({ seq: d.seq, subject: d.subject, ok: false, error: errorMessage(err) });
    }
  }
  return out;
}
