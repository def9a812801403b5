import type Database from "better-sqlite3";
import type { Logger, WireFormat } from "@datalab/shared";
import { checkRows, Ledger, type Damage } from "./damage";
import { DeliveryLog } from "./deliveries";
import { evict } from "./full-policy";
import { Meta } from "./meta";
import { isDiskFull, openOutboxDb, type Synchronous } from "./open";
import { Quarantine, quarantineBytes, type QuarantineTotals } from "./quarantine";
import { damageBeforeOpen, recover } from "./recover";
import { PendingMessages } from "./pending";
import { OutboxRows } from "./rows";
import { rowCost, type SpacePlan } from "./space";
import { limitsFor, SpaceKeeper, type SpaceLimits } from "./space-keeper";
import {
  DEFAULT_OUTBOX_MAX_BYTES,
  ROW_MAX_MESSAGES,
  type AcceptedMessage,
  type BatchRange,
  type DropReason,
  type EncodedRow,
  type FullPolicy,
  type OutboxOptions,
  type OutboxRow,
  type OutboxStats,
  type QuarantinedMessage,
  type QuarantineEntry,
  type Totals,
} from "./types";

export type { Synchronous };
export { SEQ_SKIP_AFTER_NORMAL } from "./recover";
export { DEFAULT_OUTBOX_MAX_BYTES, ROW_MAX_BYTES, ROW_MAX_MESSAGES } from "./types";
export type {
  AcceptedMessage,
  BatchRange,
  DropReason,
  FullPolicy,
  OutboxOptions,
  OutboxRow,
  OutboxStats,
  QuarantinedMessage,
  QuarantineEntry,
  Totals,
} from "./types";

/** What one commit transaction changed, booked in memory only once it committed. */
interface CommitOutcome {
  committed: number;
  nextSeq: number;
  outbox: Totals;
  quarantine: QuarantineTotals;
  drops: [DropReason, number][];
}

/**
 * The gateway's durable outbox (SQLite, WAL): seqs, rows, the batch in flight. A reading is in
 * the outbox from its commit until the uplink's PubAck for its batch; nothing else deletes it
 * except the full-outbox policy, which is counted. Each operation is one transaction. The
 * quarantine (quarantine.ts) and the file's room (space-keeper.ts) share its database.
 */
