/**
 * `outbox downgrade`: a format-5 outbox goes back to format 4 (rows of wire format 2 written
 * again in format 1) or 3 (packed rows unpacked too) for a rollback, every row's text in
 * `wire` with its checksum right, and a file a gateway still has open is left alone.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { tempDir, TIME_SCALE } from "@datalab/shared/testing";
import { rowCrc } from "../src/outbox/damage";
import { downgradeOutbox } from "../src/outbox/downgrade";
import { OUTBOX_FORMAT } from "../src/outbox/schema";
import { Outbox, type OutboxRow } from "../src/outbox/store";
import type { WireFormat } from "@datalab/shared";
import { silentLogger } from "@datalab/shared";
import { connectionOf, messages, openTestOutbox, wireMessagesIn, wireMessagesOf } from "./support/outbox";
import { runCli } from "./support/gateway";

/** A row as stored, its checksum with it. */
type StoredRow = Omit<OutboxRow, "bytes" | "wireBytes"> & { crc: number | null };

const ROWS_SQL =
  "SELECT id, first_seq AS firstSeq, last_seq AS lastSeq, n, m, received_at AS receivedAt, wire, crc" +
  " FROM outbox ORDER BY id";

/**
 * A format-5 outbox written by the real Outbox in `formats` (one commit each, in turn), then
 * every other row packed by hand (the Outbox may pack some itself; their text is taken from
 * `packed` then). Returns each row with its text.
 */
function packedOutbox(formats: WireFormat[] = [2]): {
  path: string;
  rows: StoredRow[];
  packed: number;
  wire: unknown[];
} {
  const t = openTestOutbox({ rowMaxReadings: 5, wireFormat: formats[0] });
  formats.forEach((format, i) => {
    if (i > 0) t.reopen({ wireFormat: format });
    t.outbox.commit(messages(1 + 60 * i, 60));
  });
  const wire = wireMessagesIn(t.outbox);
  t.outbox.close();
  const db = new Database(t.path);
  try {
    expect(db.pragma("user_version", { simple: true })).toBe(5);
    const rows = db
      .prepare<[], StoredRow & { packed: Buffer | null }>(`${ROWS_SQL.replace(" FROM", ", packed FROM")}`)
      .all()
      .map(({ packed, ...r }) => ({ ...r, wire: packed ? inflateRawSync(packed).toString("utf8") : r.wire }));
    expect(rows.length).toBeGreaterThan(4);
    const pack = db.prepare<[Buffer, number]>("UPDATE outbox SET wire = '', packed = ? WHERE id = ?");
    db.transaction(() => {
      for (const r of rows.filter((_, i) => i % 2 === 0))
        pack.run(deflateRawSync(Buffer.from(r.wire, "utf8"), { level: 1 }), r.id);
    })();
    const packed = db.prepare<[], { k: number }>("SELECT count(*) AS k FROM outbox WHERE packed IS NOT NULL").get()!.k;
    expect(packed).toBeGreaterThanOrEqual(Math.ceil(rows.length / 2));
    return { path: t.path, rows, packed, wire };
  } finally {
    db.close();
  }
}

function columnsOf(db: Database.Database): string[] {
  return db
    .prepare<[], { name: string }>("SELECT name FROM pragma_table_info('outbox')")
    .all()
    .map((c) => c.name);
}

/** This release opens the converted file again (migrating it forward) and finds every message. */
function expectReopened(path: string, wire: unknown[]): void {
  const outbox = Outbox.open(path, { logger: silentLogger() });
  try {
    expect(wireMessagesIn(outbox)).toEqual(wire);
  } finally {
    outbox.close();
  }
}

