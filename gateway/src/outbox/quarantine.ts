import type Database from "better-sqlite3";
import type { QuarantineEntry, QuarantinedMessage } from "./types";

/** Rows and bytes (payload + detail) of quarantined messages. */
export interface QuarantineTotals {
  rows: number;
  bytes: number;
}

/** Characters of a reason's detail kept. */
const DETAIL_MAX = 1000;

/**
 * The `quarantine` table: what could not be decoded, with its raw bytes and the reason. It
 * lives within its own budget (rows and bytes), evicting its oldest rows, so bad input never
 * takes the room of good readings beyond that budget.
 */
export class Quarantine {
  private readonly stmts;
  private totals: QuarantineTotals;

  constructor(
    db: Database.Database,
    /** Bytes kept at most. */
    readonly budget: number,
    /** Rows kept at most. */
    readonly maxRows: number,
  ) {
    this.stmts = {
      insert: db.prepare(
        "INSERT INTO quarantine (received_at, source, reason, detail, payload) VALUES (?, ?, ?, ?, ?)",
      ),
      oldest: db.prepare<[], { id: number; bytes: number }>(
        "SELECT id, octet_length(payload) + octet_length(detail) AS bytes FROM quarantine ORDER BY id",
      ),
      deleteUpTo: db.prepare("DELETE FROM quarantine WHERE id <= ?"),
      counts: db.prepare<[], { reason: string; n: number }>(
        "SELECT reason, count(*) AS n FROM quarantine GROUP BY reason",
      ),
      newest: db.prepare<[number], QuarantineEntry>(
        "SELECT id, received_at AS receivedAt, source, reason, detail, payload" +
          " FROM quarantine ORDER BY id DESC LIMIT ?",
      ),
    };
    const q = db
      .prepare<[], { rows: number; bytes: number | null }>(
        "SELECT count(*) AS rows, sum(octet_length(payload) + octet_length(detail)) AS bytes FROM quarantine",
      )
      .get()!;
    this.totals = { rows: q.rows, bytes: q.bytes ?? 0 };
  }

  /** Bytes these messages would add before eviction: the room they may need from the outbox. */
  growth(incoming: readonly QuarantinedMessage[]): number {
    const bytes = incoming.reduce((s, q) => s + quarantineBytes(q), 0);
    return Math.max(0, Math.min(bytes, this.budget - this.totals.bytes));
  }

  /**
   * Inside the commit transaction: insert these messages and evict the oldest beyond the
   * budget. Returns the change, to be booked with `book` once the transaction committed.
   */
  add(incoming: readonly QuarantinedMessage[]): QuarantineTotals {
    const out = { rows: 0, bytes: 0 };
    for (const q of incoming) {
      this.stmts.insert.run(q.receivedAt, q.source, q.reason, q.detail.slice(0, DETAIL_MAX), q.payload);
      out.rows += 1;
      out.bytes += quarantineBytes(q);
    }
    const trimmed = this.trim(this.totals.rows + out.rows, this.totals.bytes + out.bytes);
    return { rows: out.rows - trimmed.rows, bytes: out.bytes - trimmed.bytes };
  }

  /** After the commit: the totals follow what is now on disk (a rolled-back change is never booked). */
  book(change: QuarantineTotals): void {
    this.totals.rows += change.rows;
    this.totals.bytes += change.bytes;
  }

  private trim(rows: number, bytes: number): QuarantineTotals {
    const out = { rows: 0, bytes: 0 };
    if (rows <= this.maxRows && bytes <= this.budget) return out;
    let upTo = -1;
    for (const q of this.stmts.oldest.iterate()) {
      if (rows - out.rows <= this.maxRows && bytes - out.bytes <= this.budget) break;
      upTo = q.id;
      out.rows += 1;
      out.bytes += q.bytes;
    }
    if (upTo >= 0) this.stmts.deleteUpTo.run(upTo);
    return out;
  }

  /** Quarantined messages by reason. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.stmts.counts.all()) out[r.reason] = r.n;
    return out;
  }

  /** The newest `limit` quarantined messages, newest first. */
  newest(limit: number): QuarantineEntry[] {
    return this.stmts.newest.all(limit);
  }
}

/** What a quarantined message takes against the budget: its payload and its (cut) detail. */
export function quarantineBytes(q: QuarantinedMessage): number {
  return q.payload.byteLength + Buffer.byteLength(q.detail.slice(0, DETAIL_MAX));
}