export class Outbox {
  readonly instance: string;
  /** Secret key of the batches' message-id digests: never leaves the outbox. */
  readonly msgIdKey: Buffer;
  readonly space: SpacePlan;
  readonly policy: FullPolicy;
  /** The wire format of the rows it writes (existing rows keep theirs). */
  readonly wireFormat: WireFormat;
  /** What was found damaged at start (empty when the file was sound). */
  damage: readonly Damage[] = [];
  private nextSeq: number;
  private totals: Totals;
  private inflightRange: BatchRange | undefined;
  private readonly meta: Meta;
  private readonly rows: OutboxRows;
  private readonly quarantine: Quarantine;
  private readonly keeper: SpaceKeeper;
  private readonly logger: Logger;
  private readonly onDrop: OutboxOptions["onDrop"];
  private readonly rowMaxReadings: number;
  /** The outbox's state outside SQLite, for telling at the next start what damage cost. */
  private readonly ledger: Ledger;
  private deliveries: DeliveryLog | undefined;

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    limits: SpaceLimits,
    opts: OutboxOptions,
    ledger: Ledger,
  ) {
    this.space = limits.space;
    this.ledger = ledger;
    this.policy = opts.fullPolicy ?? "drop_oldest";
    this.wireFormat = opts.wireFormat ?? 2;
    this.logger = opts.logger;
    this.onDrop = opts.onDrop;
    this.rowMaxReadings = Math.max(1, Math.min(opts.rowMaxReadings ?? ROW_MAX_MESSAGES, ROW_MAX_MESSAGES));
    const sync = opts.synchronous ?? "FULL";
    this.keeper = new SpaceKeeper(db, path, limits, sync, this.policy, opts.logger);
    this.meta = new Meta(db);
    this.instance = this.meta.instance;
    this.msgIdKey = this.meta.msgIdKey;
    this.nextSeq = this.meta.storedNextSeq;
    this.inflightRange = this.meta.storedInflight;
    this.rows = new OutboxRows(db);
    this.totals = this.rows.totals();
    this.quarantine = new Quarantine(db, this.space.quarantineBudget, opts.maxQuarantineRows ?? 10_000);
  }

  /**
   * Open (or create) the outbox at `path`. An unreadable file is moved aside and the gateway
   * starts fresh (see open.ts); damage SQLite would repair silently or not see is looked for
   * first (damage.ts), and reported by `recover` (recover.ts).
   */
  static open(path: string, opts: OutboxOptions): Outbox {
    const limits = limitsFor(path, opts.maxBytes ?? DEFAULT_OUTBOX_MAX_BYTES, opts.logger);
    const synchronous = opts.synchronous ?? "FULL";
    const ledger = new Ledger(`${path}-ledger`);
    const before = ledger.read();
    const damage = damageBeforeOpen(path, before);
    const db = openOutboxDb(path, {
      synchronous,
      space: limits.space,
      logger: opts.logger,
      onCorrupt: (movedTo, err) => damage.push({ kind: "unreadable", movedTo, detail: err.message, lost: 0 }),
    });
    const rows = checkRows(db, path);
    if (rows) damage.push(rows);
    const outbox = new Outbox(db, path, limits, opts, ledger);
    const state = {
      path,
      instance: outbox.instance,
      storedNextSeq: outbox.nextSeq,
      maxSeq: outbox.rows.maxSeq(),
      synchronous,
      before,
      damage,
    };
    const saveSeq = (seq: number, durably: boolean) => {
      if (durably) outbox.keeper.withFsync(() => outbox.meta.setNextSeq(seq));
      else outbox.meta.setNextSeq(seq);
    };
    const recovered = recover(state, opts, saveSeq);
    outbox.damage = recovered.damage;
    outbox.nextSeq = recovered.nextSeq;
    outbox.writeLedger();
    outbox.keeper.ensureReserve();
    return outbox;
  }

  /**
   * Commit accepted and quarantined messages in one transaction (the group commit). Seqs are
   * assigned here and made durable by the same transaction, so a crash can never hand out the
   * same seq twice. When the cap is reached, the policy acts inside the same transaction: rows
   * dropped and rows added are committed together or not at all. `inTransaction` runs inside
   * it too, so what it writes commits with the readings. `deflate` stores the rows deflated
   * (worth its CPU at a trickle, where each commit's pages are mostly what the SD card writes).
   * Returns the readings committed.
   */
  commit(
    accepted: readonly AcceptedMessage[] | PendingMessages,
    quarantined: readonly QuarantinedMessage[] = [],
    inTransaction?: () => void,
    deflate = false,
  ): number {
    const group = accepted instanceof PendingMessages ? accepted : PendingMessages.of(accepted, this.wireFormat);
    let rows = group.rows(this.nextSeq, this.rowMaxReadings, deflate);
    const txBytes =
      rows.reduce((s, r) => s + rowCost(r.bytes), 0) + quarantined.reduce((s, q) => s + rowCost(quarantineBytes(q)), 0);
    this.keeper.makeWalRoom(txBytes);
    // The disk may fill before the cap does (a smaller disk, or other files growing): then
    // the policy makes room inside the file instead of growing it, and says why.
    const short = this.keeper.shortfall(txBytes);
    const reason = short > 0 || this.keeper.diskBound ? "disk_full" : "outbox_full";
    try {
      return this.apply(this.write(rows, quarantined, reason, short, inTransaction));
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      // The file system is full (or the hard limit was hit because an estimate was off).
      // Apply the policy with a wide margin and try once more; if that fails as well, the
      // caller keeps the group in memory (bounded) and retries.
      this.keeper.reclaim(err);
      let refused = 0;
      if (this.policy === "refuse_newest") {
        refused = rows.reduce((s, r) => s + r.n, 0);
        rows = [];
      }
      // Free at least what this group needs, whatever the cap says: the disk is the limit now.
      const room = Math.ceil(rows.reduce((s, r) => s + rowCost(r.bytes), 0) * 1.5) + 16 * this.space.pageSize;
      const committed = this.apply(this.write(rows, quarantined, "disk_full", room, inTransaction));
      // Counted only now: had this attempt failed too, the caller would have kept them.
      if (refused > 0) this.onDrop?.("disk_full", refused);
      return committed;
    }
  }

  /**
   * The commit transaction. The policy acts when the group would take the outbox past its
   * soft budget, or (`mustFree` > 0, after the disk said it was full) to free that much.
   */
  private write(
    rows: readonly EncodedRow[],
    quarantined: readonly QuarantinedMessage[],
    reason: DropReason,
    mustFree: number,
    inTransaction?: () => void,
  ): CommitOutcome {
    return this.db.transaction((): CommitOutcome => {
      inTransaction?.();
      // Quarantine lives within its own budget, so only its growth up to it needs room here.
      const need = rows.reduce((s, r) => s + rowCost(r.bytes), 0) + rowCost(this.quarantine.growth(quarantined));
      const over = Math.max(this.keeper.usedBytes() + need - this.space.softBudget, mustFree);
      const e = evict(this.rows, this.policy, rows, over, this.inflightRange);
      const out: CommitOutcome = {
        committed: 0,
        nextSeq: this.nextSeq,
        outbox: { messages: -e.dropped.messages, readings: -e.dropped.readings, bytes: -e.dropped.bytes },
        quarantine: { rows: 0, bytes: 0 },
        drops: [],
      };
      if (e.dropped.readings > 0) out.drops.push([reason, e.dropped.readings]);
      if (e.refused > 0) out.drops.push([reason, e.refused]);
      for (let i = 0; i < e.kept; i++) {
        const r = rows[i]!;
        this.rows.insert(r);
        out.outbox.messages += r.m;
        out.outbox.readings += r.n;
        out.outbox.bytes += r.bytes;
        out.committed += r.n;
        out.nextSeq = r.lastSeq + 1;
      }
      out.quarantine = this.quarantine.add(quarantined);
      if (out.nextSeq !== this.nextSeq) this.meta.setNextSeq(out.nextSeq);
      return out;
    })();
  }

  /** Book a committed transaction's outcome in memory (never a rolled-back one) and report its drops. */
  private apply(o: CommitOutcome): number {
    this.nextSeq = o.nextSeq;
    this.totals.messages += o.outbox.messages;
    this.totals.readings += o.outbox.readings;
    this.totals.bytes += o.outbox.bytes;
    this.quarantine.book(o.quarantine);
    for (const [reason, n] of o.drops) this.onDrop?.(reason, n);
    // After the commit: a crash in between leaves the ledger one commit behind, which recover allows.
    this.writeLedger();
    return o.committed;
  }

  /**
   * One transaction: remove the rows of the batch JetStream acknowledged, and record the
   * batch about to be published. Recording before publishing is what makes a restart resend
   * exactly the same rows under the same `Nats-Msg-Id`, whatever the batch settings then.
   */
  settle(acked: BatchRange | undefined, next: BatchRange | undefined, ackedTotals?: Totals): void {
    // Written without an fsync of its own: losing it to a power cut loses no reading, only
    // the dedup (the rows go again, maybe in other batches, and the hub counts them as
    // duplicates), and the next commit's fsync makes it durable anyway.
    // Deleting rows writes pages to the WAL first: on a full disk, make room and go again.
    this.keeper.withoutFsync(() => this.keeper.retryOnDiskFull(() => this.settleTx(acked, next, ackedTotals)));
  }

  private settleTx(acked: BatchRange | undefined, next: BatchRange | undefined, ackedTotals?: Totals): void {
    const removed = this.db.transaction(() => {
      let t: Totals = { messages: 0, readings: 0, bytes: 0 };
      if (acked) {
        // The batch's own totals when the caller has them (its rows cannot have changed: the
        // full-outbox policy spares the batch in flight); counting them again costs a scan.
        t = ackedTotals ?? this.rows.totals(acked.firstId, acked.lastId);
        this.rows.deleteRange(acked.firstId, acked.lastId);
      }
      if (next) this.meta.setInflight(next);
      else if (this.inflightRange) this.meta.clearInflight();
      return t;
    })();
    this.totals.messages -= removed.messages;
    this.totals.readings -= removed.readings;
    this.totals.bytes -= removed.bytes;
    this.inflightRange = next;
    if (acked) this.writeLedger();
  }

  /** Best effort: a ledger that cannot be written only makes the next start skip seqs ahead. */
  private writeLedger(): void {
    try {
      this.ledger.write({ instance: this.instance, nextSeq: this.nextSeq, readings: this.totals.readings });
    } catch {
      // next start: no proof, so seqs skip ahead
    }
  }

  /** Rows with `afterId < id < beforeId`, oldest first. Iterate and stop early: batches stay small. */
  scan(afterId: number, beforeId = Number.MAX_SAFE_INTEGER): IterableIterator<OutboxRow> {
    return this.rows.scan(afterId, beforeId);
  }

  /** The oldest row with `afterId < id < beforeId`. */
  head(afterId: number, beforeId = Number.MAX_SAFE_INTEGER): { id: number; receivedAt: number } | undefined {
    return this.rows.head(afterId, beforeId);
  }

  /** The rows of a recorded batch, if they are all still there (their seqs say so). */
  rowsOf(r: BatchRange): OutboxRow[] | undefined {
    return this.rows.of(r);
  }

  /** Highest row id (0 when empty). */
  maxId(): number {
    return this.rows.maxId();
  }

  /** The batch being published (recorded before its publish), if any. */
  inflight(): BatchRange | undefined {
    return this.inflightRange;
  }

  stats(): OutboxStats {
    const oldest = this.totals.messages > 0 ? (this.head(0)?.receivedAt ?? null) : null;
    return { ...this.totals, oldestReceivedAt: oldest };
  }

  get nextSequence(): number {
    return this.nextSeq;
  }

  /** Bytes of pages in use (free pages excluded: SQLite reuses them before growing the file). */
  usedBytes(): number {
    return this.keeper.usedBytes();
  }

  /** What the outbox takes on disk now (database file + WAL), against the cap. */
  fileBytes(): { db: number; wal: number; total: number } {
    return this.keeper.fileBytes();
  }

  /** One maintenance step: free pages given back to the file system, the disk reserve remade. */
  maintain(): number {
    return this.keeper.vacuumStep();
  }

  quarantineCounts(): Record<string, number> {
    return this.quarantine.counts();
  }

  /** The newest quarantined messages, newest first. */
  quarantined(limit = 100): QuarantineEntry[] {
    return this.quarantine.newest(limit);
  }

  /** The record of committed MQTT deliveries, kept in this database (one per outbox). */
  deliveryLog(): DeliveryLog {
    this.deliveries ??= new DeliveryLog(this.db);
    return this.deliveries;
  }

  close(): void {
    if (this.db.open) {
      this.keeper.checkpoint();
      this.db.close();
    }
    this.ledger.close();
  }
}
