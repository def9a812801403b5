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
  /** The gateway of the latest reading (`lastSeen`). */
  lastGatewayId: string;
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
      s = {
        sensorId: r.sensorId,
        lastGatewayId: b.gatewayId,
        firstSeen: r.receivedAt,
        lastSeen: r.receivedAt,
        lastValues: Object.create(null) as Record<string, LastValue>,
      };
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
  const sensors = [...bySensor.values()].sort(bySensorId);
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

const bySensorId = (a: SensorSummary, c: SensorSummary) =>
  a.sensorId < c.sensorId ? -1 : a.sensorId > c.sensorId ? 1 : 0;

/** The SQL merge's rule in JS: does `a` replace `b` as a metric's newest value? */
function newer(a: LastValue, b: LastValue): boolean {
  return a.ts > b.ts || (a.ts === b.ts && a.seq >= b.seq);
}

/**
 * The summaries of several batches folded into one row per sensor and one per gateway, with
 * the same rules the upserts apply in SQL (earliest first seen, latest last seen, newest
 * value per metric, the gateway's later batch). Writing the fold once equals writing each
 * summary in turn: the merges are commutative and idempotent.
 */
export class SummaryFold {
  private readonly sensorMap = new Map<string, SensorSummary>();
  private readonly gatewayMap = new Map<string, GatewaySummary>();

  add(s: BatchSummary): void {
    for (const x of s.sensors) {
      const have = this.sensorMap.get(x.sensorId);
      if (!have) {
        this.sensorMap.set(x.sensorId, { ...x, lastValues: { ...x.lastValues } });
        continue;
      }
      if (x.firstSeen < have.firstSeen) have.firstSeen = x.firstSeen;
      if (x.lastSeen >= have.lastSeen) {
        have.lastSeen = x.lastSeen;
        have.lastGatewayId = x.lastGatewayId;
      }
      for (const [metric, v] of Object.entries(x.lastValues)) {
        const prev = have.lastValues[metric];
        if (!prev || newer(v, prev)) have.lastValues[metric] = v;
      }
    }
    const g = s.gateway;
    const have = this.gatewayMap.get(g.gatewayId);
    if (!have || g.sentAt > have.sentAt || (g.sentAt === have.sentAt && g.lastSeq >= have.lastSeq))
      this.gatewayMap.set(g.gatewayId, g);
  }

  /** Sorted by id, so that every writer locks rows in the same order (no deadlocks). */
  sensors(): SensorSummary[] {
    return [...this.sensorMap.values()].sort(bySensorId);
  }

  gateways(): GatewaySummary[] {
    return [...this.gatewayMap.values()].sort((a, c) =>
      a.gatewayId < c.gatewayId ? -1 : a.gatewayId > c.gatewayId ? 1 : 0,
    );
  }
}
