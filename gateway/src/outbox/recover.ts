import { checkTruncated, inspectWal, keepWal, type Damage, type LedgerState } from "./damage";
import type { Synchronous } from "./open";
import type { OutboxOptions } from "./types";

/**
 * Seqs skipped at each start under synchronous=NORMAL. A power cut loses at most the WAL
 * written since the last checkpoint (a quarter of the WAL's share of the cap, 8 MiB at
 * most), and a reading takes well over 8 bytes in it.
 */
export const SEQ_SKIP_AFTER_NORMAL = 1_000_000;

/**
 * Damage SQLite would repair silently or not see, looked for before it opens the file: a
 * file cut to 0 bytes (or gone) while the ledger says it held readings, and a damaged WAL
 * (its evidence copied aside first, since SQLite's recovery forgets it).
 */
export function damageBeforeOpen(path: string, before: LedgerState | undefined): Damage[] {
  const damage: Damage[] = [];
  const cut = checkTruncated(path, before);
  if (cut) damage.push(cut);
  const wal = inspectWal(`${path}-wal`);
  if (wal.damaged) damage.push({ kind: "wal_damaged", movedTo: keepWal(path), detail: wal.detail, lost: 0 });
  return damage;
}

/** What the outbox found at start, once its file is open. */
export interface StartState {
  path: string;
  instance: string;
  /** The next seq as stored (NaN when not a number). */
  storedNextSeq: number;
  /** The highest seq in a row (0 when empty). */
  maxSeq: number;
  synchronous: Synchronous;
  /** The ledger as the last run left it (absent: none, or unreadable). */
  before: LedgerState | undefined;
  /** Damage found so far (before and while opening). */
  damage: Damage[];
}

/** Where recovery reports what it found. */
type RecoverOptions = Pick<OutboxOptions, "logger" | "onCorrupt" | "onDrop">;

export interface Recovered {
  nextSeq: number;
  damage: Damage[];
}

/**
 * Report the damage found (loud log line, counter, readings it cost), and choose a next seq
 * no seq handed out before can reach. Seqs skip ahead unless the ledger proves this file's
 * seq is the highest ever given: under NORMAL (a power cut rolls back the last commits, the
 * ledger with them), after any damage, and when there is no ledger of this instance. The skip
 * is saved with a full sync (`saveSeq(_, true)`) before any new reading gets a seq.
 */
export function recover(
  s: StartState,
  opts: RecoverOptions,
  saveSeq: (seq: number, durably: boolean) => void,
): Recovered {
  const { before, damage, instance } = s;
  const same = before?.instance === instance ? before : undefined;
  const stored = s.storedNextSeq;
  const seqSound = Number.isSafeInteger(stored) && stored >= 1;
  // What the file lost, by the ledger: all it held when it starts over under a new
  // instance, or the seqs it handed out that it no longer knows of (an upper bound: some
  // of them may have been forwarded before the damage).
  const fileLost = !before ? 0 : same ? (seqSound ? Math.max(0, same.nextSeq - stored) : 0) : before.readings;
  const fileDamage = damage.find((d) => d.kind !== "rows_damaged");
  if (fileDamage) fileDamage.lost = fileLost;
  else if (fileLost > 0) {
    damage.push({
      kind: "rolled_back",
      detail: same
        ? `the outbox's next seq is ${stored} but its ledger says ${same.nextSeq}: commits were lost` +
          " (a damaged or deleted WAL, or a power cut under synchronous=NORMAL)"
        : `the outbox file is not the one the ledger describes (instance ${instance}, ledger ${before!.instance}):` +
          " the readings it held are gone",
      lost: fileLost,
    });
  }
  if (!seqSound)
    damage.push({ kind: "rows_damaged", detail: `the stored next seq is not a number (${String(stored)})`, lost: 0 });
  report(s, opts);

  const base = Math.max(seqSound ? stored : 1, same?.nextSeq ?? 1, s.maxSeq + 1);
  // The ledger is written just after each commit, so a crash between the two leaves it one
  // commit behind the file: that is no sign of loss. Ahead of the file, it is (see above).
  const proven = same !== undefined && seqSound && same.nextSeq <= stored && damage.length === 0;
  if (base > 1 && (s.synchronous === "NORMAL" || !proven)) {
    const nextSeq = base + SEQ_SKIP_AFTER_NORMAL;
    saveSeq(nextSeq, true);
    opts.logger.info(
      { from: base, to: nextSeq, synchronous: s.synchronous, damaged: damage.length > 0 },
      "seqs skip ahead at start: nothing proves the last seq handed out is on disk," +
        " and one seq must never name two readings",
    );
    return { nextSeq, damage };
  }
  if (!seqSound) {
    saveSeq(base, false);
    return { nextSeq: base, damage };
  }
  return { nextSeq: stored, damage };
}

/** One loud line and one `onCorrupt` per kind of damage; the readings lost counted once. */
function report(s: StartState, opts: RecoverOptions): void {
  for (const d of s.damage) {
    // Without a ledger (an outbox from an older version) a fresh file's loss is unknown.
    const cost =
      s.before || d.kind === "rows_damaged" ? `about ${d.lost} readings lost` : "readings lost unknown (no ledger)";
    opts.logger.error(
      { kind: d.kind, detail: d.detail, movedTo: d.movedTo, lostReadingsEstimate: d.lost, path: s.path },
      `OUTBOX DAMAGED (${d.kind}): ${d.detail}; ${cost}${d.movedTo ? `; evidence kept at ${d.movedTo}` : ""}`,
    );
    opts.onCorrupt?.(d.movedTo ?? s.path, new Error(d.detail));
  }
  const lost = s.damage.reduce((n, d) => n + d.lost, 0);
  if (lost > 0) opts.onDrop?.("outbox_damaged", lost);
}
