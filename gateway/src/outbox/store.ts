import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { encodePayload, type DecodedReading, type Logger } from "@datalab/shared";
import { MIGRATIONS } from "./schema";

export type Synchronous = "FULL" | "NORMAL";

export interface AcceptedMessage {
  source: string;
  receivedAt: number;
  payload: Buffer;
  /** Validated readings, each with its time (sensor time or receive time). */
  readings: (DecodedReading & { ts: number })[];
}

export interface QuarantinedMessage {
  source: string;
  receivedAt: number;
  payload: Buffer;
  reason: string;
  detail: string;
}

export interface OutboxRow {
  id: number;
  firstSeq: number;
  lastSeq: number;
  n: number;
  receivedAt: number;
  wire: string;
}

export interface OutboxStats {
  messages: number;
  readings: number;
  bytes: number;
  oldestReceivedAt: number | null;
}

export interface OutboxOptions {
  synchronous?: Synchronous;
  /** Quarantine keeps at most this many rows; the oldest go first. */
  maxQuarantineRows?: number;
  logger: Logger;
  /** Called when a database file could not be opened and was moved aside. */
  onCorrupt?: (movedTo: string, err: Error) => void;
}

/**
 * The gateway's durable outbox and quarantine (SQLite, WAL). A reading is in the outbox from
 * its commit until the uplink's PubAck for its batch; nothing else deletes it except the
 * full-outbox policy, which is counted.
 */
export class Outbox {
  readonly instance: string;
  private nextSeq: number;
  private readonly stmts;
  private totals: { messages: number; readings: number; bytes: number };
  private quarantineRows: number;
  private readonly maxQuarantineRows: number;

  private constructor(
    readonly db: Database.Database,
    readonly path: string,
    opts: OutboxOptions,
  ) {
    this.maxQuarantineRows = opts.maxQuarantineRows ?? 10_000;
    const get = db.prepare<[string], { value: string }>("SELECT value FROM meta WHERE key = ?");
    let instance = get.get("instance")?.value;
    if (!instance) {
      instance = randomBytes(6).toString("hex");
      db.prepare("INSERT INTO meta (key, value) VALUES ('instance', ?)").run(instance);
      db.prepare("INSERT INTO meta (key, value) VALUES ('next_seq', '1')").run();
    }
    this.instance = instance;
    this.nextSeq = Number(get.get("next_seq")?.value ?? "1");
    this.stmts = {
      insert: db.prepare("INSERT INTO outbox (first_seq, last_seq, n, received_at, wire) VALUES (?, ?, ?, ?, ?)"),
      setSeq: db.prepare("UPDATE meta SET value = ? WHERE key = 'next_seq'"),
      quarantine: db.prepare("INSERT INTO quarantine (received_at, source, reason, detail, payload) VALUES (?, ?, ?, ?, ?)"),
      trimQuarantine: db.prepare("DELETE FROM quarantine WHERE id <= (SELECT max(id) FROM quarantine) - ?"),
      peek: db.prepare<[number, number], OutboxRow>(
        "SELECT id, first_seq AS firstSeq, last_seq AS lastSeq, n, received_at AS receivedAt, wire FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
      ),
      deleteRange: db.prepare("DELETE FROM outbox WHERE id >= ? AND id <= ?"),
      rangeTotals: db.prepare<[number, number], { messages: number; readings: number | null; bytes: number | null }>(
        "SELECT count(*) AS messages, sum(n) AS readings, sum(length(wire)) AS bytes FROM outbox WHERE id >= ? AND id <= ?",
      ),
      oldest: db.prepare<[], { receivedAt: number }>("SELECT received_at AS receivedAt FROM outbox ORDER BY id LIMIT 1"),
      quarantineCounts: db.prepare<[], { reason: string; n: number }>("SELECT reason, count(*) AS n FROM quarantine GROUP BY reason"),
    };
    const t = db
      .prepare<[], { messages: number; readings: number | null; bytes: number | null }>(
        "SELECT count(*) AS messages, sum(n) AS readings, sum(length(wire)) AS bytes FROM outbox",
      )
      .get()!;
    this.totals = { messages: t.messages, readings: t.readings ?? 0, bytes: t.bytes ?? 0 };
    this.quarantineRows = (db.prepare("SELECT count(*) AS n FROM quarantine").get() as { n: number }).n;
  }

