import { closeSync, openSync, statfsSync, statSync, unlinkSync, writeSync } from "node:fs";

const KiB = 1024;
const MiB = 1024 * KiB;

/** Bytes the file system holding `dir` has free for an unprivileged process. */
export function diskFree(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** The file system's size, in bytes. */
export function diskSize(dir: string): number {
  const s = statfsSync(dir);
  return s.blocks * s.bsize;
}

/**
 * Size of the reserve file: a sixty-fourth of the cap, between 256 KiB and 4 MiB, and at most
 * a sixteenth of the disk. It only has to hold what a checkpoint and one transaction that
 * deletes the oldest rows write, once someone else has filled the disk.
 */
export function reserveBytes(cap: number, disk: number): number {
  return Math.max(64 * KiB, Math.min(4 * MiB, Math.max(256 * KiB, Math.floor(cap / 64)), Math.floor(disk / 16)));
}

/**
 * A file of zeros kept beside the outbox, given back to the file system when SQLite reports
 * the disk full: deleting rows in WAL mode writes pages first, so a disk filled to the last
 * byte (by the gateway or by anyone else) could otherwise never be emptied again.
 */
export class DiskReserve {
  constructor(
    readonly path: string,
    readonly bytes: number,
  ) {}

  /** Bytes the reserve holds now (0 after a release). */
  held(): number {
    try {
      return statSync(this.path).size;
    } catch {
      return 0;
    }
  }

  /**
   * Make (or complete) the reserve when the disk has room for it and `spare` bytes besides.
   * True when it is in place.
   */
  ensure(spare: number, dir: string): boolean {
    const have = this.held();
    if (have >= this.bytes) return true;
    if (diskFree(dir) < this.bytes - have + spare) return false;
    const chunk = Buffer.alloc(64 * KiB);
    let done = true;
    const fd = openSync(this.path, "a");
    try {
      for (let at = have; at < this.bytes; at += chunk.length)
        writeSync(fd, chunk, 0, Math.min(chunk.length, this.bytes - at));
    } catch {
      done = false;
    } finally {
      closeSync(fd);
    }
    // The disk filled meanwhile: a partial reserve is worse than none (it only takes room).
    if (!done) this.release();
    return done;
  }

  /** Delete the reserve; returns the bytes given back. */
  release(): number {
    const had = this.held();
    try {
      unlinkSync(this.path);
    } catch {
      return 0;
    }
    return had;
  }
}
