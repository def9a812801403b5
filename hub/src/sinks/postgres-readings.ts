import type pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import type { Reading } from "@datalab/shared";

/** What the statements of the PostgreSQL sink run on: a pool, or a client inside a transaction. */
export type Queryable = pg.Pool | pg.PoolClient | pg.Client;

const COPY_READINGS =
  "COPY readings (gateway_id, instance, seq, sensor_id, metric, ts, value, unit, received_at, source, sensor_time)" +
  " FROM STDIN";
const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };

/** A text field in COPY's text format: backslash, tab, newline and carriage return escaped. */
export function copyField(s: string): string {
  return COPY_SPECIAL.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : s;
}

/** Readings in one COPY (one statement: all or none; a reading already there fails it). */
export async function copyReadings(client: pg.PoolClient | pg.Client, readings: readonly Reading[]): Promise<void> {
  const lines = new Array<string>(readings.length);
  // One cache each: a sensor's time and the receive time fall in different seconds, and one
  // shared cache would miss on every call.
  const time = new IsoTimes();
  const received = new IsoTimes();
  for (let i = 0; i < readings.length; i++) {
    const r = readings[i]!;
    lines[i] =
      `${copyField(r.gatewayId)}\t${copyField(r.instance)}\t${r.seq}\t${copyField(r.sensorId)}\t` +
      `${copyField(r.metric)}\t${time.of(r.ts)}\t${r.value}\t${r.unit === null ? "\\N" : copyField(r.unit)}\t` +
      `${received.of(r.receivedAt)}\t${copyField(r.source)}\t${sensorTimeField(r)}\n`;
  }
  const stream = client.query(copyFrom(COPY_READINGS));
  await new Promise<void>((resolve, reject) => {
    stream.once("error", reject);
    stream.once("finish", resolve);
    stream.end(lines.join(""));
  });
}

/**
 * `sensor_time`: true when ts is the sensor's own (then sensor, metric and ts identify the
 * measurement, and the unique index folds a copy); NULL when stamped on receipt, which no
 * unique index folds (NULLs are distinct): foldWindowed decides those.
 */
function sensorTimeField(r: Reading): string {
  return r.rxWindow === undefined ? "t" : "\\N";
}

/**
 * Epoch ms → ISO 8601 for COPY, the date and time formatted once per second: readings of a
 * batch share their seconds, and toISOString() is the costliest part of a COPY line.
 */
class IsoTimes {
  private second = Number.NaN;
  private prefix = "";

  of(ms: number): string {
    const s = Math.floor(ms / 1000);
    if (s !== this.second) {
      this.second = s;
      this.prefix = new Date(s * 1000).toISOString().slice(0, 20);
    }
    const frac = ms - s * 1000;
    return `${this.prefix}${frac < 10 ? "00" : frac < 100 ? "0" : ""}${frac}Z`;
  }
}

/**
 * Insert readings idempotently; returns how many rows were new, and how many readings were
 * newly folded: not there under their own key (a redelivery) yet not inserted, because their
 * measurement's row was (their keys go to readings_folded; one recorded before is a duplicate).
 */
export async function insertReadings(
  client: Queryable,
  readings: readonly Reading[],
): Promise<{ inserted: number; folded: number }> {
  if (readings.length === 0) return { inserted: 0, folded: 0 };
  const n = readings.length;
  const gw = new Array<string>(n);
  const inst = new Array<string>(n);
  const seq = new Array<number>(n);
  const sensor = new Array<string>(n);
  const metric = new Array<string>(n);
  const ts = new Array<number>(n);
  const value = new Array<number>(n);
  const unit = new Array<string | null>(n);
  const recv = new Array<number>(n);
  const source = new Array<string>(n);
  const sensorTime = new Array<boolean | null>(n);
  for (let i = 0; i < n; i++) {
    const r = readings[i]!;
    gw[i] = r.gatewayId;
    inst[i] = r.instance;
    seq[i] = r.seq;
    sensor[i] = r.sensorId;
    metric[i] = r.metric;
    ts[i] = r.ts;
    value[i] = r.value;
    unit[i] = r.unit;
    recv[i] = r.receivedAt;
    source[i] = r.source;
    sensorTime[i] = r.rxWindow === undefined ? true : null;
  }
  // One snapshot for the whole statement: `f` sees the readings rows from before the insert only.
  const res = await client.query<{ inserted: number; folded: number }>(
    `WITH x AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::float8[],
                            $7::float8[], $8::text[], $9::float8[], $10::text[], $11::boolean[])
         AS x(g, i, s, sid, m, t, v, u, rc, src, st)
     ), ins AS (
       INSERT INTO readings (gateway_id, instance, seq, sensor_id, metric, ts, value, unit, received_at, source,
                             sensor_time)
       SELECT g, i, s, sid, m, to_timestamp(t / 1000.0), v, u, to_timestamp(rc / 1000.0), src, st FROM x
       ON CONFLICT DO NOTHING
       RETURNING gateway_id, instance, seq
     ), f AS (
       INSERT INTO readings_folded (gateway_id, instance, seq)
       SELECT g, i, s FROM x
        WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.gateway_id = x.g AND ins.instance = x.i AND ins.seq = x.s)
          AND NOT EXISTS (SELECT 1 FROM readings r WHERE r.gateway_id = x.g AND r.instance = x.i AND r.seq = x.s)
       ON CONFLICT DO NOTHING
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM ins)::int AS inserted, (SELECT count(*) FROM f)::int AS folded`,
    [gw, inst, seq, sensor, metric, ts, value, unit, recv, source, sensorTime],
  );
  return res.rows[0]!;
}
