import { isUtf8 } from "node:buffer";
import { z } from "zod";
import {
  EpochMillis,
  FiniteNumber,
  InstanceId,
  MessageSource,
  MetricName,
  RxWindow,
  SensorId,
  UnitName,
} from "./reading";
import { BatchError } from "./errors";
import { isWireBatch } from "./checks";
import type { Reading } from "./reading";

/**
 * The wire batch: one NATS message per batch. It carries messages, not bare readings, so
 * the hub can keep the raw payload (MongoDB) beside the typed readings (PostgreSQL).
 *
 * Both formats are JSON, with the same envelope; the version is its first field, and a hub
 * refuses versions it does not know instead of guessing. In format 1 each message and reading
 * is an object (WireMessage, WireReading below). Format 2 writes the same fields as arrays, in
 * a fixed order, without their names: a message is `[source, receivedAt, payload, encoding,
 * readings]` and a reading `[seq, sensorId, metric, value, unit, ts]`, with `rxWindow` as a
 * seventh item when it has one. A flood's single-reading message is a third smaller so, and
 * every byte of it is paid for by the gateway's outbox, NATS and the hub (docs/performance.md).
 * Decoded, a batch of either format has the named shape; `v` says which it came in.
 */
/** Format 1: messages and readings as objects. Every hub reads it. */
export const BATCH_FORMAT_VERSION = 1;
/** Format 2: the same fields as arrays (see above); what gateways write unless DATALAB_WIRE_FORMAT=1. */
export const BATCH_FORMAT_COMPACT = 2;

export const WireReading = z.object({
  seq: z.number().int().positive(),
  sensorId: SensorId,
  metric: MetricName,
  value: FiniteNumber,
  unit: UnitName.nullable(),
  ts: EpochMillis,
  /** Only on receipt-stamped readings (see RxWindow); a hub that does not know it ignores it. */
  rxWindow: RxWindow.optional(),
});
export type WireReading = z.infer<typeof WireReading>;

export const WireMessage = z.object({
  source: MessageSource,
  receivedAt: EpochMillis,
  /** The payload as received: UTF-8 text, or base64 when it was not valid UTF-8. */
  payload: z.string(),
  encoding: z.enum(["utf8", "base64"]),
  readings: z.array(WireReading),
});
export type WireMessage = z.infer<typeof WireMessage>;

export const Batch = z.object({
  v: z.union([z.literal(BATCH_FORMAT_VERSION), z.literal(BATCH_FORMAT_COMPACT)]),
  gatewayId: z.string(),
  instance: InstanceId,
  firstSeq: z.number().int().positive(),
  lastSeq: z.number().int().positive(),
  sentAt: EpochMillis,
  messages: z.array(WireMessage),
});
export type Batch = z.infer<typeof Batch>;

/** A batch's fields other than its messages: when these are wrong, no message of it can be trusted. */
const BatchEnvelope = Batch.extend({ messages: z.array(z.unknown()) });

export interface BatchLimits {
  /** Bytes of one encoded batch. NATS' default max_payload is 1 MiB; stay well under it. */
  maxBytes: number;
  maxMessages: number;
}

export const DEFAULT_BATCH_LIMITS: BatchLimits = Object.freeze({
  maxBytes: 512 * 1024,
  maxMessages: 5_000,
});

/**
 * The JetStream message id: a resend of the same rows is recognised as a duplicate. The
 * `digest` (the gateway's keyed digest of the batch's messages) is what keeps another
 * gateway from predicting the id: JetStream's duplicate window is stream-wide, so a
 * guessable id lets any publisher on the stream suppress a batch it never saw.
 */
export function batchMsgId(b: Pick<Batch, "gatewayId" | "instance" | "firstSeq" | "lastSeq">, digest?: string): string {
  const range = `${b.gatewayId}:${b.instance}:${b.firstSeq}-${b.lastSeq}`;
  return digest === undefined ? range : `${range}:${digest}`;
}

/** The batch as its format `v` writes it. */
export function encodeBatch(batch: Batch): Uint8Array {
  const wire = batch.v === BATCH_FORMAT_COMPACT ? { ...batch, messages: batch.messages.map(positionalMessage) } : batch;
  return Buffer.from(JSON.stringify(wire), "utf8");
}

