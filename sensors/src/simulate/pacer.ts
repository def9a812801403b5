import { setTimeout as sleep } from "node:timers/promises";

/** How fast data time runs against the wall clock: 1 real time, N times faster, or no pacing. */
export type Speed = number | "max";

/**
 * Pacing against an absolute schedule: an item whose data time is `offsetMs` after the first
 * one is due at start + offsetMs / speed. Waiting for that instant, rather than sleeping a
 * fixed gap after each send, keeps timer lateness and send time from adding up into drift;
 * when behind (a slow output), items go out at once until the schedule is caught up. At tens
 * of thousands per second the gaps are below a timer's resolution, so items go out in small
 * bursts, one per millisecond tick.
 */
export class Pacer {
  private start: number | undefined;

  constructor(
    private readonly speed: Speed,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (speed !== "max" && !(speed > 0)) throw new RangeError(`speed must be > 0 or "max", got ${speed}`);
  }

  /** Undefined when the item is already due (the fast path), else a promise that resolves when it is. */
  wait(offsetMs: number, signal?: AbortSignal): Promise<void> | undefined {
    if (this.speed === "max") return undefined;
    const now = this.now();
    this.start ??= now;
    const delay = this.start + offsetMs / this.speed - now;
    if (delay < 1) return undefined;
    return sleep(delay, undefined, { signal }).catch(() => undefined);
  }
}
