import { isUtf8 } from "node:buffer";
import { z } from "zod";
import { EpochMillis, FiniteNumber, MetricName, SensorId } from "./reading";
import { BatchError } from "./errors";
import { isWireBatch } from "./checks";
import type { Reading } from "./reading";

/**
 * The wire batch: one NATS message per batch. It carries messages, not bare readings, so
 * the hub can keep the raw payload (MongoDB) beside the typed readings (PostgreSQL).
 *
 * Format version 1 is JSON. The version is the first field so a future binary format can be
 * told apart; a hub refuses versions it does not know instead of guessing.
 */
export const BATCH_FORMAT_VERSION = 1;

export const WireReading = z.object({
  seq: z.number().int().positive(),
  sensorId: SensorId,
  metric: MetricName,
  value: FiniteNumber,
  unit: z.string().max(32).nullable(),
  ts: EpochMillis,
});
export type WireReading = z.infer<typeof WireReading>;

export const WireMessage = z.object({
  source: z.string().max(512),
  receivedAt: EpochMillis,
  /** The payload as received: UTF-8 text, or base64 when it was not valid UTF-8. */
  payload: z.string(),
  encoding: z.enum(["utf8", "base64"]),
  readings: z.array(WireReading),
});
export type WireMessage = z.infer<typeof WireMessage>;

export const Batch = z.object({
  v: z.literal(BATCH_FORMAT_VERSION),
  gatewayId: z.string(),
  instance: z.string(),
  firstSeq: z.number().int().positive(),
  lastSeq: z.number().int().positive(),
  sentAt: EpochMillis,
  messages: z.array(WireMessage),
});
export type Batch = z.infer<typeof Batch>;

export interface BatchLimits {
  /** Bytes of one encoded batch. NATS' default max_payload is 1 MiB; stay well under it. */
  maxBytes: number;
  maxMessages: number;
}

export const DEFAULT_BATCH_LIMITS: BatchLimits = Object.freeze({
  maxBytes: 512 * 1024,
  maxMessages: 5_000,
});

/** The JetStream message id: a resend of the same rows is recognised as a duplicate. */
export function batchMsgId(b: Pick<Batch, "gatewayId" | "instance" | "firstSeq" | "lastSeq">): string {
  return `${b.gatewayId}:${b.instance}:${b.firstSeq}-${b.lastSeq}`;
}

export function encodeBatch(batch: Batch): Uint8Array {
  return Buffer.from(JSON.stringify(batch), "utf8");
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
  if (v !== BATCH_FORMAT_VERSION) {
    throw new BatchError("unknown_version", `batch format version ${String(v)} is not supported (expected ${BATCH_FORMAT_VERSION})`);
  }
  const msgs = (json as { messages?: unknown }).messages;
  if (Array.isArray(msgs) && msgs.length > limits.maxMessages) {
    throw new BatchError("too_many_messages", `batch has ${msgs.length} messages, the limit is ${limits.maxMessages}`);
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
      });
    }
  }
  return out;
}

/** Encode raw bytes for the wire: text (valid UTF-8) stays readable, anything else goes as base64. */
export function encodePayload(raw: Uint8Array): { payload: string; encoding: "utf8" | "base64" } {
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  return isUtf8(buf) ? { payload: buf.toString("utf8"), encoding: "utf8" } : { payload: buf.toString("base64"), encoding: "base64" };
}

/**
 * One wire message as JSON, exactly what JSON.stringify gives for a WireMessage (same keys,
 * same order), built as a string: the gateway encodes every message once, at its commit,
 * and building the objects only to stringify them cost more than the string.
 */
export function encodeWireMessage(m: {
  source: string;
  receivedAt: number;
  payload: string;
  encoding: "utf8" | "base64";
  readings: readonly { sensorId: string; metric: string; value: number; unit?: string | null | undefined; ts: number }[];
}, firstSeq: number): string {
  let out = `{"source":${JSON.stringify(m.source)},"receivedAt":${m.receivedAt},"payload":${JSON.stringify(m.payload)},"encoding":"${m.encoding}","readings":[`;
  let seq = firstSeq;
  for (let i = 0; i < m.readings.length; i++) {
    const r = m.readings[i]!;
    out += `${i === 0 ? "" : ","}{"seq":${seq++},"sensorId":${JSON.stringify(r.sensorId)},"metric":${JSON.stringify(r.metric)},"value":${JSON.stringify(r.value)},"unit":${r.unit == null ? "null" : JSON.stringify(r.unit)},"ts":${r.ts}}`;
  }
  return `${out}]}`;
}

export function decodePayload(m: Pick<WireMessage, "payload" | "encoding">): Buffer {
  return Buffer.from(m.payload, m.encoding === "base64" ? "base64" : "utf8");
}
