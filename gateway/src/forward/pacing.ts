/**
 * Token bucket for a thin uplink: `ratePerSec` tokens flow in, at most `burst` are kept.
 * A send waits until the bucket is not in debt, then takes what it costs, even into debt:
 * a batch is never split to fit, and the debt is paid back by waiting before the next one.
 * Over any stretch of time the average stays at the rate (plus one burst).
 */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.at = now();
  }

  /** How long to wait (ms) before the next send may go. */
  delayMs(): number {
    this.refill();
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.ratePerSec) * 1000);
  }

  take(cost: number): void {
    this.refill();
    this.tokens -= cost;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.at) / 1000) * this.ratePerSec);
    this.at = t;
  }
}

/** Both caps of the uplink (readings/s and bytes/s); a cap of 0 is no cap. */
export class Pacer {
  private readonly readings: TokenBucket | undefined;
  private readonly bytes: TokenBucket | undefined;

  constructor(maxReadingsPerSec: number, maxBytesPerSec: number, now: () => number = Date.now) {
    this.readings = maxReadingsPerSec > 0 ? new TokenBucket(maxReadingsPerSec, maxReadingsPerSec, now) : undefined;
    this.bytes = maxBytesPerSec > 0 ? new TokenBucket(maxBytesPerSec, maxBytesPerSec, now) : undefined;
  }

  get limited(): boolean {
    return this.readings !== undefined || this.bytes !== undefined;
  }

  delayMs(): number {
    return Math.max(this.readings?.delayMs() ?? 0, this.bytes?.delayMs() ?? 0);
  }

  take(readings: number, bytes: number): void {
    this.readings?.take(readings);
    this.bytes?.take(bytes);
  }
}

/** Counts in one-second buckets over a sliding window: bounded memory, no per-event array. */
export class RateWindow {
  private readonly buckets: number[];
  private readonly stamps: number[];

  constructor(windowMs: number) {
    const n = Math.ceil(windowMs / 1000);
    this.buckets = new Array<number>(n).fill(0);
    this.stamps = new Array<number>(n).fill(-1);
  }

  add(now: number, n: number): void {
    const sec = Math.floor(now / 1000);
    const i = sec % this.buckets.length;
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec;
      this.buckets[i] = 0;
    }
    this.buckets[i]! += n;
  }

  /** Per second over the window, the current (partial) second excluded so a burst does not read high. */
  perSecond(now: number): number {
    const sec = Math.floor(now / 1000);
    let sum = 0;
    let from = sec;
    for (let i = 0; i < this.buckets.length; i++) {
      const s = this.stamps[i]!;
      if (s > sec - this.buckets.length && s < sec) {
        sum += this.buckets[i]!;
        from = Math.min(from, s);
      }
    }
    // Over the seconds since the first one with data, not the whole window: a drain that
    // started 3 s ago shows its real rate at once.
    const seconds = sec - from;
    return seconds > 0 ? sum / seconds : 0;
  }
}
