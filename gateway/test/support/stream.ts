import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { decodeBatch, type Batch } from "@datalab/shared";

export interface StoredBatch {
  streamSeq: number;
  msgId: string | undefined;
  batch: Batch;
}

/** Every batch stored in `stream`, in stream order (direct gets: fine for a test's few hundred). */
export async function readBatches(jsm: JetStreamManager, stream: string): Promise<StoredBatch[]> {
  const info = await jsm.streams.info(stream);
  const out: StoredBatch[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
    if (!m) continue;
    out.push({
      streamSeq: seq,
      msgId: m.header?.get("Nats-Msg-Id"),
      batch: decodeBatch(m.data, { maxBytes: 8 * 1024 * 1024, maxMessages: 100_000 }),
    });
  }
  return out;
}

export interface SeqCount {
  /** (instance, seq) → how many stored batches carry it. */
  copies: Map<string, number>;
  /** Reading values (the test's counters) → how many times they were stored. */
  values: Map<number, number>;
  readings: number;
}

/** Count every reading in the stored batches by its key and by its value. */
export function countReadings(batches: readonly StoredBatch[]): SeqCount {
  const copies = new Map<string, number>();
  const values = new Map<number, number>();
  let readings = 0;
  for (const { batch } of batches) {
    for (const m of batch.messages) {
      for (const r of m.readings) {
        const key = `${batch.instance}:${r.seq}`;
        copies.set(key, (copies.get(key) ?? 0) + 1);
        values.set(r.value, (values.get(r.value) ?? 0) + 1);
        readings++;
      }
    }
  }
  return { copies, values, readings };
}

/** Readings stored more than once under the same key: must always be empty. */
export function doubled(c: SeqCount): string[] {
  return [...c.copies].filter(([, n]) => n > 1).map(([k]) => k);
}

export async function natsAdmin(
  url: string,
  opts: { user?: string; pass?: string } = {},
): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  const nc = await connect({ servers: url, ...opts });
  return { nc, jsm: await jetstreamManager(nc) };
}

export async function deleteStream(jsm: JetStreamManager, stream: string): Promise<void> {
  await jsm.streams.delete(stream).catch(() => undefined);
}
