import type pg from "pg";
import type { Queryable } from "./postgres-readings";
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

/** The folded summary of the batches of one transaction: the sensors, then each gateway. */
export async function upsertSummary(client: pg.PoolClient, fold: SummaryFold): Promise<void> {
  await upsertSensors(client, fold.sensors());
  for (const g of fold.gateways()) await upsertGateway(client, g);
}

/**
 * One statement for all the batch's sensors. The merge keeps, per metric, the entry with the
 * newer sensor time, so batches applied out of order (several hub processes, redeliveries)
 * converge on the same row. Rows are fed in sensor-id order: see summarizeBatch.
 */
export async function upsertSensors(client: Queryable, sensors: readonly SensorSummary[]): Promise<void> {
  if (sensors.length === 0) return;
  const ids = sensors.map((s) => s.sensorId);
  const gateways = sensors.map((s) => s.lastGatewayId);
  const first = sensors.map((s) => s.firstSeen);
  const last = sensors.map((s) => s.lastSeen);
  const values = sensors.map((s) => JSON.stringify(s.lastValues));
  await client.query(
    `INSERT INTO sensors AS s (sensor_id, first_seen, last_seen, last_gateway_id, last_values)
     SELECT sid, to_timestamp(f / 1000.0), to_timestamp(l / 1000.0), g, lv::jsonb
       FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::text[])
            WITH ORDINALITY AS x(sid, g, f, l, lv, ord)
      ORDER BY ord
     ON CONFLICT (sensor_id) DO UPDATE SET
       first_seen = LEAST(s.first_seen, excluded.first_seen),
       last_seen = GREATEST(s.last_seen, excluded.last_seen),
       last_gateway_id = CASE WHEN excluded.last_seen >= s.last_seen
                              THEN excluded.last_gateway_id ELSE s.last_gateway_id END,
       last_values = s.last_values || COALESCE((
         SELECT jsonb_object_agg(n.key, n.value)
           FROM jsonb_each(excluded.last_values) AS n
          WHERE NOT (s.last_values ? n.key)
             OR ((n.value->>'ts')::bigint, (n.value->>'seq')::bigint)
                >= ((s.last_values->n.key->>'ts')::bigint, COALESCE((s.last_values->n.key->>'seq')::bigint, 0))
       ), '{}'::jsonb)`,
    [ids, gateways, first, last, values],
  );
}

/** The batch being merged is the gateway's newest so far: the "last batch" fields take its values. */
const NEWER = "(excluded.last_batch_sent_at, excluded.last_batch_seq) >= (g.last_batch_sent_at, g.last_batch_seq)";

/** One statement: first/last seen merge with LEAST/GREATEST, the "last batch" fields only move forward. */
export async function upsertGateway(client: Queryable, g: GatewaySummary): Promise<void> {
  await client.query(
    `INSERT INTO gateways AS g (gateway_id, first_batch_at, last_batch_at, last_batch_sent_at, last_instance,
                                last_batch_first_seq, last_batch_seq, last_batch_readings, last_batch_messages,
                                last_batch_bytes)
     VALUES ($1, now(), now(), to_timestamp($2 / 1000.0), $3, $4, $5, $6, $7, $8)
     ON CONFLICT (gateway_id) DO UPDATE SET
       first_batch_at = LEAST(g.first_batch_at, excluded.first_batch_at),
       last_batch_at = GREATEST(g.last_batch_at, excluded.last_batch_at),
       last_batch_sent_at = GREATEST(g.last_batch_sent_at, excluded.last_batch_sent_at),
       last_instance = CASE WHEN ${NEWER} THEN excluded.last_instance ELSE g.last_instance END,
       last_batch_first_seq = CASE WHEN ${NEWER} THEN excluded.last_batch_first_seq ELSE g.last_batch_first_seq END,
       last_batch_seq = CASE WHEN ${NEWER} THEN excluded.last_batch_seq ELSE g.last_batch_seq END,
       last_batch_readings = CASE WHEN ${NEWER} THEN excluded.last_batch_readings ELSE g.last_batch_readings END,
       last_batch_messages = CASE WHEN ${NEWER} THEN excluded.last_batch_messages ELSE g.last_batch_messages END,
       last_batch_bytes = CASE WHEN ${NEWER} THEN excluded.last_batch_bytes ELSE g.last_batch_bytes END`,
    [g.gatewayId, g.sentAt, g.instance, g.firstSeq, g.lastSeq, g.readings, g.messages, g.bytes],
  );
}
