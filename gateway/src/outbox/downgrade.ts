import { existsSync } from "node:fs";
import { inflateRawSync } from "node:zlib";
import Database from "better-sqlite3";
import { OUTBOX_FORMAT } from "./schema";

export interface DowngradeResult {
  /** Rows whose packed text was written back to `wire`. */
  unpacked: number;
  from: number;
  to: number;
}

/** Rows unpacked per read: the Pi keeps only a slice of a large outbox in memory at once. */
const CHUNK_ROWS = 256;

/**
 * Turn the outbox at `path` back into an older format, for a rollback to a release that
 * reads only that one (format 3 cannot read packed rows). Only 4 → 3 is supported: packed
 * rows get their text back in `wire` (their `crc` is of that text already), then the
 * `packed` column goes. One transaction: on any error the file is left as it was.
 */
export function downgradeOutbox(path: string, to: number): DowngradeResult {
  if (!Number.isInteger(to)) throw new Error(`outbox downgrade: format ${to} is not a whole number`);
  if (!existsSync(path)) throw new Error(`no outbox at ${path} (is DATALAB_DATA_DIR right?)`);
  const db = new Database(path, { fileMustExist: true });
  try {
    // Exclusive locking: a connection still open anywhere (a running gateway, even idle
    // between commits) keeps this from starting, so no live gateway sees its schema change.
    db.pragma("busy_timeout = 1000");
    db.pragma("locking_mode = EXCLUSIVE");
    try {
      db.exec("BEGIN IMMEDIATE");
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_BUSY")
        throw new Error(`the outbox is in use: stop the gateway first (${path})`);
      throw err;
    }
    let result: DowngradeResult;
    try {
      result = downgradeInTransaction(db, to);
      db.exec("COMMIT");
    } catch (err) {
      if (db.inTransaction) db.exec("ROLLBACK");
      throw err;
    }
    if (result.unpacked > 0 || result.from !== result.to) db.pragma("wal_checkpoint(TRUNCATE)");
    return result;
  } finally {
    db.close();
  }
}

function downgradeInTransaction(db: Database.Database, to: number): DowngradeResult {
  const from = db.pragma("user_version", { simple: true }) as number;
  if (to < 3) throw new Error(`outbox downgrade --to ${to}: only format 3 and later are supported`);
  if (to >= from) return { unpacked: 0, from, to: from };
  if (from > OUTBOX_FORMAT)
    throw new Error(
      `the outbox is in format ${from}, newer than this release knows (${OUTBOX_FORMAT}): ` +
        "downgrade it with the release that wrote it",
    );
  if (from !== 4 || to !== 3)
    throw new Error(`outbox downgrade from format ${from} to ${to}: only 4 to 3 is supported`);

  const next = db.prepare<[number, number], { id: number; packed: Buffer }>(
    "SELECT id, packed FROM outbox WHERE packed IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
  );
  const unpack = db.prepare<[string, number]>("UPDATE outbox SET wire = ?, packed = NULL WHERE id = ?");
  let unpacked = 0;
  for (let after = 0; ; ) {
    const rows = next.all(after, CHUNK_ROWS);
    if (rows.length === 0) break;
    for (const r of rows) {
      let text: string;
      try {
        text = inflateRawSync(r.packed).toString("utf8");
      } catch (err) {
        // Refused rather than dropped: nothing is lost, and the current release can still read the file.
        throw new Error(
          `outbox row ${r.id}: its packed text does not inflate (${(err as Error).message}); nothing was changed`,
        );
      }
      unpack.run(text, r.id);
      unpacked++;
      after = r.id;
    }
  }
  db.exec("ALTER TABLE outbox DROP COLUMN packed");
  db.pragma("user_version = 3");
  return { unpacked, from, to: 3 };
}
