/**
 * A reading cannot break the dashboard: `1.7976931348623157e308` is finite, and two of them
 * overflowed Postgres' avg() (which keeps a sum of squared deviations), so every bucketed
 * query over them answered 500. The contract now bounds values to ±1e100 at both ends: the
 * gateway quarantines anything beyond, and the extremes it does admit average without
 * overflow. End to end: MQTT → gateway → NATS → hub → Postgres → HTTP API.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import { MQTT_URL, uniqueId, waitFor } from "@datalab/shared/testing";
import { startPipeline, type Pipeline } from "./support/pipeline";

const id = uniqueId("xv");
const sensor = `xv-${id}`;
let pipeline: Pipeline;
let publisher: mqtt.MqttClient;
let base: string;
// 10 s into a 2-minute bucket (buckets start at multiples of their width since the epoch), so
// the six readings, one a second, never straddle two buckets.
const t0 = Math.floor((Date.now() - 30 * 60_000) / 120_000) * 120_000 + 10_000;

async function get(path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${path}`);
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  pipeline = await startPipeline({ id, gatewayEnv: { DATALAB_REPORT_INTERVAL_MS: "0" } });
  base = `http://127.0.0.1:${pipeline.hub.httpPort}`;
  publisher = await mqtt.connectAsync(MQTT_URL);
});

afterAll(async () => {
  await publisher?.endAsync();
  await pipeline?.stop();
});

describe("extreme values", () => {
  it(
    "beyond ±1e100 is quarantined by the gateway; " +
      "the extremes admitted keep /api/readings?bucket= and /api/sparklines answering",
    async () => {
      const send = (value: number, i: number) =>
        publisher.publishAsync(
          `${id}/sensors/${sensor}`,
          JSON.stringify({ sensor, temperature: value, ts: t0 + i * 1_000 }),
          { qos: 1 },
        );
      const refused = [1.7976931348623157e308, -1.7976931348623157e308, 1e101];
      const admitted = [1e100, -1e100, 1e100, -1e100, 5e-324, 21.5];
      let i = 0;
      for (const v of refused) await send(v, i++);
      for (const v of admitted) await send(v, i++);
      await waitFor(
        async () => (await pipeline.count("sensor_id = $1", [sensor])) === admitted.length,
        "the admitted readings in Postgres",
      );
      // Published before the admitted ones, on one ordered session: they were handled first.
      expect(pipeline.gateway.status().quarantine.bad_value).toBe(refused.length);
      expect(await pipeline.count("sensor_id = $1 AND abs(value) > 1e100", [sensor])).toBe(0);

      const from = t0 - 60_000;
      const to = t0 + 60_000;
      const bucketed = await get(
        `/api/readings?sensor=${encodeURIComponent(sensor)}&metric=temperature&from=${from}&to=${to}&bucket=2m`,
      );
      expect(bucketed.status, JSON.stringify(bucketed.body)).toBe(200);
      expect(bucketed.body.count).toEqual([admitted.length]);
      expect(bucketed.body.max).toEqual([1e100]);
      expect(bucketed.body.min).toEqual([-1e100]);
      expect(Number.isFinite(bucketed.body.avg[0])).toBe(true);

      const spark = await get(
        `/api/sparklines?from=${from}&to=${to}&points=2&metric=temperature&sensor=${encodeURIComponent(sensor)}`,
      );
      expect(spark.status, JSON.stringify(spark.body)).toBe(200);
      expect(JSON.stringify(spark.body)).toContain(sensor);
    },
  );
});
