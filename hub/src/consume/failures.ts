/**
 * Failed write attempts per batch (by stream sequence), kept by this process. JetStream's
 * own delivery count cannot serve: it also grows when a batch is handed back because the
 * sink is down, when a hub process dies with it in flight, or when a paused consumer's
 * buffer expires, and none of those is the batch's fault.
 *
 * `counted` failures are the ones held against the batch (they lead to the dead letters);
 * `tries` counts every failure and sets the retry delay.
 *
 * Bounded: an entry leaves on success or dead-lettering, and the oldest entries are evicted
 * past `max` (a batch that moved to another hub process never comes back here). With K hub
 * processes a batch that keeps failing is therefore dead-lettered after at most
 * K × (maxDeliver − 1) + 1 counted failures.
 */
export interface Failures {
  counted: number;
  tries: number;
  /** When the last failure happened (the caller's clock). */
  lastAt: number;
}

export class FailureCounts {
  private readonly entries = new Map<number, Failures>();

  constructor(private readonly max = 10_000) {}

  /** Record one more failure held against the batch; returns how many so far. */
  add(seq: number): number {
    return this.record(seq, true, Date.now()).counted;
  }

  /** Record one more failure, held against the batch or not; returns the totals so far. */
  record(seq: number, counted: boolean, now: number): Failures {
    const prev = this.entries.get(seq);
    const f: Failures = {
      counted: (prev?.counted ?? 0) + (counted ? 1 : 0),
      tries: (prev?.tries ?? 0) + 1,
      lastAt: now,
    };
    // Re-insert so the Map's insertion order is least-recently-failed first.
    this.entries.delete(seq);
    this.entries.set(seq, f);
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    return f;
  }

  get(seq: number): Failures | undefined {
    return this.entries.get(seq);
  }

  clear(seq: number): void {
    this.entries.delete(seq);
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Delay before a failed batch is offered again: 0.5 s, 1 s, 2 s, ... capped at 30 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, attempt - 1));
}