  /**
   * Open (or create) the outbox at `path`. A file SQLite cannot read is moved aside with a
   * loud log line and the gateway starts fresh: a crash loop would lose every new reading.
   */
  static open(path: string, opts: OutboxOptions): Outbox {
    mkdirSync(dirname(path), { recursive: true });
    try {
      return new Outbox(openDb(path, opts.synchronous ?? "FULL"), path, opts);
    } catch (err) {
      if (!isCorruption(err)) throw err;
      const movedTo = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      for (const suffix of ["", "-wal", "-shm"]) {
        if (existsSync(path + suffix)) renameSync(path + suffix, movedTo + suffix);
      }
      opts.logger.error({ err, path, movedTo }, "outbox database is unreadable: moved it aside and starting with an empty outbox");
      opts.onCorrupt?.(movedTo, err as Error);
      return new Outbox(openDb(path, opts.synchronous ?? "FULL"), path, opts);
    }
  }

  /**
   * Commit accepted and quarantined messages in one transaction (the group commit). Sequence
   * numbers are assigned here, inside the transaction that makes them durable, so a crash
   * can never hand out the same seq twice.
   */
  commit(accepted: readonly AcceptedMessage[], quarantined: readonly QuarantinedMessage[] = []): number {
    let readings = 0;
    const run = this.db.transaction(() => {
      let seq = this.nextSeq;
      for (const m of accepted) {
        const first = seq;
        const wireReadings = m.readings.map((r) => ({
          seq: seq++,
          sensorId: r.sensorId,
          metric: r.metric,
          value: r.value,
          unit: r.unit ?? null,
          ts: r.ts,
        }));
        const { payload, encoding } = encodePayload(m.payload);
        const wire = JSON.stringify({ source: m.source, receivedAt: m.receivedAt, payload, encoding, readings: wireReadings });
        this.stmts.insert.run(first, seq - 1, wireReadings.length, m.receivedAt, wire);
        readings += wireReadings.length;
        this.totals.messages += 1;
        this.totals.readings += wireReadings.length;
        this.totals.bytes += wire.length;
      }
      for (const q of quarantined) {
        this.stmts.quarantine.run(q.receivedAt, q.source, q.reason, q.detail.slice(0, 1000), q.payload);
        this.quarantineRows += 1;
      }
      if (this.quarantineRows > this.maxQuarantineRows) {
        this.stmts.trimQuarantine.run(this.maxQuarantineRows);
        this.quarantineRows = this.maxQuarantineRows;
      }
      if (seq !== this.nextSeq) this.stmts.setSeq.run(String(seq));
      return seq;
    });
    const before = { ...this.totals };
    try {
      this.nextSeq = run();
    } catch (err) {
      this.totals = before;
      throw err;
    }
    return readings;
  }

  /** Rows after `afterId`, oldest first. */
  peek(afterId: number, limit: number): OutboxRow[] {
    return this.stmts.peek.all(afterId, limit);
  }

  /** Remove rows `firstId..lastId` (after their batch was acknowledged). */
  remove(firstId: number, lastId: number): void {
    const t = this.stmts.rangeTotals.get(firstId, lastId)!;
    this.stmts.deleteRange.run(firstId, lastId);
    this.totals.messages -= t.messages;
    this.totals.readings -= t.readings ?? 0;
    this.totals.bytes -= t.bytes ?? 0;
  }

  stats(): OutboxStats {
    const oldest = this.totals.messages > 0 ? (this.stmts.oldest.get()?.receivedAt ?? null) : null;
    return { ...this.totals, oldestReceivedAt: oldest };
  }

  quarantineCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.stmts.quarantineCounts.all()) out[r.reason] = r.n;
    return out;
  }

  quarantined(limit = 100): { id: number; receivedAt: number; source: string; reason: string; detail: string; payload: Buffer }[] {
    return this.db
      .prepare("SELECT id, received_at AS receivedAt, source, reason, detail, payload FROM quarantine ORDER BY id DESC LIMIT ?")
      .all(limit) as { id: number; receivedAt: number; source: string; reason: string; detail: string; payload: Buffer }[];
  }

  get nextSequence(): number {
    return this.nextSeq;
  }

  close(): void {
    if (this.db.open) {
      this.db.pragma("wal_checkpoint(TRUNCATE)");
      this.db.close();
    }
  }
}

function openDb(path: string, synchronous: Synchronous): Database.Database {
  const db = new Database(path);
  try {
    // Any read makes SQLite look at the header: a file that is not a database fails here.
    db.pragma("journal_mode = WAL");
    // FULL: a committed group survives a power cut. NORMAL: it survives a crash of the
    // gateway, but the last commits before a power cut may be rolled back (WAL not synced).
    db.pragma(`synchronous = ${synchronous}`);
    db.pragma("busy_timeout = 5000");
    const check = db.pragma("quick_check(1)", { simple: true });
    if (check !== "ok") throw Object.assign(new Error(`quick_check: ${String(check)}`), { code: "SQLITE_CORRUPT" });
    migrate(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function migrate(db: Database.Database): void {
  const version = db.pragma("user_version", { simple: true }) as number;
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

function isCorruption(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? "";
  return code === "SQLITE_CORRUPT" || code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT");
}
