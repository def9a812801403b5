import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { errorMessage, type Logger, type Reading } from "@datalab/shared";
import { isPgRetryableNow, isPgUnavailable, isUniqueViolation } from "./postgres-errors";
import { foldWindowed, recordFolds } from "./postgres-measurements";
import {
  summarizeBatch,
  SummaryFold,
  type BatchSummary,
  type GatewaySummary,
  type SensorSummary,
} from "./postgres-summary";
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
  /** Write first deliveries with COPY (default: when the pool is node-postgres' own). */
  copy?: boolean;
  /** Group transactions running at once (default 3). */
  copyRounds?: number;
  /** Readings at most in one group (default 20,000). */
  copyMaxReadings?: number;
  /** Told, after each commit, how many of a gateway's readings were folded into a measurement already stored. */
  onFolded?: (gatewayId: string, n: number) => void;
}

/** A deadlock or serialization failure is retried this many times inside one write. */
const IMMEDIATE_RETRIES = 3;

/**
 * PostgreSQL sink. Batches delivered for the first time go in groups (CopyGroups): one
 * transaction per group holding one COPY of all its readings (the cheapest way into
 * Postgres) and one upsert each into `sensors` and `gateways`, folded in JS. A redelivered
 * batch, or one whose COPY met a reading already written (a gateway that re-formed a batch
 * after a power cut), is written alone: INSERT ... SELECT FROM unnest(...) with ON CONFLICT
 * DO NOTHING on the reading key, which skips what is there, and the same upserts (their
 * merges are idempotent, so writing a summary twice changes nothing). Either way the
 * readings and the summary commit together, and write() returns only after the COMMIT,
 * so the consumer acks only what is durable.
 */
export class PostgresSink implements Sink {
  readonly name = "postgres";
  private pendingMigration: (() => Promise<unknown>) | undefined;
  private readonly probeTimeoutMs: number;
  /** Absent when COPY is not available (the demo's embedded Postgres adapter has none). */
  private readonly groups: CopyGroups | undefined;
  private readonly onFolded: ((gatewayId: string, n: number) => void) | undefined;

  constructor(
    readonly pool: pg.Pool,
    private readonly logger: Logger,
    opts: PostgresSinkOptions = {},
  ) {
    this.pendingMigration = opts.pendingMigration;
    this.probeTimeoutMs = opts.probeTimeoutMs ?? 5_000;
    this.onFolded = opts.onFolded;
    if (opts.copy ?? pool instanceof pg.Pool)
      this.groups = new CopyGroups(pool, opts.copyRounds ?? 3, opts.copyMaxReadings ?? 20_000);
  }

  async write(b: SinkBatch): Promise<WriteResult> {
    if (this.pendingMigration)
      throw new SinkUnavailableError("postgres schema is not migrated yet (database was unreachable)");
    if (b.readings.length === 0) return { inserted: 0, duplicates: 0 };
    const summary = summarizeBatch(b);
    try {
      const grouped = this.groups && !b.redelivered ? await this.groups.add(b.readings, summary) : false;
      if (grouped) return this.folds(b, grouped);
      for (let attempt = 1; ; attempt++) {
        try {
          return this.folds(b, await writeAlone(this.pool, b.readings, summary));
        } catch (err) {
          if (!(isPgRetryableNow(err) && attempt < IMMEDIATE_RETRIES)) throw err;
        }
      }
    } catch (err) {
      const msg = `postgres write failed: ${errorMessage(err)}`;
      throw isPgUnavailable(err)
        ? new SinkUnavailableError(msg, { cause: err })
        : new SinkRejectedError(msg, { cause: err });
    }
  }

