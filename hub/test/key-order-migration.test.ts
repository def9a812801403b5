import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { silentLogger } from "@datalab/shared";
import type { TestDatabase } from "@datalab/shared/testing";
import { loadMigrations, migrate } from "../src/sinks/postgres-migrate";
import { PostgresSink } from "../src/sinks/postgres";
import { makeBatches, sinkBatch, totalReadings } from "./support/batches";
import { count, testDatabase } from "./support/db";

describe("migration 005: the reading key compares seq first", () => {
  let db: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await testDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    pool.on("error", () => undefined);
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it("keeps every row of a database written before it, and a redelivery after it still inserts nothing", async () => {
    const all = loadMigrations();
    const before = all.filter((m) => m.version < 5);
    expect(all.map((m) => m.version)).toContain(5);
    await migrate(pool, silentLogger(), before);
    // Two gateways with overlapping seqs: with seq first in the key, only the whole key tells them apart.
    const a = makeBatches("gwkeyA", "iA", 3, 4, 2, 1, "ka");
    const b = makeBatches("gwkeyB", "iB", 3, 4, 2, 1, "kb");
    const sink = new PostgresSink(pool, silentLogger());
    for (const x of [...a, ...b]) await sink.write(sinkBatch(x));
    const written = await count(db);
    expect(written).toBe(totalReadings([...a, ...b]));

    expect(await migrate(pool, silentLogger())).toEqual(all.filter((m) => m.version >= 5).map((m) => m.version));
    const key = await pool.query<{ column: string }>(
      `SELECT a.attname AS column FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = 'readings'::regclass AND i.indisprimary ORDER BY k.n`,
    );
    expect(key.rows.map((r) => r.column)).toEqual(["seq", "gateway_id", "instance"]);
    expect(await count(db)).toBe(written);

    // Redelivered (the consumer says so) and first deliveries that meet rows already there.
    const again = await sink.write({ ...sinkBatch(a[1]!), redelivered: true });
    expect(again.inserted).toBe(0);
    await expect(sink.write(sinkBatch(b[2]!))).resolves.toMatchObject({ inserted: 0 });
    const more = makeBatches("gwkeyA", "iA", 1, 4, 2, a[2]!.batch.lastSeq + 1, "ka")[0]!;
    await expect(sink.write(sinkBatch(more))).resolves.toMatchObject({ inserted: more.readings });
    expect(await count(db)).toBe(written + more.readings);
  });
});
