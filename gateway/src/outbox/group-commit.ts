import type { Logger } from "@datalab/shared";
import type { Delivery, DeliveryLog, DeliveryOwner } from "./deliveries";
import { PendingMessages } from "./pending";
import type { AcceptedMessage, DropReason, FullPolicy, Outbox, QuarantinedMessage } from "./store";

export interface GroupCommitOptions {
  /** Commit a group this old (ms) once it holds `minReadings`. */
  intervalMs: number;
  /**
   * Readings a group should hold before `intervalMs` commits it; a smaller group waits, up
   * to `maxIntervalMs`. 1 commits every group at `intervalMs`. Default 1.
   */
  minReadings?: number;
  /** Commit every group by this age (ms), whatever it holds: the loss window in time. Default `intervalMs`. */
  maxIntervalMs?: number;
  /** Commit as soon as this many readings wait. The worst-case loss window in count. */
  maxReadings: number;
  /** Commit as soon as about this many bytes wait, so one transaction fits the WAL's share of the cap. */
  maxBytes: number;
  /**
   * A trickle group whose every message can be resent by its source (MQTT QoS 1, acknowledged
   * only after the commit) waits longer: nothing in it is at risk, and each commit rewrites
   * whole pages of the SD card. Absent: such groups wait like any other.
   */
  resendable?: { maxIntervalMs: number; maxReadings: number };
  /** The clock group ages are measured on (default Date.now). */
  now?: () => number;
  /** What to give up when commits keep failing and the memory bound is reached. */
  policy: FullPolicy;
  logger: Logger;
  onCommitted: (readings: number, quarantined: readonly QuarantinedMessage[]) => void;
  onError: (err: Error) => void;
  onDropped: (reason: DropReason, readings: number) => void;
  /** Where deliveries (messages acknowledged after their commit) are recorded with their readings. */
  deliveries?: DeliveryLog;
}

/**
 * Group commit: messages wait in memory until `maxReadings` (or `maxBytes`) wait, or the
 * group is `intervalMs` old and holds `minReadings`, or it is `maxIntervalMs` old; then they
 * go to SQLite in one transaction. One fsync per group instead of per message is what lets a
 * Pi's SD card keep up; the price is the window stated above, lost on a crash before the
 * commit. At a trickle, groups stretch towards `maxIntervalMs` rather than commit a handful
 * of readings each time: fewer fsyncs and wake-ups, and no more readings at risk than a
 * group of `minReadings` (see docs/gateway-durability.md). The last, smaller group of a burst
 * is not held: a group waits only when the one before it did not fill up in time either.
 *
 * While commits fail (I/O error, full disk), what waits stays in memory and is retried, up
 * to ten groups' worth; beyond that the policy picks what to give up, and it is counted.
 *
 * A message that carries a delivery (MQTT QoS 1) is acknowledged to its source only after the
 * transaction holding it has committed, and the delivery is recorded in that transaction: a
 * crash before the acknowledgement gets out makes the broker resend it, and the record tells
 * the resend from a new message. A message given up while commits fail is not acknowledged:
 * the broker keeps it and resends it on the next connection, which its source opens once
 * commits work again.
 */
export class GroupCommitter {
  /** Accepted messages, already encoded (see PendingMessages for why not as objects). */
  private readonly accepted: PendingMessages;
  private quarantined: QuarantinedMessage[] = [];
  private pendingReadings = 0;
  private pendingBytes = 0;
  private pendingDeliveries = 0;
  /** Messages waiting that no source can resend (serial, QoS 0, quarantined without a delivery). */
  private pendingOnce = 0;
  /** When the group's first message came (ms). */
  private startedAt = 0;
  private isFailing = false;
  private timer: NodeJS.Timeout | undefined;
  /** The group is past `intervalMs` and waits only for `minReadings` (or `maxIntervalMs`). */
  private overdue = false;
  /**
   * The last group filled up by `intervalMs` (or by count): the rate was not a trickle, so a
   * smaller group now is the tail of a burst and is committed at the interval, not held.
   */
  private busy = false;

