import { existsSync } from "node:fs";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import Database from "better-sqlite3";
import { namedMessage } from "@datalab/shared";
import { rowCrc } from "./damage";
import { OUTBOX_FORMAT } from "./schema";
import { ROW_MAX_BYTES } from "./types";

export interface DowngradeResult {
  /** Rows whose packed text was written back to `wire` (5 or 4 → 3). */
  unpacked: number;
  /** Rows in wire format 2 written again in format 1 (5 → 4 or 3). */
  converted: number;
  from: number;
  to: number;
}

/** Rows unpacked per read: the Pi keeps only a slice of a large outbox in memory at once. */
const CHUNK_ROWS = 256;

/**
 * Turn the outbox at `path` back into an older format, for a rollback to a release that
 * reads only that one: 5 → 4 writes rows of wire format 2 again in format 1 (a release
 * reading format 4 would send them as format 1); 4 → 3 unpacks packed rows (format 3 cannot
 * read them) and drops the `packed` column. One transaction: on any error the file is left
 * as it was.
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
    if (result.from !== result.to) db.pragma("wal_checkpoint(TRUNCATE)");
    return result;
  } finally {
    db.close();
  }
}

function downgradeInTransaction(db: Database.Database, to: number): DowngradeResult {
  const from = db.pragma("user_version", { simple: true }) as number;
  if (to < 3) throw new Error(`outbox downgrade --to ${to}: only format 3 and later are supported`);
  if (to >= from) return { unpacked: 0, converted: 0, from, to: from };
  if (from > OUTBOX_FORMAT)
    throw new Error(
      `the outbox is in format ${from}, newer than this release knows (${OUTBOX_FORMAT}): ` +
        "downgrade it with the release that wrote it",
    );
  let at = from;
  let converted = 0;
  let unpacked = 0;
  if (at === 5) {
    converted = toWireFormat1(db);
    db.pragma("user_version = 4");
    at = 4;
  }
  if (at === 4 && to < 4) {
    unpacked = unpackRows(db);
    db.exec("ALTER TABLE outbox DROP COLUMN packed");
    db.pragma("user_version = 3");
    at = 3;
  }
  return { unpacked, converted, from, to: at };
}

type ChunkRow = { id: number; firstSeq: number; lastSeq: number; n: number; m: number; receivedAt: number } & {
  wire: string;
  packed: Buffer | null;
};

/** Every row, a chunk at a time, oldest first. */
function* chunks(db: Database.Database, where: string): Generator<ChunkRow> {
  const next = db.prepare<[number, number], ChunkRow>(
    "SELECT id, first_seq AS firstSeq, last_seq AS lastSeq, n, m, received_at AS receivedAt, wire, packed" +
      ` FROM outbox WHERE ${where} AND id > ? ORDER BY id LIMIT ?`,
  );
  for (let after = 0; ; ) {
    const rows = next.all(after, CHUNK_ROWS);
    if (rows.length === 0) return;
    for (const r of rows) {
      yield r;
      after = r.id;
    }
  }
}

function textOf(r: ChunkRow): string {
  if (r.packed === null) return r.wire;
  try {
    return inflateRawSync(r.packed).toString("utf8");
  } catch (err) {
    // Refused rather than dropped: nothing is lost, and the current release can still read the file.
    throw new Error(
      `outbox row ${r.id}: its packed text does not inflate (${(err as Error).message}); nothing was changed`,
    );
  }
}

/** 4 → 3: packed rows get their text back in `wire` (their `crc` is of that text already). */
function unpackRows(db: Database.Database): number {
  const unpack = db.prepare<[string, number]>("UPDATE outbox SET wire = ?, packed = NULL WHERE id = ?");
  let unpacked = 0;
  for (const r of chunks(db, "packed IS NOT NULL")) {
    unpack.run(textOf(r), r.id);
    unpacked++;
  }
  return unpacked;
}

/**
 * 5 → 4: rows in wire format 2 are written again in format 1, which a release reading format
 * 4 sends, with the checksum of the new text; a packed row stays packed when its new text
 * still fits a page deflated, so a large outbox does not grow out of its cap on the way back.
 * Rows already in format 1 stay as they are.
 */
function toWireFormat1(db: Database.Database): number {
  const write = db.prepare<[string, Buffer | null, number, number]>(
    "UPDATE outbox SET wire = ?, packed = ?, crc = ? WHERE id = ?",
  );
  let converted = 0;
  for (const r of chunks(db, "1")) {
    const text = textOf(r);
    if (text.charCodeAt(0) !== 0x5b) continue; // [: format 2
    let messages: unknown[];
    try {
      messages = JSON.parse(`[${text}]`) as unknown[];
    } catch (err) {
      throw new Error(`outbox row ${r.id}: its text is not JSON (${(err as Error).message}); nothing was changed`);
    }
    const named = messages.map((m, i) => {
      const n = namedMessage(m);
      if ("error" in n) throw new Error(`outbox row ${r.id}, message ${i}: ${n.error}; nothing was changed`);
      return JSON.stringify(n.message);
    });
    const wire = named.join(",");
    const crc = rowCrc(r.firstSeq, r.lastSeq, r.n, r.m, r.receivedAt, wire);
    const packed = r.packed === null ? null : deflateRawSync(Buffer.from(wire, "utf8"), { level: 1 });
    if (packed !== null && packed.byteLength <= ROW_MAX_BYTES) write.run("", packed, crc, r.id);
    else write.run(wire, null, crc, r.id);
    converted++;
  }
  return converted;
}
