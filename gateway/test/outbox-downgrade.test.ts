/**
 * `outbox downgrade`: a format-4 outbox with packed rows goes back to format 3 for a rollback,
 * every row's text back in `wire` with its checksum still right, and a file a gateway still
 * has open is left alone.
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
import { silentLogger } from "@datalab/shared";
import { connectionOf, messages, openTestOutbox, wireMessagesIn } from "./support/outbox";
import { runCli } from "./support/gateway";

/** A row as stored, its checksum with it. */
type StoredRow = Omit<OutboxRow, "bytes" | "wireBytes"> & { crc: number | null };

const ROWS_SQL =
  "SELECT id, first_seq AS firstSeq, last_seq AS lastSeq, n, m, received_at AS receivedAt, wire, crc" +
  " FROM outbox ORDER BY id";

/**
 * A format-4 outbox written by the real Outbox, then every other row packed by hand (the
 * Outbox may pack some itself; their text is taken from `packed` then). Returns each row
 * with its text.
 */
function packedOutbox(): { path: string; rows: StoredRow[]; packed: number; wire: unknown[] } {
  const t = openTestOutbox({ rowMaxReadings: 5 });
  t.outbox.commit(messages(1, 60));
  const wire = wireMessagesIn(t.outbox);
  t.outbox.close();
  const db = new Database(t.path);
  try {
    expect(db.pragma("user_version", { simple: true })).toBe(4);
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

describe("outbox downgrade", () => {
  it("turns a format-4 outbox with packed rows into format 3, every row's text back and its checksum right", () => {
    expect(OUTBOX_FORMAT).toBe(4);
    const { path, rows, packed, wire } = packedOutbox();
    expect(downgradeOutbox(path, 3)).toEqual({ unpacked: packed, from: 4, to: 3 });
    // Nothing left in a WAL: the whole change is in the database file itself.
    expect(existsSync(`${path}-wal`) && statSync(`${path}-wal`).size > 0).toBe(false);

    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma("user_version", { simple: true })).toBe(3);
      expect(columnsOf(db)).not.toContain("packed");
      const after = db.prepare<[], StoredRow>(ROWS_SQL).all();
      expect(after).toEqual(rows);
      for (const r of after) {
        expect(r.crc, `row ${r.id}`).not.toBeNull();
        expect(rowCrc(r.firstSeq, r.lastSeq, r.n, r.m, r.receivedAt, r.wire), `row ${r.id}`).toBe(r.crc);
      }
    } finally {
      db.close();
    }
    // This release opens it again (migrating back to 4) and finds every message.
    const outbox = Outbox.open(path, { logger: silentLogger() });
    try {
      expect(wireMessagesIn(outbox)).toEqual(wire);
    } finally {
      outbox.close();
    }
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
      expect(db.pragma("user_version", { simple: true })).toBe(4);
      expect(columnsOf(db)).toContain("packed");
    } finally {
      db.close();
    }
  });

  it("does nothing to a file already in the format asked or older, refuses below 3 and a missing file", () => {
    const t = openTestOutbox();
    t.outbox.commit(messages(1, 10));
    t.outbox.close();
    expect(downgradeOutbox(t.path, 4)).toEqual({ unpacked: 0, from: 4, to: 4 });
    expect(downgradeOutbox(t.path, 7)).toEqual({ unpacked: 0, from: 4, to: 4 });
    expect(() => downgradeOutbox(t.path, 2)).toThrow(/only format 3 and later/);
    expect(downgradeOutbox(t.path, 3)).toEqual({ unpacked: 0, from: 4, to: 3 });
    expect(downgradeOutbox(t.path, 3)).toEqual({ unpacked: 0, from: 3, to: 3 });
    const missing = join(tempDir("datalab-outbox-none-"), "outbox.db");
    expect(() => downgradeOutbox(missing, 3)).toThrow(/no outbox at/);
    expect(existsSync(missing)).toBe(false);
  });

  it("refuses a packed row that does not inflate, leaving the file as it was", () => {
    const { path, packed } = packedOutbox();
    const db = new Database(path);
    db.prepare(
      "UPDATE outbox SET packed = x'ffffffff' WHERE id = (SELECT max(id) FROM outbox WHERE packed IS NOT NULL)",
    ).run();
    db.close();
    expect(() => downgradeOutbox(path, 3)).toThrow(/packed text does not inflate.*nothing was changed/);
    const after = new Database(path, { readonly: true });
    try {
      expect(after.pragma("user_version", { simple: true })).toBe(4);
      expect(after.prepare("SELECT count(*) AS k FROM outbox WHERE packed IS NOT NULL").get()).toEqual({ k: packed });
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
    expect(r.stdout).toMatch(/converted from format 4 to 3 \(\d+ packed rows unpacked\)/);
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
