import { EventEmitter } from "node:events";
import { PGlite, types, type Results } from "@electric-sql/pglite";

/**
 * The part of node-postgres' `Pool` the hub uses (pool.query, pool.connect → client.query /
 * client.release, pool.on, pool.end), over PGlite: PostgreSQL compiled to WebAssembly, running
 * inside this process with its data in a folder. It lets the desktop demo run the hub's own
 * SQL — migrations with advisory locks, unnest inserts, ON CONFLICT, BRIN, date_bin — with
 * nothing installed.
 *
 * PGlite is one session. node-postgres hands each `connect()` its own connection, so a
 * transaction on one client never sees another's statements; here a client holds the session
 * exclusively from `connect()` to `release()`, and `pool.query` waits its turn. That makes the
 * pool behave like node-postgres with `max: 1`.
 */

export interface PgliteQueryConfig {
  text: string;
  values?: unknown[];
  rowMode?: "array";
}

export interface PgliteResult<R> {
  rows: R[];
  rowCount: number;
  command: string;
  fields: { name: string; dataTypeID: number }[];
}

export interface PglitePoolOptions {
  /** How long `connect()` waits for the session (node-postgres' connectionTimeoutMillis). */
  connectTimeoutMs?: number;
  /** Callers allowed to wait for the session; more are refused at once, not queued. */
  maxWaiting?: number;
}

/**
 * node-postgres returns int8 as a string (it may not fit a JS number); PGlite parses it to a
 * number. Keep node-postgres' behaviour so hub code reads the same values from either.
 */
const PG_COMPATIBLE_PARSERS = { [types.INT8]: (v: string) => v };

export class PglitePool extends EventEmitter {
  private holder: Promise<void> = Promise.resolve();
  private waiting = 0;
  private busy = false;
  private closed = false;
  private readonly connectTimeoutMs: number;
  private readonly maxWaiting: number;

  private constructor(
    readonly db: PGlite,
    opts: PglitePoolOptions,
    /** A pool closes the database on end() only if it opened it. */
    private readonly ownsDb: boolean,
  ) {
    super();
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.maxWaiting = opts.maxWaiting ?? 1_000;
  }

  /** Open (or create) the database in `dataDir`; undefined keeps it in memory. */
  static async open(dataDir: string | undefined, opts: PglitePoolOptions = {}): Promise<PglitePool> {
    const db = await PGlite.create({ ...(dataDir ? { dataDir } : {}), parsers: PG_COMPATIBLE_PARSERS });
    return new PglitePool(db, opts, true);
  }

  /**
   * A pool over a database another pool opened (it stays open when this one ends). Both
   * share the one session: use one of them at a time.
   */
  static over(other: PglitePool, opts: PglitePoolOptions = {}): PglitePool {
    return new PglitePool(other.db, opts, false);
  }

  // node-postgres' pool counters, for code that reports them.
  get totalCount(): number {
    return 1;
  }
  get idleCount(): number {
    return this.busy ? 0 : 1;
  }
  get waitingCount(): number {
    return this.waiting;
  }
  get ended(): boolean {
    return this.closed;
  }

  async query<R = Record<string, unknown>>(
    q: string | PgliteQueryConfig,
    values?: unknown[],
  ): Promise<PgliteResult<R>> {
    const client = await this.connect();
    try {
      return await client.query<R>(q, values);
    } finally {
      client.release();
    }
  }

  /** The session, exclusively, until `release()`. */
  async connect(): Promise<PgliteClient> {
    // node-postgres' wording, so the hub's error classification (postgres-errors.ts) applies.
    if (this.closed) throw new Error("Cannot use a pool after calling end on the pool");
    if (this.waiting >= this.maxWaiting)
      throw new Error("timeout exceeded when trying to connect (too many callers waiting for the embedded database)");
    const previous = this.holder;
    let free!: () => void;
    this.holder = new Promise<void>((r) => (free = r));
    this.waiting += 1;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        previous,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("timeout exceeded when trying to connect")), this.connectTimeoutMs);
        }),
      ]);
    } catch (err) {
      // Hand our turn on once the one before us is done, so the queue keeps its order.
      void previous.then(free);
      throw err;
    } finally {
      clearTimeout(timer);
      this.waiting -= 1;
    }
    if (this.closed) {
      free();
      throw new Error("Cannot use a pool after calling end on the pool");
    }
    this.busy = true;
    return new PgliteClient(this.db, async () => {
      // A client handed back inside a transaction (an error path) must not leave the
      // session in it: node-postgres would have thrown the connection away.
      if (this.db.isInTransaction()) await this.db.exec("ROLLBACK").catch(() => undefined);
      this.busy = false;
      free();
    });
  }

  async end(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Let whoever holds or waits for the session finish before closing it.
    await this.holder.catch(() => undefined);
    if (this.ownsDb) await this.db.close();
  }
}

export class PgliteClient extends EventEmitter {
  private released = false;

  constructor(
    private readonly db: PGlite,
    private readonly onRelease: () => Promise<void>,
  ) {
    super();
  }

  async query<R = Record<string, unknown>>(
    q: string | PgliteQueryConfig,
    values?: unknown[],
  ): Promise<PgliteResult<R>> {
    if (this.released) throw new Error("Client was closed and is not queryable");
    const text = typeof q === "string" ? q : q.text;
    const params = (typeof q === "string" ? values : (q.values ?? values)) ?? [];
    const rowMode = typeof q === "string" ? undefined : q.rowMode;
    if (params.length === 0 && rowMode === undefined) {
      // Like node-postgres without parameters: the simple protocol, so a migration file with
      // several statements runs as one call. Its last result is the answer.
      const all = await this.db.exec(text);
      return toPgResult<R>(all[all.length - 1]);
    }
    return toPgResult<R>(await this.db.query<R>(text, params, rowMode ? { rowMode } : {}));
  }

  /** node-postgres: `release(err)` destroys the connection; here the session is rolled back and kept. */
  release(_err?: Error | boolean): void {
    if (this.released) throw new Error("Release called on client which has already been released to the pool.");
    this.released = true;
    void this.onRelease();
  }
}

function toPgResult<R>(r: Results<unknown> | undefined): PgliteResult<R> {
  if (!r) return { rows: [], rowCount: 0, command: "", fields: [] };
  const command = (r as { command?: string }).command ?? "";
  const dml = /^(INSERT|UPDATE|DELETE|MERGE|COPY)$/.test(command);
  return {
    rows: r.rows as R[],
    rowCount: dml ? (r.affectedRows ?? 0) : r.rows.length,
    command,
    fields: r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
  };
}
