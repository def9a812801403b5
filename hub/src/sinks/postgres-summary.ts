import type { SinkBatch } from "./types";

/** The newest value of one metric of one sensor, as kept in `sensors.last_values`. */
export interface LastValue {
  value: number;
  unit: string | null;
  /** Sensor time, epoch ms: the merge in SQL keeps the entry with the larger `ts`. */
  ts: number;
  seq: number;
}

export interface SensorSummary {
  sensorId: string;
  /** Earliest and latest receive time (epoch ms) of this sensor's readings in the batch. */
  firstSeen: number;
  lastSeen: number;
  lastValues: Record<string, LastValue>;
}

export interface GatewaySummary {
  gatewayId: string;
  instance: string;
  firstSeq: number;
  lastSeq: number;
  sentAt: number;
  readings: number;
  messages: number;
  bytes: number;
}

export interface BatchSummary {
  sensors: SensorSummary[];
  gateway: GatewaySummary;
}

/**
 * Fold a batch into one row per sensor and one row for its gateway, in JS, so the
 * transaction runs a single cheap upsert for each table however many readings it holds.
 * Sensors come out sorted by id: every transaction then locks `sensors` rows in the same
 * order, and concurrent batches touching the same sensors cannot deadlock.
 */
export function summarizeBatch(b: SinkBatch): BatchSummary {
  const bySensor = new Map<string, SensorSummary>();
  for (const r of b.readings) {
    let s = bySensor.get(r.sensorId);
    if (!s) {
      s = { sensorId: r.sensorId, firstSeen: r.receivedAt, lastSeen: r.receivedAt, lastValues: Object.create(null) as Record<string, LastValue> };
      bySensor.set(r.sensorId, s);
    }
    if (r.receivedAt < s.firstSeen) s.firstSeen = r.receivedAt;
    if (r.receivedAt > s.lastSeen) s.lastSeen = r.receivedAt;
    const prev = s.lastValues[r.metric];
    // Newest by sensor time; on a tie the later seq wins (it was received later).
    if (!prev || r.ts > prev.ts || (r.ts === prev.ts && r.seq > prev.seq)) {
      s.lastValues[r.metric] = { value: r.value, unit: r.unit, ts: r.ts, seq: r.seq };
    }
  }
  const sensors = [...bySensor.values()].sort((a, c) => (a.sensorId < c.sensorId ? -1 : a.sensorId > c.sensorId ? 1 : 0));
  return {
    sensors,
    gateway: {
      gatewayId: b.gatewayId,
      instance: b.batch.instance,
      firstSeq: b.batch.firstSeq,
      lastSeq: b.batch.lastSeq,
      sentAt: b.batch.sentAt,
      readings: b.readings.length,
      messages: b.batch.messages.length,
      bytes: b.bytes,
    },
  };
}