/** A message as format 2 writes it: its fields in order, each reading likewise. */
export function positionalMessage(m: WireMessage): unknown[] {
  const readings = m.readings.map((r) => {
    const fields: unknown[] = [r.seq, r.sensorId, r.metric, r.value, r.unit, r.ts];
    if (r.rxWindow !== undefined) fields.push(r.rxWindow);
    return fields;
  });
  return [m.source, m.receivedAt, m.payload, m.encoding, readings];
}

/**
 * A format-2 message with its fields named, as format 1 has them, or why it cannot be: zod
 * then checks it exactly as a format-1 message.
 */
export function namedMessage(raw: unknown): { message: unknown } | { error: string } {
  if (!Array.isArray(raw) || raw.length !== 5)
    return { error: "a format-2 message is an array: [source, receivedAt, payload, encoding, readings]" };
  const [source, receivedAt, payload, encoding, list] = raw as unknown[];
  if (!Array.isArray(list)) return { message: { source, receivedAt, payload, encoding, readings: list } };
  const readings: unknown[] = new Array(list.length);
  for (let k = 0; k < list.length; k++) {
    const r = list[k] as unknown;
    if (!Array.isArray(r) || r.length < 6 || r.length > 7)
      return { error: `reading ${k}: a format-2 reading is [seq, sensorId, metric, value, unit, ts] (rxWindow 7th)` };
    readings[k] =
      r.length === 7
        ? { seq: r[0], sensorId: r[1], metric: r[2], value: r[3], unit: r[4], ts: r[5], rxWindow: r[6] }
        : { seq: r[0], sensorId: r[1], metric: r[2], value: r[3], unit: r[4], ts: r[5] };
  }
  return { message: { source, receivedAt, payload, encoding, readings } };
}

/**
 * Decode and validate a batch. Size is checked before parsing, so a hostile or broken
 * gateway cannot make the hub parse a huge document.
 */
