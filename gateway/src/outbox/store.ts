import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type Database from "better-sqlite3";
import { encodePayload, encodeWireMessage, type DecodedReading, type Logger } from "@datalab/shared";
import { isDiskFull, limitPages, openOutboxDb, type Synchronous } from "./open";
import { fileBytes, planSpace, rowCost, type SpacePlan } from "./space";
import { diskFree, diskSize, DiskReserve, reserveBytes } from "./disk";
import {
  checkRows,
  checkTruncated,
  inspectWal,
  keepWal,
  Ledger,
  rowCrc,
  type Damage,
  type LedgerState,
} from "./damage";
import { DeliveryLog, type Delivery } from "./deliveries";

export type { Synchronous };

/** What to do when the outbox reaches its cap. Either way every reading lost is counted. */
export type FullPolicy = "drop_oldest" | "refuse_newest";

/**
 * Why readings were dropped: `outbox_full` (the configured cap), `disk_full` (the file
 * system said no, or the hard limit was hit), `commit_failed` (commits kept failing and the
 * bounded in-memory buffer overflowed), `outbox_damaged` (found at start: readings a damaged,
 * cut or rolled-back outbox file cost, estimated; see damage.ts).
 */
export type DropReason = "outbox_full" | "disk_full" | "commit_failed" | "outbox_damaged";

export interface AcceptedMessage {
  source: string;
  receivedAt: number;
  payload: Buffer;
  /** Validated readings, each with its time (sensor time or receive time). */
  readings: (DecodedReading & { ts: number })[];
  /** Set by a source that acknowledges a message only once it is committed (MQTT QoS 1). */
  delivery?: Delivery;
}

export interface QuarantinedMessage {
  source: string;
  receivedAt: number;
  payload: Buffer;
  reason: string;
  detail: string;
  delivery?: Delivery;
}

export interface OutboxRow {
  id: number;
  firstSeq: number;
  lastSeq: number;
  /** Readings in the row. */
  n: number;
  /** Messages in the row (a few consecutive messages of one group commit). */
  m: number;
  receivedAt: number;
  wire: string;
  /** Bytes of `wire` (UTF-8). */
  bytes: number;
}

/** A batch's rows (ids) and readings (seqs): both, so a restart can check it found the same rows. */
export interface BatchRange {
  firstId: number;
  lastId: number;
  firstSeq: number;
  lastSeq: number;
}

export interface OutboxStats {
  messages: number;
  readings: number;
  /** Bytes of wire messages (the content, not the file: see `fileBytes`). */
  bytes: number;
  oldestReceivedAt: number | null;
}

export interface OutboxOptions {
  synchronous?: Synchronous;
  /** The cap on the database file + WAL (default 256 MiB). */
  maxBytes?: number;
  fullPolicy?: FullPolicy;
  /** Quarantine keeps at most this many rows (and at most its byte budget); the oldest go first. */
  maxQuarantineRows?: number;
  logger: Logger;
  /** Called for each kind of damage found at start (see damage.ts), with where its evidence went. */
  onCorrupt?: (movedTo: string, err: Error) => void;
  /** Called after a transaction that dropped or refused readings committed. */
  onDrop?: (reason: DropReason, readings: number) => void;
  /**
   * Readings at most in one row (default ROW_MAX_MESSAGES). Rows are what batches are made
   * of, so keep it well under the batch size: a batch never splits a row.
   */
  rowMaxReadings?: number;
}

/** A row about to be inserted: its id comes with the insert. */
type EncodedRow = Omit<OutboxRow, "id">;

/** Messages, readings and wire bytes of some rows. */
export interface Totals {
  messages: number;
  readings: number;
  bytes: number;
}

interface CommitOutcome {
  kept: number;
  committed: number;
  nextSeq: number;
  outbox: Totals;
  quarantine: { rows: number; bytes: number };
  drops: [DropReason, number][];
}

export const DEFAULT_OUTBOX_MAX_BYTES = 256 * 1024 * 1024;

/** A row holds at most this many messages... */
export const ROW_MAX_MESSAGES = 64;
/** ...and about this many bytes of wire text, so that a row fits a 4 KiB page (no overflow pages). */
export const ROW_MAX_BYTES = 3_500;

/**
 * Seqs skipped at each start under synchronous=NORMAL. A power cut loses at most the WAL
 * written since the last checkpoint (a quarter of the WAL's share of the cap, 8 MiB at
 * most), and a reading takes well over 8 bytes in it.
 */
export const SEQ_SKIP_AFTER_NORMAL = 1_000_000;

