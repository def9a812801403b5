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
 * The wire formats a gateway writes (shared/src/batch.ts says what each holds): 1, every
 * message and reading a JSON object; 2, the same fields as JSON arrays in a fixed order.
 */
export type WireFormat = 1 | 2;

/**
 * A wire message as JSON text starts with `wireHead(source, format)`, then its receive time and
 * the payload. The gateway writes the rest straight into its outbox buffer
 * (gateway/src/outbox/wire-bytes.ts), byte for byte what `encodeWireMessage` writes.
 */
export function wireHead(source: string, format: WireFormat = 1): string {
  return format === 2 ? `[${JSON.stringify(source)},` : `{"source":${JSON.stringify(source)},"receivedAt":`;
}

/**
 * One wire message as JSON, its readings' seqs from `firstSeq` on: exactly what
 * JSON.stringify gives for a WireMessage (same keys, same order) in format 1, and for its
 * fields as arrays (`[source, receivedAt, payload, encoding, [[seq, sensorId, metric, value,
 * unit, ts, rxWindow?], ...]]`) in format 2.
 */
export function encodeWireMessage(m: WireMessageInput, firstSeq: number, format: WireFormat = 1): string {
  const compact = format === 2;
  let out = compact
    ? `${wireHead(m.source, 2)}${m.receivedAt},${JSON.stringify(m.payload)},"${m.encoding}",[`
    : `${wireHead(m.source)}${m.receivedAt},"payload":${JSON.stringify(m.payload)},` +
      `"encoding":"${m.encoding}","readings":[`;
  let seq = firstSeq;
  for (let i = 0; i < m.readings.length; i++) {
    const r = m.readings[i]!;
    const unit = r.unit == null ? "null" : JSON.stringify(r.unit);
    const sep = i === 0 ? "" : ",";
    if (compact) {
      const rxWindow = r.rxWindow === undefined ? "" : `,${r.rxWindow}`;
      out +=
        `${sep}[${seq++},${JSON.stringify(r.sensorId)},${JSON.stringify(r.metric)},` +
        `${JSON.stringify(r.value)},${unit},${r.ts}${rxWindow}]`;
      continue;
    }
    const rxWindow = r.rxWindow === undefined ? "" : `,"rxWindow":${r.rxWindow}`;
    out +=
      `${sep}{"seq":${seq++},"sensorId":${JSON.stringify(r.sensorId)},` +
      `"metric":${JSON.stringify(r.metric)},"value":${JSON.stringify(r.value)},"unit":${unit},"ts":${r.ts}${rxWindow}}`;
  }
  return compact ? `${out}]]` : `${out}]}`;
}
