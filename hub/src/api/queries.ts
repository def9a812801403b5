import type pg from "pg";

/**
 * The SQL behind the query API. Times go in and come out as epoch milliseconds; every list
 * is fetched with LIMIT n + 1 so an answer can say it was cut (`truncated`) without a count(*).
 * Aggregation happens in PostgreSQL (date_bin), so a month of readings crosses the wire as
 * a few hundred buckets, not millions of rows.
 */

type Db = Pick<pg.Pool, "query">;

/** Epoch ms of a timestamptz column, as a JS number. */
const ms = (col: string) => `round(extract(epoch from ${col}) * 1000)::float8`;
const at = (param: string) => `to_timestamp(${param}::float8 / 1000.0)`;
/**
 * Bucket start: date_bin with the Unix epoch as origin, so a bucket of b ms starts at
 * floor(t / b) * b whatever the range asked for, and two queries agree on boundaries.
 */
const bucketOf = (param: string) =>
  `date_bin(${param}::bigint * interval '1 millisecond', ts, timestamptz '1970-01-01 00:00:00+00')`;

export interface LastValue {
  value: number;
  unit: string | null;
  ts: number;
}

export interface SensorInfo {
  sensorId: string;
  firstSeen: number;
  lastSeen: number;
  gatewayId: string;
  /** Newest value of each metric the sensor reported, by metric name. */
  metrics: Record<string, LastValue>;
}

export async function listSensors(
  db: Db,
  q: { ids?: string[]; prefix?: string; limit: number },
): Promise<{ sensors: SensorInfo[]; truncated: boolean }> {
  const r = await db.query<{
    sensor_id: string;
    first_seen: number;
    last_seen: number;
    gw: string;
    last_values: Record<string, { value: number; unit: string | null; ts: number }>;
  }>(
    `SELECT sensor_id, ${ms("first_seen")} AS first_seen, ${ms("last_seen")} AS last_seen,
            last_gateway_id AS gw, last_values
       FROM sensors
      WHERE ($1::text[] IS NULL OR sensor_id = ANY($1::text[]))
        AND ($2::text IS NULL OR starts_with(sensor_id, $2::text))
      ORDER BY sensor_id
      LIMIT $3`,
    [q.ids && q.ids.length > 0 ? q.ids : null, q.prefix ?? null, q.limit + 1],
  );
  const rows = r.rows.slice(0, q.limit);
  return {
    truncated: r.rows.length > q.limit,
    sensors: rows.map((x) => {
      const metrics: Record<string, LastValue> = {};
      for (const [name, v] of Object.entries(x.last_values ?? {}))
        metrics[name] = { value: v.value, unit: v.unit ?? null, ts: Number(v.ts) };
      return { sensorId: x.sensor_id, firstSeen: x.first_seen, lastSeen: x.last_seen, gatewayId: x.gw, metrics };
    }),
  };
}

export interface Sparkline {
  sensorId: string;
  metric: string;
  ts: number[];
  avg: number[];
}

/** Averages per bucket for many (sensor, metric) pairs at once: one query for the whole sensor list. */
export async function sparklines(
  db: Db,
  q: { from: number; to: number; bucketMs: number; sensors?: string[]; metric?: string; maxRows: number },
): Promise<{ series: Sparkline[]; truncated: boolean }> {
  const r = await db.query<[string, string, number, number]>({
    text: `SELECT sensor_id, metric, ${ms("b")}, av FROM (
             SELECT sensor_id, metric, ${bucketOf("$3")} AS b, avg(value) AS av
               FROM readings
              WHERE ts >= ${at("$1")} AND ts < ${at("$2")}
                AND ($4::text[] IS NULL OR sensor_id = ANY($4::text[]))
                AND ($5::text IS NULL OR metric = $5::text)
              GROUP BY 1, 2, 3) x
           ORDER BY 1, 2, b
           LIMIT $6`,
    values: [
      q.from,
      q.to,
      q.bucketMs,
      q.sensors && q.sensors.length > 0 ? q.sensors : null,
      q.metric ?? null,
      q.maxRows + 1,
    ],
    rowMode: "array",
  });
  const truncated = r.rows.length > q.maxRows;
  const series: Sparkline[] = [];
  let cur: Sparkline | undefined;
  for (const [sensorId, metric, ts, avg] of r.rows.slice(0, q.maxRows)) {
    if (!cur || cur.sensorId !== sensorId || cur.metric !== metric) {
      cur = { sensorId, metric, ts: [], avg: [] };
      series.push(cur);
    }
    cur.ts.push(ts);
    cur.avg.push(avg);
  }
  return { series, truncated };
}

