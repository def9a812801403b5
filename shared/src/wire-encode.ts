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
 * A wire message as JSON text starts with `wireHead(source)`, then its receive time and
 * `,"payload":`. The gateway writes the rest straight into its outbox buffer
 * (gateway/src/outbox/wire-bytes.ts), byte for byte what `encodeWireMessage` writes.
 */
export function wireHead(source: string): string {
  return `{"source":${JSON.stringify(source)},"receivedAt":`;
}

/**
 * One wire message as JSON, its readings' seqs from `firstSeq` on: exactly what
 * JSON.stringify gives for a WireMessage (same keys, same order).
 */
export function encodeWireMessage(m: WireMessageInput, firstSeq: number): string {
  let out =
    `${wireHead(m.source)}${m.receivedAt},"payload":${JSON.stringify(m.payload)},` +
    `"encoding":"${m.encoding}","readings":[`;
  let seq = firstSeq;
  for (let i = 0; i < m.readings.length; i++) {
    const r = m.readings[i]!;
    const unit = r.unit == null ? "null" : JSON.stringify(r.unit);
    const rxWindow = r.rxWindow === undefined ? "" : `,"rxWindow":${r.rxWindow}`;
    out +=
      `${i === 0 ? "" : ","}{"seq":${seq++},"sensorId":${JSON.stringify(r.sensorId)},` +
      `"metric":${JSON.stringify(r.metric)},"value":${JSON.stringify(r.value)},"unit":${unit},"ts":${r.ts}${rxWindow}}`;
  }
  return `${out}]}`;
}
