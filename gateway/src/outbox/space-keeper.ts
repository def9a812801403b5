import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type Database from "better-sqlite3";
import type { Logger } from "@datalab/shared";
import { diskFree, diskSize, DiskReserve, reserveBytes } from "./disk";
import { isDiskFull, limitPages, type Synchronous } from "./open";
import { fileBytes, planSpace, type SpacePlan } from "./space";
import type { FullPolicy } from "./types";

/** The space plan for an outbox at `path`, and whether the disk rather than the cap set it. */
export interface SpaceLimits {
  space: SpacePlan;
  /** Given back to the file system when it reports the disk full (see disk.ts). */
  reserve: DiskReserve;
  /** The disk, not the configured cap, set the space plan: what the plan drops is `disk_full`. */
  bound: boolean;
}

/**
 * Sizes the outbox to its cap or to its disk, whichever is smaller. What the outbox may take
 * on the disk: its files, what is free, less the reserve and room for the shared-memory index.
 * A disk smaller than the cap sizes the plan (the WAL's share and its checkpoints included),
 * so a checkpoint always has room to run.
 */
export function limitsFor(path: string, cap: number, logger: Logger): SpaceLimits {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const reserve = new DiskReserve(`${path}-reserve`, reserveBytes(cap, diskSize(dir)));
  const usable = fileBytes(path).total + diskFree(dir) + reserve.held() - reserve.bytes - 256 * 1024;
  const bound = usable < cap;
  const space = planSpace(bound ? Math.max(usable, 1024 * 1024) : cap);
  if (bound) {
    logger.warn(
      { cap, usable: space.maxBytes, dir },
      "the disk has less room than the outbox cap: the outbox is held to what the disk has," +
        " and readings it drops are counted as disk_full",
    );
  }
  return { space, reserve, bound };
}

/**
 * Keeps the outbox inside its space: the WAL within its share (checkpoints), free pages given
 * back (incremental vacuum), the disk reserve, the way out of a full disk, and the per
 * transaction `synchronous` flips. It never deletes a reading: the full policy does (full-policy.ts).
 */
export class SpaceKeeper {
  readonly space: SpacePlan;
  readonly diskBound: boolean;
  private readonly reserve: DiskReserve;
  private readonly dir: string;
  private diskFullLoggedAt = 0;
  private reserveWarned = false;
  /** Prepared once: every commit reads both, and `db.pragma` compiles its statement each time. */
  private readonly pageCount: Database.Statement<[], number>;
  private readonly freelistCount: Database.Statement<[], number>;

  constructor(
    private readonly db: Database.Database,
    private readonly path: string,
    limits: SpaceLimits,
    private readonly synchronous: Synchronous,
    private readonly policy: FullPolicy,
    private readonly logger: Logger,
  ) {
    this.space = limits.space;
    this.reserve = limits.reserve;
    this.diskBound = limits.bound;
    this.dir = dirname(path);
    this.pageCount = db.prepare<[], number>("PRAGMA page_count").pluck();
    this.freelistCount = db.prepare<[], number>("PRAGMA freelist_count").pluck();
  }

  /** Bytes of pages in use (free pages excluded: SQLite reuses them before growing the file). */
  usedBytes(): number {
    return (this.pageCount.get()! - this.freelistCount.get()!) * this.space.pageSize;
  }

  /** What the outbox takes on disk now (database file + WAL). */
  fileBytes(): { db: number; wal: number; total: number } {
    return fileBytes(this.path);
  }

  /**
   * Keep the WAL within its share of the cap: when this transaction would not fit beside
   * what the WAL holds, copy the WAL back first (PASSIVE: never waits for a reader). The
   * next write then starts the WAL over, cut back to `journal_size_limit`.
   */
  makeWalRoom(txBytes: number): void {
    const wal = fileBytes(this.path).wal;
    if (wal > 0 && wal + txBytes * 1.1 > this.space.walReserve) this.db.pragma("wal_checkpoint(PASSIVE)");
  }

  /**
   * Bytes of the oldest rows to drop so that a commit of `txBytes` needs no more of the disk
   * than it has: the database file's growth (rows dropped in the same transaction leave pages
   * that the new rows reuse), with room kept for the transaction's WAL frames and for a
   * reserve that was given back. Dropping rows cannot make room for the WAL itself; the
   * maintenance step's vacuum of the pages they leave does, and the reserve covers the moment between.
   */
  shortfall(txBytes: number): number {
    const pages = this.pageCount.get()!;
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
  reclaim(err: unknown): void {
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
        "disk full: the outbox gave back its reserve and drops its oldest readings to keep going" +
          " (counted as disk_full); next report in a minute at the earliest",
      );
    }
  }

  /** Run `tx`; if the disk is full, make room (`reclaim`) and run it once more. */
  retryOnDiskFull<T>(tx: () => T): T {
    try {
      return tx();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      this.reclaim(err);
      return tx();
    }
  }

  /** Make the reserve file when the disk has room for it (commits keep that room free). */
  ensureReserve(): void {
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
   * Give free pages back to the file system, a step at a time (each step holds the event
   * loop for a moment). SQLite checkpoints the WAL after the step on its own
   * (`wal_autocheckpoint`), which is when the database file actually shrinks. Returns the pages given.
   */
  vacuumStep(): number {
    const free = this.db.pragma("freelist_count", { simple: true }) as number;
    // A few free pages are kept: the next commits would only have to grow the file again.
    const keep = Math.floor(this.space.vacuumStepPages / 2);
    let given = 0;
    if (free > keep + 8) {
      given = Math.min(free - keep, this.space.vacuumStepPages);
      this.makeWalRoom(given * this.space.pageSize);
      try {
        this.db.pragma(`incremental_vacuum(${given})`);
        // The last step of a shrink: copy it into the file now. Left in the WAL, the space would
        // come back only at the next checkpoint, which an idle outbox may never reach.
        if (free - given <= keep + 8) this.db.pragma("wal_checkpoint(TRUNCATE)");
      } catch (err) {
        if (!isDiskFull(err)) throw err;
        this.reclaim(err);
        given = 0;
      }
      limitPages(this.db, this.space);
    }
    // The reserve comes back once the disk has room again (after a drain, say).
    if (this.reserve.held() < this.reserve.bytes) this.ensureReserve();
    return given;
  }

  /** Run `tx` without an fsync of its own (synchronous=NORMAL for it), then restore FULL. */
  withoutFsync<T>(tx: () => T): T {
    const full = this.synchronous === "FULL";
    if (full) this.db.pragma("synchronous = NORMAL");
    try {
      return tx();
    } finally {
      if (full) this.db.pragma("synchronous = FULL");
    }
  }

  /** Run `tx` with an fsync (synchronous=FULL for it), then restore NORMAL. */
  withFsync<T>(tx: () => T): T {
    const normal = this.synchronous === "NORMAL";
    if (normal) this.db.pragma("synchronous = FULL");
    try {
      return tx();
    } finally {
      if (normal) this.db.pragma("synchronous = NORMAL");
    }
  }

  /** At close: copy the WAL into the database and empty it, so the file alone holds the outbox. */
  checkpoint(): void {
    this.db.pragma("wal_checkpoint(TRUNCATE)");
  }
}
