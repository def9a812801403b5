import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { silentLogger, SinkError } from "@datalab/shared";
import { MONGO_URL, uniqueId, type TestDatabase } from "@datalab/shared/testing";
import { testDatabase } from "./support/db";
import { migrate } from "../src/sinks/postgres-migrate";
import { PostgresSink } from "../src/sinks/postgres";
import { MongoSink } from "../src/sinks/mongo";
import { SinkUnavailableError, type Sink } from "../src/sinks/types";
import { makeBatch, sinkBatch, type TestBatch } from "./support/batches";

/**
 * One contract, run against every sink (STYLE.md item 3): what the consumer relies on to make
 * delivery "exactly once in effect".
 */
interface SinkUnderTest {
  sink: Sink;
  /** Rows (Postgres: readings) or documents (MongoDB: messages) stored. */
  stored(): Promise<number>;
  /** What one batch adds: readings for Postgres, messages for MongoDB. */
  units(b: TestBatch): number;
  cleanup(): Promise<void>;
}

function sinkContract(name: string, open: () => Promise<SinkUnderTest>) {
  describe(`${name} sink contract`, () => {
    let t: SinkUnderTest;
    beforeAll(async () => {
      t = await open();
    });
    afterAll(async () => {
      await t?.cleanup();
    });

    it("answers healthy", async () => {
      expect(await t.sink.healthy()).toBe(true);
    });

    it("writes a batch once; the same batch again (a redelivery) adds nothing and says so", async () => {
      const b = makeBatch({ gatewayId: "gwA", instance: uniqueId("i"), firstSeq: 1, messages: 20 });
      const first = await t.sink.write(sinkBatch(b, 1));
      expect(first).toEqual({ inserted: t.units(b), duplicates: 0 });
      const before = await t.stored();
      const again = await t.sink.write(sinkBatch(b, 1));
      expect(again).toEqual({ inserted: 0, duplicates: t.units(b) });
      expect(await t.stored()).toBe(before);
    });

    it("a batch re-formed by the gateway (overlapping an earlier one) stores only what is new", async () => {
      const instance = uniqueId("i");
      const a = makeBatch({ gatewayId: "gwB", instance, firstSeq: 1, messages: 10 }); // seqs 1..20
      // seqs 11..30: messages 6..10 again
      const b = makeBatch({ gatewayId: "gwB", instance, firstSeq: 11, messages: 10 });
      expect(b.batch.messages[0]).toEqual(a.batch.messages[5]);
      await t.sink.write(sinkBatch(a, 10));
      const before = await t.stored();
      const res = await t.sink.write(sinkBatch(b, 11));
      expect(res.inserted + res.duplicates).toBe(t.units(b));
      expect(res.duplicates).toBe(t.units(b) / 2);
      expect(await t.stored()).toBe(before + res.inserted);
    });

    it("two copies of one batch written at once (two hub processes) store it once", async () => {
      const b = makeBatch({ gatewayId: "gwC", instance: uniqueId("i"), firstSeq: 1, messages: 50 });
      const before = await t.stored();
      const [x, y] = await Promise.all([t.sink.write(sinkBatch(b, 20)), t.sink.write(sinkBatch(b, 20))]);
      expect(x.inserted + y.inserted).toBe(t.units(b));
      expect(x.duplicates + y.duplicates).toBe(t.units(b));
      expect(await t.stored()).toBe(before + t.units(b));
    });
  });
}

sinkContract("PostgreSQL", async () => {
  const db: TestDatabase = await testDatabase();
  await migrate(db.pool, silentLogger());
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  const sink = new PostgresSink(pool, silentLogger());
  return {
    sink,
    units: (b) => b.readings,
    stored: async () => Number((await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM readings")).rows[0]!.n),
    cleanup: async () => {
      await sink.close();
      await db.drop();
    },
  };
});

describe.skipIf(!MONGO_URL)("MongoDB sink contract (needs DATALAB_MONGO_URL)", () => {
  sinkContract("MongoDB", async () => {
    const dbName = uniqueId("dl_");
    const sink = new MongoSink({ url: MONGO_URL!, dbName }, silentLogger());
    return {
      sink,
      units: (b) => b.batch.messages.length,
      stored: () => sink.collection.countDocuments(),
      cleanup: async () => {
        await sink.collection.db.dropDatabase().catch(() => undefined);
        await sink.close();
      },
    };
  });
});

describe("sinks facing an unreachable server", () => {
  const b = makeBatch({ gatewayId: "gwD", instance: "i1", firstSeq: 1, messages: 2 });

  it("PostgreSQL: healthy() is false, a write fails as unavailable (the consumer pauses, counts nothing)", async () => {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const pool = new pg.Pool({
      connectionString: "postgres://postgres@127.0.0.1:1/none",
      connectionTimeoutMillis: 2_000,
    });
    pool.on("error", () => undefined);
    const sink = new PostgresSink(pool, silentLogger(), { probeTimeoutMs: 2_000 });
    try {
      expect(await sink.healthy()).toBe(false);
      const err = await sink.write(sinkBatch(b)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SinkUnavailableError);
      expect(err).toBeInstanceOf(SinkError);
      // Refused at once, or (on a busy machine) timed out connecting: both are "unavailable",
      // which is what the consumer acts on; the wording differs, so it is not asserted.
      expect((err as SinkUnavailableError).cause).toBeInstanceOf(Error);
    } finally {
      await sink.close();
    }
  });

  it("MongoDB: healthy() is false and a write fails as unavailable (driver only, no server needed)", async () => {
    const sink = new MongoSink(
      { url: "mongodb://127.0.0.1:1/", dbName: "none", serverSelectionTimeoutMs: 500 },
      silentLogger(),
    );
    try {
      expect(await sink.healthy()).toBe(false);
      const err = await sink.write(sinkBatch(b)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SinkUnavailableError);
      expect((err as Error).message).toMatch(/mongodb write failed/);
    } finally {
      await sink.close();
    }
  });
});
