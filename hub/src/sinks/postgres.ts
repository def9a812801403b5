import type pg from "pg";
import { errorMessage, type Logger, type Reading } from "@datalab/shared";
import { isPgRetryableNow, isPgUnavailable } from "./postgres-errors";
import { summarizeBatch, type BatchSummary, type GatewaySummary, type SensorSummary } from "./postgres-summary";
import { SinkRejectedError, SinkUnavailableError, type Sink, type SinkBatch, type WriteResult } from "./types";

export interface PostgresSinkOptions {
  /**
   * Set when the hub could not migrate at start because Postgres was down: the sink then
   * migrates once it answers, and until then reports itself unavailable. The hub keeps
   * running (MongoDB keeps flowing) instead of crash-looping on a database it does not need
   * for the other sink.
   */
  pendingMigration?: () => Promise<unknown>;
  /** Health probe timeout (ms). */
  probeTimeoutMs?: number;
}

/** A deadlock or serialization failure is retried this many times inside one write. */
const IMMEDIATE_RETRIES = 3;

/**
 * PostgreSQL sink: one transaction per batch holding
 * - one INSERT ... SELECT FROM unnest(...) for all its readings (one round trip, one plan),
 *   ON CONFLICT DO NOTHING on the reading key, so a redelivered batch inserts nothing;
 * - one upsert into `sensors` and one into `gateways`, from a summary folded in JS.
 * The consumer acks only after COMMIT returned.
 */
export class PostgresSink implements Sink {
  readonly name = "postgres";
  private pendingMigration: (() => Promise<unknown>) | undefined;
  private readonly probeTimeoutMs: number;

  constructor(
    readonly pool: pg.Pool,
    private readonly logger: Logger,
    opts: PostgresSinkOptions = {},
  ) {
    this.pendingMigration = opts.pendingMigration;
    this.probeTimeoutMs = opts.probeTimeoutMs ?? 5_000;
  }

  async write(b: SinkBatch): Promise<WriteResult> {
    if (this.pendingMigration) throw new SinkUnavailableError("postgres schema is not migrated yet (database was unreachable)");
    if (b.readings.length === 0) return { inserted: 0, duplicates: 0 };
    const summary = summarizeBatch(b);
    for (let attempt = 1; ; attempt++) {
      try {
        const inserted = await this.writeOnce(b.readings, summary);
        return { inserted, duplicates: b.readings.length - inserted };
      } catch (err) {
        if (isPgRetryableNow(err) && attempt < IMMEDIATE_RETRIES) continue;
        const msg = `postgres write failed: ${errorMessage(err)}`;
        throw isPgUnavailable(err) ? new SinkUnavailableError(msg, { cause: err }) : new SinkRejectedError(msg, { cause: err });
      }
    }
  }

