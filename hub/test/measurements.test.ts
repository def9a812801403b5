/**
 * One row per measurement, against the real PostgreSQL: copies of a measurement from other
 * gateways, a radio's repeats and redeliveries leave one row; folds are counted per gateway,
 * exactly, also when a batch comes again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import {
  BATCH_FORMAT_VERSION,
  batchReadings,
  encodeBatch,
  silentLogger,
  type Batch,
  type WireReading,
} from "@datalab/shared";
import { uniqueId, type TestDatabase } from "@datalab/shared/testing";
import { migrate } from "../src/sinks/postgres-migrate";
import { PostgresSink } from "../src/sinks/postgres";
import type { SinkBatch } from "../src/sinks/types";
import { makeBatch, sinkBatch } from "./support/batches";
import { testDatabase } from "./support/db";

let db: TestDatabase;
const pools: pg.Pool[] = [];
const folded = new Map<string, number>();

function newSink(opts: { copy?: boolean } = {}): PostgresSink {
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  pool.on("error", () => undefined);
  pools.push(pool);
  return new PostgresSink(pool, silentLogger(), {
    ...opts,
    onFolded: (g, n) => folded.set(g, (folded.get(g) ?? 0) + n),
  });
}

async function rows(
  sensor: string,
): Promise<{ gateway_id: string; metric: string; ts: number; value: number; sensor_time: boolean | null }[]> {
  const r = await db.pool.query(
    "SELECT gateway_id, metric, (extract(epoch FROM ts) * 1000)::float8 AS ts, value, sensor_time FROM readings " +
      "WHERE sensor_id = $1 ORDER BY ts, metric",
    [sensor],
  );
  return r.rows;
}

/** One gateway's batch of single-reading messages: [ts, value] pairs of one sensor and metric. */
function rxBatch(
  gatewayId: string,
  instance: string,
  firstSeq: number,
  sensorId: string,
  points: [number, number][],
  rxWindow: number | undefined,
): SinkBatch {
  let seq = firstSeq;
  const messages = points.map(([ts, value]) => {
    const r: WireReading = {
      seq: seq++,
      sensorId,
      metric: "temperature",
      value,
      unit: "Cel",
      ts,
      ...(rxWindow === undefined ? {} : { rxWindow }),
    };
    return {
      source: "mqtt:rtl_433/host/events",
      receivedAt: ts,
      payload: "{}",
      encoding: "utf8" as const,
      readings: [r],
    };
  });
  const batch: Batch = {
    v: BATCH_FORMAT_VERSION,
    gatewayId,
    instance,
    firstSeq,
    lastSeq: seq - 1,
    sentAt: Date.now(),
    messages,
  };
  return {
    gatewayId,
    batch,
    readings: batchReadings(batch, gatewayId),
    streamSeq: 1,
    bytes: encodeBatch(batch).byteLength,
  };
}

beforeAll(async () => {
  db = await testDatabase();
  await migrate(db.pool, silentLogger());
});
afterAll(async () => {
  for (const p of pools) await p.end();
  await db?.drop();
});

