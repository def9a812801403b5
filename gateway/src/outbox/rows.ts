import { inflateRawSync } from "node:zlib";
import type Database from "better-sqlite3";
import { rowCrc } from "./damage";
import type { BatchRange, EncodedRow, OutboxRow, Totals } from "./types";

/** What a row takes in the file: its text, or its packed bytes. */
const STORED_BYTES = "octet_length(wire) + coalesce(octet_length(packed), 0)";
const ROW_COLUMNS =
  "id, first_seq AS firstSeq, last_seq AS lastSeq, n, m, received_at AS receivedAt, wire, packed, " +
  `${STORED_BYTES} AS bytes`;

type StoredRow = Omit<OutboxRow, "wireBytes"> & { packed: Buffer | null };

/** A row as read: a packed row's text inflated, and the size of its text beside what it takes on disk. */
function unpack(r: StoredRow): OutboxRow {
  if (r.packed === null) return Object.assign(r, { wireBytes: r.bytes });
  const wire = inflateRawSync(r.packed).toString("utf8");
  return Object.assign(r, { wire, wireBytes: Buffer.byteLength(wire) });
}

type RangeTotals = { messages: number; readings: number | null; bytes: number | null };

/**
 * The `outbox` table: rows of wire messages, read by id. Every method is one statement; the
 * caller (store.ts) puts the writes of one operation in one transaction.
 */
export class OutboxRows {
  private readonly stmts;

  constructor(db: Database.Database) {
    this.stmts = {
      insert: db.prepare(
        "INSERT INTO outbox (first_seq, last_seq, n, m, received_at, wire, crc, packed)" +
          " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      scan: db.prepare<[number, number], StoredRow>(
        `SELECT ${ROW_COLUMNS} FROM outbox WHERE id > ? AND id < ? ORDER BY id`,
      ),
      range: db.prepare<[number, number], StoredRow>(
        `SELECT ${ROW_COLUMNS} FROM outbox WHERE id >= ? AND id <= ? ORDER BY id`,
      ),
      head: db.prepare<[number, number], { id: number; receivedAt: number }>(
        "SELECT id, received_at AS receivedAt FROM outbox WHERE id > ? AND id < ? ORDER BY id LIMIT 1",
      ),
      oldestFirst: db.prepare<[], { id: number; n: number; m: number; bytes: number }>(
        `SELECT id, n, m, ${STORED_BYTES} AS bytes FROM outbox ORDER BY id`,
      ),
      deleteOldest: db.prepare("DELETE FROM outbox WHERE id <= ? AND id NOT BETWEEN ? AND ?"),
      deleteRange: db.prepare("DELETE FROM outbox WHERE id >= ? AND id <= ?"),
      rangeTotals: db.prepare<[number, number], RangeTotals>(
        `SELECT coalesce(sum(m), 0) AS messages, sum(n) AS readings, sum(${STORED_BYTES}) AS bytes` +
          " FROM outbox WHERE id >= ? AND id <= ?",
      ),
      maxId: db.prepare<[], { id: number | null }>("SELECT max(id) AS id FROM outbox"),
      maxSeq: db.prepare<[], { s: number | null }>("SELECT max(last_seq) AS s FROM outbox"),
    };
  }

  insert(r: EncodedRow): void {
    // The checksum is of the text, packed or not: unpacking gives back a row that checks.
    const crc = rowCrc(r.firstSeq, r.lastSeq, r.n, r.m, r.receivedAt, r.wire);
    const packed = r.packed ?? null;
    this.stmts.insert.run(r.firstSeq, r.lastSeq, r.n, r.m, r.receivedAt, packed ? "" : r.wire, crc, packed);
  }

  /** Rows with `afterId < id < beforeId`, oldest first. */
  *scan(afterId: number, beforeId: number): IterableIterator<OutboxRow> {
    for (const r of this.stmts.scan.iterate(afterId, beforeId)) yield unpack(r);
  }

  head(afterId: number, beforeId: number): { id: number; receivedAt: number } | undefined {
    return this.stmts.head.get(afterId, beforeId);
  }

  /** The rows of a recorded batch, if they are all still there (their seqs say so). */
  of(r: BatchRange): OutboxRow[] | undefined {
    const rows = this.stmts.range.all(r.firstId, r.lastId).map(unpack);
    const first = rows[0];
    const last = rows[rows.length - 1];
    return first && last && first.firstSeq === r.firstSeq && last.lastSeq === r.lastSeq ? rows : undefined;
  }

  /** Id, counts and bytes of every row, oldest first (iterate and stop early). */
  oldestFirst(): IterableIterator<{ id: number; n: number; m: number; bytes: number }> {
    return this.stmts.oldestFirst.iterate();
  }

  /** Delete the rows up to `upTo`, except those of `spare`. */
  deleteOldest(upTo: number, spare: BatchRange | undefined): void {
    this.stmts.deleteOldest.run(upTo, spare?.firstId ?? 0, spare?.lastId ?? -1);
  }

  deleteRange(firstId: number, lastId: number): void {
    this.stmts.deleteRange.run(firstId, lastId);
  }

  /** Messages, readings and bytes of the rows with `firstId <= id <= lastId`. */
  totals(firstId = 0, lastId = Number.MAX_SAFE_INTEGER): Totals {
    const t = this.stmts.rangeTotals.get(firstId, lastId)!;
    return { messages: t.messages, readings: t.readings ?? 0, bytes: t.bytes ?? 0 };
  }

  /** Highest row id (0 when empty). */
  maxId(): number {
    return this.stmts.maxId.get()?.id ?? 0;
  }

  /** Highest seq in a row (0 when empty). */
  maxSeq(): number {
    return this.stmts.maxSeq.get()?.s ?? 0;
  }
}
