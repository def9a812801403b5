import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pg from "pg";
import { silentLogger, type Reading } from "@datalab/shared";
import { NATS_URL, waitFor, type TestDatabase } from "@datalab/shared/testing";
import { Hub } from "../src/hub";
import { loadMigrations, migrate } from "../src/sinks/postgres-migrate";
import { PostgresSink } from "../src/sinks/postgres";
import { copyReadings } from "../src/sinks/postgres-readings";
import { SinkRejectedError } from "../src/sinks/types";
import { makeBatch, makeBatches, publishBatches, sinkBatch, totalReadings } from "./support/batches";
import { testConfig } from "./support/config";
import { count, testDatabase } from "./support/db";
import { startTcpProxy } from "./support/tcp-proxy";

describe("PostgreSQL schema and sink", () => {
  let db: TestDatabase;
  let sink: PostgresSink;

  beforeAll(async () => {
    db = await testDatabase();
    const pool = new pg.Pool({ connectionString: db.url, max: 4 });
    pool.on("error", () => undefined);
    sink = new PostgresSink(pool, silentLogger());
  });
  afterAll(async () => {
    await sink?.close();
    await db?.drop();
  });

  it("migrations are versioned and idempotent, also when hub processes start together", async () => {
    const versions = loadMigrations().map((m) => m.version);
    expect(versions.slice(0, 2)).toEqual([1, 2]);
    const a = new pg.Pool({ connectionString: db.url, max: 1 });
    const b = new pg.Pool({ connectionString: db.url, max: 1 });
    try {
      const [x, y] = await Promise.all([migrate(a, silentLogger()), migrate(b, silentLogger())]);
      // The advisory lock lets one apply everything; the other finds nothing left to do.
      expect([...x, ...y].sort()).toEqual(versions);
      expect(await migrate(a, silentLogger())).toEqual([]);
    } finally {
      await a.end();
      await b.end();
    }
    expect(await count(db, "SELECT count(*) AS n FROM schema_migrations")).toBe(versions.length);
  });

  it(
    "sensors and gateways are written before the batch counts as written, " +
      "and converge whatever the order of batches",
    async () => {
      const [b1, b2, b3] = makeBatches("gwsum", "instA", 3, 6, 2);
      // Out of order and one redelivered: the rows must end as if applied in order, once.
      for (const b of [b2!, b3!, b1!, b3!]) await sink.write(sinkBatch(b));
      const all = [b1!, b2!, b3!].flatMap((b) => sinkBatch(b).readings);
      const gw = (await db.pool.query("SELECT * FROM gateways WHERE gateway_id = 'gwsum'")).rows[0];
      expect(gw).toMatchObject({
        last_instance: "instA",
        last_batch_readings: 12,
        last_batch_messages: 6,
        last_batch_bytes: b3!.data.byteLength,
        backlog_readings: null,
        health: null,
      });
      expect(Number(gw.last_batch_seq)).toBe(b3!.batch.lastSeq);
      expect(Number(gw.last_batch_first_seq)).toBe(b3!.batch.firstSeq);
      expect(gw.last_batch_sent_at.getTime()).toBe(b3!.batch.sentAt);
      expect(gw.first_batch_at.getTime()).toBeLessThanOrEqual(gw.last_batch_at.getTime());

      const sensors = (await db.pool.query("SELECT * FROM sensors ORDER BY sensor_id")).rows;
      expect(sensors.map((s) => s.sensor_id)).toEqual(["s0", "s1", "s2", "s3", "s4"]);
      for (const s of sensors) {
        const mine = all.filter((r) => r.sensorId === s.sensor_id);
        expect(s.first_seen.getTime()).toBe(Math.min(...mine.map((r) => r.receivedAt)));
        expect(s.last_seen.getTime()).toBe(Math.max(...mine.map((r) => r.receivedAt)));
        expect(s.last_gateway_id).toBe("gwsum");
        for (const metric of ["temperature", "humidity"]) {
          const newest = mine.filter((r) => r.metric === metric).sort((x, y) => y.ts - x.ts || y.seq - x.seq)[0]!;
          expect(s.last_values[metric]).toEqual({
            value: newest.value,
            unit: newest.unit,
            ts: newest.ts,
            seq: newest.seq,
          });
        }
      }
    },
  );

  it(
    "batches written at once (their summaries folded into shared upserts) " +
      "leave the same sensors and gateways rows as batches written one by one",
    async () => {
      // Two gateways reporting the same sensors, batches out of order and one redelivered.
      const a = makeBatches("gwfoldA", "iA", 6, 5, 3, 1, "fold");
      const b = makeBatches("gwfoldB", "iB", 6, 5, 2, 1, "fold");
      const order = [a[3]!, b[0]!, a[0]!, b[5]!, a[5]!, b[2]!, a[1]!, b[1]!, a[4]!, b[4]!, a[2]!, b[3]!, a[3]!];
      const other = await testDatabase();
      await migrate(other.pool, silentLogger());
      const pool = new pg.Pool({ connectionString: other.url, max: 4 });
      const oneByOne = new PostgresSink(pool, silentLogger());
      try {
        await Promise.all(order.map((x) => sink.write(sinkBatch(x))));
        for (const x of order) await oneByOne.write(sinkBatch(x));
        const sensorsSql =
          "SELECT sensor_id, first_seen, last_seen, last_gateway_id, last_values FROM sensors WHERE sensor_id LIKE " +
          "'fold%' ORDER BY sensor_id";
        const gatewaysSql =
          "SELECT gateway_id, last_batch_sent_at, last_instance, last_batch_first_seq, last_batch_seq, " +
          "last_batch_readings, last_batch_messages, last_batch_bytes FROM gateways WHERE gateway_id LIKE 'gwfold%' " +
          "ORDER BY gateway_id";
        const together = {
          sensors: (await db.pool.query(sensorsSql)).rows,
          gateways: (await db.pool.query(gatewaysSql)).rows,
        };
        const apart = {
          sensors: (await other.pool.query(sensorsSql)).rows,
          gateways: (await other.pool.query(gatewaysSql)).rows,
        };
        expect(together.sensors.length).toBe(5);
        expect(together.gateways.map((g) => Number(g.last_batch_seq))).toEqual([
          a[5]!.batch.lastSeq,
          b[5]!.batch.lastSeq,
        ]);
        expect(together).toEqual(apart);
      } finally {
        await oneByOne.close();
        await other.drop();
      }
    },
  );

  it("at most two group transactions at once; the batches that wait meanwhile share the next one", async () => {
    const other = await testDatabase();
    await migrate(other.pool, silentLogger());
    const pool = new pg.Pool({ connectionString: other.url, max: 8 });
    // Two connections made beforehand: a connection still being set up (slow on a busy machine)
    // would let the first group commit before the second began, and nothing overlap.
    for (const c of await Promise.all([pool.connect(), pool.connect()])) c.release();
    // Each group transaction holds one pooled client from BEGIN to COMMIT.
    let open = 0;
    let most = 0;
    let transactions = 0;
    pool.on("acquire", () => {
      open += 1;
      transactions += 1;
      most = Math.max(most, open);
    });
    pool.on("release", () => {
      open -= 1;
    });
    const grouped = new PostgresSink(pool, silentLogger());
    try {
      const batches = makeBatches("gwrounds", "iR", 6, 5, 2);
      const results = await Promise.all(batches.map((b) => grouped.write(sinkBatch(b))));
      expect(results).toEqual(batches.map((b) => ({ inserted: b.readings, duplicates: 0 })));
      expect(await count(other)).toBe(totalReadings(batches));
      expect(most).toBe(2);
      // The first two alone, then the four that waited in one.
      expect(transactions).toBe(3);
    } finally {
      await grouped.close();
      await other.drop();
    }
  });

  it(
    "COPY carries text with tabs, newlines and backslashes unchanged; " +
      "a batch written again inserts nothing and counts duplicates",
    async () => {
      const source = "mqtt:odd\ttopic\\with\nbreaks\r";
      const b = makeBatch({ gatewayId: "gwcopy", instance: "i", firstSeq: 1, messages: 4, message: { source } });
      expect(await sink.write(sinkBatch(b))).toEqual({ inserted: 8, duplicates: 0 });
      const rows = (
        await db.pool.query("SELECT DISTINCT source, unit FROM readings WHERE gateway_id = 'gwcopy' ORDER BY unit")
      ).rows;
      expect(rows).toEqual([
        { source, unit: "%RH" },
        { source, unit: "Cel" },
      ]);
      const times = (
        await db.pool.query("SELECT seq, ts, received_at, value FROM readings WHERE gateway_id = 'gwcopy' ORDER BY seq")
      ).rows;
      const sent = sinkBatch(b).readings;
      expect(times.map((t) => [Number(t.seq), t.ts.getTime(), t.received_at.getTime(), t.value])).toEqual(
        sent.map((r) => [r.seq, r.ts, r.receivedAt, r.value]),
      );
      // The same batch again, not flagged as redelivered: the COPY meets the rows and gives way to the insert.
      expect(await sink.write(sinkBatch(b))).toEqual({ inserted: 0, duplicates: 8 });
      // A re-formed batch overlapping the first: only the new readings land.
      const wider = makeBatch({ gatewayId: "gwcopy", instance: "i", firstSeq: 1, messages: 6, message: { source } });
      expect(await sink.write({ ...sinkBatch(wider), redelivered: true })).toEqual({ inserted: 4, duplicates: 8 });
      expect(await count(db, "SELECT count(*) AS n FROM readings WHERE gateway_id = 'gwcopy'")).toBe(12);
    },
  );

  it("COPY's binary rows come back from Postgres exactly as sent: text, NULLs, floats, times", async () => {
    const base: Reading = {
      gatewayId: "gw\tbin\nary\\é",
      instance: "binrt",
      seq: 1,
      sensorId: "température-ü-😀",
      metric: "humidité",
      value: 0,
      unit: null,
      ts: 1_764_270_000_000,
      receivedAt: 1_764_270_000_123,
      source: "mqtt:odd\ttopic\\with\nbreaks\r",
    };
    const cases: [Partial<Reading>, string, string][] = [
      // The reading's own fields, then ts and received_at as microseconds since 1970.
      [{ value: -0, unit: "°C" }, "1764270000000000", "1764270000123000"],
      [{ value: -1e100, rxWindow: 0 }, "1764270000000000", "1764270000123000"],
      [{ value: 1e100, unit: "", ts: 1_764_270_000_001 }, "1764270000001000", "1764270000123000"],
      [{ value: 5e-324, ts: 0, receivedAt: 946_684_799_999 }, "0", "946684799999000"],
      [{ value: -2.2250738585072014e-308, ts: 946_684_800_000 }, "946684800000000", "1764270000123000"],
      [{ value: 0.1 + 0.2, ts: 946_684_800_001, rxWindow: 3_600_000 }, "946684800001000", "1764270000123000"],
      [{ value: -273.15, ts: 7_258_118_400_000 }, "7258118400000000", "1764270000123000"],
      [{ value: 21.37, seq: Number.MAX_SAFE_INTEGER, unit: "x".repeat(32) }, "1764270000000000", "1764270000123000"],
      // Readings carry whole ms (EpochMillis); a fraction would still keep its exact microseconds.
      [{ value: 1, ts: 946_684_800_000.001, receivedAt: 946_684_799_999.5 }, "946684800000001", "946684799999500"],
    ];
    const sent = cases.map(([r], i) => ({ ...base, seq: i + 2, ...r }));
    await migrate(db.pool, silentLogger());
    const client = await db.pool.connect();
    try {
      await copyReadings(client, sent);
    } finally {
      client.release();
    }
    const rows = (
      await db.pool.query(
        "SELECT gateway_id, instance, seq::text, sensor_id, metric, value, unit, source, sensor_time, " +
          "(extract(epoch FROM ts) * 1000000)::bigint::text AS ts_us, " +
          "(extract(epoch FROM received_at) * 1000000)::bigint::text AS rx_us " +
          "FROM readings WHERE instance = 'binrt' ORDER BY readings.seq",
      )
    ).rows;
    const expected = sent
      .map((r, i) => ({
        gateway_id: r.gatewayId,
        instance: r.instance,
        seq: String(r.seq),
        sensor_id: r.sensorId,
        metric: r.metric,
        value: r.value,
        unit: r.unit,
        source: r.source,
        sensor_time: r.rxWindow === undefined ? true : null,
        ts_us: cases[i]![1],
        rx_us: cases[i]![2],
      }))
      .sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
    // toEqual tells -0 from 0.
    expect(rows).toEqual(expected);
  });

  it(
    "batches written at once go in one group; " +
      "one the database refuses is refused alone, its neighbours are written",
    async () => {
      // One group transaction at a time: the first batch goes alone, the next three wait and go together.
      const oneRound = new PostgresSink(new pg.Pool({ connectionString: db.url, max: 2 }), silentLogger(), {
        copyRounds: 1,
      });
      try {
        const [good1, good2, good3] = makeBatches("gwgroup", "i", 3, 5, 2);
        const bad = makeBatch({
          gatewayId: "gwgroupbad",
          instance: "i",
          firstSeq: 1,
          messages: 2,
          message: { source: "nul\u0000here" },
        });
        const results = await Promise.allSettled(
          [good1!, good2!, bad, good3!].map((x) => oneRound.write(sinkBatch(x))),
        );
        expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
        expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(SinkRejectedError);
        expect(await count(db, "SELECT count(*) AS n FROM readings WHERE gateway_id = 'gwgroup'")).toBe(30);
        expect(await count(db, "SELECT count(*) AS n FROM readings WHERE gateway_id = 'gwgroupbad'")).toBe(0);
        expect(
          Number(
            (await db.pool.query("SELECT last_batch_seq FROM gateways WHERE gateway_id = 'gwgroup'")).rows[0]
              .last_batch_seq,
          ),
        ).toBe(good3!.batch.lastSeq);
      } finally {
        await oneRound.close();
      }
    },
  );

  it(
    "a batch the database refuses rolls back whole (no readings, no sensor, no gateway row) " +
      "and says it was refused",
    async () => {
      const b = makeBatch({
        gatewayId: "gwbad",
        instance: "i",
        firstSeq: 1,
        messages: 3,
        message: { source: "bad\u0000source" },
      });
      const err = await sink.write(sinkBatch(b)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SinkRejectedError);
      expect((err as Error).message).toMatch(/0x00/);
      expect(await count(db, "SELECT count(*) AS n FROM readings WHERE gateway_id = 'gwbad'")).toBe(0);
      expect(await count(db, "SELECT count(*) AS n FROM gateways WHERE gateway_id = 'gwbad'")).toBe(0);
    },
  );

  it("indexes serve 'one sensor over a time range' (B-tree) and 'all sensors in a time range' (BRIN)", async () => {
    // 300 000 readings arriving in time order, as they do; the planner picks its plans on
    // statistics, so the table needs some size.
    await db.pool.query(`
      INSERT INTO readings (gateway_id, instance, seq, sensor_id, metric, ts, value, unit, received_at, source)
      SELECT 'gwgen', 'i', g, 'gen' || (g % 100), CASE WHEN g % 2 = 0 THEN 'temperature' ELSE 'humidity' END,
             timestamptz '2026-01-01' + g * interval '1 second', g % 40, 'Cel',
             timestamptz '2026-01-01' + g * interval '1 second', 'gen'
        FROM generate_series(1, 300000) g`);
    await db.pool.query("ANALYZE readings");
    const plan = async (sql: string) =>
      (await db.pool.query(`EXPLAIN ${sql}`)).rows.map((r: Record<string, string>) => r["QUERY PLAN"]).join("\n");
    expect(
      await plan(
        "SELECT * FROM readings WHERE sensor_id = 'gen7' AND metric = 'humidity' AND ts BETWEEN '2026-01-02' AND " +
          "'2026-01-03'",
      ),
    ).toMatch(/Index Scan on readings_sensor_metric_ts/);
    expect(
      await plan(
        "SELECT sensor_id, avg(value) FROM readings WHERE ts BETWEEN '2026-01-02' AND '2026-01-02 06:00' GROUP BY 1",
      ),
    ).toMatch(/Bitmap Index Scan on readings_ts_brin/);
    // The point of BRIN: a few pages where a B-tree on ts would be as big as the one above.
    const sizes = (
      await db.pool.query(
        "SELECT pg_relation_size('readings_ts_brin') AS brin, pg_relation_size('readings_sensor_metric_ts') AS btree",
      )
    ).rows[0];
    expect(Number(sizes.brin)).toBeLessThan(Number(sizes.btree) / 100);
  });
});