/**
 * The gateway's durable outbox and quarantine (SQLite, WAL). A reading is in the outbox from
 * its commit until the uplink's PubAck for its batch; nothing else deletes it except the
 * full-outbox policy, which is counted.
 */
export class Outbox {
  readonly instance: string;
  /** Secret key of the batches' message-id digests: never leaves this file. */
  readonly msgIdKey: Buffer;
  readonly space: SpacePlan;
  readonly policy: FullPolicy;
  private nextSeq: number;
  private readonly stmts;
  private totals: Totals;
  private quarantineTotals: { rows: number; bytes: number };
  private inflightRange: BatchRange | undefined;
  private readonly maxQuarantineRows: number;
  private readonly logger: Logger;
  private readonly onDrop: OutboxOptions["onDrop"];
  private readonly synchronous: Synchronous;
  private readonly rowMaxReadings: number;
  private readonly dir: string;
  /** Given back to the file system when it reports the disk full (see disk.ts). */
  private readonly reserve: DiskReserve;
  /** The disk, not the configured cap, set the space plan: what the plan drops is `disk_full`. */
  private readonly diskBound: boolean;
  private diskFullLoggedAt = 0;
  private reserveWarned = false;
  /** The outbox's state outside SQLite, for telling at the next start what damage cost. */
  private readonly ledger: Ledger;
  /** What was found damaged at start (empty when the file was sound). */
  damage: readonly Damage[] = [];
  private deliveries: DeliveryLog | undefined;