  constructor(
    private readonly outbox: Outbox,
    private readonly opts: GroupCommitOptions,
  ) {
    this.accepted = new PendingMessages(outbox.wireFormat);
  }

  accept(m: AcceptedMessage): void {
    this.begin();
    const w = weight(m);
    this.accepted.push(m, w);
    const wasResendable = this.resendable;
    if (m.delivery) this.pendingDeliveries++;
    else this.pendingOnce++;
    this.pendingReadings += m.readings.length;
    this.pendingBytes += w;
    if (this.isFailing) this.bound();
    else if (this.pendingReadings >= this.maxReadings || this.pendingBytes >= this.opts.maxBytes) {
      this.busy = true;
      this.flush();
    } else if (this.overdue && !this.resendable && this.pendingReadings >= this.minReadings) this.flush();
    else if (this.overdue && wasResendable && !this.resendable) this.shorten();
    else this.arm();
  }

  quarantine(q: QuarantinedMessage): void {
    this.begin();
    this.quarantined.push(q);
    const wasResendable = this.resendable;
    if (q.delivery) this.pendingDeliveries++;
    else this.pendingOnce++;
    if (this.isFailing) {
      // Bad input is already counted; while the disk refuses writes, keep only the newest.
      const gone = this.quarantined.length > this.opts.maxReadings ? this.quarantined.shift() : undefined;
      if (gone?.delivery) {
        this.pendingDeliveries--;
        gone.delivery.owner.returned([gone.delivery]);
      } else if (gone) this.pendingOnce--;
    } else if (this.quarantined.length >= this.opts.maxReadings) this.flush();
    else if (this.overdue && wasResendable && !this.resendable) this.shorten();
    else this.arm();
  }

  /** True while commits fail: readings wait in memory (bounded), the disk is not keeping them. */
  get failing(): boolean {
    return this.isFailing;
  }

  get pending(): number {
    return this.pendingReadings + this.quarantined.length;
  }

  /** Deliveries waiting for a commit (their sources hold the acknowledgements back until then). */
  get unsettled(): number {
    return this.pendingDeliveries;
  }

  private get minReadings(): number {
    return this.opts.minReadings ?? 1;
  }

  /** Every message waiting can be resent by its source: the group may wait for the longer bounds. */
  private get resendable(): boolean {
    return this.opts.resendable !== undefined && this.pendingOnce === 0 && this.pendingDeliveries > 0;
  }

  /** Only a trickle's group takes the larger count: a flood's groups stay small, which is cheaper in CPU and memory. */
  private get maxReadings(): number {
    return this.overdue && this.resendable
      ? Math.max(this.opts.maxReadings, this.opts.resendable!.maxReadings)
      : this.opts.maxReadings;
  }

  private get maxIntervalMs(): number {
    const interval = this.opts.intervalMs;
    const max = Math.max(interval, this.opts.maxIntervalMs ?? interval);
    return this.resendable ? Math.max(max, this.opts.resendable!.maxIntervalMs) : max;
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  private begin(): void {
    if (this.accepted.length === 0 && this.quarantined.length === 0) this.startedAt = this.now();
  }

  /** A message that cannot be resent joined a group waiting on the longer bound: back to the short one. */
  private shorten(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const left = this.startedAt + this.maxIntervalMs - this.now();
    if (left <= 0) this.flush();
    else this.flushIn(left);
  }

  private flushIn(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, ms);
  }

  private arm(): void {
    if (this.timer) return;
    const interval = this.opts.intervalMs;
    this.timer = setTimeout(() => {
      const max = this.maxIntervalMs;
      const full = this.pendingReadings >= this.minReadings;
      if (full || this.busy || max === interval) {
        this.busy = full;
        this.timer = undefined;
        this.flush();
        return;
      }
      // A trickle: wait for minReadings (accept flushes then) or the time bound.
      this.overdue = true;
      this.flushIn(max - interval);
    }, interval);
  }

