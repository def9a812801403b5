import pg from "pg";
import { SinkError, type Logger, type Reading } from "@datalab/shared";
import type { Sink, SinkBatch } from "./types";

/**
 * PostgreSQL sink: one transaction per batch, one INSERT ... SELECT FROM unnest(...) for all
 * its readings (one round trip, one plan), ON CONFLICT DO NOTHING on the reading key.
 */
export class PostgresSink implements Sink {
  readonly name = "postgres";

  constructor(
    readonly pool: pg.Pool,
    private readonly logger: Logger,
  ) {}

  async write(b: SinkBatch): Promise<void> {
    if (b.readings.length === 0) return;
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      await insertReadings(client, b.readings);
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw new SinkError(`postgres write failed: ${(err as Error).message}`, { cause: err });
    } finally {
      client.release();
    }
  }

  async healthy(): Promise<boolean> {
    try {
      await this.pool.query("SELECT 1");
      return true;
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, "postgres not answering");
      return false;
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Insert readings idempotently; returns how many rows were new. */
export async function insertReadings(client: pg.PoolClient | pg.Client, readings: readonly Reading[]): Promise<number> {
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
  }
  const res = await client.query(
    `INSERT INTO readings (gateway_id, instance, seq, sensor_id, metric, ts, value, unit, received_at, source)
     SELECT g, i, s, sid, m, to_timestamp(t / 1000.0), v, u, to_timestamp(rc / 1000.0), src
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::text[], $9::float8[], $10::text[])
         AS x(g, i, s, sid, m, t, v, u, rc, src)
     ON CONFLICT DO NOTHING`,
    [gw, inst, seq, sensor, metric, ts, value, unit, recv, source],
  );
  return res.rowCount ?? 0;
}
