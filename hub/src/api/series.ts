import type pg from "pg";

/**
 * Readings of several (sensor, metric) series in one query, raw or per bucket, for
 * `/api/readings` with repeated `sensor=` / `metric=` and for its CSV form. Times are epoch ms.
 */

type Db = Pick<pg.Pool, "query">;

const ms = (col: string) => `round(extract(epoch from ${col}) * 1000)::float8`;
const at = (param: string) => `to_timestamp(${param}::float8 / 1000.0)`;

export interface SeriesKey {
  sensor: string;
  metric: string;
}

export interface SeriesInfo extends SeriesKey {
  unit: string | null;
  /** Recorded time of the series' oldest and newest reading: where its data is, whatever range was asked. */
  first: number;
  last: number;
}

/**
 * An average is a float sum divided by a count: its last digits are rounding noise
 * (28.308249999999944). Twelve significant digits drop the noise and keep far more than
 * any sensor measures.
 */
export function roundAggregate(v: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(12)) : v;
}

/** Unit and extent of each series that has readings at all; two index probes per series. */
export async function seriesInfo(db: Db, keys: readonly SeriesKey[]): Promise<SeriesInfo[]> {
  const r = await db.query<[string, string, string | null, number, number]>({
    text: `SELECT p.s, p.m, u.unit, ${ms("e.first")}, ${ms("e.last")}
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS p(s, m, i)
             CROSS JOIN LATERAL (SELECT unit FROM readings WHERE sensor_id = p.s AND metric = p.m
                                  ORDER BY ts DESC LIMIT 1) u
             CROSS JOIN LATERAL (SELECT min(ts) AS first, max(ts) AS last FROM readings
                                  WHERE sensor_id = p.s AND metric = p.m) e
            ORDER BY p.i`,
    values: [keys.map((k) => k.sensor), keys.map((k) => k.metric)],
    rowMode: "array",
  });
  return r.rows.map(([sensor, metric, unit, first, last]) => ({ sensor, metric, unit, first, last }));
}

export interface RawRows {
  sensor: string[];
  metric: string[];
  ts: number[];
  value: number[];
  receivedAt: number[];
  truncated: boolean;
}

/** Raw readings of several series, ordered by series then time; `limit` counts all series together. */
export async function rawRows(
  db: Db,
  q: { keys: readonly SeriesKey[]; from: number; to: number; limit: number; order: "asc" | "desc" },
): Promise<RawRows> {
  const r = await db.query<[string, string, number, number, number]>({
    text: `SELECT r.sensor_id, r.metric, ${ms("r.ts")}, r.value, ${ms("r.received_at")}
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS p(s, m, i)
             JOIN readings r ON r.sensor_id = p.s AND r.metric = p.m
            WHERE r.ts >= ${at("$3")} AND r.ts < ${at("$4")}
            ORDER BY p.i, r.ts ${q.order === "desc" ? "DESC" : "ASC"}
            LIMIT $5`,
    values: [q.keys.map((k) => k.sensor), q.keys.map((k) => k.metric), q.from, q.to, q.limit + 1],
    rowMode: "array",
  });
  const out: RawRows = {
    sensor: [],
    metric: [],
    ts: [],
    value: [],
    receivedAt: [],
    truncated: r.rows.length > q.limit,
  };
  for (const row of r.rows.slice(0, q.limit)) {
    out.sensor.push(row[0]);
    out.metric.push(row[1]);
    out.ts.push(row[2]);
    out.value.push(row[3]);
    out.receivedAt.push(row[4]);
  }
  return out;
}

export interface BucketRows {
  sensor: string[];
  metric: string[];
  ts: number[];
  min: number[];
  max: number[];
  avg: number[];
  count: number[];
}

/** min/max/avg/count per bucket (date_bin from the Unix epoch, as /api/readings) for several series. */
export async function bucketRows(
  db: Db,
  q: { keys: readonly SeriesKey[]; from: number; to: number; bucketMs: number },
): Promise<BucketRows> {
  const r = await db.query<[string, string, number, number, number, number, number]>({
    text: `SELECT s, m, ${ms("b")}, mn, mx, av, n FROM (
             SELECT p.i, p.s, p.m,
                    date_bin($5::bigint * interval '1 millisecond', r.ts, timestamptz '1970-01-01 00:00:00+00') AS b,
                    min(r.value) AS mn, max(r.value) AS mx, avg(r.value) AS av, count(*)::int AS n
               FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS p(s, m, i)
               JOIN readings r ON r.sensor_id = p.s AND r.metric = p.m
              WHERE r.ts >= ${at("$3")} AND r.ts < ${at("$4")}
              GROUP BY p.i, p.s, p.m, b) x
           ORDER BY i, b`,
    values: [q.keys.map((k) => k.sensor), q.keys.map((k) => k.metric), q.from, q.to, q.bucketMs],
    rowMode: "array",
  });
  const out: BucketRows = { sensor: [], metric: [], ts: [], min: [], max: [], avg: [], count: [] };
  for (const row of r.rows) {
    out.sensor.push(row[0]);
    out.metric.push(row[1]);
    out.ts.push(row[2]);
    out.min.push(row[3]);
    out.max.push(row[4]);
    out.avg.push(roundAggregate(row[5]));
    out.count.push(row[6]);
  }
  return out;
}

/** A body the API sends as CSV rather than JSON (RFC 4180: CRLF, quotes doubled). */
export class CsvBody {
  constructor(
    readonly filename: string,
    readonly header: readonly string[],
    readonly rows: readonly (readonly (string | number | null)[])[],
    /** More rows matched than `limit`: sent as the X-DataLab-Truncated header. */
    readonly truncated = false,
  ) {}

  toString(): string {
    const lines = [this.header.map(csvField).join(",")];
    for (const row of this.rows) lines.push(row.map(csvField).join(","));
    return `${lines.join("\r\n")}\r\n`;
  }
}

function csvField(v: string | number | null): string {
  if (v === null) return "";
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const iso = (t: number): string => new Date(t).toISOString();
