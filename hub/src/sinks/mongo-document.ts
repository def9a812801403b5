import { createHash } from "node:crypto";
import { decodePayload, type WireMessage } from "@datalab/shared";
import type { SinkBatch } from "./types";

/**
 * Pure mapping from a wire message to the document stored in MongoDB's `messages`
 * collection. No driver import here: the module stays loadable (and unit-tested) where
 * MongoDB is not configured.
 */

export interface ReadingDocument {
  seq: number;
  sensorId: string;
  metric: string;
  value: number;
  unit: string | null;
  ts: Date;
}

export type PayloadType = "json" | "text" | "binary";

export interface MessageDocument {
  /** `${gatewayId}:${instance}:${firstSeq}`: the same message maps to the same _id however it was batched. */
  _id: string;
  gatewayId: string;
  instance: string;
  firstSeq: number | null;
  lastSeq: number | null;
  source: string;
  receivedAt: Date;
  /** Parsed JSON where the payload was JSON the database can hold; else the text; else the bytes. */
  payload: unknown;
  payloadType: PayloadType;
  /** Why a JSON payload was kept as text. */
  payloadNote?: string;
  readings: ReadingDocument[];
  /** The batch that first carried this message (a later re-batching does not rewrite it). */
  batch: { firstSeq: number; lastSeq: number; sentAt: Date };
}

/**
 * The document id of one message. Each message's readings carry seqs the gateway never
 * reuses within an instance, so the first of them names the message. The outbox cannot
 * hold a message without readings; should one arrive anyway, a hash of its content keeps
 * the id deterministic across redeliveries.
 */
export function messageId(gatewayId: string, instance: string, m: WireMessage): string {
  if (m.readings.length > 0) {
    let first = m.readings[0]!.seq;
    for (const r of m.readings) if (r.seq < first) first = r.seq;
    return `${gatewayId}:${instance}:${first}`;
  }
  const h = createHash("sha256")
    .update(`${m.receivedAt}\n${m.source}\n${m.encoding}\n${m.payload}`)
    .digest("hex")
    .slice(0, 32);
  return `${gatewayId}:${instance}:nr-${h}`;
}

export function messageDocuments(b: SinkBatch): MessageDocument[] {
  const { batch, gatewayId } = b;
  const batchRef = { firstSeq: batch.firstSeq, lastSeq: batch.lastSeq, sentAt: new Date(batch.sentAt) };
  return batch.messages.map((m) => {
    let firstSeq: number | null = null;
    let lastSeq: number | null = null;
    const readings: ReadingDocument[] = m.readings.map((r) => {
      if (firstSeq === null || r.seq < firstSeq) firstSeq = r.seq;
      if (lastSeq === null || r.seq > lastSeq) lastSeq = r.seq;
      return { seq: r.seq, sensorId: r.sensorId, metric: r.metric, value: r.value, unit: r.unit, ts: new Date(r.ts) };
    });
    const p = payloadValue(decodePayload(m));
    return {
      _id: messageId(gatewayId, batch.instance, m),
      gatewayId,
      instance: batch.instance,
      firstSeq,
      lastSeq,
      source: m.source,
      receivedAt: new Date(m.receivedAt),
      payload: p.payload,
      payloadType: p.type,
      ...(p.note ? { payloadNote: p.note } : {}),
      readings,
      batch: batchRef,
    };
  });
}

/** Deepest nesting accepted as a document. MongoDB's own limit is 100 levels for the whole document. */
export const MAX_PAYLOAD_DEPTH = 64;

/**
 * The payload as the database should hold it: parsed JSON where it was JSON, the text where
 * it was text, the raw bytes (a Buffer, stored as BSON binary) otherwise.
 */
export function payloadValue(raw: Buffer): { payload: unknown; type: PayloadType; note?: string } {
  const text = raw.toString("utf8");
  const isText = Buffer.byteLength(text, "utf8") === raw.byteLength && !text.includes("\uFFFD");
  // FerretDB (on Postgres jsonb) cannot store U+0000 in any string; MongoDB can, but one
  // rule for both keeps a message stored the same way whatever the server: bytes.
  if (!isText || text.includes("\u0000")) return { payload: raw, type: "binary" };
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { payload: text, type: "text" };
    }
    const problem = documentProblem(parsed, 0);
    return problem
      ? { payload: text, type: "text", note: `JSON kept as text: ${problem}` }
      : { payload: parsed, type: "json" };
  }
  return { payload: text, type: "text" };
}

/**
 * What would make a server refuse this value as (part of) a document, or undefined.
 * Field names starting with `$` or holding `.` are refused by FerretDB and by MongoDB before
 * 5.0; arrays directly inside arrays are refused by FerretDB 1.x (MongoDB takes them). The
 * conservative rule is applied everywhere so the stored shape does not depend on the server.
 */
export function documentProblem(v: unknown, depth: number): string | undefined {
  if (depth > MAX_PAYLOAD_DEPTH) return `nested deeper than ${MAX_PAYLOAD_DEPTH} levels`;
  if (typeof v === "string") return v.includes("\u0000") ? "a string holds U+0000" : undefined;
  if (v === null || typeof v !== "object") return undefined;
  if (Array.isArray(v)) {
    for (const item of v) {
      if (Array.isArray(item)) return "an array directly inside an array";
      const p = documentProblem(item, depth + 1);
      if (p) return p;
    }
    return undefined;
  }
  for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
    if (k.startsWith("$")) return `field name "${k.slice(0, 40)}" starts with $`;
    if (k.includes(".")) return `field name "${k.slice(0, 40)}" contains a dot`;
    if (k.includes("\u0000")) return "a field name holds U+0000";
    const p = documentProblem(item, depth + 1);
    if (p) return p;
  }
  return undefined;
}
