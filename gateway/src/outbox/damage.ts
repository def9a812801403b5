import { createHash } from "node:crypto";
import { inflateRawSync } from "node:zlib";
import {
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import type Database from "better-sqlite3";
import type { OutboxRow } from "./types";

/**
 * Damage to the outbox that SQLite itself either repairs silently (a WAL whose frames stop
 * checking out: SQLite keeps the commits before the bad frame and forgets the rest) or
 * cannot see (a file cut to 0 bytes opens as a new, empty database; rotten bytes inside a
 * row's text pass `quick_check`). Each is found at start, its evidence kept beside the
 * outbox, and the readings it cost estimated from the ledger below.
 */
export type DamageKind = "unreadable" | "truncated" | "wal_damaged" | "rolled_back" | "rows_damaged";

export interface Damage {
  kind: DamageKind;
  /** Where the evidence was moved or copied to (absent when there was nothing to keep). */
  movedTo?: string;
  detail: string;
  /** Readings the damage cost, estimated. */
  lost: number;
}

/** What the outbox looked like after its last commit or settle, kept outside SQLite. */
export interface LedgerState {
  instance: string;
  nextSeq: number;
  readings: number;
}

const LEDGER_BYTES = 128;

/**
 * A 128-byte record beside the database (`outbox.db-ledger`), rewritten in place after each
 * commit and settle, without an fsync: it survives a crash of the gateway (the OS has it),
 * which is when a damaged WAL or a cut file would otherwise go unnoticed. It is evidence,
 * never the truth: readings are only ever in SQLite.
 */
export class Ledger {
  private fd: number | undefined;
  private readonly buf = Buffer.alloc(LEDGER_BYTES, 0x20);

  constructor(readonly path: string) {}

  read(): LedgerState | undefined {
    try {
      const v = JSON.parse(readFileSync(this.path, "utf8").trim()) as Partial<LedgerState>;
      if (typeof v.instance !== "string" || !Number.isSafeInteger(v.nextSeq) || !Number.isSafeInteger(v.readings))
        return undefined;
      return { instance: v.instance, nextSeq: v.nextSeq!, readings: v.readings! };
    } catch {
      return undefined;
    }
  }

  write(s: LedgerState): void {
    this.fd ??= openSync(this.path, existsSync(this.path) ? "r+" : "w+");
    this.buf.fill(0x20);
    this.buf.write(JSON.stringify(s));
    this.buf[LEDGER_BYTES - 1] = 0x0a;
    writeSync(this.fd, this.buf, 0, LEDGER_BYTES, 0);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

export function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-");
}

/**
 * A database file cut to 0 bytes (or deleted) while the ledger says it held readings: SQLite
 * would start an empty outbox without a word. The empty file and its WAL are moved aside.
 */
export function checkTruncated(path: string, before: LedgerState | undefined): Damage | undefined {
  if (!before) return undefined;
  const size = existsSync(path) ? statSync(path).size : -1;
  if (size > 0) return undefined;
  if (size < 0 && before.readings === 0) return undefined;
  let movedTo: string | undefined;
  if (size === 0) {
    movedTo = `${path}.truncated-${stamp()}`;
    for (const suffix of ["", "-wal", "-shm"])
      if (existsSync(path + suffix)) renameSync(path + suffix, movedTo + suffix);
  }
  return {
    kind: "truncated",
    movedTo,
    detail: size === 0 ? "the database file is 0 bytes long" : "the database file is missing",
    lost: before.readings,
  };
}

/**
 * Read the WAL as SQLite's recovery will (header, then frames while their salts and running
 * checksums hold) and report what it will silently forget: a damaged header (the whole log)
 * or frames of the current log after a bad one (commits lost behind the damage). Frames of
 * an older log (other salts) and a torn last frame are normal and ignored.
 */
export function inspectWal(walPath: string): { damaged: boolean; detail: string; frames: number; lostFrames: number } {
  const ok = { damaged: false, detail: "", frames: 0, lostFrames: 0 };
  if (!existsSync(walPath)) return ok;
  const size = statSync(walPath).size;
  if (size === 0) return ok;
  const fd = openSync(walPath, "r");
  try {
    const head = Buffer.alloc(32);
    if (readSync(fd, head, 0, 32, 0) < 32)
      return { damaged: true, detail: `WAL of ${size} bytes, shorter than its header`, frames: 0, lostFrames: 0 };
    const magic = head.readUInt32BE(0);
    const stated = head.readUInt32BE(8);
    // A damaged header cannot say its page size: the database file's header does.
    const pageSize =
      stated >= 512 && stated <= 65_536 && (stated & (stated - 1)) === 0
        ? stated
        : dbPageSize(walPath.replace(/-wal$/, ""));
    const frameBytes = 24 + pageSize;
    const whole = Math.floor((size - 32) / frameBytes);
    const bigEndian = (magic & 1) === 1;
    const [h0, h1] = checksum(head.subarray(0, 24), 0, 0, bigEndian);
    if (
      (magic !== 0x377f0682 && magic !== 0x377f0683) ||
      h0 !== head.readUInt32BE(24) ||
      h1 !== head.readUInt32BE(28)
    ) {
      // A header torn while the log was first written holds nothing yet.
      if (whole === 0) return ok;
      return {
        damaged: true,
        detail: `WAL header damaged: SQLite ignores all ${whole} frames of it`,
        frames: whole,
        lostFrames: whole,
      };
    }
    const salt1 = head.readUInt32BE(16);
    const salt2 = head.readUInt32BE(20);
    const frame = Buffer.alloc(frameBytes);
    let s0 = h0;
    let s1 = h1;
    let valid = 0;
    let broken = -1;
    let lostFrames = 0;
    for (let i = 0; i < whole; i++) {
      readSync(fd, frame, 0, frameBytes, 32 + i * frameBytes);
      const sameLog = frame.readUInt32BE(8) === salt1 && frame.readUInt32BE(12) === salt2;
      if (broken < 0) {
        // The first frame that does not check out ends the log for SQLite: other salts are
        // normally an older log's leftovers, a bad checksum a torn or damaged frame.
        if (sameLog) {
          [s0, s1] = checksum(frame.subarray(0, 8), s0, s1, bigEndian);
          [s0, s1] = checksum(frame.subarray(24), s0, s1, bigEndian);
        }
        if (!sameLog || s0 !== frame.readUInt32BE(16) || s1 !== frame.readUInt32BE(20)) broken = i;
        else valid = i + 1;
      } else if (sameLog) {
        // ...but a frame of this same log after that one was written after it: lost with it.
        lostFrames++;
      }
    }
    if (lostFrames > 0) {
      return {
        damaged: true,
        detail:
          `WAL frame ${broken} of ${whole} is damaged: ` +
          `SQLite forgets it and ${lostFrames} frames of the same log after it`,
        frames: whole,
        lostFrames,
      };
    }
    // Bytes after the last whole frame are normal: SQLite cuts a reset log to
    // journal_size_limit, which need not end on a frame.
    return { ...ok, frames: valid };
  } finally {
    closeSync(fd);
  }
}

/** The page size in a database file's header (offset 16, big-endian; 1 means 65,536), else 4096. */
function dbPageSize(path: string): number {
  try {
    const fd = openSync(path, "r");
    try {
      const b = Buffer.alloc(2);
      if (readSync(fd, b, 0, 2, 16) < 2) return 4096;
      const v = b.readUInt16BE(0);
      return v === 1 ? 65_536 : v >= 512 && (v & (v - 1)) === 0 ? v : 4096;
    } finally {
      closeSync(fd);
    }
  } catch {
    return 4096;
  }
}

/** SQLite's WAL checksum: 32-bit words in the log's byte order, summed in pairs. */
function checksum(data: Buffer, a: number, b: number, bigEndian: boolean): [number, number] {
  let s0 = a;
  let s1 = b;
  for (let i = 0; i + 8 <= data.length; i += 8) {
    const x0 = bigEndian ? data.readUInt32BE(i) : data.readUInt32LE(i);
    const x1 = bigEndian ? data.readUInt32BE(i + 4) : data.readUInt32LE(i + 4);
    s0 = (s0 + x0 + s1) >>> 0;
    s1 = (s1 + x1 + s0) >>> 0;
  }
  return [s0, s1];
}

/**
 * Copy the WAL aside before SQLite opens (and so repairs) it. Undefined when it cannot be
 * copied (a full disk): the evidence is worth less than a gateway that starts.
 */
export function keepWal(path: string): string | undefined {
  const movedTo = `${path}.damaged-${stamp()}-wal`;
  try {
    copyFileSync(`${path}-wal`, movedTo);
    return movedTo;
  } catch {
    rmSync(movedTo, { force: true });
    return undefined;
  }
}

/** The checksum a row carries: its key range and counts as well as its text. */
export function rowCrc(
  firstSeq: number,
  lastSeq: number,
  n: number,
  m: number,
  receivedAt: number,
  wire: string,
): number {
  return createHash("sha1")
    .update(`${firstSeq}:${lastSeq}:${n}:${m}:${receivedAt}:`)
    .update(wire)
    .digest()
    .readInt32BE(0);
}

/** A row as stored, its checksum with it (null: written before checksums). */
type RawRow = Omit<OutboxRow, "bytes" | "wireBytes"> & { crc: number | null; packed: Buffer | null };

/**
 * Every row's checksum (rows written before checksums: their JSON and counts), checked at
 * start: rot inside a row's text passes SQLite's own checks and would reach the hub as a
 * batch it cannot read. Rows that fail are written to a file beside the outbox, then deleted.
 */
export function checkRows(db: Database.Database, path: string): Damage | undefined {
  const bad: RawRow[] = [];
  const rows = db
    .prepare<[], RawRow>(
      "SELECT id, first_seq AS firstSeq, last_seq AS lastSeq, n, m, received_at AS receivedAt, wire, crc, packed" +
        " FROM outbox ORDER BY id",
    )
    .iterate();
  for (const r of rows) if (!rowIsSound(r)) bad.push(r);
  if (bad.length === 0) return undefined;
  let movedTo: string | undefined = `${path}.damaged-rows-${stamp()}.jsonl`;
  try {
    writeFileSync(movedTo, `${bad.map((r) => JSON.stringify(r)).join("\n")}\n`);
  } catch {
    // A full disk: the rows go all the same (they would poison their batch); the log says so.
    rmSync(movedTo, { force: true });
    movedTo = undefined;
  }
  const del = db.prepare("DELETE FROM outbox WHERE id = ?");
  db.transaction(() => {
    for (const r of bad) del.run(r.id);
  })();
  // A rotten count cannot be trusted: the seq range says how many readings the row held.
  const lost = bad.reduce(
    (s, r) =>
      s +
      (Number.isSafeInteger(r.lastSeq - r.firstSeq) && r.lastSeq >= r.firstSeq && r.lastSeq - r.firstSeq < 100_000
        ? r.lastSeq - r.firstSeq + 1
        : Math.max(1, r.n)),
    0,
  );
  return {
    kind: "rows_damaged",
    movedTo,
    detail: `${bad.length} rows failed their checksum (ids ${bad[0]!.id}..${bad.at(-1)!.id})`,
    lost,
  };
}

function rowIsSound(r: RawRow): boolean {
  if (r.packed !== null) {
    // A packed row always has a checksum, of its text.
    try {
      const text = inflateRawSync(r.packed).toString("utf8");
      return r.crc !== null && rowCrc(r.firstSeq, r.lastSeq, r.n, r.m, r.receivedAt, text) === r.crc;
    } catch {
      return false;
    }
  }
  if (r.crc !== null) return rowCrc(r.firstSeq, r.lastSeq, r.n, r.m, r.receivedAt, r.wire) === r.crc;
  try {
    const msgs = JSON.parse(`[${r.wire}]`) as { readings?: unknown[] }[];
    return (
      msgs.length === r.m &&
      msgs.reduce((s, x) => s + (x.readings?.length ?? 0), 0) === r.n &&
      r.lastSeq - r.firstSeq + 1 === r.n
    );
  } catch {
    return false;
  }
}
