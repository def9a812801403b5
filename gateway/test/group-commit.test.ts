/**
 * When the group commit commits: by count at once, by age once a group holds enough, and a
 * trickle's small groups later, by the time bound. A real outbox in SQLite; only the clock is
 * faked (vitest's timers), so the ages are exact.
 */
import { rmSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { silentLogger } from "@datalab/shared";
import type { Delivery } from "../src/outbox/deliveries";
import { GroupCommitter, type GroupCommitOptions } from "../src/outbox/group-commit";
import type { Outbox } from "../src/outbox/store";
import { message, openTestOutbox, seqsIn, type TestOutbox } from "./support/outbox";

let t: TestOutbox;
let commits: number[];
beforeEach(() => {
  vi.useFakeTimers();
  t = openTestOutbox();
  commits = [];
});
afterEach(() => {
  vi.useRealTimers();
  t.outbox.close();
  rmSync(t.dir, { recursive: true, force: true });
});

function committer(o: Partial<GroupCommitOptions>): GroupCommitter {
  return new GroupCommitter(t.outbox, {
    intervalMs: 100,
    maxReadings: 250,
    maxBytes: 1024 * 1024,
    policy: "drop_oldest",
    logger: silentLogger(),
    onCommitted: (n) => commits.push(n),
    onError: (err) => {
      throw err;
    },
    onDropped: () => undefined,
    ...o,
  });
}

const stored = () => seqsIn(t.outbox).length;

describe("group commit timing", () => {
  it("commits a group at the interval once it holds the minimum", () => {
    const gc = committer({ minReadings: 5, maxIntervalMs: 500 });
    for (let i = 1; i <= 5; i++) gc.accept(message(i));
    vi.advanceTimersByTime(99);
    expect(stored()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(stored()).toBe(5);
    expect(commits).toEqual([5]);
  });

  it("lets a trickle's smaller group wait, and commits it by the time bound", () => {
    const gc = committer({ minReadings: 5, maxIntervalMs: 500 });
    gc.accept(message(1));
    gc.accept(message(2));
    vi.advanceTimersByTime(499);
    expect(stored()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(commits).toEqual([2]);
    // The next group starts its own clock.
    gc.accept(message(3));
    vi.advanceTimersByTime(499);
    expect(commits).toEqual([2]);
    vi.advanceTimersByTime(1);
    expect(commits).toEqual([2, 1]);
  });

  it("commits a waiting group as soon as it reaches the minimum past the interval", () => {
    const gc = committer({ minReadings: 5, maxIntervalMs: 500 });
    for (let i = 1; i <= 3; i++) gc.accept(message(i));
    vi.advanceTimersByTime(200);
    expect(stored()).toBe(0);
    gc.accept(message(4));
    expect(stored()).toBe(0);
    gc.accept(message(5));
    expect(commits).toEqual([5]);
    // Nothing is left armed for the committed group.
    vi.advanceTimersByTime(1_000);
    expect(commits).toEqual([5]);
  });

  it(
    "does not hold the tail of a burst: after a group that filled in time, " + "a smaller one commits at the interval",
    () => {
      const gc = committer({ minReadings: 5, maxIntervalMs: 500 });
      for (let i = 1; i <= 6; i++) gc.accept(message(i));
      vi.advanceTimersByTime(100);
      expect(commits).toEqual([6]);
      // The burst ends: its last two readings go at the interval, not at 500 ms.
      gc.accept(message(7));
      gc.accept(message(8));
      vi.advanceTimersByTime(100);
      expect(commits).toEqual([6, 2]);
      // Still a trickle after that: the next small group waits again.
      gc.accept(message(9));
      vi.advanceTimersByTime(100);
      expect(commits).toEqual([6, 2]);
      vi.advanceTimersByTime(400);
      expect(commits).toEqual([6, 2, 1]);
    },
  );

  it("commits at the count at once, whatever the age", () => {
    const gc = committer({ maxReadings: 10, minReadings: 5, maxIntervalMs: 500 });
    for (let i = 1; i <= 10; i++) gc.accept(message(i));
    expect(commits).toEqual([10]);
  });

  it("with a minimum of 1 (or no longer bound), commits every group at the interval", () => {
    const a = committer({ minReadings: 1, maxIntervalMs: 500 });
    a.accept(message(1));
    vi.advanceTimersByTime(100);
    expect(commits).toEqual([1]);
    const b = committer({ minReadings: 5 });
    b.accept(message(2));
    vi.advanceTimersByTime(100);
    expect(commits).toEqual([1, 1]);
  });

  it("close commits what waits at once", () => {
    const gc = committer({ minReadings: 5, maxIntervalMs: 500 });
    gc.accept(message(1));
    vi.advanceTimersByTime(150);
    gc.close();
    expect(commits).toEqual([1]);
    vi.advanceTimersByTime(1_000);
    expect(commits).toEqual([1]);
  });
});

describe("a trickle of messages the broker resends (MQTT QoS 1 on a persistent session)", () => {
  const owner = { settled: () => undefined, returned: () => undefined };
  const resendable = (seq: number) => ({ ...message(seq), delivery: { id: seq, digest: seq, owner } });
  const opts = {
    maxReadings: 10,
    minReadings: 5,
    maxIntervalMs: 500,
    resendable: { maxIntervalMs: 5_000, maxReadings: 20 },
  };

  it("waits for the longer bound, in time or in count, since nothing in it is at risk", () => {
    const gc = committer(opts);
    gc.accept(resendable(1));
    gc.accept(resendable(2));
    vi.advanceTimersByTime(4_999);
    expect(commits).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(commits).toEqual([2]);
    // Past the interval, it waits for the longer count, not for minReadings.
    gc.accept(resendable(3));
    vi.advanceTimersByTime(200);
    for (let i = 4; i <= 21; i++) gc.accept(resendable(i));
    expect(commits).toEqual([2]);
    gc.accept(resendable(22));
    expect(commits).toEqual([2, 20]);
  });

  it("keeps today's bound for a rate that is no trickle: a group holding the minimum commits at the interval", () => {
    const gc = committer(opts);
    for (let i = 1; i <= 5; i++) gc.accept(resendable(i));
    vi.advanceTimersByTime(100);
    expect(commits).toEqual([5]);
    // A flood's groups close at the usual count, not the trickle's larger one.
    for (let i = 6; i <= 15; i++) gc.accept(resendable(i));
    expect(commits).toEqual([5, 10]);
  });

  it("goes back to the short bound when a message that cannot be resent joins (a serial line)", () => {
    const gc = committer(opts);
    gc.accept(resendable(1));
    vi.advanceTimersByTime(300);
    gc.accept(message(2));
    vi.advanceTimersByTime(199);
    expect(commits).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(commits).toEqual([2]);
    // A group already past the short bound commits as soon as such a message joins.
    gc.accept(resendable(3));
    vi.advanceTimersByTime(800);
    gc.accept(message(4));
    expect(commits).toEqual([2, 2]);
  });

  it("without the option, such a group waits like any other", () => {
    const gc = committer({ minReadings: 5, maxIntervalMs: 500 });
    gc.accept(resendable(1));
    vi.advanceTimersByTime(500);
    expect(commits).toEqual([1]);
  });
});

describe("deliveries (MQTT QoS 1) while commits fail", () => {
  it(
    "gives unacknowledged messages back to their source instead of counting them lost, and settles the rest " +
      "once a commit works (a failing commit stands in for a broken disk)",
    () => {
      const settled: number[] = [];
      const returned: number[] = [];
      const owner = {
        settled: (ds: readonly Delivery[]) => settled.push(...ds.map((d) => d.id)),
        returned: (ds: readonly Delivery[]) => returned.push(...ds.map((d) => d.id)),
      };
      let failing = true;
      const outbox = {
        commit: (...args: Parameters<Outbox["commit"]>) => {
          if (failing) throw new Error("disk I/O error");
          return t.outbox.commit(...args);
        },
      } as unknown as Outbox;
      const drops: number[] = [];
      const c = new GroupCommitter(outbox, {
        intervalMs: 100,
        maxReadings: 10,
        maxBytes: 1024 * 1024,
        policy: "drop_oldest",
        logger: silentLogger(),
        onCommitted: (n) => commits.push(n),
        onError: () => undefined,
        onDropped: (_r, n) => drops.push(n),
      });
      // A plain message (a serial line) and 120 deliveries: ten groups' worth stay in memory.
      c.accept(message(0));
      for (let i = 1; i <= 120; i++) c.accept({ ...message(i), delivery: { id: i, digest: i, owner } });
      expect(c.failing).toBe(true);
      // The plain message is the oldest and goes first, counted; the deliveries that follow are given back.
      expect(drops).toEqual([1]);
      expect(returned).toEqual(Array.from({ length: 20 }, (_, k) => k + 1));
      expect(c.unsettled).toBe(100);
      failing = false;
      vi.advanceTimersByTime(1_000);
      expect(settled).toEqual(Array.from({ length: 100 }, (_, k) => k + 21));
      expect(c.unsettled).toBe(0);
      expect(commits).toEqual([100]);
    },
  );
});
