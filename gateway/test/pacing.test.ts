import { describe, expect, it } from "vitest";
import { Pacer, RateWindow, TokenBucket } from "../src/forward/pacing";

/** A clock the test moves by hand. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("token bucket", () => {
  it("lets a burst through, then holds the average at the rate", () => {
    const c = clock();
    const b = new TokenBucket(100, 100, c.now);
    expect(b.delayMs()).toBe(0);
    b.take(100);
    expect(b.delayMs()).toBe(0);
    // A batch bigger than what is left goes, and the debt is paid by waiting.
    b.take(50);
    expect(b.delayMs()).toBe(500);
    c.advance(500);
    expect(b.delayMs()).toBe(0);
    // Over 10 s of sending whenever allowed, about rate × time + one burst goes out.
    let sent = 0;
    for (let ms = 0; ms < 10_000; ms += 10) {
      if (b.delayMs() === 0) {
        b.take(25);
        sent += 25;
      }
      c.advance(10);
    }
    expect(sent).toBeGreaterThanOrEqual(1_000);
    expect(sent).toBeLessThanOrEqual(1_000 + 25);
  });

  it("never keeps more than its burst while idle", () => {
    const c = clock();
    const b = new TokenBucket(10, 20, c.now);
    c.advance(60_000);
    b.take(20);
    expect(b.delayMs()).toBe(0);
    b.take(10);
    expect(b.delayMs()).toBe(1_000);
  });
});

describe("pacer", () => {
  it("waits for the tighter of its two caps, and not at all without caps", () => {
    const c = clock();
    const free = new Pacer(0, 0, c.now);
    free.take(1_000_000, 1e9);
    expect(free.limited).toBe(false);
    expect(free.delayMs()).toBe(0);
    const p = new Pacer(1_000, 10_000, c.now);
    p.take(1_000, 30_000);
    // Readings are within their burst; bytes are 20,000 in debt at 10,000/s.
    expect(p.delayMs()).toBe(2_000);
  });
});

describe("rate window", () => {
  it("reports readings per second over the seconds that had data, without the current partial one", () => {
    const c = clock(10_000_000);
    const w = new RateWindow(10_000);
    expect(w.perSecond(c.now())).toBe(0);
    for (let s = 0; s < 4; s++) {
      w.add(c.now(), 500);
      c.advance(1_000);
    }
    w.add(c.now(), 99_999); // the current second: not counted yet
    expect(w.perSecond(c.now())).toBe(500);
    c.advance(20_000);
    expect(w.perSecond(c.now())).toBe(0);
  });
});
