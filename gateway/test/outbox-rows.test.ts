import { join } from "node:path";
import { deflateRawSync, inflateRawSync } from "node:zlib";
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

describe("rows stored deflated (a trickle's commit groups)", () => {
  const sizes = (path: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return db
        .prepare<[], { wire: number; packed: number | null }>(
          "SELECT octet_length(wire) AS wire, octet_length(packed) AS packed FROM outbox ORDER BY id",
        )
        .all();
    } finally {
      db.close();
    }
  };

  it("read back as the same messages, take a fraction of the file, and count what they take", () => {
    const t = openTestOutbox();
    t.outbox.commit(messages(1, 100, { padding: 60 }));
    const plainBytes = t.outbox.stats().bytes;
    t.outbox.commit(messages(101, 100, { padding: 60 }), [], undefined, true);
    const stored = sizes(t.path);
    const packed = stored.filter((r) => r.packed !== null);
    expect(packed.length).toBeGreaterThan(0);
    expect(packed.every((r) => r.wire === 0 && r.packed! <= ROW_MAX_BYTES)).toBe(true);
    // The books count what the rows take in the file, so the cap holds on disk.
    const packedBytes = t.outbox.stats().bytes - plainBytes;
    expect(packedBytes).toBe(packed.reduce((s, r) => s + r.packed!, 0));
    expect(packedBytes * 3).toBeLessThan(plainBytes);
    expect(wireMessagesIn(t.outbox).map((m) => m.readings[0]!.value)).toEqual(
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
    // Their text still sizes batches: a row adds its text's bytes, not its packed ones.
    const rows = [...t.outbox.scan(0)];
    expect(rows.every((r) => r.wireBytes === Buffer.byteLength(r.wire))).toBe(true);
    // They survive a restart's checksum pass.
    const again = t.reopen();
    expect(again.damage).toEqual([]);
    expect(again.stats()).toMatchObject({ messages: 200, readings: 200 });
    again.close();
  });

  it("a packed row that rotted fails its checksum at start and is set aside, counted", () => {
    const t = openTestOutbox();
    t.outbox.commit(messages(1, 50, { padding: 60 }), [], undefined, true);
    t.outbox.close();
    const db = new Database(t.path);
    const row = db.prepare<[], { id: number; packed: Buffer }>("SELECT id, packed FROM outbox LIMIT 1").get()!;
    // The same bytes with one value changed still inflate: only the checksum can tell.
    const text = inflateRawSync(row.packed).toString("utf8").replace('"value",1,', '"value",7,');
    expect(text).toContain('"value",7,');
    db.prepare("UPDATE outbox SET packed = ? WHERE id = ?").run(deflateRawSync(text), row.id);
    db.close();
    const again = t.reopen();
    expect(again.damage.map((d) => d.kind)).toContain("rows_damaged");
    expect(wireMessagesIn(again).some((m) => m.readings[0]!.value === 1)).toBe(false);
    again.close();
  });
});
