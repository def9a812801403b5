import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { silentLogger } from "@datalab/shared";
import { tempDir } from "@datalab/shared/testing";
import { MIGRATIONS } from "../src/outbox/schema";
import { Outbox, ROW_MAX_BYTES, SEQ_SKIP_AFTER_NORMAL } from "../src/outbox/store";
import { messages, openTestOutbox, wireMessagesIn } from "./support/outbox";

describe("outbox rows: a few messages of a group per row", () => {
  it("keeps every message, in order, with its seqs, while storing far fewer rows than messages", () => {
    const t = openTestOutbox();
    t.outbox.commit(messages(1, 200));
    const rows = [...t.outbox.scan(0)];
    expect(rows.length).toBeLessThan(200 / 8);
    expect(rows.every((r) => r.bytes <= ROW_MAX_BYTES)).toBe(true);
    expect(t.outbox.stats()).toMatchObject({ messages: 200, readings: 200 });
    const wire = wireMessagesIn(t.outbox);
    expect(wire.map((m) => m.readings[0]!.value)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(wire.map((m) => m.readings[0]!.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(rows.map((r) => r.m).reduce((a, b) => a + b, 0)).toBe(200);
  });

  it("rowMaxReadings 1 keeps one message per row", () => {
    const t = openTestOutbox({ rowMaxReadings: 1 });
    t.outbox.commit(messages(1, 30));
    expect([...t.outbox.scan(0)].length).toBe(30);
  });

  it("an outbox written by the previous version (one message per row, no `m`) opens and counts its messages", () => {
    const path = join(tempDir("datalab-outbox-v1-"), "outbox.db");
    const db = new Database(path);
    db.exec(MIGRATIONS[0]!);
    db.prepare("INSERT INTO meta (key, value) VALUES ('instance', 'abc'), ('next_seq', '3')").run();
    const wire = (seq: number) =>
      JSON.stringify({
        source: "mqtt:x",
        receivedAt: 1,
        payload: "{}",
        encoding: "utf8",
        readings: [{ seq, sensorId: "s", metric: "v", value: seq, unit: null, ts: 1 }],
      });
    db.prepare(
      "INSERT INTO outbox (first_seq, last_seq, n, received_at, wire) VALUES (1, 1, 1, 1, ?), (2, 2, 1, 1, ?)",
    ).run(wire(1), wire(2));
    db.pragma("user_version = 1");
    db.close();
    const outbox = Outbox.open(path, { logger: silentLogger() });
    try {
      expect(outbox.stats()).toMatchObject({ messages: 2, readings: 2 });
      outbox.commit(messages(3, 5));
      expect(outbox.stats()).toMatchObject({ messages: 7, readings: 7 });
      // No ledger from the previous version proves seq 3 is the highest ever given: seqs skip ahead once.
      const skip = SEQ_SKIP_AFTER_NORMAL;
      expect(wireMessagesIn(outbox).map((m) => m.readings[0]!.seq)).toEqual([
        1,
        2,
        3 + skip,
        4 + skip,
        5 + skip,
        6 + skip,
        7 + skip,
      ]);
    } finally {
      outbox.close();
    }
  });
});
