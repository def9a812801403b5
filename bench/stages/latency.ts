import { createTestDatabase, deleteStreams, uniqueId, waitFor } from "@datalab/shared/testing";
import { flood } from "../lib/flood";
import { startGateway, startHub, type BenchContext, type Figure } from "./common";

/**
 * End to end at a steady 1,000 readings/s: publish → committed row. Each message carries its
 * publish time as `ts`; the bench database stamps each row with clock_timestamp() on insert.
 */
export async function latencyStage(ctx: BenchContext): Promise<Figure[]> {
  const seconds = ctx.quick ? 10 : 30;
  const rate = 1_000;
  const prefix = uniqueId("bl");
  const topic = `bench/${prefix}`;
  const db = await createTestDatabase(ctx.pgUrl);
  const hub = await startHub({ DATALAB_NATS_URL: ctx.natsUrl, DATALAB_PG_URL: db.url, DATALAB_NATS_PREFIX: prefix });
  await db.pool.query("ALTER TABLE readings ADD COLUMN committed_at timestamptz NOT NULL DEFAULT clock_timestamp()");
  const gw = await startGateway({
    DATALAB_MQTT_URL: ctx.mqttUrl,
    DATALAB_NATS_URL: ctx.natsUrl,
    DATALAB_NATS_PREFIX: prefix,
    DATALAB_MQTT_TOPICS: `${topic}/#`,
    DATALAB_MQTT_RTL433_TOPICS: "",
  });
  try {
    const n = seconds * rate;
    await flood({ mqttUrl: ctx.mqttUrl, topicRoot: topic, messages: n, sensors: 100, rate, qos: 1, stampTs: true });
    await waitFor(
      async () => Number((await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM readings")).rows[0]!.n) >= n,
      `${n} rows`,
      120_000,
      100,
    );
    const r = await db.pool.query<{ p50: number; p99: number; max: number }>(
      `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99, max(ms) AS max
         FROM (SELECT extract(epoch FROM committed_at - ts) * 1000 AS ms FROM readings) x`,
    );
    const { p50, p99, max } = r.rows[0]!;
    ctx.log(`latency: p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, max ${Number(max).toFixed(0)} ms`);
    const window = "group commit ≤ 100 ms, batch age ≤ 100 ms";
    return [
      {
        stage: "End to end at 1,000 readings/s",
        figure: "latency p50",
        value: p50,
        unit: "ms",
        limit: { what: window, value: 200, unit: "ms" },
      },
      {
        stage: "End to end at 1,000 readings/s",
        figure: "latency p99",
        value: p99,
        unit: "ms",
        target: "≤ 300 ms",
        met: p99 <= 300,
        note: `${seconds} s, max ${Number(max).toFixed(0)} ms`,
      },
    ];
  } finally {
    await gw.stop();
    await hub.stop();
    await deleteStreams(prefix, ctx.natsUrl);
    await db.drop();
  }
}