describe("a hub started while PostgreSQL is unreachable", () => {
  it("starts anyway; its Postgres consumer waits, migrates when the database answers, and catches up", async () => {
    const db = await testDatabase();
    const target = new URL(db.url);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    await proxy.cut();
    const proxied = new URL(db.url);
    proxied.port = String(proxy.port);
    const hub = new Hub(testConfig({ DATALAB_PG_URL: proxied.toString(), DATALAB_ACK_WAIT_MS: "5000" }), {
      logger: silentLogger(),
    });
    const nc = await connect({ servers: NATS_URL });
    try {
      await hub.start();
      const batches = makeBatches("gwlate", "i1", 5, 10);
      await publishBatches(nc, hub.subjects, batches);
      await waitFor(() => hub.status().consumers[0]?.state === "waiting_for_sink", "postgres consumer to wait");
      await proxy.restore();
      await waitFor(
        async () => (await count(db).catch(() => 0)) === totalReadings(batches),
        "readings after Postgres became reachable",
        30_000,
      );
      expect(await count(db, "SELECT count(*) AS n FROM schema_migrations")).toBe(loadMigrations().length);
    } finally {
      await hub.stop();
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(hub.subjects.stream).catch(() => undefined);
      await jsm.streams.delete(hub.subjects.deadLetterStream).catch(() => undefined);
      await nc.close();
      await proxy.close();
      await db.drop();
    }
  });
});
