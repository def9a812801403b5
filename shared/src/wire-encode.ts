/** What the wire encoder needs of a message's readings: all but their seqs. */
export type WireReadingInput = {
  sensorId: string;
  metric: string;
  value: number;
  unit?: string | null | undefined;
  ts: number;
  rxWindow?: number | undefined;
};

/** What the wire encoder needs of a message. */
export interface WireMessageInput {
  source: string;
  receivedAt: number;
  payload: string;
  encoding: "utf8" | "base64";
  readings: readonly WireReadingInput[];
}

/**
 * Where a reading's seq goes in `wireTail`: JSON text never holds a raw U+0000 (JSON.stringify
 * escapes it in strings), so the mark cannot be mistaken for anything else.
 */
export const SEQ_MARK = "\u0000";

/**
 * A wire message as JSON text is `wireHead(source)`, its receive time, `,"payload":`, its
 * payload as a JSON string, then `wireTail(...)` with each SEQ_MARK replaced by a seq: exactly
 * what JSON.stringify gives for a WireMessage (same keys, same order). In parts because the
 * gateway encodes a message when it arrives, before the commit hands out its seqs, and writes
 * the payload's bytes straight into the outbox's buffer.
 */
export function wireHead(source: string): string {
  return `{"source":${JSON.stringify(source)},"receivedAt":`;
}

export function wireTail(encoding: "utf8" | "base64", readings: readonly WireReadingInput[]): string {
  let out = `,"encoding":"${encoding}","readings":[`;
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i]!;
    const unit = r.unit == null ? "null" : JSON.stringify(r.unit);
    const rxWindow = r.rxWindow === undefined ? "" : `,"rxWindow":${r.rxWindow}`;
    out +=
      `${i === 0 ? "" : ","}{"seq":${SEQ_MARK},"sensorId":${JSON.stringify(r.sensorId)},` +
      `"metric":${JSON.stringify(r.metric)},"value":${JSON.stringify(r.value)},"unit":${unit},"ts":${r.ts}${rxWindow}}`;
  }
  return `${out}]}`;
}

/** One wire message as JSON, its readings' seqs from `firstSeq` on. */
export function encodeWireMessage(m: WireMessageInput, firstSeq: number): string {
  let seq = firstSeq;
  const tail = wireTail(m.encoding, m.readings).replace(/\u0000/g, () => String(seq++));
  return `${wireHead(m.source)}${m.receivedAt},"payload":${JSON.stringify(m.payload)}${tail}`;
}
