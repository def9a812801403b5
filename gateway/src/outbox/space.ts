import { statSync } from "node:fs";

/**
 * How the outbox's byte cap is spent. The cap covers what the outbox takes on disk: the
 * database file plus its write-ahead log. The WAL gets a fixed share, sized so that one
 * group commit, one vacuum step and the pages waiting for a checkpoint fit in it; the rest
 * is the database's, enforced twice: softly (oldest rows dropped, or newest refused, before a
 * commit would pass `softBudget`) and hard (`max_page_count`, so SQLite itself refuses to
 * grow the file past `dataBudget` if an estimate was wrong).
 */
export interface SpacePlan {
  /** The cap: database file + WAL, in bytes. */
  maxBytes: number;
  pageSize: number;
  /** Share of the cap kept for the WAL. */
  walReserve: number;
  /** The database file's hard limit (`max_page_count` × page size). */
  dataBudget: number;
  /** Where the full-outbox policy starts to act: a little under the hard limit. */
  softBudget: number;
  /** Bytes of quarantined messages kept at most (oldest evicted first). */
  quarantineBudget: number;
  /** `wal_autocheckpoint`: pages in the WAL before SQLite copies them back. */
  checkpointPages: number;
  /** `journal_size_limit`: the WAL file is cut back to this after a checkpoint. */
  journalSizeLimit: number;
  /** Free pages given back to the file system per maintenance step (small: it blocks ingest). */
  vacuumStepPages: number;
  /** A group commit closes at this many bytes, so one transaction always fits the WAL's share. */
  commitMaxBytes: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export function planSpace(maxBytes: number, pageSize = 4096): SpacePlan {
  const walReserve = clamp(Math.floor(maxBytes / 8), 256 * KiB, 32 * MiB);
  const quarter = Math.floor(walReserve / 4);
  const dataBudget = maxBytes - walReserve;
  return {
    maxBytes,
    pageSize,
    walReserve,
    dataBudget,
    softBudget: Math.floor(dataBudget * 0.95),
    quarantineBudget: Math.min(16 * MiB, Math.floor(maxBytes / 10)),
    checkpointPages: Math.max(8, Math.floor(quarter / pageSize)),
    journalSizeLimit: quarter,
    vacuumStepPages: Math.max(8, Math.floor(quarter / pageSize)),
    commitMaxBytes: Math.min(MiB, quarter),
  };
}

/**
 * What a row takes in the database, estimated: its bytes, the record header and cell
 * pointer, and some slack for partly filled and interior B-tree pages. Over-estimating is
 * the safe side: it only makes the policy act a little early.
 */
export function rowCost(bytes: number): number {
  return Math.ceil((bytes + 32) * 1.1);
}

/** Bytes the outbox takes on disk now: the database file plus its WAL. */
export function fileBytes(path: string): { db: number; wal: number; total: number } {
  const db = sizeOf(path);
  const wal = sizeOf(`${path}-wal`);
  return { db, wal, total: db + wal };
}

function sizeOf(p: string): number {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
