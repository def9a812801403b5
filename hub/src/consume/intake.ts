// The hub's one intake of a batch, whichever way it came (a JetStream consumer or the
// in-process uplink): the same decode, the same trust in the subject over the payload, the
// same write metrics.
import {
  BatchError,
  batchReadings,
  decodeBatchParts,
  errorMessage,
  type BatchLimits,
  type RefusedMessage,
  type Subjects,
} from "@datalab/shared";
import type { Sink, SinkBatch, WriteResult } from "../sinks/types";
import type { Part } from "./isolate";
import type { HubMetrics } from "./metrics";

/** A batch as it arrived: its subject and bytes, and its place in the stream. */
export interface Arrival {
  subject: string;
  data: Uint8Array;
  seq: number;
  /** Set by JetStream; the in-process path has no redeliveries to tell. */
  redelivered?: boolean;
}

/** A decoded batch: what goes to the sinks, its messages by position, and those set aside. */
export interface Decoded {
  sb: SinkBatch;
  parts: Part[];
  refused: RefusedMessage[];
}

/** A batch that cannot be decoded at all; the same bytes fail the same way every time. */
export interface Undecodable {
  reason: string;
  error: string;
}

export function decodeArrival(a: Arrival, subj: Subjects, limits: BatchLimits): Decoded | Undecodable {
  try {
    const gatewayId = subj.gatewayOf(a.subject);
    if (!gatewayId) throw new BatchError("bad_subject", `subject ${a.subject} does not name a gateway`);
    // Limits (bytes, message count) are checked before parsing/validating. A message that
    // breaks the contract is set aside alone; the rest of its batch is written.
    const { batch, indices, refused } = decodeBatchParts(a.data, limits);
    // Trust the subject (NATS permissions can tie it to one gateway's credentials), not the payload.
    if (batch.gatewayId !== gatewayId) {
      throw new BatchError(
        "gateway_mismatch",
        `batch claims gateway "${batch.gatewayId}" but came on the subject of "${gatewayId}"`,
      );
    }
    const sb: SinkBatch = {
      gatewayId,
      batch,
      readings: batchReadings(batch, gatewayId),
      streamSeq: a.seq,
      bytes: a.data.byteLength,
      ...(a.redelivered !== undefined ? { redelivered: a.redelivered } : {}),
    };
    return { sb, parts: batch.messages.map((message, i) => ({ index: indices[i]!, message })), refused };
  } catch (err) {
    return { reason: err instanceof BatchError ? err.reason : "decode_failed", error: errorMessage(err) };
  }
}

/** One write to a sink; its time is observed only when it succeeds. */
export async function timedWrite(sink: Sink, b: SinkBatch, metrics: HubMetrics): Promise<WriteResult> {
  const end = metrics.writeSeconds.startTimer({ sink: sink.name });
  const res = await sink.write(b);
  end();
  return res;
}

/** A batch a sink committed: `readings` written, of which `duplicates` were already there. */
export function countWritten(metrics: HubMetrics, sink: string, readings: number, duplicates: number): void {
  metrics.readingsWritten.inc({ sink }, readings);
  if (duplicates > 0) metrics.duplicates.inc({ sink }, duplicates);
  metrics.batchesWritten.inc({ sink });
}
