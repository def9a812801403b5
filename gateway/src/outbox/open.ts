import { existsSync, mkdirSync, renameSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { Logger } from "@datalab/shared";
import { MIGRATIONS, OUTBOX_FORMAT } from "./schema";
import type { SpacePlan } from "./space";

export type Synchronous = "FULL" | "NORMAL";

export interface OpenOptions {
  synchronous: Synchronous;
  space: SpacePlan;
  logger: Logger;
  /** Called when a database file could not be opened and was moved aside. */
  onCorrupt?: ((movedTo: string, err: Error) => void) | undefined;
}

/**
 * Open (or create) the outbox database at `path`. A file SQLite cannot read is moved aside
 * (with its WAL) with a loud log line, and a fresh one is created: a gateway that
 * crash-loops on a damaged SD card would lose every new reading, while the damaged file
 * stays there for someone to look at.
 */
/** SQLite page cache of the outbox connection, KiB. */
export const OUTBOX_CACHE_KIB = 2_048;

export function openOutboxDb(path: string, opts: OpenOptions): Database.Database {
  mkdirSync(dirname(path), { recursive: true });
  try {
    return openDb(path, opts);
  } catch (err) {
    if (!isCorruption(err)) throw err;
    const movedTo = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    for (const suffix of ["", "-wal", "-shm"]) {
      if (existsSync(path + suffix)) renameSync(path + suffix, movedTo + suffix);
    }
    opts.logger.error(
      { err: (err as Error).message, code: (err as { code?: string }).code, path, movedTo },
      "OUTBOX DATABASE IS UNREADABLE: moved it aside and starting with an empty outbox" +
        " (readings in the old file are not forwarded)",
    );
    opts.onCorrupt?.(movedTo, err as Error);
    return openDb(path, opts);
  }
}

function openDb(path: string, opts: OpenOptions): Database.Database {
  const db = new Database(path);
  try {
    // Any read makes SQLite look at the header: a file that is not a database fails here.
    const fresh = (db.pragma("user_version", { simple: true }) as number) === 0 && !hasTables(db);
    // auto_vacuum can only be chosen before the first table exists. INCREMENTAL lets the
    // maintenance step give free pages back to the file system a few at a time, so a file
    // that grew during an outage shrinks again after the drain.
    if (fresh) db.pragma("auto_vacuum = INCREMENTAL");
    db.pragma("journal_mode = WAL");
    // FULL: the WAL is fsynced at every commit, so a committed group survives a power cut.
    // NORMAL: fsync only at checkpoints; a commit survives a crash of the gateway (the OS has
    // it), but the last commits before a power cut may be lost. See docs/gateway-durability.md.
    db.pragma(`synchronous = ${opts.synchronous}`);
    db.pragma("busy_timeout = 5000");
    // better-sqlite3 builds SQLite with a 16 MB page cache per connection. The outbox is
    // written at its tail and read near its head, pages the OS caches anyway: 2 MiB keeps
    // the hot pages and the gateway's memory small.
    db.pragma(`cache_size = -${OUTBOX_CACHE_KIB}`);
    db.pragma(`wal_autocheckpoint = ${opts.space.checkpointPages}`);
    db.pragma(`journal_size_limit = ${opts.space.journalSizeLimit}`);
    const check = db.pragma("quick_check(1)", { simple: true });
    if (check !== "ok") throw Object.assign(new Error(`quick_check: ${String(check)}`), { code: "SQLITE_CORRUPT" });
    migrate(db);
    if ((db.pragma("auto_vacuum", { simple: true }) as number) !== 2) {
      // A file made before auto_vacuum was set: switching needs one full VACUUM.
      opts.logger.info({ path }, "converting the outbox to incremental auto-vacuum (one-time VACUUM)");
      db.pragma("auto_vacuum = INCREMENTAL");
      db.exec("VACUUM");
    }
    limitPages(db, opts.space);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** The hard cap: SQLite answers SQLITE_FULL rather than grow the file past the data budget. */
export function limitPages(db: Database.Database, space: SpacePlan): void {
  db.pragma(`max_page_count = ${Math.max(16, Math.floor(space.dataBudget / space.pageSize))}`);
}

function hasTables(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_schema LIMIT 1").get() !== undefined;
}

function migrate(db: Database.Database): void {
  const version = db.pragma("user_version", { simple: true }) as number;
  if (version > OUTBOX_FORMAT) {
    throw new Error(
      `the outbox was written by a newer release (format ${version}; this release reads up to ${OUTBOX_FORMAT}): ` +
        `run that release's \`datalab-gateway outbox downgrade --to ${OUTBOX_FORMAT}\` first ` +
        "(install.sh --rollback does it)",
    );
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

export function isCorruption(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? "";
  return code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT");
}

export function isDiskFull(err: unknown): boolean {
  // SQLITE_FULL: the file system is full (ENOSPC), or the file reached max_page_count.
  return (err as { code?: string }).code === "SQLITE_FULL";
}