  /** Commit what waits now. Safe to call at any time (shutdown calls it). */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    // A trickle's group (it waited past the interval): CPU is plentiful, the SD card's pages are not.
    const deflate = this.overdue;
    this.overdue = false;
    if (this.accepted.length === 0 && this.quarantined.length === 0) return;
    const accepted = this.accepted;
    const quarantined = this.quarantined;
    const deliveries = this.pendingDeliveries > 0 ? deliveriesOf(accepted.pendingDeliveries(), quarantined) : undefined;
    const log = this.opts.deliveries;
    try {
      const n = this.outbox.commit(
        accepted,
        quarantined,
        deliveries && log ? () => log.persist(deliveries) : undefined,
        deflate,
      );
      accepted.clear();
      this.quarantined = [];
      this.pendingReadings = 0;
      this.pendingBytes = 0;
      this.pendingDeliveries = 0;
      this.pendingOnce = 0;
      if (this.isFailing) this.opts.logger.info("outbox commits work again");
      this.isFailing = false;
      if (deliveries) {
        log?.remember(deliveries);
        settle(deliveries);
      }
      this.opts.onCommitted(n, quarantined);
    } catch (err) {
      // A failed commit must not lose what waited: it stays here, new messages queue behind
      // it (bounded), and the next attempt comes in a second.
      this.isFailing = true;
      this.bound();
      this.opts.onError(err as Error);
      this.retryLater();
    }
  }

  /**
   * Not inside the catch block: a closure made there keeps the caught error alive, the next
   * failure's stack trace keeps that closure, and so on, so each failed second would keep a
   * whole failed group in memory for good.
   */
  private retryLater(): void {
    this.timer ??= setTimeout(
      () => {
        this.timer = undefined;
        this.flush();
      },
      Math.max(this.opts.intervalMs, 1_000),
    );
  }

  /** Keep at most ten groups in memory while commits fail; the policy says which readings go. */
  private bound(): void {
    const maxReadings = this.opts.maxReadings * 10;
    const maxBytes = this.opts.maxBytes * 10;
    let dropped = 0;
    const returned: Delivery[] = [];
    while (this.accepted.length > 1 && (this.pendingReadings > maxReadings || this.pendingBytes > maxBytes)) {
      const m = this.opts.policy === "drop_oldest" ? this.accepted.shift() : this.accepted.pop();
      this.pendingReadings -= m.readings;
      this.pendingBytes -= m.weight;
      // Not acknowledged, so the broker still has it: given back, not lost.
      if (m.delivery) {
        this.pendingDeliveries--;
        returned.push(m.delivery);
      } else {
        this.pendingOnce--;
        dropped += m.readings;
      }
    }
    if (dropped > 0) this.opts.onDropped("commit_failed", dropped);
    if (returned.length > 0) byOwner(returned, (owner, ds) => owner.returned(ds));
  }

  close(): void {
    this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The group's deliveries (a fresh array, extended here) followed by its quarantined messages'. */
function deliveriesOf(accepted: Delivery[], quarantined: readonly QuarantinedMessage[]): Delivery[] {
  for (const q of quarantined) if (q.delivery) accepted.push(q.delivery);
  return accepted;
}

/** Hand each owner (a source) its settled deliveries, in the order they came. */
function settle(deliveries: readonly Delivery[]): void {
  byOwner(deliveries, (owner, ds) => owner.settled(ds));
}

function byOwner(deliveries: readonly Delivery[], f: (owner: DeliveryOwner, ds: Delivery[]) => void): void {
  let owner: DeliveryOwner | undefined;
  let run: Delivery[] = [];
  for (const d of deliveries) {
    if (d.owner !== owner) {
      if (owner) f(owner, run);
      owner = d.owner;
      run = [];
    }
    run.push(d);
  }
  if (owner) f(owner, run);
}

/** About what a message adds to the transaction: its payload plus the readings' JSON. */
function weight(m: AcceptedMessage): number {
  return m.payload.byteLength + 100 * m.readings.length + 100;
}
