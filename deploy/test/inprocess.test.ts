/**
 * The demo's embedded stand-ins, below the demo: the PGlite pool adapter running the hub's own
 * SQL (migrations under an advisory lock, the unnest insert with ON CONFLICT, the sensors and
 * gateways upserts, the query API's SQL), and the in-process uplink → hub direct intake with
 * its acknowledgement contract.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batchMsgId, createLogger, encodeBatch, subjects, UplinkError, type Batch } from "@datalab/shared";
import { InProcessUplink } from "@datalab/gateway";
import {
  createHubMetrics,
  createPostgresSink,
  DirectIntake,
  migrate,
  type DirectDeadLetter,
  type HubMetrics,
  type Sink,
} from "@datalab/hub";
import { PglitePool } from "../demo/pglite-pool";
import { isPgUnavailable } from "../../hub/src/sinks/postgres-errors";

const log = createLogger("test", "silent");
let pool: PglitePool;
let db: pg.Pool;

beforeAll(async () => {
  // One in-memory instance for the file: starting PGlite compiles PostgreSQL's WebAssembly.
  pool = await PglitePool.open(undefined);
  db = pool as unknown as pg.Pool;
});

afterAll(async () => {
  await pool?.end();
});

function batch(gatewayId: string, firstSeq: number, sensor: string, values: number[]): Batch {
  const now = Date.now();
  return {
    v: 1,
    gatewayId,
    instance: "inst-1",
    firstSeq,
    lastSeq: firstSeq + values.length - 1,
    sentAt: now,
    messages: [
      {
        receivedAt: now,
        source: "mqtt:sensors",
        payload: JSON.stringify({ sensor, values }),
        encoding: "utf8",
        readings: values.map((value, i) => ({
          seq: firstSeq + i,
          sensorId: sensor,
          metric: "temperature",
          value,
          unit: "Cel",
          ts: now - 1_000 + i,
        })),
      },
    ],
  } as Batch;
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  return Number((await db.query<{ n: string }>(sql, params)).rows[0]!.n);
}

describe("PGlite pool adapter", () => {
  it("applies the hub's migrations once, under the advisory lock, even when two hub starts race", async () => {
    const [a, b] = await Promise.all([migrate(db, log), migrate(db, log)]);
    expect([...a, ...b].sort()).toEqual(
      (await db.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version")).rows.map(
        (r) => r.version,
      ),
    );
    expect(await migrate(db, log)).toEqual([]);
    const idx = await db.query<{ indexdef: string }>(
      "SELECT indexdef FROM pg_indexes WHERE indexname = 'readings_ts_brin'",
    );
    expect(idx.rows[0]?.indexdef).toMatch(/USING brin/);
  });

  it("answers like node-postgres: int8 as text, rowCount of an INSERT ... ON CONFLICT, array rows", async () => {
    await db.query("CREATE TABLE t_shape (k bigint PRIMARY KEY, v float8)");
    const first = await db.query(
      "INSERT INTO t_shape SELECT * FROM unnest($1::bigint[], $2::float8[]) ON CONFLICT DO NOTHING",
      [
        [1, 2, 3],
        [1.5, 2.5, 3.5],
      ],
    );
    expect(first.rowCount).toBe(3);
    const again = await db.query(
      "INSERT INTO t_shape SELECT * FROM unnest($1::bigint[], $2::float8[]) ON CONFLICT DO NOTHING",
      [
        [3, 4],
        [0, 4.5],
      ],
    );
    expect(again.rowCount).toBe(1);
    const rows = await db.query<{ k: string; v: number }>("SELECT k, v FROM t_shape ORDER BY k");
    expect(rows.rows[0]).toEqual({ k: "1", v: 1.5 });
    const arr = await db.query<[string, number]>({
      text: "SELECT k, v FROM t_shape WHERE k > $1 ORDER BY k",
      values: [2],
      rowMode: "array",
    } as never);
    expect(arr.rows).toEqual([
      ["3", 3.5],
      ["4", 4.5],
    ]);
  });

  it("gives a client the session alone: another caller's statements never land inside its transaction", async () => {
    await db.query("CREATE TABLE t_tx (n int)");
    const c = await db.connect();
    await c.query("BEGIN");
    await c.query("INSERT INTO t_tx VALUES (1)");
    // Would run inside c's transaction (and be rolled back with it) if the session were shared.
    const other = db.query("INSERT INTO t_tx VALUES (2)");
    await c.query("ROLLBACK");
    c.release();
    await other;
    expect((await db.query<{ n: number }>("SELECT n FROM t_tx")).rows).toEqual([{ n: 2 }]);
  });

  it("rolls back a transaction left open by a client released on an error path", async () => {
    await db.query("CREATE TABLE t_rel (n int)");
    const c = await db.connect();
    await c.query("BEGIN");
    await c.query("INSERT INTO t_rel VALUES (1)");
    c.release(new Error("write failed"));
    expect(await count("SELECT count(*) AS n FROM t_rel")).toBe(0);
    expect(() => c.release()).toThrow(/already been released/);
  });

  it("refuses callers past its waiting limit instead of queueing without bound", async () => {
    const small = PglitePool.over(pool, { maxWaiting: 1, connectTimeoutMs: 60_000 });
    try {
      const holder = await small.connect();
      const waiting = small.connect();
      await expect(small.connect()).rejects.toThrow(/too many callers/);
      holder.release();
      (await waiting).release();
    } finally {
      await small.end();
    }
  });
});

describe("in-process uplink → hub direct intake", () => {
  let metrics: HubMetrics;
  let sink: Sink;
  const dead: DirectDeadLetter[] = [];
  let uplink: InProcessUplink;
  const subj = subjects("datalab");

  beforeAll(async () => {
    metrics = createHubMetrics(false);
    sink = await createPostgresSink(db, log);
    const intake = new DirectIntake(
      [sink],
      subj,
      { limits: { maxBytes: 64 * 1024, maxMessages: 100 }, maxDeliver: 2, deadLetter: async (d) => void dead.push(d) },
      metrics,
      log,
    );
    uplink = new InProcessUplink((s, d, m) => intake.deliver(s, d, m));
  });

  it("resolves publish only after the readings are committed, and a resend is a duplicate", async () => {
    const b = batch("gw-a", 1, "s-a", [20.5, 21, 21.5]);
    const ack = await uplink.publish(subj.readings("gw-a"), encodeBatch(b), batchMsgId(b));
    expect(ack.duplicate).toBe(false);
    // No waiting: the ack means the transaction committed.
    expect(await count("SELECT count(*) AS n FROM readings WHERE gateway_id = 'gw-a'")).toBe(3);
    const again = await uplink.publish(subj.readings("gw-a"), encodeBatch(b), batchMsgId(b));
    expect(again).toEqual({ seq: ack.seq, duplicate: true });
    expect(await count("SELECT count(*) AS n FROM readings WHERE gateway_id = 'gw-a'")).toBe(3);
    expect((await metrics.readingsWritten.get()).values.find((v) => v.labels.sink === "postgres")?.value).toBe(3);
    expect(uplink.status().state).toBe("connected");
  });

  it(
    "trusts the subject, not the payload: a batch claiming another gateway is dead-lettered with its reason, " +
      "not written",
    async () => {
      const b = batch("gw-other", 1, "s-x", [1]);
      await uplink.publish(subj.readings("gw-b"), encodeBatch(b), batchMsgId(b));
      expect(dead.map((d) => d.reason)).toEqual(["gateway_mismatch"]);
      expect(Buffer.from(dead[0]!.data).toString()).toContain("gw-other");
      expect(await count("SELECT count(*) AS n FROM readings WHERE gateway_id IN ('gw-b', 'gw-other')")).toBe(0);
    },
  );

  it("fails the publish while the database is unreachable, so the gateway keeps the batch in its outbox", async () => {
    // A second pool on the same database, ended: what the sink sees of a database that went away.
    const downPool = PglitePool.over(pool);
    const downDb = downPool as unknown as pg.Pool;
    const downSink = await createPostgresSink(downDb, log);
    const downDead: DirectDeadLetter[] = [];
    const intake = new DirectIntake(
      [downSink],
      subj,
      {
        limits: { maxBytes: 64 * 1024, maxMessages: 100 },
        maxDeliver: 1,
        deadLetter: async (d) => void downDead.push(d),
      },
      createHubMetrics(false),
      log,
    );
    const up = new InProcessUplink((s, d, m) => intake.deliver(s, d, m));
    await downPool.end();
    const b = batch("gw-c", 1, "s-c", [5]);
    const err = await up.publish(subj.readings("gw-c"), encodeBatch(b), batchMsgId(b)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UplinkError);
    expect(String((err as Error).message)).toMatch(/postgres/);
    // Unavailable is not the batch's fault: never dead-lettered, however often it fails.
    await up.publish(subj.readings("gw-c"), encodeBatch(b), batchMsgId(b)).catch(() => undefined);
    expect(downDead).toEqual([]);
    expect(up.status().lastError).toMatch(/postgres/);
    // The adapter's "ended" error is the one node-postgres gives, which the hub classifies as unavailable.
    expect(isPgUnavailable(await downDb.query("SELECT 1").catch((e: unknown) => e))).toBe(true);
  });

  it("refuses to publish once closed", async () => {
    const up = new InProcessUplink(async () => ({ seq: 1, duplicate: false }));
    await up.close();
    await expect(up.publish("datalab.readings.x", new Uint8Array(), "m")).rejects.toThrow(/closed/);
  });
});