describe("outbox downgrade", () => {
  it("turns rows of wire format 2 into format 1 for format 4, each message the same, packed rows still packed", () => {
    expect(OUTBOX_FORMAT).toBe(5);
    const { path, rows, packed, wire } = packedOutbox([1, 2, 1]);
    const format2 = rows.filter((r) => r.wire.startsWith("["));
    expect(format2.length).toBeGreaterThan(0);
    expect(format2.length).toBeLessThan(rows.length);
    expect(downgradeOutbox(path, 4)).toEqual({ unpacked: 0, converted: format2.length, from: 5, to: 4 });
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma("user_version", { simple: true })).toBe(4);
      const after = db
        .prepare<[], StoredRow & { packed: Buffer | null }>(`${ROWS_SQL.replace(" FROM", ", packed FROM")}`)
        .all();
      expect(after.map(({ wire: _, crc: __, packed: ___, ...k }) => k)).toEqual(
        rows.map(({ wire: _, crc: __, ...k }) => k),
      );
      // A large outbox must not grow out of its cap on the way back: packed rows stay packed.
      expect(after.filter((r) => r.packed !== null)).toHaveLength(packed);
      for (const [i, r] of after.entries()) {
        const text = r.packed ? inflateRawSync(r.packed).toString("utf8") : r.wire;
        expect(text.startsWith("{"), `row ${r.id}`).toBe(true);
        expect(wireMessagesOf(text)).toEqual(wireMessagesOf(rows[i]!.wire));
        expect(rowCrc(r.firstSeq, r.lastSeq, r.n, r.m, r.receivedAt, text), `row ${r.id}`).toBe(r.crc);
      }
    } finally {
      db.close();
    }
    expectReopened(path, wire);
  });

  it("turns a format-5 outbox with packed rows into format 3, every row's text back and its checksum right", () => {
    const { path, rows, packed, wire } = packedOutbox([1]);
    expect(downgradeOutbox(path, 3)).toEqual({ unpacked: packed, converted: 0, from: 5, to: 3 });
    // Nothing left in a WAL: the whole change is in the database file itself.
    expect(existsSync(`${path}-wal`) && statSync(`${path}-wal`).size > 0).toBe(false);

    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma("user_version", { simple: true })).toBe(3);
      expect(columnsOf(db)).not.toContain("packed");
      const after = db.prepare<[], StoredRow>(ROWS_SQL).all();
      expect(after).toEqual(rows);
      expect(after.every((r) => r.wire.startsWith("{"))).toBe(true);
      for (const r of after) {
        expect(r.crc, `row ${r.id}`).not.toBeNull();
        expect(rowCrc(r.firstSeq, r.lastSeq, r.n, r.m, r.receivedAt, r.wire), `row ${r.id}`).toBe(r.crc);
      }
    } finally {
      db.close();
    }
    expectReopened(path, wire);
  });

  it("leaves a file alone that a gateway has open, writing or idle, with a clear error", () => {
    const t = openTestOutbox();
    t.outbox.commit(messages(1, 10));
    const conn = connectionOf(t.outbox);
    conn.exec("BEGIN IMMEDIATE");
    try {
      expect(() => downgradeOutbox(t.path, 3)).toThrow(/the outbox is in use: stop the gateway first/);
    } finally {
      conn.exec("COMMIT");
    }
    // Between two commits the gateway holds no lock, but its connection is open all the same.
    expect(() => downgradeOutbox(t.path, 3)).toThrow(/the outbox is in use: stop the gateway first/);
    t.outbox.close();
    const db = new Database(t.path, { readonly: true });
    try {
      expect(db.pragma("user_version", { simple: true })).toBe(5);
      expect(columnsOf(db)).toContain("packed");
    } finally {
      db.close();
    }
  });

  it("does nothing to a file already in the format asked or older, refuses below 3 and a missing file", () => {
    const t = openTestOutbox();
    t.outbox.commit(messages(1, 10));
    t.outbox.close();
    expect(downgradeOutbox(t.path, 5)).toEqual({ unpacked: 0, converted: 0, from: 5, to: 5 });
    expect(downgradeOutbox(t.path, 7)).toEqual({ unpacked: 0, converted: 0, from: 5, to: 5 });
    expect(() => downgradeOutbox(t.path, 2)).toThrow(/only format 3 and later/);
    expect(downgradeOutbox(t.path, 3)).toMatchObject({ unpacked: 0, from: 5, to: 3 });
    expect(downgradeOutbox(t.path, 3)).toEqual({ unpacked: 0, converted: 0, from: 3, to: 3 });
    const missing = join(tempDir("datalab-outbox-none-"), "outbox.db");
    expect(() => downgradeOutbox(missing, 3)).toThrow(/no outbox at/);
    expect(existsSync(missing)).toBe(false);
  });

  it("refuses a packed row that does not inflate, leaving the file as it was", () => {
    const { path, packed } = packedOutbox([1]);
    const db = new Database(path);
    db.prepare(
      "UPDATE outbox SET packed = x'ffffffff' WHERE id = (SELECT max(id) FROM outbox WHERE packed IS NOT NULL)",
    ).run();
    db.close();
    expect(() => downgradeOutbox(path, 3)).toThrow(/packed text does not inflate.*nothing was changed/);
    const after = new Database(path, { readonly: true });
    try {
      expect(after.pragma("user_version", { simple: true })).toBe(5);
      expect(after.prepare("SELECT count(*) AS k FROM outbox WHERE packed IS NOT NULL").get()).toEqual({ k: packed });
    } finally {
      after.close();
    }
  });

  it("refuses a row of wire format 2 it cannot read, leaving the file as it was", () => {
    const { path } = packedOutbox([2]);
    const db = new Database(path);
    db.prepare("UPDATE outbox SET wire = '[\"mqtt:x\",1', packed = NULL WHERE id = (SELECT max(id) FROM outbox)").run();
    db.close();
    expect(() => downgradeOutbox(path, 4)).toThrow(/outbox row \d+: its text is not JSON.*nothing was changed/);
    const after = new Database(path, { readonly: true });
    try {
      expect(after.pragma("user_version", { simple: true })).toBe(5);
      const first = after
        .prepare<[], { wire: string }>("SELECT wire FROM outbox WHERE packed IS NULL ORDER BY id")
        .get();
      expect(first?.wire.startsWith("[")).toBe(true);
    } finally {
      after.close();
    }
  });

  it("runs from the command line: what it did on stdout, exit 0; an error on stderr, exit 1", async () => {
    const { path } = packedOutbox();
    const env = { DATALAB_DATA_DIR: join(path, "..") };
    const format = await runCli(["outbox", "format"], {}, 30_000 * TIME_SCALE);
    expect(format.stdout).toBe(`${OUTBOX_FORMAT}\n`);
    const r = await runCli(["outbox", "downgrade", "--to", "3"], env, 30_000 * TIME_SCALE);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(
      /converted from format 5 to 3 \(\d+ rows of wire format 2 written in format 1, \d+ packed rows unpacked\)/,
    );
    expect(r.code).toBe(0);
    const none = await runCli(
      ["outbox", "downgrade", "--to", "3"],
      { DATALAB_DATA_DIR: tempDir("datalab-outbox-none-") },
      30_000 * TIME_SCALE,
    );
    expect(none.stderr).toMatch(/no outbox at/);
    expect(none.code).toBe(1);
  });
});