  private async writeOnce(readings: readonly Reading[], summary: BatchSummary): Promise<number> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const inserted = await insertReadings(client, readings);
      // Nothing new: every reading was committed before, in a transaction that also applied
      // its sensors and gateway summary (a redelivery). The merges are idempotent anyway;
      // skipping them makes a redelivery storm cheaper.
      if (inserted > 0) {
        await upsertSensors(client, summary.gateway.gatewayId, summary.sensors);
        await upsertGateway(client, summary.gateway);
      }
      // If COMMIT itself fails on a lost connection we cannot know whether it landed; the
      // batch is then redelivered and the insert above makes that harmless.
      await client.query("COMMIT");
      return inserted;
    } catch (err) {
      await client.query("ROLLBACK").catch((e: unknown) => {
        // A connection that cannot even roll back must not go back to the pool.
        broken = e instanceof Error ? e : new Error(String(e));
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async healthy(): Promise<boolean> {
    try {
      await withTimeout(this.pool.query("SELECT 1"), this.probeTimeoutMs, "postgres probe");
      if (this.pendingMigration) {
        await this.pendingMigration();
        this.pendingMigration = undefined;
        this.logger.info("postgres answers again; schema migrated");
      }
      return true;
    } catch (err) {
      this.logger.debug({ err: errorMessage(err) }, "postgres not answering");
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

/**
 * One statement for all the batch's sensors. The merge keeps, per metric, the entry with the
 * newer sensor time, so batches applied out of order (several hub processes, redeliveries)
 * converge on the same row. Rows are fed in sensor-id order: see summarizeBatch.
 */
export async function upsertSensors(client: pg.PoolClient | pg.Client, gatewayId: string, sensors: readonly SensorSummary[]): Promise<void> {
  if (sensors.length === 0) return;
  const ids = sensors.map((s) => s.sensorId);
  const first = sensors.map((s) => s.firstSeen);
  const last = sensors.map((s) => s.lastSeen);
  const values = sensors.map((s) => JSON.stringify(s.lastValues));
  await client.query(
    `INSERT INTO sensors AS s (sensor_id, first_seen, last_seen, last_gateway_id, last_values)
     SELECT sid, to_timestamp(f / 1000.0), to_timestamp(l / 1000.0), $2, lv::jsonb
       FROM unnest($1::text[], $3::float8[], $4::float8[], $5::text[]) WITH ORDINALITY AS x(sid, f, l, lv, ord)
      ORDER BY ord
     ON CONFLICT (sensor_id) DO UPDATE SET
       first_seen = LEAST(s.first_seen, excluded.first_seen),
       last_seen = GREATEST(s.last_seen, excluded.last_seen),
       last_gateway_id = CASE WHEN excluded.last_seen >= s.last_seen THEN excluded.last_gateway_id ELSE s.last_gateway_id END,
       last_values = s.last_values || COALESCE((
         SELECT jsonb_object_agg(n.key, n.value)
           FROM jsonb_each(excluded.last_values) AS n
          WHERE NOT (s.last_values ? n.key)
             OR ((n.value->>'ts')::bigint, (n.value->>'seq')::bigint)
                >= ((s.last_values->n.key->>'ts')::bigint, COALESCE((s.last_values->n.key->>'seq')::bigint, 0))
       ), '{}'::jsonb)`,
    [ids, gatewayId, first, last, values],
  );
}

/** One statement: first/last seen merge with LEAST/GREATEST, the "last batch" fields only move forward. */
export async function upsertGateway(client: pg.PoolClient | pg.Client, g: GatewaySummary): Promise<void> {
  await client.query(
    `INSERT INTO gateways AS g (gateway_id, first_batch_at, last_batch_at, last_batch_sent_at, last_instance,
                                last_batch_first_seq, last_batch_seq, last_batch_readings, last_batch_messages, last_batch_bytes)
     VALUES ($1, now(), now(), to_timestamp($2 / 1000.0), $3, $4, $5, $6, $7, $8)
     ON CONFLICT (gateway_id) DO UPDATE SET
       first_batch_at = LEAST(g.first_batch_at, excluded.first_batch_at),
       last_batch_at = GREATEST(g.last_batch_at, excluded.last_batch_at),
       last_batch_sent_at = GREATEST(g.last_batch_sent_at, excluded.last_batch_sent_at),
       last_instance = CASE WHEN (excluded.last_batch_sent_at, excluded.last_batch_seq) >= (g.last_batch_sent_at, g.last_batch_seq) THEN excluded.last_instance ELSE g.last_instance END,
       last_batch_first_seq = CASE WHEN (excluded.last_batch_sent_at, excluded.last_batch_seq) >= (g.last_batch_sent_at, g.last_batch_seq) THEN excluded.last_batch_first_seq ELSE g.last_batch_first_seq END,
       last_batch_seq = CASE WHEN (excluded.last_batch_sent_at, excluded.last_batch_seq) >= (g.last_batch_sent_at, g.last_batch_seq) THEN excluded.last_batch_seq ELSE g.last_batch_seq END,
       last_batch_readings = CASE WHEN (excluded.last_batch_sent_at, excluded.last_batch_seq) >= (g.last_batch_sent_at, g.last_batch_seq) THEN excluded.last_batch_readings ELSE g.last_batch_readings END,
       last_batch_messages = CASE WHEN (excluded.last_batch_sent_at, excluded.last_batch_seq) >= (g.last_batch_sent_at, g.last_batch_seq) THEN excluded.last_batch_messages ELSE g.last_batch_messages END,
       last_batch_bytes = CASE WHEN (excluded.last_batch_sent_at, excluded.last_batch_seq) >= (g.last_batch_sent_at, g.last_batch_seq) THEN excluded.last_batch_bytes ELSE g.last_batch_bytes END`,
    [g.gatewayId, g.sentAt, g.instance, g.firstSeq, g.lastSeq, g.readings, g.messages, g.bytes],
  );
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}
