import pg from "pg";
import { errorMessage, type Logger, type Reading } from "@datalab/shared";
import { isPgRetryableNow, isPgUnavailable, isUniqueViolation } from "./postgres-errors";
import { foldWindowed, recordFolds } from "./postgres-measurements";
import { copyReadings, insertReadings } from "./postgres-readings";
import { summarizeBatch, SummaryFold, upsertSummary, type BatchSummary } from "./postgres-summary";
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
  /**
   * Group transactions running at once (default 2: a group's COPY still overlaps the previous
   * group's summary and COMMIT; under a flood a third cost Postgres CPU without writing faster).
   */
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
      this.groups = new CopyGroups(pool, opts.copyRounds ?? 2, opts.copyMaxReadings ?? 20_000);
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

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}