export function decodeBatch(data: Uint8Array, limits: BatchLimits = DEFAULT_BATCH_LIMITS): Batch {
  if (data.byteLength > limits.maxBytes) {
    throw new BatchError("too_large", `batch of ${data.byteLength} bytes exceeds the limit of ${limits.maxBytes}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
  } catch (err) {
    throw new BatchError("not_json", "batch is not JSON", { cause: err });
  }
  const v = (json as { v?: unknown } | null)?.v;
  if (v !== BATCH_FORMAT_VERSION && v !== BATCH_FORMAT_COMPACT) {
    throw new BatchError(
      "unknown_version",
      `batch format version ${String(v)} is not supported ` +
        `(expected ${BATCH_FORMAT_VERSION} or ${BATCH_FORMAT_COMPACT})`,
    );
  }
  const msgs = (json as { messages?: unknown }).messages;
  if (Array.isArray(msgs) && msgs.length > limits.maxMessages) {
    throw new BatchError("too_many_messages", `batch has ${msgs.length} messages, the limit is ${limits.maxMessages}`);
  }
  if (v === BATCH_FORMAT_COMPACT && Array.isArray(msgs)) {
    for (let i = 0; i < msgs.length; i++) {
      const named = namedMessage(msgs[i]);
      // decodeBatchParts says which message, and why.
      if ("error" in named) throw new BatchError("invalid", `message ${i}: ${named.error}`);
      msgs[i] = named.message;
    }
  }
  // The hand-written check passes what is certainly valid without copying it; zod decides
  // (and explains) the rest.
  if (isWireBatch(json)) return json;
  const parsed = Batch.safeParse(json);
  if (!parsed.success) {
    throw new BatchError("invalid", `batch does not match the schema: ${z.prettifyError(parsed.error)}`);
  }
  return parsed.data;
}

/** A message of a batch that breaks the contract, set aside with why. */
export interface RefusedMessage {
  /** Its position in the batch as sent. */
  index: number;
  /** The message as it was on the wire (any JSON value). */
  message: unknown;
  /** A short label for metrics: `bad_source`, `bad_sensor_id`, `bad_value`, ... */
  reason: string;
  error: string;
}

export interface BatchParts {
  /** The batch with only its valid messages. */
  batch: Batch;
  /** Position in the batch as sent of each message in `batch.messages`. */
  indices: number[];
  refused: RefusedMessage[];
}

/**
 * Decode a batch, setting aside each message that breaks the contract instead of refusing the
 * batch: one bad message must cost only itself. Throws BatchError, like decodeBatch, when the
 * batch as a whole is unusable (too large, not JSON, unknown version, a bad envelope).
 */
export function decodeBatchParts(data: Uint8Array, limits: BatchLimits = DEFAULT_BATCH_LIMITS): BatchParts {
  let json: unknown;
  try {
    const batch = decodeBatch(data, limits);
    return { batch, indices: batch.messages.map((_, i) => i), refused: [] };
  } catch (err) {
    if (!(err instanceof BatchError) || err.reason !== "invalid") throw err;
    json = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8"));
  }
  const env = BatchEnvelope.safeParse(json);
  if (!env.success) throw new BatchError("invalid", `batch does not match the schema: ${z.prettifyError(env.error)}`);
  const messages: WireMessage[] = [];
  const indices: number[] = [];
  const refused: RefusedMessage[] = [];
  const compact = env.data.v === BATCH_FORMAT_COMPACT;
  env.data.messages.forEach((raw, index) => {
    const named = compact ? namedMessage(raw) : { message: raw };
    if ("error" in named) {
      refused.push({ index, message: raw, reason: "invalid_message", error: `message ${index}: ${named.error}` });
      return;
    }
    const m = WireMessage.safeParse(named.message);
    if (m.success) {
      messages.push(m.data);
      indices.push(index);
    } else {
      refused.push({
        index,
        message: raw,
        reason: messageReason(m.error),
        error: `message ${index}: ${z.prettifyError(m.error)}`,
      });
    }
  });
  return { batch: { ...env.data, messages }, indices, refused };
}

const REASON_BY_FIELD: Readonly<Record<string, string>> = {
  source: "bad_source",
  sensorId: "bad_sensor_id",
  metric: "bad_metric",
  value: "bad_value",
  unit: "bad_unit",
  ts: "bad_timestamp",
  receivedAt: "bad_timestamp",
  seq: "bad_seq",
};

function messageReason(err: z.ZodError): string {
  const path = err.issues[0]?.path ?? [];
  const key = path[path.length - 1];
  return (typeof key === "string" && REASON_BY_FIELD[key]) || "invalid_message";
}

/**
 * One message (valid or not) as a batch of its own, under its batch's envelope: what a dead
 * letter holds, so that a replay re-sends that message alone. Its seq range is its readings'
 * when they have usable seqs. A message refused at decoding keeps its batch's format and its
 * shape as it came; one the hub decoded (fields named) goes in format 1 (`v` = 1), which every
 * hub reads, whatever format it came in.
 */
export function messageAsBatch(
  envelope: Omit<Batch, "messages">,
  message: unknown,
  v: Batch["v"] = envelope.v,
): Uint8Array {
  let first = Infinity;
  let last = -Infinity;
  const readings = Array.isArray(message) ? message[4] : (message as { readings?: unknown } | null)?.readings;
  if (Array.isArray(readings)) {
    for (const r of readings) {
      const seq = Array.isArray(r) ? r[0] : (r as { seq?: unknown } | null)?.seq;
      if (typeof seq === "number" && Number.isSafeInteger(seq) && seq > 0) {
        first = Math.min(first, seq);
        last = Math.max(last, seq);
      }
    }
  }
  const { gatewayId, instance, firstSeq, lastSeq, sentAt } = envelope;
  const range = first <= last ? { firstSeq: first, lastSeq: last } : { firstSeq, lastSeq };
  return Buffer.from(JSON.stringify({ v, gatewayId, instance, ...range, sentAt, messages: [message] }), "utf8");
}

/** Flatten a batch into canonical readings, trusting `gatewayId` given by the caller. */
export function batchReadings(batch: Batch, gatewayId: string): Reading[] {
  const out: Reading[] = [];
  for (const m of batch.messages) {
    for (const r of m.readings) {
      out.push({
        gatewayId,
        instance: batch.instance,
        seq: r.seq,
        sensorId: r.sensorId,
        metric: r.metric,
        value: r.value,
        unit: r.unit,
        ts: r.ts,
        receivedAt: m.receivedAt,
        source: m.source,
        ...(r.rxWindow === undefined ? {} : { rxWindow: r.rxWindow }),
      });
    }
  }
  return out;
}

/** Encode raw bytes for the wire: text (valid UTF-8) stays readable, anything else goes as base64. */
export function encodePayload(raw: Uint8Array): { payload: string; encoding: "utf8" | "base64" } {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  return isUtf8(buf)
    ? { payload: buf.toString("utf8"), encoding: "utf8" }
    : { payload: buf.toString("base64"), encoding: "base64" };
}

export function decodePayload(m: Pick<WireMessage, "payload" | "encoding">): Buffer {
  return Buffer.from(m.payload, m.encoding === "base64" ? "base64" : "utf8");
}
