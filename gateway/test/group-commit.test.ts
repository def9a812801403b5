/**
 * When the group commit commits: by count at once, by age once a group holds enough, and a
 * trickle's small groups later, by the time bound. A real outbox in SQLite; only the clock is
 * faked (vitest's timers), so the ages are exact.
 */
import { rmSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { silentLogger } from "@datalab/shared";
import { GroupCommitter, type GroupCommitOptions } from "../src/outbox/group-commit";
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

  it("does not hold the tail of a burst: after a group that filled in time, a smaller one commits at the interval", () => {
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
  });

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
