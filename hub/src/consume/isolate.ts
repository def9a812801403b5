import { batchReadings, errorMessage, type WireMessage } from "@datalab/shared";
import { SinkUnavailableError, type Sink, type SinkBatch } from "../sinks/types";

/** A message of a decoded batch, with its position in the batch as sent. */
export interface Part {
  index: number;
  message: WireMessage;
}

export interface Isolated {
  /** Readings of the messages the sink took (new or already there). */
  written: number;
  duplicates: number;
  /** The messages the sink refused even alone, with its error. */
  refused: { index: number; message: WireMessage; error: string }[];
}

/** The same batch holding only `parts`, marked redelivered so that sinks write it idempotently. */
export function subBatch(b: SinkBatch, parts: readonly Part[]): SinkBatch {
  const batch = { ...b.batch, messages: parts.map((p) => p.message) };
  return { ...b, batch, readings: batchReadings(batch, b.gatewayId), redelivered: true };
}

/**
 * After a healthy sink refused a batch, find the messages it refuses by writing halves of the
 * batch: one bad message among n costs about 2·log2(n) writes, and every other message ends
 * up written. Throws SinkUnavailableError when the sink stops answering meanwhile (nothing is
 * then held against any message).
 */
export async function isolateRefusals(sink: Sink, b: SinkBatch, parts: readonly Part[]): Promise<Isolated> {
  const out: Isolated = { written: 0, duplicates: 0, refused: [] };
  const split = async (group: readonly Part[]): Promise<void> => {
    const mid = Math.ceil(group.length / 2);
    for (const half of [group.slice(0, mid), group.slice(mid)]) if (half.length > 0) await attempt(half);
  };
  const attempt = async (group: readonly Part[]): Promise<void> => {
    const sb = subBatch(b, group);
    try {
      const res = await sink.write(sb);
      out.written += sb.readings.length;
      out.duplicates += res.duplicates;
      return;
    } catch (err) {
      if (!(await sink.healthy())) {
        throw err instanceof SinkUnavailableError
          ? err
          : new SinkUnavailableError(`${sink.name} stopped answering: ${errorMessage(err)}`, { cause: err });
      }
      if (group.length === 1) {
        out.refused.push({ index: group[0]!.index, message: group[0]!.message, error: errorMessage(err) });
        return;
      }
    }
    await split(group);
  };
  await split(parts);
  return out;
}