  private folds(b: SinkBatch, res: WriteResult): WriteResult {
    if (res.folded) this.onFolded?.(b.gatewayId, res.folded);
    return res;
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

type Queryable = pg.Pool | pg.PoolClient | pg.Client;

interface Waiting {
  readings: readonly Reading[];
  summary: BatchSummary;
  /** What was written; false: not written, write it alone (the group could not be). */
  done: (written: WriteResult | false, err?: unknown) => void;
}

/**
 * First deliveries, written in groups. At most `rounds` group transactions run at once;
 * batches that arrive meanwhile wait and go together in the next one (up to `maxReadings`).
 * Under a light load every batch is its own group and waits for nothing; under a backlog
 * the groups grow, and one COPY and one COMMIT serve several batches.
 *
 * A group that fails because Postgres is unavailable fails all its batches (they pause and
 * come again). Any other failure — a reading already there, a text Postgres refuses — sends
 * each of its batches back to be written alone, so that one bad batch is refused by itself
 * and never takes the batches beside it down with it.
 */
export class CopyGroups {
  private queue: Waiting[] = [];
  private active = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly rounds: number,
    private readonly maxReadings: number,
  ) {}

  /** Resolves with what was written once committed; false when the batch must be written alone. */
  add(readings: readonly Reading[], summary: BatchSummary): Promise<WriteResult | false> {
    return new Promise<WriteResult | false>((resolve, reject) => {
      this.queue.push({
        readings,
        summary,
        done: (written, err) => (err === undefined ? resolve(written) : reject(err)),
      });
      this.pump();
    });
  }

  private pump(): void {
    while (this.active < this.rounds && this.queue.length > 0) {
      let n = 0;
      let readings = 0;
      while (n < this.queue.length && (n === 0 || readings + this.queue[n]!.readings.length <= this.maxReadings))
        readings += this.queue[n++]!.readings.length;
      const group = this.queue.splice(0, n);
      this.active += 1;
      void this.round(group).finally(() => {
        this.active -= 1;
        this.pump();
      });
    }
  }

  private async round(group: Waiting[]): Promise<void> {
    try {
      const results = await writeGroup(this.pool, group);
      group.forEach((w, i) => w.done(results[i]!));
    } catch (err) {
      if (isPgUnavailable(err)) for (const w of group) w.done(false, err);
      // A batch alone that Postgres refused is refused; a deadlock goes on to the retries of writeAlone.
      else if (group.length === 1 && !isUniqueViolation(err) && !isPgRetryableNow(err)) group[0]!.done(false, err);
      else for (const w of group) w.done(false);
    }
  }
}

/**
 * One transaction: COPY of every reading of the group (but those whose measurement is stored
 * already), then the group's folded summary. Returns what each batch of the group wrote.
 */
async function writeGroup(pool: pg.Pool, group: readonly Waiting[]): Promise<WriteResult[]> {
  const fold = new SummaryFold();
  for (const w of group) fold.add(w.summary);
  return transaction(pool, async (client) => {
    const folds = await foldWindowed(
      client,
      group.length === 1 ? group[0]!.readings : group.flatMap((w) => w.readings),
    );
    await copyReadings(client, folds.keep);
    await upsertSummary(client, fold);
    const results: WriteResult[] = [];
    for (const w of group) {
      const mine = folds.folded.size > 0 ? w.readings.filter((r) => folds.folded.has(r)) : [];
      let stored = 0;
      if (folds.stored.size > 0) for (const r of w.readings) if (folds.stored.has(r)) stored += 1;
      const inserted = w.readings.length - mine.length - stored;
      const folded = await recordFolds(client, mine);
      results.push(withFolded({ inserted, duplicates: w.readings.length - inserted - folded }, folded));
    }
    return results;
  });
}

/**
 * One batch alone, idempotently: the new readings and the summary in one transaction. A
 * reading not inserted is a duplicate when its own key was there (a redelivery), else it was
 * folded into the measurement another reading stored.
 */
async function writeAlone(pool: pg.Pool, readings: readonly Reading[], summary: BatchSummary): Promise<WriteResult> {
  const fold = new SummaryFold();
  fold.add(summary);
  return transaction(pool, async (client) => {
    const folds = await foldWindowed(client, readings);
    const windowFolds = await recordFolds(
      client,
      folds.folded.size > 0 ? readings.filter((r) => folds.folded.has(r)) : [],
    );
    const res = await insertReadings(client, folds.keep);
    await upsertSummary(client, fold);
    const folded = windowFolds + res.folded;
    return withFolded({ inserted: res.inserted, duplicates: readings.length - res.inserted - folded }, folded);
  });
}

/** `folded` only when some were: sinks that never fold answer { inserted, duplicates } alone. */
function withFolded(res: WriteResult, folded: number): WriteResult {
  return folded > 0 ? { ...res, folded } : res;
}

async function upsertSummary(client: pg.PoolClient, fold: SummaryFold): Promise<void> {
  await upsertSensors(client, fold.sensors());
  for (const g of fold.gateways()) await upsertGateway(client, g);
}

async function transaction<T>(pool: pg.Pool, body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    const out = await body(client);
    // If COMMIT itself fails on a lost connection we cannot know whether it landed; the
    // batch is then redelivered and written alone, which makes that harmless.
    await client.query("COMMIT");
    return out;
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

const COPY_READINGS =
  "COPY readings (gateway_id, instance, seq, sensor_id, metric, ts, value, unit, received_at, source, sensor_time) FROM STDIN";
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
      `${copyField(r.gatewayId)}\t${copyField(r.instance)}\t${r.seq}\t${copyField(r.sensorId)}\t${copyField(r.metric)}\t` +
      `${time.of(r.ts)}\t${r.value}\t${r.unit === null ? "\\N" : copyField(r.unit)}\t${received.of(r.receivedAt)}\t${copyField(r.source)}\t${sensorTimeField(r)}\n`;
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
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::text[], $9::float8[], $10::text[], $11::boolean[])
         AS x(g, i, s, sid, m, t, v, u, rc, src, st)
     ), ins AS (
       INSERT INTO readings (gateway_id, instance, seq, sensor_id, metric, ts, value, unit, received_at, source, sensor_time)
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
       FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::text[]) WITH ORDINALITY AS x(sid, g, f, l, lv, ord)
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
    [ids, gateways, first, last, values],
  );
}

/** One statement: first/last seen merge with LEAST/GREATEST, the "last batch" fields only move forward. */
export async function upsertGateway(client: Queryable, g: GatewaySummary): Promise<void> {
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