export interface GatewayInfo {
  gatewayId: string;
  /** A batch delivered (or, once gateways report, a report received) within the online window. */
  online: boolean;
  firstBatchAt: number;
  lastBatchAt: number;
  /** Gateway clock when it sent its newest batch; lastBatchAt - this is the delivery lag. */
  lastBatchSentAt: number;
  deliveryLagMs: number;
  instance: string;
  lastBatch: { firstSeq: number; lastSeq: number; readings: number; messages: number; bytes: number };
  /** Sensors whose newest reading came through this gateway. */
  sensors: number;
  /** From the gateway's own health report (hub/src/consume/reports.ts); null until its first. */
  backlog: { readings: number | null; bytes: number | null; oldestAt: number | null };
  health: string | null;
  quarantine: Record<string, number> | null;
  reportedAt: number | null;
}

export async function listGateways(
  db: Db,
  q: { onlineSeconds: number; limit: number },
): Promise<{ gateways: GatewayInfo[]; truncated: boolean; now: number }> {
  const r = await db.query<{
    gateway_id: string;
    online: boolean;
    first_batch_at: number;
    last_batch_at: number;
    last_batch_sent_at: number;
    last_instance: string;
    first_seq: number;
    last_seq: number;
    readings: number;
    messages: number;
    bytes: number;
    sensors: number;
    backlog_readings: number | null;
    backlog_bytes: number | null;
    oldest_backlog_at: number | null;
    health: string | null;
    health_detail: Record<string, unknown> | null;
    reported_at: number | null;
    now: number;
  }>(
    `SELECT g.gateway_id,
            GREATEST(g.last_batch_at, g.reported_at) > now() - make_interval(secs => $1) AS online,
            ${ms("g.first_batch_at")} AS first_batch_at, ${ms("g.last_batch_at")} AS last_batch_at,
            ${ms("g.last_batch_sent_at")} AS last_batch_sent_at, g.last_instance,
            g.last_batch_first_seq::float8 AS first_seq, g.last_batch_seq::float8 AS last_seq,
            g.last_batch_readings AS readings, g.last_batch_messages AS messages, g.last_batch_bytes AS bytes,
            (SELECT count(*)::int FROM sensors s WHERE s.last_gateway_id = g.gateway_id) AS sensors,
            g.backlog_readings::float8 AS backlog_readings, g.backlog_bytes::float8 AS backlog_bytes,
            ${ms("g.oldest_backlog_at")} AS oldest_backlog_at, g.health, g.health_detail,
            ${ms("g.reported_at")} AS reported_at,
            ${ms("now()")} AS now
       FROM gateways g
      ORDER BY g.gateway_id
      LIMIT $2`,
    [q.onlineSeconds, q.limit + 1],
  );
  const now = r.rows[0]?.now ?? Date.now();
  return {
    now,
    truncated: r.rows.length > q.limit,
    gateways: r.rows.slice(0, q.limit).map((g) => ({
      gatewayId: g.gateway_id,
      online: g.online,
      firstBatchAt: g.first_batch_at,
      lastBatchAt: g.last_batch_at,
      lastBatchSentAt: g.last_batch_sent_at,
      deliveryLagMs: Math.max(0, g.last_batch_at - g.last_batch_sent_at),
      instance: g.last_instance,
      lastBatch: {
        firstSeq: g.first_seq,
        lastSeq: g.last_seq,
        readings: g.readings,
        messages: g.messages,
        bytes: g.bytes,
      },
      sensors: g.sensors,
      backlog: { readings: g.backlog_readings, bytes: g.backlog_bytes, oldestAt: g.oldest_backlog_at },
      health: g.health,
      quarantine: quarantineCounts(g.health_detail),
      reportedAt: g.reported_at,
    })),
  };
}

/** Quarantine counts by reason, if the gateway's report holds them as `{"quarantine": {"reason": n}}`. */
function quarantineCounts(detail: Record<string, unknown> | null): Record<string, number> | null {
  const q = detail?.quarantine;
  if (!q || typeof q !== "object" || Array.isArray(q)) return null;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(q)) if (typeof v === "number" && Number.isFinite(v)) out[k] = v;
  return out;
}
