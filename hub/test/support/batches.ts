import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  batchMsgId,
  batchReadings,
  BATCH_FORMAT_VERSION,
  encodeBatch,
  type Batch,
  type Subjects,
  type WireMessage,
} from "@datalab/shared";
import type { SinkBatch } from "../../src/sinks/types";

/**
 * Wire batches built directly (hub tests do not depend on the gateway package), shaped like
 * the gateway's: messages carrying their payload as received plus decoded readings, seqs
 * strictly increasing per instance.
 */
export interface TestBatch {
  batch: Batch;
  data: Uint8Array;
  msgId: string;
  readings: number;
}

export interface BatchSpec {
  gatewayId: string;
  instance: string;
  firstSeq: number;
  messages: number;
  /** Metrics per message (readings per message). */
  metricsPerMessage?: number;
  sensors?: number;
  receivedAt?: number;
  /** Sensor ids are `${sensorPrefix}${n}` (default "s"). */
  sensorPrefix?: string;
  /** Overrides applied to each message (e.g. a source Postgres refuses). */
  message?: Partial<WireMessage>;
  /**
   * Readings carry the sensor's own time (one measurement per sensor, metric and ts, across
   * gateways). Default: stamped on receipt with no fold window, so that batches of different
   * gateways or instances never share a measurement unless a test says so.
   */
  sensorTime?: boolean;
  /** The fold window of receipt-stamped readings (default 0). */
  rxWindow?: number;
}

const METRICS = ["temperature", "humidity", "battery", "light"] as const;
const UNITS: Record<string, string> = { temperature: "Cel", humidity: "%RH", battery: "V", light: "lx" };

export function makeBatch(s: BatchSpec): TestBatch {
  const per = s.metricsPerMessage ?? 2;
  const sensors = s.sensors ?? 5;
  const t0 = s.receivedAt ?? 1_764_270_000_000;
  let seq = s.firstSeq;
  const messages: WireMessage[] = [];
  for (let i = 0; i < s.messages; i++) {
    // Everything in a message is a function of its first seq, so two batches that overlap
    // (a gateway re-forming batches after a restart) carry identical copies of shared messages.
    const sensor = `${s.sensorPrefix ?? "s"}${Math.floor(seq / per) % sensors}`;
    const receivedAt = t0 + seq;
    const values: Record<string, number> = {};
    const readings = [];
    for (let k = 0; k < per; k++) {
      const metric = METRICS[k % METRICS.length]!;
      const value = Math.round(((seq * 7) % 400) + k) / 10;
      values[metric] = value;
      readings.push({
        seq: seq++,
        sensorId: sensor,
        metric,
        value,
        unit: UNITS[metric] ?? null,
        ts: receivedAt,
        ...(s.sensorTime ? {} : { rxWindow: s.rxWindow ?? 0 }),
      });
    }
    messages.push({
      source: "mqtt:sensors",
      receivedAt,
      payload: JSON.stringify({ sensor, ...values }),
      encoding: "utf8",
      readings,
      ...s.message,
    });
  }
  const batch: Batch = {
    v: BATCH_FORMAT_VERSION,
    gatewayId: s.gatewayId,
    instance: s.instance,
    firstSeq: s.firstSeq,
    lastSeq: seq - 1,
    sentAt: t0 + seq,
    messages,
  };
  return { batch, data: encodeBatch(batch), msgId: batchMsgId(batch), readings: seq - s.firstSeq };
}

/** `count` consecutive batches of one gateway instance. */
export function makeBatches(
  gatewayId: string,
  instance: string,
  count: number,
  messagesPerBatch: number,
  metricsPerMessage = 2,
  startSeq = 1,
  sensorPrefix = "s",
): TestBatch[] {
  const out: TestBatch[] = [];
  let seq = startSeq;
  for (let i = 0; i < count; i++) {
    const b = makeBatch({
      gatewayId,
      instance,
      firstSeq: seq,
      messages: messagesPerBatch,
      metricsPerMessage,
      sensorPrefix,
    });
    out.push(b);
    seq = b.batch.lastSeq + 1;
  }
  return out;
}

/**
 * Publish batches as a gateway does: wait for each PubAck, and on failure retry the same
 * bytes under the same Nats-Msg-Id (JetStream drops the copy if the first try landed).
 */
export async function publishBatches(
  nc: NatsConnection,
  subj: Subjects,
  batches: readonly TestBatch[],
  opts: { subject?: string; retryForMs?: number } = {},
): Promise<void> {
  const js = jetstream(nc, { timeout: 3_000 });
  for (const b of batches) {
    const subject = opts.subject ?? subj.readings(b.batch.gatewayId);
    const deadline = Date.now() + (opts.retryForMs ?? 30_000);
    for (;;) {
      try {
        await js.publish(subject, b.data, { msgID: b.msgId });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}

export function totalReadings(batches: readonly TestBatch[]): number {
  return batches.reduce((a, b) => a + b.readings, 0);
}

export function totalMessages(batches: readonly TestBatch[]): number {
  return batches.reduce((a, b) => a + b.batch.messages.length, 0);
}

/** What the consumer hands a sink for this batch. */
export function sinkBatch(b: TestBatch, streamSeq = 1): SinkBatch {
  return {
    gatewayId: b.batch.gatewayId,
    batch: b.batch,
    readings: batchReadings(b.batch, b.batch.gatewayId),
    streamSeq,
    bytes: b.data.byteLength,
  };
}