  private constructor(
    readonly db: Database.Database,
    readonly path: string,
    space: SpacePlan,
    opts: OutboxOptions,
    disk: { reserve: DiskReserve; bound: boolean; ledger: Ledger },
  ) {
    this.space = space;
    this.ledger = disk.ledger;
    this.dir = dirname(path);
    this.reserve = disk.reserve;
    this.diskBound = disk.bound;
    this.policy = opts.fullPolicy ?? "drop_oldest";
    this.logger = opts.logger;
    this.onDrop = opts.onDrop;
    this.synchronous = opts.synchronous ?? "FULL";
    this.rowMaxReadings = Math.max(1, Math.min(opts.rowMaxReadings ?? ROW_MAX_MESSAGES, ROW_MAX_MESSAGES));
    this.maxQuarantineRows = opts.maxQuarantineRows ?? 10_000;
    const get = db.prepare<[string], { value: string }>("SELECT value FROM meta WHERE key = ?");
    let instance = get.get("instance")?.value;
    if (!instance) {
      instance = randomBytes(6).toString("hex");
      db.prepare("INSERT INTO meta (key, value) VALUES ('instance', ?)").run(instance);
      db.prepare("INSERT INTO meta (key, value) VALUES ('next_seq', '1')").run();
    }
    this.instance = instance;
    // Outboxes made before message ids carried a digest get their key at their next start.
    let key = get.get("msg_id_key")?.value;
    if (!key) {
      key = randomBytes(32).toString("hex");
      db.prepare("INSERT INTO meta (key, value) VALUES ('msg_id_key', ?)").run(key);
    }
    this.msgIdKey = Buffer.from(key, "hex");
    this.nextSeq = Number(get.get("next_seq")?.value ?? "1");
    const inflight = get.get("inflight")?.value;
    this.inflightRange = inflight ? (JSON.parse(inflight) as BatchRange) : undefined;
    const rowCols =
      "id, first_seq AS firstSeq, last_seq AS lastSeq, n, m, received_at AS receivedAt, wire, octet_length(wire) AS bytes";
    this.stmts = {
      insert: db.prepare(
        "INSERT INTO outbox (first_seq, last_seq, n, m, received_at, wire, crc) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ),
      setSeq: db.prepare("UPDATE meta SET value = ? WHERE key = 'next_seq'"),
      setInflight: db.prepare(
        "INSERT INTO meta (key, value) VALUES ('inflight', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ),
      clearInflight: db.prepare("DELETE FROM meta WHERE key = 'inflight'"),
      quarantine: db.prepare(
        "INSERT INTO quarantine (received_at, source, reason, detail, payload) VALUES (?, ?, ?, ?, ?)",
      ),
      quarantineOldest: db.prepare<[], { id: number; bytes: number }>(
        "SELECT id, octet_length(payload) + octet_length(detail) AS bytes FROM quarantine ORDER BY id",
      ),
      deleteQuarantineUpTo: db.prepare("DELETE FROM quarantine WHERE id <= ?"),
      scan: db.prepare<[number, number], OutboxRow>(
        `SELECT ${rowCols} FROM outbox WHERE id > ? AND id < ? ORDER BY id`,
      ),
      range: db.prepare<[number, number], OutboxRow>(
        `SELECT ${rowCols} FROM outbox WHERE id >= ? AND id <= ? ORDER BY id`,
      ),
      head: db.prepare<[number, number], { id: number; receivedAt: number }>(
        "SELECT id, received_at AS receivedAt FROM outbox WHERE id > ? AND id < ? ORDER BY id LIMIT 1",
      ),
      oldestFirst: db.prepare<[], { id: number; n: number; m: number; bytes: number }>(
        "SELECT id, n, m, octet_length(wire) AS bytes FROM outbox ORDER BY id",
      ),
      deleteOldest: db.prepare("DELETE FROM outbox WHERE id <= ? AND id NOT BETWEEN ? AND ?"),
      deleteRange: db.prepare("DELETE FROM outbox WHERE id >= ? AND id <= ?"),
      rangeTotals: db.prepare<[number, number], { messages: number; readings: number | null; bytes: number | null }>(
        "SELECT coalesce(sum(m), 0) AS messages, sum(n) AS readings, sum(octet_length(wire)) AS bytes FROM outbox WHERE id >= ? AND id <= ?",
      ),
      maxId: db.prepare<[], { id: number | null }>("SELECT max(id) AS id FROM outbox"),
      quarantineCounts: db.prepare<[], { reason: string; n: number }>(
        "SELECT reason, count(*) AS n FROM quarantine GROUP BY reason",
      ),
    };
    const t = this.stmts.rangeTotals.get(0, Number.MAX_SAFE_INTEGER)!;
    this.totals = { messages: t.messages, readings: t.readings ?? 0, bytes: t.bytes ?? 0 };
    const q = db
      .prepare<[], { rows: number; bytes: number | null }>(
        "SELECT count(*) AS rows, sum(octet_length(payload) + octet_length(detail)) AS bytes FROM quarantine",
      )
      .get()!;
    this.quarantineTotals = { rows: q.rows, bytes: q.bytes ?? 0 };
  }

  /**
   * After the file was opened: report the damage found (loud log line, counter, readings it
   * cost), and make sure no seq handed out before can be handed out again. Seqs skip ahead
   * unless the ledger proves this file's seq is the highest ever given: under NORMAL (a
   * power cut rolls back the last commits, the ledger with them), after any damage, and when
   * there is no ledger of this instance. The skip is written with a full sync before any new
   * reading gets a seq; 1,000,000 is more than a rolled-back WAL can hold.
   */
  private recover(before: LedgerState | undefined, damage: Damage[], onCorrupt: OutboxOptions["onCorrupt"]): void {
    const same = before?.instance === this.instance ? before : undefined;
    const seqSound = Number.isSafeInteger(this.nextSeq) && this.nextSeq >= 1;
    // What the file lost, by the ledger: all it held when it starts over under a new
    // instance, or the seqs it handed out that it no longer knows of (an upper bound: some
    // of them may have been forwarded before the damage).
    const fileLost = !before ? 0 : same ? (seqSound ? Math.max(0, same.nextSeq - this.nextSeq) : 0) : before.readings;
    const fileDamage = damage.find((d) => d.kind !== "rows_damaged");
    if (fileDamage) fileDamage.lost = fileLost;
    else if (fileLost > 0) {
      damage.push({
        kind: "rolled_back",
        detail: same
          ? `the outbox's next seq is ${this.nextSeq} but its ledger says ${same.nextSeq}: commits were lost (a damaged or deleted WAL, or a power cut under synchronous=NORMAL)`
          : `the outbox file is not the one the ledger describes (instance ${this.instance}, ledger ${before!.instance}): the readings it held are gone`,
        lost: fileLost,
      });
    }
    if (!seqSound)
      damage.push({
        kind: "rows_damaged",
        detail: `the stored next seq is not a number (${String(this.nextSeq)})`,
        lost: 0,
      });
    this.damage = damage;
    for (const d of damage) {
      // Without a ledger (an outbox from an older version) a fresh file's loss is unknown.
      const cost =
        before || d.kind === "rows_damaged" ? `about ${d.lost} readings lost` : "readings lost unknown (no ledger)";
      this.logger.error(
        { kind: d.kind, detail: d.detail, movedTo: d.movedTo, lostReadingsEstimate: d.lost, path: this.path },
        `OUTBOX DAMAGED (${d.kind}): ${d.detail}; ${cost}${d.movedTo ? `; evidence kept at ${d.movedTo}` : ""}`,
      );
      onCorrupt?.(d.movedTo ?? this.path, new Error(d.detail));
    }
    const lost = damage.reduce((n, d) => n + d.lost, 0);
    if (lost > 0) this.onDrop?.("outbox_damaged", lost);

    const maxSeq = (this.db.prepare("SELECT max(last_seq) AS s FROM outbox").get() as { s: number | null }).s ?? 0;
    const base = Math.max(seqSound ? this.nextSeq : 1, same?.nextSeq ?? 1, maxSeq + 1);
    // The ledger is written just after each commit, so a crash between the two leaves it one
    // commit behind the file: that is no sign of loss. Ahead of the file, it is (see above).
    const proven = same !== undefined && seqSound && same.nextSeq <= this.nextSeq && damage.length === 0;
    if (base > 1 && (this.synchronous === "NORMAL" || !proven)) {
      this.nextSeq = base + SEQ_SKIP_AFTER_NORMAL;
      if (this.synchronous === "NORMAL") this.db.pragma("synchronous = FULL");
      try {
        this.stmts.setSeq.run(String(this.nextSeq));
      } finally {
        if (this.synchronous === "NORMAL") this.db.pragma("synchronous = NORMAL");
      }
      this.logger.info(
        { from: base, to: this.nextSeq, synchronous: this.synchronous, damaged: damage.length > 0 },
        "seqs skip ahead at start: nothing proves the last seq handed out is on disk, and one seq must never name two readings",
      );
    } else if (!seqSound) {
      this.nextSeq = base;
      this.stmts.setSeq.run(String(this.nextSeq));
    }
    this.writeLedger();
  }

  /** Best effort: a ledger that cannot be written only makes the next start skip seqs ahead. */
  private writeLedger(): void {
    try {
      this.ledger.write({ instance: this.instance, nextSeq: this.nextSeq, readings: this.totals.readings });
    } catch {
      // next start: no proof, so seqs skip ahead
    }
  }

  /**
   * Open (or create) the outbox at `path`. An unreadable file is moved aside and the gateway
   * starts fresh (see open.ts); damage SQLite would repair silently or not see is looked for
   * first (damage.ts), and reported by `recover`.
   */
  static open(path: string, opts: OutboxOptions): Outbox {
    const cap = opts.maxBytes ?? DEFAULT_OUTBOX_MAX_BYTES;
    const dir = dirname(path);
    mkdirSync(dir, { recursive: true });
    const reserve = new DiskReserve(`${path}-reserve`, reserveBytes(cap, diskSize(dir)));
    // What the outbox may take on this disk: its files, what is free, less the reserve and
    // room for the shared-memory index. A disk smaller than the cap sizes the plan (the WAL's
    // share and its checkpoints included), so a checkpoint always has room to run.
    const usable = fileBytes(path).total + diskFree(dir) + reserve.held() - reserve.bytes - 256 * 1024;
    const bound = usable < cap;
    const space = planSpace(bound ? Math.max(usable, 1024 * 1024) : cap);
    if (bound) {
      opts.logger.warn(
        { cap, usable: space.maxBytes, dir },
        "the disk has less room than the outbox cap: the outbox is held to what the disk has, and readings it drops are counted as disk_full",
      );
    }
    // Damage SQLite would repair or not see, looked for before it opens the file.
    const ledger = new Ledger(`${path}-ledger`);
    const before = ledger.read();
    const damage: Damage[] = [];
    const cut = checkTruncated(path, before);
    if (cut) damage.push(cut);
    const wal = inspectWal(`${path}-wal`);
    if (wal.damaged) damage.push({ kind: "wal_damaged", movedTo: keepWal(path), detail: wal.detail, lost: 0 });
    const db = openOutboxDb(path, {
      synchronous: opts.synchronous ?? "FULL",
      space,
      logger: opts.logger,
      onCorrupt: (movedTo, err) => damage.push({ kind: "unreadable", movedTo, detail: err.message, lost: 0 }),
    });
    const rows = checkRows(db, path);
    if (rows) damage.push(rows);
    const outbox = new Outbox(db, path, space, opts, { reserve, bound, ledger });
    outbox.recover(before, damage, opts.onCorrupt);
    outbox.ensureReserve();
    return outbox;
  }

  /** Make the reserve file when the disk has room for it (commits keep that room free). */
  private ensureReserve(): void {
    try {
      this.reserve.ensure(128 * 1024, this.dir);
    } catch (err) {
      // Retried at every maintenance step: said once.
      if (!this.reserveWarned)
        this.logger.warn(
          { err: (err as Error).message, path: this.reserve.path },
          "could not make the disk reserve file; will retry quietly",
        );
      this.reserveWarned = true;
    }
  }

  /**
   * Bytes of the oldest rows to drop so that this commit needs no more of the disk than it
   * has: the database file's growth (rows dropped in the same transaction leave pages that
   * the new rows reuse), with room kept for the transaction's WAL frames and for a reserve
   * that was given back. Dropping rows cannot make room for the WAL itself; the maintenance
   * step's vacuum of the pages they leave does, and the reserve covers the moment between.
   */
  private diskShortfall(txBytes: number): number {
    const pages = this.db.pragma("page_count", { simple: true }) as number;
    const growth = Math.max(0, this.usedBytes() + txBytes - pages * this.space.pageSize);
    const reserveGone = this.reserve.bytes - this.reserve.held();
    const need = growth + 2 * txBytes + reserveGone + 64 * 1024;
    const free = diskFree(this.dir);
    return need <= free ? 0 : Math.min(need - free, growth + txBytes);
  }

  /**
   * The file system said it is full: give the reserve back and copy the WAL into the
   * database (TRUNCATE empties the WAL file), so that deleting the oldest rows has room.
   */
  private reclaimDisk(err: unknown): void {
    const released = this.reserve.release();
    try {
      this.db.pragma("wal_checkpoint(TRUNCATE)");
    } catch {
      // The deletes that follow are what frees room; the next checkpoint will manage.
    }
    // Once a minute at most: a full disk fails every commit and every maintenance step.
    const now = Date.now();
    if (released > 0 || now - this.diskFullLoggedAt >= 60_000) {
      this.diskFullLoggedAt = now;
      this.logger.error(
        {
          err: (err as Error).message,
          policy: this.policy,
          reserveReleased: released,
          free: diskFree(this.dir),
          dir: this.dir,
        },
        "disk full: the outbox gave back its reserve and drops its oldest readings to keep going (counted as disk_full); next report in a minute at the earliest",
      );
    }
  }

  /**
   * Commit accepted and quarantined messages in one transaction (the group commit). Sequence
   * numbers are assigned here and made durable by the same transaction, so a crash can never
   * hand out the same seq twice. When the cap is reached, the policy acts inside the same
   * transaction: rows dropped and rows added are committed together or not at all.
   * Returns the number of readings committed.
   */
  /** `inTransaction` runs inside the commit's transaction, so what it writes commits with the readings. */
  commit(
    accepted: readonly AcceptedMessage[],
    quarantined: readonly QuarantinedMessage[] = [],
    inTransaction?: () => void,
  ): number {
    let rows = this.encode(accepted);
    const txBytes =
      rows.reduce((s, r) => s + rowCost(r.bytes), 0) + quarantined.reduce((s, q) => s + rowCost(quarantineBytes(q)), 0);
    this.makeWalRoom(txBytes);
    // The disk may fill before the cap does (a smaller disk, or other files growing): then
    // the policy makes room inside the file instead of growing it, and says why.
    const short = this.diskShortfall(txBytes);
    try {
      return this.apply(
        this.write(rows, quarantined, short > 0 || this.diskBound ? "disk_full" : "outbox_full", short, inTransaction),
      );
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      // The file system is full (or the hard limit was hit because an estimate was off).
      // Apply the policy with a wide margin and try once more; if that fails as well, the
      // caller keeps the group in memory (bounded) and retries.
      this.reclaimDisk(err);
      let refused = 0;
      if (this.policy === "refuse_newest") {
        refused = rows.reduce((s, r) => s + r.n, 0);
        rows = [];
      }
      // Free at least what this group needs, whatever the cap says: the disk is the limit now.
      const room = Math.ceil(rows.reduce((s, r) => s + rowCost(r.bytes), 0) * 1.5) + 16 * this.space.pageSize;
      const committed = this.apply(this.write(rows, quarantined, "disk_full", room, inTransaction));
      // Counted only now: had this attempt failed too, the caller would have kept them.
      if (refused > 0) this.onDrop?.("disk_full", refused);
      return committed;
    }
  }

  /**
   * Keep the WAL within its share of the cap: when this transaction would not fit beside
   * what the WAL holds, copy the WAL back first (PASSIVE: never waits for a reader). The
   * next write then starts the WAL over, cut back to `journal_size_limit`.
   */
  private makeWalRoom(txBytes: number): void {
    const wal = fileBytes(this.path).wal;
    if (wal > 0 && wal + txBytes * 1.1 > this.space.walReserve) this.db.pragma("wal_checkpoint(PASSIVE)");
  }

  /**
   * Rows for the accepted messages, with seqs from `nextSeq` on (not yet durable): runs of
   * consecutive messages, each run at most ROW_MAX_MESSAGES messages and about ROW_MAX_BYTES
   * (a message larger than that is a row alone). A few rows per group instead of one per
   * message: the insert per row was a fifth of the gateway's CPU under a flood.
   */
  private encode(accepted: readonly AcceptedMessage[]): EncodedRow[] {
    let seq = this.nextSeq;
    const rows: EncodedRow[] = [];
    let row: EncodedRow | undefined;
    let parts: string[] = [];
    const close = () => {
      if (!row) return;
      row.wire = parts.join(",");
      rows.push(row);
      row = undefined;
      parts = [];
    };
    for (const m of accepted) {
      const first = seq;
      const n = m.readings.length;
      seq += n;
      const { payload, encoding } = encodePayload(m.payload);
      const wire = encodeWireMessage(
        { source: m.source, receivedAt: m.receivedAt, payload, encoding, readings: m.readings },
        first,
      );
      const bytes = Buffer.byteLength(wire);
      if (
        row &&
        (row.m >= ROW_MAX_MESSAGES || row.n + n > this.rowMaxReadings || row.bytes + 1 + bytes > ROW_MAX_BYTES)
      )
        close();
      // bytes starts at -1: each message adds its bytes and one comma, and the first has none.
      if (!row)
        row = { firstSeq: first, lastSeq: first - 1, n: 0, m: 0, receivedAt: m.receivedAt, wire: "", bytes: -1 };
      parts.push(wire);
      row.lastSeq = seq - 1;
      row.n += n;
      row.m += 1;
      row.bytes += bytes + 1;
    }
    close();
    return rows;
  }

  /**
   * The commit transaction. The policy acts when the group would take the outbox past its
   * soft budget, or (`mustFree` > 0, after the disk said it was full) to free that much.
   */
  private write(
    rows: readonly EncodedRow[],
    quarantined: readonly QuarantinedMessage[],
    reason: DropReason,
    mustFree: number,
    inTransaction?: () => void,
  ): CommitOutcome {
    return this.db.transaction((): CommitOutcome => {
      inTransaction?.();
      const out: CommitOutcome = {
        kept: rows.length,
        committed: 0,
        nextSeq: this.nextSeq,
        outbox: { messages: 0, readings: 0, bytes: 0 },
        quarantine: { rows: 0, bytes: 0 },
        drops: [],
      };
      const qIncoming = quarantined.reduce((s, q) => s + quarantineBytes(q), 0);
      // Quarantine lives within its own budget (it evicts its oldest rows), so only its growth
      // up to that budget needs room from the outbox.
      const qGrowth = Math.max(0, Math.min(qIncoming, this.space.quarantineBudget - this.quarantineTotals.bytes));
      const need = rows.reduce((s, r) => s + rowCost(r.bytes), 0) + rowCost(qGrowth);
      let over = Math.max(this.usedBytes() + need - this.space.softBudget, mustFree);
      if (over > 0 && this.policy === "drop_oldest") {
        const d = this.dropOldest(over);
        over -= d.cost;
        out.outbox.messages -= d.messages;
        out.outbox.readings -= d.readings;
        out.outbox.bytes -= d.bytes;
        if (d.readings > 0) out.drops.push([reason, d.readings]);
      }
      // refuse_newest (or nothing left to drop): the newest messages of this group stay out.
      let refused = 0;
      while (over > 0 && out.kept > 0) {
        const r = rows[--out.kept]!;
        over -= rowCost(r.bytes);
        refused += r.n;
      }
      if (refused > 0) out.drops.push([reason, refused]);
      for (let i = 0; i < out.kept; i++) {
        const r = rows[i]!;
        this.stmts.insert.run(
          r.firstSeq,
          r.lastSeq,
          r.n,
          r.m,
          r.receivedAt,
          r.wire,
          rowCrc(r.firstSeq, r.lastSeq, r.n, r.m, r.receivedAt, r.wire),
        );
        out.outbox.messages += r.m;
        out.outbox.readings += r.n;
        out.outbox.bytes += r.bytes;
        out.committed += r.n;
        out.nextSeq = r.lastSeq + 1;
      }
      for (const q of quarantined) {
        this.stmts.quarantine.run(q.receivedAt, q.source, q.reason, q.detail.slice(0, 1000), q.payload);
        out.quarantine.rows += 1;
        out.quarantine.bytes += quarantineBytes(q);
      }
      const trimmed = this.trimQuarantine(
        this.quarantineTotals.rows + out.quarantine.rows,
        this.quarantineTotals.bytes + out.quarantine.bytes,
      );
      out.quarantine.rows -= trimmed.rows;
      out.quarantine.bytes -= trimmed.bytes;
      if (out.nextSeq !== this.nextSeq) this.stmts.setSeq.run(String(out.nextSeq));
      return out;
    })();
  }

  /** Book a committed transaction's outcome in memory and report its drops. */
  private apply(o: CommitOutcome): number {
    this.nextSeq = o.nextSeq;
    this.totals.messages += o.outbox.messages;
    this.totals.readings += o.outbox.readings;
    this.totals.bytes += o.outbox.bytes;
    this.quarantineTotals.rows += o.quarantine.rows;
    this.quarantineTotals.bytes += o.quarantine.bytes;
    for (const [reason, n] of o.drops) this.onDrop?.(reason, n);
    this.writeLedger();
    return o.committed;
  }

  /**
   * Delete the oldest rows until about `cost` bytes are free. The batch in flight is kept:
   * its rows must still be there to be resent byte for byte after a crash.
   */
  private dropOldest(cost: number): { messages: number; readings: number; bytes: number; cost: number } {
    const f = this.inflightRange;
    const out = { messages: 0, readings: 0, bytes: 0, cost: 0 };
    let upTo = -1;
    for (const r of this.stmts.oldestFirst.iterate()) {
      if (out.cost >= cost) break;
      if (f && r.id >= f.firstId && r.id <= f.lastId) continue;
      upTo = r.id;
      out.messages += r.m;
      out.readings += r.n;
      out.bytes += r.bytes;
      out.cost += rowCost(r.bytes);
    }
    if (upTo >= 0) this.stmts.deleteOldest.run(upTo, f?.firstId ?? 0, f?.lastId ?? -1);
    return out;
  }

  private trimQuarantine(rows: number, bytes: number): { rows: number; bytes: number } {
    const out = { rows: 0, bytes: 0 };
    if (rows <= this.maxQuarantineRows && bytes <= this.space.quarantineBudget) return out;
    let upTo = -1;
    for (const q of this.stmts.quarantineOldest.iterate()) {
      if (rows - out.rows <= this.maxQuarantineRows && bytes - out.bytes <= this.space.quarantineBudget) break;
      upTo = q.id;
      out.rows += 1;
      out.bytes += q.bytes;
    }
    if (upTo >= 0) this.stmts.deleteQuarantineUpTo.run(upTo);
    return out;
  }

  /** Bytes of pages in use (free pages excluded: SQLite reuses them before growing the file). */
  usedBytes(): number {
    const pages = this.db.pragma("page_count", { simple: true }) as number;
    const free = this.db.pragma("freelist_count", { simple: true }) as number;
    return (pages - free) * this.space.pageSize;
  }

  /** Rows with `afterId < id < beforeId`, oldest first. Iterate and stop early: batches stay small. */
  scan(afterId: number, beforeId = Number.MAX_SAFE_INTEGER): IterableIterator<OutboxRow> {
    return this.stmts.scan.iterate(afterId, beforeId);
  }

  /** The oldest row with `afterId < id < beforeId`. */
  head(afterId: number, beforeId = Number.MAX_SAFE_INTEGER): { id: number; receivedAt: number } | undefined {
    return this.stmts.head.get(afterId, beforeId);
  }

  /** The rows of a recorded batch, if they are all still there (their seqs say so). */
  rowsOf(r: BatchRange): OutboxRow[] | undefined {
    const rows = this.stmts.range.all(r.firstId, r.lastId);
    const first = rows[0];
    const last = rows[rows.length - 1];
    return first && last && first.firstSeq === r.firstSeq && last.lastSeq === r.lastSeq ? rows : undefined;
  }

  /** Highest row id (0 when empty). */
  maxId(): number {
    return this.stmts.maxId.get()?.id ?? 0;
  }

  /** The batch being published (recorded before its publish), if any. */
  inflight(): BatchRange | undefined {
    return this.inflightRange;
  }

  /**
   * One transaction: remove the rows of the batch JetStream acknowledged, and record the
   * batch about to be published. Recording before publishing is what makes a restart resend
   * exactly the same rows under the same `Nats-Msg-Id`, whatever the batch settings then.
   */
  settle(acked: BatchRange | undefined, next: BatchRange | undefined, ackedTotals?: Totals): void {
    // Written without an fsync of its own (synchronous=NORMAL for this transaction): losing
    // it to a power cut loses no reading, only the dedup (the rows go again, maybe in other
    // batches, and the hub counts them as duplicates), and the next commit's fsync makes it
    // durable anyway. Two of the three fsyncs per batch cycle of a quiet gateway saved.
    const full = this.synchronous === "FULL";
    if (full) this.db.pragma("synchronous = NORMAL");
    try {
      try {
        this.settleTx(acked, next, ackedTotals);
      } catch (err) {
        // Deleting rows writes pages to the WAL first: on a full disk, make room and go again.
        if (!isDiskFull(err)) throw err;
        this.reclaimDisk(err);
        this.settleTx(acked, next, ackedTotals);
      }
    } finally {
      if (full) this.db.pragma("synchronous = FULL");
    }
  }

  private settleTx(acked: BatchRange | undefined, next: BatchRange | undefined, ackedTotals?: Totals): void {
    const removed = this.db.transaction(() => {
      let t: Totals = { messages: 0, readings: 0, bytes: 0 };
      if (acked) {
        // The batch's own totals when the caller has them (its rows cannot have changed: the
        // full-outbox policy spares the batch in flight); counting them again costs a scan.
        if (ackedTotals) t = ackedTotals;
        else {
          const r = this.stmts.rangeTotals.get(acked.firstId, acked.lastId)!;
          t = { messages: r.messages, readings: r.readings ?? 0, bytes: r.bytes ?? 0 };
        }
        this.stmts.deleteRange.run(acked.firstId, acked.lastId);
      }
      if (next) this.stmts.setInflight.run(JSON.stringify(next));
      else if (this.inflightRange) this.stmts.clearInflight.run();
      return t;
    })();
    this.totals.messages -= removed.messages;
    this.totals.readings -= removed.readings;
    this.totals.bytes -= removed.bytes;
    this.inflightRange = next;
    if (acked) this.writeLedger();
  }

  stats(): OutboxStats {
    const oldest = this.totals.messages > 0 ? (this.head(0)?.receivedAt ?? null) : null;
    return { ...this.totals, oldestReceivedAt: oldest };
  }

  /** What the outbox takes on disk now (database file + WAL), against the cap. */
  fileBytes(): { db: number; wal: number; total: number } {
    return fileBytes(this.path);
  }

  /**
   * Give free pages back to the file system, a step at a time (each step holds the event
   * loop for a moment). SQLite checkpoints the WAL after the step on its own
   * (`wal_autocheckpoint`), which is when the database file actually shrinks.
   */
  maintain(): number {
    const free = this.db.pragma("freelist_count", { simple: true }) as number;
    // A few free pages are kept: the next commits would only have to grow the file again.
    const keep = Math.floor(this.space.vacuumStepPages / 2);
    let given = 0;
    if (free > keep + 8) {
      given = Math.min(free - keep, this.space.vacuumStepPages);
      this.makeWalRoom(given * this.space.pageSize);
      try {
        this.db.pragma(`incremental_vacuum(${given})`);
      } catch (err) {
        if (!isDiskFull(err)) throw err;
        this.reclaimDisk(err);
        given = 0;
      }
      limitPages(this.db, this.space);
    }
    // The reserve comes back once the disk has room again (after a drain, say).
    if (this.reserve.held() < this.reserve.bytes) this.ensureReserve();
    return given;
  }

  quarantineCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.stmts.quarantineCounts.all()) out[r.reason] = r.n;
    return out;
  }

  quarantined(
    limit = 100,
  ): { id: number; receivedAt: number; source: string; reason: string; detail: string; payload: Buffer }[] {
    return this.db
      .prepare(
        "SELECT id, received_at AS receivedAt, source, reason, detail, payload FROM quarantine ORDER BY id DESC LIMIT ?",
      )
      .all(limit) as {
      id: number;
      receivedAt: number;
      source: string;
      reason: string;
      detail: string;
      payload: Buffer;
    }[];
  }

  /** The record of committed MQTT deliveries, kept in this database (one per outbox). */
  deliveryLog(): DeliveryLog {
    this.deliveries ??= new DeliveryLog(this.db);
    return this.deliveries;
  }

  get nextSequence(): number {
    return this.nextSeq;
  }

  close(): void {
    if (this.db.open) {
      this.db.pragma("wal_checkpoint(TRUNCATE)");
      this.db.close();
    }
    this.ledger.close();
  }
}

function quarantineBytes(q: QuarantinedMessage): number {
  return q.payload.byteLength + Buffer.byteLength(q.detail.slice(0, 1000));
}
