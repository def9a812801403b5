/** What the wire encoder needs of a message: its readings without their seqs. */
export interface WireMessageInput {
  source: string;
  receivedAt: number;
  payload: string;
  encoding: "utf8" | "base64";
  readings: readonly {
    sensorId: string;
    metric: string;
    value: number;
    unit?: string | null | undefined;
    ts: number;
    rxWindow?: number | undefined;
  }[];
}

/**
 * One wire message as JSON text in the pieces around its readings' seqs: the message is
 * `pieces[0] + seq + pieces[1] + seq + … + pieces[n]` for its n readings. The gateway encodes
 * a message when it arrives, before its seqs are handed out at the commit.
 */
export function wireMessagePieces(m: WireMessageInput): string[] {
  const n = m.readings.length;
  const pieces: string[] = new Array(n + 1);
  let open =
    `{"source":${JSON.stringify(m.source)},"receivedAt":${m.receivedAt},` +
    `"payload":${JSON.stringify(m.payload)},"encoding":"${m.encoding}","readings":[`;
  for (let i = 0; i < n; i++) {
    const r = m.readings[i]!;
    pieces[i] = `${open}${i === 0 ? "" : ","}{"seq":`;
    const unit = r.unit == null ? "null" : JSON.stringify(r.unit);
    const rxWindow = r.rxWindow === undefined ? "" : `,"rxWindow":${r.rxWindow}`;
    open =
      `,"sensorId":${JSON.stringify(r.sensorId)},"metric":${JSON.stringify(r.metric)},` +
      `"value":${JSON.stringify(r.value)},"unit":${unit},"ts":${r.ts}${rxWindow}}`;
  }
  pieces[n] = `${open}]}`;
  return pieces;
}

/**
 * One wire message as JSON, exactly what JSON.stringify gives for a WireMessage (same keys,
 * same order), built as a string: building the objects only to stringify them cost more.
 */
export function encodeWireMessage(m: WireMessageInput, firstSeq: number): string {
  const pieces = wireMessagePieces(m);
  let out = pieces[0]!;
  for (let i = 1; i < pieces.length; i++) out += `${firstSeq + i - 1}${pieces[i]}`;
  return out;
}
