import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "@datalab/shared";
import { GroupCommitter } from "../src/outbox/group-commit";
import { planSpace } from "../src/outbox/space";
import { SEQ_SKIP_AFTER_NORMAL, type QuarantinedMessage } from "../src/outbox/store";
import {
  connectionOf,
  message,
  messages,
  openTestOutbox,
  seqsIn,
  wireMessagesIn,
  type TestOutbox,
} from "./support/outbox";

const MiB = 1024 * 1024;
const opened: TestOutbox[] = [];
function open(...args: Parameters<typeof openTestOutbox>): TestOutbox {
  const t = openTestOutbox(...args);
  opened.push(t);
  return t;
}

afterAll(() => {
  for (const t of opened) {
    try {
      t.outbox.close();
    } catch {
      // already closed by the test
    }
    rmSync(t.dir, { recursive: true, force: true });
  }
});

describe("outbox file settings", () => {
  it("creates the file with incremental auto-vacuum, WAL and synchronous=FULL by default", () => {
    const { outbox } = open();
    expect(connectionOf(outbox).pragma("auto_vacuum", { simple: true })).toBe(2);
    expect(connectionOf(outbox).pragma("journal_mode", { simple: true })).toBe("wal");
    expect(connectionOf(outbox).pragma("synchronous", { simple: true })).toBe(2);
  });

  it("uses synchronous=NORMAL when asked", () => {
    const { outbox } = open({ synchronous: "NORMAL" });
    expect(connectionOf(outbox).pragma("synchronous", { simple: true })).toBe(1);
  });

  it(
    "under NORMAL, skips seqs ahead at each start (a power cut may roll back forwarded commits), " +
      "with the skip synced",
    () => {
      const t = open({ synchronous: "NORMAL" });
      t.outbox.commit(messages(1, 3));
      t.reopen();
      t.outbox.commit(messages(4, 1));
      expect(seqsIn(t.outbox)).toEqual([1, 2, 3, 3 + 1 + SEQ_SKIP_AFTER_NORMAL]);
      expect(connectionOf(t.outbox).pragma("synchronous", { simple: true })).toBe(1);
      // FULL needs no skip: a commit it acknowledged is on disk.
      const f = open();
      f.outbox.commit(messages(1, 3));
      f.reopen();
      f.outbox.commit(messages(4, 1));
      expect(seqsIn(f.outbox)).toEqual([1, 2, 3, 4]);
    },
  );

  it("keeps seqs strictly increasing across a reopen", () => {
    const t = open();
    t.outbox.commit(messages(1, 10));
    t.reopen();
    t.outbox.commit(messages(11, 5));
    expect(seqsIn(t.outbox)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
  });
});

/** Fill with `groups` commits of `size` messages, checking the file after each. */
function flood(t: TestOutbox, groups: number, size: number, padding: number): { maxFile: number; committed: number } {
  let maxFile = 0;
  let committed = 0;
  for (let g = 0; g < groups; g++) {
    committed += t.outbox.commit(messages(g * size + 1, size, { padding }));
    maxFile = Math.max(maxFile, t.outbox.fileBytes().total);
  }
  return { maxFile, committed };
}

describe("outbox cap", () => {
  it("drop_oldest: keeps the newest readings, counts every drop, and never passes the cap", () => {
    const t = open({ maxBytes: 2 * MiB, fullPolicy: "drop_oldest" });
    // 6,000 messages of ~400 bytes: about twice the cap.
    const { maxFile, committed } = flood(t, 60, 100, 250);
    expect(maxFile).toBeLessThanOrEqual(2 * MiB);
    expect(t.drops.outbox_full).toBeGreaterThan(1_000);
    const seqs = seqsIn(t.outbox);
    // Nothing refused: every reading got a seq; the newest are all there, the oldest went.
    expect(committed).toBe(6_000);
    expect(seqs[seqs.length - 1]).toBe(6_000);
    expect(seqs[0]).toBeGreaterThan(1);
    expect(seqs.length + t.drops.outbox_full).toBe(6_000);
    expect(t.outbox.stats().readings).toBe(seqs.length);
  });

  it("refuse_newest: keeps the oldest readings, counts the refused ones, and never passes the cap", () => {
    const t = open({ maxBytes: 2 * MiB, fullPolicy: "refuse_newest" });
    const { maxFile, committed } = flood(t, 60, 100, 250);
    expect(maxFile).toBeLessThanOrEqual(2 * MiB);
    const seqs = seqsIn(t.outbox);
    expect(seqs[0]).toBe(1);
    expect(t.drops.outbox_full).toBeGreaterThan(1_000);
    expect(committed + t.drops.outbox_full).toBe(6_000);
    // Seqs stay contiguous: a refused message never took one.
    expect(seqs).toEqual(Array.from({ length: committed }, (_, i) => i + 1));
  });

  it("drop_oldest spares the batch in flight (it must be resent byte for byte after a crash)", () => {
    const t = open({ maxBytes: 2 * MiB });
    t.outbox.commit(messages(1, 100, { padding: 250 }));
    const rows = [...t.outbox.scan(0)].slice(0, 10);
    const range = { firstId: rows[0]!.id, lastId: rows[9]!.id, firstSeq: rows[0]!.firstSeq, lastSeq: rows[9]!.lastSeq };
    t.outbox.settle(undefined, range);
    flood(t, 60, 100, 250);
    expect(t.drops.outbox_full).toBeGreaterThan(0);
    expect(t.outbox.rowsOf(range)?.length).toBe(10);
    expect(seqsIn(t.outbox).slice(0, 10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("gives the space back to the file system after a drain", () => {
    const t = open({ maxBytes: 8 * MiB });
    flood(t, 40, 100, 1_000);
    const full = t.outbox.fileBytes().total;
    expect(full).toBeGreaterThan(4 * MiB);
    // The uplink acknowledges everything.
    t.outbox.settle({ firstId: 0, lastId: t.outbox.maxId(), firstSeq: 0, lastSeq: 0 }, undefined);
    expect(t.outbox.stats().readings).toBe(0);
    for (let i = 0; i < 100 && t.outbox.maintain() > 0; i++) t.outbox.commit([message(1)]);
    connectionOf(t.outbox).pragma("wal_checkpoint(PASSIVE)");
    const after = t.outbox.fileBytes();
    expect(after.db).toBeLessThan(full / 4);
    expect(after.total).toBeLessThanOrEqual(8 * MiB);
  });

  it("gives the space back when nothing is written after the drain (no checkpoint would come)", () => {
    const cap = 1 * MiB;
    const t = open({ maxBytes: cap });
    flood(t, 40, 100, 300);
    t.outbox.settle({ firstId: 0, lastId: t.outbox.maxId(), firstSeq: 0, lastSeq: 0 }, undefined);
    for (let i = 0; i < 100 && t.outbox.maintain() > 0; i++);
    expect(t.outbox.fileBytes().total).toBeLessThan(cap / 3);
  });

  it("a full disk (SQLITE_FULL) under drop_oldest: older rows make room, counted as disk_full", () => {
    const t = open({ maxBytes: 64 * MiB });
    t.outbox.commit(messages(1, 2_000, { padding: 500 }));
    // The file may not grow any more: what SQLite answers when the file system is full.
    const pages = connectionOf(t.outbox).pragma("page_count", { simple: true }) as number;
    connectionOf(t.outbox).pragma(`max_page_count = ${pages}`);
    const n = t.outbox.commit(messages(2_001, 500, { padding: 500 }));
    expect(n).toBe(500);
    expect(t.drops.disk_full).toBeGreaterThan(0);
    expect(seqsIn(t.outbox).at(-1)).toBe(2_500);
  });

  it("a full disk under refuse_newest: the new group is refused and counted, quarantine still kept", () => {
    const t = open({ maxBytes: 64 * MiB, fullPolicy: "refuse_newest" });
    t.outbox.commit(messages(1, 2_000, { padding: 500 }));
    const pages = connectionOf(t.outbox).pragma("page_count", { simple: true }) as number;
    connectionOf(t.outbox).pragma(`max_page_count = ${pages}`);
    const bad: QuarantinedMessage = {
      source: "mqtt:x",
      receivedAt: Date.now(),
      payload: Buffer.from("{'name': 'sensor1'}"),
      reason: "not_json",
      detail: "single quotes",
    };
    expect(() => t.outbox.commit(messages(2_001, 500, { padding: 500 }), [bad])).not.toThrow();
    expect(t.drops.disk_full).toBe(500);
    expect(seqsIn(t.outbox).at(-1)).toBe(2_000);
    expect(t.outbox.quarantineCounts()).toEqual({ not_json: 1 });
  });

  it("bounds the quarantine in bytes as well as rows", () => {
    const t = open({ maxBytes: 4 * MiB });
    const budget = planSpace(4 * MiB).quarantineBudget;
    const big = (i: number): QuarantinedMessage => ({
      source: "mqtt:x",
      receivedAt: i,
      payload: Buffer.alloc(60_000, 65),
      reason: "too_large",
      detail: "big",
    });
    for (let i = 0; i < 40; i++) t.outbox.commit([], [big(i)]);
    const bytes = t.outbox.quarantined(1_000).reduce((b, q) => b + q.payload.length, 0);
    expect(bytes).toBeLessThanOrEqual(budget);
    expect(t.outbox.quarantineCounts().too_large).toBeGreaterThan(0);
    expect(t.outbox.fileBytes().total).toBeLessThanOrEqual(4 * MiB);
  });
});

describe("group commit while commits fail", () => {
  it("keeps what waits in memory, bounded, counts what it had to give up, and commits again once it can", () => {
    const t = open();
    const dropped: number[] = [];
    const errors: string[] = [];
    let committed = 0;
    const gc = new GroupCommitter(t.outbox, {
      intervalMs: 100_000,
      maxReadings: 100,
      maxBytes: 1 * MiB,
      policy: "drop_oldest",
      logger: silentLogger(),
      onCommitted: (n) => (committed += n),
      onError: (err) => errors.push(err.message),
      onDropped: (_reason, n) => dropped.push(n),
    });
    // The database refuses writes (as a failing SD card would).
    connectionOf(t.outbox).pragma("query_only = 1");
    for (let i = 1; i <= 5_000; i++) gc.accept(message(i));
    expect(errors.length).toBeGreaterThan(0);
    expect(gc.pending).toBeLessThanOrEqual(1_000);
    const lost = dropped.reduce((a, b) => a + b, 0);
    expect(lost + gc.pending).toBe(5_000);
    connectionOf(t.outbox).pragma("query_only = 0");
    gc.close();
    expect(committed).toBe(gc.pending === 0 ? 5_000 - lost : -1);
    // drop_oldest: what survived is the newest.
    expect(seqsIn(t.outbox).length).toBe(5_000 - lost);
    const values = wireMessagesIn(t.outbox).map((m) => m.readings[0]!.value);
    expect(values.at(-1)).toBe(5_000);
    expect(values[0]).toBe(lost + 1);
  });
});