describe("one row per measurement", () => {
  it(
    "sensor time: a second gateway's copy is folded and counted for that gateway; " +
      "redeliveries change nothing and count nothing twice",
    async () => {
      const sink = newSink();
      const prefix = uniqueId("st");
      const spec = { firstSeq: 1, messages: 20, sensorPrefix: prefix, sensorTime: true } as const;
      const a = makeBatch({ ...spec, gatewayId: "gwA", instance: "ia" });
      const b = makeBatch({ ...spec, gatewayId: "gwB", instance: "ib" });
      expect(await sink.write(sinkBatch(a))).toEqual({ inserted: 40, duplicates: 0 });
      expect(await sink.write(sinkBatch(b))).toEqual({ inserted: 0, duplicates: 0, folded: 40 });
      expect(folded.get("gwB")).toBe(40);
      // Redelivered, flagged or not: nothing new, nothing counted again.
      expect(await sink.write({ ...sinkBatch(b), redelivered: true })).toEqual({ inserted: 0, duplicates: 40 });
      expect(await sink.write(sinkBatch(b))).toEqual({ inserted: 0, duplicates: 40 });
      expect(await sink.write(sinkBatch(a))).toEqual({ inserted: 0, duplicates: 40 });
      expect(folded.get("gwB")).toBe(40);
      expect(folded.get("gwA")).toBeUndefined();
      const r = await db.pool.query(
        "SELECT count(*)::int AS n, count(DISTINCT gateway_id)::int AS g, bool_and(sensor_time) AS st FROM readings " +
          "WHERE sensor_id LIKE $1",
        [`${prefix}%`],
      );
      expect(r.rows[0]).toEqual({ n: 40, g: 1, st: true });
      expect(
        (await db.pool.query("SELECT count(*)::int AS n FROM readings_folded WHERE gateway_id = 'gwB'")).rows[0].n,
      ).toBe(40);
    },
  );

  it("sensor time: the same measurement twice in one batch (a replay run twice, read at once) is one row", async () => {
    const sink = newSink();
    const prefix = uniqueId("twice");
    const once = makeBatch({
      gatewayId: "gwT",
      instance: "it",
      firstSeq: 1,
      messages: 5,
      sensorPrefix: prefix,
      sensorTime: true,
    });
    // The same messages again under new seqs: what a second replay of the file becomes.
    const again = makeBatch({
      gatewayId: "gwT",
      instance: "it",
      firstSeq: 1,
      messages: 5,
      sensorPrefix: prefix,
      sensorTime: true,
    });
    let seq = 11;
    for (const m of again.batch.messages) for (const r of m.readings) r.seq = seq++;
    const both: Batch = {
      ...once.batch,
      lastSeq: seq - 1,
      messages: [...once.batch.messages, ...again.batch.messages],
    };
    const res = await sink.write({
      gatewayId: "gwT",
      batch: both,
      readings: batchReadings(both, "gwT"),
      streamSeq: 1,
      bytes: 1,
    });
    expect(res).toEqual({ inserted: 10, duplicates: 0, folded: 10 });
    expect(
      (await db.pool.query("SELECT count(*)::int AS n FROM readings WHERE sensor_id LIKE $1", [`${prefix}%`])).rows[0]
        .n,
    ).toBe(10);
  });

  it(
    "stamped on receipt: repeats and other gateways within the window fold; " +
      "a changed value, or the same value past the window, is a new measurement",
    async () => {
      const sink = newSink();
      const s = uniqueId("rtl");
      const t = Date.UTC(2026, 0, 1);
      // Gateway A hears a transmission three times (repeats 80 ms apart), then 30 s later the same
      // value, then a new one.
      const a = rxBatch(
        "gwRA",
        "ia",
        1,
        s,
        [
          [t, 21.5],
          [t + 80, 21.5],
          [t + 160, 21.5],
          [t + 30_000, 21.5],
          [t + 60_000, 21.7],
        ],
        2_000,
      );
      // Gateway B hears the same transmissions, its clock 400 ms behind A's, and misses one.
      const b = rxBatch(
        "gwRB",
        "ib",
        1,
        s,
        [
          [t - 400, 21.5],
          [t - 320, 21.5],
          [t + 29_600, 21.5],
          [t + 59_600, 21.7],
        ],
        2_000,
      );
      expect(await sink.write(sinkBatch2(a))).toEqual({ inserted: 3, duplicates: 0, folded: 2 });
      expect(await sink.write(sinkBatch2(b))).toEqual({ inserted: 0, duplicates: 0, folded: 4 });
      expect((await rows(s)).map((r) => [r.gateway_id, r.ts - t, r.value, r.sensor_time])).toEqual([
        ["gwRA", 0, 21.5, null],
        ["gwRA", 30_000, 21.5, null],
        ["gwRA", 60_000, 21.7, null],
      ]);
      // Redelivered: the folded ones fold again but are not counted again; the stored ones are duplicates.
      expect(await sink.write({ ...sinkBatch2(b), redelivered: true })).toEqual({ inserted: 0, duplicates: 4 });
      expect(await sink.write({ ...sinkBatch2(a), redelivered: true })).toEqual({ inserted: 0, duplicates: 5 });
      expect(await rows(s)).toHaveLength(3);
    },
  );

  it("window off (0) or sensor time: a 1 Hz sensor sending one value twice in a row is two measurements", async () => {
    const sink = newSink();
    const off = uniqueId("off");
    const t = Date.UTC(2026, 0, 2);
    const points: [number, number][] = [
      [t, 20],
      [t + 1_000, 20],
      [t + 2_000, 20],
    ];
    expect(await sink.write(sinkBatch2(rxBatch("gwO", "io", 1, off, points, 0)))).toEqual({
      inserted: 3,
      duplicates: 0,
    });
    // Another gateway hearing it with the window off: its readings are its own (nothing says they are the same).
    expect(await sink.write(sinkBatch2(rxBatch("gwO2", "io2", 1, off, points, 0)))).toEqual({
      inserted: 3,
      duplicates: 0,
    });
    const st = uniqueId("st1hz");
    expect(await sink.write(sinkBatch2(rxBatch("gwS", "is", 1, st, points, undefined)))).toEqual({
      inserted: 3,
      duplicates: 0,
    });
    expect(await rows(st)).toHaveLength(3);
  });

  it(
    "two hub processes writing two gateways' copies at once store each measurement once " +
      "(COPY groups and single writes alike)",
    async () => {
      const s = uniqueId("race");
      const t = Date.UTC(2026, 0, 3);
      const points = (skew: number): [number, number][] =>
        Array.from({ length: 50 }, (_, i) => [t + i * 10_000 + skew, 20 + (i % 7)]);
      for (const copy of [true, false]) {
        const sid = `${s}-${copy}`;
        const [x, y] = await Promise.all([
          newSink({ copy }).write(sinkBatch2(rxBatch("gwX", `ix${copy}`, 1, sid, points(0), 2_000))),
          newSink({ copy }).write(sinkBatch2(rxBatch("gwY", `iy${copy}`, 1, sid, points(150), 2_000))),
        ]);
        expect(x.inserted + y.inserted).toBe(50);
        expect((x.folded ?? 0) + (y.folded ?? 0)).toBe(50);
        expect(await rows(sid)).toHaveLength(50);
      }
    },
  );
});

/** The batch as the consumer hands it over (first delivery). */
function sinkBatch2(b: SinkBatch): SinkBatch {
  return { ...b, readings: batchReadings(b.batch, b.gatewayId) };
}
